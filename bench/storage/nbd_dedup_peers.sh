#!/usr/bin/env bash
# Dedup on the NBD path: strata-stored with dedup on (and off, for context) against
# nbdkit's file plugin, serving from tmpfs, measured by the same client (fio's
# libnbd engine) in the same run, with fio writing 0 % and 50 % duplicate buffers
# (dedupe_percentage, fresh buffer contents each I/O: refill_buffers). Each cell is
# the median of ROUNDS interleaved rounds. Reads read what that percentage's prefill
# wrote. Not a test: prints markdown for docs/benchmarks.md.
#
#   bench/storage/nbd_dedup_peers.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [SECONDS] [ROUNDS]
#
# BASE_STORED=/path/to/other/strata-stored adds that binary's dedup LUN as one more
# column (strata-dedup-base) in the same interleaved rounds: an A/B of two builds.
# CELLS="randwrite 4k 16" (a subset of the workloads) and PCTS="0" narrow the run.
set -euo pipefail
STORED=$1
ADMIN=$2
SECS=${3:-5}
ROUNDS=${4:-3}
SIZE_MIB=${SIZE_MIB:-512}
for t in fio nbdkit nbdinfo jq python3; do
  command -v "$t" >/dev/null || { echo "need $t (scripts/install-deps.sh all)" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/strata-dedup-peers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_nbd() {
  for _ in $(seq 200); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "no NBD server at $1" >&2
  return 1
}

declare -A uri
truncate -s "${SIZE_MIB}M" "$work/nbdkit.img"
p=$(port)
nbdkit --foreground --ipaddr 127.0.0.1 --port "$p" --exportname disk file "$work/nbdkit.img" &
pids+=($!)
uri[nbdkit]="nbd://127.0.0.1:$p/disk"

start_stored() {  # binary dir -> "grpc nbd" addresses
  mkdir -p "$2"
  "$1" --device bench --tier "ssd=$2/strata:$((SIZE_MIB * 3))MiB" --portal 127.0.0.1:0 \
    --grpc 127.0.0.1:0 --insecure --ready-file "$2/ready" --log-level warn &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$2/ready" ] && break; sleep 0.05; done
  [ -s "$2/ready" ] || { echo "strata-stored did not become ready" >&2; exit 1; }
}
start_stored "$STORED" "$work/a"
g=$(jq -r .grpc "$work/a/ready")
sp=$(jq -r '.nbd[0]' "$work/a/ready")
"$ADMIN" --insecure --server "$g" lun create plain --size "${SIZE_MIB}MiB" >/dev/null
"$ADMIN" --insecure --server "$g" lun create dedup --size "${SIZE_MIB}MiB" --dedup >/dev/null
uri[strata]="nbd://$sp/plain"
uri[strata-dedup]="nbd://$sp/dedup"
servers=(nbdkit strata strata-dedup)
if [ -n "${BASE_STORED:-}" ]; then
  start_stored "$BASE_STORED" "$work/b"
  "$ADMIN" --insecure --server "$(jq -r .grpc "$work/b/ready")" lun create dedup \
    --size "${SIZE_MIB}MiB" --dedup >/dev/null
  uri[strata-dedup-base]="nbd://$(jq -r '.nbd[0]' "$work/b/ready")/dedup"
  servers+=(strata-dedup-base)
fi
for s in "${servers[@]}"; do wait_nbd "${uri[$s]}"; done

fio_run() {  # uri rw bs iodepth dedup_pct seconds(0: whole size once) -> "IOPS MiB/s p99(us)"
  local timing=(--runtime="$6" --time_based)
  [ "$6" = 0 ] && timing=()
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${SIZE_MIB}M" --dedupe_percentage="$5" --refill_buffers "${timing[@]}" \
    --output-format=json --output="$work/fio.json" >/dev/null 2>&1
  jq -r --arg rw "$2" '.jobs[0] | (if ($rw|test("read")) then .read else .write end) |
      "\(.iops|floor) \((.bw_bytes/1048576)|floor) \((.clat_ns.percentile["99.000000"] // 0)/1000|floor)"' \
    "$work/fio.json"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "fio (libnbd engine), ${SIZE_MIB} MiB on tmpfs, ${SECS} s per cell, median of ${ROUNDS} interleaved rounds;"
echo "IOPS for 4k, MiB/s for 1M; p99 completion latency in us (median); load average $(cut -d' ' -f1 /proc/loadavg) at the start"
echo
printf "| workload | duplicates |"
for s in "${servers[@]}"; do printf " %s |" "$s"; done
printf " strata-dedup / nbdkit |"
[ -n "${BASE_STORED:-}" ] && printf " strata-dedup-base / nbdkit |"
echo
printf "|---|---|"
for _ in "${servers[@]}"; do printf -- "---|"; done
[ -n "${BASE_STORED:-}" ] && printf -- "---|"
echo "---|"
IFS=',' read -r -a cells <<<"${CELLS:-randwrite 4k 16,write 1M 8,read 1M 8}"
for pct in ${PCTS:-0 50}; do
  # Prefill every target with this percentage's data, so reads and overwrites see it.
  for s in "${servers[@]}"; do fio_run "${uri[$s]}" write 1M 8 "$pct" 0 >/dev/null; done
  for w in "${cells[@]}"; do
    read -r rw bs qd <<<"$w"
    declare -A vals=() lat=()
    for _ in $(seq "$ROUNDS"); do
      for s in "${servers[@]}"; do
        read -r iops mibs p99 <<<"$(fio_run "${uri[$s]}" "$rw" "$bs" "$qd" "$pct" "$SECS")"
        if [ "$bs" = 1M ]; then v=$mibs; else v=$iops; fi
        vals[$s]="${vals[$s]:-} $v"
        lat[$s]="${lat[$s]:-} $p99"
      done
    done
    printf "| %s %s QD%s | %s %% |" "$rw" "$bs" "$qd" "$pct"
    declare -A med=()
    for s in "${servers[@]}"; do
      med[$s]=$(tr ' ' '\n' <<<"${vals[$s]}" | grep . | median)
      printf " %s (p99 %s) |" "${med[$s]}" "$(tr ' ' '\n' <<<"${lat[$s]}" | grep . | median)"
    done
    ratios=("${med[strata-dedup]}")
    [ -n "${BASE_STORED:-}" ] && ratios+=("${med[strata-dedup-base]}")
    python3 -c "import sys; print(''.join(' %.2fx |' % (float(v) / max(1, ${med[nbdkit]})) for v in sys.argv[1:]))" "${ratios[@]}"
  done
done
