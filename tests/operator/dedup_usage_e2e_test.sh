#!/usr/bin/env bash
# DedupPolicy and the usage ledger end to end: the real apiserver, two real strata-stored (the
# second with --dedup off), strata-operator sweeping every second, LUNs owned by PVCs of two
# namespaces (made as strata-csi would, with the external-provisioner's metadata; the PVC objects
# are labelled by hand: no controller-manager is needed), and a real NBD client (qemu-io).
# - A DedupPolicy Inline turns dedup on (the device says so); duplicate writes raise the policy's
#   ratio; Disabled turns it off and new duplicate writes take space again; a device with dedup
#   off is named in the status.
# - The namespaces' UsageReports appear; their GiB-hours are size x (lastUpdate - windowStart),
#   within one sweep period, cost is GiB-hours x the StorageDevice's price, I/O is counted; the
#   sum over namespaces of the operator's metrics equals the device totals; a restarted operator
#   resumes the report instead of starting at 0.
# Usage: dedup_usage_e2e_test.sh OPERATOR STORED ADMIN KUBECONFIG
set -uo pipefail
OPERATOR=$1 STORED=$2 ADMIN=$3
export KUBECONFIG=$4
. "$(dirname "$0")/../lib/assert.sh"
# Every kubectl call is bounded: a wedged apiserver must not hang a poll past its deadline.
kubectl() { command kubectl --request-timeout=15s "$@"; }

work=$(mktemp -d /tmp/strata-dedup-e2e.XXXXXX)
run=dd-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
nsa=$run-a nsb=$run-b
period=1 # --volume-resync
op_pid='' stored_pids=()
cleanup() {
  [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null
  for p in "${stored_pids[@]}"; do kill "$p" 2>/dev/null; done
  kubectl delete storagedevice "$run-1" "$run-2" --ignore-not-found >/dev/null 2>&1
  # No namespace controller runs here: the namespaces stay Terminating; their objects go first.
  for ns in "$nsa" "$nsb"; do
    kubectl delete deduppolicy,usagereport,pvc --all -n "$ns" --wait=false >/dev/null 2>&1
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# start_stored NAME DEDUP: a device on loopback; its addresses land in $work/NAME.ready.
start_stored() {
  mkdir -p "$work/$1"
  "$STORED" --device "$1" --tier "ssd=$work/$1/ssd:1GiB" --tier "sata=$work/$1/sata:1GiB" \
    --dedup "$2" --grpc 127.0.0.1:0 --insecure --portal 127.0.0.1:0 --ready-file "$work/$1.ready" \
    2>>"$work/$1.log" &
  stored_pids+=($!)
  wait_until 30 test -s "$work/$1.ready"
}
check "strata-stored 1 (dedup on) serves" start_stored d1 on
check "strata-stored 2 (dedup off) serves" start_stored d2 off
g1=$(jq -r .grpc "$work/d1.ready") g2=$(jq -r .grpc "$work/d2.ready")
nbd1=$(jq -r '.nbd[0]' "$work/d1.ready")
admin1() { "$ADMIN" --insecure --server "$g1" "$@"; }
admin2() { "$ADMIN" --insecure --server "$g2" "$@"; }

for ns in "$nsa" "$nsb"; do kubectl create namespace "$ns" >/dev/null; done
kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: $run-1, labels: {strata.io/test-run: $run}}
spec:
  endpoint: "$g1"
  tiers:
    - {class: ssd, capacityBytes: 1073741824, pricePerGiBHour: 0.5}
    - {class: sata, capacityBytes: 1073741824, pricePerGiBHour: 0.1}
---
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: $run-2, labels: {strata.io/test-run: $run}}
spec:
  endpoint: "$g2"
  tiers:
    - {class: ssd, capacityBytes: 1073741824, pricePerGiBHour: 0.5}
    - {class: sata, capacityBytes: 1073741824, pricePerGiBHour: 0.25}
YAML

