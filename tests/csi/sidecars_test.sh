#!/usr/bin/env bash
# strata-csi driven by Kubernetes' own CSI sidecars on a real control plane: what csi-sanity cannot
# see (the StorageClass parameters, topology keys and PV/PVC metadata the external-provisioner
# passes, the capabilities the attacher and resizer build from PV objects).
#
#   - one strata-stored (tiers ssd and sata) and strata-csi --mode controller on a unix socket,
#     with a topology zone for the device (as the chart renders it when devices have zones);
#   - csi-provisioner (--extra-create-metadata, --feature-gates=Topology=true), csi-attacher and
#     csi-resizer on that socket and the given kubeconfig, without leader election;
#   - the chart's StorageClass for tier ssd (`helm template`, volumeBindingMode Immediate);
#   - two Nodes and their CSINodes as the node-driver-registrar leaves them (nodeIDs NAME@127.0.0.1
#     and NAME@127.0.0.2, topology key topology.block.csi.strata.io/zone);
#   - a filesystem PVC, a raw block PVC (ReadWriteOnce) and a raw block PVC ReadWriteMany (what
#     KubeVirt live migration asks for) -> CreateVolume -> PVs: driver, volume handle, volume
#     attributes, fsType, capacity, node affinity; the LUNs on the device with the class's tier and
#     owner; the parameters, metadata, access modes and topology that reached strata-csi (its debug
#     log);
#   - VolumeAttachments (as the attach-detach controller writes them; the RWX volume on both nodes)
#     -> ControllerPublish -> attached, the nodes' IPs on each LUN's access list; deleted ->
#     Unpublish -> each node's IP leaves, the access lists end empty;
#   - the filesystem PVC grown 64Mi -> 128Mi -> ControllerExpandVolume -> PV capacity 128Mi, the
#     PVC FileSystemResizePending, the LUN 128 MiB;
#   - snapshots: the VolumeSnapshot CRDs of external-snapshotter v6.2.3 (installed when absent, left
#     installed: cluster-wide, shared), snapshot-controller and csi-snapshotter; the chart's
#     VolumeSnapshotClass; a VolumeSnapshot of the raw block PVC -> CreateSnapshot -> the
#     VolumeSnapshotContent's handle DEVICE/csi-snap-..., the VolumeSnapshot ReadyToUse with its
#     restoreSize; a PVC with that VolumeSnapshot as dataSource -> CreateVolume with
#     volume_content_source -> a PV and a LUN restored on the snapshot's device; the VolumeSnapshot
#     deleted -> DeleteSnapshot -> the content gone;
#   - the PVCs deleted -> DeleteVolume -> LUNs gone, PVs gone.
#
# The test control plane has no kube-controller-manager. Where a real cluster's PV controller and
# protection controllers would act, the test does their part and nothing more (functions pvctl_*):
# it annotates a claim for the external provisioner, binds the claim to the PV the provisioner
# made, removes the protection finalizers once nothing uses an object, and marks a PV Released once
# its claim is gone. Everything else is the sidecars' own work.
#
# The sidecars are not built here (nor anywhere in this repository): SIDECARS_DIR (or
# STRATA_CSI_SIDECARS_DIR) must hold the release binaries csi-provisioner v3.4.1, csi-attacher
# v4.2.0, csi-resizer v1.7.0, csi-snapshotter v6.2.3 and snapshot-controller v6.2.3 (the tags
# charts/strata uses, built from their tags' vendored sources as docs/architecture.md says), and
# snapshot-crds-v6.2.3/ the three CRDs of external-snapshotter v6.2.3's client/config/crd. Without
# them: exit 2.
#
# Usage: sidecars_test.sh STRATA_STORED STRATA_ADMIN STRATA_CSI HELM KUBECONFIG [SIDECARS_DIR]
# STRATA_KEEP_TEST_DIRS=1 keeps the work dir (logs) after a pass too.
# Exit: 0 passed, 1 a check failed, 2 usage or a missing binary / unreachable control plane.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/assert.sh"

