#!/usr/bin/env bash
# MaintenanceWindow end to end: the real apiserver, three real strata-stored (a, b, c) and
# strata-operator between them. Two LUNs on a hold data written by a real NBD client (qemu-io); on a
# third, a client (fio over NBD) on a's portal writes and verifies all through the first window
# (drain, hold, restore): 0 failed I/Os.
# A window whose targets lack room is refused before any copy; a window on a starting now moves
# both LUNs off live, puts a into Maintenance (a then holds nothing and refuses new LUNs), the data
# reads back byte-identical from the targets; `spec.finish: true` brings the LUNs back to a, a
# returns Online, the data is still identical.
# Then, with a 1 GiB LUN on a so that a copy runs for a while: a window aborted mid-drain leaves
# every LUN whole on a (no moved_to, data identical) and ends Aborted with a Online; a window whose
# operator is killed (-9) mid-drain is finished by a fresh operator: InMaintenance, each LUN moved
# once (one real copy, one stub on a, one MoveStarted Event each).
# A Daily window runs its first occurrence (drain, maintenance, finish, restore) and then waits
# for the next: phase Pending, status.nextStart = start + 24h, the occurrence in status.history,
# spec.finish set back, the LUNs back on a; `kubectl strata maintenance status --wait` settles on
# it (the second occurrence is a unit test's: no test waits a real day).
# Usage: maintenance_window_e2e_test.sh OPERATOR STORED ADMIN KUBECONFIG PLUGIN
set -uo pipefail
OPERATOR=$1 STORED=$2 ADMIN=$3 PLUGIN=$5
export KUBECONFIG=$4
. "$(dirname "$0")/../lib/assert.sh"
kubectl() { command kubectl --request-timeout=15s "$@"; }

for tool in qemu-io jq fio; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (scripts/install-deps.sh test)"; exit 1; }
done

