#!/usr/bin/env bash
# The demo: the system a user installs, on the embedded default, all on this machine.
#   - a local Kubernetes control plane (tests/testenv/kube-testenv.sh: etcd + kube-apiserver) with
#     the strata.io CRDs;
#   - two strata-stored devices: dev-a (tiers ssd + sata, region eu-west) and dev-b (ssd + sata,
#     region us-east), declared as StorageDevice objects and reconciled by strata-operator, which
#     also runs the policy reconcilers (TieringPolicy, DedupPolicy, MaintenanceWindow) and the usage
#     ledger, sweeping the devices every second (--volume-resync 1);
#   - strata-csi in controller mode over both devices; with Kubernetes' csi-provisioner (and
#     csi-attacher) in $STRATA_CSI_SIDECARS_DIR, a PVC of the chart's StorageClass becomes the demo
#     volume (the LUN carries the PVC's name and namespace from --extra-create-metadata), otherwise
#     strata-admin creates it with the same metadata (--meta) and kubectl the PVC it belongs to;
#   - a client (fio over NBD, rate-limited) writing to the volume throughout, and a sampler recording
#     its IOPS, tier and device every 0.5 s;
#   - policies applied with kubectl and carried out by strata-operator, live, under the client: a
#     TieringPolicy (the hot volume moves sata -> ssd by itself once its load has held), a
#     DedupPolicy (dedup turned on, its ratio; then off), a MaintenanceWindow starting now (dev-a
#     drained to dev-b, put in Maintenance, then finished with spec.finish; restore: false, the
#     volume stays on dev-b); the namespace's UsageReport at the end;
#   - a PNG plot of the volume's IOPS over time with its tier/device phases and the events marked.
# About 2 minutes on 2 cores once the build and kube-apiserver are cached (the first run builds both).
#
#   scripts/demo.sh          run, show, stop everything
#   scripts/demo.sh --keep   leave the devices, operator, CSI controller and control plane running
#
# Environment: STRATA_DEMO_DIR (default /var/tmp/strata-demo), STRATA_CSI_SIDECARS_DIR (a directory
# holding csi-provisioner v3.4.1 and optionally csi-attacher v4.2.0), STRATA_DEMO_PHASE_SECONDS
# (seconds the client runs in each placement, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
# ccache hits across clones in different folders (CI clones afresh on the same machine).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1

keep=0
case "${1:-}" in
  "") ;;
  --keep) keep=1 ;;
  *)
    echo "usage: scripts/demo.sh [--keep]" >&2
    exit 2
    ;;
esac

demo_dir=${STRATA_DEMO_DIR:-/var/tmp/strata-demo}
sidecars=${STRATA_CSI_SIDECARS_DIR:-}
phase_s=${STRATA_DEMO_PHASE_SECONDS:-20}
readonly driver=block.csi.strata.io
t_demo=$SECONDS

# --- output and small helpers ------------------------------------------------------------------
now_ms() {
  local us=${EPOCHREALTIME//[!0-9]/}
  echo $((us / 1000))
}
step() { printf '\n\033[1m== [%3ds] %s\033[0m\n' $((SECONDS - t_demo)) "$*"; }
say() { printf '%s\n' "$@"; }
# Where the demo does by hand what a reconciler that has not landed yet would do.
by_hand() { printf '\033[33mby hand:\033[0m %s\n' "$*"; }
# show LINE | show ARGS...: print a command line as is, or the words of a command as one would type
# them (those with characters the shell treats specially in single quotes).
show() {
  local a out=$1 plain='^[][A-Za-z0-9_./:=,@%+-]+$'
  if (($# > 1)); then
    out=''
    for a in "$@"; do
      [[ $a =~ $plain ]] || a="'$a'"
      out+="${out:+ }$a"
    done
  fi
  printf '\033[2m$ %s\033[0m\n' "$out"
}
die() {
  printf 'demo: error: %s\n' "$*" >&2
  exit 1
}
# Every kubectl call is bounded: a wedged apiserver must not hang the demo.
kubectl() { command kubectl --request-timeout=15s "$@"; }
# kc ARGS...: show a kubectl command, then run it.
kc() {
  show kubectl "$@"
  kubectl "$@"
}
# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds; fails the demo after SECONDS.
wait_for() {
  local deadline=$(($(now_ms) + $1 * 1000)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) < deadline)) || die "timed out waiting for $what"
    sleep 0.2
  done
}

# --- processes: every one the demo starts is recorded, so that cleanup (or the next run, after
# --keep) stops exactly those.
mkdir -p "$demo_dir"
demo_dir=$(cd "$demo_dir" && pwd)
kube_dir=$demo_dir/kube
pid_file=$demo_dir/pids
declare -a started=()
# is_ours PID: a live process (not a zombie) whose command line mentions the demo dir.
is_ours() {
  local state
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]] || return 1
  # The process may end meanwhile: the redirection's own error goes to /dev/null too.
  { tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$demo_dir/"
}
# stop_pid NAME PID: TERM, up to 15 s, then KILL.
stop_pid() {
  local name=$1 pid=$2 deadline
  is_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(now_ms) + 15000))
  while is_ours "$pid" && (($(now_ms) < deadline)); do sleep 0.1; done
  if is_ours "$pid"; then
    say "demo: $name (pid $pid) ignored TERM for 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# spawn NAME CMD...: runs CMD in the background, output in DIR/NAME.log.
spawn() {
  local name=$1
  shift
  "$@" >"$demo_dir/$name.log" 2>&1 &
  started+=("$name:$!")
  printf '%s %s\n' "$name" "$!" >>"$pid_file"
}