usage_error() {
  echo "sidecars_test: $*" >&2
  echo "usage: sidecars_test.sh STRATA_STORED STRATA_ADMIN STRATA_CSI HELM KUBECONFIG [SIDECARS_DIR]" >&2
  exit 2
}
(($# == 5 || $# == 6)) || usage_error "expected 5 or 6 arguments, got $#"
STORED=$1 ADMIN=$2 CSI=$3 HELM=$4
export KUBECONFIG=$5
SIDECARS=${6:-${STRATA_CSI_SIDECARS_DIR:-}}
[ -n "$SIDECARS" ] ||
  usage_error "no sidecar directory: pass SIDECARS_DIR or set STRATA_CSI_SIDECARS_DIR to a directory" \
    "holding csi-provisioner (v3.4.1), csi-attacher (v4.2.0), csi-resizer (v1.7.0)," \
    "csi-snapshotter and snapshot-controller (v6.2.3)"
for bin in csi-provisioner csi-attacher csi-resizer csi-snapshotter snapshot-controller; do
  [ -x "$SIDECARS/$bin" ] ||
    usage_error "$SIDECARS/$bin: missing or not executable; the directory must hold the" \
      "release binaries csi-provisioner v3.4.1, csi-attacher v4.2.0, csi-resizer v1.7.0," \
      "csi-snapshotter v6.2.3, snapshot-controller v6.2.3"
done
readonly snapshot_crds=$SIDECARS/snapshot-crds-v6.2.3
for kind in volumesnapshotclasses volumesnapshotcontents volumesnapshots; do
  [ -r "$snapshot_crds/snapshot.storage.k8s.io_$kind.yaml" ] ||
    usage_error "$snapshot_crds/snapshot.storage.k8s.io_$kind.yaml: missing (copy client/config/crd" \
      "of external-snapshotter v6.2.3 there)"
done
for bin in "$STORED" "$ADMIN" "$CSI" "$HELM"; do
  [ -x "$bin" ] || usage_error "$bin: missing or not executable"
done
for tool in kubectl jq sha256sum; do
  command -v "$tool" >/dev/null || usage_error "$tool not found"
done
[ -r "$KUBECONFIG" ] || usage_error "$KUBECONFIG: no such kubeconfig"

# Every kubectl call is bounded: a wedged apiserver must not hang a poll past its deadline.
kubectl() { command kubectl --request-timeout=15s "$@"; }
command kubectl --request-timeout=10s get --raw /readyz >/dev/null 2>&1 ||
  usage_error "the control plane of $KUBECONFIG does not answer (tests/testenv/kube-testenv.sh up DIR)"

readonly driver=block.csi.strata.io
readonly zone_key=topology.block.csi.strata.io/zone
readonly zone=zone-a
readonly ns=default
# The finalizer csi-attacher puts on VolumeAttachments and PVs (its driver name, dots as dashes).
readonly attacher_finalizer=external-attacher/block-csi-strata-io

work=$(mktemp -d /tmp/strata-sidecars.XXXXXX)
run=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
sc=strata-ssd-sc$run
node=node-1-$run
node_id=$node@127.0.0.1
node2=node-2-$run
node2_id=$node2@127.0.0.2
fs_pvc=fs-$run
block_pvc=block-$run
rwx_pvc=rwx-$run
restore_pvc=restore-$run
vsc=strata-snap-$run
vs=snap-$run
label=strata.io/test-run=$run
stored_pid='' csi_pid='' prov_pid='' att_pid='' res_pid='' snap_pid='' snapctl_pid=''
echo "run $run, work dir $work"

# --- cleanup: sidecars first (so nothing acts on what is being removed), then the objects, whose
# finalizers nobody else would remove on this control plane.
unfinalize() { kubectl patch "$1" "$2" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1; }
cleanup() {
  local pid kind name
  for pid in "$snapctl_pid" "$snap_pid" "$res_pid" "$att_pid" "$prov_pid" "$csi_pid" "$stored_pid"; do
    [ -n "$pid" ] && stop_within 15 "$pid" >/dev/null 2>&1
  done
  for name in $(kubectl get volumeattachments -o json 2>/dev/null | jq -r --arg a "$node" \
    --arg b "$node2" '.items[] | select(.spec.nodeName == $a or .spec.nodeName == $b) | .metadata.name'); do
    unfinalize volumeattachment "$name"
    kubectl delete volumeattachment "$name" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  if kubectl get volumesnapshot -n "$ns" "$vs" >/dev/null 2>&1; then
    unfinalize volumesnapshot "$vs"
    kubectl delete volumesnapshot -n "$ns" "$vs" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  for name in $(kubectl get volumesnapshotcontents -o json 2>/dev/null | jq -r --arg vs "$vs" \
    '.items[] | select(.spec.volumeSnapshotRef.name == $vs) | .metadata.name'); do
    unfinalize volumesnapshotcontent "$name"
    kubectl delete volumesnapshotcontent "$name" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  kubectl delete volumesnapshotclass "$vsc" --ignore-not-found --wait=false >/dev/null 2>&1
  for name in "$fs_pvc" "$block_pvc" "$rwx_pvc" "$restore_pvc"; do
    unfinalize pvc "$name"
    kubectl delete pvc -n "$ns" "$name" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  for name in $(kubectl get pv -o json 2>/dev/null | jq -r --arg run "$run" \
    '.items[] | select(.spec.claimRef.name | endswith("-" + $run)) | .metadata.name'); do
    unfinalize pv "$name"
    kubectl delete pv "$name" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  for kind in storageclass csinode node; do
    kubectl delete "$kind" -l "$label" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  if [ "${keep_work:-1}" = 0 ] && [ "${STRATA_KEEP_TEST_DIRS:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "sidecars_test: kept $work (logs: stored.log csi.log csi-provisioner.log csi-attacher.log" \
      "csi-resizer.log csi-snapshotter.log snapshot-controller.log)"
  fi
}
trap cleanup EXIT

# --- small helpers -------------------------------------------------------------------------------
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# jget KIND NAME JQ: one field of an object ("" when the object does not exist).
jget() { kubectl get "$1" "$2" -n "$ns" -o json 2>/dev/null | jq -r "$3 // empty"; }
lun_json() { "$ADMIN" --insecure --server "$grpc" -o json lun get "$1" 2>/dev/null; }
lun_field() { lun_json "$1" | jq -r "$2"; }
lun_gone() { ! "$ADMIN" --insecure --server "$grpc" lun get "$1" >/dev/null 2>&1; }
lun_access_is() { [ "$(lun_field "$1" '.access.allowed_clients | join(",")')" = "$2" ]; }
lun_size_is() { [ "$(lun_field "$1" .size_bytes)" = "$2" ]; }
gone() { ! kubectl get "$1" "$2" -n "$ns" >/dev/null 2>&1; }
field_is() { [ "$(jget "$1" "$2" "$3")" = "$4" ]; }
# The strata-csi log line of METHOD's request that contains NEEDLE (the driver logs every request
# at debug, secrets stripped).
request_line() { grep -F "$1 request:" "$work/csi.log" | grep -F -- "$2" | tail -n 1; }
has_request() { [ -n "$(request_line "$1" "$2")" ]; }
# The PV the provisioner made for claim UID.
pv_for_uid() {
  kubectl get pv -o json 2>/dev/null |
    jq -r --arg uid "$1" '.items[] | select(.spec.claimRef.uid == $uid) | .metadata.name'
}
pv_exists_for() { [ -n "$(pv_for_uid "$1")" ]; }
has_event() { # has_event OBJECT_NAME REASON
  kubectl get events -n "$ns" --field-selector "involvedObject.name=$1" -o json 2>/dev/null |
    jq -e --arg r "$2" '[.items[] | select(.reason == $r)] | length > 0' >/dev/null
}
pvc_condition() { jget pvc "$1" ".status.conditions[]? | select(.type == \"$2\") | .status"; }
pvc_condition_is() { [ "$(pvc_condition "$1" "$2")" = "$3" ]; }
running() { kill -0 "$1" 2>/dev/null; }
kcreate() { kubectl create -f - >/dev/null; }
quiet() { "$@" >/dev/null; }
dump_logs() {
  local log
  kubectl get pvc -n "$ns" -l "$label" -o wide 2>&1
  kubectl get pv,volumeattachments -o wide 2>&1 | grep -E "NAME|$run|$sc" || true
  kubectl get volumesnapshot -n "$ns" "$vs" -o yaml 2>&1 | tail -n 20
  for log in csi.log csi-provisioner.log csi-attacher.log csi-resizer.log csi-snapshotter.log \
    snapshot-controller.log stored.log; do
    echo "---- $log (tail) ----"
    tail -n 40 "$work/$log" 2>/dev/null
  done
}
# stop_if_failed STAGE: later stages make no sense once STAGE failed; report and stop here.
stop_if_failed() {
  ((_failed == 0)) && return 0
  echo "sidecars_test: stopping after a failure in: $1"
  finish
  dump_logs
  exit 1
}

# --- the PV controller's and the protection controllers' part (no kube-controller-manager here) --
# pvctl_provision PVC: what the 1.20 PV controller does for a claim of a class whose provisioner is
# external: it names the provisioner on the claim.
pvctl_provision() {
  kubectl annotate pvc -n "$ns" "$1" "volume.beta.kubernetes.io/storage-provisioner=$driver" >/dev/null
}
# pvctl_bind PVC PV: the PV controller binds a claim to the PV made for it (claimRef already set by
# the provisioner): PV phase Bound; the claim's volumeName and bind annotations; the claim's status.
pvctl_bind() {
  local pvc=$1 pv=$2 modes cap
  modes=$(kubectl get pv "$pv" -o json | jq -c .spec.accessModes)
  cap=$(kubectl get pv "$pv" -o json | jq -r .spec.capacity.storage)
  kubectl patch pv "$pv" --subresource=status --type=merge -p '{"status":{"phase":"Bound"}}' >/dev/null &&
    kubectl patch pvc -n "$ns" "$pvc" --type=merge -p "{\"metadata\":{\"annotations\":{
      \"pv.kubernetes.io/bind-completed\":\"yes\",\"pv.kubernetes.io/bound-by-controller\":\"yes\"}},
      \"spec\":{\"volumeName\":\"$pv\"}}" >/dev/null &&
    kubectl patch pvc -n "$ns" "$pvc" --subresource=status --type=merge -p "{\"status\":{
      \"phase\":\"Bound\",\"accessModes\":$modes,\"capacity\":{\"storage\":\"$cap\"}}}" >/dev/null
}
# pvctl_release PVC PV: the claim is deleted; no pod uses it, so the pvc-protection controller lets
# it go; once it is gone the PV controller marks its PV Released (reclaimPolicy Delete is then the
# provisioner's to carry out).
pvctl_release() {
  local pvc=$1 pv=$2
  kubectl delete pvc -n "$ns" "$pvc" --wait=false >/dev/null &&
    kubectl patch pvc -n "$ns" "$pvc" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null &&
    wait_until 30 gone pvc "$pvc" &&
    kubectl patch pv "$pv" --subresource=status --type=merge -p '{"status":{"phase":"Released"}}' >/dev/null
}
# pvctl_unprotect_pv PV: the pv-protection controller removes its finalizer from a deleted PV that
# is not Bound; it must be the only finalizer left (the attacher has removed its own).
pv_finalizers_are() { [ "$(jget pv "$1" '.metadata.finalizers | join(",")')" = "$2" ]; }
pvctl_unprotect_pv() {
  kubectl patch pv "$1" --type=json -p '[{"op":"test","path":"/metadata/finalizers","value":["kubernetes.io/pv-protection"]},{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
}

# --- the device and the driver -------------------------------------------------------------------
start_stored() {
  "$STORED" --device dev-a --tier "ssd=$work/ssd:1GiB" --tier "sata=$work/sata:1GiB" \
    --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure --ready-file "$work/stored.ready" \
    >"$work/stored.log" 2>&1 &
  stored_pid=$!
  wait_until 30 test -s "$work/stored.ready"
}
check "strata-stored serves (ready file)" start_stored
grpc=$(jq -r .grpc "$work/stored.ready")
portals=$(jq -r '.nbd | join(",")' "$work/stored.ready")

# Debug: the driver logs each request (secrets stripped), which is how the test sees what the
# sidecars sent.
"$CSI" --endpoint "unix://$work/csi.sock" --insecure --mode controller --device "dev-a=$grpc" \
  --device-topology "dev-a=$zone" --log-level debug >"$work/csi.log" 2>&1 &
csi_pid=$!
check "strata-csi listens on $work/csi.sock" wait_until 20 test -S "$work/csi.sock"

# --- the sidecars, flags as charts/strata passes them (plus out-of-cluster and test settings) ----
for bin in csi-provisioner csi-attacher csi-resizer csi-snapshotter snapshot-controller; do
  echo "  $bin: $("$SIDECARS/$bin" --version 2>&1 | head -n 1)"
done
# The snapshot CRDs, as a cluster has them from external-snapshotter (apply: another run may
# have installed them; they stay, other runs and tests may use them).
check "VolumeSnapshot CRDs (external-snapshotter v6.2.3) applied" \
  quiet kubectl apply -f "$snapshot_crds/snapshot.storage.k8s.io_volumesnapshotclasses.yaml" \
  -f "$snapshot_crds/snapshot.storage.k8s.io_volumesnapshotcontents.yaml" \
  -f "$snapshot_crds/snapshot.storage.k8s.io_volumesnapshots.yaml"
check "VolumeSnapshot CRDs Established" quiet kubectl wait --for=condition=Established --timeout=30s \
  crd/volumesnapshotclasses.snapshot.storage.k8s.io crd/volumesnapshotcontents.snapshot.storage.k8s.io \
  crd/volumesnapshots.snapshot.storage.k8s.io
common=(--csi-address="$work/csi.sock" --kubeconfig="$KUBECONFIG" --leader-election=false
  --timeout=30s -v=4)
# No --enable-capacity: CSIStorageCapacity needs Kubernetes 1.21. Topology=true: what the chart
# passes once a device has a zone.
"$SIDECARS/csi-provisioner" "${common[@]}" --extra-create-metadata --feature-gates=Topology=true \
  >"$work/csi-provisioner.log" 2>&1 &
prov_pid=$!
"$SIDECARS/csi-attacher" "${common[@]}" >"$work/csi-attacher.log" 2>&1 &
att_pid=$!
"$SIDECARS/csi-resizer" "${common[@]}" >"$work/csi-resizer.log" 2>&1 &
res_pid=$!
"$SIDECARS/csi-snapshotter" "${common[@]}" --extra-create-metadata >"$work/csi-snapshotter.log" 2>&1 &
snap_pid=$!
"$SIDECARS/snapshot-controller" --kubeconfig="$KUBECONFIG" --leader-election=false -v=4 \
  >"$work/snapshot-controller.log" 2>&1 &
snapctl_pid=$!
check "csi-provisioner started its controller" \
  wait_until 60 grep -q "Started provisioner controller $driver" "$work/csi-provisioner.log"
check "csi-attacher started" wait_until 60 grep -q "Starting CSI attacher" "$work/csi-attacher.log"
check "csi-resizer started" \
  wait_until 60 grep -q "Starting external resizer $driver" "$work/csi-resizer.log"
check "csi-snapshotter started" wait_until 60 grep -q "Starting CSI snapshotter" "$work/csi-snapshotter.log"
check "snapshot-controller started" \
  wait_until 60 grep -q "Starting snapshot controller" "$work/snapshot-controller.log"
check "csi-provisioner found $driver with the controller service" \
  grep -q "Detected CSI driver $driver" "$work/csi-provisioner.log"
check "csi-attacher: the driver publishes (ControllerPublish will be called)" \
  grep -q "CSI driver supports ControllerPublishUnpublish, using real CSI handler" "$work/csi-attacher.log"

stop_if_failed "starting the daemons and sidecars"

# --- the chart's StorageClass --------------------------------------------------------------------
sc_yaml=$("$HELM" template "sidecars-$run" "$repo/charts/strata" --show-only templates/csi-driver.yaml \
  --set-string "storageClasses[0].name=$sc" --set-string "storageClasses[0].tier=ssd" \
  --set "storageClasses[0].dedup=false" --set-string "storageClasses[0].owner=team-$run" \
  --set-string "storageClasses[0].fsType=ext4" \
  --set-string "storageClasses[0].volumeBindingMode=Immediate" |
  awk '/^---$/ { if (sc) printf "%s", doc; doc = ""; sc = 0; next }
       { doc = doc $0 "\n" } /^kind: StorageClass$/ { sc = 1 } END { if (sc) printf "%s", doc }')
expect_contains "helm template renders the StorageClass" "$sc_yaml" "name: $sc"
check "the chart's StorageClass is applied" kcreate <<<"$sc_yaml"
kubectl label storageclass "$sc" "$label" >/dev/null
expect_eq "StorageClass parameters as users get them" \
  "$(kubectl get storageclass "$sc" -o json | jq -c '[.provisioner, .parameters, .allowVolumeExpansion, .reclaimPolicy]')" \
  "[\"$driver\",{\"csi.storage.k8s.io/fstype\":\"ext4\",\"dedup\":\"false\",\"owner\":\"team-$run\",\"tier\":\"ssd\"},true,\"Delete\"]"

# --- the nodes, as kubelet and the node-driver-registrar leave them ------------------------------
node_yaml() { # node_yaml NAME NODE_ID
  cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {strata.io/test-run: "$run", $zone_key: $zone}
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata:
  name: $1
  labels: {strata.io/test-run: "$run"}
spec:
  drivers:
    - name: $driver
      nodeID: "$2"
      topologyKeys: [$zone_key]
---
YAML
}
check "Nodes $node, $node2 and their CSINodes are created" \
  kcreate < <(node_yaml "$node" "$node_id" && node_yaml "$node2" "$node2_id")

# --- provisioning: a filesystem claim, a raw block claim, a raw block claim for many nodes ---------
# (ReadWriteMany block: what KubeVirt's live migration asks for.)
pvc_yaml() { # pvc_yaml NAME VOLUME_MODE ACCESS_MODE SIZE
  cat <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $1, namespace: $ns, labels: {strata.io/test-run: "$run"}}
spec:
  storageClassName: $sc
  accessModes: [$3]
  volumeMode: $2
  resources: {requests: {storage: $4}}
---
YAML
}
check "PVCs $fs_pvc (Filesystem RWO 64Mi), $block_pvc (Block RWO 32Mi), $rwx_pvc (Block RWX 16Mi) are created" \
  kcreate < <(pvc_yaml "$fs_pvc" Filesystem ReadWriteOnce 64Mi &&
    pvc_yaml "$block_pvc" Block ReadWriteOnce 32Mi && pvc_yaml "$rwx_pvc" Block ReadWriteMany 16Mi)
t0=$(date +%s%N)
for pvc in "$fs_pvc" "$block_pvc" "$rwx_pvc"; do pvctl_provision "$pvc"; done
fs_uid=$(jget pvc "$fs_pvc" .metadata.uid)
block_uid=$(jget pvc "$block_pvc" .metadata.uid)
rwx_uid=$(jget pvc "$rwx_pvc" .metadata.uid)
check "csi-provisioner made a PV for $fs_pvc within 60 s" wait_until 60 pv_exists_for "$fs_uid"
check "csi-provisioner made a PV for $block_pvc within 60 s" wait_until 60 pv_exists_for "$block_uid"
check "csi-provisioner made a PV for $rwx_pvc within 60 s" wait_until 60 pv_exists_for "$rwx_uid"
echo "  all PVs after $(ms_since "$t0") ms"
stop_if_failed provisioning
fs_pv=$(pv_for_uid "$fs_uid")
block_pv=$(pv_for_uid "$block_uid")
rwx_pv=$(pv_for_uid "$rwx_uid")
for pair in "$fs_pvc:$fs_pv" "$block_pvc:$block_pv" "$rwx_pvc:$rwx_pv"; do
  IFS=: read -r pvc pv <<<"$pair"
  check "bound: $pvc <-> $pv" pvctl_bind "$pvc" "$pv"
  expect_eq "$pvc is Bound" "$(jget pvc "$pvc" .status.phase)/$(jget pvc "$pvc" .spec.volumeName)" "Bound/$pv"
  check "Event ProvisioningSucceeded on $pvc" wait_until 10 has_event "$pvc" ProvisioningSucceeded
done

lun_of() { printf 'csi-%s' "$(printf '%s' "$1" | sha256sum | cut -c1-32)"; }
fs_lun=$(lun_of "$fs_pv")
block_lun=$(lun_of "$block_pv")
rwx_lun=$(lun_of "$rwx_pv")

# check_pv PVC PV LUN MODE ACCESS_MODE CSI_ACCESS_MODE SIZE_QUANTITY SIZE_BYTES FSTYPE
check_pv() {
  local pvc=$1 pv=$2 lun=$3 mode=$4 access=$5 csi_access=$6 qty=$7 bytes=$8 fstype=$9 j l wwn
  j=$(kubectl get pv "$pv" -o json)
  expect_eq "$pv: spec.csi.driver" "$(jq -r .spec.csi.driver <<<"$j")" "$driver"
  expect_eq "$pv: volumeHandle DEVICE/LUN (LUN csi- + SHA-256 of the PV name)" \
    "$(jq -r .spec.csi.volumeHandle <<<"$j")" "dev-a/$lun"
  expect_eq "$pv: provisioned-by annotation" \
    "$(jq -r '.metadata.annotations["pv.kubernetes.io/provisioned-by"]' <<<"$j")" "$driver"
  expect_eq "$pv: claimRef" "$(jq -r '.spec.claimRef | "\(.namespace)/\(.name)"' <<<"$j")" "$ns/$pvc"
  expect_eq "$pv: class, reclaim policy, volume mode, access modes" \
    "$(jq -c '[.spec.storageClassName, .spec.persistentVolumeReclaimPolicy, .spec.volumeMode, .spec.accessModes]' <<<"$j")" \
    "[\"$sc\",\"Delete\",\"$mode\",[\"$access\"]]"
  expect_eq "$pv: capacity" "$(jq -r .spec.capacity.storage <<<"$j")" "$qty"
  expect_eq "$pv: fsType" "$(jq -r '.spec.csi.fsType // ""' <<<"$j")" "$fstype"
  expect_eq "$pv: node affinity = the device's zone (accessible_topology)" \
    "$(jq -c '[.spec.nodeAffinity.required.nodeSelectorTerms[]?.matchExpressions[]? | [.key, .operator, .values]]' <<<"$j")" \
    "[[\"$zone_key\",\"In\",[\"$zone\"]]]"
  l=$(lun_json "$lun")
  expect_eq "LUN $lun exists on the device: tier, size, dedup, owner, access" \
    "$(jq -c '[.tier, .size_bytes, .dedup, .owner, .access.allowed_clients]' <<<"$l")" \
    "[\"TIER_CLASS_SSD\",\"$bytes\",false,\"team-$run\",[]]"
  wwn=$(jq -r .wwn <<<"$l")
  expect_eq "$pv: volumeAttributes device, wwn, exportName, portals" \
    "$(jq -c '.spec.csi.volumeAttributes | [.device, .wwn, .exportName, .portals]' <<<"$j")" \
    "[\"dev-a\",\"$wwn\",\"$lun\",\"$portals\"]"
  # What the provisioner passed: StorageClass parameters (its own csi.storage.k8s.io/fstype turned
  # into the capability), the PVC/PV metadata (--extra-create-metadata) and the aggregated topology.
  local req
  req=$(request_line CreateVolume "name: \"$pv\"")
  check "$pv: CreateVolume reached strata-csi" test -n "$req"
  local want
  for want in "key: \"tier\" value: \"ssd\"" "key: \"dedup\" value: \"false\"" \
    "key: \"owner\" value: \"team-$run\"" \
    "key: \"csi.storage.k8s.io/pvc/name\" value: \"$pvc\"" \
    "key: \"csi.storage.k8s.io/pvc/namespace\" value: \"$ns\"" \
    "key: \"csi.storage.k8s.io/pv/name\" value: \"$pv\"" \
    "requisite { segments { key: \"$zone_key\" value: \"$zone\" } }" \
    "capacity_range { required_bytes: $bytes }" "access_mode { mode: $csi_access }"; do
    expect_contains "$pv: CreateVolume carries $want" "$req" "$want"
  done
  if [ "$mode" = Block ]; then
    expect_contains "$pv: CreateVolume asks for a block volume" "$req" "block {"
  else
    expect_contains "$pv: CreateVolume asks for a mount volume of ext4" "$req" "mount { fs_type: \"ext4\""
  fi
  case "$req" in
    *"csi.storage.k8s.io/fstype"*) fail "$pv: the provisioner passed its fstype parameter through" ;;
    *) pass "$pv: csi.storage.k8s.io/fstype consumed by the provisioner, not passed" ;;
  esac
}
# ReadWriteOnce arrives as SINGLE_NODE_MULTI_WRITER: strata-csi advertises that capability.
check_pv "$fs_pvc" "$fs_pv" "$fs_lun" Filesystem ReadWriteOnce SINGLE_NODE_MULTI_WRITER 64Mi 67108864 ext4
check_pv "$block_pvc" "$block_pv" "$block_lun" Block ReadWriteOnce SINGLE_NODE_MULTI_WRITER 32Mi 33554432 ""
check_pv "$rwx_pvc" "$rwx_pv" "$rwx_lun" Block ReadWriteMany MULTI_NODE_MULTI_WRITER 16Mi 16777216 ""

stop_if_failed "the provisioned volumes"

# --- attach and detach: VolumeAttachments as the attach-detach controller writes them ------------
# Its name: csi- + SHA-256 of volume handle, attacher and node name.
va_name() { printf 'csi-%s' "$(printf '%s%s%s' "$1" "$driver" "$2" | sha256sum | cut -c1-64)"; }
va_yaml() { # va_yaml NAME NODE PV
  cat <<YAML
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: $1}
spec:
  attacher: $driver
  nodeName: $2
  source: {persistentVolumeName: $3}
---
YAML
}
va_attached() { [ "$(kubectl get volumeattachment "$1" -o jsonpath='{.status.attached}' 2>/dev/null)" = true ]; }
va_gone() { ! kubectl get volumeattachment "$1" >/dev/null 2>&1; }
sorted_access() { lun_field "$1" '.access.allowed_clients | sort | join(",")'; }
fs_va=$(va_name "dev-a/$fs_lun" "$node")
block_va=$(va_name "dev-a/$block_lun" "$node")
rwx_va1=$(va_name "dev-a/$rwx_lun" "$node")
rwx_va2=$(va_name "dev-a/$rwx_lun" "$node2")
t0=$(date +%s%N)
check "VolumeAttachments: $block_pv, $fs_pv, $rwx_pv on $node; $rwx_pv on $node2" \
  kcreate < <(va_yaml "$block_va" "$node" "$block_pv" && va_yaml "$fs_va" "$node" "$fs_pv" &&
    va_yaml "$rwx_va1" "$node" "$rwx_pv" && va_yaml "$rwx_va2" "$node2" "$rwx_pv")
