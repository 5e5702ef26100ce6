#!/usr/bin/env bash
# kubectl-strata against the real kube-apiserver of tests/testenv: the objects are made directly
# (no operator runs; status goes through the status subresource), the plugin's tables are compared
# with golden files (golden/*.txt, ages and run-specific names masked), its JSON read with jq;
# `maintenance start/finish/abort` change the MaintenanceWindow as specified, `--wait` follows the
# status, bad input exits non-zero with a clear message, and `kubectl strata` finds the plugin on
# PATH.
# With STORED and ADMIN (strata-stored, strata-admin): `volumes` against real devices too, the
# live tier and device of a LUN before and after a live move to another device.
# Usage: plugin_test.sh KUBECTL_STRATA KUBECONFIG [STORED ADMIN]
# STRATA_UPDATE_GOLDEN=1 rewrites the golden files from this run's output.
set -uo pipefail
PLUGIN=$(readlink -f "$1")
export KUBECONFIG=$2
STORED=${3:-} ADMIN=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
# Every kubectl call is bounded: a wedged apiserver must not hang the test.
kubectl() { command kubectl --request-timeout=15s "$@"; }

run=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=plugin-$run
work=$(mktemp -d /tmp/strata-plugin-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for w in $(kubectl get maintenancewindows -o name 2>/dev/null | grep -- "-$run-"); do
    kubectl delete "$w" --wait=false >/dev/null 2>&1
  done
  kubectl delete storagedevice "dev-a-$run" "dev-b-$run" "dev-c-$run" "dev-d-$run" \
    --ignore-not-found >/dev/null 2>&1
  kubectl delete pv "pv-$run" "pv-live-$run" --ignore-not-found --wait=false >/dev/null 2>&1
  kubectl delete storageclass "ssd-$run" --ignore-not-found >/dev/null 2>&1
  # No namespace controller on the test control plane: the namespace stays Terminating, harmless.
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The run's random suffix and the window's unix time become fixed text of the same length, so the
# columns of the golden files line up.
mask() { sed -e "s/$run/XXXXXXXX/g" -e 's/maint-\(dev-[ab]-XXXXXXXX\)-[0-9]\{10\}/maint-\1-0000000000/g'; }
# golden NAME FILE: compares FILE with golden/NAME.txt (or rewrites it). Runs of spaces compare
# as one: a table listing cluster-wide objects (maintenance status) sizes its columns to every
# row, including other tests' objects on the shared apiserver that the comparison filters out.
golden() {
  if [ "${STRATA_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$2" "$here/golden/$1.txt"
  fi
  if diff -u <(tr -s ' ' <"$here/golden/$1.txt") <(tr -s ' ' <"$2") >"$work/$1.diff"; then
    pass "golden $1"
  else
    fail "golden $1:"
    cat "$work/$1.diff"
  fi
}
quiet() { "$@" >/dev/null; }
status_patch() { kubectl patch "$1" "$2" --subresource=status --type=merge -p "$3" >/dev/null; }

# --- the UsageReport CRD comes with the others (fixture strata_crds); make sure it is served.
check "UsageReports served" \
  wait_until 30 quiet kubectl get --raw /apis/strata.io/v1alpha1/usagereports

# --- the objects
kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: dev-a-$run
  labels: {strata.io/test-run: "$run"}
spec:
  endpoint: 127.0.0.1:50051
  region: eu-west-1
  jurisdiction: EU
  tiers:
    - {class: ssd, capacityBytes: 10737418240}
    - {class: sata, capacityBytes: 107374182400}
---
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: dev-b-$run
  labels: {strata.io/test-run: "$run"}
spec:
  endpoint: 127.0.0.1:50052
  region: eu-west-2
  tiers:
    - {class: ssd, capacityBytes: 21474836480}
---
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: ssd-$run}
provisioner: block.csi.strata.io
parameters: {tier: ssd}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-$run}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ssd-$run
  claimRef: {namespace: $ns, name: data}
  csi:
    driver: block.csi.strata.io
    volumeHandle: dev-a-$run/lun-1
    volumeAttributes: {device: dev-a-$run, portals: "127.0.0.1:10809,127.0.0.2:10809"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ssd-$run
  volumeName: pv-$run
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pending, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ssd-$run
  resources: {requests: {storage: 2Gi}}
---
apiVersion: strata.io/v1alpha1
kind: UsageReport
metadata: {name: usage, namespace: $ns}
spec: {}
YAML
check "objects created" quiet kubectl get -n "$ns" usagereport usage
status_patch storagedevice "dev-a-$run" '{"status":{"phase":"Online","lunCount":2,
  "portals":["127.0.0.1:10809"],
  "tiers":[{"class":"ssd","capacityBytes":10737418240,"usedBytes":2147483648,"healthy":true},
           {"class":"sata","capacityBytes":107374182400,"usedBytes":0,"healthy":true}]}}'