work=$(mktemp -d /tmp/strata-mw-e2e.XXXXXX)
run=mw-e2e-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=() op_pid=''
cleanup() {
  [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null
  # The finalizer needs the operator: drop it, the test's objects are throwaway.
  for w in "$run-short" "$run" "$run-event" "$run-daily" "$run-abort" "$run-kill"; do
    kubectl patch maintenancewindow "$w" --type merge -p '{"metadata":{"finalizers":null}}' \
      >/dev/null 2>&1
  done
  kubectl delete maintenancewindow "$run-short" "$run" "$run-event" "$run-daily" "$run-abort" \
    "$run-kill" \
    --ignore-not-found --wait=false \
    >/dev/null 2>&1
  kubectl delete storagedevice "$run-a" "$run-b" "$run-c" --ignore-not-found >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# start_stored NAME SATA_SIZE: a device with one sata tier, every address from its ready file.
start_stored() {
  "$STORED" --device "$1" --tier "sata=$work/$1-sata:$2" --grpc 127.0.0.1:0 --insecure \
    --portal 127.0.0.1:0 --ready-file "$work/$1.ready" 2>>"$work/$1.log" &
  pids+=($!)
  wait_until 30 test -s "$work/$1.ready"
}
# c is small: with it as the only target the two LUNs do not fit. a and b take the 1 GiB LUN too.
check "device a serves" start_stored a 2GiB
check "device b serves" start_stored b 2GiB
check "device c serves" start_stored c 40MiB
grpc() { jq -r .grpc "$work/$1.ready"; }
nbd() { jq -r '.nbd[0]' "$work/$1.ready"; }
admin() { "$ADMIN" --insecure --server "$(grpc "$1")" -o json "${@:2}"; }
# The device that holds LUN $1 now (not a stub proxying elsewhere).
holder() {
  local d
  for d in a b c; do
    if admin "$d" lun list | jq -e --arg l "$1" \
      '.luns[]? | select(.name == $l and ((.moved_to // "") == ""))' >/dev/null; then
      echo "$d"
      return
    fi
  done
}

check "LUN l1 (32 MiB) on a" admin a lun create l1 --size 32MiB
check "LUN l2 (16 MiB) on a" admin a lun create l2 --size 16MiB
write_ok() { qemu-io -f raw "nbd://$(nbd a)/$1" -c "write -P $2 0 $3" >/dev/null; }
check "qemu-io writes l1" write_ok l1 0xa1 8M
check "qemu-io writes l2" write_ok l2 0xb2 4M
# read_ok DEVICE LUN PATTERN LEN: the data reads back through DEVICE's own portal.
read_ok() {
  qemu-io -f raw -r "nbd://$(nbd "$1")/$2" -c "read -P $3 0 $4" | grep -q "read $(($4))/"
}
l1_len=$((8 << 20)) l2_len=$((4 << 20))

for d in a b c; do
  pool=target
  [ "$d" = a ] && pool=under-maintenance
  [ "$d" = c ] && pool=small
  kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: $run-$d
  labels: {strata.io/test-run: $run, strata.io/test-device: $run-$d, pool: $pool}
spec:
  endpoint: $(grpc $d)
  tiers: [{class: sata, capacityBytes: 2147483648}]
YAML
done

start_operator() {
  "$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --label-selector "strata.io/test-run=$run" \
    --metrics-addr 0 --health-addr "127.0.0.1:$(free_port)" --device-resync 1 --volume-resync 1 \
    --log-level debug 2>>"$work/operator.log" &
  op_pid=$!
}
start_operator
sd() { kubectl get storagedevice "$run-$1" -o json | jq -r "$2"; }
sd_is() { [ "$(sd "$1" "$2")" = "$3" ]; }
for d in a b c; do check "device $d Online" wait_until 30 sd_is "$d" .status.phase Online; done

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# window NAME TARGET_POOL [MAX_MOVES [RECURRENCE]]: a window on a, starting now, one hour.
window() {
  kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: MaintenanceWindow
metadata:
  name: $1
  labels: {strata.io/test-run: $run}
spec:
  deviceSelector: {matchLabels: {strata.io/test-device: $run-a}}
  schedule: {start: "$now", duration: 1h${4:+, recurrence: $4}}
  drain:
    leadTime: 0s
    maxConcurrentMigrations: ${3:-2}
    targetDeviceSelector: {matchLabels: {strata.io/test-run: $run, pool: $2}}
YAML
}
mw() { kubectl get maintenancewindow "$1" -o json | jq -r "$2"; }
mw_is() { [ "$(mw "$1" "$2")" = "$3" ]; }
reason() { mw "$1" '.status.conditions[]? | select(.type=="Ready") | .reason'; }
reason_is() { [ "$(reason "$1")" = "$2" ]; }
no_copy_started() {
  admin a lun list | jq -e '[.luns[] | select((.migration.state // "") == "MIGRATION_STATE_RUNNING"
    or (.moved_to // "") != "")] | length == 0' >/dev/null &&
    admin c lun list | jq -e '(.luns // []) | length == 0' >/dev/null
}

# --- capacity short: refused before any copy.
window "$run-short" small
check "short window: Ready=False InsufficientCapacity" \
  wait_until 30 reason_is "$run-short" InsufficientCapacity
expect_eq "short window: phase Pending" "$(mw "$run-short" .status.phase)" "Pending"
expect_contains "the condition names the shortfall" \
  "$(mw "$run-short" '.status.conditions[] | select(.type=="Ready") | .message')" "short by"
check "no copy started, nothing on c" no_copy_started
check "Warning Event InsufficientCapacity" wait_until 15 bash -c \
  "kubectl get events --field-selector involvedObject.name=$run-short -o json |
   jq -e '.items[] | select(.reason==\"InsufficientCapacity\")' >/dev/null"
gone() { ! kubectl get maintenancewindow "$1" >/dev/null 2>&1; }
kubectl delete maintenancewindow "$run-short" --wait=false >/dev/null
check "deleting it runs the finalizer and lets it go" wait_until 30 gone "$run-short"
check "still nothing copied" no_copy_started

# --- the window: drain a to b/c, maintenance, finish, restore, with a client writing throughout.
# A client of a writes and verifies all along the drain, the hold and the restore: fio over NBD on
# a's portal (once w has moved, a passes its I/O on to the target, and through the move back its
# deleted stub goes on doing so until the target passes it back), random 4 KiB writes, each block
# read back and checked (crc32c) shortly after; an I/O error or a mismatch ends fio with an error at
# once. It is stopped (SIGINT, exit 128) once the LUNs are back.
check "LUN w (16 MiB) on a, for the client" admin a lun create w --size 16MiB
fio --name=w --ioengine=nbd --uri="nbd://$(nbd a)/w" --rw=randwrite --bs=4k --iodepth=4 \
  --size=16M --verify=crc32c --verify_backlog=64 --verify_fatal=1 --verify_state_save=0 \
  --time_based --runtime=900 --rate_iops=400 --status-interval=1 --output-format=json \
  --output="$work/fio-w.json" >"$work/fio-w.log" 2>&1 &
fio_pid=$!
pids+=("$fio_pid")
# fio's own count, from its status dumps (cumulative, one a second, JSON documents one after
# another, a text line where it stopped): fio_job FIELD is FIELD of the last; more_writes N: the
# client has written 100 more than N.
fio_job() { grep -v '^fio: ' "$work/fio-w.json" | jq -r ".jobs[0].$1" 2>/dev/null | tail -1; }
more_writes() { [ "$(fio_job write.total_ios)" -gt $(($1 + 100)) ] 2>/dev/null; }
check "the client writes to w before the window" wait_until 30 more_writes 0
window "$run" target
check "phase InMaintenance within 120 s" wait_until 120 mw_is "$run" .status.phase InMaintenance
check "a's StorageDevice has desiredState Maintenance" sd_is a .spec.desiredState Maintenance
check "a is in Maintenance" wait_until 30 sd_is a .status.phase Maintenance
a_empty() { admin a lun list | jq -e '[.luns[]? | select((.moved_to // "") == "")] | length == 0' \
  >/dev/null; }
check "a holds no LUN (stubs only)" a_empty
admin a lun create l9 --size 1MiB >/dev/null 2>&1; rc=$?
check "a refuses new LUNs in maintenance" test "$rc" -ne 0
expect_eq "status.volumes: three, all Moved" \
  "$(mw "$run" '[.status.volumes[] | .phase] | join(",")')" "Moved,Moved,Moved"
expect_eq "progress printer column" \
  "$(kubectl get mw "$run" --no-headers | awk '{print $4, $5, $6}')" "InMaintenance 3/3 LUNs,"
t1=$(holder l1) t2=$(holder l2)
check "l1 lives on a target ($t1)" test -n "$t1" -a "$t1" != a
check "l2 lives on a target ($t2)" test -n "$t2" -a "$t2" != a
check "l1 byte-identical on $t1" read_ok "$t1" l1 0xa1 "$l1_len"
check "l2 byte-identical on $t2" read_ok "$t2" l2 0xb2 "$l2_len"
tw=$(holder w)
check "w lives on a target ($tw)" test -n "$tw" -a "$tw" != a
check "the client's writes go on through a in maintenance" \
  wait_until 30 more_writes "$(fio_job write.total_ios)"

kubectl patch maintenancewindow "$run" --type merge -p '{"spec":{"finish":true}}' >/dev/null
check "finish: phase Completed within 120 s" wait_until 120 mw_is "$run" .status.phase Completed
check "a Online again" wait_until 30 sd_is a .status.phase Online
expect_eq "a's desiredState Online" "$(sd a .spec.desiredState)" "Online"
expect_eq "l1 back on a" "$(holder l1)" "a"
expect_eq "l2 back on a" "$(holder l2)" "a"
check "l1 byte-identical on a" read_ok a l1 0xa1 "$l1_len"
check "l2 byte-identical on a" read_ok a l2 0xb2 "$l2_len"
check "Events: DrainStarted, Drained, LunRestored" bash -c \
  "kubectl get events --field-selector involvedObject.name=$run -o json |
   jq -e '[.items[].reason] | (index(\"DrainStarted\") and index(\"Drained\") and index(\"LunRestored\"))' >/dev/null"
expect_eq "w back on a" "$(holder w)" "a"
check "the client's writes go on after the restore" \
  wait_until 30 more_writes "$(fio_job write.total_ios)"
check "the client still running (no error ended it)" kill -0 "$fio_pid"
kill -INT "$fio_pid"
wait "$fio_pid"
expect_eq "the client stops on SIGINT (128)" "$?" 128
expect_eq "the client: 0 failed I/Os, 0 mismatches (fio error 0)" "$(fio_job error)" 0
check "the client verified as it went ($(fio_job write.total_ios) writes, $(fio_job read.total_ios) read back)" \
  test "$(fio_job read.total_ios)" -gt 0
check "LUN w deleted (the windows below drain l1 and l2)" admin a lun delete w

# --- a move's end, not a poll, starts the next move: an operator that polls once an hour and
# sweeps once an hour still drains l1 then l2 one at a time and brings them back (only its
# MoveWatcher's long polls on the moves can requeue the window in time).
kill "$op_pid"
wait "$op_pid" 2>/dev/null
"$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --label-selector "strata.io/test-run=$run" \
  --metrics-addr 0 --health-addr "127.0.0.1:$(free_port)" --device-resync 3600 \
  --volume-resync 3600 --window-poll 3600 --log-level debug 2>>"$work/operator.log" &
op_pid=$!
window "$run-event" target 1
check "one at a time, hourly polls: InMaintenance within 60 s" \
  wait_until 60 mw_is "$run-event" .status.phase InMaintenance
expect_eq "both LUNs Moved" "$(mw "$run-event" '[.status.volumes[] | .phase] | join(",")')" \
  "Moved,Moved"
kubectl patch maintenancewindow "$run-event" --type merge -p '{"spec":{"finish":true}}' >/dev/null
check "and back: Completed within 60 s" wait_until 60 mw_is "$run-event" .status.phase Completed
expect_eq "l1 back on a" "$(holder l1)" "a"
expect_eq "l2 back on a" "$(holder l2)" "a"
check "the operator long-polled the moves" grep -q 'move of LUN .* ended' "$work/operator.log"
kill "$op_pid"
wait "$op_pid" 2>/dev/null
start_operator
check "a Online under the usual operator" wait_until 30 sd_is a .status.phase Online

# --- a Daily window: the first occurrence runs, then the window waits for the next.
window "$run-daily" target 2 Daily
"$PLUGIN" maintenance status "$run-daily" --wait --timeout 120s >"$work/daily-wait.out" 2>&1
expect_eq "daily: kubectl strata maintenance status --wait exits 0" "$?" 0
expect_contains "daily: ... at InMaintenance" "$(tail -3 "$work/daily-wait.out")" \
  "$run-daily: InMaintenance"
expect_eq "daily: phase InMaintenance" "$(mw "$run-daily" .status.phase)" InMaintenance
expect_eq "daily: nextStart is the occurrence under way" "$(mw "$run-daily" .status.nextStart)" "$now"
check "daily: a in Maintenance" wait_until 30 sd_is a .status.phase Maintenance
next=$(date -u -d "@$(($(date -d "$now" +%s) + 86400))" +%Y-%m-%dT%H:%M:%SZ)
"$PLUGIN" maintenance finish "$run-daily" --wait --timeout 180s >"$work/daily-finish.out" 2>&1
expect_eq "daily: kubectl strata maintenance finish --wait exits 0 (the occurrence Completed)" "$?" 0
expect_contains "daily: ... showed the next start" "$(cat "$work/daily-finish.out")" \
  "$run-daily: Pending  next start $next (last: $now Completed)"
"$PLUGIN" maintenance status "$run-daily" --wait --timeout 60s >/dev/null 2>&1
expect_eq "daily: status --wait between occurrences: settled, exit 0" "$?" 0
expect_eq "daily: Pending with nextStart = start + 24h" \
  "$(mw "$run-daily" '[.status.phase, .status.nextStart] | join(" ")')" "Pending $next"
expect_eq "daily: the Ready reason says Scheduled" "$(reason "$run-daily")" "Scheduled"
expect_eq "daily: one occurrence, Completed, in status.history" \
  "$(mw "$run-daily" '[.status.occurrences, (.status.history | length), .status.history[0].start,
    .status.history[0].result] | map(tostring) | join(" ")')" "1 1 $now Completed"
check "daily: lastCompleted set" test -n "$(mw "$run-daily" '.status.lastCompleted // ""')"
expect_eq "daily: no plan kept for the next occurrence" "$(mw "$run-daily" '.status.volumes // "none"')" none
check "daily: spec.finish set back to false" wait_until 30 mw_is "$run-daily" .spec.finish false
check "daily: a Online" wait_until 30 sd_is a .status.phase Online
expect_eq "daily: l1 back on a" "$(holder l1)" "a"
expect_eq "daily: l2 back on a" "$(holder l2)" "a"
check "daily: l1 byte-identical on a" read_ok a l1 0xa1 "$l1_len"
check "daily: Event OccurrenceCompleted" bash -c \
  "kubectl get events --field-selector involvedObject.name=$run-daily -o json |
   jq -e '.items[] | select(.reason==\"OccurrenceCompleted\")' >/dev/null"
expect_contains "daily: kubectl get shows Next-Start" \
  "$(kubectl get mw "$run-daily" --no-headers)" "$next"
kubectl delete maintenancewindow "$run-daily" --wait=false >/dev/null
check "daily: deleting it between occurrences lets it go" wait_until 30 gone "$run-daily"

# --- abort mid-copy: a 1 GiB LUN of real data keeps the drain busy.
big_len=$((1 << 30))
check "LUN big (1 GiB) on a" admin a lun create big --size 1GiB
check "qemu-io writes 1 GiB to big" write_ok big 0x5a 1G
# copying_or_drained: the window is Draining with bytes left to copy on some LUN (prints
# "copying"), or the drain already ended (a fast copy between two looks: prints "drained").
copying_or_drained() {
  local state
  state=$(mw "$1" '[.status.phase, ([.status.volumes[]? | select(.phase == "Moving" and
    .bytesCopied < .bytesTotal)] | length | tostring)] | join(" ")')
  case "$state" in
    "Draining 0" | Draining | Pending* | " "* | "") return 1 ;;
    Draining*) echo "$1: copying when acted on" ;;
    *) echo "$1: drained ($state) before a look saw a copy" ;;
  esac
}
window "$run-abort" target 1
check "abort window: a copy in flight (or done)" wait_until 120 copying_or_drained "$run-abort"
kubectl patch maintenancewindow "$run-abort" --type merge -p '{"spec":{"abort":true}}' >/dev/null
# Whether the abort met the copy or the copy won the race, the end state is the same: the abort
# cancels what runs and moves back what moved.
check "abort: phase Aborted within 180 s" wait_until 180 mw_is "$run-abort" .status.phase Aborted
echo "abort: volumes $(mw "$run-abort" '[.status.volumes[] | .lun + "=" + .phase] | join(",")')"
expect_eq "abort: Ready reason Aborted" "$(reason "$run-abort")" "Aborted"
check "abort: a Online" wait_until 30 sd_is a .status.phase Online
expect_eq "abort: a's desiredState Online" "$(sd a .spec.desiredState)" "Online"
for l in l1 l2 big; do
  expect_eq "abort: $l whole on a" "$(holder "$l")" "a"
  expect_eq "abort: lun get $l on a shows no moved_to" \
    "$(admin a lun get "$l" | jq -r '.moved_to // ""')" ""
