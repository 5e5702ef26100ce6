#!/usr/bin/env bash
# strata-csi's kernel nbd path over TLS (#14), inside the VM tier: fio through dm-multipath
# (two paths) of a volume staged in plaintext ("plain") beside one staged over NBD TLS with
# kernel TLS ("ktls", strata-csi --nbd-tls=require); same device, same run, interleaved: every
# job runs on both, one after the other, in each of ROUNDS rounds. Jobs: 4 KiB randrw (50/50)
# QD16, 1 MiB sequential read QD4, 1 MiB sequential write QD4, FIO_SECONDS each. Prints
# IOPS and MiB/s (read + write) per run and the ktls/plain ratio of the means.
# QD4 at 1 MiB: under TCG the TLS volume moves ~4 MiB/s, so 16 MiB in flight puts the last
# request near the kernel nbd request timeout (5 s, strata-csi's NBD_ATTR_TIMEOUT): it times out,
# the path is shut, then the other, and the dm device queues (no path checker in this script).
#
# One strata-stored with --nbd-tls allow (TLS for clients that ask) and two NBD portals;
# certificates from tests/lib/test_ca.sh. On the "ktls" volume the device's side of TLS is
# userspace OpenSSL and the node's side the kernel's (kTLS); so the ratio is the whole cost of
# TLS on this path, both ends, not the kernel's share alone.
#
#   STRATA_VM_SMP=1 STRATA_VM_MEM=2048 STRATA_VM_TIMEOUT=1500 \
#     tests/vm/run-in-vm.sh bench/csi/node_tls_vm.sh BUILD_DIR [FIO_SECONDS=5] [ROUNDS=3]
#
# BUILD_DIR holds storage/strata-stored, storage/strata-admin, bench/csi/strata-bench-csi-node.
# The guest is QEMU TCG (software CPU, AES-NI emulated): absolute figures are far below real
# hardware; the ratio of the columns of one run is the point.
set -euo pipefail
[ "${STRATA_VM:-0}" = 1 ] || {
  echo "run inside the VM tier: tests/vm/run-in-vm.sh $0 BUILD_DIR [FIO_SECONDS] [ROUNDS]" >&2
  exit 2
}
[ $# -ge 1 ] || {
  echo "usage: $0 BUILD_DIR [FIO_SECONDS] [ROUNDS]" >&2
  exit 2
}
build=$(cd "$1" && pwd)
secs=${2:-5}
rounds=${3:-3}
lun_size=${STRATA_BENCH_LUN_SIZE:-128MiB}
here=$(cd "$(dirname "$0")" && pwd)
node="$build/bench/csi/strata-bench-csi-node"
for f in "$build/storage/strata-stored" "$build/storage/strata-admin" "$node"; do
  [ -x "$f" ] || {
    echo "missing $f (build it first)" >&2
    exit 2
  }
done
# shellcheck source=../../tests/lib/test_ca.sh
. "$here/../../tests/lib/test_ca.sh"

work=$(mktemp -d /tmp/strata-bench-csi-tls.XXXXXX)
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
test_ca_init "$work/ca"
test_ca_issue "$work/ca" dev server IP:127.0.0.1 IP:127.0.0.2
test_ca_issue "$work/ca" node client
"$build/storage/strata-stored" --device vm-dev --tier "ssd=$work/ssd:768MiB" \
  --portal 127.0.0.1:0 --portal 127.0.0.2:0 --grpc 127.0.0.1:0 --insecure \
  --nbd-tls allow --nbd-tls-cert "$work/ca/dev/tls.crt" --nbd-tls-key "$work/ca/dev/tls.key" \
  --nbd-tls-client-ca "$work/ca/ca.crt" --ready-file "$work/ready" 2>"$work/stored.log" &
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
A lun create plain --size "$lun_size" --allow 127.0.0.1 >/dev/null
A lun create tls --size "$lun_size" --allow 127.0.0.1 >/dev/null
wwn_plain=$(A -o json lun get plain | jq -r .wwn)
wwn_tls=$(A -o json lun get tls | jq -r .wwn)
lun_bytes=$(A -o json lun get plain | jq -r .size_bytes)

