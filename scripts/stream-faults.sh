#!/usr/bin/env bash
# Stream delivery under faults (issue 14), full form: two silo processes with the pumpfleet-log provider over a private
# PostgreSQL, this process as an Orleans client counting deliveries on the 16 partition streams, a writer appending
# all the time; in one run a silo SIGKILL and a PostgreSQL restart; at the end every committed event must have been
# delivered (deduped by stream version). The short form runs in CI: tests/Streaming.Tests/DeliveryUnderFaultsTests.cs.
# Usage: scripts/stream-faults.sh
# Needs the PostgreSQL server binaries (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release bench/Failover/Failover.csproj -nologo -v quiet
exec dotnet bench/Failover/bin/Release/net10.0/PumpFleet.Failover.dll --scenario streams "$@"