done
check "abort: big byte-identical on a" read_ok a big 0x5a "$big_len"
check "abort: l1 byte-identical on a" read_ok a l1 0xa1 "$l1_len"
check "abort: l2 byte-identical on a" read_ok a l2 0xb2 "$l2_len"

# --- operator killed (-9) mid-drain: a fresh one resumes, no LUN moves twice.
window "$run-kill" target 1
check "kill window: a copy in flight (or done)" wait_until 120 copying_or_drained "$run-kill"
kill -9 "$op_pid"
wait "$op_pid" 2>/dev/null
echo "operator killed during: $(mw "$run-kill" '[.status.volumes[] | .lun + "=" + .phase] |
  join(",")')"
start_operator
check "kill: phase InMaintenance within 240 s" \
  wait_until 240 mw_is "$run-kill" .status.phase InMaintenance
expect_eq "kill: status.volumes all Moved" \
  "$(mw "$run-kill" '[.status.volumes[] | .lun + "=" + .phase] | sort | join(",")')" \
  "big=Moved,l1=Moved,l2=Moved"
expect_eq "kill: status.progress" "$(mw "$run-kill" .status.progress)" "3/3 LUNs, 100%"
check "kill: a in Maintenance" wait_until 30 sd_is a .status.phase Maintenance
check "kill: a holds no LUN (stubs only)" a_empty
# copies LUN: how many devices hold LUN as a real LUN (not a stub).
copies() {
  local d n=0
  for d in a b c; do
    admin "$d" lun list | jq -e --arg l "$1" \
      '.luns[]? | select(.name == $l and ((.moved_to // "") == ""))' >/dev/null && n=$((n + 1))
  done
  echo "$n"
}
for l in l1 l2 big; do
  expect_eq "kill: $l exists once" "$(copies "$l")" 1
  expect_eq "kill: $l on b" "$(holder "$l")" "b"