fio_pid='' sampler_pid=''
cleanup() {
  local rc=$? entry i name
  set +e
  trap - INT TERM
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  [ -n "$fio_pid" ] && stop_pid fio "$fio_pid"
  if ((rc != 0)); then
    say "" "demo: failed (exit $rc); the last lines of each log in $demo_dir:"
    for entry in "${started[@]}"; do
      name=${entry%%:*}
      say "---- $name.log"
      tail -n 12 "$demo_dir/$name.log" 2>/dev/null
    done
  fi
  if ((keep == 1 && rc == 0)); then return; fi
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    stop_pid "${started[i]%%:*}" "${started[i]##*:}"
  done
  bash tests/testenv/kube-testenv.sh down "$kube_dir" >/dev/null 2>&1
  rm -f "$pid_file"
  ((rc != 0)) || say "demo: everything it started is stopped (rerun with --keep to leave it running)"
}

# Leftovers of a run with --keep (or of a killed one).
if [ -f "$pid_file" ]; then
  say "demo: stopping what the previous run left running ($demo_dir)"
  while read -r name pid; do stop_pid "$name" "$pid"; done <"$pid_file"
  rm -f "$pid_file"
fi
[ -d "$kube_dir" ] && bash tests/testenv/kube-testenv.sh down "$kube_dir" >/dev/null 2>&1
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$demo_dir/dev-a" "$demo_dir/dev-b" "$demo_dir"/*.log "$demo_dir"/*.ready "$demo_dir"/*.csv \
  "$demo_dir/csi.sock" "$demo_dir/fio.json" "$demo_dir/plot.gp" "$demo_dir/plot.png"

# --- 1. packages and binaries ------------------------------------------------------------------
step "dependencies (Debian packages) and the four binaries"
bash scripts/install-deps.sh demo
cmake --preset default >"$demo_dir/cmake.log" 2>&1 || {
  cat "$demo_dir/cmake.log"
  die "cmake --preset default failed"
}
show "cmake --build --preset default --target strata-stored strata-admin strata-operator strata-csi"
[ -x build/default/operator/strata-operator ] || say "(first build: several minutes on 2 cores)"
t0=$SECONDS
cmake --build --preset default --target strata-stored strata-admin strata-operator strata-csi \
  >"$demo_dir/build.log" 2>&1 || {
  tail -n 40 "$demo_dir/build.log"
  die "build failed (log: $demo_dir/build.log)"
}
say "built in $((SECONDS - t0)) s (log: $demo_dir/build.log)"
bin=$repo/build/default
stored=$bin/storage/strata-stored
admin_bin=$bin/storage/strata-admin
for tool in kubectl jq fio gnuplot; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh demo)"
done

# --- 2. the control plane ----------------------------------------------------------------------
step "control plane: etcd + kube-apiserver on loopback, the strata.io CRDs"
if ! compgen -G "${STRATA_CACHE:-$HOME/.cache/strata}/kube-apiserver/*/kube-apiserver" >/dev/null; then
  say "kube-apiserver is not cached yet: building it once from Debian's kubernetes source package"
  say "(cold: about 4 minutes on 2 cores; cached in ${STRATA_CACHE:-$HOME/.cache/strata} afterwards)"
fi
show "tests/testenv/kube-testenv.sh up $kube_dir"
bash tests/testenv/kube-testenv.sh up "$kube_dir" 2>&1 | grep -E 'ready at|building|built|error' || true
bash tests/testenv/kube-testenv.sh status "$kube_dir" >/dev/null || die "the control plane is not up"
export KUBECONFIG=$kube_dir/kubeconfig
kc apply -f charts/strata/crds/
kubectl wait --for=condition=Established --timeout=60s -f charts/strata/crds/ >/dev/null
wait_for 30 "strata.io/v1alpha1 to be served" kubectl get --raw /apis/strata.io/v1alpha1/storagedevices

# --- 3. two devices, their StorageDevice objects, the operator --------------------------------
step "two strata-stored devices, declared as StorageDevices, watched by strata-operator"
mkdir -p "$demo_dir/dev-a" "$demo_dir/dev-b"
show "strata-stored --device dev-a --tier ssd=$demo_dir/dev-a/ssd:2GiB:0.00012 --tier sata=$demo_dir/dev-a/sata:16GiB:0.00002 --portal 127.0.0.1:0 --portal 127.0.0.2:0 --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 --ready-file ..."
spawn dev-a "$stored" --device dev-a \
  --tier "ssd=$demo_dir/dev-a/ssd:2GiB:0.00012" --tier "sata=$demo_dir/dev-a/sata:16GiB:0.00002" \
  --portal 127.0.0.1:0 --portal 127.0.0.2:0 --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 \
  --ready-file "$demo_dir/dev-a.ready"
show "strata-stored --device dev-b --tier ssd=$demo_dir/dev-b/ssd:2GiB:0.0001 --tier sata=$demo_dir/dev-b/sata:8GiB:0.000018 --portal 127.0.0.3:0 --portal 127.0.0.4:0 --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 --ready-file ..."
spawn dev-b "$stored" --device dev-b \
  --tier "ssd=$demo_dir/dev-b/ssd:2GiB:0.0001" --tier "sata=$demo_dir/dev-b/sata:8GiB:0.000018" \
  --portal 127.0.0.3:0 --portal 127.0.0.4:0 --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 \
  --ready-file "$demo_dir/dev-b.ready"
