#!/usr/bin/env bash
# Installs promtool (Debian package prometheus) and amtool (prometheus-alertmanager), the only registry route
# to them here. amtool validates deploy/alertmanager/alertmanager.yml in scripts/check-deploy.sh.
# The same packages' servers (/usr/bin/prometheus, /usr/bin/prometheus-alertmanager) are started privately on
# loopback by tests/Monitoring.Tests (the alerting chain).
#
# The package would normally start a Prometheus server through its maintainer scripts. A CI box
# must not be left with a daemon listening on :9090, so a policy-rc.d forbids service starts
# during the install, and anything that started anyway (systemd hosts) is stopped and disabled.
# Idempotent: does nothing when the four binaries are already on PATH.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 \
   && command -v prometheus >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "promtool already installed: $(command -v promtool) ($(promtool --version 2>&1 | head -n1))"
  echo "amtool already installed: $(command -v amtool)"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  echo "install-promtool.sh must run as root (apt-get install)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# apt-get update only when the lists are missing or the candidate is unknown, since it is slow.
if ! apt-cache policy prometheus prometheus-alertmanager 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "${policy}" ]]; then
  printf '#!/bin/sh\n# installed by install-promtool.sh: no service starts during package install\nexit 101\n' >"${policy}"
  chmod 0755 "${policy}"
  created_policy=1
fi
cleanup() { if [[ "${created_policy}" == 1 ]]; then rm -f "${policy}"; fi; }
trap cleanup EXIT

# --no-install-recommends keeps out the node exporter and friends that we do not need.
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null

for svc in prometheus prometheus-alertmanager; do
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now "${svc}" >/dev/null 2>&1 || true
  fi
  if command -v service >/dev/null 2>&1; then
    service "${svc}" stop >/dev/null 2>&1 || true
  fi
done

promtool --version 2>&1 | head -n1
echo "promtool installed: $(command -v promtool)"
echo "amtool installed: $(command -v amtool)"
