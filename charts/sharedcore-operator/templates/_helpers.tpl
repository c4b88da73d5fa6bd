{{/* Names: <release>-sharedcore-operator, or the release name when it already says sharedcore-operator. */}}
{{- define "sharedcore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sharedcore-operator.fullname" -}}
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

{{/* The selector: stable for the release's lifetime (a Deployment's selector is immutable). */}}
{{- define "sharedcore-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sharedcore-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The site label is what the ServiceMonitor turns into every series' `site` label. */}}
{{- define "sharedcore-operator.labels" -}}
{{ include "sharedcore-operator.selectorLabels" . }}
app.kubernetes.io/part-of: sharedcore
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
sharedcore.danang.gov.vn/site: {{ .Values.site }}
{{- end }}

{{- define "sharedcore-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}
