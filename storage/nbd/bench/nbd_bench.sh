#!/usr/bin/env bash
# NBD server throughput against nbdkit's file plugin, same client (fio's libnbd
# engine), same machine, same run. Not a test: prints a table for
# docs/benchmarks.md. Both servers serve memory: ours a MemVolume, nbdkit a file
# on tmpfs; both are filled with the same random bytes first.
#
#   storage/nbd/bench/nbd_bench.sh build/default/storage/nbd/strata-nbd-testserver [SECONDS]
set -euo pipefail
SERVER=$1
SECS=${2:-10}
SIZE_MIB=${SIZE_MIB:-1024}
for t in fio nbdkit nbdcopy jq; do command -v "$t" >/dev/null || { echo "need $t" >&2; exit 1; }; done

work=$(mktemp -d /dev/shm/strata-nbd-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

head -c "${SIZE_MIB}M" /dev/urandom >"$work/disk.img"

"$SERVER" --export "disk=${SIZE_MIB}MiB" --portal 127.0.0.1:0 --ready-file "$work/ready" \
  --log-level warn &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
strata_uri="nbd://$(jq -r '.portals[0]' "$work/ready")/disk"
nbdcopy "$work/disk.img" "$strata_uri"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nbdkit --foreground --ipaddr 127.0.0.1 --port "$port" --exportname disk file "$work/disk.img" &
pids+=($!)
for _ in $(seq 100); do nbdinfo --size "nbd://127.0.0.1:$port/disk" >/dev/null 2>&1 && break; sleep 0.1; done
nbdkit_uri="nbd://127.0.0.1:$port/disk"

run() {  # uri rw bs iodepth -> "IOPS MiB/s p99(us)"
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${SIZE_MIB}M" --runtime="$SECS" --time_based --output-format=json \
    --output="$work/fio.json" >/dev/null 2>&1
  jq -r --arg rw "$2" '.jobs[0] | (if ($rw|test("read")) then .read else .write end) |
      "\(.iops|floor) \((.bw_bytes/1048576)|floor) \((.clat_ns.percentile["99.000000"] // 0)/1000|floor)"' \
    "$work/fio.json"
}

printf "%-22s %-8s %10s %8s %9s\n" workload server IOPS MiB/s p99_us
for w in "randread 4k 1" "randread 4k 16" "randwrite 4k 16" "read 1M 8" "write 1M 8"; do
  set -- $w
  for s in strata nbdkit; do
    uri=$strata_uri; [ "$s" = nbdkit ] && uri=$nbdkit_uri
    read -r iops mibs p99 <<<"$(run "$uri" "$1" "$2" "$3")"
    printf "%-22s %-8s %10s %8s %9s\n" "$1 $2 QD$3" "$s" "$iops" "$mibs" "$p99"
  done
done
