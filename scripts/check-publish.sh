#!/usr/bin/env bash
# Published output of every host (each src/*/ project with a Program.cs): `dotnet publish` into a temporary
# folder, then checks that no appsettings.Development.json is in it (development shortcuts such as Local sign-in,
# the dev fleet secret and auto-pairing must never reach an image, docs/security.md) and, as a control that the
# publish really copied the settings, that appsettings.json is there when the project has one.
# Ends with "N passed, N failed". Needs a built tree (scripts/test.sh builds first; Debug, --no-build keeps it fast).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
configuration="${CONFIGURATION:-Debug}"

passed=0
failed=0
for program in src/*/Program.cs; do
  dir="$(dirname "${program}")"
  csproj="$(ls "${dir}"/*.csproj | head -n1)"
  name="$(basename "${csproj}" .csproj)"
  out="$(mktemp -d)"
  if ! dotnet publish "${csproj}" --no-build -c "${configuration}" -nologo -v quiet -o "${out}" >/dev/null; then
    echo "FAIL ${name}: dotnet publish failed"
    failed=$((failed + 1))
    rm -rf "${out}"
    continue
  fi
  leaked="$(find "${out}" -iname 'appsettings.Development.json' -printf '%P\n')"
  if [[ -n "${leaked}" ]]; then
    echo "FAIL ${name}: published output contains ${leaked//$'\n'/, }"
    failed=$((failed + 1))
  elif [[ -f "${dir}/appsettings.json" && ! -f "${out}/appsettings.json" ]]; then
    echo "FAIL ${name}: appsettings.json is not in the published output, so the check above proves nothing"
    failed=$((failed + 1))
  else
    echo "ok   ${name}: no appsettings.Development.json in the published output"
    passed=$((passed + 1))
  fi
  rm -rf "${out}"
done
echo "${passed} passed, ${failed} failed"
[[ "${failed}" == 0 ]]
