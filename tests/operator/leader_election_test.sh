#!/usr/bin/env bash
# Two strata-operator processes with --leader-elect against the real apiserver and a real
# strata-stored: exactly one runs the controllers at any moment (sampled from both processes'
# metrics the whole time); when the leader is killed (SIGKILL, no release) the other takes over
# within the lease time and keeps the StorageDevice's status following the device; a leader frozen
# (SIGSTOP) past its lease loses it, and when it wakes it acts no more and exits.
# Usage: leader_election_test.sh OPERATOR STORED KUBECONFIG
set -uo pipefail
OPERATOR=$1 STORED=$2
export KUBECONFIG=$3
. "$(dirname "$0")/../lib/assert.sh"
# Every kubectl call is bounded: a wedged apiserver must not hang a poll past its deadline.
kubectl() { command kubectl --request-timeout=15s "$@"; }

work=$(mktemp -d /tmp/strata-op-le.XXXXXX)
suffix=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
name=sdev-le-$suffix lease=strata-operator-le-$suffix
declare -A pid port
stored_pid='' sampler_pid=''
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  [ -n "$stored_pid" ] && kill "$stored_pid" 2>/dev/null
  kubectl delete storagedevice "$name" --ignore-not-found >/dev/null 2>&1
  kubectl delete lease -n default "$lease" --ignore-not-found >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The operators' metrics ports stay free_port picks (racy): strata-operator cannot report the
# port it bound for --metrics-addr 127.0.0.1:0. The device binds port 0 and reports it.
for id in a b c; do port[$id]=$(free_port); done
"$STORED" --device le-dev --tier "ssd=$work/ssd:1GiB" --grpc 127.0.0.1:0 --insecure \
  --ready-file "$work/ready" 2>"$work/stored.log" &
stored_pid=$!
check "strata-stored serves" wait_until 30 test -s "$work/ready"
endpoint=$(jq -r .grpc "$work/ready")
kubectl create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata:
  name: $name
  labels: {strata.io/test-run: $name}
spec:
  endpoint: $endpoint
  tiers: [{class: ssd, capacityBytes: 1073741824}]
YAML

start_operator() { # start_operator ID: default lease timings (15 s / 10 s / 2 s)
  "$OPERATOR" --insecure --kubeconfig "$KUBECONFIG" --label-selector "strata.io/test-run=$name" \
    --leader-elect --leader-elect-namespace default \
    --leader-elect-name "$lease" --leader-elect-identity "$1" \
    --metrics-addr "127.0.0.1:${port[$1]}" --health-addr 0 --device-resync 1 --log-level debug \
    2>"$work/$1.log" &
  pid[$1]=$!
}
# leader_metric ID: 1, 0, or "down" when the process does not answer.
leader_metric() {
  curl -sf --max-time 1 "http://127.0.0.1:${port[$1]}/metrics" | awk '$1 == "strata_operator_leader" { print $2 }' || echo down
}
reconciles() {
  curl -sf --max-time 1 "http://127.0.0.1:${port[$1]}/metrics" |
    awk '/^strata_operator_reconcile_total/ { n += $2 } END { print n + 0 }'
}
holder() { kubectl get lease -n default "$lease" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
holder_is() { [ "$(holder)" = "$1" ]; }
st() { kubectl get storagedevice "$name" -o json | jq -r "$1"; }
is() { [ "$(st "$1")" = "$2" ]; }

start_operator a
check "a becomes leader" wait_until 20 holder_is a
start_operator b
metrics_up() { [ "$(leader_metric "$1")" != down ]; }
check "b serves metrics" wait_until 10 metrics_up b
check "the leader a writes the status (phase Online)" wait_until 10 is .status.phase Online

# Sample every process's leader gauge every 100 ms for the rest of the test.
(
  while :; do
    printf '%s %s %s %s\n' "$(date +%s%N)" "$(leader_metric a)" "$(leader_metric b)" "$(leader_metric c)"
    sleep 0.1
  done
) >"$work/samples" 2>/dev/null &
sampler_pid=$!

sleep 4
expect_eq "b stays standby while a renews" "$(leader_metric b)" "0"
expect_eq "b has run no reconcile" "$(reconciles b)" "0"
expect_eq "a is leader" "$(leader_metric a)" "1"

# Kill the leader without letting it release the lease.
kill -KILL "${pid[a]}"; wait "${pid[a]}" 2>/dev/null; unset 'pid[a]'
t0=$(date +%s%N)
# Nominally at most 15 s + 2.4 s (retry jitter) + 50 ms after a's last renewal; 30 s leaves room
# for a loaded 2-core host (the operator's API calls, each kubectl poll taking seconds).
check "b takes over within the lease time (15 s + retry jitter)" wait_until 30 holder_is b
takeover_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "  takeover after ${takeover_ms} ms"
check "takeover waited for the lease to expire (>= 10 s)" test "$takeover_ms" -ge 10000
leader_b() { [ "$(leader_metric b)" = 1 ]; }
check "b's leader gauge is 1" wait_until 5 leader_b
stop_within 30 "$stored_pid" 2>/dev/null; stored_pid=
check "the new leader b follows the device (Offline)" wait_until 10 is .status.phase Offline

# A fresh standby c; then freeze b past its lease.
start_operator c
check "c serves metrics" wait_until 10 metrics_up c
kill -STOP "${pid[b]}"
t0=$(date +%s%N)
check "c takes over from the frozen b" wait_until 25 holder_is c
echo "  takeover from a frozen leader after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
mark=$(wc -l <"$work/b.log")
kill -CONT "${pid[b]}"
b_exited() { ! kill -0 "${pid[b]}" 2>/dev/null; }
check "b, woken after losing the lease, exits" wait_until 15 b_exited
b_exited || kill -KILL "${pid[b]}" 2>/dev/null # the check failed: do not hang in `wait` below
wait "${pid[b]}"; rc=$?
expect_eq "b exits with 1 (leadership lost)" "$rc" "1"
after=$(tail -n +"$((mark + 1))" "$work/b.log")
expect_contains "b logged the loss" "$after" "lost the lease"
if grep -q 'reconciled' <<<"$after"; then
  fail "b reconciled after it woke up without the lease"
  grep 'reconciled' <<<"$after" | head -3
else
  pass "b ran no reconcile after waking up without the lease"
fi

kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; sampler_pid=
both=$(awk '($2 == 1) + ($3 == 1) + ($4 == 1) > 1' "$work/samples" | wc -l)
expect_eq "never two leaders among a, b, c in $(wc -l <"$work/samples") samples" "$both" "0"
leaders_seen=$(awk '{ for (i = 2; i <= 4; i++) if ($i == 1) seen[i] = 1 } END { print length(seen) }' "$work/samples")
expect_eq "each of a, b, c was leader at some sample" "$leaders_seen" "3"

if ! finish; then
  for id in a b c; do echo "---- $id.log (tail) ----"; tail -15 "$work/$id.log"; done
  exit 1
fi