for va in "$block_va" "$fs_va" "$rwx_va1" "$rwx_va2"; do
  check "csi-attacher: $va attached within 60 s" wait_until 60 va_attached "$va"
done
echo "  attached after $(ms_since "$t0") ms"
for quad in "$block_va:$block_pv:$block_lun:$node_id" "$fs_va:$fs_pv:$fs_lun:$node_id" \
  "$rwx_va1:$rwx_pv:$rwx_lun:$node_id" "$rwx_va2:$rwx_pv:$rwx_lun:$node2_id"; do
  IFS=: read -r va pv lun want_node_id <<<"$quad"
  j=$(kubectl get volumeattachment "$va" -o json)
  expect_eq "$va: node id from the CSINode" \
    "$(jq -r '.metadata.annotations["csi.alpha.kubernetes.io/node-id"]' <<<"$j")" "$want_node_id"
  expect_eq "$va: the attacher's finalizer" "$(jq -r '.metadata.finalizers | join(",")' <<<"$j")" "$attacher_finalizer"
  expect_eq "$va: attachmentMetadata = publish_context" \
    "$(jq -c '.status.attachmentMetadata | [.device, .wwn, .exportName, .portals, .deviceAddress, .readonly]' <<<"$j")" \
    "[\"dev-a\",\"$(lun_field "$lun" .wwn)\",\"$lun\",\"$portals\",\"$grpc\",\"false\"]"
  check "$pv: the attacher's finalizer on the PV" \
    wait_until 10 pv_finalizers_are "$pv" "kubernetes.io/pv-protection,$attacher_finalizer"
