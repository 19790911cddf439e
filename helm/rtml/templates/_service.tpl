{{/*
One RTML service: ServiceAccount, Deployment, Service, NetworkPolicy and
PodDisruptionBudget. Call with (dict "root" $ "name" "feature"); the service's
values block is .Values.<name>. The container runs `python -m services.<name>`,
exactly what `rtml up` runs locally. With "stage" (feature service only), the
objects are those of one stage: named <name>-<stage>, labelled with the stage,
and the container runs only that stage (RTML_FEATURE_STAGES).
*/}}
{{- define "rtml.appService" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $stage := .stage | default "" -}}
{{- $svc := index $root.Values $name -}}
{{- $fullname := printf "%s-%s" (include "rtml.fullname" $root) $name -}}
{{- if $stage }}{{ $fullname = printf "%s-%s" $fullname $stage }}{{ end -}}
{{- $ctx := dict "root" $root "component" $name "stage" $stage -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "rtml.componentLabels" $ctx | nindent 4 }}
automountServiceAccountToken: {{ $svc.automountServiceAccountToken | default false }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "rtml.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not (and $svc.autoscaling $svc.autoscaling.enabled) }}
  replicas: {{ if and $stage (hasKey ($svc.stageReplicas | default dict) $stage) }}{{ index $svc.stageReplicas $stage }}{{ else }}{{ $svc.replicas }}{{ end }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "rtml.selectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "rtml.componentLabels" $ctx | nindent 8 }}
      annotations:
        # Roll the pods when the settings change.
        checksum/settings: {{ include (print $root.Template.BasePath "/settings.yaml") $root | sha256sum }}
    spec:
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: {{ $svc.automountServiceAccountToken | default false }}
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "rtml.podSecurityContext" 10001 | nindent 8 }}
      containers:
        - name: {{ $name }}
          image: {{ include "rtml.image" (dict "root" $root "image" $svc.image) }}
          imagePullPolicy: {{ $root.Values.global.imagePullPolicy }}
          command: ["python", "-m", "services.{{ $name }}"]
          ports:
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
          {{- include "rtml.appEnv" $root | nindent 10 }}
            {{- if $stage }}
            - name: RTML_FEATURE_STAGES
              value: {{ $stage | quote }}
            {{- end }}
            {{- if $svc.submitsPipelineRuns }}
            # The image the Kubeflow pipeline steps run in: this chart's training image, which
            # the service passes to the pipeline it builds and submits (pipelines/runner.py submit()).
            - name: RTML_TRAINING_IMAGE
              value: {{ include "rtml.image" (dict "root" $root "image" $root.Values.training.image) | quote }}
            {{- end }}
          startupProbe:
            httpGet: {path: /livez, port: http}
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: {{ $svc.startupFailureThreshold }}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 3
          livenessProbe:
            httpGet: {path: /livez, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            preStop:
              # Keep serving while the endpoint removal propagates, then SIGTERM drains the rest.
              exec:
                {{- if $svc.drainOnStop }}
                command: ["python", "-m", "services.{{ $name }}.drain", "--seconds", "{{ $svc.preStopSleepSeconds }}"]
                {{- else }}
                command: ["sleep", "{{ $svc.preStopSleepSeconds }}"]
                {{- end }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- include "rtml.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: data
              mountPath: {{ $root.Values.settings.dataDir }}
      volumes:
        {{- include "rtml.tmpVolume" $root | nindent 8 }}
        - name: data
          emptyDir:
            sizeLimit: 2Gi
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "rtml.componentLabels" $ctx | nindent 4 }}
spec:
  type: {{ ($svc.service | default dict).type | default "ClusterIP" }}
  selector:
    {{- include "rtml.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.port }}
      targetPort: http
      protocol: TCP
      {{- with ($svc.service | default dict).nodePort }}
      nodePort: {{ . }}
      {{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "rtml.componentLabels" $ctx | nindent 4 }}
spec:
  {{- toYaml $svc.pdb | nindent 2 }}
  selector:
    matchLabels:
      {{- include "rtml.selectorLabels" $ctx | nindent 6 }}
{{- if $root.Values.global.networkPolicies }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "rtml.componentLabels" $ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "rtml.selectorLabels" $ctx | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if $svc.publicIngress }}
    # The scoring API: any client that can route to the Service.
    - ports:
        - {port: {{ $svc.port }}, protocol: TCP}
    {{- else }}
    - from:
        - {{- include "rtml.releasePods" $root | nindent 10 }}
      ports:
        - {port: {{ $svc.port }}, protocol: TCP}
    {{- end }}
    {{- if $root.Values.serviceMonitor.enabled }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $root.Values.serviceMonitor.prometheusNamespace }}
      ports:
        - {port: {{ $svc.port }}, protocol: TCP}
    {{- end }}
  egress:
    {{- include "rtml.dnsEgress" $root | nindent 4 }}
    {{- include "rtml.storeEgress" $root | nindent 4 }}
    {{- if $svc.submitsPipelineRuns }}
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $root.Values.kubeflow.namespace }}
      ports:
        - {port: {{ $root.Values.kubeflow.apiPort }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end -}}
