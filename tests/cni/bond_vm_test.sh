#!/usr/bin/env bash
# strata-bond against the real bonding driver (run it in the VM tier: the host kernel has none):
#   - active-backup bond built by strata-bond (ADD) from two veth ports in a pod namespace, their
#     peers bridged in a second namespace; CHECK verifies mode, members and the active port;
#   - traffic keeps flowing while the active port's carrier is cut: the failover time (active port
#     change) and the traffic gap (a 10 ms ping stream's longest silence) are reported; CHECK
#     still passes on the new active port; the primary takes over again when its carrier returns;
#   - balance-xor (xmitHashPolicy), 802.3ad, balance-tlb, balance-alb: ADD, kernel mode read
#     back, CHECK, DEL; DEL releases the members and is idempotent; a bad link leaves no bond;
#   - the chain CNI users build: two VFs on different PFs (strata-sriov, on a laid-out sysfs tree)
#     -> strata-bond over them -> strata-bandwidth on the bond; traffic, CHECK, DEL in reverse.
# Usage: tests/vm/run-in-vm.sh tests/cni/bond_vm_test.sh STRATA_CNI_BIN_DIR
# Prints PASS/FAIL lines and "RESULT key=value" lines; exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
STRATA_CNI_BIN=$1
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root"; exit 1; }
readonly kBondAddr=10.204.0.1 kPeerAddr=10.204.0.2
pod=scbond-$$
peer=scpeer-$$
nspath=/run/netns/$pod
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  ip netns del "$pod" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
}
trap cleanup EXIT

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
# poll_ms DEADLINE_MS CMD...: sets `waited` (ms); 1 when the deadline passed.
poll_ms() {
  local deadline=$1 start
  shift
  start=$(now_ms)
  while ! "$@"; do
    waited=$(($(now_ms) - start))
    ((waited <= deadline)) || return 1
    sleep 0.01
  done
  waited=$(($(now_ms) - start))
}
in_pod() { ip netns exec "$pod" "$@"; }
active_is() { [ "$(in_pod cat /sys/class/net/bond0/bonding/active_slave)" = "$1" ]; }
active_is_not() {
  local a
  a=$(in_pod cat /sys/class/net/bond0/bonding/active_slave)
  [ -n "$a" ] && [ "$a" != "$1" ]
}
mii_up() { [ "$(in_pod cat "/sys/class/net/$1/bonding_slave/mii_status")" = up ]; }
# iputils ping when present, busybox's otherwise (the build machines have only busybox's).
ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)
ping_once() { in_pod "${ping_cmd[@]}" -q -c 1 -W 1 "$kPeerAddr" >/dev/null 2>&1; }

bond_conf() {  # MODE [JQ]
  jq -cn --arg m "$1" '{cniVersion:"1.0.0", name:"bonded", type:"strata-bond", mode:$m,
    miimon:100, links:[{name:"port0"},{name:"port1"}]}' | jq -c "${2:-.}"
}

ip netns add "$pod"
ip netns add "$peer"
ip -n "$pod" link set lo up
ip -n "$peer" link set lo up
ip -n "$peer" link add br0 type bridge
for p in port0 port1; do
  ip -n "$pod" link add "$p" type veth peer name "$p-peer" netns "$peer"
  ip -n "$peer" link set "$p-peer" master br0
  ip -n "$peer" link set "$p-peer" up
done
ip -n "$peer" addr add "$kPeerAddr/24" dev br0
ip -n "$peer" link set br0 up

# --- active-backup with failover ----------------------------------------------------------------
conf=$(bond_conf active-backup '.primary = "port0" | .mtu = 1400')
cni_exec "$STRATA_CNI_BIN" strata-bond ADD "$nspath" bond0 ctr-ab "$conf"
expect_eq "active-backup: ADD" "$cni_rc" 0
expect_eq "active-backup: result names the bond" "$(jq -r '.interfaces[0].name' <<<"$cni_out")" bond0
expect_eq "kernel mode" "$(in_pod cat /sys/class/net/bond0/bonding/mode)" "active-backup 1"
expect_eq "kernel members" "$(in_pod cat /sys/class/net/bond0/bonding/slaves)" "port0 port1"
expect_eq "kernel primary" "$(in_pod cat /sys/class/net/bond0/bonding/primary)" "port0"
expect_eq "kernel miimon" "$(in_pod cat /sys/class/net/bond0/bonding/miimon)" 100
expect_eq "MTU on the bond" "$(in_pod cat /sys/class/net/bond0/mtu)" 1400
in_pod ip addr add "$kBondAddr/24" dev bond0
check "both ports report link up" poll_ms 10000 mii_up port0
check "port1 link up" poll_ms 10000 mii_up port1
check "active port is the primary" poll_ms 10000 active_is port0
check "ping through the bond" poll_ms 10000 ping_once
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" bond0 ctr-ab "$conf"
expect_eq "CHECK on port0" "$cni_rc" 0