# The volumes, as strata-csi's CreateVolume makes them: owner = namespace, PVC metadata.
size_a=$((64 << 20)) size_b=$((32 << 20))
admin1 lun create "$run-data" --size 64MiB --tier ssd --owner "$nsa" --allow 127.0.0.1 \
  --meta "csi.storage.k8s.io/pvc/name=data" --meta "csi.storage.k8s.io/pvc/namespace=$nsa" >/dev/null
admin2 lun create "$run-logs" --size 32MiB --tier sata --owner "$nsb" \
  --meta "csi.storage.k8s.io/pvc/name=logs" --meta "csi.storage.k8s.io/pvc/namespace=$nsb" >/dev/null
pvc() {
  kubectl create -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $1, namespace: $2, labels: {strata.io/content: vm-image}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: $3}}
YAML
}
pvc data "$nsa" 64Mi
pvc logs "$nsb" 32Mi

metrics_port=$(free_port)
start_operator() {
  # --label-selector: other tests' objects on the shared control plane are not ours to touch.
  "$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --label-selector "strata.io/test-run=$run" \
    --metrics-addr "127.0.0.1:$metrics_port" --health-addr 0 --volume-resync "$period" \
    --device-resync 1 --usage-interval 2 --log-level debug 2>>"$work/operator.log" &
  op_pid=$!
}
start_operator

policy() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: DedupPolicy
metadata: {name: dp, namespace: $1, labels: {strata.io/test-run: $run}}
spec:
  selector: {matchLabels: {strata.io/content: vm-image}}
  mode: $2
YAML
}
policy "$nsa" Inline
policy "$nsb" Inline

lun1() { admin1 -o json lun get "$run-data"; }
lun_dedup_is() { [ "$(lun1 | jq -r .dedup)" = "$1" ]; }
dp() { kubectl get deduppolicy dp -n "$1" -o json; }
dp_is() { dp "$1" | jq -e "$2" >/dev/null; }
events() { kubectl get events -n "$1" -o json; }
has_event() { events "$1" | jq -e --arg r "$2" '[.items[] | select(.reason == $r)] | length > 0' >/dev/null; }

echo "== DedupPolicy Inline"
check "dedup turned on for the LUN (strata-admin lun get)" wait_until 30 lun_dedup_is true
check "Event DedupEnabled" wait_until 15 has_event "$nsa" DedupEnabled
check "status: the volume Deduplicating on $run-1" wait_until 15 dp_is "$nsa" \
  ".status.volumes[0] | .pvc == \"data\" and .state == \"Deduplicating\" and .dedup and .device == \"$run-1\" and .tier == \"ssd\" and (.since | length > 0)"
check "status: Ready=True, matchedVolumes 1" wait_until 15 dp_is "$nsa" \
  '.status.matchedVolumes == 1 and ([.status.conditions[] | select(.type == "Ready")][0].status == "True")'

# 16 MiB of one repeated 4 KiB block: one unique block.
check "qemu-io writes duplicate data over NBD" \
  timeout 60 qemu-io -f raw "nbd://$nbd1/$run-data" -c "write -P 0xab 0 16M"
check "the policy's ratio rises above 1.5" wait_until 30 dp_is "$nsa" '.status.dedupRatio > 1.5'
check "per-device totals" dp_is "$nsa" \
  ".status.devices[0] | .name == \"$run-1\" and .volumes == 1 and .logicalBytes >= 16777216 and .dedupEnabled"
cols=$(kubectl get deduppolicy dp -n "$nsa")
expect_contains "printer column Ratio" "$cols" "RATIO"
expect_contains "printer column Saved" "$cols" "SAVED"

echo "== a device with dedup off"
check "its volume says DeviceDedupDisabled" wait_until 30 dp_is "$nsb" \
  '.status.volumes[0].state == "DeviceDedupDisabled"'
check "Ready=False names the device" dp_is "$nsb" \
  "[.status.conditions[] | select(.type == \"Ready\")][0] | .status == \"False\" and .reason == \"DeviceDedupDisabled\" and (.message | contains(\"$run-2\"))"
