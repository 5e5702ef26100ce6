#!/usr/bin/env bash
# StorageDevice end to end: a real strata-stored, the real apiserver, strata-operator between them.
# The status follows the device within seconds as it changes, disappears and returns; the
# operator drives spec.desiredState into the device; Events record the transitions; health and
# metrics endpoints answer; SIGTERM stops the operator cleanly.
# Usage: storage_device_e2e_test.sh OPERATOR STORED ADMIN KUBECONFIG
set -uo pipefail
OPERATOR=$1 STORED=$2 ADMIN=$3
export KUBECONFIG=$4
. "$(dirname "$0")/../lib/assert.sh"
# Every kubectl call is bounded: a wedged apiserver must not hang a poll past its deadline.
kubectl() { command kubectl --request-timeout=15s "$@"; }

work=$(mktemp -d /tmp/strata-op-e2e.XXXXXX)
name=sdev-e2e-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
stored_pid='' op_pid=''
cleanup() {
  [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null
  [ -n "$stored_pid" ] && kill "$stored_pid" 2>/dev/null
  kubectl delete storagedevice "$name" "$name-other" --ignore-not-found >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The first start binds port 0 and reports the port in its ready file (no free_port race); the
# restart below reuses that port, as the StorageDevice's endpoint names it.
grpc_port=0
start_stored() {
  rm -f "$work/ready"
  "$STORED" --device e2e-dev --tier "ssd=$work/ssd:1GiB" --tier "sata=$work/sata:4GiB" \
    --grpc "127.0.0.1:$grpc_port" --insecure --ready-file "$work/ready" 2>>"$work/stored.log" &
  stored_pid=$!
  wait_until 30 test -s "$work/ready"
}
check "strata-stored serves" start_stored
grpc_port=$(jq -r .grpc "$work/ready")
grpc_port=${grpc_port##*:}
device_id=$("$ADMIN" --insecure --server "127.0.0.1:$grpc_port" -o json device status | jq -r .device_id)

kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: $name
  labels: {strata.io/test-run: $name}
spec:
  endpoint: 127.0.0.1:$grpc_port
  region: eu-west-1
  tiers:
    - class: ssd
      capacityBytes: 1073741824
    - class: sata
      capacityBytes: 4294967296
YAML

metrics_port=$(free_port)
health_port=$(free_port)
# --label-selector: other tests' StorageDevices on the shared control plane are not ours to touch.
"$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --label-selector "strata.io/test-run=$name" \
  --metrics-addr "127.0.0.1:$metrics_port" \
  --health-addr "127.0.0.1:$health_port" --device-resync 1 --log-level debug 2>"$work/operator.log" &
op_pid=$!

# --max-time: a request that hangs must not outlive wait_until's deadline.
healthz() { curl -sf --max-time 2 "http://127.0.0.1:$health_port/healthz" >/dev/null; }
readyz() { curl -sf --max-time 2 "http://127.0.0.1:$health_port/readyz" >/dev/null; }
check "/healthz answers" wait_until 20 healthz
check "/readyz turns ready once the cache is synced" wait_until 20 readyz

st() { kubectl get storagedevice "$name" -o json | jq -r "$1"; }
is() { [ "$(st "$1")" = "$2" ]; }
cond() { st ".status.conditions[]? | select(.type==\"$1\") | .status"; }
cond_is() { [ "$(cond "$1")" = "$2" ]; }

t0=$(date +%s%N)
# The operator polls the device every second (--device-resync 1): each status change below is
# nominally seen within 1-2 s; the deadlines leave room for a loaded 2-core host and ASan.
check "status: phase Online within 20 s" wait_until 20 is .status.phase Online
echo "  first status after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_eq "Ready=True" "$(cond Ready)" "True"
expect_eq "Unreachable=False" "$(cond Unreachable)" "False"
expect_eq "Degraded=False" "$(cond Degraded)" "False"
expect_eq "deviceId from the device" "$(st .status.deviceId)" "$device_id"
expect_eq "capacity 5 GiB" "$(st .status.capacityBytes)" "$((5 << 30))"
expect_eq "two tiers observed" "$(st '[.status.tiers[].class] | join(",")')" "ssd,sata"
expect_eq "observedGeneration" "$(st .status.observedGeneration)" "$(st .metadata.generation)"
expect_eq "printer column Ready" "$(kubectl get sdev "$name" --no-headers | awk '{print $4}')" "True"

# A StorageDevice outside --label-selector is not this operator's.
kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: $name-other}
spec: {endpoint: "127.0.0.1:$grpc_port", tiers: [{class: ssd, capacityBytes: 1}]}
YAML

# The device changes: a LUN appears.
"$ADMIN" --insecure --server "127.0.0.1:$grpc_port" lun create vol-1 --size 64MiB >/dev/null
check "lunCount follows the device (1) within 15 s" wait_until 15 is .status.lunCount 1

# The device disappears...
stop_within 30 "$stored_pid" 2>/dev/null; stored_pid=
t0=$(date +%s%N)
check "phase Offline within 20 s of the device stopping" wait_until 20 is .status.phase Offline
echo "  noticed after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_eq "Unreachable=True" "$(cond Unreachable)" "True"
expect_eq "Ready=False" "$(cond Ready)" "False"
expect_eq "last known capacity kept" "$(st .status.capacityBytes)" "$((5 << 30))"
events() { kubectl get events -n default --field-selector "involvedObject.name=$name" -o json; }
has_event() { events | jq -e --arg r "$1" '[.items[] | select(.reason == $r)] | length > 0' >/dev/null; }
check "Warning Event DeviceUnreachable" wait_until 15 has_event DeviceUnreachable

# ... and returns on the same address.
check "strata-stored restarts" start_stored
t0=$(date +%s%N)
check "Ready=True again within 20 s" wait_until 20 cond_is Ready True
echo "  recovered after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_eq "phase Online" "$(st .status.phase)" "Online"
expect_eq "lunCount survived the restart" "$(st .status.lunCount)" "1"
ready_events() { events | jq '[.items[] | select(.reason == "DeviceReady")] | map(.count) | add'; }
# A function, so that each poll queries again ("$(ready_events)" as an argument of wait_until
# would be expanded once, before the first poll, and the wait would poll a stale value).
ready_events_are() { [ "$(ready_events)" = "$1" ]; }
check "DeviceReady Event recorded twice (aggregated count)" wait_until 15 ready_events_are 2

# spec.desiredState drives the device.
kubectl patch storagedevice "$name" --type=merge -p '{"spec":{"desiredState":"Maintenance"}}' >/dev/null
check "phase Maintenance within 15 s" wait_until 15 is .status.phase Maintenance
expect_eq "the device itself is in maintenance" \
  "$("$ADMIN" --insecure --server "127.0.0.1:$grpc_port" -o json device status | jq -r .state)" "DEVICE_STATE_MAINTENANCE"
check "Event DeviceStateChanged" wait_until 15 has_event DeviceStateChanged
kubectl patch storagedevice "$name" --type=merge -p '{"spec":{"desiredState":"Online"}}' >/dev/null
check "back Online within 15 s" wait_until 15 is .status.phase Online

# A tier the spec promises but the device lacks: Degraded.
kubectl patch storagedevice "$name" --type=json \
  -p '[{"op":"add","path":"/spec/tiers/-","value":{"class":"sas","capacityBytes":1}}]' >/dev/null
check "Degraded=True (TierMissing) within 15 s" wait_until 15 cond_is Degraded True
expect_eq "Degraded reason" "$(st '.status.conditions[] | select(.type=="Degraded") | .reason')" "TierMissing"
check "observedGeneration follows the spec" wait_until 15 is .status.observedGeneration "$(st .metadata.generation)"

# Metrics.
metrics=$(curl -sf --max-time 10 "http://127.0.0.1:$metrics_port/metrics")
expect_contains "metrics: reconciles counted" "$metrics" 'strata_operator_reconcile_total{controller="storagedevice",result="requeue"}'
expect_contains "metrics: durations" "$metrics" 'strata_operator_reconcile_duration_seconds_count{controller="storagedevice"}'
expect_contains "metrics: queue depth" "$metrics" 'strata_operator_workqueue_depth{name="storagedevice"}'
expect_contains "metrics: watch restarts" "$metrics" 'strata_operator_watch_restarts_total{resource="storagedevices"}'

# Status writes only on change: with the device steady, the resourceVersion stays put.
rv1=$(st .metadata.resourceVersion)
sleep 3
expect_eq "no status writes while nothing changes (3 resyncs)" "$(st .metadata.resourceVersion)" "$rv1"

expect_eq "a StorageDevice outside --label-selector is left alone" \
  "$(kubectl get storagedevice "$name-other" -o jsonpath='{.status}')" ""

stop_within 30 "$op_pid"; rc=$?; op_pid=
expect_eq "SIGTERM stops the operator with exit 0" "$rc" "0"

# Usage errors: exit 2 and a message naming the flag.
out=$("$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --log-format xml 2>&1); rc=$?
expect_eq "bad --log-format exits 2" "$rc" "2"
expect_contains "message names the flag" "$out" "--log-format: 'xml' is not text or json"
out=$("$OPERATOR" --insecure --kubeconfig /nonexistent 2>&1); rc=$?
expect_eq "missing kubeconfig exits 1" "$rc" "1"
expect_contains "message names the file" "$out" "/nonexistent"

if ! finish; then
  echo "---- operator log (tail) ----"; tail -40 "$work/operator.log"
  exit 1
fi
