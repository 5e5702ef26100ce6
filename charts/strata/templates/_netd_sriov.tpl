{{/*
strata-netd's SR-IOV device plugin (values `sriov`, netd/README.md), included by netd.yaml:
  args:          {{- include "strata.netd.sriov.args" $ | trim | nindent 12 }}
  volumeMounts:  {{- include "strata.netd.sriov.volumeMounts" $ | trim | nindent 12 }}
  volumes:       {{- include "strata.netd.sriov.volumes" $ | trim | nindent 8 }}
Each renders nothing when sriov.enabled is false or no pool is set.
*/}}
{{- define "strata.netd.sriov.on" -}}
{{- if and .Values.sriov.enabled .Values.sriov.pools }}true{{ end -}}
{{- end }}

{{- define "strata.netd.sriov.args" -}}
{{- if include "strata.netd.sriov.on" . }}
{{- range .Values.sriov.pools }}
- --sriov-pool={{ .name }}={{ join "," .pfs }}
{{- end }}
- --sriov-resource-prefix={{ .Values.sriov.resourcePrefix }}
- --sriov-health-interval={{ .Values.sriov.healthIntervalSeconds }}
- --device-plugin-dir=/var/lib/kubelet/device-plugins
{{- end }}
{{- end }}

{{- define "strata.netd.sriov.volumeMounts" -}}
{{- if include "strata.netd.sriov.on" . }}
# The plugins' sockets and the kubelet's kubelet.sock; the directory (not the socket) so a
# restarted kubelet's new socket is seen.
- name: device-plugins
  mountPath: /var/lib/kubelet/device-plugins
{{- end }}
{{- end }}

{{- define "strata.netd.sriov.volumes" -}}
{{- if include "strata.netd.sriov.on" . }}
- name: device-plugins
  hostPath:
    path: {{ .Values.sriov.devicePluginDir }}
    type: Directory
{{- end }}
{{- end }}
