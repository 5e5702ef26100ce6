#!/usr/bin/env bash
# strata-csi node side (issue #6), inside the VM tier (kernel nbd + dm-multipath exist only there):
#  (a) NodeStage+NodePublish latency (and unpublish / unstage) of strata-csi's NodeServer over
#      CYCLES rounds: a 2-portal volume beside a 1-portal volume, alternating within each round;
#  (b) fio through /dev/mapper/strata-<wwn> of a 2-portal stage ("dm-2path") beside the same
#      jobs through the single /dev/nbdN of a 1-portal stage ("nbd") and through dm-multipath
#      over that one path ("dm-1path"); 4k randread/randwrite and 1M read/write at QD1 and
#      QD16, FIO_SECONDS each; ROUNDS rounds, the three devices one after the other
#      for every job so that a slow moment of the (shared, emulated) machine does not hit one
#      device only.
# One strata-stored in the guest (its own network namespace: fixed ports): one ssd tier on
# guest tmpfs, two NBD portals 127.0.0.1:10809 and :10810, two LUNs (dedup off) open to
# 127.0.0.1: "one" staged over the first portal, "two" over both.
#
#   STRATA_VM_SMP=1 STRATA_VM_MEM=2048 STRATA_VM_TIMEOUT=1500 \
#     tests/vm/run-in-vm.sh bench/csi/node_io_vm.sh BUILD_DIR [CYCLES=30] [FIO_SECONDS=5] [ROUNDS=2]
#
# BUILD_DIR holds storage/strata-stored, storage/strata-admin, bench/csi/strata-bench-csi-node.
# STRATA_BENCH_LUN_SIZE (default 128MiB): both LUNs live in guest RAM, on a 768 MiB tier in a
# 1200 MiB tmpfs (hence STRATA_VM_MEM=2048).
# The guest is QEMU TCG (software CPU): absolute figures are far below real hardware; compare
# the columns of one run. One vCPU: with two, the same job measured ~200 or ~2000 IOPS from
# one run to the next (bimodal; most likely wake-ups across vCPUs, slow under TCG).
set -euo pipefail
[ "${STRATA_VM:-0}" = 1 ] || {
  echo "run inside the VM tier: tests/vm/run-in-vm.sh $0 BUILD_DIR [CYCLES] [FIO_SECONDS] [ROUNDS]" >&2
  exit 2
}
[ $# -ge 1 ] || {
  echo "usage: $0 BUILD_DIR [CYCLES] [FIO_SECONDS] [ROUNDS]" >&2
  exit 2
}
build=$(cd "$1" && pwd)
cycles=${2:-30}
secs=${3:-5}
rounds=${4:-2}
lun_size=${STRATA_BENCH_LUN_SIZE:-128MiB}
node="$build/bench/csi/strata-bench-csi-node"
for f in "$build/storage/strata-stored" "$build/storage/strata-admin" "$node"; do
  [ -x "$f" ] || {
    echo "missing $f (build it first)" >&2
    exit 2
  }
done

# A tmpfs of guest RAM: the figures are the data path's, not a disk's. Its own mount, larger
# than the tier: with a 1 GiB tier on the smaller /dev/shm, strata-stored answered writes with
# ENOSPC after the random-write jobs, the kernel failed the path and a 1-path dm device
# (queue_if_no_path) held fio for ever.
work=$(mktemp -d /tmp/strata-bench-csi.XXXXXX)
mount -t tmpfs -o size=1200m tmpfs "$work"
stored_pid=
staged=
cleanup() {
  local s
  for s in $staged; do "$node" unstage "$s" >/dev/null 2>&1 || true; done
  if [ -n "$stored_pid" ]; then
    kill "$stored_pid" 2>/dev/null || true
    wait "$stored_pid" 2>/dev/null || true
  fi
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

/usr/sbin/ip link set lo up
"$build/storage/strata-stored" --device vm-dev --tier "ssd=$work/ssd:768MiB" \
  --portal 127.0.0.1:10809 --portal 127.0.0.1:10810 --grpc 127.0.0.1:7400 --insecure --ready-file "$work/ready" \
  2>"$work/stored.log" &
stored_pid=$!
for _ in $(seq 300); do
  [ -s "$work/ready" ] && break
  kill -0 "$stored_pid" 2>/dev/null || break
  sleep 0.1
done
[ -s "$work/ready" ] || {
  echo "strata-stored did not start:" >&2
  cat "$work/stored.log" >&2
  exit 1
}
grpc=$(jq -r .grpc "$work/ready")
p1=$(jq -r '.nbd[0]' "$work/ready")
p2=$(jq -r '.nbd[1]' "$work/ready")
A() { "$build/storage/strata-admin" --insecure --server "$grpc" "$@"; }
# Two LUNs: "one" is staged over the first portal only, "two" over both.
A lun create one --size "$lun_size" --allow 127.0.0.1 >/dev/null
A lun create two --size "$lun_size" --allow 127.0.0.1 >/dev/null
wwn1=$(A -o json lun get one | jq -r .wwn)
wwn2=$(A -o json lun get two | jq -r .wwn)
# fio is given the size: it cannot tell the size of a kernel nbd device by itself.
lun_bytes=$(A -o json lun get one | jq -r .size_bytes)

echo "guest: $(uname -r), $(nproc) vCPU (QEMU TCG), $(($(sed -n 's/MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024)) MiB;" \
  "strata-stored portals $p1 $p2; 2 LUNs of $lun_size (dedup off), tier on tmpfs"
echo "guest load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== (a) node calls, $cycles rounds (after one warm-up round); 1 and 2 portals alternate"
"$node" cycles "$cycles" "$work/cycles" "$p1" one "$wwn1" "$p1,$p2" two "$wwn2"

# run_fio ROUND LABEL DEVICE RW BS QD: one line: IOPS, MiB/s, total latency (submit to
# completion) p50/p99 in µs.
run_fio() {
  local round=$1 label=$2 dev=$3 rw=$4 bs=$5 qd=$6 dir
  case $rw in *read) dir="read" ;; *) dir="write" ;; esac
  fio --name=bench --filename="$dev" --direct=1 --ioengine=libaio --size="$lun_bytes" --rw="$rw" \
    --bs="$bs" --iodepth="$qd" --time_based --runtime="$secs" --ramp_time=1 --randrepeat=0 \
    --lat_percentiles=1 --output-format=json >"$work/fio.json" 2>"$work/fio.err" &
  local fio_pid=$! wd
  # A job stuck in the kernel would hang the VM until run-in-vm.sh's timeout: say where, and end.
  (
    sleep $((secs + 60))
    echo "fio stuck on $dev ($rw $bs QD$qd):" >&2
    dmesg | tail -n 30 >&2
    dmsetup status >&2
    kill -9 $$
  ) &
  wd=$!
  wait "$fio_pid" || {
    echo "fio failed on $dev ($rw $bs QD$qd):" >&2
    cat "$work/fio.err" >&2
    jq -r '.jobs[0].error' "$work/fio.json" >&2 2>/dev/null || true
    dmesg | tail -n 20 >&2
    exit 1
  }
  kill "$wd" 2>/dev/null || true
  jq -r --arg round "$round" --arg name "$label" --arg job "$rw $bs QD$qd" --arg d "$dir" '
    .jobs[0][$d] as $r
    | [$round, $job, $name, ($r.iops | floor), ($r.bw / 1024 | . * 10 | floor / 10),
       ($r.lat_ns.percentile["50.000000"] / 1000 | floor),
       ($r.lat_ns.percentile["99.000000"] / 1000 | floor)]
    | @tsv' "$work/fio.json"
}

