{{/* Mutual TLS on the replication streams (values: tls; docs/DEPLOY.md, "TLS"). */}}

{{/* The Secret every node mounts: the user's, or the one tls-secret.yaml makes. */}}
{{- define "rlog.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" .Release.Name) -}}
{{- end }}

{{/* Environment of a node's container; the master also checks the sentinels' name. */}}
{{- define "rlog.tlsEnv" -}}
{{- if .root.Values.tls.enabled }}
{{- $own := and .master (ne .root.Values.tls.masterName "") }}
- name: TLS_CA_FILE
  value: /etc/rlog-tls/ca.crt
- name: TLS_CERT_FILE
  value: {{ ternary "/etc/rlog-tls/master.crt" "/etc/rlog-tls/tls.crt" $own }}
- name: TLS_KEY_FILE
  value: {{ ternary "/etc/rlog-tls/master.key" "/etc/rlog-tls/tls.key" $own }}
{{- if .master }}
- name: TLS_SERVER_NAME
  value: {{ .root.Values.tls.serverName | quote }}
{{- else if .root.Values.tls.masterName }}
- name: TLS_MASTER_NAME
  value: {{ .root.Values.tls.masterName | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rlog.tlsVolumeMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/rlog-tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "rlog.tlsVolume" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "rlog.tlsSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- end }}
