{{/*
_helpers.tpl - names, labels and the environment shared by the three
containers of a broker pod.
*/}}

{{- define "kafscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it holds the chart name. */}}
{{- define "kafscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kafscale.headless" -}}
{{- printf "%s-headless" (include "kafscale.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kafscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kafscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafscale.labels" -}}
helm.sh/chart: {{ include "kafscale.chart" . }}
{{ include "kafscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kafscale
{{- end }}

{{- define "kafscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kafscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kafscale.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kafscale.s3SecretName" -}}
{{- if .Values.s3.credentials.existingSecret }}
{{- .Values.s3.credentials.existingSecret }}
{{- else }}
{{- printf "%s-s3" (include "kafscale.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Refusals: settings that would lose data or split the cluster.
*/}}
{{- define "kafscale.validate" -}}
{{- if and (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) (not .Values.etcd.endpoints) }}
{{- fail "more than one broker (replicaCount > 1 or autoscaling.enabled) needs etcd.endpoints" }}
{{- end }}
{{- if and .Values.s3.credentials.create .Values.s3.credentials.existingSecret }}
{{- fail "set either s3.credentials.create or s3.credentials.existingSecret, not both" }}
{{- end }}
{{- if not (has .Values.drain.method (list "ctl" "curl")) }}
{{- fail "drain.method must be ctl or curl" }}
{{- end }}
{{- if not (has .Values.broker.idSource (list "podIndexLabel" "hostname")) }}
{{- fail "broker.idSource must be podIndexLabel or hostname" }}
{{- end }}
{{- end }}

{{/*
The command of one of the three containers: (dict "bin" "kafscale-broker"
"ctx" $). With broker.idSource=hostname a shell sets KAFSCALE_BROKER_ID from
the ordinal suffix of the pod name first.
*/}}
{{- define "kafscale.command" -}}
{{- if eq .ctx.Values.broker.idSource "hostname" -}}
- /bin/sh
- -c
- {{ printf "export KAFSCALE_BROKER_ID=\"${HOSTNAME##*-}\"; exec %s" .bin | squote }}
{{- else -}}
- {{ .bin }}
{{- end }}
{{- end }}

{{/*
Environment of all three containers: directories, object store, metadata
store, cache, credentials from Secrets, and config.
*/}}
{{- define "kafscale.commonEnv" -}}
- name: KAFSCALE_SUPERVISE
  value: "0"
{{- if eq .Values.broker.idSource "podIndexLabel" }}
# The pod's ordinal. All three processes need it (the default shm ring name
# and the node's registration derive from it).
- name: KAFSCALE_BROKER_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
{{- end }}
- name: KAFSCALE_DATA_DIR
  value: /var/lib/kafscale
- name: KAFSCALE_RUN_DIR
  value: /run/kafscale
- name: KAFSCALE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: KAFSCALE_CLUSTER_ID
  value: {{ .Values.clusterId | quote }}
- name: KAFSCALE_SHM_NAME
  value: {{ .Values.cached.shmName | quote }}
- name: KAFSCALE_CACHE_BYTES
  value: {{ .Values.cached.cacheBytes | int64 | toString | quote }}
- name: KAFSCALE_READAHEAD_SEGMENTS
  value: {{ .Values.cached.readaheadSegments | int64 | toString | quote }}
- name: KAFSCALE_SEGMENT_BYTES
  value: {{ .Values.flusher.segmentBytes | int64 | toString | quote }}
{{- if ne (toString .Values.flusher.flushIntervalMs) "" }}
- name: KAFSCALE_FLUSH_INTERVAL_MS
  value: {{ .Values.flusher.flushIntervalMs | int64 | toString | quote }}
{{- end }}
- name: KAFSCALE_S3_NAMESPACE
  value: {{ .Values.s3.namespace | quote }}
{{- with .Values.s3.bucket }}
- name: KAFSCALE_S3_BUCKET
  value: {{ . | quote }}
{{- end }}
{{- if .Values.s3.bucket }}
- name: KAFSCALE_S3_REGION
  value: {{ .Values.s3.region | quote }}
{{- end }}
{{- with .Values.s3.endpoint }}
- name: KAFSCALE_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if ne (toString .Values.s3.pathStyle) "" }}
- name: KAFSCALE_S3_PATH_STYLE
  value: {{ .Values.s3.pathStyle | toString | quote }}
{{- end }}
{{- with .Values.s3.kmsArn }}
- name: KAFSCALE_S3_KMS_ARN
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.readBucket }}
- name: KAFSCALE_S3_READ_BUCKET
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.readRegion }}
- name: KAFSCALE_S3_READ_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.readEndpoint }}
- name: KAFSCALE_S3_READ_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if or .Values.s3.credentials.existingSecret .Values.s3.credentials.create }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "kafscale.s3SecretName" . }}
      key: {{ .Values.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "kafscale.s3SecretName" . }}
      key: {{ .Values.s3.credentials.secretAccessKeyKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "kafscale.s3SecretName" . }}
      key: {{ .Values.s3.credentials.sessionTokenKey }}
      optional: true
{{- end }}
{{- with .Values.etcd.endpoints }}
- name: KAFSCALE_ETCD_ENDPOINTS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.etcd.credentials.existingSecret }}
- name: KAFSCALE_ETCD_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.etcd.credentials.usernameKey }}
- name: KAFSCALE_ETCD_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.etcd.credentials.passwordKey }}
{{- end }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ if kindIs "float64" $value }}{{ $value | int64 | toString | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end }}
{{- end }}
