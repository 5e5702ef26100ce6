#!/usr/bin/env bash
# strata-stored (dedup off) against nbdkit's file plugin, both serving from tmpfs, measured
# by the same client (fio's libnbd engine) in the same run: ROUNDS interleaved rounds
# (each round runs every server once per cell, back to back, the order alternating
# between rounds so neither always goes first), medians per cell. The cells issue #16
# sets goals for: 1 MiB sequential read and write at QD8, 4 KiB random read and write at
# QD1 and QD16. Not a test: prints markdown for docs/benchmarks.md, with the load
# average before and after (on a shared host the spread is the figure to read).
#
#   bench/storage/nbd_large_io.sh build/default/storage/strata-stored \
#     build/default/storage/strata-admin [SECONDS] [ROUNDS]
#
# Environment: SIZE_MIB (image size, 512), TIER_MIB (strata's tier capacity, 3x the
# image), STORED_ARGS (extra strata-stored flags), CELLS (override the workload list,
# e.g. "read 1M 8;write 1M 8"), BASE_STORED (a second strata-stored binary, e.g. main's,
# measured as a third server "base" in the same rounds: an A/B of a change beside nbdkit),
# BASE_ARGS (extra flags for base only: BASE_STORED set to the same binary with
# BASE_ARGS=--nbd-follow-client-cpu=false compares one option on and off).
#
# Per cell: the medians, the ratio of the medians, and the per-round ratios (each strata
# figure over the nbdkit figure of its own round) as median [min-max] — the goal holds
# reliably when the lower end of that range does. The last column is the median number of
# cross-CPU interrupts (RES + CAL in /proc/interrupts, the whole machine) per request: on
# this VM each costs ~25 us at QD1, and a round whose count is far from the others ran
# in another placement of fio and the server on the vCPUs (docs/benchmarks.md "4 KiB QD1
# and QD16 on the Xeon host"), not in another code path.
set -euo pipefail
STORED=$1
ADMIN=$2
SECS=${3:-5}
ROUNDS=${4:-7}
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

start_stored() { # name binary [extra flags]
  mkdir "$work/$1"
  # shellcheck disable=SC2086 # STORED_ARGS and $3 are lists of flags
  "$2" --device bench --tier "ssd=$work/$1/tier:${TIER_MIB}MiB" --portal 127.0.0.1:0 \
    --grpc 127.0.0.1:0 --insecure --ready-file "$work/$1/ready" --log-level warn ${STORED_ARGS:-} ${3:-} &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$work/$1/ready" ] && break; sleep 0.05; done
  local g sp
  g=$(jq -r .grpc "$work/$1/ready")
  sp=$(jq -r '.nbd[0]' "$work/$1/ready")
  "$ADMIN" --insecure --server "$g" lun create plain --size "${SIZE_MIB}MiB" >/dev/null
  uri[$1]="nbd://$sp/plain"
  wait_nbd "${uri[$1]}"
  nbdcopy "$work/src.img" "${uri[$1]}"
}
servers=(nbdkit strata)
wait_nbd "${uri[nbdkit]}"
start_stored strata "$STORED"
if [ -n "${BASE_STORED:-}" ]; then
  start_stored base "$BASE_STORED" "${BASE_ARGS:-}"
  servers+=(base)
fi

# Cross-CPU interrupts so far (rescheduling + function call IPIs, all CPUs): on a VM
# every one is an exit, and at QD1 how many a request takes decides its latency.
ipis() { awk '$1 == "RES:" || $1 == "CAL:" {for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i}
  END {print n + 0}' /proc/interrupts; }
run() { # uri rw bs iodepth -> "IOPS MiB/s p99(us) IPIs-per-request"
  local i0 i1
  i0=$(ipis)
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" \
    --size="${SIZE_MIB}M" --runtime="$SECS" --time_based --output-format=json \
    --output="$work/fio.json" >/dev/null 2>&1
  i1=$(ipis)
  jq -r --arg rw "$2" --argjson ipis "$((i1 - i0))" '.jobs[0] |
      (if ($rw|test("read")) then .read else .write end) |
      "\(.iops|floor) \((.bw_bytes/1048576)|floor) \((.clat_ns.percentile["99.000000"] // 0)/1000|floor) \(($ipis / ([.total_ios, 1] | max)) * 100 | floor / 100)"' \
    "$work/fio.json"
}
median() { tr ' ' '\n' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# "a/b a/b ..." -> "median [min-max]" of the quotients
ratios() { tr ' ' '\n' | awk -F/ '{printf "%.3f\n", $1 / $2}' | sort -n |
  awk '{v[NR]=$1} END {printf "%.2f [%.2f-%.2f]", v[int((NR+1)/2)], v[1], v[NR]}'; }
others=("${servers[@]:1}")

echo "fio (libnbd engine), ${SIZE_MIB} MiB image on tmpfs, ${SECS} s per cell, ${ROUNDS} interleaved rounds, medians;"
echo "IOPS for 4k, MiB/s for 1M; p99 completion latency in us; per-round ratios over nbdkit: median [min-max]"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
hdr="| workload | nbdkit |"
sep="|---|---|"
for s in "${others[@]}"; do
  hdr+=" $s | $s/nbdkit (medians) | $s/nbdkit per round |"
  sep+="---|---|---|"
done
hdr+=" p99 $(IFS=/; echo "${servers[*]}") | IPIs a request $(IFS=/; echo "${servers[*]}") |"
sep+="---|---|"
echo "$hdr"
echo "$sep"
IFS=';' read -r -a cells <<<"$CELLS"
round=0
for w in "${cells[@]}"; do
  read -r rw bs qd <<<"$w"
  declare -A vals=() p99s=() iprs=()
  for _ in $(seq "$ROUNDS"); do
    round=$((round + 1))
    order=("${servers[@]}")
    if [ $((round % 2)) -eq 0 ]; then # reversed every other round
      order=()
      for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[$i]}"); done
    fi
    for s in "${order[@]}"; do
      read -r iops mibs p99 ipr <<<"$(run "${uri[$s]}" "$rw" "$bs" "$qd")"
      if [ "$bs" = 1M ]; then v=$mibs; else v=$iops; fi
      vals[$s]="${vals[$s]:-} $v"
      p99s[$s]="${p99s[$s]:-} $p99"
      iprs[$s]="${iprs[$s]:-} $ipr"
    done
  done
  k=$(echo "${vals[nbdkit]}" | xargs | median)
  line="| $rw $bs QD$qd | $k |"
  for s in "${others[@]}"; do
    m=$(echo "${vals[$s]}" | xargs | median)
    per=$(paste -d/ <(echo "${vals[$s]}" | xargs | tr ' ' '\n') \
      <(echo "${vals[nbdkit]}" | xargs | tr ' ' '\n') | xargs)
    line+=" $m | $(awk -v a="$m" -v b="$k" 'BEGIN {printf "%.2f", a / b}') | $(ratios <<<"$per") |"
  done
  p=""
  q=""
  for s in "${servers[@]}"; do
    p+="${p:+ / }$(echo "${p99s[$s]}" | xargs | median)"
    q+="${q:+ / }$(echo "${iprs[$s]}" | xargs | tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')"
  done
  echo "$line $p | $q |"
  unset vals p99s iprs
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
