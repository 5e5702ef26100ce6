#!/usr/bin/env bash
# The Helm chart (charts/strata) against a real Helm and the test control plane (kube-apiserver
# 1.20, no nodes: workloads are created and validated, pods never run):
#   1. helm lint, default values and tests/chart/values-nondefault.yaml;
#   2. helm template both ways, the rendered objects checked by check_manifests.py;
#   3. the default manifests rendered for this apiserver and accepted by it (server-side dry run);
#   4. helm install (non-default values) into a fresh namespace: every object exists, the CRDs are
#      Established, the ServiceAccounts can do what their components call and no more;
#   5. helm upgrade with changed values: a new StorageClass, new replica counts, the CNI DaemonSet
#      and a StorageDevice gone;
#   6. helm uninstall: nothing labelled with the release is left, the CRDs stay;
#   7. bad values fail helm install / helm template with the schema's message naming the field.
#
# Usage: chart_test.sh KUBECONFIG
# Gets helm from tests/testenv/helm.sh (installed on first use). Prints PASS/FAIL per check and
# "N passed, N failed"; exits 1 if anything failed. Release and namespace names are unique per
# run; everything the run created is removed on exit.
set -uo pipefail

if (($# != 1)); then
  echo "usage: $0 KUBECONFIG" >&2
  exit 2
fi
export KUBECONFIG=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/assert.sh
. "$repo/tests/lib/assert.sh"

readonly kChart="$repo/charts/strata"
readonly kNonDefault="$here/values-nondefault.yaml"
readonly kDriver=block.csi.strata.io
readonly kNamespacePrefix=strata-chart-test-
readonly kCrds=(bandwidthpolicies.strata.io deduppolicies.strata.io maintenancewindows.strata.io
  storagedevices.strata.io tieringpolicies.strata.io virtualnetworkconfigs.strata.io)

helm_bin=$(bash "$repo/tests/testenv/helm.sh" path) || {
  echo "FAIL: no helm (tests/testenv/helm.sh path failed)"
  exit 1
}
run_id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
release=chart-$run_id
ns=$kNamespacePrefix$run_id
work=$(mktemp -d /tmp/strata-chart-test.XXXXXX)
# Helm's own state (repositories, cache) stays inside the run.
export HELM_CONFIG_HOME="$work/helm/config" HELM_CACHE_HOME="$work/helm/cache" \
  HELM_DATA_HOME="$work/helm/data"
unset HELM_NAMESPACE HELM_KUBECONTEXT

helm() { "$helm_bin" "$@"; }
kc() { kubectl --request-timeout=30s "$@"; }
quiet() { "$@" >/dev/null; } # a check's command whose output says nothing the PASS line does not

# A namespace deleted on a control plane without kube-controller-manager stays Terminating: once
# helm has removed its contents, finalize it as the namespace controller would.
delete_namespace() {
  kc delete namespace "$1" --wait=false --ignore-not-found >/dev/null 2>&1 || return 0
  kc get namespace "$1" -o json 2>/dev/null | jq '.spec.finalizers = []' |
    kc replace --raw "/api/v1/namespaces/$1/finalize" -f - >/dev/null 2>&1 || true
}
namespace_gone() { ! kc get namespace "$1" >/dev/null 2>&1; }

cleanup() {
  if helm status "$release" -n "$ns" >/dev/null 2>&1; then
    helm uninstall "$release" -n "$ns" >/dev/null 2>&1
  fi
  delete_namespace "$ns"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# An earlier run killed before its cleanup leaves a release whose cluster-scoped objects (the
# CSIDriver) would collide with this run's.
while read -r old_ns old_release; do
  [[ -n $old_release ]] || continue
  echo "removing release $old_release left in $old_ns by an interrupted run"
  helm uninstall "$old_release" -n "$old_ns" >/dev/null 2>&1
  delete_namespace "$old_ns"
done < <(helm list -A -o json 2>/dev/null |
  jq -r --arg p "$kNamespacePrefix" '.[] | select(.namespace | startswith($p)) | "\(.namespace) \(.name)"')

echo "== helm lint ($("$helm_bin" version --short))"
check "helm lint --strict (default values)" helm lint --strict "$kChart"
check "helm lint --strict (values-nondefault.yaml)" helm lint --strict "$kChart" -f "$kNonDefault"

echo "== helm template"
check "helm template (default values)" \
  eval 'helm template "$release" "$kChart" -n "$ns" >"$work/default.yaml"'
check "rendered default objects are as expected" \
  python3 "$here/check_manifests.py" "$work/default.yaml" default "$release"
# The ServiceMonitor and VolumeSnapshotClass APIs are not served by the test apiserver: tell
# template they are, to render those objects.
check "helm template (values-nondefault.yaml, monitoring.coreos.com/v1, snapshot.storage.k8s.io/v1)" \
  eval 'helm template "$release" "$kChart" -n "$ns" -f "$kNonDefault" \
    --api-versions monitoring.coreos.com/v1/ServiceMonitor \
    --api-versions snapshot.storage.k8s.io/v1/VolumeSnapshotClass >"$work/nondefault.yaml"'
check "rendered non-default objects are as expected" \
  python3 "$here/check_manifests.py" "$work/nondefault.yaml" nondefault "$release"

echo "== the default manifests on the apiserver"
check "create namespace $ns" quiet kc create namespace "$ns" -o name
# --validate: rendered with this apiserver's capabilities (policy/v1beta1 on 1.20).
check "helm template --validate against the apiserver" \
  eval 'helm template "$release" "$kChart" -n "$ns" --validate >"$work/default-server.yaml"'
check "default objects: PodDisruptionBudget is policy/v1beta1 on Kubernetes 1.20" \
  grep -qx 'apiVersion: policy/v1beta1' "$work/default-server.yaml"
dry_run_default() {
  local out
  out=$(kc create --dry-run=server -n "$ns" -f "$work/default-server.yaml" 2>&1) && return 0
  printf '  %s\n' "$out" | grep -v '(server dry run)' >&2
  return 1
}
check "every default object is accepted by the apiserver (server-side dry run)" dry_run_default

echo "== helm install (values-nondefault.yaml) into $ns"
check "helm install $release" \
  eval 'helm install "$release" "$kChart" -n "$ns" -f "$kNonDefault" --wait=false >"$work/install.out" 2>&1 \
    || { cat "$work/install.out" >&2; false; }'
helm get manifest "$release" -n "$ns" >"$work/installed.yaml" 2>/dev/null
expected=$(grep -c '^kind:' "$work/installed.yaml")
check "the release has objects ($expected)" test "$expected" -gt 20
all_exist() {
  local got
  got=$(kc get -n "$ns" -f "$work/installed.yaml" -o name 2>/dev/null | wc -l)
  [[ $got == "$expected" ]]
}
check "every object of the release exists ($expected)" wait_until 30 all_exist
for crd in "${kCrds[@]}"; do
  check "CRD $crd is Established" quiet kc wait --for=condition=Established --timeout=60s "crd/$crd"
done
check "no ServiceMonitor: monitoring.coreos.com/v1 is not served" \
  bash -c '! grep -q "^kind: ServiceMonitor" "$0"' "$work/installed.yaml"
check "the installed PodDisruptionBudget is policy/v1beta1 (Kubernetes 1.20)" \
  eval 'quiet kc get poddisruptionbudgets.v1beta1.policy -n "$ns" "$release-strata-operator" -o name'
kc get storagedevice chart-test-dev-1 -o json >"$work/dev1.json" 2>/dev/null
check "StorageDevice chart-test-dev-1 as the apiserver stored it" \
  quiet jq -e '.spec.endpoint == "10.0.0.5:17400" and .spec.desiredState == "Online"
    and .spec.tiers[2].capacityBytes == 4000000000000 and .spec.tiers[2].pricePerGiBHour == 0.00002' \
  "$work/dev1.json"
check "CSIDriver $kDriver" quiet kc get csidriver "$kDriver" -o name

# What each ServiceAccount may do, asked of the apiserver's RBAC (impersonation). The authorizer
# learns of new bindings through a watch: the positive checks wait for it, boundedly.
sa() { echo "system:serviceaccount:$ns:$release-strata-$1"; }
can() { # can SA VERB RESOURCE [ARGS...]: the answer is yes
  [[ $(kc auth can-i --as="$(sa "$1")" "${@:2}" 2>/dev/null) == yes ]]
}
cannot() { ! can "$@"; }
# sar_allows SA VERB GROUP RESOURCE [SUBRESOURCE]: a SubjectAccessReview with the group and resource
# spelled out, for kinds this apiserver does not serve (kubectl auth can-i cannot map them and
# answers no): the snapshot CRDs are the cluster's, not the chart's.
sar_allows() {
  kc create -o json -f - <<JSON 2>/dev/null | jq -e '.status.allowed == true' >/dev/null
{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
 "spec": {"user": "$(sa "$1")", "groups": ["system:serviceaccounts", "system:serviceaccounts:$ns",
          "system:authenticated"],
          "resourceAttributes": {"verb": "$2", "group": "$3", "resource": "$4", "subresource": "${5:-}"}}}
JSON
}
check "operator: list and watch StorageDevices" \
  wait_until 15 eval 'can operator list storagedevices.strata.io && can operator watch storagedevices.strata.io'
check "operator: update StorageDevice status" \
  wait_until 15 can operator update storagedevices.strata.io --subresource=status
check "operator: create and patch Events in default" \
  wait_until 15 eval 'can operator create events -n default && can operator patch events -n default'
check "operator: get and update its Lease, create Leases in $ns" \
  wait_until 15 eval 'can operator get leases/strata-operator-test -n "$ns" &&
    can operator update leases/strata-operator-test -n "$ns" && can operator create leases -n "$ns"'
check "operator: not another Lease, not StorageDevice spec or deletion, not Secrets" \
  eval 'cannot operator update leases/other -n "$ns" && cannot operator update storagedevices.strata.io &&
    cannot operator delete storagedevices.strata.io && cannot operator get secrets -n "$ns"'
check "CSI controller: create PersistentVolumes, patch VolumeAttachment status and PVC status" \
  wait_until 15 eval 'can csi-controller create persistentvolumes &&
    can csi-controller patch volumeattachments.storage.k8s.io --subresource=status &&
    can csi-controller patch persistentvolumeclaims --subresource=status -n default'
check "CSI controller: its sidecars' Leases only" \
  wait_until 15 eval 'can csi-controller update leases/block-csi-strata-io -n "$ns" &&
    can csi-controller update leases/external-attacher-leader-block-csi-strata-io -n "$ns" &&
    can csi-controller update leases/external-resizer-block-csi-strata-io -n "$ns" &&
    can csi-controller update leases/external-snapshotter-leader-block-csi-strata-io -n "$ns" &&
    cannot csi-controller update leases/strata-operator-test -n "$ns"'
check "CSI controller: reads StorageDevices (--devices-from-cluster), never writes them" \
  wait_until 15 eval 'can csi-controller watch storagedevices.strata.io &&
    cannot csi-controller update storagedevices.strata.io'
check "CSI controller: csi-snapshotter updates VolumeSnapshotContents and their status" \
  wait_until 15 eval 'sar_allows csi-controller update snapshot.storage.k8s.io volumesnapshotcontents &&
    sar_allows csi-controller patch snapshot.storage.k8s.io volumesnapshotcontents status &&
    sar_allows csi-controller watch snapshot.storage.k8s.io volumesnapshotclasses &&
    sar_allows csi-controller list snapshot.storage.k8s.io volumesnapshots &&
    ! sar_allows csi-controller delete snapshot.storage.k8s.io volumesnapshotcontents'
check "CSI controller: not Secrets" eval 'cannot csi-controller get secrets -n "$ns"'
check "CSI node, strata-stored, CNI: no API access at all" \
  eval 'cannot csi-node get nodes && cannot stored list pods -n "$ns" && cannot cni get configmaps -n "$ns"'

echo "== helm upgrade with changed values"
cat >"$work/upgrade.yaml" <<'YAML'
operator:
  replicas: 1
csi:
  controller:
    replicas: 3
storageClasses:
  - name: chart-test-ssd
    tier: ssd
    dedup: false
    reclaimPolicy: Retain
    volumeBindingMode: Immediate
    allowVolumeExpansion: false
    default: true
  - name: chart-test-sas-dedup
    tier: sas
    dedup: true
    owner: team-a
    device: chart-test-dev-1
    fsType: xfs
    mountOptions: [noatime]
  - name: chart-test-sata-new
    tier: sata
    dedup: true
stored:
  devices:
    - node: worker-1
      name: chart-test-dev-1
      endpoint: 10.0.0.5:17400
      region: eu-west-1
      jurisdiction: EU
      zone: zone-a
cni:
  enabled: false
YAML
check "helm upgrade $release" \
  eval 'helm upgrade "$release" "$kChart" -n "$ns" -f "$kNonDefault" -f "$work/upgrade.yaml" \
    --wait=false >"$work/upgrade.out" 2>&1 || { cat "$work/upgrade.out" >&2; false; }'
check "release at revision 2" \
  eval '[[ $(helm status "$release" -n "$ns" -o json | jq .version) == 2 ]]'
check "the new StorageClass chart-test-sata-new exists" \
  wait_until 30 quiet kc get storageclass chart-test-sata-new -o name
replicas_are() { [[ $(kc get deployment -n "$ns" "$1" -o jsonpath='{.spec.replicas}') == "$2" ]]; }
check "operator Deployment scaled to 1" wait_until 30 replicas_are "$release-strata-operator" 1
check "CSI controller Deployment scaled to 3" \
  wait_until 30 replicas_are "$release-strata-csi-controller" 3
gone() { ! kc get "$@" >/dev/null 2>&1; }
check "the CNI DaemonSet is gone (cni.enabled false)" \
  wait_until 30 gone daemonset -n "$ns" "$release-strata-cni"
check "StorageDevice chart-test-dev-2 is gone (no longer listed)" \
  wait_until 30 gone storagedevice chart-test-dev-2
check "the CSI controller lost --device for chart-test-dev-2" \
  eval '! kc get deployment -n "$ns" "$release-strata-csi-controller" -o json |
    jq -e ".spec.template.spec.containers[0].args | index(\"--device=chart-test-dev-2=[fd00::2]:17400\")" >/dev/null'
helm get manifest "$release" -n "$ns" >"$work/upgraded.yaml" 2>/dev/null
kinds=$(awk '$1 == "kind:" { print tolower($2) }' "$work/installed.yaml" "$work/upgraded.yaml" |
  sort -u | paste -sd, -)

echo "== helm uninstall"
check "helm uninstall $release" eval 'helm uninstall "$release" -n "$ns" >/dev/null'
left_over() {
  kc get "$kinds" -A -l "app.kubernetes.io/instance=$release" -o name 2>/dev/null
  kc get secrets -n "$ns" -l "owner=helm,name=$release" -o name 2>/dev/null
}
nothing_left() { [[ -z $(left_over) ]]; }
if wait_until 30 nothing_left; then
  pass "nothing labelled app.kubernetes.io/instance=$release is left ($kinds), nor Helm's release record"
else
  fail "left after uninstall: $(left_over | paste -sd' ' -)"
fi
crds_kept() { kc get "${kCrds[@]/#/crd/}" -o name >/dev/null; }
check "the CRDs stay installed (Helm never deletes crds/)" crds_kept

echo "== bad values fail with the schema's message"
# expect_rejected DESCRIPTION ERE VALUES_YAML: helm template and helm install must both fail with
# an error matching ERE; the install must leave no release behind.
expect_rejected() {
  local what=$1 want=$2 file="$work/bad.yaml" out
  printf '%s\n' "$3" >"$file"
  if out=$(helm template "$release-bad" "$kChart" -n "$ns" -f "$file" 2>&1); then
    fail "$what: helm template accepted it"
  else
    check "$what: helm template fails naming it" grep -qE -- "$want" <<<"$out" ||
      printf '  the error was: %s\n' "$out"
  fi
  if out=$(helm install "$release-bad" "$kChart" -n "$ns" -f "$file" 2>&1); then
    fail "$what: helm install accepted it"
    helm uninstall "$release-bad" -n "$ns" >/dev/null 2>&1
  else
    check "$what: helm install fails naming it" grep -qE -- "$want" <<<"$out" ||
      printf '  the error was: %s\n' "$out"
    check "$what: no release left" bash -c '! "$0" status "$1" -n "$2" >/dev/null 2>&1' \
      "$helm_bin" "$release-bad" "$ns"
  fi
}
expect_rejected "tier class nvme" \
  'stored\.tiers\.0\.class: .*must be one of the following: "ssd", "sas", "sata"' \
  $'stored:\n  tiers:\n    - {class: nvme, hostPath: /var/lib/strata/nvme}'
expect_rejected "operator.replicas 0" \
  'operator\.replicas: Must be greater than or equal to 1' \
  $'operator:\n  replicas: 0'
expect_rejected "a typo'd key (operator.replica)" \
  'operator: Additional property replica is not allowed' \
  $'operator:\n  replica: 3'
expect_rejected "a StorageClass with dedup \"yes\"" \
  'storageClasses\.0\.dedup: Invalid type\. Expected: boolean, given: string' \
  $'storageClasses:\n  - {name: x, tier: ssd, dedup: "yes"}'
expect_rejected "a port out of range" \
  'stored\.grpcPort: Must be less than or equal to 65535' \
  $'stored:\n  grpcPort: 70000'
expect_rejected "a device without capacities to register" \
  'stored\.devices\[0\] \(w1\) has no tiers of its own.*stored\.tiers\[0\]\.capacity is not set' \
  $'stored:\n  devices:\n    - {node: w1, endpoint: "10.0.0.9:7400"}'
expect_rejected "a zoned device without csi.node.zones" \
  'csi\.node\.zones must then list the zones' \
  $'stored:\n  devices:\n    - node: w1\n      endpoint: "10.0.0.9:7400"\n      zone: a\n      tiers: [{class: ssd, capacityBytes: 1}]'

echo "== cleanup"
delete_namespace "$ns"
check "namespace $ns removed" wait_until 30 namespace_gone "$ns"

finish
