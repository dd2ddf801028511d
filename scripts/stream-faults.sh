#!/usr/bin/env bash
# Stream delivery under faults (issue 14), full form: two silo processes with the pumpfleet-log provider over a private
# PostgreSQL, this process as an Orleans client counting deliveries on the 16 partition streams, a writer appending
# all the time; in one run a silo SIGKILL and a PostgreSQL restart; at the end every committed event must have been
# delivered (deduped by stream version). The short form runs in CI: tests/Streaming.Tests/DeliveryUnderFaultsTests.cs.
# "Delivering again" after a fault counts only deliveries of events appended after it (since 2026-11-30).
# PUMPFLEET_STREAM_FAULTS_LOGS=1 keeps the silos' logs (UTC-stamped) of a run that passed too; PUMPFLEET_SILO_STREAMS_LOG=Debug
# raises the silos' stream categories. A/B of the provider's recovery settings: Streaming__* variables reach the silos.
# Usage: scripts/stream-faults.sh
# Needs the PostgreSQL server binaries (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release bench/Failover/Failover.csproj -nologo -v quiet
exec dotnet bench/Failover/bin/Release/net10.0/PumpFleet.Failover.dll --scenario streams "$@"
