#!/usr/bin/env bash
# Failover demo: three real silo processes over PostgreSQL membership, load, SIGKILL of one silo, accounting.
# Usage: scripts/failover-demo.sh [--mode kill|terminate] [--pumps 30] [--batch-size 5] [--runs 1]
# Needs the PostgreSQL server binaries (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release bench/Failover/Failover.csproj -nologo -v quiet
exec dotnet bench/Failover/bin/Release/net10.0/PumpFleet.Failover.dll "$@"
