#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, each only when missing: PostgreSQL server binaries,
# mosquitto (external-broker tests), Chromium (browser tests), helm (chart tests), promtool/amtool (alert rules).
# Package installs must not leave daemons running (a system mosquitto on :1883 would collide with the platform),
# so service starts are blocked during the install and stopped if they happened anyway.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

need=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || need+=(postgresql)
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || need+=(mosquitto mosquitto-clients)
command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]] || need+=(chromium)

if (( ${#need[@]} > 0 )); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "Missing packages (${need[*]}) and not root: run 'sudo apt-get install -y ${need[*]}'." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "Installing ${need[*]} from apt..."
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${policy}"
    chmod 0755 "${policy}"
    created_policy=1
  fi
  trap '[[ "${created_policy}" == 1 ]] && rm -f "${policy}"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  for svc in mosquitto postgresql; do
    service "${svc}" stop >/dev/null 2>&1 || true
  done
fi

bash scripts/install-helm.sh
if [[ "$(id -u)" == 0 ]]; then
  bash scripts/install-promtool.sh
elif ! command -v promtool >/dev/null 2>&1; then
  echo "promtool missing and not root: run 'sudo scripts/install-promtool.sh'." >&2
  exit 1
fi
