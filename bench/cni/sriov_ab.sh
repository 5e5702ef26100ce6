#!/usr/bin/env bash
# strata-sriov ADD+DEL latency of two builds, interleaved call by call so that load drift on a
# shared machine hits both alike (cni_bench.sh runs its series back to back). Same setup as
# cni_bench.sh's strata-sriov series: a laid-out sysfs tree, a veth as the VF's netdev.
# Usage: bench/cni/sriov_ab.sh ITERATIONS DIR_A DIR_B   (root; DIRs hold strata-sriov)
# Prints one line per build: ADD, DEL and ADD+DEL medians (p90) in ms.
set -euo pipefail
[ $# = 3 ] || { sed -n '2,6s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
# A and B are read by name through ${!v} (v in A B) below.
# shellcheck disable=SC2034
n=$1 A=$2 B=$3 id=$$
tmp=$(mktemp -d)
cleanup() {
  ip -all netns list 2>/dev/null | awk '{print $1}' | grep "^bab-$id-" | xargs -r -n1 ip netns del || true
  ip link del "bsw$id" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
d=$tmp/sys/bus/pci
mkdir -p "$d/drivers/iavf" "$d/devices/0000:5e:00.0/net/bpf$id" "$d/devices/0000:5e:02.0/net/bvf$id"
ln -s ../0000:5e:00.0 "$d/devices/0000:5e:02.0/physfn"
ln -s ../0000:5e:02.0 "$d/devices/0000:5e:00.0/virtfn0"
ln -s ../../../bus/pci/drivers/iavf "$d/devices/0000:5e:02.0/driver"
ip link add "bvf$id" type veth peer name "bsw$id"
conf='{"cniVersion":"1.0.0","name":"bench","type":"strata-sriov","deviceID":"0000:5e:02.0",
  "mac":"0a:58:00:00:00:09","vlan":100,"spoofchk":"off","mtu":9000}'
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
run() {  # DIR CMD NETNS -> prints the call's wall time in us
  local t0 t1
  t0=$(now_us)
  printf '%s' "$conf" | env -i CNI_COMMAND="$2" CNI_CONTAINERID=c CNI_NETNS="/run/netns/$3" \
    CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni STRATA_CNI_SYSFS_ROOT="$tmp/sys" \
    STRATA_CNI_STATE_DIR="$tmp/state" STRATA_CNI_SIMULATE_PF=1 "$1/strata-sriov" >/dev/null
  t1=$(now_us)
  echo $((t1 - t0))
}
declare -A s
for ((i = 0; i <= n; i++)); do
  for v in A B; do
    ns=bab-$id-$v$i
    ip netns add "$ns"
    add=$(run "${!v}" ADD "$ns")
    del=$(run "${!v}" DEL "$ns")
    ip netns del "$ns"
    ((i == 0)) && continue  # warm-up
    s[$v-add]+="$add " s[$v-del]+="$del " s[$v-sum]+="$((add + del)) "
  done
done
stat() {
  # shellcheck disable=SC2086
  printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f (p90 %.1f)", m / 1000, v[int(NR * 0.9 + 0.999)] / 1000 }'
}
for v in A B; do
  echo "$v ${!v}: ADD $(stat "${s[$v-add]}")  DEL $(stat "${s[$v-del]}")  ADD+DEL $(stat "${s[$v-sum]}")"
done
