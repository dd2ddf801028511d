#!/usr/bin/env bash
# The test command of the README and of CI: installs what the tests need, then builds and runs every test
# (each test project starts its own PostgreSQL, brokers and browser on free loopback ports), then the deployment
# checks. Prints one summary line "N passed, N failed" at the end.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

bash scripts/install-test-deps.sh

echo "== Building"
dotnet build PumpFleet.sln -nologo -v quiet

echo "== Running the tests"
log="$(mktemp)"
status=0
# -m:1 runs the test assemblies one after another: each starts its own servers, and two cores are easily oversubscribed.
dotnet test PumpFleet.sln --no-build -nologo -m:1 --results-directory TestResults 2>&1 | tee "${log}" || status=$?

echo "== Deployment checks (helm lint/template, promtool, amtool)"
deploy_log="$(mktemp)"
bash scripts/check-deploy.sh | tee "${deploy_log}" || status=1

echo "== Software bill of materials (CycloneDX) of every shipped project"
sbom_log="$(mktemp)"
bash scripts/sbom.sh | tee "${sbom_log}" || status=1

echo "== NuGet vulnerability audit has data (a known advisory must be reported)"
audit_log="$(mktemp)"
bash scripts/check-nuget-audit.sh | tee "${audit_log}" || status=1

echo "== Published output of every host (no development settings)"
publish_log="$(mktemp)"
bash scripts/check-publish.sh | tee "${publish_log}" || status=1

# dotnet test prints "Passed!  - Failed: N, Passed: N, ..." per assembly; check-deploy.sh ends with "N passed, N failed".
passed=$(grep -Eo 'Passed: +[0-9]+' "${log}" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "${log}" | awk '{s+=$2} END {print s+0}')
read -r dp df < <(grep -Eo '^[0-9]+ passed, [0-9]+ failed$' "${deploy_log}" | tail -n1 | awk '{print $1, $3}' || echo "0 0")
read -r sp sf < <(grep -Eo '^[0-9]+ passed, [0-9]+ failed$' "${sbom_log}" | tail -n1 | awk '{print $1, $3}' || echo "0 0")
read -r pp pf < <(grep -Eo '^[0-9]+ passed, [0-9]+ failed$' "${publish_log}" | tail -n1 | awk '{print $1, $3}' || echo "0 0")
read -r ap af < <(grep -Eo '^[0-9]+ passed, [0-9]+ failed$' "${audit_log}" | tail -n1 | awk '{print $1, $3}' || echo "0 0")
passed=$((passed + ${dp:-0} + ${sp:-0} + ${pp:-0} + ${ap:-0}))
failed=$((failed + ${df:-0} + ${sf:-0} + ${pf:-0} + ${af:-0}))
rm -f "${log}" "${deploy_log}" "${sbom_log}" "${publish_log}" "${audit_log}"
if [[ "${status}" != 0 && "${failed}" == 0 ]]; then
  failed=1   # a build or runner failure with no failed test still counts as a failure
fi
echo "${passed} passed, ${failed} failed"
exit "${status}"