wait_for 30 "dev-a to serve (its ready file)" test -s "$demo_dir/dev-a.ready"
wait_for 30 "dev-b to serve (its ready file)" test -s "$demo_dir/dev-b.ready"
dev_a=$(jq -r .grpc "$demo_dir/dev-a.ready")
dev_b=$(jq -r .grpc "$demo_dir/dev-b.ready")
portal_a=$(jq -r '.nbd[0]' "$demo_dir/dev-a.ready")
say "dev-a: management $dev_a, NBD $(jq -r '.nbd | join(" ")' "$demo_dir/dev-a.ready"), metrics $(jq -r .metrics "$demo_dir/dev-a.ready")"
say "dev-b: management $dev_b, NBD $(jq -r '.nbd | join(" ")' "$demo_dir/dev-b.ready"), metrics $(jq -r .metrics "$demo_dir/dev-b.ready")"
admin() { "$admin_bin" --insecure "$@"; }
# sa ADDR ARGS...: show a strata-admin command, then run it.
sa() {
  show strata-admin --insecure --server "$@"
  admin --server "$@"
}

storage_devices_yaml=$(
  cat <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: dev-a
  labels: {strata.io/device: dev-a}
spec:
  endpoint: $dev_a
  region: eu-west
  tiers:
    - {class: ssd, capacityBytes: $((2 << 30)), pricePerGiBHour: 0.00012}
    - {class: sata, capacityBytes: $((16 << 30)), pricePerGiBHour: 0.00002}
---
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: dev-b
  labels: {strata.io/device: dev-b}
spec:
  endpoint: $dev_b
  region: us-east
  tiers:
    - {class: ssd, capacityBytes: $((2 << 30)), pricePerGiBHour: 0.0001}
    - {class: sata, capacityBytes: $((8 << 30)), pricePerGiBHour: 0.000018}
YAML
)
say "$storage_devices_yaml"
kc apply -f - <<<"$storage_devices_yaml"
# --volume-resync 1: the volume inventory (LUNs, owners, I/O statistics: what the policies act on)
# every second; --usage-interval 2: the UsageReport follows within seconds.
show "strata-operator --kubeconfig $KUBECONFIG --insecure --metrics-addr 0 --health-addr 0 --device-resync 1 --volume-resync 1 --usage-interval 2"
spawn operator "$bin/operator/strata-operator" --kubeconfig "$KUBECONFIG" --insecure \
  --metrics-addr 0 --health-addr 0 --device-resync 1 --volume-resync 1 --usage-interval 2
phase_is() { [ "$(kubectl get storagedevice "$1" -o jsonpath='{.status.phase}')" = "$2" ]; }
wait_for 30 "StorageDevice dev-a Online" phase_is dev-a Online
wait_for 30 "StorageDevice dev-b Online" phase_is dev-b Online
kc get storagedevices -o wide

# --- 4. the CSI controller and the demo volume -------------------------------------------------
step "strata-csi (controller) over both devices; the demo volume"
show "strata-csi --endpoint unix://$demo_dir/csi.sock --insecure --mode controller --device dev-a=$dev_a --device dev-b=$dev_b"
spawn csi "$bin/csi-driver/strata-csi" --endpoint "unix://$demo_dir/csi.sock" --insecure --mode controller \
  --device "dev-a=$dev_a" --device "dev-b=$dev_b" --log-level debug
wait_for 20 "strata-csi to listen on $demo_dir/csi.sock" test -S "$demo_dir/csi.sock"
say "strata-csi: $(grep -o 'serving .*' "$demo_dir/csi.log" | head -n 1)"