done
expect_eq "LUN of $block_pv: access list = $node's IP" "$(sorted_access "$block_lun")" "127.0.0.1"
expect_eq "LUN of $fs_pv: access list = $node's IP" "$(sorted_access "$fs_lun")" "127.0.0.1"
expect_eq "LUN of $rwx_pv: access list = both nodes' IPs" "$(sorted_access "$rwx_lun")" "127.0.0.1,127.0.0.2"
req=$(request_line ControllerPublishVolume "volume_id: \"dev-a/$block_lun\"")
expect_contains "ControllerPublish($block_pv) for node $node_id" "$req" "node_id: \"$node_id\""
expect_contains "ControllerPublish($block_pv): a block capability" "$req" "block {"
req=$(request_line ControllerPublishVolume "volume_id: \"dev-a/$fs_lun\"")
expect_contains "ControllerPublish($fs_pv): a mount capability of ext4" "$req" "mount { fs_type: \"ext4\""
req=$(request_line ControllerPublishVolume "node_id: \"$node2_id\"")
expect_contains "ControllerPublish($rwx_pv) for $node2_id: MULTI_NODE_MULTI_WRITER" "$req" \
  "access_mode { mode: MULTI_NODE_MULTI_WRITER }"

t0=$(date +%s%N)
check "VolumeAttachment $rwx_va1 ($node) deleted" quiet kubectl delete volumeattachment "$rwx_va1" --wait=false
check "csi-attacher: $rwx_va1 gone within 60 s" wait_until 60 va_gone "$rwx_va1"
expect_eq "LUN of $rwx_pv: $node2 keeps its access" "$(sorted_access "$rwx_lun")" "127.0.0.2"
check "VolumeAttachments deleted" \
  quiet kubectl delete volumeattachment "$block_va" "$fs_va" "$rwx_va2" --wait=false
