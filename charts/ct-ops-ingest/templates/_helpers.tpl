{{/* Chart name, overridable. */}}
{{- define "ingest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "ingest.fullname" -}}
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

{{- define "ingest.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ingest.labels" -}}
helm.sh/chart: {{ include "ingest.chart" . }}
{{ include "ingest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ct-ops
{{- end }}

{{/* Service names: gRPC (agents), HTTP (probes, metrics, JWKS), headless (client-side balancing). */}}
{{- define "ingest.grpcServiceName" -}}{{ include "ingest.fullname" . }}{{- end }}
{{- define "ingest.httpServiceName" -}}{{ printf "%s-http" (include "ingest.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end }}
{{- define "ingest.headlessServiceName" -}}{{ printf "%s-headless" (include "ingest.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end }}

{{- define "ingest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ingest.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt / tls.key for the gRPC port. */}}
{{- define "ingest.tlsSecretName" -}}
{{- if eq .Values.tls.source "existingSecret" }}
{{- required "tls.existingSecret is required when tls.source is existingSecret" .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "ingest.fullname" .) }}
{{- end }}
{{- end }}

{{/* Issuer of the serving certificate: the dev CA chain when selfSignedCA, else the configured issuerRef. */}}
{{- define "ingest.certIssuerRef" -}}
{{- if .Values.tls.certManager.selfSignedCA.enabled }}
name: {{ printf "%s-ca" (include "ingest.fullname" .) }}
kind: Issuer
group: cert-manager.io
{{- else }}
name: {{ required "tls.certManager.issuerRef.name is required (or enable tls.certManager.selfSignedCA for development)" .Values.tls.certManager.issuerRef.name }}
kind: {{ .Values.tls.certManager.issuerRef.kind }}
group: {{ .Values.tls.certManager.issuerRef.group }}
{{- end }}
{{- end }}

{{- define "ingest.jwtKeySecretName" -}}
{{- default (printf "%s-jwt-key" (include "ingest.fullname" .)) .Values.jwtKey.secret.name }}
{{- end }}

{{- define "ingest.databaseSecretName" -}}
{{- default (printf "%s-database" (include "ingest.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{/* DNS names of every Service, short to fully qualified. */}}
{{- define "ingest.serviceDnsNames" -}}
{{- $ns := .Release.Namespace }}
{{- $domain := .Values.clusterDomain }}
{{- $services := list (include "ingest.grpcServiceName" .) (include "ingest.httpServiceName" .) }}
{{- if .Values.service.headless.enabled }}{{- $services = append $services (include "ingest.headlessServiceName" .) }}{{- end }}
{{- range $services }}
- {{ . }}
- {{ . }}.{{ $ns }}
- {{ . }}.{{ $ns }}.svc
- {{ . }}.{{ $ns }}.svc.{{ $domain }}
{{- end }}
{{- if .Values.service.headless.enabled }}
- "*.{{ include "ingest.headlessServiceName" . }}.{{ $ns }}.svc.{{ $domain }}"
{{- end }}
{{- end }}

{{/* Seconds the pod needs to stop: preStop sleep, then the service's drain budget, then a margin for the hard stop. */}}
{{- define "ingest.terminationGracePeriodSeconds" -}}
{{- $minimum := add .Values.lifecycle.preStopSleepSeconds .Values.config.shutdownGraceSeconds }}
{{- if .Values.lifecycle.terminationGracePeriodSeconds }}
{{- if le (int .Values.lifecycle.terminationGracePeriodSeconds) (int $minimum) }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%v) must exceed lifecycle.preStopSleepSeconds + config.shutdownGraceSeconds (%v)" .Values.lifecycle.terminationGracePeriodSeconds $minimum) }}
{{- end }}
{{- .Values.lifecycle.terminationGracePeriodSeconds }}
{{- else }}
{{- add $minimum 10 }}
{{- end }}
{{- end }}