lun=''
if [ -n "$sidecars" ] && [ -x "$sidecars/csi-provisioner" ]; then
  helm=$(bash tests/testenv/helm.sh path)
  say "csi-provisioner from $sidecars: $("$sidecars/csi-provisioner" --version 2>&1 | head -n 1)"
  common=(--csi-address="$demo_dir/csi.sock" --kubeconfig="$KUBECONFIG" --leader-election=false --timeout=30s)
  show "csi-provisioner --csi-address=$demo_dir/csi.sock --kubeconfig=... --leader-election=false --extra-create-metadata"
  spawn csi-provisioner "$sidecars/csi-provisioner" "${common[@]}" --extra-create-metadata
  attacher=0
  if [ -x "$sidecars/csi-attacher" ]; then
    attacher=1
    show "csi-attacher --csi-address=$demo_dir/csi.sock --kubeconfig=... --leader-election=false"
    spawn csi-attacher "$sidecars/csi-attacher" "${common[@]}"
  fi
  wait_for 60 "csi-provisioner to start" grep -q "Started provisioner controller $driver" \
    "$demo_dir/csi-provisioner.log"
  # The chart's StorageClass, as `helm install` would create it.
  # No `device` parameter (the chart checks it against stored.devices, which the demo does not
  # render): strata-csi places the volume on the device with the most free sata space, dev-a.
  # No dedup in the class: the DedupPolicy turns it on. No owner: the PVC's namespace owns it.
  show "helm template strata charts/strata --show-only templates/csi-driver.yaml --set storageClasses[0]={name: strata-demo, tier: sata, dedup: false, volumeBindingMode: Immediate}"
  sc_yaml=$("$helm" template strata charts/strata --show-only templates/csi-driver.yaml \
    --set-string "storageClasses[0].name=strata-demo" --set-string "storageClasses[0].tier=sata" \
    --set "storageClasses[0].dedup=false" --set-string "storageClasses[0].volumeBindingMode=Immediate" |
    awk '/^---$/ { if (sc) printf "%s", doc; doc = ""; sc = 0; next }
         { doc = doc $0 "\n" } /^kind: StorageClass$/ { sc = 1 } END { if (sc) printf "%s", doc }')
  [ -n "$sc_yaml" ] || die "helm template rendered no StorageClass"
  kc apply -f - <<<"$sc_yaml"
  pvc_yaml=$(
    cat <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: demo-db, namespace: default, labels: {app: demo-db}}
spec:
  storageClassName: strata-demo
  accessModes: [ReadWriteOnce]
  volumeMode: Block
  resources: {requests: {storage: 256Mi}}
YAML
  )
  say "$pvc_yaml"
  kc apply -f - <<<"$pvc_yaml"
  # No kube-controller-manager here: the demo does the PV controller's part, and only that.
  say "(this control plane has no kube-controller-manager: the demo does the PV controller's part —"
  say " names the provisioner on the claim, binds the claim to the PV csi-provisioner makes)"
  kubectl annotate pvc demo-db "volume.beta.kubernetes.io/storage-provisioner=$driver" >/dev/null
  uid=$(kubectl get pvc demo-db -o jsonpath='{.metadata.uid}')
  pv_for_claim() {
    kubectl get pv -o json | jq -r --arg uid "$uid" '.items[] | select(.spec.claimRef.uid == $uid) | .metadata.name'
  }
  has_pv() { [ -n "$(pv_for_claim)" ]; }
  wait_for 60 "csi-provisioner to make a PV for demo-db" has_pv
  pv=$(pv_for_claim)
  cap=$(kubectl get pv "$pv" -o jsonpath='{.spec.capacity.storage}')
  kubectl patch pv "$pv" --subresource=status --type=merge -p '{"status":{"phase":"Bound"}}' >/dev/null
  kubectl patch pvc demo-db --type=merge -p "{\"metadata\":{\"annotations\":{\"pv.kubernetes.io/bind-completed\":\"yes\",\"pv.kubernetes.io/bound-by-controller\":\"yes\"}},\"spec\":{\"volumeName\":\"$pv\"}}" >/dev/null
  kubectl patch pvc demo-db --subresource=status --type=merge \
    -p "{\"status\":{\"phase\":\"Bound\",\"accessModes\":[\"ReadWriteOnce\"],\"capacity\":{\"storage\":\"$cap\"}}}" >/dev/null
  kc get pvc demo-db
  kc get pv "$pv" -o custom-columns='PV:.metadata.name,HANDLE:.spec.csi.volumeHandle,DEVICE:.spec.csi.volumeAttributes.device,PORTALS:.spec.csi.volumeAttributes.portals'
  lun=$(kubectl get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}')
  [ "${lun%%/*}" = dev-a ] || die "strata-csi placed the volume on ${lun%%/*}, not on dev-a (most free sata)"
  lun=${lun#dev-a/}
  vol_title="PVC demo-db (LUN $lun)"
  if ((attacher == 1)); then
    # The node as kubelet and the node-driver-registrar leave it; the VolumeAttachment as the
    # attach-detach controller writes it. csi-attacher then calls ControllerPublishVolume, which
    # puts the node's IP (this machine, 127.0.0.1) on the LUN's access list.
    va=demo-db-attachment
    say "the node's part, as kubelet and the attach-detach controller would write it: Node demo-node,"
    say "its CSINode (nodeID demo-node@127.0.0.1), a VolumeAttachment of the PV to it"
    kubectl apply -f - <<YAML >/dev/null
apiVersion: v1
kind: Node
metadata: {name: demo-node}
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: demo-node}
spec:
  drivers: [{name: $driver, nodeID: "demo-node@127.0.0.1", topologyKeys: []}]
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: $va}
spec: {attacher: $driver, nodeName: demo-node, source: {persistentVolumeName: $pv}}
YAML
    attached() { [ "$(kubectl get volumeattachment "$va" -o jsonpath='{.status.attached}')" = true ]; }
    wait_for 60 "csi-attacher to attach $pv to demo-node" attached
    say "VolumeAttachment $va: attached (ControllerPublishVolume: 127.0.0.1 may connect)"
  else
    by_hand "no csi-attacher in $sidecars: ControllerPublishVolume's part, the node's IP on the LUN's access list"
    sa "$dev_a" lun access "$lun" --allow 127.0.0.1 >/dev/null
  fi
else
  say "PVC provisioning needs the CSI sidecars (csi-provisioner; not built by this project): set"
  say "STRATA_CSI_SIDECARS_DIR to show it. The demo volume is created with strata-admin instead, with"
  say "the metadata csi-provisioner --extra-create-metadata would pass (the PVC that owns it), and the"
  say "PVC object is created with kubectl (nothing provisions it: its storage class names no provisioner)."
  lun=pvc-demo-db
  vol_title="PVC demo-db (LUN $lun)"
  sa "$dev_a" lun create "$lun" --size 256MiB --tier sata --owner default --allow 127.0.0.1 \
    --meta csi.storage.k8s.io/pvc/name=demo-db --meta csi.storage.k8s.io/pvc/namespace=default
  pvc_yaml=$(
    cat <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: demo-db, namespace: default, labels: {app: demo-db}}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  volumeMode: Block
  resources: {requests: {storage: 256Mi}}
YAML
  )
  say "$pvc_yaml"
  kc apply -f - <<<"$pvc_yaml"
  kc get pvc demo-db --show-labels
fi
say "the LUN, owned by the PVC (what the policies select it by):"
sa "$dev_a" lun get "$lun"

# --- 5. the client and the sampler -------------------------------------------------------------
step "a client writes to $lun over NBD for the rest of the demo; a sampler records it"
t0_ms=$(now_ms)
# t since the client started, in seconds with one decimal.
t_now() {
  local d=$(($(now_ms) - t0_ms))
  printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}
