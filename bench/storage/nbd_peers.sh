#!/usr/bin/env bash
# strata-stored against the NBD servers Debian ships, serving the same bytes from
# tmpfs, measured by the same client (fio's libnbd engine) in the same run:
# nbdkit (file plugin), qemu-nbd, nbd-server; strata with dedup off and on.
# Then nbdcopy (4 connections, multi-conn) of the whole image out of each server.
# Not a test: prints markdown for docs/benchmarks.md.
#
#   bench/storage/nbd_peers.sh build/default/storage/strata-stored build/default/storage/strata-admin [SECONDS]
set -euo pipefail
STORED=$1
ADMIN=$2
SECS=${3:-5}
SIZE_MIB=${SIZE_MIB:-512}
for t in fio nbdkit qemu-nbd nbd-server nbdcopy nbdinfo jq; do
  command -v "$t" >/dev/null || { echo "need $t (scripts/install-deps.sh all)" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/strata-peers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "nbd-server -C $work" 2>/dev/null || true  # its per-client children
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_nbd() { for _ in $(seq 200); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

head -c "${SIZE_MIB}M" /dev/urandom >"$work/src.img"
declare -A uri

cp "$work/src.img" "$work/nbdkit.img"
p=$(port); nbdkit --foreground --ipaddr 127.0.0.1 --port "$p" --exportname disk file "$work/nbdkit.img" &
pids+=($!); uri[nbdkit]="nbd://127.0.0.1:$p/disk"

cp "$work/src.img" "$work/qemu.img"
p=$(port); qemu-nbd -f raw -x disk -b 127.0.0.1 -p "$p" --persistent --shared=32 \
  --cache=writeback "$work/qemu.img" &
pids+=($!); uri[qemu-nbd]="nbd://127.0.0.1:$p/disk"

cp "$work/src.img" "$work/nbdserver.img"
p=$(port)
cat >"$work/nbd-server.conf" <<CONF
[generic]
    listenaddr = 127.0.0.1
    port = $p
[disk]
    exportname = $work/nbdserver.img
    multifile = false
CONF
# Daemon mode: with -d it would serve one client and exit. It forks a child per client.
nbd-server -C "$work/nbd-server.conf" -p "$work/nbd-server.pid" 2>/dev/null
for _ in $(seq 100); do [ -s "$work/nbd-server.pid" ] && break; sleep 0.05; done
pids+=("$(cat "$work/nbd-server.pid")"); uri[nbd-server]="nbd://127.0.0.1:$p/disk"

"$STORED" --device bench --tier "ssd=$work/strata:$((SIZE_MIB * 3))MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
g=$(jq -r .grpc "$work/ready"); sp=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create plain --size "${SIZE_MIB}MiB" >/dev/null
"$ADMIN" --insecure --server "$g" lun create dedup --size "${SIZE_MIB}MiB" --dedup >/dev/null
uri[strata]="nbd://$sp/plain"
uri[strata-dedup]="nbd://$sp/dedup"
servers=(nbdkit qemu-nbd nbd-server strata strata-dedup)
for s in "${servers[@]}"; do wait_nbd "${uri[$s]}"; done
nbdcopy "$work/src.img" "${uri[strata]}"
nbdcopy "$work/src.img" "${uri[strata-dedup]}"

run() {  # uri rw bs iodepth -> "IOPS MiB/s p99(us)"
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${SIZE_MIB}M" --runtime="$SECS" --time_based --output-format=json \
    --output="$work/fio.json" >/dev/null 2>&1
  jq -r --arg rw "$2" '.jobs[0] | (if ($rw|test("read")) then .read else .write end) |
      "\(.iops|floor) \((.bw_bytes/1048576)|floor) \((.clat_ns.percentile["99.000000"] // 0)/1000|floor)"' \
    "$work/fio.json"
}

echo "fio (libnbd engine), ${SIZE_MIB} MiB image on tmpfs, ${SECS} s per cell; IOPS (MiB/s for 1M), p99 latency in us"
echo
printf "| workload |"; for s in "${servers[@]}"; do printf " %s |" "$s"; done; echo
printf "|---|"; for s in "${servers[@]}"; do printf -- "---|"; done; echo
for w in "randread 4k 1" "randread 4k 16" "randwrite 4k 1" "randwrite 4k 16" "read 1M 8" "write 1M 8"; do
  set -- $w
  printf "| %s %s QD%s |" "$1" "$2" "$3"
  for s in "${servers[@]}"; do
    read -r iops mibs p99 <<<"$(run "${uri[$s]}" "$1" "$2" "$3")"
    if [ "$2" = 1M ]; then printf " %s MiB/s (p99 %s) |" "$mibs" "$p99"; else printf " %s (p99 %s) |" "$iops" "$p99"; fi
  done
  echo
done
printf "| nbdcopy out, 4 conns |"
for s in "${servers[@]}"; do
  t0=$(date +%s%N)
  nbdcopy --connections=4 "${uri[$s]}" "$work/out.img"
  t1=$(date +%s%N)
  printf " %s MiB/s |" "$(( SIZE_MIB * 1000000000 / (t1 - t0) ))"
  rm -f "$work/out.img"
done
echo