echo "guest: $(uname -r), $(nproc) vCPU (QEMU TCG), $(($(sed -n 's/MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024)) MiB;" \
  "strata-stored --nbd-tls allow, portals $p1 $p2; 2 LUNs of $lun_size, tier on tmpfs"
echo "guest load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
staged="$work/s-plain $work/s-tls"
m_plain=$("$node" stage "$p1,$p2" plain "$wwn_plain" "$work/s-plain")
m_tls=$("$node" stage-tls "$p1,$p2" tls "$wwn_tls" "$work/s-tls" "$work/ca/node")
echo "# plain: $m_plain; ktls: $m_tls; kernel TLS sockets: $(grep -E 'TlsCurr(Tx|Rx)Sw' /proc/net/tls_stat | tr -s ' \n' ' ')"
for dev in "$m_plain" "$m_tls"; do
  fio --name=fill --filename="$dev" --size="$lun_bytes" --direct=1 --ioengine=libaio --rw=write \
    --bs=1M --iodepth=4 >/dev/null
done

# run_fio ROUND LABEL DEVICE RW BS QD: one line: IOPS and MiB/s (read + write).
run_fio() {
  local round=$1 label=$2 dev=$3 rw=$4 bs=$5 qd=$6
  # A job stuck in the kernel (both paths shut, the dm device queueing) is not killable: after
  # FIO_SECONDS + 60 s make the dm device fail queued I/O, so fio ends and the run says why.
  (
    sleep $((secs + 60))
    dmsetup message "$(basename "$dev")" 0 fail_if_no_path 2>/dev/null
  ) &
  local wd=$!
  timeout $((secs + 60)) fio --name=bench --filename="$dev" --direct=1 --ioengine=libaio \
    --size="$lun_bytes" --rw="$rw" --rwmixread=50 --bs="$bs" --iodepth="$qd" --time_based \
    --runtime="$secs" --ramp_time=1 --randrepeat=0 --output-format=json >"$work/fio.json" \
    2>"$work/fio.err" || {
    echo "fio failed on $dev ($rw $bs):" >&2
    cat "$work/fio.err" >&2
    dmesg | tail -n 20 >&2
    exit 1
  }
  kill "$wd" 2>/dev/null || true
  jq -r --arg round "$round" --arg name "$label" --arg job "$rw $bs QD$qd" '
    .jobs[0] as $j
    | [$round, $job, $name, (($j.read.iops + $j.write.iops) | floor),
       (($j.read.bw + $j.write.bw) / 1024 | . * 10 | floor / 10)]
    | @tsv' "$work/fio.json"
}

echo
echo "== fio, ${secs} s per job (+1 s ramp), libaio, O_DIRECT, $rounds rounds; in each"
echo "   round every job runs on both volumes, the order alternating"
printf 'round\tjob\tvolume\tIOPS\tMiB/s\n'
for round in $(seq "$rounds"); do
  for job in "randrw 4k 16" "read 1M 4" "write 1M 4"; do
    # shellcheck disable=SC2086  # job is "RW BS QD"
    if [ $((round % 2)) = 1 ]; then
      run_fio "$round" plain "$m_plain" $job
      run_fio "$round" ktls "$m_tls" $job
    else
      run_fio "$round" ktls "$m_tls" $job
      run_fio "$round" plain "$m_plain" $job
    fi | tee -a "$work/results.tsv"
  done
done
for s in $staged; do "$node" unstage "$s"; done
staged=
echo "guest load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== summary: mean over rounds; IOPS for 4k, MiB/s for 1M; goal: the cost of kTLS (ratio)"
awk -F'\t' '
  { k = $2 SUBSEP $3; v = ($2 ~ / 4k /) ? $4 : $5; sum[k] += v; n[k]++
    if (!($2 in seen)) { seen[$2] = 1; order[++jobs] = $2 } }
  END {
    printf "%-18s %10s %10s %11s\n", "job", "plain", "ktls", "ktls/plain"
    for (j = 1; j <= jobs; j++) {
      a = sum[order[j], "plain"] / n[order[j], "plain"]
      b = sum[order[j], "ktls"] / n[order[j], "ktls"]
      printf "%-18s %10.1f %10.1f %11.2f\n", order[j], a, b, b / a
    }
  }' "$work/results.tsv"
