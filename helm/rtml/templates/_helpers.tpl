{{/* Names: "<release>" when the release is called like the chart, else "<release>-rtml". */}}
{{- define "rtml.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rtml.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: rtml
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "rtml.labels" -}}
{{ include "rtml.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "feature"), plus
"stage" for one stage of a feature service split into a Deployment per stage. */}}
{{- define "rtml.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .stage }}
app.kubernetes.io/component: {{ . }}-stage
{{- end }}
{{- end -}}

{{- define "rtml.componentLabels" -}}
{{ include "rtml.commonLabels" .root }}
{{ include "rtml.selectorLabels" . }}
{{- end -}}

{{/* Every pod of this release, for allow rules between components. */}}
{{- define "rtml.releasePods" -}}
podSelector:
  matchLabels:
    app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* An RTML image; call with (dict "root" $ "image" .Values.feature.image). */}}
{{- define "rtml.image" -}}
{{- $repo := .image.repository -}}
{{- if .root.Values.global.imageRegistry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .root.Values.global.imageRegistry) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* A third-party image pinned in values. */}}
{{- define "rtml.thirdPartyImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Restricted Pod Security Standard: pod level. Call with the uid the image runs as. */}}
{{- define "rtml.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted Pod Security Standard: container level. */}}
{{- define "rtml.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "rtml.kafkaBootstrap" -}}
{{- .Values.settings.kafkaBootstrap | default (printf "%s-kafka.%s.svc.cluster.local:9092" (include "rtml.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{- define "rtml.s3Endpoint" -}}
{{- .Values.settings.s3Endpoint | default (printf "http://%s-minio.%s.svc.cluster.local:9000" (include "rtml.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{- define "rtml.kfpHost" -}}
{{- .Values.settings.kfpHost | default (printf "http://ml-pipeline.%s.svc.cluster.local:%v" .Values.kubeflow.namespace .Values.kubeflow.apiPort) -}}
{{- end -}}

{{- define "rtml.redisUrl" -}}
{{- .Values.settings.redisUrl | default (printf "%s-redis.%s.svc.cluster.local:6379" (include "rtml.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{- define "rtml.feastDataUri" -}}
{{- .Values.settings.feastDataUri | default (printf "s3://%s/feast" .Values.minio.buckets.feast) -}}
{{- end -}}

{{- define "rtml.modelRegistryUri" -}}
{{- .Values.settings.modelRegistryUri | default (printf "s3://%s/registry" .Values.minio.buckets.models) -}}
{{- end -}}

{{/* A secret value that is generated once and then kept: reuse what the cluster holds. */}}
{{- define "rtml.persistentSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if .value -}}
{{- .value -}}
{{- else if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* Environment every RTML container shares: the RTML_* settings plus library config derived from them. */}}
{{- define "rtml.appEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "rtml.fullname" . }}-settings
  - secretRef:
      name: {{ include "rtml.fullname" . }}-settings
env:
  # The root filesystem is read-only: libraries that write caches get /tmp.
  - name: HOME
    value: /tmp
  - name: BENTOML_HOME
    value: /tmp/bentoml
  - name: MPLCONFIGDIR
    value: /tmp/matplotlib
  # boto3/s3fs/Feast read S3 credentials and endpoint from the standard AWS variables.
  - name: AWS_ACCESS_KEY_ID
    valueFrom:
      secretKeyRef:
        name: {{ include "rtml.fullname" . }}-minio
        key: root-user
  - name: AWS_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ include "rtml.fullname" . }}-minio
        key: root-password
  - name: AWS_DEFAULT_REGION
    value: us-east-1
  # RTML passes RTML_S3_ENDPOINT to its own clients; this covers libraries that only read the AWS variable.
  - name: AWS_ENDPOINT_URL
    value: {{ include "rtml.s3Endpoint" . | quote }}
{{- end -}}

{{/* Egress every pod needs: cluster DNS. */}}
{{- define "rtml.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.global.dnsNamespace }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{/* Egress of an RTML service or job to the backing stores of this release. */}}
{{- define "rtml.storeEgress" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "rtml.selectorLabels" (dict "root" . "component" "kafka") | nindent 10 }}
  ports:
    - {port: 9092, protocol: TCP}
- to:
    - podSelector:
        matchLabels:
          {{- include "rtml.selectorLabels" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - {port: 6379, protocol: TCP}
- to:
    - podSelector:
        matchLabels:
          {{- include "rtml.selectorLabels" (dict "root" . "component" "minio") | nindent 10 }}
  ports:
    - {port: 9000, protocol: TCP}
{{- end -}}

{{/* Ingress to a backing store: this release's pods and the Kubeflow pipeline pods. */}}
{{- define "rtml.storeIngress" -}}
- from:
    - {{- include "rtml.releasePods" .root | nindent 6 }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .root.Values.kubeflow.namespace }}
  ports:
    - {port: {{ .port }}, protocol: TCP}
{{- end -}}

{{- define "rtml.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}