events=$demo_dir/events.csv
mark() { printf '%s,%s\n' "$(t_now)" "$1" >>"$events"; }
: >"$events"
# Rate-limited random 4 KiB reads and writes on the first 64 MiB; 75 % of the written blocks repeat
# earlier ones (what dedup finds). continue_on_error counts errors instead of stopping at the first.
# shellcheck disable=SC2054 # the commas are fio's read,write pair
fio_args=(--name=demo-client --ioengine=nbd --uri="nbd://$portal_a/$lun" --rw=randrw --rwmixread=60
  --bs=4k --size=64m --iodepth=4 --rate_iops=180,120 --dedupe_percentage=75 --time_based
  --runtime=900 --continue_on_error=all --output-format=json --output="$demo_dir/fio.json")
show fio "${fio_args[@]}"
fio "${fio_args[@]}" >"$demo_dir/fio.log" 2>&1 &
fio_pid=$!
printf 'fio %s\n' "$fio_pid" >>"$pid_file"

csv=$demo_dir/iops.csv
# One row per 0.5 s: IOPS from the deltas of the LUN's op counters on dev-a (the device the client
# is connected to; after a move to another device dev-a forwards its I/O there), and where the LUN
# is: tier@device (the device that holds it: dev-b once dev-a says moved_to), and whether a live
# move is running (on either device).
sampler() {
  set +e
  local prev_ms='' prev_r=0 prev_w=0 next_ms row r w tier moved state ms dev place moving dt
  local b_row b_tier b_state
  echo "t,read_iops,write_iops,placement,moving" >"$csv"
  next_ms=$(now_ms)
  while :; do
    row=$({
      admin --timeout 2 --server "$dev_a" -o json lun stats "$lun"
      admin --timeout 2 --server "$dev_a" -o json lun get "$lun"
    } 2>/dev/null | jq -rs '[.[0].read.ops, .[0].write.ops, .[1].tier, .[1].moved_to,
      .[1].migration.state] | map(. // "" | tostring) | join(",")' 2>/dev/null)
    ms=$(now_ms)
    # Commas, not tabs: read would merge the empty fields that tabs (whitespace) delimit.
    if IFS=, read -r r w tier moved state <<<"$row" && [ -n "$tier" ]; then
      dev='dev-a'
      if [ -n "$moved" ]; then
        dev='dev-b'
        b_row=$(admin --timeout 2 --server "$dev_b" -o json lun get "$lun" 2>/dev/null |
          jq -r '[.tier, .migration.state] | map(. // "" | tostring) | join(",")')
        IFS=, read -r b_tier b_state <<<"$b_row"
        tier=$b_tier
        [ "$b_state" = MIGRATION_STATE_RUNNING ] && state=$b_state
      fi
      tier=${tier#TIER_CLASS_}
      place="${tier,,}@$dev"
      moving=0
      [ "$state" = MIGRATION_STATE_RUNNING ] && moving=1
      # A counter that went back (a new LUN object) starts a new base.
      if [ -n "$prev_ms" ] && ((r >= prev_r && w >= prev_w)); then
        dt=$((ms - prev_ms))
        ((dt > 0)) && printf '%d.%03d,%d,%d,%s,%d\n' $(((ms - t0_ms) / 1000)) $(((ms - t0_ms) % 1000)) \
          $(((r - prev_r) * 1000 / dt)) $(((w - prev_w) * 1000 / dt)) "$place" "$moving" >>"$csv"
      fi
      prev_ms=$ms prev_r=$r prev_w=$w
    fi
    next_ms=$((next_ms + 500))
    ms=$(now_ms)
    if ((next_ms > ms)); then
      sleep "0.$(printf '%03d' $((next_ms - ms)))"
    else
      next_ms=$ms
    fi
  done
}
sampler &
sampler_pid=$!
client_alive() { kill -0 "$fio_pid" 2>/dev/null; }
# run_until T: let the client run until T seconds after its start (it must stay alive).
run_until() {
  while (($(now_ms) - t0_ms < $1 * 1000)); do
    client_alive || die "the client (fio) stopped: $(tail -n 5 "$demo_dir/fio.log")"
    sleep 0.5
  done
}
# mean_iops FROM TO: the mean total IOPS of the samples in [FROM, TO) seconds.
mean_iops() {
  awk -F, -v a="$1" -v b="$2" 'NR > 1 && $1 >= a && $1 < b { s += $2 + $3; n++ }
    END { printf "%d", n ? s / n : 0 }' "$csv"
}
# t_plus S: the client's time now plus S seconds, whole.
t_plus() { awk -v a="$(t_now)" -v p="$1" 'BEGIN { printf "%d", a + p }'; }
# wait_client SECONDS WHAT CMD...: wait_for, and the client must stay alive meanwhile.
wait_client() {
  local s=$1 what=$2
  shift 2
  wait_for "$s" "$what" client_and "$@"
}
client_and() { client_alive && "$@"; }
say "client: fio (pid $fio_pid) at nbd://$portal_a/$lun, ~300 IOPS (180 read, 120 write), 4 KiB"
say "sampler: every 0.5 s -> $csv"

# The volume as the devices see it.
lun_json() { admin --timeout 5 --server "$1" -o json lun get "$lun" 2>/dev/null; }
# holder: the device that holds the LUN now (dev-a, or dev-b once dev-a forwards to it).
holder() {
  if [ -n "$(lun_json "$dev_a" | jq -r '.moved_to // ""')" ]; then echo dev-b; else echo dev-a; fi
}
holder_addr() { if [ "$(holder)" = dev-b ]; then echo "$dev_b"; else echo "$dev_a"; fi; }
lun_tier() { lun_json "$(holder_addr)" | jq -r '.tier | ltrimstr("TIER_CLASS_") | ascii_downcase'; }
placed_on() { [ "$(lun_tier)@$(holder)" = "$1" ]; }
obj_is() { # KIND NAME JQ: the object (in default, or cluster-scoped) satisfies JQ
  kubectl get "$1" "$2" -o json 2>/dev/null | jq -e "$3" >/dev/null
}
# events_of NAME: the Events of an object (cluster-scoped kinds record theirs in default).
events_of() {
  kc get events -n default --field-selector "involvedObject.name=$1" --sort-by=.lastTimestamp \
    -o custom-columns='LAST:.lastTimestamp,TYPE:.type,REASON:.reason,MESSAGE:.message'
}

# --- 6a. TieringPolicy: the hot volume goes to ssd, by itself ----------------------------------
step "TieringPolicy: the operator promotes the hot volume to ssd"
sustain=10
tiering_yaml=$(
  cat <<YAML
apiVersion: strata.io/v1alpha1
kind: TieringPolicy
metadata: {name: hot-to-ssd, namespace: default}
spec:
  selector: {matchLabels: {app: demo-db}}
  scope: IntraDevice
  rules:
    - {name: promote-hot, metric: TotalIOPS, comparison: Above, threshold: 200, sustainedFor: ${sustain}s, targetTier: ssd}
    - {name: demote-idle, metric: IdleSeconds, comparison: Above, threshold: 86400, targetTier: sata}
YAML
)
say "$tiering_yaml"
mark "TieringPolicy applied"
kc apply -f - <<<"$tiering_yaml"
tp_found() { obj_is tieringpolicy hot-to-ssd '.status.phase == "Active" and .status.matchedVolumes == 1'; }
wait_client 30 "TieringPolicy hot-to-ssd to find the volume (phase Active, 1 volume)" tp_found
kc get tieringpolicy hot-to-ssd
say "the client's ~300 IOPS are above promote-hot's 200: once they have held ${sustain} s, the operator"
say "moves the volume to ssd on dev-a (IntraDevice: dev-a has room on ssd). Waiting up to 90 s..."
tp_moving() { obj_is tieringpolicy hot-to-ssd '.status.lastMigration != null'; }
wait_client 90 "the TieringPolicy to start the move (status.lastMigration)" tp_moving
mark "operator: move to ssd"
say "the operator started the move at $(t_now) s of the client"
wait_client 60 "the volume on ssd@dev-a" placed_on ssd@dev-a
t_move=$(t_now)
say "on ssd@dev-a at $t_move s; the client kept going: $(client_alive && echo running)"
tp_recorded() { obj_is tieringpolicy hot-to-ssd '((.status.history // []) | length > 0) and .status.volumes[0].tier == "ssd"'; }
wait_client 20 "the TieringPolicy's status to record the move" tp_recorded
kc get tieringpolicy hot-to-ssd
show kubectl get tieringpolicy hot-to-ssd -o json "| jq .status.volumes,.status.history"
kubectl get tieringpolicy hot-to-ssd -o json | jq -r '
  (.status.volumes[] | "volume  pvc \(.pvc)  lun \(.lun)  \(.tier)@\(.device)  totalIOPS \(.totalIOPS // 0)  state \(.state)"),
  (.status.history[] | "history \(.time)  \(.volume)  \(.fromTier)@\(.fromDevice) -> \(.toTier)@\(.toDevice)  rule \(.rule): \(.reason)")'
events_of hot-to-ssd

# --- 6b. DedupPolicy: dedup on, the savings ----------------------------------------------------
step "DedupPolicy: the operator turns dedup on for the volume"
say "$lun has dedup $(lun_json "$(holder_addr)" | jq -r 'if .dedup then "on" else "off" end') (created without it)"
dedup_policy() { # MODE
  cat <<YAML
apiVersion: strata.io/v1alpha1
kind: DedupPolicy
metadata: {name: dedup-db, namespace: default}
spec:
  selector: {matchLabels: {app: demo-db}}
  mode: $1
  tiers: [ssd, sata]
  minSavingsRatio: 1.3
  evaluationWindow: 1h
YAML
}
say "$(dedup_policy Inline)"
mark "DedupPolicy Inline"
kc apply -f - <<<"$(dedup_policy Inline)"
dp_is() { obj_is deduppolicy dedup-db "$1"; }
wait_client 30 "the DedupPolicy to turn dedup on (state Deduplicating)" \
  dp_is '.status.volumes[0].state == "Deduplicating" and .status.volumes[0].dedup'
say "dedup on; the device folds the blocks already written in the background, and 75 % of the"
say "client's writes repeat earlier blocks. Waiting up to 30 s for the policy's ratio to pass 1.3..."
wait_client 30 "the DedupPolicy's ratio to pass 1.3" dp_is '.status.dedupRatio > 1.3'
kc get deduppolicy dedup-db
dedup_status() {
  kubectl get deduppolicy dedup-db -o json | jq -r '.status |
    "status: \(.matchedVolumes) volume(s), \((.logicalBytes // 0) / 1048576 * 10 | floor / 10) MiB logical, \((.uniqueBytes // 0) / 1048576 * 10 | floor / 10) MiB unique, ratio \(.dedupRatio // 0), \((.savedBytes // 0) / 1048576 * 10 | floor / 10) MiB saved",
    (.volumes[] | "volume  pvc \(.pvc)  \(.tier)@\(.device)  dedup \(.dedup)  state \(.state)")'
}
dedup_status
events_of dedup-db

# --- 6c. MaintenanceWindow: drain dev-a --------------------------------------------------------
run_until "$(awk -v a="$t_move" -v p="$phase_s" 'BEGIN { printf "%d", a + p }')"
step "MaintenanceWindow: the operator drains dev-a to dev-b and puts dev-a in Maintenance"
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mw_yaml=$(
  cat <<YAML
apiVersion: strata.io/v1alpha1
kind: MaintenanceWindow
metadata: {name: dev-a-disk-swap}
spec:
  deviceSelector: {matchLabels: {strata.io/device: dev-a}}
  schedule: {start: "$start", duration: 30m}
  drain:
    policy: MigrateVolumes
    leadTime: 0s
    targetDeviceSelector: {matchLabels: {strata.io/device: dev-b}}
  restore: false
YAML
)
say "$mw_yaml"
say "(starts now; restore: false: the client is connected to dev-a's portal, which forwards to dev-b"
say " once the volume moved; restoring would replace that forwarding LUN under the client)"
mark "MaintenanceWindow applied"
kc apply -f - <<<"$mw_yaml"
mw_is() { obj_is maintenancewindow dev-a-disk-swap "$1"; }
wait_client 30 "the MaintenanceWindow to start draining" \
  mw_is '.status.phase == "Draining" or .status.phase == "InMaintenance"'
kc get maintenancewindows
wait_client 120 "the MaintenanceWindow to reach InMaintenance" mw_is '.status.phase == "InMaintenance"'
mark "dev-a in Maintenance"
t_maint=$(t_now)
say "InMaintenance at $t_maint s; the client kept going: $(client_alive && echo running)"
kc get maintenancewindows
wait_client 30 "StorageDevice dev-a to reach phase Maintenance" phase_is dev-a Maintenance
kc get storagedevices -o wide
sa "$dev_a" device status | grep -E '^(Device|State|LUNs):'
say "$lun: $(lun_tier)@$(holder) (dev-a forwards the client's I/O to dev-b: on a node, strata-csi's"
say "path checker would switch the volume's paths to dev-b's portals)"

# DedupPolicy Disabled meanwhile: the operator turns dedup off on dev-b.
run_until "$(awk -v a="$t_maint" -v p="$phase_s" 'BEGIN { printf "%d", a + p / 4 }')"
step "DedupPolicy mode Disabled: the operator turns dedup off"
mark "DedupPolicy Disabled"
kc apply -f - <<<"$(dedup_policy Disabled)"
wait_client 30 "the DedupPolicy to turn dedup off (state Off)" \
  dp_is '.status.volumes[0].state == "Off" and (.status.volumes[0].dedup | not)'
say "$lun has dedup $(lun_json "$(holder_addr)" | jq -r 'if .dedup then "on" else "off" end') on $(holder)"
dedup_status

run_until "$(awk -v a="$t_maint" -v p="$phase_s" 'BEGIN { printf "%d", a + p * 3 / 4 }')"
step "MaintenanceWindow: finish (spec.finish: true)"
mark "finish: true"
kc patch maintenancewindow dev-a-disk-swap --type=merge -p '{"spec":{"finish":true}}'
wait_client 60 "the MaintenanceWindow to complete" mw_is '.status.phase == "Completed"'
wait_client 30 "StorageDevice dev-a Online again" phase_is dev-a Online
kc get maintenancewindows
kc get storagedevices
events_of dev-a-disk-swap
run_until "$(t_plus $((phase_s / 4)))"

# --- 7. results: client errors, the plot -------------------------------------------------------
step "the client's result and the picture"
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=''
# TERM, not INT: a background job of a script ignores SIGINT. fio then ends its jobs, writes its
# report and exits 128.
kill -TERM "$fio_pid"
deadline=$(($(now_ms) + 20000))
while is_ours "$fio_pid" && (($(now_ms) < deadline)); do sleep 0.1; done
is_ours "$fio_pid" && die "fio did not stop within 20 s of SIGTERM"
wait "$fio_pid" || true
fio_pid=''
fio_stopped=$(date -u +%Y-%m-%dT%H:%M:%S)
[ -s "$demo_dir/fio.json" ] || die "fio wrote no report: $(tail -n 5 "$demo_dir/fio.log")"
# fio's JSON report may follow warnings on the same stream: start at the first '{'.
fio_summary=$(sed -n '/^{/,$p' "$demo_dir/fio.json" | jq -r '[.jobs[] | (.error + (.total_err // 0)),
  .read.total_ios, .write.total_ios, (.job_runtime / 1000 | floor)] | @tsv')
read -r io_errors reads writes runtime_s <<<"$fio_summary"
say "fio: $reads reads and $writes writes in $runtime_s s, through the operator's live moves: $io_errors I/O errors"
((io_errors == 0)) || die "the client saw $io_errors I/O errors"
say "$lun now: $(lun_tier)@$(holder), dedup $(lun_json "$(holder_addr)" | jq -r '"\(.dedup), ratio \(.space.dedup_ratio * 100 | floor / 100)"')"

# --- 7b. the namespace's bill --------------------------------------------------------------------
step "UsageReport: what namespace default's volumes used (strata-operator's usage ledger)"
wait_for 30 "the UsageReport of namespace default" kubectl get usagereport -n default usage -o name
ur_is() { kubectl get usagereport -n default usage -o json 2>/dev/null | jq -e "$1" >/dev/null; }
wait_for 30 "the UsageReport to count the client's I/O up to its end" ur_is \
  ".status.volumeCount == 1 and .status.io.writeOps > 0 and .status.lastUpdate > \"$fio_stopped\""
kc get usagereports -A
show kubectl get usagereport -n default usage -o json "| jq .status"
kubectl get usagereport -n default usage -o json | jq -r '.status |
  "window \(.windowStart) .. \(.lastUpdate): \(.volumeCount) volume(s), \(.gibHours // 0) GiB-hours, cost \(.totalCost // 0)",
  "  \((.logicalBytes // 0) / 1048576 * 10 | floor / 10) MiB logical, \((.uniqueBytes // 0) / 1048576 * 10 | floor / 10) MiB unique; I/O \(.io.readOps // 0) reads (\((.io.readBytes // 0) / 1048576 | floor) MiB), \(.io.writeOps // 0) writes (\((.io.writeBytes // 0) / 1048576 | floor) MiB)",
  (.tiers[]? | "  tier \(.tier): \(.gibHours // 0) GiB-hours, cost \(.cost // 0)"),
  (.usage[]? | "  \(.tier)@\(.device): \(.gibHours // 0) GiB-hours, cost \(.cost // 0)")' |
  perl -pe 's/(\d+\.\d{5,}(?:e-?\d+)?|\d+(?:\.\d+)?e-\d+)/sprintf("%.3g", $1)/ge'

# The phases: runs of samples with the same placement (a live move is a phase of its own).
awk -F, 'NR > 1 { key = ($5 == 1 ? "moving" : $4)
    if (key != cur) { if (cur != "") print start "," $1 "," cur; cur = key; start = $1 }
    last = $1 }
  END { if (cur != "") print start "," last "," cur }' "$csv" >"$demo_dir/phases.csv"
# The data in the lower half, the phase names and the events above it (the 95th percentile sets the
# scale: a catch-up burst of the rate limiter may be cut off at the top).
ymax=$(awk -F, 'NR > 1 { print $2 + $3 }' "$csv" | sort -n |
  awk '{ v[NR] = $1 } END { i = int(NR * 0.95); if (i < 1) i = NR; print int(v[i] * 2.2) + 10 }')
xmax=$(awk -F, 'END { print $1 }' "$csv")
{
  cat <<GP
set terminal pngcairo size 1280,680 font "sans,11" noenhanced
set output "$demo_dir/plot.png"
set title "strata demo: $vol_title under a rate-limited fio client over NBD (0 I/O errors)" font "sans,13"
set xlabel "seconds since the client started      (grey: a live move in progress)"
set ylabel "IOPS (strata-admin lun stats, 0.5 s samples)"
set datafile separator ","
set key outside bottom center horizontal
set grid ytics lc rgb "#dddddd"
set xrange [0:$xmax]
set yrange [0:$ymax]
GP
  awk -F, 'BEGIN { c["sata@dev-a"] = "#fdae61"; c["ssd@dev-a"] = "#66bd63"; c["sata@dev-b"] = "#74add1"
      c["ssd@dev-b"] = "#b2abd2"
      c["moving"] = "#bbbbbb"; spare[0] = "#f46d43"; spare[1] = "#abd9e9"; spare[2] = "#d9ef8b"; ns = 0 }
    { col = ($3 in c) ? c[$3] : spare[ns++ % 3]; n++
      printf "set object %d rect from %s, graph 0 to %s, graph 1 fc rgb \"%s\" fs transparent solid 0.3 noborder behind\n", n, $1, $2, col
      if ($3 != "moving")
        printf "set label %d \"%s\" at %f, graph 0.95 center font \"sans,14\"\n", n, $3, ($1 + $2) / 2 }' \
    "$demo_dir/phases.csv"
  # Events: a dashed line each, its name hanging down from near the top beside it: on its right, or
  # on its left when the next event follows within 3 s (whose name then takes the right).
  awk -F, '{ t[NR] = $1; s[NR] = $2 } END { for (n = 1; n <= NR; n++) {
      side = (n < NR && t[n + 1] - t[n] < 3) ? "-0.6" : "1"
      printf "set arrow %d from %s, graph 0 to %s, graph 0.89 nohead dt 2 lc rgb \"#444444\"\n", 100 + n, t[n], t[n]
      printf "set label %d \"%s\" at %s, graph 0.89 right rotate by 90 offset %s,0 font \"sans,10\" tc rgb \"#333333\"\n", 100 + n, s[n], t[n], side } }' "$events"
  cat <<GP
