{{- /*
Mutual TLS on strata-stored's management API (values: managementTls). Each component mounts one
kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt: what cert-manager writes for a Certificate)
at /etc/strata/management-tls; the binaries re-read the files when the kubelet updates the Secret,
so a renewed certificate needs no restart. managementTls.crlSecret (key ca.crl) is mounted for
every component: the devices check client certificates against it per call, the clients the
devices' server certificates per connection. Without managementTls.enabled every component runs
with --insecure (plaintext, no authentication: the management port must then be unreachable to
anyone but the operator and the CSI controller).

  strata.managementTls.args      (dict "root" $ "secret" NAME "server" BOOL)  container args
  strata.managementTls.mounts    (dict "root" $ "server" BOOL)                volumeMounts entries
  strata.managementTls.volumes   (dict "root" $ "secret" NAME "server" BOOL)  volumes entries
*/}}
{{- define "strata.managementTls.args" -}}
{{- $t := .root.Values.managementTls -}}
{{- if $t.enabled }}
- --tls-cert=/etc/strata/management-tls/tls.crt
- --tls-key=/etc/strata/management-tls/tls.key
{{- if .server }}
- --tls-client-ca=/etc/strata/management-tls/ca.crt
{{- if $t.crlSecret }}
- --tls-crl=/etc/strata/management-crl/ca.crl
{{- end }}
{{- if $t.authzConfigMap }}
- --authz=/etc/strata/management-authz/authz.json
{{- end }}
{{- else }}
- --tls-ca=/etc/strata/management-tls/ca.crt
{{- if $t.crlSecret }}
- --tls-crl=/etc/strata/management-crl/ca.crl
{{- end }}
{{- end }}
{{- else }}
- --insecure
{{- end }}
{{- end }}

{{- define "strata.managementTls.mounts" -}}
{{- $t := .root.Values.managementTls -}}
{{- if $t.enabled }}
- name: management-tls
  mountPath: /etc/strata/management-tls
  readOnly: true
{{- if $t.crlSecret }}
- name: management-crl
  mountPath: /etc/strata/management-crl
  readOnly: true
{{- end }}
{{- if and .server $t.authzConfigMap }}
- name: management-authz
  mountPath: /etc/strata/management-authz
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "strata.managementTls.volumes" -}}
{{- $t := .root.Values.managementTls -}}
{{- if $t.enabled }}
- name: management-tls
  secret:
    secretName: {{ .secret }}
{{- if $t.crlSecret }}
- name: management-crl
  secret:
    secretName: {{ $t.crlSecret }}
{{- end }}
{{- if and .server $t.authzConfigMap }}
- name: management-authz
  configMap:
    name: {{ $t.authzConfigMap }}
{{- end }}
{{- end }}
{{- end }}