for va in "$block_va" "$fs_va" "$rwx_va2"; do
  check "csi-attacher: $va gone within 60 s (detached, finalizer removed)" wait_until 60 va_gone "$va"
done
echo "  detached after $(ms_since "$t0") ms"
for pair in "$block_pv:$block_lun" "$fs_pv:$fs_lun" "$rwx_pv:$rwx_lun"; do
  IFS=: read -r pv lun <<<"$pair"
  expect_eq "LUN of $pv: access list empty again" "$(lun_field "$lun" '.access.allowed_clients | length')" "0"
done
check "ControllerUnpublish($block_pv) for node $node_id" \
  has_request ControllerUnpublishVolume "volume_id: \"dev-a/$block_lun\" node_id: \"$node_id\""

stop_if_failed "attach and detach"

# --- resize: the filesystem claim grows 64Mi -> 128Mi --------------------------------------------
t0=$(date +%s%N)
check "$fs_pvc: storage request raised to 128Mi" quiet kubectl patch pvc -n "$ns" "$fs_pvc" --type=merge \
  -p '{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}'
check "csi-resizer: $fs_pv capacity 128Mi within 60 s" wait_until 60 field_is pv "$fs_pv" .spec.capacity.storage 128Mi
check "csi-resizer: $fs_pvc FileSystemResizePending (node expansion required)" \
  wait_until 20 pvc_condition_is "$fs_pvc" FileSystemResizePending True