done
expect_eq "kill: a keeps one stub per LUN" \
  "$(admin a lun list | jq '[.luns[]? | select((.moved_to // "") != "")] | length')" 3
check "kill: big byte-identical on b" read_ok b big 0x5a "$big_len"
# Events of the window across both operators (an Event repeated is counted by .count): no LUN
# started twice (at most one MoveStarted each: the killed operator may die between a MigrateLun
# and its Event), no MoveFailed (a second MigrateLun of a moving or moved LUN fails), one Drained.
kill_events() { kubectl get events --field-selector "involvedObject.name=$run-kill" -o json; }
started=$(kill_events | jq -r '[.items[] | select(.reason == "MoveStarted") |
  {m: (.message | split(":")[0]), c: (.count // 1)}] | group_by(.m) |
  map(.[0].m + "=" + ([.[].c] | add | tostring)) | join(",")')
echo "kill: MoveStarted Events: $started"
check "kill: at most one MoveStarted per LUN" bash -c "! grep -Eq '=([2-9]|[0-9]{2,})' <<<'$started'"
expect_eq "kill: no MoveFailed Event" \
  "$(kill_events | jq '[.items[] | select(.reason == "MoveFailed")] | length')" 0
expect_eq "kill: one Drained Event" \
  "$(kill_events | jq '[.items[] | select(.reason == "Drained")] | length')" 1

if ! finish; then
  echo "---- operator log (tail) ----"
  tail -60 "$work/operator.log"
  exit 1
fi