# No controller-manager binds the claim: the test writes what it would.
status_patch pvc data '{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],
  "capacity":{"storage":"1Gi"}}}' -n "$ns" 2>/dev/null ||
  kubectl -n "$ns" patch pvc data --subresource=status --type=merge \
    -p '{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}}' >/dev/null
# Ages that print the same for most of an hour: 10h and 30m.
since=$(date -u -d '-10 hours' +%Y-%m-%dT%H:%M:%SZ)
updated=$(date -u -d '-30 minutes' +%Y-%m-%dT%H:%M:%SZ)
kubectl -n "$ns" patch usagereport usage --subresource=status --type=merge -p '{"status":{
  "windowStart":"'"$since"'","lastUpdate":"'"$updated"'","volumeCount":1,
  "gibHours":130.5,"totalCost":5.625,"logicalBytes":1073741824,"uniqueBytes":536870912,
  "tiers":[{"tier":"ssd","gibHours":100,"cost":5},{"tier":"sata","gibHours":30.5,"cost":0.625}]}}' \
  >/dev/null

# --- devices
sel="strata.io/test-run=$run"
"$PLUGIN" devices -l "$sel" >"$work/devices.raw" 2>"$work/err"
expect_eq "devices exits 0" "$?" 0
mask <"$work/devices.raw" >"$work/devices.txt"
golden devices "$work/devices.txt"
json=$("$PLUGIN" devices -l "$sel" -o json)
expect_eq "devices -o json: two items" "$(jq '.items | length' <<<"$json")" 2
expect_eq "devices -o json: dev-a's LUNs" \
  "$(jq ".items[] | select(.metadata.name==\"dev-a-$run\") | .status.lunCount" <<<"$json")" 2
expect_contains "devices -o yaml" "$("$PLUGIN" devices -l "$sel" -o yaml)" "kind: StorageDevice"

# --- volumes
# It dials the devices: TLS (--tls-cert/--tls-key/--tls-ca) or --insecure must be chosen, before
# anything is asked (exit 2, naming the flag); the commands above need neither.
"$PLUGIN" volumes -n "$ns" >"$work/out" 2>"$work/err"
expect_eq "volumes with neither TLS nor --insecure: exit 2" "$?" 2
expect_contains "... names --tls-ca and --insecure" "$(cat "$work/err")" \
  "error: --tls-ca: is required (with --tls-cert and --tls-key for mutual TLS); plaintext to the management API only with an explicit --insecure"
expect_eq "... prints no table" "$(cat "$work/out")" ""
"$PLUGIN" volumes -n "$ns" --insecure --tls-ca "$work/none.crt" >/dev/null 2>"$work/err"
expect_eq "volumes --insecure with --tls-ca: exit 2" "$?" 2
expect_contains "... names --insecure" "$(cat "$work/err")" "error: --insecure: cannot be combined"
# dev-a's endpoint has no device behind it: the live tier is "?", with a warning naming it.
"$PLUGIN" volumes -n "$ns" --insecure 2>"$work/err" | mask >"$work/volumes.txt"
golden volumes "$work/volumes.txt"
expect_contains "volumes: warns of the silent device" "$(cat "$work/err")" \
  "warning: storagedevice dev-a-$run (127.0.0.1:50051)"
