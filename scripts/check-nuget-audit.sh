#!/usr/bin/env bash
# Proves that the NuGet vulnerability audit of the build (Directory.Build.props: NuGetAudit, mode all, level low)
# actually has vulnerability data, instead of trusting a silent restore: restores a throw-away "canary" project that
# references a package with a published advisory (Newtonsoft.Json 12.0.1, GHSA-5crp-9r3c-p9vr, high) with the
# repository's audit settings and NuGet.Config, and looks for NU1901-NU1904. Two checks:
#   1. self-test: the same canary against a loopback audit source that serves that one advisory (NuGet's
#      VulnerabilityInfo/6.7.0 format) must report it, so the check below can tell "no data" from "no advisory".
#   2. the machine's own sources: advisory reported -> the audit works here. Nothing reported -> the sources serve no
#      vulnerability data (the offline registry of the dev VMs serves only PackageBaseAddress and
#      RegistrationsBaseUrl) and a vulnerable package would restore silently: printed as "AUDIT INEFFECTIVE", and a
#      failure when PUMPFLEET_REQUIRE_NUGET_AUDIT=1, which CI with internet access sets (docs/security.md).
# Ends with "N passed, N failed".
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() { [[ -n "${server_pid}" ]] && kill "${server_pid}" 2>/dev/null; rm -rf "${work}"; }
trap cleanup EXIT

prop() { dotnet msbuild "${repo_root}/src/Contracts/Contracts.csproj" -getProperty:"$1"; }
audit="$(prop NuGetAudit)"; mode="$(prop NuGetAuditMode)"; level="$(prop NuGetAuditLevel)"

# canary <dir> [audit source url]: restores the canary in <dir>; prints the restore output.
canary() {
  local dir="$1" source="${2:-}"
  mkdir -p "${dir}"
  if [[ -n "${source}" ]]; then
    cat > "${dir}/NuGet.Config" <<CFG
<configuration>
  <auditSources><clear /><add key="self-test" value="${source}" allowInsecureConnections="true" /></auditSources>
</configuration>
CFG
  else
    cp "${repo_root}"/[Nn]u[Gg]et.[Cc]onfig "${dir}/" 2>/dev/null || true
  fi
  cat > "${dir}/Canary.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
    <NuGetAudit>${audit}</NuGetAudit>
    <NuGetAuditMode>${mode}</NuGetAuditMode>
    <NuGetAuditLevel>${level}</NuGetAuditLevel>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Newtonsoft.Json" Version="12.0.1" />
  </ItemGroup>
</Project>
PROJ
  (cd "${dir}" && dotnet restore -nologo --force-evaluate 2>&1 || true)
}

passed=0
failed=0

# 1. Self-test against a loopback vulnerability source.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
feed="${work}/feed"
mkdir -p "${feed}/v"
echo "{\"version\":\"3.0.0\",\"resources\":[{\"@id\":\"http://127.0.0.1:${port}/v/index.json\",\"@type\":\"VulnerabilityInfo/6.7.0\"}]}" > "${feed}/index.json"
echo "[{\"@name\":\"base\",\"@id\":\"http://127.0.0.1:${port}/v/base.json\",\"@updated\":\"2026-01-01T00:00:00Z\"},{\"@name\":\"update\",\"@id\":\"http://127.0.0.1:${port}/v/update.json\",\"@updated\":\"2026-01-01T00:00:00Z\"}]" > "${feed}/v/index.json"
echo '{"newtonsoft.json":[{"url":"https://github.com/advisories/GHSA-5crp-9r3c-p9vr","severity":2,"versions":"(, 13.0.1)"}]}' > "${feed}/v/base.json"
echo '{}' > "${feed}/v/update.json"
python3 -m http.server "${port}" --bind 127.0.0.1 --directory "${feed}" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 0.2)" 2>/dev/null && break
  sleep 0.1
done
if grep -Eq 'NU190[1-4]' <<<"$(canary "${work}/self-test" "http://127.0.0.1:${port}/index.json")"; then
  echo "ok   NuGet audit self-test: with vulnerability data the canary's advisory is reported"
  passed=$((passed + 1))
else
  echo "FAIL NuGet audit self-test: a loopback source with the advisory did not make the restore report it"
  failed=$((failed + 1))
fi

# 2. The machine's own package sources.
out="$(canary "${work}/real")"
if grep -Eq 'NU190[1-4]' <<<"${out}"; then
  echo "ok   NuGet audit: the package sources have vulnerability data (the canary's advisory is reported)"
  passed=$((passed + 1))
elif [[ "${PUMPFLEET_REQUIRE_NUGET_AUDIT:-0}" == 1 ]]; then
  echo "FAIL NuGet audit: no advisory reported for Newtonsoft.Json 12.0.1; the package sources serve no vulnerability data"
  failed=$((failed + 1))
else
  echo "AUDIT INEFFECTIVE NuGet audit: the package sources serve no vulnerability data, so the audit cannot find anything"
  echo "     on this machine (not counted; PUMPFLEET_REQUIRE_NUGET_AUDIT=1 makes it a failure, as CI with internet access does)"
fi
echo "${passed} passed, ${failed} failed"
[[ "${failed}" == 0 ]]
