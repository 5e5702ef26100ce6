#!/usr/bin/env bash
# strata-stored's CPU time per MiB of 1 MiB NBD writes (fio's nbd engine, QD8,
# dedupe_percentage PCT, refill_buffers) to a plain LUN and to a dedup LUN of the same
# daemon, alternating, ROUNDS times (issue #16, dedupbatch). On a host whose cores the
# client shares, the write rate follows the server's CPU per MiB; this says what dedup
# adds to it (hashing, index, bookkeeping) apart from the host's load. Each LUN is
# first written whole, so every timed run overwrites. Not a test.
#
#   bench/storage/nbd_dedup_cpu.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [PCT] [ROUNDS]
#
# BASE_STORED=/path/to/other/strata-stored: the same runs against that binary after.
# RANDWRITE_SECS=N: after each LUN's first write, N seconds of fio randwrite 4k QD16 on
# it (the state nbd_dedup_peers.sh's 4 KiB cell leaves its 1 MiB cell: every block
# replaced at random, the free slots scattered; issue #16, dedupstate).
set -euo pipefail
ADMIN=$2
PCT=${3:-0}
ROUNDS=${4:-2}
for t in fio nbdinfo jq python3; do
  command -v "$t" >/dev/null || { echo "need $t" >&2; exit 1; }
done
run() {  # stored binary
  local work spid g sp
  work=$(mktemp -d /dev/shm/strata-dedup-cpu.XXXXXX)
  "$1" --device bench --tier "ssd=$work/strata:1536MiB" --portal 127.0.0.1:0 \
    --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn 2>/dev/null &
  spid=$!
  # shellcheck disable=SC2064  # expand now: the trap must kill this daemon
  trap "kill $spid 2>/dev/null; rm -rf '$work'" EXIT
  for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
  [ -s "$work/ready" ] || { echo "strata-stored did not become ready" >&2; exit 1; }
  g=$(jq -r .grpc "$work/ready")
  sp=$(jq -r '.nbd[0]' "$work/ready")
  "$ADMIN" --insecure --server "$g" lun create plain --size 512MiB >/dev/null 2>&1
  "$ADMIN" --insecure --server "$g" lun create dedup --size 512MiB --dedup >/dev/null 2>&1
  for l in plain dedup; do
    for _ in $(seq 100); do nbdinfo --size "nbd://$sp/$l" >/dev/null 2>&1 && break; sleep 0.05; done
    fio --name=b --ioengine=nbd --uri="nbd://$sp/$l" --rw=write --bs=1M --iodepth=8 --size=512M \
      --dedupe_percentage="$PCT" --refill_buffers >/dev/null 2>&1
    if [ "${RANDWRITE_SECS:-0}" != 0 ]; then
      fio --name=b --ioengine=nbd --uri="nbd://$sp/$l" --rw=randwrite --bs=4k --iodepth=16 \
        --size=512M --dedupe_percentage="$PCT" --refill_buffers --runtime="$RANDWRITE_SECS" \
        --time_based >/dev/null 2>&1
    fi
  done
  cpu() { awk '{print $14 + $15}' "/proc/$spid/stat"; }  # utime + stime, clock ticks
  for _ in $(seq "$ROUNDS"); do
    for l in plain dedup; do
      local c0 c1
      c0=$(cpu)
      fio --name=b --ioengine=nbd --uri="nbd://$sp/$l" --rw=write --bs=1M --iodepth=8 \
        --size=512M --dedupe_percentage="$PCT" --refill_buffers --runtime=3 --time_based \
        --output-format=json --output="$work/f.json" >/dev/null 2>&1
      c1=$(cpu)
      python3 - "$1" "$l" "$PCT" "$c0" "$c1" "$(getconf CLK_TCK)" "$work/f.json" <<'PY'
import json, sys
binary, lun, pct, c0, c1, hz, path = sys.argv[1:]
w = json.load(open(path))["jobs"][0]["write"]
mib = w["io_bytes"] / 1048576
cpu_ms = (float(c1) - float(c0)) * 1000 / float(hz)
print(f"| {binary} | {lun} | {pct} % | {w['bw_bytes'] / 1048576:.0f} | {cpu_ms / mib:.3f} |")
PY
    done
  done
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  rm -rf "$work"
  trap - EXIT
}
echo "load average $(cut -d' ' -f1 /proc/loadavg) at the start; randwrite 4k before: ${RANDWRITE_SECS:-0} s"
echo
echo "| strata-stored | LUN | duplicates | MiB/s | stored CPU ms per MiB |"
echo "|---|---|---|---|---|"
run "$1"
[ -n "${BASE_STORED:-}" ] && run "$BASE_STORED"
echo
echo "load average $(cut -d' ' -f1 /proc/loadavg) at the end"