json=$("$PLUGIN" volumes -n "$ns" --insecure -o json)
expect_eq "volumes -o json: the claim's device/LUN" \
  "$(jq -r '.items[] | select(.pvc=="data") | "\(.device)/\(.lun)/\(.requestedTier)/\(.portals | join(","))"' <<<"$json")" \
  "dev-a-$run/lun-1/ssd/127.0.0.1:10809,127.0.0.2:10809"
expect_contains "volumes -A shows the namespace" "$("$PLUGIN" volumes -A --insecure | grep -- "$ns")" \
  "dev-a-$run"

# --- usage
"$PLUGIN" usage -n "$ns" 2>&1 | mask >"$work/usage.txt"
golden usage "$work/usage.txt"
json=$("$PLUGIN" usage -n "$ns" -o json)
expect_eq "usage -o json: total cost" "$(jq .status.totalCost <<<"$json")" 5.625
expect_eq "usage -A -o json: this namespace's report" \
  "$("$PLUGIN" usage -A -o json | jq -r ".items[] | select(.metadata.namespace==\"$ns\") | .status.gibHours")" \
  130.5

# --- maintenance start: a window on dev-a selecting it by the strata.io/device label.
out=$("$PLUGIN" maintenance start "dev-a-$run" --reason "firmware 2.1" --duration 2h 2>&1)
expect_eq "maintenance start exits 0" "$?" 0
win=$(sed -n 's|^maintenancewindow.strata.io/\(.*\) created$|\1|p' <<<"$out")
expect_contains "maintenance start names the window" "$win" "maint-dev-a-$run-"
w=$(kubectl get maintenancewindow "$win" -o json)
expect_eq "window: selector" "$(jq -r '.spec.deviceSelector.matchLabels["strata.io/device"]' <<<"$w")" "dev-a-$run"
expect_eq "window: reason" "$(jq -r '.metadata.annotations["strata.io/reason"]' <<<"$w")" "firmware 2.1"
expect_eq "window: duration, restore" "$(jq -c '[.spec.schedule.duration, .spec.restore]' <<<"$w")" '["2h",true]'
start=$(jq -r .spec.schedule.start <<<"$w")
age=$(( $(date +%s) - $(date -d "$start" +%s) ))
check "window: starts now ($start)" test "$age" -ge 0 -a "$age" -le 60
expect_eq "device labelled for the selector" \
  "$(kubectl get storagedevice "dev-a-$run" -o jsonpath='{.metadata.labels.strata\.io/device}')" "dev-a-$run"
"$PLUGIN" maintenance start "dev-a-$run" >/dev/null 2>"$work/err"
expect_eq "a second window on the same device: exit 1" "$?" 1
expect_contains "... says which window" "$(cat "$work/err")" "already has maintenance window \"$win\""

# What the reconciler would write mid-drain; then the tables.
status_patch maintenancewindow "$win" '{"status":{"phase":"Draining","progress":"1/2 LUNs, 62%",
  "deviceCount":1,"devices":[{"name":"dev-a-'"$run"'","phase":"Draining","volumesRemaining":1}],
  "volumes":[
    {"lun":"lun-1","fromDevice":"dev-a-'"$run"'","toDevice":"dev-b-'"$run"'","phase":"Moved",
     "bytesCopied":1073741824,"bytesTotal":1073741824},
    {"lun":"lun-2","fromDevice":"dev-a-'"$run"'","toDevice":"dev-b-'"$run"'","phase":"Moving",
     "bytesCopied":268435456,"bytesTotal":1073741824,"rate":52428800,"eta":"16s"}]}}'
"$PLUGIN" maintenance status 2>&1 | sed -n "1p;/-$run-/p" | mask |
  sed -E '2,$s/[0-9]+[smhdy]([0-9]+[smhd])?$/AGE/' >"$work/maintenance_list.txt"
