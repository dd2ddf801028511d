#!/usr/bin/env bash
# CycloneDX SBOM (JSON, spec 1.6) of every shipped project into artifacts/sbom/<project>.cdx.json, with the tool
# pinned in dotnet-tools.json, then checks each: the project is the metadata component, every package the project
# declares is listed, and every component (the whole NuGet closure of project.assets.json, so the packages of
# referenced projects too) has a version and a purl.
# Ends with "N passed, N failed". Needs a restored tree (scripts/test.sh builds first).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
out="artifacts/sbom"
mkdir -p "${out}"
dotnet tool restore >/dev/null

passed=0
failed=0
for project in Silo Gateway.Host Dashboard.Host Simulator; do
  file="${out}/${project}.cdx.json"
  if ! dotnet dotnet-CycloneDX "src/${project}/${project}.csproj" --exclude-dev --disable-package-restore \
       --output "${out}" --filename "${project}.cdx.json" --output-format Json --spec-version 1.6 --set-name "PumpFleet.${project}" >/dev/null; then
    echo "FAIL ${project}: CycloneDX did not produce an SBOM"
    failed=$((failed + 1))
    continue
  fi
  # Declared packages: the project's own PackageReference items (analyzers and other private assets excepted).
  declared=$(dotnet msbuild "src/${project}/${project}.csproj" -getItem:PackageReference -p:Configuration=Debug 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("\n".join(sorted({i["Identity"] for i in d["Items"]["PackageReference"] if i.get("PrivateAssets","").lower()!="all"})))')
  if python3 - "${file}" "PumpFleet.${project}" "${declared}" <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
name, declared = sys.argv[2], [d for d in sys.argv[3].split("\n") if d]
components = {c["name"]: c for c in bom.get("components", [])}
problems = []
if bom.get("bomFormat") != "CycloneDX" or bom.get("metadata", {}).get("component", {}).get("name") != name:
    problems.append(f"metadata component is not {name}")
problems += [f"declared package {d} missing" for d in declared if d not in components]
problems += [f"{c['name']} has no version or purl" for c in components.values() if not c.get("version") or not c.get("purl")]
if problems:
    print("; ".join(problems[:10]))
    sys.exit(1)
print(f"{len(components)} components, {len(declared)} declared packages present")
PY
  then
    echo "ok   ${project}: ${file}"
    passed=$((passed + 1))
  else
    echo "FAIL ${project}: ${file} does not list what the project ships"
    failed=$((failed + 1))
  fi
done
echo "${passed} passed, ${failed} failed"
[[ "${failed}" == 0 ]]
