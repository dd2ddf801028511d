#!/usr/bin/env bash
# Faults through the real MQTT path: three silo processes, a gateway process and simulated hubs over MQTT against a
# private PostgreSQL; in one run a silo SIGKILL, a PostgreSQL restart and a gateway SIGKILL (restarted), each followed
# by exactly-once accounting and the time to the first ack.
# Usage: scripts/failover-mqtt.sh [--form short|long] [--runs 1] [--ingest-timeout hh:mm:ss (the gateway's Gateway:Mqtt:IngestTimeout)]
# Needs the PostgreSQL server binaries (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release bench/Failover/Failover.csproj -nologo -v quiet
exec dotnet bench/Failover/bin/Release/net10.0/PumpFleet.Failover.dll --scenario mqtt "$@"