golden maintenance_list "$work/maintenance_list.txt"
"$PLUGIN" maintenance status "$win" 2>&1 | mask |
  sed -E -e 's/^(Start: +).*/\1START/' -e 's/^(Age: +).*/\1AGE/' >"$work/maintenance_detail.txt"
golden maintenance_detail "$work/maintenance_detail.txt"
# -o yaml says what -o json says (PyYAML reads it back; YAML 1.1, so quoting matters).
norm_json() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }
norm_yaml() { python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin), sort_keys=True))'; }
expect_eq "maintenance status NAME: -o yaml == -o json" \
  "$("$PLUGIN" maintenance status "$win" -o yaml | norm_yaml)" \
  "$("$PLUGIN" maintenance status "$win" -o json | norm_json)"
expect_eq "devices: -o yaml == -o json" "$("$PLUGIN" devices -l "$sel" -o yaml | norm_yaml)" \
  "$("$PLUGIN" devices -l "$sel" -o json | norm_json)"
expect_eq "maintenance status NAME -o json" \
  "$("$PLUGIN" maintenance status "$win" -o json | jq -r '.status.volumes[1].bytesCopied')" 268435456

# --- finish by device name, --wait until Completed (the test plays the reconciler).
"$PLUGIN" maintenance finish "dev-a-$run" --wait --timeout 30s >"$work/finish.out" 2>&1 &
finish_pid=$!
wait_until 15 test "$(kubectl get maintenancewindow "$win" -o jsonpath='{.spec.finish}')" = true
expect_eq "finish sets spec.finish" "$(kubectl get maintenancewindow "$win" -o jsonpath='{.spec.finish}')" true
status_patch maintenancewindow "$win" '{"status":{"phase":"Restoring"}}'
status_patch maintenancewindow "$win" '{"status":{"phase":"Completed","progress":"2/2 LUNs, 100%"}}'
wait "$finish_pid"
expect_eq "finish --wait exits 0 at Completed" "$?" 0
expect_contains "finish --wait showed the phases" "$(cat "$work/finish.out")" "$win: Completed"
"$PLUGIN" maintenance abort "$win" >/dev/null 2>"$work/err"
expect_eq "abort of a completed window: exit 1" "$?" 1
expect_contains "... says it ended" "$(cat "$work/err")" "has already ended (Completed)"

# --- start --wait on dev-b, which nothing drains: the timeout ends it; then abort by name.
"$PLUGIN" maintenance start "dev-b-$run" --no-restore --wait --timeout 2s >"$work/b.out" 2>"$work/err"
expect_eq "start --wait past its timeout: exit 1" "$?" 1
expect_contains "... says it timed out" "$(cat "$work/err")" "timed out after 2s"
winb=$(sed -n 's|^maintenancewindow.strata.io/\(.*\) created$|\1|p' "$work/b.out")
expect_eq "window b: restore false" "$(kubectl get maintenancewindow "$winb" -o jsonpath='{.spec.restore}')" false
"$PLUGIN" maintenance abort "$winb" -o json >"$work/abort.json"
expect_eq "abort -o json: spec.abort" "$(jq .spec.abort "$work/abort.json")" true

# --- status --wait: follows a window (by a watch) until it settles.
# recurring NAME: a Daily window on dev-b (the test plays the reconciler).
recurring() {
  kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: MaintenanceWindow
metadata: {name: $1}
spec:
  deviceSelector: {matchLabels: {strata.io/device: dev-b-$run}}
  schedule: {start: "2030-01-01T02:00:00Z", duration: 1h, recurrence: Daily}
YAML
}
winr=maint-rec-$run-1
check "a Daily window" recurring "$winr"
status_patch maintenancewindow "$winr" '{"status":{"phase":"Draining","progress":"0/1 LUNs, 0%",
  "nextStart":"2030-01-01T02:00:00Z"}}'
