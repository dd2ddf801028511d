{{/* Chart name, truncated to 63 characters because Kubernetes names are DNS labels. */}}
{{- define "pumpfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pumpfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pumpfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pumpfleet.labels" -}}
helm.sh/chart: {{ include "pumpfleet.chart" . }}
app.kubernetes.io/name: {{ include "pumpfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pumpfleet
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "silo"). */}}
{{- define "pumpfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pumpfleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pumpfleet.componentLabels" -}}
{{ include "pumpfleet.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pumpfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "pumpfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-silo" (include "pumpfleet.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the PostgreSQL connection string: the operator's own, or the chart's. */}}
{{- define "pumpfleet.dbSecretName" -}}
{{- default (include "pumpfleet.fullname" .) .Values.postgresql.existingSecret -}}
{{- end -}}

{{- define "pumpfleet.dbSecretKey" -}}
{{- if .Values.postgresql.existingSecret -}}{{ .Values.postgresql.existingSecretKey }}{{- else -}}connectionString{{- end -}}
{{- end -}}

{{- define "pumpfleet.validate" -}}
{{- if and (not .Values.postgresql.existingSecret) (not .Values.postgresql.connectionString) -}}
{{- fail "set postgresql.connectionString or postgresql.existingSecret: PostgreSQL is required" -}}
{{- end -}}
{{- if and .Values.gateway.mqtt.tls.enabled (not .Values.gateway.mqtt.tls.existingSecret) -}}
{{- fail "gateway.mqtt.tls.enabled needs gateway.mqtt.tls.existingSecret (a Secret with a PKCS#12 certificate)" -}}
{{- end -}}
{{- if and .Values.orleans.tls.enabled (not .Values.orleans.tls.existingSecret) -}}
{{- fail "orleans.tls.enabled needs orleans.tls.existingSecret (a Secret with the cluster certificate, its key and the CA)" -}}
{{- end -}}
{{- if and (eq .Values.gateway.mqtt.mode "External") (not .Values.gateway.mqtt.external.host) -}}
{{- fail "gateway.mqtt.mode External needs gateway.mqtt.external.host" -}}
{{- end -}}
{{- if and (eq .Values.orleans.clustering "Localhost") (gt (int .Values.silo.replicas) 1) -}}
{{- fail "orleans.clustering Localhost supports a single silo; use AdoNet for silo.replicas > 1" -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by every process: how to reach PostgreSQL and the Orleans cluster.
Gateway and Dashboard are Orleans clients, so they need the same cluster identity and clustering as the silos.
*/}}
{{/*
The connection string of a process; call with (dict "ctx" $ "component" "silo"). With
postgresql.componentSecretKeys.<component> set, the process connects as its own least-privileged user (a member of
pumpfleet_<component>, docs/security.md) from that key of the same Secret; the migration Job keeps the owner's.
*/}}
{{- define "pumpfleet.commonEnv" -}}
{{- $ctx := .ctx -}}
{{- $own := index (default dict $ctx.Values.postgresql.componentSecretKeys) .component -}}
- name: ConnectionStrings__PumpFleet
  valueFrom:
    secretKeyRef:
      name: {{ include "pumpfleet.dbSecretName" $ctx }}
      key: {{ default (include "pumpfleet.dbSecretKey" $ctx) $own }}
{{- end -}}

{{/*
Downward-API pod identity. The silo needs it for Kubernetes hosting; the clients get it too so logs and
traces name the pod.
*/}}
{{- define "pumpfleet.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end -}}

{{- define "pumpfleet.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{/* HTTP probes on the contract's health endpoints; call with (dict "port" "http"). */}}
{{- define "pumpfleet.probes" -}}
startupProbe:
  httpGet:
    path: /health/live
    port: {{ .port }}
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /health/live
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /health/ready
    port: {{ .port }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/* A writable /tmp: the root filesystem is read-only, and .NET writes diagnostics sockets and temp files there. */}}
{{- define "pumpfleet.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}
{{- define "pumpfleet.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* The Orleans mTLS Secret (orleans.tls), mounted read-only in every process that joins the cluster. */}}
{{- define "pumpfleet.orleansTlsVolumeMount" -}}
{{- if .Values.orleans.tls.enabled }}
- name: orleans-tls
  mountPath: /etc/pumpfleet/orleans-tls
  readOnly: true
{{- end }}
{{- end -}}
{{- define "pumpfleet.orleansTlsVolume" -}}
{{- if .Values.orleans.tls.enabled }}
- name: orleans-tls
  secret:
    secretName: {{ .Values.orleans.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}
