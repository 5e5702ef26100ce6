#!/usr/bin/env bash
# ADD and DEL latency of strata-cni's plugins against Debian's reference plugins, in one run on
# the same machine, each invocation timed as a container runtime sees it (fork + exec + work):
#   bridge+host-local   reference main plugin (creates the veth; its DEL deletes it)
#   bandwidth           reference shaping (ifb device for egress; its DEL deletes the ifb)
#   strata-bandwidth    same limits (tbf on the host veth + tbf in the pod; DEL removes 2 qdiscs)
#   strata-sriov        VF move into the pod and back, on a laid-out sysfs tree (veth stand-in;
#                       PF-level IFLA_VF_* simulated, see cni-plugin/include/strata/cni/sriov_sim.h)
#   netns move floor    `ip link set DEV netns POD` and back (two iproute2 runs): the two kernel
#                       namespace moves any SR-IOV plugin's ADD+DEL needs, nothing else
#   VERSION             process start alone (Go plugin vs strata-cni)
# The shaped veth pair is made before and removed after each timed ADD/DEL, outside the timing,
# identically for both bandwidth plugins.
# Usage: bench/cni/cni_bench.sh [ITERATIONS]      (root; needs jq, containernetworking-plugins)
#   STRATA_CNI_BIN   default build/default/cni-plugin      REF_CNI_BIN  default /usr/lib/cni
# Prints a Markdown table (median and p90 in ms) and one "RESULT" line per measurement.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
iterations=${1:-30}
: "${STRATA_CNI_BIN:=$root/build/default/cni-plugin}"
: "${REF_CNI_BIN:=/usr/lib/cni}"
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for f in "$STRATA_CNI_BIN/strata-bandwidth" "$STRATA_CNI_BIN/strata-sriov" "$REF_CNI_BIN/bandwidth" \
  "$REF_CNI_BIN/bridge"; do
  [ -x "$f" ] || { echo "missing $f" >&2; exit 1; }
done

id=$$
tmp=$(mktemp -d)
br=bbr$id
cleanup() {
  ip -all netns list 2>/dev/null | awk '{print $1}' | grep "^bcni-$id-" | xargs -r -n1 ip netns del || true
  ip link del "$br" 2>/dev/null || true
  ip link del "bsw$id" 2>/dev/null || true
  ip link del "bmp$id" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

declare -A samples
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
# run_cni DIR PLUGIN CMD NETNS IFNAME CID CONF: times one invocation into `elapsed_us`.
run_cni() {
  local t0 t1 rc=0
  t0=$(now_us)
  printf '%s' "$7" | env -i CNI_COMMAND="$3" CNI_CONTAINERID="$6" CNI_NETNS="$4" CNI_IFNAME="$5" \
    CNI_PATH="$REF_CNI_BIN" STRATA_CNI_SYSFS_ROOT="$tmp/sys" STRATA_CNI_STATE_DIR="$tmp/state" \
    STRATA_CNI_SIMULATE_PF=1 \
    "$1/$2" >"$tmp/out" 2>&1 || rc=$?
  t1=$(now_us)
  elapsed_us=$((t1 - t0))
  if [ "$rc" != 0 ]; then
    echo "$2 $3 failed ($rc): $(cat "$tmp/out")" >&2
    exit 1
  fi
}
record() { samples[$1]+="$2 "; }

# Shaping config shared by both bandwidth plugins: 100 Mbit/s each way.
shaped_pair() {  # I -> sets ns, prev
  ns=bcni-$id-$1
  ip netns add "$ns"
  ip link add "bh$id-$1" type veth peer name eth0 netns "$ns"
  ip link set "bh$id-$1" up
  ip -n "$ns" link set eth0 up
  prev=$(jq -cn --arg h "bh$id-$1" --arg ns "/run/netns/$ns" '{cniVersion:"1.0.0",
    interfaces:[{name:$h},{name:"eth0", sandbox:$ns}], ips:[{address:"10.99.0.2/24", interface:1}]}')
}
bw_conf() {  # TYPE PREV
  jq -cn --arg t "$1" --argjson prev "$2" '{cniVersion:"1.0.0", name:"bench", type:$t,
    ingressRate:100000000, ingressBurst:1000000, egressRate:100000000, egressBurst:1000000,
    prevResult:$prev}'
}

bench_bandwidth() {  # DIR PLUGIN LABEL
  local i
  for ((i = 0; i <= iterations; i++)); do
    shaped_pair "$i"
    local conf
    conf=$(bw_conf "$2" "$prev")
    run_cni "$1" "$2" ADD "/run/netns/$ns" eth0 "c$i" "$conf"
    local add=$elapsed_us
    run_cni "$1" "$2" DEL "/run/netns/$ns" eth0 "c$i" "$conf"
    local del=$elapsed_us
    ip netns del "$ns"
    ((i == 0)) && continue  # warm-up (page cache, first ifb module use)
    record "$3 ADD" "$add"
    record "$3 DEL" "$del"
    record "$3 ADD+DEL" $((add + del))
  done
}