"$PLUGIN" maintenance status "$winr" --wait --timeout 60s >"$work/wait1.out" 2>&1 &
wait_pid=$!
status_patch maintenancewindow "$winr" '{"status":{"phase":"InMaintenance","progress":"1/1 LUNs, 100%"}}'
wait "$wait_pid"
expect_eq "status --wait: exit 0 at InMaintenance" "$?" 0
expect_contains "status --wait: showed InMaintenance" "$(cat "$work/wait1.out")" \
  "$winr: InMaintenance  1/1 LUNs, 100%"
"$PLUGIN" maintenance finish "$winr" >"$work/finish-rec.out" 2>&1
expect_contains "finish on a recurring window: this occurrence only" \
  "$(cat "$work/finish-rec.out")" "the series goes on"
# The occurrence ends: Pending for the next, the occurrence in history.
status_patch maintenancewindow "$winr" '{"status":{"phase":"Restoring"}}'
"$PLUGIN" maintenance status "$winr" --wait --timeout 60s >"$work/wait2.out" 2>&1 &
wait_pid=$!
status_patch maintenancewindow "$winr" '{"status":{"phase":"Pending","progress":null,
  "nextStart":"2030-01-02T02:00:00Z","occurrences":1,"lastCompleted":"2030-01-01T03:00:00Z",
  "history":[{"start":"2030-01-01T02:00:00Z","end":"2030-01-01T03:00:00Z","result":"Completed"}]}}'
wait "$wait_pid"
expect_eq "status --wait: exit 0 when the occurrence Completed" "$?" 0
expect_contains "status --wait: shows the next start" "$(cat "$work/wait2.out")" \
  "$winr: Pending  next start 2030-01-02T02:00:00Z (last: 2030-01-01T02:00:00Z Completed)"
expect_contains "maintenance status NAME: recurrence and next start" \
  "$("$PLUGIN" maintenance status "$winr")" "Next start:   2030-01-02T02:00:00Z"
expect_contains "maintenance status: NEXT START column" \
  "$("$PLUGIN" maintenance status | grep -- "$winr")" "2030-01-02T02:00:00Z"
"$PLUGIN" maintenance finish "$winr" >/dev/null 2>"$work/err"
expect_eq "finish between occurrences: exit 1" "$?" 1
expect_contains "... says nothing is under way" "$(cat "$work/err")" "no occurrence is under way"
# An occurrence that Failed: exit 1, with the message.
status_patch maintenancewindow "$winr" '{"status":{"history":[{"start":"2030-01-02T02:00:00Z",
  "end":"2030-01-02T02:10:00Z","result":"Failed","message":"a LUN could not be moved"}]}}'
"$PLUGIN" maintenance status "$winr" --wait --timeout 60s >/dev/null 2>"$work/err"
expect_eq "status --wait: exit 1 when the occurrence Failed" "$?" 1
expect_contains "... names it" "$(cat "$work/err")" \
  "the occurrence at 2030-01-02T02:00:00Z ended Failed: a LUN could not be moved"
# Still draining at the deadline: exit 1 after --timeout.
status_patch maintenancewindow "$winr" '{"status":{"phase":"Draining"}}'
"$PLUGIN" maintenance status "$winr" --wait --timeout 2s >/dev/null 2>"$work/err"
expect_eq "status --wait past its timeout: exit 1" "$?" 1
expect_contains "... says it timed out" "$(cat "$work/err")" "timed out after 2s"
status_patch maintenancewindow "$winr" '{"status":{"phase":"Failed","conditions":[{"type":"Ready",
  "status":"False","reason":"Failed","message":"unwound","lastTransitionTime":"2030-01-02T02:10:00Z"}]}}'
"$PLUGIN" maintenance status "$winr" --wait --timeout 60s >/dev/null 2>"$work/err"
expect_eq "status --wait on a Failed window: exit 1" "$?" 1
expect_contains "... with the reason" "$(cat "$work/err")" "ended Failed: unwound"
"$PLUGIN" maintenance status --wait >/dev/null 2>&1
expect_eq "status --wait without a name: exit 2" "$?" 2

