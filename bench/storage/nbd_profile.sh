#!/usr/bin/env bash
# Where strata-stored's time goes for large NBD I/O (issue #16): a LUN filled by nbdcopy,
# fragmented by 4 KiB random writes (what bench/storage/nbd_peers.sh runs before its
# 1 MiB cells), then fio's nbd engine read and write 1M QD8, each once under
# `perf record -g -p` and once under `strace -c -f -p`. Not a test.
#
#   bench/storage/nbd_profile.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [OUT_DIR]
#
# OUT_DIR gets perf-{read,write}.data (perf report -i ...) and strace-{read,write}.txt.
# SIZE_MIB: the LUN's size (512).
set -euo pipefail
STORED=$1
ADMIN=$2
OUT=${3:-/tmp/strata-nbd-profile}
SIZE_MIB=${SIZE_MIB:-512}
for t in fio perf strace nbdcopy nbdinfo jq; do
  command -v "$t" >/dev/null || { echo "need $t" >&2; exit 1; }
done
mkdir -p "$OUT"
work=$(mktemp -d /dev/shm/strata-nbd-profile.XXXXXX)
"$STORED" --device bench --tier "ssd=$work/strata:$((SIZE_MIB * 3))MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn &
spid=$!
trap 'kill $spid; wait; rm -rf "$work"' EXIT
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
g=$(jq -r .grpc "$work/ready")
sp=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create plain --size "${SIZE_MIB}MiB" >/dev/null
u="nbd://$sp/plain"
for _ in $(seq 100); do nbdinfo --size "$u" >/dev/null 2>&1 && break; sleep 0.05; done
head -c "${SIZE_MIB}M" /dev/urandom >"$work/src.img"
nbdcopy "$work/src.img" "$u"
rm "$work/src.img"
fio_mibs() { # rw bs iodepth seconds -> MiB/s
  fio --name=b --ioengine=nbd --uri="$u" --rw="$1" --bs="$2" --iodepth="$3" --size="${SIZE_MIB}M" \
    --runtime="$4" --time_based --output-format=json --output="$work/f.json" >/dev/null 2>&1
  jq -r '.jobs[0] | (.read.bw_bytes + .write.bw_bytes) / 1048576 | floor' "$work/f.json"
}
echo "randwrite 4k QD16 (fragments the LUN): $(fio_mibs randwrite 4k 16 4) MiB/s"
for rw in read write; do
  perf record -g -o "$OUT/perf-$rw.data" -p "$spid" -- sleep 4 >/dev/null 2>&1 &
  pp=$!
  echo "$rw 1M QD8 under perf: $(fio_mibs "$rw" 1M 8 4) MiB/s"
  wait "$pp" || true
  strace -c -f -p "$spid" -o "$OUT/strace-$rw.txt" 2>/dev/null &
  st=$!
  sleep 0.5  # strace attaches to every thread before the run starts
  echo "$rw 1M QD8 under strace: $(fio_mibs "$rw" 1M 8 3) MiB/s (requests: 3 s x that)"
  kill -INT "$st"
  wait "$st" || true
done
echo "perf report -i $OUT/perf-read.data --no-children --sort symbol; $OUT/strace-*.txt"