expect_eq "the LUN there stays without dedup" "$(admin2 -o json lun get "$run-logs" | jq -r .dedup)" "false"

echo "== DedupPolicy Disabled"
policy "$nsa" Disabled
check "dedup turned off for the LUN" wait_until 30 lun_dedup_is false
check "Event DedupDisabled" wait_until 15 has_event "$nsa" DedupDisabled
unique_before=$(lun1 | jq -r '.space.unique_bytes | tonumber')
check "qemu-io writes more duplicate data" \
  timeout 60 qemu-io -f raw "nbd://$nbd1/$run-data" -c "write -P 0xcd 16M 16M"
unique_after=$(lun1 | jq -r '.space.unique_bytes | tonumber')
check "new duplicate writes no longer share (+16 MiB unique)" \
  test "$((unique_after - unique_before))" -ge $((16 << 20))
check "status: the volume Off" wait_until 15 dp_is "$nsa" '.status.volumes[0].state == "Off" and (.status.volumes[0].dedup | not)'

echo "== minSavingsRatio after evaluationWindow"
# Random data over the whole volume (ratio about 1, also after the fold), then Inline again with
# a bar it cannot reach: on, then off once it has been on for 3 s, and it stays off
# (BelowMinSavings) while the policy is unchanged.
head -c $((64 << 20)) /dev/urandom >"$work/random"
check "nbdcopy fills the volume with random data" \
  timeout 60 nbdcopy "$work/random" "nbd://$nbd1/$run-data"
kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: DedupPolicy
metadata: {name: dp, namespace: $nsa, labels: {strata.io/test-run: $run}}
spec:
  selector: {matchLabels: {strata.io/content: vm-image}}
  mode: Inline
  minSavingsRatio: 1.5
  evaluationWindow: 3s
YAML
check "dedup turned on again" wait_until 30 lun_dedup_is true
check "then off: BelowMinSavings after the window" wait_until 30 dp_is "$nsa" \
  '.status.volumes[0] | .state == "BelowMinSavings" and (.turnedOffAt | length > 0) and (.dedup | not)'
expect_eq "the device agrees" "$(lun1 | jq -r .dedup)" "false"
generation=$(dp "$nsa" | jq .metadata.generation)
check "marked with the policy generation" dp_is "$nsa" ".status.volumes[0].turnedOffGeneration == $generation"
below_event() {
  events "$nsa" | jq -e '[.items[] | select(.reason == "DedupDisabled" and (.message | contains("below minSavingsRatio")))] | length > 0' >/dev/null
}
check "Event DedupDisabled says why" wait_until 15 below_event

echo "== UsageReports"
ur() { kubectl get usagereport usage -n "$1" -o json; }
ur_is() { ur "$1" 2>/dev/null | jq -e "$2" >/dev/null; }
# At least 5 s of window, so the comparison below is not between two tiny numbers.
window_seconds='((.status.lastUpdate | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.status.windowStart | sub("\\.[0-9]+Z$"; "Z") | fromdate))'
check "the report of $nsa appears and runs 5 s" wait_until 60 ur_is "$nsa" "$window_seconds >= 5"
check "the report of $nsb appears and runs 5 s" wait_until 60 ur_is "$nsb" "$window_seconds >= 5"
check "writes counted: >= 32 MiB" wait_until 30 ur_is "$nsa" '.status.io.writeBytes >= 33554432'

