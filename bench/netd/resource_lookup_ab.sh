#!/usr/bin/env bash
# strata-sriov ADD latency with the VF given (deviceID, as Multus passes it) against finding it
# itself (resourceName: strata-podresources asks the kubelet's PodResources List), interleaved
# call by call. The kubelet is the test kubelet as a process (strata-bench-fake-kubelet) listing
# PODS pods with one VF each; the VF is a veth on a laid-out sysfs tree (as bench/cni/sriov_ab.sh),
# PF settings simulated (test-only switch).
# Usage: bench/netd/resource_lookup_ab.sh ITERATIONS PODS CNI_BIN_DIR FAKE_KUBELET   (root)
# Prints per mode: ADD median (p90) in ms; and strata-podresources alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../tests/lib/assert.sh
source "$here/../../tests/lib/assert.sh"
[ $# = 4 ] || { sed -n '2,8s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
n=$1 pods=$2 bin=$3 kubelet=$4 id=$$
tmp=$(mktemp -d)
kubelet_pid=''
cleanup() {
  [ -n "$kubelet_pid" ] && kill "$kubelet_pid" 2>/dev/null && wait "$kubelet_pid" 2>/dev/null
  ip -all netns list 2>/dev/null | awk '{print $1}' | grep "^brl-$id-" | xargs -r -n1 ip netns del || true
  ip link del "rsw$id" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
d=$tmp/sys/bus/pci
mkdir -p "$d/drivers/iavf" "$d/devices/0000:5e:00.0/net/rpf$id" "$d/devices/0000:5e:02.0/net/rvf$id" \
  "$tmp/dp"
ln -s ../0000:5e:00.0 "$d/devices/0000:5e:02.0/physfn"
ln -s ../0000:5e:02.0 "$d/devices/0000:5e:00.0/virtfn0"
ln -s ../../../bus/pci/drivers/iavf "$d/devices/0000:5e:02.0/driver"
ip link add "rvf$id" type veth peer name "rsw$id"
allocs=()
for ((p = 0; p < pods; p++)); do allocs+=("bench/pod$p/strata.io/sriov-fast=0000:5e:02.0"); done
"$kubelet" "$tmp/dp" "$tmp/podres.sock" "$tmp/ready" "${allocs[@]}" &
kubelet_pid=$!
wait_until 10 test -s "$tmp/ready" || { echo "fake kubelet not ready" >&2; exit 1; }
base='{"cniVersion":"1.0.0","name":"bench","type":"strata-sriov","mac":"0a:58:00:00:00:09",
  "vlan":100,"mtu":9000'
# Read by name through ${!conf_var} below.
# shellcheck disable=SC2034
conf_device="$base,\"deviceID\":\"0000:5e:02.0\"}"
# shellcheck disable=SC2034
conf_resource="$base,\"resourceName\":\"strata.io/sriov-fast\",\"podResourcesSocket\":\"$tmp/podres.sock\"}"
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
run() {  # CONF CMD NETNS -> prints the call's wall time in us
  local t0 t1
  t0=$(now_us)
  printf '%s' "$1" | env -i CNI_COMMAND="$2" CNI_CONTAINERID=c CNI_NETNS="/run/netns/$3" \
    CNI_IFNAME=net1 CNI_PATH="$bin" CNI_ARGS="K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod$((pods - 1))" \
    STRATA_CNI_SYSFS_ROOT="$tmp/sys" STRATA_CNI_STATE_DIR="$tmp/state" STRATA_CNI_SIMULATE_PF=1 \
    "$bin/strata-sriov" >/dev/null
  t1=$(now_us)
  echo $((t1 - t0))
}
declare -A s
for ((i = 0; i <= n; i++)); do
  for v in device resource; do
    ns=brl-$id-$v$i
    ip netns add "$ns"
    conf_var=conf_$v
    add=$(run "${!conf_var}" ADD "$ns")
    run "${!conf_var}" DEL "$ns" >/dev/null
    ip netns del "$ns"
    t0=$(now_us)
    "$bin/strata-podresources" --socket "$tmp/podres.sock" --namespace bench --pod "pod$((pods - 1))" \
      --resource strata.io/sriov-fast >/dev/null
    look=$(($(now_us) - t0))
    ((i == 0)) && continue  # warm-up
    s[$v]+="$add " s[lookup]+="$look "
  done
done
stat() {
  # shellcheck disable=SC2086
  printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f (p90 %.1f)", m / 1000, v[int(NR * 0.9 + 0.999)] / 1000 }'
}
echo "ADD with deviceID (Multus):            $(stat "${s[device]}") ms"
echo "ADD with resourceName (PodResources):  $(stat "${s[resource]}") ms"
echo "strata-podresources alone ($pods pods): $(stat "${s[lookup]}") ms"
