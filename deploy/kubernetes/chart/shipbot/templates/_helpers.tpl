{{/* The objects' name: the release's (install it as shipbot). */}}
{{- define "shipbot.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "shipbot.selectorLabels" -}}
app.kubernetes.io/name: shipbot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shipbot.labels" -}}
{{ include "shipbot.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "shipbot.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "shipbot.validate" -}}
{{- if not (has .Values.mode (list "socket" "http")) -}}
{{- fail (printf "mode: %q: use socket or http" .Values.mode) -}}
{{- end -}}
{{- if not .Values.existingSecret -}}
{{- fail "existingSecret: name the Secret holding shipbot's tokens and keys (deploy/kubernetes/README.md)" -}}
{{- end -}}
{{- end -}}