echo "  resized after $(ms_since "$t0") ms"
expect_eq "$fs_pvc: status.capacity stays 64Mi until the node expands" "$(jget pvc "$fs_pvc" .status.capacity.storage)" "64Mi"
check "LUN of $fs_pv: 128 MiB on the device" lun_size_is "$fs_lun" 134217728
req=$(request_line ControllerExpandVolume "volume_id: \"dev-a/$fs_lun\"")
expect_contains "ControllerExpandVolume($fs_pv): 128 MiB" "$req" "capacity_range { required_bytes: 134217728 }"
expect_contains "ControllerExpandVolume($fs_pv): the mount capability" "$req" "mount { fs_type: \"ext4\""

stop_if_failed resize

# --- snapshots: a VolumeSnapshot of the block claim, a claim restored from it -----------------
vsc_yaml=$("$HELM" template "sidecars-$run" "$repo/charts/strata" --show-only templates/csi-driver.yaml \
  --api-versions snapshot.storage.k8s.io/v1/VolumeSnapshotClass \
  --set-string "csi.snapshots.volumeSnapshotClass.name=$vsc" \
  --set csi.snapshots.volumeSnapshotClass.default=false |
  awk '/^---$/ { if (vsc) printf "%s", doc; doc = ""; vsc = 0; next }
       { doc = doc $0 "\n" } /^kind: VolumeSnapshotClass$/ { vsc = 1 } END { if (vsc) printf "%s", doc }')
expect_contains "helm template renders the VolumeSnapshotClass" "$vsc_yaml" "name: $vsc"
check "the chart's VolumeSnapshotClass is applied" kcreate <<<"$vsc_yaml"
check "VolumeSnapshot $vs of $block_pvc is created" kcreate <<YAML
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: $vs, namespace: $ns, labels: {strata.io/test-run: "$run"}}
spec:
  volumeSnapshotClassName: $vsc
  source: {persistentVolumeClaimName: $block_pvc}
