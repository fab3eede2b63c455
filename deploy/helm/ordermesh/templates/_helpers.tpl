{{/* Name of everything this release makes for one service: <release>-ordermesh-<service> (or fullnameOverride). */}}
{{- define "ordermesh.fullname" -}}
{{- default (printf "%s-ordermesh" .Release.Name) .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "ordermesh.labels" -}}
app.kubernetes.io/name: ordermesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "service" $name). */}}
{{- define "ordermesh.selectorLabels" -}}
app.kubernetes.io/name: ordermesh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "ordermesh.image" -}}
{{ printf "%s-%s:%s" .root.Values.image.repository .service .root.Values.image.tag | quote }}
{{- end -}}

{{/* Annotations that make the ConfigMap and Secret exist before the pre-install/pre-upgrade init job. */}}
{{- define "ordermesh.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* The pod spec shared by a service's Deployment and its init Job; call with (dict "root" $ "service" $name "config" $config "command" list). */}}
{{- define "ordermesh.podSpec" -}}
{{- $root := .root -}}
{{- $fullname := include "ordermesh.fullname" $root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
securityContext: {{ toYaml $root.Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
{{- with $root.Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: {{ .service }}
    image: {{ include "ordermesh.image" . }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    {{- with .command }}
    command: {{ toYaml . | nindent 6 }}
    {{- end }}
    envFrom:
      - configMapRef:
          name: {{ $fullname }}-{{ .service }}
    {{- if not .command }}
    env:
      - name: ORDERMESH_INSTANCE_ID
        valueFrom: {fieldRef: {fieldPath: metadata.name}}
    {{- end }}
    securityContext: {{ toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - {name: secrets, mountPath: /etc/ordermesh/secrets, readOnly: true}
      - {name: tmp, mountPath: /tmp}
      {{- if $root.Values.kafka.caCert }}
      - {name: kafka-ca, mountPath: /etc/ordermesh/kafka-ca, readOnly: true}
      {{- end }}
    {{- if not .command }}
    ports:
      - {name: http, containerPort: {{ $root.Values.service.port }}, protocol: TCP}
    startupProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 5
      failureThreshold: 60
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 15
      timeoutSeconds: 3
      failureThreshold: 4
    readinessProbe:
      httpGet: {path: /readyz, port: http}
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 3
    resources: {{ toYaml (.config.resources | default $root.Values.resources) | nindent 6 }}
    {{- else }}
    resources: {{ toYaml $root.Values.init.resources | nindent 6 }}
    {{- end }}
volumes:
  - name: secrets
    projected:
      defaultMode: 0440
      sources:
        - secret: {name: {{ $fullname }}-{{ .service }}}
        {{- with .config.database.existingSecret }}
        - secret: {name: {{ . }}, items: [{key: DATABASE_URL, path: DATABASE_URL}]}
        {{- end }}
        {{- with $root.Values.kafka.existingSecret.name }}
        - secret: {name: {{ . }}, items: [{key: {{ $root.Values.kafka.existingSecret.key }}, path: KAFKA_SASL_PASSWORD}]}
        {{- end }}
  - name: tmp
    emptyDir: {sizeLimit: 64Mi}
  {{- if $root.Values.kafka.caCert }}
  - name: kafka-ca
    secret: {secretName: {{ $fullname }}-kafka-ca, defaultMode: 0444}
  {{- end }}
{{- end -}}