# --- KUBECONFIG=a:b merged as kubectl merges it: the context in one file, cluster and user in
# the other (which also has a context of the same name that must lose to the first file's).
kubectl config view --raw --flatten -o json >"$work/full.json"
python3 - "$work" <<'PY'
import json, sys, yaml
work = sys.argv[1]
full = json.load(open(work + "/full.json"))
ctx = [c for c in full["contexts"] if c["name"] == full["current-context"]][0]
merged = {"name": "merged", "context": dict(ctx["context"])}
yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "merged",
                "contexts": [merged]}, open(work + "/ctx.yaml", "w"))
yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "decoy",
                "clusters": full["clusters"], "users": full["users"],
                "contexts": [{"name": "merged", "context": {"cluster": "decoy", "user": "decoy"}},
                             {"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}}]},
               open(work + "/creds.yaml", "w"))
PY
names() { jq -r '[.items[].metadata.name] | sort | join(",")'; }
KUBECONFIG="$work/ctx.yaml:$work/missing.yaml:$work/creds.yaml" "$PLUGIN" devices -l "$sel" \
  -o json >"$work/merged.json" 2>"$work/err"
expect_eq "KUBECONFIG=ctx:missing:creds: exit 0" "$?" 0
expect_eq "... lists the devices" "$(names <"$work/merged.json")" "dev-a-$run,dev-b-$run"
KUBECONFIG="$work/creds.yaml:$work/ctx.yaml" "$PLUGIN" devices >/dev/null 2>"$work/err"
expect_eq "KUBECONFIG=creds:ctx (the decoy context first): exit 1" "$?" 1
expect_contains "... names the missing cluster" "$(cat "$work/err")" \
  "clusters: no entry named 'decoy'"

# --- bad input
"$PLUGIN" maintenance start "nope-$run" >/dev/null 2>"$work/err"
expect_eq "unknown device: exit 1" "$?" 1
expect_eq "... message" "$(cat "$work/err")" "error: storagedevice \"nope-$run\" not found"
"$PLUGIN" maintenance status "nope-$run" >/dev/null 2>"$work/err"
expect_eq "unknown window: exit 1" "$?" 1
expect_eq "... message" "$(cat "$work/err")" "error: maintenancewindow \"nope-$run\" not found"
"$PLUGIN" maintenance finish "nope-$run" >/dev/null 2>"$work/err"
expect_eq "finish of an unknown window: exit 1" "$?" 1
"$PLUGIN" devices -o xml >/dev/null 2>"$work/err"
expect_eq "bad -o: exit 2" "$?" 2
expect_contains "... message" "$(cat "$work/err")" 'unknown output format "xml"'
"$PLUGIN" usage -n "nope-$run" >/dev/null 2>"$work/err"
expect_eq "no UsageReport: exit 1" "$?" 1
"$PLUGIN" --kubeconfig "$work/missing" devices >/dev/null 2>"$work/err"
expect_eq "missing kubeconfig: exit 1" "$?" 1
expect_contains "... names the file" "$(cat "$work/err")" "$work/missing"

expect_contains "--help: the client TLS flags" "$("$PLUGIN" --help)" \
  "--insecure           plaintext to the devices instead (volumes needs TLS or this)"

# --- volumes against real devices: the tier and device come from them, after a move too. The
# devices serve mutual TLS (certificates from tests/lib/test_ca.sh): the plugin presents its own.
if [ -n "$STORED" ]; then
  # shellcheck source=tests/lib/test_ca.sh
  source "$(dirname "${BASH_SOURCE[0]}")/../lib/test_ca.sh"
  ca=$work/ca
  test_ca_init "$ca"
  test_ca_issue "$ca" stored-c both IP:127.0.0.1
  test_ca_issue "$ca" stored-d both IP:127.0.0.1
  test_ca_issue "$ca" admin client
  test_ca_issue "$ca" kubectl client
  # start_stored NAME: a device with ssd and sata tiers, every address from its ready file.
  start_stored() {
    "$STORED" --device "$1" --tier "ssd=$work/$1-ssd:64MiB" --tier "sata=$work/$1-sata:64MiB" \
      --grpc 127.0.0.1:0 --tls-cert "$ca/stored-$1/tls.crt" --tls-key "$ca/stored-$1/tls.key" \
      --tls-client-ca "$ca/ca.crt" --portal 127.0.0.1:0 --ready-file "$work/$1.ready" \
      2>>"$work/$1.log" &
    pids+=($!)
    wait_until 30 test -s "$work/$1.ready"
  }
  grpc() { jq -r .grpc "$work/$1.ready"; }
  admin() {
    "$ADMIN" --tls-cert "$ca/admin/tls.crt" --tls-key "$ca/admin/tls.key" --tls-ca "$ca/ca.crt" "$@"
  }
  tls=(--tls-cert "$ca/kubectl/tls.crt" --tls-key "$ca/kubectl/tls.key" --tls-ca "$ca/ca.crt")
  check "strata-stored c serves" start_stored c
  check "strata-stored d serves" start_stored d
  check "LUN on c (sata)" quiet admin --server "$(grpc c)" lun create lun-live --size 8MiB --tier sata
  kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: dev-c-$run, labels: {strata.io/test-run: "$run"}}
