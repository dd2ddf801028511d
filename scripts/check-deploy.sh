#!/usr/bin/env bash
# Checks the deployment artefacts: the Helm chart (lint --strict and template for the default values and every
# ci/ values file), the Prometheus rules (check, unit tests, chart copy identical), the example Prometheus and
# Alertmanager configs, and the Grafana dashboards (valid JSON). Exits non-zero on the first failure class found,
# after running everything, so one run lists all problems.
#
# Tools: HELM (default .tools/helm, then PATH), PROMTOOL and AMTOOL (default PATH). Install them with
# scripts/install-helm.sh and scripts/install-promtool.sh; a missing tool is a failure, never a skip.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

chart=deploy/helm/pumpfleet
rules_src="${chart}/files/pumpfleet-rules.yaml"
rules_copy=deploy/prometheus/pumpfleet-rules.yaml

resolve_tool() { # name env-override local-default
  local override="$2" local_default="$3"
  if [[ -n "${override}" ]]; then echo "${override}"; return; fi
  if [[ -n "${local_default}" && -x "${local_default}" ]]; then echo "${local_default}"; return; fi
  command -v "$1" || true
}
helm_bin="$(resolve_tool helm "${HELM:-}" "${repo_root}/.tools/helm")"
promtool_bin="$(resolve_tool promtool "${PROMTOOL:-}" "")"
amtool_bin="$(resolve_tool amtool "${AMTOOL:-}" "")"

failures=0
passes=0
step() { # description, command...
  local what="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    passes=$((passes + 1)); echo "ok   ${what}"
  else
    failures=$((failures + 1)); echo "FAIL ${what}"; echo "${out}" | sed 's/^/     /'
  fi
}
require() {
  if [[ -z "$2" || ! -x "$2" ]]; then
    failures=$((failures + 1)); echo "FAIL $1 not found: run $3 (or set $4)"; return 1
  fi
}

if require helm "${helm_bin}" scripts/install-helm.sh HELM; then
  values_files=("" "${chart}"/ci/*-values.yaml)
  for vf in "${values_files[@]}"; do
    label="${vf:-default values}"
    args=()
    [[ -n "${vf}" ]] && args=(-f "${vf}")
    step "helm lint --strict (${label})" "${helm_bin}" lint --strict "${chart}" "${args[@]}"
    step "helm template (${label})" "${helm_bin}" template pumpfleet "${chart}" --namespace pumpfleet "${args[@]}"
  done
  # The schema must reject what the runtime would reject: an unknown MQTT mode.
  step "values.schema.json rejects gateway.mqtt.mode=Bogus" \
    bash -c '! "$0" template pumpfleet "$1" --set gateway.mqtt.mode=Bogus >/dev/null 2>&1' "${helm_bin}" "${chart}"
fi

step "rules copy ${rules_copy} equals ${rules_src}" cmp "${rules_src}" "${rules_copy}"

if require promtool "${promtool_bin}" scripts/install-promtool.sh PROMTOOL; then
  step "promtool check rules" "${promtool_bin}" check rules "${rules_copy}"
  step "promtool test rules" "${promtool_bin}" test rules deploy/prometheus/pumpfleet-rules.test.yaml
  step "promtool check config (example prometheus.yml)" "${promtool_bin}" check config deploy/prometheus/prometheus.yml
fi

if require amtool "${amtool_bin}" scripts/install-promtool.sh AMTOOL; then
  am=deploy/alertmanager/alertmanager.yml
  step "amtool check-config" "${amtool_bin}" check-config "${am}"
  step "critical routes to pager" "${amtool_bin}" config routes test --config.file="${am}" --verify.receivers=pager severity=critical alertname=PumpFleetIngestStopped
  step "warning routes to ticket" "${amtool_bin}" config routes test --config.file="${am}" --verify.receivers=ticket severity=warning alertname=PumpFleetTargetDown
fi

for f in deploy/grafana/dashboards/*.json; do
  [[ -e "${f}" ]] || continue
  step "valid JSON ${f}" python3 -m json.tool "${f}"
done

for rb in $(grep -o 'docs/runbooks/[A-Za-z]*\.md' "${rules_src}" | sort -u); do
  step "runbook exists ${rb}" test -s "${rb}"
done

echo "${passes} passed, ${failures} failed"
[[ "${failures}" == 0 ]]