YAML
vs_field_is() { [ "$(kubectl get volumesnapshot -n "$ns" "$vs" -o json 2>/dev/null | jq -r "$1 // empty")" = "$2" ]; }
t0=$(date +%s%N)
check "snapshot-controller + csi-snapshotter: $vs ReadyToUse within 60 s" \
  wait_until 60 vs_field_is .status.readyToUse true
echo "  snapshot ready after $(ms_since "$t0") ms"
stop_if_failed "the VolumeSnapshot"
vsc_name=$(kubectl get volumesnapshot -n "$ns" "$vs" -o jsonpath='{.status.boundVolumeSnapshotContentName}')
content=$(kubectl get volumesnapshotcontent "$vsc_name" -o json)
snap_handle=$(jq -r .status.snapshotHandle <<<"$content")
case "$snap_handle" in
  dev-a/csi-snap-*) pass "VolumeSnapshotContent handle $snap_handle (DEVICE/csi-snap-...)" ;;
  *) fail "VolumeSnapshotContent handle '$snap_handle' is not dev-a/csi-snap-..." ;;
esac
expect_eq "VolumeSnapshotContent: driver, deletionPolicy, readyToUse, restoreSize" \
  "$(jq -c '[.spec.driver, .spec.deletionPolicy, .status.readyToUse, .status.restoreSize]' <<<"$content")" \
  "[\"$driver\",\"Delete\",true,33554432]"
expect_eq "$vs: restoreSize" "$(kubectl get volumesnapshot -n "$ns" "$vs" -o jsonpath='{.status.restoreSize}')" "32Mi"
req=$(request_line CreateSnapshot "source_volume_id: \"dev-a/$block_lun\"")
check "CreateSnapshot reached strata-csi for dev-a/$block_lun" test -n "$req"
expect_contains "CreateSnapshot carries the VolumeSnapshot's name (--extra-create-metadata)" "$req" \
  "key: \"csi.storage.k8s.io/volumesnapshot/name\" value: \"$vs\""
snap_name=${snap_handle#dev-a/}
expect_eq "the device's snapshot $snap_name: source LUN, size, ready, the VolumeSnapshot's name" \
  "$("$ADMIN" --insecure --server "$grpc" -o json snapshot get "$snap_name" 2>/dev/null |
    jq -c '[.source_lun, .size_bytes, .ready_to_use, .metadata["csi.storage.k8s.io/volumesnapshot/name"]]')" \
  "[\"$block_lun\",\"33554432\",true,\"$vs\"]"

check "PVC $restore_pvc (Block RWO 32Mi, dataSource $vs) is created" kcreate <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $restore_pvc, namespace: $ns, labels: {strata.io/test-run: "$run"}}
spec:
  storageClassName: $sc
  accessModes: [ReadWriteOnce]
  volumeMode: Block
  resources: {requests: {storage: 32Mi}}
  dataSource: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: $vs}
