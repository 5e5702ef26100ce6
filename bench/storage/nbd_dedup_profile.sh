#!/usr/bin/env bash
# Where strata-stored's time goes for 1 MiB NBD writes to a dedup LUN (issue #16,
# dedupbatch): a dedup LUN prefilled by fio with PCT % duplicates, then fio's nbd engine
# write 1M QD8 (dedupe_percentage PCT, refill_buffers) under `perf record -a -g`, and
# again under `strace -c -f -p`. Not a test.
#
#   bench/storage/nbd_dedup_profile.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [OUT_DIR]
#
# OUT_DIR gets perf-write-PCT.data (perf report -i ...) and strace-write-PCT.txt.
# PCTS: duplicate percentages (0 50); SIZE_MIB: the LUN's size (512); BS, QD: the
# request size and queue depth (1M, 8).
set -euo pipefail
STORED=$1
ADMIN=$2
OUT=${3:-/tmp/strata-nbd-dedup-profile}
SIZE_MIB=${SIZE_MIB:-512}
BS=${BS:-1M}
QD=${QD:-8}
for t in fio perf strace nbdinfo jq; do
  command -v "$t" >/dev/null || { echo "need $t" >&2; exit 1; }
done
mkdir -p "$OUT"
work=$(mktemp -d /dev/shm/strata-nbd-dedup-profile.XXXXXX)
"$STORED" --device bench --tier "ssd=$work/strata:$((SIZE_MIB * 3))MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn &
spid=$!
trap 'kill $spid; wait; rm -rf "$work"' EXIT
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
[ -s "$work/ready" ] || { echo "strata-stored did not become ready" >&2; exit 1; }
g=$(jq -r .grpc "$work/ready")
sp=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create dedup --size "${SIZE_MIB}MiB" --dedup >/dev/null
u="nbd://$sp/dedup"
for _ in $(seq 100); do nbdinfo --size "$u" >/dev/null 2>&1 && break; sleep 0.05; done
fio_mibs() { # rw bs iodepth pct seconds(0: the whole LUN once) -> MiB/s
  local timing=(--runtime="$5" --time_based)
  [ "$5" = 0 ] && timing=()
  fio --name=b --ioengine=nbd --uri="$u" --rw="$1" --bs="$2" --iodepth="$3" --size="${SIZE_MIB}M" \
    --dedupe_percentage="$4" --refill_buffers "${timing[@]}" \
    --output-format=json --output="$work/f.json" >/dev/null 2>&1
  jq -r '.jobs[0] | (.read.bw_bytes + .write.bw_bytes) / 1048576 | floor' "$work/f.json"
}
for pct in ${PCTS:-0 50}; do
  echo "prefill ${pct} %: $(fio_mibs write 1M 8 "$pct" 0) MiB/s"
  # System-wide (the NBD connection's threads start with fio's connection, after a
  # `perf record -p` would have listed the threads); perf report --pid "$spid" keeps ours.
  perf record -a -g -o "$OUT/perf-write-$pct.data" -- sleep 4 >/dev/null 2>&1 &
  pp=$!
  echo "write $BS QD$QD ${pct} % under perf: $(fio_mibs write "$BS" "$QD" "$pct" 4) MiB/s"
  wait "$pp" || true
  echo "$spid" >"$OUT/stored.pid"
  strace -c -f -p "$spid" -o "$OUT/strace-write-$pct.txt" 2>/dev/null &
  st=$!
  sleep 0.5  # strace attaches to every thread before the run starts
  echo "write $BS QD$QD ${pct} % under strace: $(fio_mibs write "$BS" "$QD" "$pct" 3) MiB/s"
  kill -INT "$st"
  wait "$st" || true
done
echo "perf report -i $OUT/perf-write-PCT.data --pid $(cat "$OUT/stored.pid") --no-children --sort symbol; $OUT/strace-write-*.txt"
