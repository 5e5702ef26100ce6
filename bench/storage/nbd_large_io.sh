#!/usr/bin/env bash
# strata-stored (dedup off) against nbdkit's file plugin, both serving from tmpfs, measured
# by the same client (fio's libnbd engine) in the same run: ROUNDS interleaved rounds
# (nbdkit, strata, nbdkit, strata, ...), medians per cell. The cells issue #16 sets
# goals for: 1 MiB sequential read and write at QD8, 4 KiB random read and write at QD1
# and QD16. Not a test: prints markdown for docs/benchmarks.md.
#
#   bench/storage/nbd_large_io.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [SECONDS] [ROUNDS]
#
# Environment: SIZE_MIB (image size, 512), TIER_MIB (strata's tier capacity, 3x the
# image), STORED_ARGS (extra strata-stored flags), CELLS (override the workload list,
# e.g. "read 1M 8;write 1M 8").
set -euo pipefail
STORED=$1
ADMIN=$2
SECS=${3:-5}
ROUNDS=${4:-3}
SIZE_MIB=${SIZE_MIB:-512}
TIER_MIB=${TIER_MIB:-$((SIZE_MIB * 3))}
CELLS=${CELLS:-"randread 4k 1;randread 4k 16;randwrite 4k 1;randwrite 4k 16;read 1M 8;write 1M 8"}
for t in fio nbdkit nbdinfo nbdcopy jq; do
  command -v "$t" >/dev/null || { echo "need $t (scripts/install-deps.sh all)" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/strata-largeio.XXXXXX)
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

head -c "${SIZE_MIB}M" /dev/urandom >"$work/src.img"
declare -A uri
cp "$work/src.img" "$work/nbdkit.img"
p=$(port)
nbdkit --foreground --ipaddr 127.0.0.1 --port "$p" --exportname disk file "$work/nbdkit.img" &
pids+=($!)
uri[nbdkit]="nbd://127.0.0.1:$p/disk"

# shellcheck disable=SC2086 # STORED_ARGS is a list of flags
"$STORED" --device bench --tier "ssd=$work/strata:${TIER_MIB}MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn ${STORED_ARGS:-} &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
g=$(jq -r .grpc "$work/ready")
sp=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create plain --size "${SIZE_MIB}MiB" >/dev/null
uri[strata]="nbd://$sp/plain"
servers=(nbdkit strata)
for s in "${servers[@]}"; do wait_nbd "${uri[$s]}"; done
nbdcopy "$work/src.img" "${uri[strata]}"

run() { # uri rw bs iodepth -> "IOPS MiB/s p99(us)"
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${SIZE_MIB}M" --runtime="$SECS" --time_based --output-format=json \
    --output="$work/fio.json" >/dev/null 2>&1
  jq -r --arg rw "$2" '.jobs[0] | (if ($rw|test("read")) then .read else .write end) |
      "\(.iops|floor) \((.bw_bytes/1048576)|floor) \((.clat_ns.percentile["99.000000"] // 0)/1000|floor)"' \
    "$work/fio.json"
}
median() { tr ' ' '\n' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "fio (libnbd engine), ${SIZE_MIB} MiB image on tmpfs, ${SECS} s per cell, ${ROUNDS} interleaved rounds, medians;"
echo "IOPS for 4k, MiB/s for 1M; p99 completion latency in us"
echo
echo "| workload | nbdkit | strata | ratio of medians | median of per-round ratios | p99 nbdkit / strata | rounds (strata/nbdkit) |"
echo "|---|---|---|---|---|---|---|"
IFS=';' read -r -a cells <<<"$CELLS"
for w in "${cells[@]}"; do
  read -r rw bs qd <<<"$w"
  declare -A vals=() p99s=()
  for _ in $(seq "$ROUNDS"); do
    for s in "${servers[@]}"; do
      read -r iops mibs p99 <<<"$(run "${uri[$s]}" "$rw" "$bs" "$qd")"
      if [ "$bs" = 1M ]; then v=$mibs; else v=$iops; fi
      vals[$s]="${vals[$s]:-} $v"
      p99s[$s]="${p99s[$s]:-} $p99"
    done
  done
  k=$(echo "${vals[nbdkit]}" | xargs | median)
  m=$(echo "${vals[strata]}" | xargs | median)
  pk=$(echo "${p99s[nbdkit]}" | xargs | median)
  pm=$(echo "${p99s[strata]}" | xargs | median)
  per=$(paste -d/ <(echo "${vals[strata]}" | xargs | tr ' ' '\n') \
    <(echo "${vals[nbdkit]}" | xargs | tr ' ' '\n') | xargs)
  # Each round's pair ran back to back: its ratio is less exposed to load swings on a
  # shared machine than the ratio of the two medians.
  rr=$(tr ' ' '\n' <<<"$per" | awk -F/ '{printf "%.3f\n", $1 / $2}' | xargs | median)
  printf "| %s %s QD%s | %s | %s | %s | %.2f | %s / %s | %s |\n" "$rw" "$bs" "$qd" "$k" "$m" \
    "$(awk -v a="$m" -v b="$k" 'BEGIN {printf "%.2f", a / b}')" "$rr" "$pk" "$pm" "$per"
  unset vals p99s
done