# A ping stream (10 ms asked; TCG makes it slower, so the real interval is measured) runs across
# the failover: its longest run of missing replies times that interval is the outage traffic saw.
# `ip netns exec` execs ping, so $! is ping itself; -w bounds it whatever happens (above the sum
# of the deadlines below, which a slow guest may use up).
ping_start=$(now_ms)
ip netns exec "$pod" "${ping_cmd[@]}" -i 0.01 -w 90 "$kPeerAddr" >/tmp/bond-ping.$$ 2>&1 &
ping_pid=$!
# A baseline of replies before the cut (a poll on the stream's output, not a fixed sleep: under
# TCG on a busy host, starting ping in the namespace alone can take longer than a second).
ping_replies() {
  local n
  n=$(grep -c 'seq=' "/tmp/bond-ping.$$" 2>/dev/null) || true
  [ "${n:-0}" -ge "$1" ]
}
check "ping stream running" poll_ms 20000 ping_replies 50
# Cut the carrier and time the active-port change from inside the pod's namespace, reading sysfs
# with shell builtins only: a fork per poll would add tens of ms under TCG.
failover_ms=$(ip netns exec "$pod" bash -c '
  ip -n "$1" link set port0-peer down
  t0=${EPOCHREALTIME//[.,]/}
  while :; do
    read -r a </sys/class/net/bond0/bonding/active_slave || a=
    t=${EPOCHREALTIME//[.,]/}
    if [ -n "$a" ] && [ "$a" != port0 ]; then echo $(((t - t0) / 1000)); exit 0; fi
    ((t - t0 < 15000000)) || { echo timeout; exit 1; }
  done' _ "$peer" || true)
if [[ $failover_ms =~ ^[0-9]+$ ]]; then
  echo "RESULT failover_ms=$failover_ms"
  pass "active port moved off port0 ${failover_ms} ms after its carrier was cut"
  expect_eq "new active port" "$(in_pod cat /sys/class/net/bond0/bonding/active_slave)" port1
else
  fail "active port still port0 15 s after its carrier was cut ($failover_ms)"
fi
check "ping after failover" poll_ms 10000 ping_once
# As many replies again after the failover, so "traffic kept flowing" compares like with like.
after_failover=$(grep -c 'seq=' "/tmp/bond-ping.$$" || true)
check "ping stream running after failover" poll_ms 20000 ping_replies $((after_failover + 50))
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
ping_ms=$(($(now_ms) - ping_start))
lost_run=$( { grep -o 'seq=[0-9]*' /tmp/bond-ping.$$ || true; } | cut -d= -f2 |
  awk 'NR > 1 && $1 - p - 1 > m { m = $1 - p - 1 } { p = $1 } END { printf "%d", m }')
sent=$( { grep -o '[0-9]* packets transmitted' /tmp/bond-ping.$$ || echo 0; } | cut -d' ' -f1)
recv=$( { grep -o '[0-9]* packets received' /tmp/bond-ping.$$ || echo 0; } | cut -d' ' -f1)
rm -f /tmp/bond-ping.$$
interval_ms=$((ping_ms / (sent > 0 ? sent : 1)))
gap_ms=$(((lost_run + 1) * interval_ms))
echo "RESULT traffic_gap_ms<=$gap_ms lost_in_a_row=$lost_run ping_interval_ms=$interval_ms ping_sent=$sent ping_received=$recv"
check "traffic kept flowing: ${recv}/${sent} replies, outage <= ${gap_ms} ms" \
  [ "${recv:-0}" -gt $((${sent:-1} / 2)) ]
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" bond0 ctr-ab "$conf"
expect_eq "CHECK on the backup port" "$cni_rc" 0
ip -n "$peer" link set port0-peer up
if poll_ms 15000 active_is port0; then
  echo "RESULT failback_ms=$waited"
  pass "primary port0 active again ${waited} ms after its carrier returned"
else
  fail "port0 not active again after its carrier returned"
fi

cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" bond0 ctr-ab "$conf"
expect_eq "DEL" "$cni_rc" 0
check "bond gone" in_pod test ! -e /sys/class/net/bond0
check "members released" in_pod test ! -e /sys/class/net/port0/master
check "members stay in the pod" in_pod test -e /sys/class/net/port1
cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" bond0 ctr-ab "$conf"
expect_eq "DEL again" "$cni_rc" 0

# --- the load-balancing modes -------------------------------------------------------------------
for mode in "balance-xor 2" "802.3ad 4" "balance-tlb 5" "balance-alb 6"; do
  name=${mode% *}
  extra=.
  [ "$name" = balance-alb ] || extra='.xmitHashPolicy = "layer3+4"'
  conf=$(bond_conf "$name" "$extra")
  cni_exec "$STRATA_CNI_BIN" strata-bond ADD "$nspath" bond0 "ctr-$name" "$conf"
  expect_eq "$name: ADD" "$cni_rc" 0
  expect_eq "$name: kernel mode" "$(in_pod cat /sys/class/net/bond0/bonding/mode)" "$mode"
  if [ "$extra" != . ]; then
    expect_contains "$name: hash policy" "$(in_pod cat /sys/class/net/bond0/bonding/xmit_hash_policy)" "layer3+4"
  fi
  cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" bond0 "ctr-$name" "$conf"
  expect_eq "$name: CHECK" "$cni_rc" 0
  cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" bond0 "ctr-$name" "$conf"
  expect_eq "$name: DEL" "$cni_rc" 0
  check "$name: bond gone" in_pod test ! -e /sys/class/net/bond0
done

# --- a bad link: error code 7, no bond left -----------------------------------------------------
cni_exec "$STRATA_CNI_BIN" strata-bond ADD "$nspath" bond0 ctr-bad \
  "$(bond_conf active-backup '.links[1].name = "port9"')"
expect_eq "missing link -> code 7" "$(jq -r .code <<<"$cni_out")" 7
expect_contains "message names the field" "$(jq -r .msg <<<"$cni_out")" "links[1].name: port9 not found"
check "no bond left" in_pod test ! -e /sys/class/net/bond0

# --- the whole chain: two VFs on different PFs (strata-sriov) -> strata-bond -> strata-bandwidth --
# VFs are veth stand-ins on a laid-out sysfs tree (PF-level settings simulated, see sriov_sim.h);
# their other ends are bridged in the peer namespace like a switch.
# STRATA_CNI_SIMULATE_PF: the test-only switch for the laid-out tree (the PF-side VF settings).
export STRATA_CNI_SYSFS_ROOT=/tmp/scsys-$$ STRATA_CNI_STATE_DIR=/tmp/scstate-$$ STRATA_CNI_SIMULATE_PF=1
d=$STRATA_CNI_SYSFS_ROOT/bus/pci
mkdir -p "$d/drivers/iavf"
for i in 0 1; do
  pfp=0000:0$((i + 3)):00.0 vfp=0000:0$((i + 3)):02.0
  mkdir -p "$d/devices/$pfp/net/pf$i" "$d/devices/$vfp/net/vf$i"
  ln -s "../$pfp" "$d/devices/$vfp/physfn"
  ln -s "../$vfp" "$d/devices/$pfp/virtfn0"
  ln -s ../../../bus/pci/drivers/iavf "$d/devices/$vfp/driver"
  ip link add "vf$i" type veth peer name "vf$i-peer" netns "$peer"
  ip -n "$peer" link set "vf$i-peer" master br0
  ip -n "$peer" link set "vf$i-peer" up
done
chain_ns=scchain-$$
ip netns add "$chain_ns"
chain_path=/run/netns/$chain_ns
ip -n "$chain_ns" link set lo up
prev=null
for i in 0 1; do
  conf=$(jq -cn --arg dev "0000:0$((i + 3)):02.0" --argjson prev "$prev" '{cniVersion:"1.1.0",
    name:"chain", type:"strata-sriov", deviceID:$dev, vlan:0, spoofchk:"on"}
    + (if $prev == null then {} else {prevResult:$prev} end)')
  cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "$chain_path" "net$((i + 1))" ctr-chain "$conf"
  expect_eq "chain: strata-sriov ADD VF $i as net$((i + 1))" "$cni_rc" 0
  prev=$cni_out
done
expect_eq "chain: both VFs in the result with their PCI addresses" \
  "$(jq -c '[.interfaces[].pciID]' <<<"$prev")" '["0000:03:02.0","0000:04:02.0"]'
bond=$(jq -cn --argjson prev "$prev" '{cniVersion:"1.1.0", name:"chain", type:"strata-bond",
  mode:"active-backup", miimon:100, primary:"net1", failOverMac:"none",
  links:[{name:"net1"},{name:"net2"}], prevResult:$prev}')
cni_exec "$STRATA_CNI_BIN" strata-bond ADD "$chain_path" bond0 ctr-chain "$bond"
expect_eq "chain: strata-bond ADD over the two VFs" "$cni_rc" 0
prev=$cni_out
expect_eq "chain: result lists VFs and bond" "$(jq -c '[.interfaces[].name]' <<<"$prev")" '["net1","net2","bond0"]'
# The guest kernel has sch_tbf as a module, outside the VM tier's preloaded set (build-vm.sh
# MODULES), and cannot autoload it: load it from the module tree, else from the cached kernel
# package (shared read-only with the host root).
load_tbf() {
  [ -n "${STRATA_VM_MODROOT:-}" ] && modprobe -d "$STRATA_VM_MODROOT" sch_tbf 2>/dev/null && return
  local kver deb
  kver=$(uname -r)
  for deb in "${STRATA_CACHE:-/root/.cache/strata}/vm/$kver"/linux-image-*.deb \
    /root/.cache/strata/vm/"$kver"/linux-image-*.deb; do
    [ -f "$deb" ] || continue
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./lib/modules/$kver/kernel/net/sched/sch_tbf.ko" \
      >/tmp/sch_tbf.ko && insmod /tmp/sch_tbf.ko && return
  done
  return 1
}
load_tbf || echo "note: could not load sch_tbf; the shaping step below will say so"
bw=$(jq -cn --argjson prev "$prev" '{cniVersion:"1.1.0", name:"chain", type:"strata-bandwidth",
  egressRate:50000000, egressBurst:1000000, prevResult:$prev}')
cni_exec "$STRATA_CNI_BIN" strata-bandwidth ADD "$chain_path" bond0 ctr-chain "$bw"
expect_eq "chain: strata-bandwidth ADD on the bond (egress)" "$cni_rc" 0
expect_eq "chain: tbf on bond0" "$(root_qdisc "$chain_ns" bond0)" "tbf 5354: 50000000"
ip -n "$chain_ns" addr add 10.204.0.7/24 dev bond0
check "chain: ping through the bonded VFs" poll_ms 10000 \
  ip netns exec "$chain_ns" "${ping_cmd[@]}" -q -c 1 -W 1 "$kPeerAddr"
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$chain_path" bond0 ctr-chain "$bond"
expect_eq "chain: strata-bond CHECK" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bandwidth CHECK "$chain_path" bond0 ctr-chain "$bw"
expect_eq "chain: strata-bandwidth CHECK" "$cni_rc" 0
# DEL in reverse order, as the runtime does.
cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$chain_path" bond0 ctr-chain "$bw"
expect_eq "chain: strata-bandwidth DEL" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$chain_path" bond0 ctr-chain "$bond"
expect_eq "chain: strata-bond DEL" "$cni_rc" 0
for i in 1 0; do
  conf=$(jq -cn --arg dev "0000:0$((i + 3)):02.0" '{cniVersion:"1.1.0", name:"chain",
    type:"strata-sriov", deviceID:$dev}')
  cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "$chain_path" "net$((i + 1))" ctr-chain "$conf"
  expect_eq "chain: strata-sriov DEL net$((i + 1))" "$cni_rc" 0
  check "chain: VF $i back on the host as vf$i" test -e "/sys/class/net/vf$i"
done
expect_eq "chain: pod left with loopback only" \
  "$(ip -n "$chain_ns" -j link show | jq -c 'map(.ifname)')" '["lo"]'
ip netns del "$chain_ns"
rm -rf "$STRATA_CNI_SYSFS_ROOT" "$STRATA_CNI_STATE_DIR"

ip netns del "$pod"
cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" bond0 ctr-ab "$(bond_conf active-backup)"
expect_eq "DEL with the netns gone" "$cni_rc" 0
finish
