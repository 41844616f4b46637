{{/* Chart name, overridable. */}}
{{- define "pushgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full resource name: RELEASE-pushgate, or RELEASE when it already says pushgate. */}}
{{- define "pushgate.fullname" -}}
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

{{- define "pushgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pushgate.labels" -}}
helm.sh/chart: {{ include "pushgate.chart" . }}
{{ include "pushgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
pushgate.io/region: {{ .Values.region }}
{{- end }}

{{- define "pushgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pushgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pushgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pushgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pushgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Guard rails: values that would make a broken deployment stop the render with a
message that says what to change. Included by every template that needs them.
*/}}
{{- define "pushgate.validate" -}}
{{- if not (has .Values.region (list "us" "de")) }}
{{- fail (printf "region must be us or de, got %q" (toString .Values.region)) }}
{{- end }}
{{- if and (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) (not .Values.redis.urlSecret.name) }}
{{- fail "Redis is required for more than one replica: set redis.urlSecret.name (the quota counters must be shared), or run replicaCount: 1 without autoscaling" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- if not .Values.database.urlSecret.name }}
{{- fail "database.urlSecret.name is required: the Secret holding the PostgreSQL URL (postgres://…)" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail "ingress.host is required when ingress.enabled is true" }}
{{- end }}
{{- range $k, $v := .Values.regionURLs }}
{{- if not (has $k (list "us" "de")) }}
{{- fail (printf "regionURLs: unknown region %q: regions are us and de" $k) }}
{{- end }}
{{- end }}
{{- if not .Values.stripe.enabled }}
{{- range $k, $v := .Values.config }}
{{- if and (hasPrefix "stripe_" $k) $v }}
{{- fail (printf "config.%s needs stripe.enabled: true (billing is off without the Stripe keys)" $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- $default := 0 }}
{{- range .Values.apps }}
{{- if .default }}{{ $default = add1 $default }}{{ end }}
{{- end }}
{{- if gt $default 1 }}
{{- fail "apps: only one fcm app can be the default" }}
{{- end }}
{{- end }}

{{/* GOMEMLIMIT: 90% of the memory limit, so the collector works harder before the kernel kills the pod. */}}
{{- define "pushgate.gomemlimit" -}}
{{- $mem := toString .Values.resources.limits.memory }}
{{- if hasSuffix "Gi" $mem }}
{{- printf "%dMiB" (div (mul (trimSuffix "Gi" $mem | int) 1024 9) 10) }}
{{- else if hasSuffix "Mi" $mem }}
{{- printf "%dMiB" (div (mul (trimSuffix "Mi" $mem | int) 9) 10) }}
{{- else }}
{{- fail (printf "resources.limits.memory must be in Mi or Gi (GOMEMLIMIT is derived from it), got %q" $mem) }}
{{- end }}
{{- end }}

{{/* Where each app's credential file is mounted. */}}
{{- define "pushgate.credentialsDir" -}}
/etc/pushgate/credentials
{{- end }}

{{/* The config file: the chart's own settings, then the free-form ones. */}}
{{- define "pushgate.configFile" -}}
listen: ":8086"
region: {{ .Values.region | quote }}
public_url: {{ .Values.publicURL | quote }}
{{- with .Values.regionURLs }}
region_urls: {{ $pairs := list }}{{ range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end }}{{ join "," $pairs | quote }}
{{- end }}
{{- if .Values.apps }}
apps_file: /etc/pushgate/config/apps.yaml
{{- end }}
data_dir: /data
shutdown_timeout: {{ printf "%ds" (int .Values.shutdownTimeoutSeconds) | quote }}
{{- range $k, $v := .Values.config }}
{{ $k }}: {{ toString $v | quote }}
{{- end }}
{{- end }}

{{/* The apps file: each credential field points at its mounted Secret. */}}
{{- define "pushgate.appsFile" -}}
{{- $dir := include "pushgate.credentialsDir" . }}
{{- range $app := .Values.apps }}
- id: {{ .id | quote }}
  kind: {{ .kind | quote }}
  {{- if eq .kind "apns" }}
  topic: {{ required (printf "apps: %s: topic is required for kind apns" .id) .topic | quote }}
  environment: {{ .environment | default "production" | quote }}
  {{- if .keyID }}
  key_file: {{ printf "%s/%s/%s" $dir .id .credentials.key | quote }}
  key_id: {{ .keyID | quote }}
  team_id: {{ required (printf "apps: %s: teamID is required with keyID" .id) .teamID | quote }}
  {{- else }}
  cert_file: {{ printf "%s/%s/%s" $dir .id .credentials.key | quote }}
  {{- end }}
  {{- else }}
  service_account_file: {{ printf "%s/%s/%s" $dir .id .credentials.key | quote }}
  {{- if .default }}
  default: true
  {{- end }}
  {{- end }}
  {{- with .endpoint }}
  endpoint: {{ . | quote }}
  {{- end }}
  {{- with .ca }}
  ca_file: {{ printf "%s/%s-ca/%s" $dir $app.id .key | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Environment of the pushgate and migration containers: secrets by reference only. */}}
{{- define "pushgate.env" -}}
- name: PUSHGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.urlSecret.name }}
      key: {{ .Values.database.urlSecret.key }}
- name: PUSHGATE_TOKEN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tokenKey.secretName }}
      key: {{ .Values.tokenKey.key }}
{{- if .Values.tokenKey.previousKey }}
- name: PUSHGATE_TOKEN_KEYS_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tokenKey.secretName }}
      key: {{ .Values.tokenKey.previousKey }}
{{- end }}
{{- if .Values.redis.urlSecret.name }}
- name: PUSHGATE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.urlSecret.name }}
      key: {{ .Values.redis.urlSecret.key }}
{{- end }}
{{- if .Values.smtp.urlSecret.name }}
- name: PUSHGATE_SMTP_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.smtp.urlSecret.name }}
      key: {{ .Values.smtp.urlSecret.key }}
{{- end }}
{{- if .Values.stripe.enabled }}
- name: PUSHGATE_STRIPE_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.stripe.secretName }}
      key: {{ .Values.stripe.secretKeyKey }}
- name: PUSHGATE_STRIPE_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.stripe.secretName }}
      key: {{ .Values.stripe.webhookSecretKey }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, for every pod and container of the chart. */}}
{{- define "pushgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pushgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Volumes both pods mount: the config, the apps' credentials, and the writable /data and /tmp. */}}
{{- define "pushgate.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: data
  emptyDir:
    sizeLimit: 256Mi
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range $app := .root.Values.apps }}
- name: {{ printf "cred-%s" .id | replace "_" "-" | lower | trunc 63 | trimSuffix "-" }}
  secret:
    secretName: {{ .credentials.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .credentials.key }}
        path: {{ .credentials.key }}
{{- with .ca }}
- name: {{ printf "ca-%s" $app.id | replace "_" "-" | lower | trunc 63 | trimSuffix "-" }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0444
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pushgate.volumeMounts" -}}
- name: config
  mountPath: /etc/pushgate/config
  readOnly: true
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- range .Values.apps }}
- name: {{ printf "cred-%s" .id | replace "_" "-" | lower | trunc 63 | trimSuffix "-" }}
  mountPath: {{ printf "%s/%s" (include "pushgate.credentialsDir" $) .id }}
  readOnly: true
{{- if .ca }}
- name: {{ printf "ca-%s" .id | replace "_" "-" | lower | trunc 63 | trimSuffix "-" }}
  mountPath: {{ printf "%s/%s-ca" (include "pushgate.credentialsDir" $) .id }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}