spec: {endpoint: "$(grpc c)", tiers: [{class: sata, capacityBytes: 67108864}]}
---
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: dev-d-$run, labels: {strata.io/test-run: "$run"}}
spec: {endpoint: "$(grpc d)", tiers: [{class: sata, capacityBytes: 67108864}]}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-live-$run}
spec:
  capacity: {storage: 8Mi}
  accessModes: [ReadWriteOnce]
  claimRef: {namespace: $ns, name: live}
  csi: {driver: block.csi.strata.io, volumeHandle: dev-c-$run/lun-live}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: live, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: pv-live-$run
  resources: {requests: {storage: 8Mi}}
YAML
  live() {
    "$PLUGIN" volumes -n "$ns" -o json "${tls[@]}" 2>/dev/null |
      jq -r '.items[] | select(.pvc=="live") | "\(.liveDevice) \(.tier) \(.portals | length)"'
  }
  expect_eq "volumes: live device, tier, portals from the device" "$(live)" "dev-c-$run sata 1"
  # Plaintext to a TLS device does not get an answer: "?" and a warning, no wrong data.
  expect_eq "volumes --insecure to TLS devices: no live device, an error instead" \
    "$("$PLUGIN" volumes -n "$ns" -o json --insecure 2>/dev/null |
      jq -r '.items[] | select(.pvc=="live") | "\(has("liveDevice")) \(has("deviceError"))"')" \
    "false true"
  check "LUN moved live to d's ssd" quiet admin --server "$(grpc c)" lun migrate lun-live \
    --to-device "$(grpc d)" --tier ssd --wait
  expect_eq "volumes: follows moved_to to d" "$(live)" "dev-d-$run ssd 1"
  expect_contains "volumes table: the device it came from" \
    "$("$PLUGIN" volumes -n "$ns" "${tls[@]}" 2>/dev/null | grep '^live ')" "dev-d-$run (from dev-c-$run)"
fi

# --- kubectl's plugin discovery: `kubectl strata` runs kubectl-strata from PATH.
bin=$work/bin
mkdir -p "$bin"
ln -s "$PLUGIN" "$bin/kubectl-strata"
"$PLUGIN" devices -l "$sel" >"$work/devices.raw" 2>&1
PATH="$bin:$PATH" command kubectl strata devices -l "$sel" >"$work/via_kubectl.raw" 2>&1
expect_eq "kubectl strata devices exits 0" "$?" 0
check "kubectl strata devices prints the same table" diff "$work/devices.raw" "$work/via_kubectl.raw"
finish
