{{/* Names, labels and the settings shared by the Deployments and the migration Jobs. */}}

{{- define "trellis.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* trellis.name: "<fullname>-<service>"; call with (dict "root" $ "name" "intake"). */}}
{{- define "trellis.name" -}}
{{- printf "%s-%s" (include "trellis.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "trellis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: trellis
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "trellis.selectorLabels" . }}
{{- end -}}

{{- define "trellis.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* trellis.svc: the service's settings, defaults merged under its own; returns YAML. */}}
{{- define "trellis.svc" -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy (default dict .svc)) -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "trellis.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .name (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{- define "trellis.natsURL" -}}
{{- if .Values.config.natsURL -}}
{{- .Values.config.natsURL -}}
{{- else if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" .Release.Name -}}
{{- else -}}
{{- fail "config.natsURL is required when nats.enabled is false" -}}
{{- end -}}
{{- end -}}

{{- define "trellis.dbHost" -}}
{{- if .Values.database.host -}}
{{- .Values.database.host -}}
{{- else if .Values.database.cnpg.enabled -}}
{{- printf "%s-pg-rw" (include "trellis.fullname" .) -}}
{{- else -}}
{{- fail "database.host is required unless database.cnpg.enabled is true" -}}
{{- end -}}
{{- end -}}

{{- define "trellis.dbAdminSecret" -}}
{{- if .Values.database.adminSecret -}}
{{- .Values.database.adminSecret -}}
{{- else if .Values.database.cnpg.enabled -}}
{{- printf "%s-pg-superuser" (include "trellis.fullname" .) -}}
{{- else -}}
{{- fail "database.adminSecret (keys username, password) is required for database.provision unless database.cnpg.enabled is true" -}}
{{- end -}}
{{- end -}}

{{/* trellis.env: the container environment of a service (serve and migrate). */}}
{{- define "trellis.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: HTTP_ADDR
  value: {{ printf ":%v" .svc.port | quote }}
{{- if $v.database.urlsSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.urlsSecret }}
      key: {{ .name }}
{{- else }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.passwordsSecret }}
      key: {{ .name }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s:$(DB_PASSWORD)@%s:%v/%s?sslmode=%s%s" .name (include "trellis.dbHost" $root) $v.database.port $v.database.name $v.database.sslmode (ternary "&sslrootcert=/etc/trellis/pg/ca.crt" "" (not (empty $v.database.caSecret))) | quote }}
{{- end }}
- name: DB_SCHEMA
  value: {{ .name }}
- name: DB_MAX_CONNS
  value: {{ $v.database.maxConns | quote }}
- name: NATS_URL
  value: {{ include "trellis.natsURL" $root | quote }}
{{- if and $v.config.natsCredsSecret $v.config.natsSeedsSecret }}
{{- fail "config.natsCredsSecret and config.natsSeedsSecret: set one (a service connects as one NATS user)" }}
{{- end }}
{{- if $v.config.natsCredsSecret }}
- name: NATS_CREDS
  value: /etc/nats/creds/creds
{{- end }}
{{- if $v.config.natsSeedsSecret }}
- name: NATS_NKEY_SEED_FILE
  value: /etc/nats/seed/seed
{{- end }}
{{- if $v.config.natsCASecret }}
- name: NATS_TLS_CA_FILE
  value: /etc/nats/ca/ca.crt
{{- end }}
{{- if $v.config.httpsSecret }}
- name: TLS_CERT_FILE
  value: /etc/trellis/tls/tls.crt
- name: TLS_KEY_FILE
  value: /etc/trellis/tls/tls.key
{{- end }}
{{- if and (has .name (list "intake" "billing" "notification")) $v.config.fieldKeysSecret }}
- name: FIELD_KEYS
  valueFrom: { secretKeyRef: { name: {{ $v.config.fieldKeysSecret }}, key: {{ .name }}-keys } }
- name: FIELD_HASH_KEY
  valueFrom: { secretKeyRef: { name: {{ $v.config.fieldKeysSecret }}, key: {{ .name }}-hash-key } }
{{- end }}
- name: NATS_STREAM_REPLICAS
  value: {{ $v.config.streamReplicas | quote }}
- name: NATS_STREAM_STORAGE
  value: {{ $v.config.streamStorage | quote }}
- name: AUTH_JWKS_URL
  value: {{ $v.config.auth.jwksURL | quote }}
- name: AUTH_ISSUER
  value: {{ $v.config.auth.issuer | quote }}
- name: AUTH_AUDIENCE
  value: {{ $v.config.auth.audience | quote }}
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: SHUTDOWN_TIMEOUT
  value: {{ $v.config.shutdownTimeout | quote }}
{{- if $v.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.config.otlpEndpoint | quote }}
{{- end }}
{{- range $k, $val := .svc.env }}
{{- if and (eq $.name "dashboard") (eq $k "BILLING_URL") (not $val) }}
- name: BILLING_URL
  value: {{ printf "http://%s:%v" (include "trellis.name" (dict "root" $root "name" "billing")) $v.services.billing.port | quote }}
{{- else }}
- name: {{ $k }}
  value: {{ $val | quote }}
{{- end }}
{{- end }}
{{- range $k, $ref := .svc.secretEnv }}
- name: {{ $k }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret }}
      key: {{ $ref.key }}
{{- end }}
{{- end -}}

{{- define "trellis.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "trellis.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}