# GiB-hours = size x (lastUpdate - windowStart), read from the report itself: no clock of ours.
# One sweep period of slack: the volume is billed from the first sweep that saw it.
gib_hours_match() { # NS SIZE PRICE
  ur "$1" | python3 -c '
import json, sys
from datetime import datetime
size, price, period = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
s = json.load(sys.stdin)["status"]
t = lambda x: datetime.strptime(x, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
hours = (t(s["lastUpdate"]) - t(s["windowStart"])) / 3600
want = size / 2**30 * hours
tol = size / 2**30 * period / 3600 + 1e-12
v = s["volumes"][0]
ok = abs(s["gibHours"] - want) <= tol and abs(v["gibHours"] - s["gibHours"]) <= 1e-12
ok = ok and abs(s["totalCost"] - s["gibHours"] * price) <= 1e-9 * max(1, s["totalCost"])
ok = ok and s["volumeCount"] == 1 and v["sizeBytes"] == size
print("  %s: %.9f GiB-h, want %.9f +- %.9f; cost %.9f" % (sys.argv[4], s["gibHours"], want, tol, s["totalCost"]))
sys.exit(0 if ok else 1)' "$2" "$3" "$period" "$1"
}
check "$nsa: GiB-hours = 64 MiB x window, cost at ssd 0.5" gib_hours_match "$nsa" "$size_a" 0.5
check "$nsb: GiB-hours = 32 MiB x window, cost at sata 0.25" gib_hours_match "$nsb" "$size_b" 0.25
check "$nsa: per-tier and per-device lines" ur_is "$nsa" \
  ".status.tiers[0].tier == \"ssd\" and .status.usage[0].device == \"$run-1\" and .status.logicalBytes >= 33554432"
cols=$(kubectl get usagereport -n "$nsa")
for c in COST GIB-H VOLUMES; do expect_contains "printer column $c" "$cols" "$c"; done

# The sum over namespaces of the per-namespace series equals the device totals, in one scrape.
sums_match() {
  curl -sf --max-time 10 "http://127.0.0.1:$metrics_port/metrics" | python3 -c '
import re, sys
ns_sum, dev = {}, {}
for line in sys.stdin:
    m = re.match(r"(strata_usage_gib_hours_total|strata_device_usage_gib_hours_total)\{(.*)\} (\S+)$", line)
    if not m: continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(2)))
    k = (labels["device"], labels["tier"])
    if m.group(1) == "strata_usage_gib_hours_total": ns_sum[k] = ns_sum.get(k, 0) + float(m.group(3))
    else: dev[k] = float(m.group(3))
ours = [k for k in dev if k[0].startswith(sys.argv[1])]
ok = len(ours) == 2 and all(dev[k] > 0 for k in ours)
ok = ok and all(abs(ns_sum.get(k, -1) - dev[k]) <= 1e-9 * max(1, dev[k]) for k in dev)
print("  device totals:", {k: dev[k] for k in ours}, "namespace sums:", {k: ns_sum.get(k) for k in ours})
sys.exit(0 if ok else 1)' "$run-"
}
check "metrics: sum over namespaces == device totals" wait_until 15 sums_match
metrics=$(curl -sf --max-time 10 "http://127.0.0.1:$metrics_port/metrics")
expect_contains "metrics: cost per namespace" "$metrics" "strata_usage_cost_total{namespace=\"$nsa\",tier=\"ssd\",device=\"$run-1\"}"
expect_contains "metrics: logical bytes" "$metrics" "strata_usage_logical_bytes{namespace=\"$nsa\"}"
expect_contains "metrics: unique bytes" "$metrics" "strata_usage_unique_bytes{namespace=\"$nsa\"}"

echo "== a restarted operator resumes the ledger"
stop_within 30 "$op_pid"; rc=$?; op_pid=
expect_eq "SIGTERM stops the operator with exit 0" "$rc" "0"
before=$(ur "$nsa")
gib_before=$(jq -r .status.gibHours <<<"$before")
start_before=$(jq -r .status.windowStart <<<"$before")
last_before=$(jq -r .status.lastUpdate <<<"$before")
start_operator
updated() { ur_is "$nsa" ".status.lastUpdate != \"$last_before\""; }
check "the report is written again" wait_until 30 updated
check "same window, GiB-hours went on from where they were" ur_is "$nsa" \
  ".status.windowStart == \"$start_before\" and .status.gibHours > $gib_before"
check "and still match size x window" gib_hours_match "$nsa" "$size_a" 0.5

if ! finish; then
  echo "---- operator log (tail) ----"; tail -60 "$work/operator.log"
  exit 1
fi