plot "$csv" skip 1 using 1:(\$2+\$3) with lines lw 2 lc rgb "#222222" title "total", \\
     "" skip 1 using 1:2 with lines lw 1.5 lc rgb "#2166ac" title "read", \\
     "" skip 1 using 1:3 with lines lw 1.5 lc rgb "#b2182b" title "write"
GP
} >"$demo_dir/plot.gp"
gnuplot "$demo_dir/plot.gp" || die "gnuplot failed on $demo_dir/plot.gp"
say "phases (seconds since the client started):"
awk -F, '{ printf "  %6.1f - %6.1f  %s\n", $1, $2, $3 }' "$demo_dir/phases.csv"
step "done in $((SECONDS - t_demo)) s"
say "plot: $demo_dir/plot.png   (data: $csv, events: $events, gnuplot script: $demo_dir/plot.gp)"

# --- 8. leave or stop --------------------------------------------------------------------------
if ((keep == 1)); then
  say "" "still running (stopped by the next scripts/demo.sh run, or one by one with kill):"
  for entry in "${started[@]}"; do say "  ${entry%%:*}: pid ${entry##*:}  (log $demo_dir/${entry%%:*}.log)"; done
  say "  control plane: export KUBECONFIG=$KUBECONFIG; kubectl get sdev,tp,dp,mw,usagereports -A"
  say "                 stop: bash tests/testenv/kube-testenv.sh down $kube_dir"
  say "  $admin_bin --insecure --server $dev_a lun list"
  say "  nbdinfo --list nbd://$portal_a"
fi
