#!/usr/bin/env bash
# Source write latency before and right after a snapshot, through a real NBD client
# (fio's libnbd engine, 4 KiB random writes at QD1) against strata-stored on tmpfs:
# a LUN of SIZE_GIB written whole, then fio before the snapshot, the snapshot (timed
# through strata-admin), the first N writes right after it (each first write to a
# 4 MiB region copies that region's map leaf), and fio again once settled.
#
#   bench/storage/snapshot_io_bench.sh STORED ADMIN [SIZE_GIB=4] [SECS=5] [FIRST_IOS=2000]
set -euo pipefail
STORED=$1
ADMIN=$2
SIZE_GIB=${3:-4}
SECS=${4:-5}
FIRST_IOS=${5:-2000}
for t in fio jq; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done

work=$(mktemp -d /dev/shm/strata-snapio.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$STORED" --device snapio --tier "ssd=$work/ssd:$((SIZE_GIB + 1))GiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn 2>>"$work/stored.log" &
pid=$!
for _ in $(seq 600); do [ -s "$work/ready" ] && break; sleep 0.05; done  # bounded wait
[ -s "$work/ready" ] || { echo "strata-stored did not start" >&2; exit 1; }
g=$(jq -r .grpc "$work/ready")
uri="nbd://$(jq -r '.nbd[0]' "$work/ready")/src"
"$ADMIN" --insecure --server "$g" lun create src --size "${SIZE_GIB}GiB" >/dev/null

fio_run() {  # label extra-args... -> one table row
  local label=$1; shift
  fio --name=b --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=1 \
    --size="${SIZE_GIB}G" --refill_buffers --output-format=json --output="$work/fio.json" \
    "$@" >/dev/null 2>&1
  jq -r --arg l "$label" '.jobs[0].write |
      "| \($l) | \(.total_ios) | \(.iops|floor) | \(.clat_ns.percentile["50.000000"]/1000|floor) | \(.clat_ns.percentile["99.000000"]/1000|floor) | \(.clat_ns.percentile["99.900000"]/1000|floor) | \(.clat_ns.max/1000|floor) |"' \
    "$work/fio.json"
}

fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=8 --size="${SIZE_GIB}G" \
  --refill_buffers >/dev/null 2>&1
echo "strata-stored, ${SIZE_GIB} GiB LUN written whole, tmpfs; fio libnbd randwrite 4k QD1"
echo
echo "| phase | writes | IOPS | p50 us | p99 us | p99.9 us | max us |"
echo "|---|---|---|---|---|---|---|"
fio_run "before the snapshot, ${SECS} s" --runtime="$SECS" --time_based
fio_run "before, first ${FIRST_IOS} writes of a run" --number_ios="$FIRST_IOS"
t0=$(date +%s%N)
"$ADMIN" --insecure --server "$g" snapshot create snap --lun src >/dev/null
t1=$(date +%s%N)
fio_run "right after: first ${FIRST_IOS} writes" --number_ios="$FIRST_IOS"
fio_run "after, ${SECS} s" --runtime="$SECS" --time_based
echo
echo "strata-admin snapshot create (process start + gRPC + flush): $(( (t1 - t0) / 1000000 )) ms"
kill "$pid"
wait "$pid" || true
pid=