bench_bridge() {
  local i conf
  conf=$(jq -cn --arg br "$br" --arg d "$tmp/ipam" '{cniVersion:"1.0.0", name:"bench", type:"bridge",
    bridge:$br, isGateway:true, ipam:{type:"host-local", subnet:"10.98.0.0/16", dataDir:$d}}')
  for ((i = 0; i <= iterations; i++)); do
    ns=bcni-$id-br$i
    ip netns add "$ns"
    run_cni "$REF_CNI_BIN" bridge ADD "/run/netns/$ns" eth0 "b$i" "$conf"
    local add=$elapsed_us
    run_cni "$REF_CNI_BIN" bridge DEL "/run/netns/$ns" eth0 "b$i" "$conf"
    local del=$elapsed_us
    ip netns del "$ns"
    ((i == 0)) && continue
    record "bridge+host-local ADD" "$add"
    record "bridge+host-local DEL" "$del"
    record "bridge+host-local ADD+DEL" $((add + del))
  done
}

bench_sriov() {
  local d=$tmp/sys/bus/pci i conf
  mkdir -p "$d/drivers/iavf" "$d/devices/0000:5e:00.0/net/bpf$id" "$d/devices/0000:5e:02.0/net/bvf$id"
  ln -s ../0000:5e:00.0 "$d/devices/0000:5e:02.0/physfn"
  ln -s ../0000:5e:02.0 "$d/devices/0000:5e:00.0/virtfn0"
  ln -s ../../../bus/pci/drivers/iavf "$d/devices/0000:5e:02.0/driver"
  ip link add "bvf$id" type veth peer name "bsw$id"
  conf=$(jq -cn '{cniVersion:"1.0.0", name:"bench", type:"strata-sriov", deviceID:"0000:5e:02.0",
    mac:"0a:58:00:00:00:09", vlan:100, spoofchk:"off", mtu:9000}')
  for ((i = 0; i <= iterations; i++)); do
    ns=bcni-$id-sr$i
    ip netns add "$ns"
    run_cni "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$ns" net1 "s$i" "$conf"
    local add=$elapsed_us
    run_cni "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$ns" net1 "s$i" "$conf"
    local del=$elapsed_us
    ip netns del "$ns"
    ((i == 0)) && continue
    record "strata-sriov ADD" "$add"
    record "strata-sriov DEL" "$del"
    record "strata-sriov ADD+DEL" $((add + del))
  done
}

bench_move_floor() {
  local i dev=bmv$id
  ip link add "$dev" type veth peer name "bmp$id"
  for ((i = 0; i <= iterations; i++)); do
    ns=bcni-$id-mv$i
    ip netns add "$ns"
    local t0 t1 t2
    t0=$(now_us)
    ip link set "$dev" netns "$ns"
    t1=$(now_us)
    ip -n "$ns" link set "$dev" netns 1
    t2=$(now_us)
    ip netns del "$ns"
    ((i == 0)) && continue
    record "netns move floor (ip link) there" $((t1 - t0))
    record "netns move floor (ip link) back" $((t2 - t1))
    record "netns move floor (ip link) there+back" $((t2 - t0))
  done
  ip link del "$dev"
}

bench_version() {  # DIR PLUGIN LABEL
  local i
  for ((i = 0; i <= iterations; i++)); do
    run_cni "$1" "$2" VERSION "" "" "" '{"cniVersion":"1.0.0"}'
    ((i == 0)) || record "$3 VERSION (process start)" "$elapsed_us"
  done
}

# Interleave nothing: each series runs back to back, reference first, on an otherwise idle box.
bench_version "$REF_CNI_BIN" bandwidth "bandwidth (Go)"
bench_version "$STRATA_CNI_BIN" strata-bandwidth "strata-cni"
bench_bridge
bench_bandwidth "$REF_CNI_BIN" bandwidth "bandwidth"
bench_bandwidth "$STRATA_CNI_BIN" strata-bandwidth "strata-bandwidth"
bench_move_floor
bench_sriov

stat() {  # values... -> "median p90" in ms with 1 decimal
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(NR * 0.9 + 0.999)]
    printf "%.1f %.1f", m / 1000, p / 1000 }'
}
echo "| measurement ($iterations runs each, $(uname -r), $(nproc) cores) | median ms | p90 ms |"
echo "|---|---:|---:|"
for key in "bandwidth (Go) VERSION (process start)" "strata-cni VERSION (process start)" \
  "bridge+host-local ADD" "bridge+host-local DEL" "bridge+host-local ADD+DEL" \
  "bandwidth ADD" "bandwidth DEL" "bandwidth ADD+DEL" \
  "strata-bandwidth ADD" "strata-bandwidth DEL" "strata-bandwidth ADD+DEL" \
  "netns move floor (ip link) there" "netns move floor (ip link) back" \
  "netns move floor (ip link) there+back" \
  "strata-sriov ADD" "strata-sriov DEL" "strata-sriov ADD+DEL"; do
  # shellcheck disable=SC2086
  read -r med p90 <<<"$(stat ${samples[$key]})"
  echo "| $key | $med | $p90 |"
  echo "RESULT ${key// /_} median_ms=$med p90_ms=$p90" >&2
done
