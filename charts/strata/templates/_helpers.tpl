{{/* Names, labels, images and small computations shared by the templates. */}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RELEASE-strata, or RELEASE when it already says strata; trimmed so that suffixes fit in 63. */}}
{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "root" $ "component" "operator"). */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" .root }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: strata
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select a component's pods (immutable in a Deployment/DaemonSet selector). */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* The image of a Strata component: its own fields over the global image. Call with
     (dict "root" $ "image" .Values.operator.image). */}}
{{- define "strata.image" -}}
{{- $g := .root.Values.image -}}
{{- $c := .image | default dict -}}
{{- $repo := $c.repository | default $g.repository -}}
{{- $tag := $c.tag | default $g.tag | default .root.Chart.AppVersion -}}
image: {{ printf "%s:%s" $repo (toString $tag) | quote }}
imagePullPolicy: {{ $c.pullPolicy | default $g.pullPolicy }}
{{- end -}}

{{/* A sidecar's image. Call with the sidecar's values. */}}
{{- define "strata.sidecarImage" -}}
image: {{ printf "%s:%s" .image.repository (toString .image.tag) | quote }}
imagePullPolicy: {{ .image.pullPolicy }}
{{- end -}}

{{/* The CSI driver's name: fixed in strata-csi (kDriverName). */}}
{{- define "strata.csiDriverName" -}}block.csi.strata.io{{- end -}}

{{/* The StorageDevice name of a stored.devices entry. */}}
{{- define "strata.deviceName" -}}{{ .name | default .node }}{{- end -}}

{{/* "true" when any stored.devices entry has a zone: strata-csi then advertises topology. */}}
{{- define "strata.csiTopology" -}}
{{- $t := false -}}
{{- range .Values.stored.devices }}{{ if .zone }}{{ $t = true }}{{ end }}{{ end -}}
{{- if $t }}true{{ end -}}
{{- end -}}

{{/* Bytes of a size in strata-stored's syntax (100GiB, 2TiB, 500G, 4096). The schema has checked
     the syntax. Call with the string. */}}
{{- define "strata.sizeBytes" -}}
{{- $s := toString . -}}
{{- $num := regexFind "^[0-9]+" $s -}}
{{- $unit := trimPrefix $num $s -}}
{{- $mult := dict "" 1 "B" 1 "Ki" 1024 "KiB" 1024 "Mi" 1048576 "MiB" 1048576 "Gi" 1073741824 "GiB" 1073741824 "Ti" 1099511627776 "TiB" 1099511627776 "Pi" 1125899906842624 "PiB" 1125899906842624 "K" 1000 "KB" 1000 "M" 1000000 "MB" 1000000 "G" 1000000000 "GB" 1000000000 "T" 1000000000000 "TB" 1000000000000 "P" 1000000000000000 "PB" 1000000000000000 -}}
{{- if not (hasKey $mult $unit) -}}
{{- fail (printf "size %q: unknown unit %q" $s $unit) -}}
{{- end -}}
{{- mul (int64 $num) (int64 (get $mult $unit)) -}}
{{- end -}}

{{/* A number from values (YAML numbers arrive as float64) as plain decimal text: whole numbers as
     integers (a large float64 would print as 1.6e+13), fractions without an exponent (Go prints
     0.00002 as 2e-05, which YAML 1.1 readers take for a string). */}}
{{- define "strata.number" -}}
{{- $f := float64 . -}}
{{- if eq $f (floor $f) -}}
{{- int64 $f -}}
{{- else -}}
{{- $s := toString $f -}}
{{- if contains "e-" $s -}}
{{- $parts := splitList "e-" $s -}}
{{- $digits := replace "." "" (first $parts) | trimPrefix "-" -}}
{{- $sign := ternary "-" "" (hasPrefix "-" $s) -}}
{{- printf "%s0.%s%s" $sign (repeat (sub (int (last $parts)) 1 | int) "0") $digits -}}
{{- else -}}
{{- $s -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Checks across values that a JSON schema cannot express (validate.yaml includes it once); a
     failure stops the render with a message naming the field. */}}
{{- define "strata.validate" -}}
{{- $classes := dict -}}
{{- range $i, $t := .Values.stored.tiers -}}
{{- if hasKey $classes $t.class -}}
{{- fail (printf "stored.tiers[%d].class: %q appears twice (one tier per class)" $i $t.class) -}}
{{- end -}}
{{- $_ := set $classes $t.class true -}}
{{- end -}}
{{- $names := dict -}}
{{- range $i, $d := .Values.stored.devices -}}
{{- $n := include "strata.deviceName" $d -}}
{{- if hasKey $names $n -}}
{{- fail (printf "stored.devices[%d]: device name %q appears twice" $i $n) -}}
{{- end -}}
{{- $_ := set $names $n true -}}
{{- if not $d.tiers -}}
{{- range $j, $t := $.Values.stored.tiers -}}
{{- if not $t.capacity -}}
{{- fail (printf "stored.devices[%d] (%s) has no tiers of its own, so it takes stored.tiers, and stored.tiers[%d].capacity is not set: a StorageDevice needs capacityBytes per tier (set the capacity, or give the device its tiers)" $i $n $j) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (include "strata.csiTopology" .) (not .Values.csi.node.zones) .Values.csi.enabled -}}
{{- fail "stored.devices: a device has a zone, so strata-csi advertises topology and volumes carry their device's zone; csi.node.zones must then list the zones and their nodes (nodes without a zone could never use such volumes)" -}}
{{- end -}}
{{- $sc := dict -}}
{{- range $i, $c := .Values.storageClasses -}}
{{- if hasKey $sc $c.name -}}
{{- fail (printf "storageClasses[%d].name: %q appears twice" $i $c.name) -}}
{{- end -}}
{{- $_ := set $sc $c.name true -}}
{{- if and $c.device (not (hasKey $names $c.device)) -}}
{{- fail (printf "storageClasses[%d].device: %q is not a stored.devices name" $i $c.device) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.operator.enabled (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection.enabled) -}}
{{- fail "operator.replicas > 1 needs operator.leaderElection.enabled: two operators would act at once" -}}
{{- end -}}
{{- with .Values.operator.leaderElection -}}
{{- if not (and (gt (float64 .leaseDuration) (float64 .renewDeadline)) (gt (float64 .renewDeadline) (float64 .retryPeriod))) -}}
{{- fail "operator.leaderElection: need leaseDuration > renewDeadline > retryPeriod" -}}
{{- end -}}
{{- end -}}
{{- end -}}