# The path devices under a staged mapper device ("/dev/nbd0 /dev/nbd1 ").
slaves() {
  local d
  for d in $(dmsetup deps -o blkdevname "$(basename "$1")" | sed 's/.*://; s/[()]//g'); do
    printf '/dev/%s ' "$d"
  done
}

echo
echo "== (b) fio, ${secs} s per job (+1 s ramp), libaio, O_DIRECT, $rounds rounds; in each round"
echo "   every job runs on the three devices one after the other"
staged="$work/stage1 $work/stage2"
mapper1=$("$node" stage "$p1" one "$wwn1" "$work/stage1")
mapper2=$("$node" stage "$p1,$p2" two "$wwn2" "$work/stage2")
nbd=$(slaves "$mapper1")
nbd=${nbd%% *}
echo "# 1 portal: $mapper1 over $(slaves "$mapper1")"
echo "# 2 portals: $mapper2 over $(slaves "$mapper2")"
echo "# dm table (2 portals): $(dmsetup table "$(basename "$mapper2")")"
# Fill both LUNs once so that reads return stored blocks, not unwritten ones.
for dev in "$nbd" "$mapper2"; do
  fio --name=fill --filename="$dev" --size="$lun_bytes" --direct=1 --ioengine=libaio --rw=write \
    --bs=1M --iodepth=16 >/dev/null
done
printf 'round\tjob\tdevice\tIOPS\tMiB/s\tp50_us\tp99_us\n'
for round in $(seq "$rounds"); do
  for job in "randread 4k" "randwrite 4k" "read 1M" "write 1M"; do
    for qd in 1 16; do
      # shellcheck disable=SC2086  # job is "RW BS"
      {
        run_fio "$round" nbd "$nbd" $job "$qd"
        run_fio "$round" dm-1path "$mapper1" $job "$qd"
        run_fio "$round" dm-2path "$mapper2" $job "$qd"
      } | tee -a "$work/results.tsv"
    done
  done
done
for s in $staged; do "$node" unstage "$s"; done
staged=
echo "guest load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== (b) summary: mean over rounds; IOPS for 4k, MiB/s for 1M"
awk -F'\t' '
  { k = $2 SUBSEP $3; v = ($2 ~ / 4k /) ? $4 : $5; sum[k] += v; n[k]++
    if (!($2 in seen)) { seen[$2] = 1; order[++jobs] = $2 } }
  END {
    printf "%-20s %10s %10s %10s %9s %9s\n", "job", "nbd", "dm-1path", "dm-2path", "2path/nbd", "1path/nbd"
    for (j = 1; j <= jobs; j++) {
      a = sum[order[j], "nbd"] / n[order[j], "nbd"]
      b = sum[order[j], "dm-1path"] / n[order[j], "dm-1path"]
      c = sum[order[j], "dm-2path"] / n[order[j], "dm-2path"]
      printf "%-20s %10.1f %10.1f %10.1f %9.2f %9.2f\n", order[j], a, b, c, c / a, b / a
    }
  }' "$work/results.tsv"
