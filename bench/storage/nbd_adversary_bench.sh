#!/usr/bin/env bash
# A well-behaved NBD client's latency while strata-nbd-adversary attacks the same
# strata-stored (default limits), each attack from its own loopback address: the
# client's p99 idle vs under each attack, against the issue's limit (within 3x).
# The client is `strata-nbd-adversary probe`: 4 KiB READs one after another on
# 127.0.0.1, timed per request. Not a test: prints markdown for docs/benchmarks.md.
#
#   bench/storage/nbd_adversary_bench.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin build/default/storage/nbd/strata-nbd-adversary [OPS]
set -euo pipefail
STORED=$1
ADMIN=$2
ADV=$3
OPS=${4:-50000}
for t in qemu-io jq; do
  command -v "$t" >/dev/null || { echo "need $t (scripts/install-deps.sh all)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/strata-adv-bench.XXXXXX)
pid=
attack=
cleanup() {
  touch "$work/stop"
  [ -n "$attack" ] && kill "$attack" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$STORED" --device bench --tier "ssd=$work/ssd:2GiB" --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure \
  --ready-file "$work/ready" 2>"$work/stored.log" &
pid=$!
for _ in $(seq 600); do [ -s "$work/ready" ] && break; sleep 0.05; done
[ -s "$work/ready" ] || { echo "strata-stored did not start" >&2; exit 1; }
g=$(jq -r .grpc "$work/ready")
p=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create vol --size 256MiB >/dev/null
"$ADMIN" --insecure --server "$g" lun create bait --size 16MiB >/dev/null
qemu-io -f raw -c 'write -P 0x11 0 64M' "nbd://$p/vol" >/dev/null

probe() { "$ADV" probe --portal "$p" --export vol --ops "$OPS" --source 127.0.0.1; }
wait_ready() {
  for _ in $(seq 6000); do grep -q '^ready' "$1" && return 0; sleep 0.05; done
  echo "attack did not get ready: $(cat "$1")" >&2
  return 1
}
# A loop of short attacks until $work/stop exists.
loop() { while [ ! -e "$work/stop" ]; do "$@" >/dev/null 2>&1 || true; done; }

declare -A res
res[idle]=$(probe)

"$ADV" idle --portal "$p" --export bait --count 10000 --hold-seconds 3600 --source 127.0.0.3 \
  >"$work/idle.out" 2>&1 &
attack=$!
wait_ready "$work/idle.out"
res[idle_10000]=$(probe)
kill "$attack"; wait "$attack" 2>/dev/null || true; attack=

"$ADV" slow-readers --portal "$p" --export vol --count 8 --depth 64 --hold-seconds 3600 \
  --source 127.0.0.4 >"$work/slow.out" 2>&1 &
attack=$!
wait_ready "$work/slow.out"
res[slow_readers]=$(probe)
kill "$attack"; wait "$attack" 2>/dev/null || true; attack=

rm -f "$work/stop"
loop "$ADV" bad-requests --portal "$p" --export vol --source 127.0.0.2 &
attack=$!
res[bad_requests]=$(probe)
touch "$work/stop"; wait "$attack" 2>/dev/null || true; attack=

rm -f "$work/stop"
loop "$ADV" mid-write --portal "$p" --export vol --count 1000 --source 127.0.0.5 &
attack=$!
res[mid_write]=$(probe)
touch "$work/stop"; wait "$attack" 2>/dev/null || true; attack=

res[idle_after]=$(probe)

# The baseline: the better of the two unattacked runs (one before, one after).
base=$(jq -n --argjson a "$(jq .p99_us <<<"${res[idle]}")" \
  --argjson b "$(jq .p99_us <<<"${res[idle_after]}")" '[$a, $b] | min')
echo "| well-behaved client ($OPS x 4 KiB READ) | p50 µs | p99 µs | p99 / idle p99 | within 3x |"
echo "|---|---:|---:|---:|---|"
for k in idle idle_after idle_10000 slow_readers bad_requests mid_write; do
  case $k in
    idle) name="no attack (first)" ;;
    idle_after) name="no attack (last)" ;;
    idle_10000) name="10,000 idle connections (127.0.0.3)" ;;
    slow_readers) name="8 slow readers x 64 pipelined 1 MiB READs" ;;
    bad_requests) name="bad requests in a loop" ;;
    mid_write) name="clients vanishing mid-write in a loop" ;;
  esac
  p50=$(jq .p50_us <<<"${res[$k]}")
  p99=$(jq .p99_us <<<"${res[$k]}")
  ratio=$(awk -v a="$p99" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
  ok=$(awk -v r="$ratio" 'BEGIN { print (r <= 3 ? "yes" : "NO") }')
  echo "| $name | $p50 | $p99 | $ratio | $ok |"
done
kill -0 "$pid" && echo "(strata-stored up after every attack; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