YAML
pvctl_provision "$restore_pvc"
restore_uid=$(jget pvc "$restore_pvc" .metadata.uid)
t0=$(date +%s%N)
check "csi-provisioner made a PV for $restore_pvc from the snapshot within 60 s" \
  wait_until 60 pv_exists_for "$restore_uid"
echo "  restored after $(ms_since "$t0") ms"
stop_if_failed "the restore"
restore_pv=$(pv_for_uid "$restore_uid")
restore_lun=$(lun_of "$restore_pv")
check "bound: $restore_pvc <-> $restore_pv" pvctl_bind "$restore_pvc" "$restore_pv"
expect_eq "$restore_pv: volumeHandle on the snapshot's device" \
  "$(kubectl get pv "$restore_pv" -o jsonpath='{.spec.csi.volumeHandle}')" "dev-a/$restore_lun"
req=$(request_line CreateVolume "name: \"$restore_pv\"")
expect_contains "CreateVolume($restore_pv) restores from $snap_handle" "$req" \
  "volume_content_source { snapshot { snapshot_id: \"$snap_handle\" } }"
expect_eq "LUN $restore_lun restored on the device: tier, size" \
  "$(lun_json "$restore_lun" | jq -c '[.tier, .size_bytes]')" "[\"TIER_CLASS_SSD\",\"33554432\"]"

t0=$(date +%s%N)
check "$vs deleted" quiet kubectl delete volumesnapshot -n "$ns" "$vs" --wait=false
check "snapshot-controller + csi-snapshotter: $vs and its content gone within 60 s" \
  wait_until 60 eval '! kubectl get volumesnapshotcontent "$vsc_name" >/dev/null 2>&1 &&
    ! kubectl get volumesnapshot -n "$ns" "$vs" >/dev/null 2>&1'
echo "  snapshot deleted after $(ms_since "$t0") ms"
check "DeleteSnapshot($snap_handle) reached strata-csi" \
  has_request DeleteSnapshot "snapshot_id: \"$snap_handle\""
check "the device's snapshot $snap_name is gone" \
  eval '! "$ADMIN" --insecure --server "$grpc" snapshot get "$snap_name" >/dev/null 2>&1'
check "$restore_pvc deleted; $restore_pv Released" pvctl_release "$restore_pvc" "$restore_pv"
check "csi-provisioner: DeleteVolume removed LUN $restore_lun within 60 s" wait_until 60 lun_gone "$restore_lun"
check "$restore_pv: pv-protection released" wait_until 30 pvctl_unprotect_pv "$restore_pv"
check "$restore_pv gone" wait_until 30 gone pv "$restore_pv"

stop_if_failed snapshots

# --- deletion: claims gone -> PVs Released -> DeleteVolume -> PVs deleted ------------------------
t0=$(date +%s%N)
for pair in "$fs_pvc:$fs_pv:$fs_lun" "$block_pvc:$block_pv:$block_lun" "$rwx_pvc:$rwx_pv:$rwx_lun"; do
  IFS=: read -r pvc pv lun <<<"$pair"
  check "$pvc deleted; $pv Released" pvctl_release "$pvc" "$pv"
  check "csi-provisioner: DeleteVolume removed LUN $lun within 60 s" wait_until 60 lun_gone "$lun"
  check "csi-provisioner: $pv deleted, the attacher's finalizer removed" \
    wait_until 60 pv_finalizers_are "$pv" kubernetes.io/pv-protection
  expect_eq "$pv: deletionTimestamp set" "$(jget pv "$pv" '.metadata.deletionTimestamp | type')" "string"
  check "$pv: pv-protection released" pvctl_unprotect_pv "$pv"
  check "$pv gone" wait_until 30 gone pv "$pv"
done
echo "  deleted after $(ms_since "$t0") ms"
expect_eq "no csi- LUN left on the device" \
  "$("$ADMIN" --insecure --server "$grpc" -o json lun list | jq '[.luns[]?.name | select(startswith("csi-"))] | length')" "0"

# --- the driver's side of the conversation -------------------------------------------------------
# A sidecar that sends what strata-csi rejects shows up as INVALID_ARGUMENT / NOT_FOUND /
# FAILED_PRECONDITION / UNIMPLEMENTED warnings; none is expected in this run.
rejected=$(grep -E '(Volume|Capabilities|Capacity|GetPluginInfo|Probe|Snapshot|Snapshots): (INVALID_ARGUMENT|NOT_FOUND|FAILED_PRECONDITION|UNIMPLEMENTED|OUT_OF_RANGE|ALREADY_EXISTS|INTERNAL|UNKNOWN)' "$work/csi.log")
expect_eq "strata-csi rejected no sidecar call" "$rejected" ""
check "csi-provisioner still running" running "$prov_pid"
check "csi-attacher still running" running "$att_pid"
check "csi-resizer still running" running "$res_pid"
check "csi-snapshotter still running" running "$snap_pid"
check "snapshot-controller still running" running "$snapctl_pid"
check "strata-csi still running" running "$csi_pid"
check "strata-stored still running" running "$stored_pid"

for pid_name in snapctl_pid snap_pid res_pid att_pid prov_pid; do
  stop_within 15 "${!pid_name}" >/dev/null 2>&1
  printf -v "$pid_name" ''
done
stop_within 15 "$csi_pid"
expect_eq "strata-csi: SIGTERM -> exit 0" "$?" 0
csi_pid=''
stop_within 30 "$stored_pid"
expect_eq "strata-stored: SIGTERM -> exit 0" "$?" 0
stored_pid=''

if finish; then
  keep_work=0
  exit 0
fi
dump_logs
exit 1
