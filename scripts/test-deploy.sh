#!/usr/bin/env bash
# One entry point for CI and developers: installs helm, promtool and amtool if missing, then runs the
# deployment checks (scripts/check-deploy.sh) and the deployment test project. Fails if either fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

bash scripts/install-helm.sh
if [[ "$(id -u)" == 0 ]]; then
  bash scripts/install-promtool.sh
elif ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  echo "promtool/amtool missing and not root: run sudo scripts/install-promtool.sh" >&2
  exit 1
fi

status=0
bash scripts/check-deploy.sh || status=1
dotnet test tests/Deploy.Tests || status=1
exit "${status}"
