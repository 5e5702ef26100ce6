#!/usr/bin/env bash
# strata-bond's `vlan` option against the real bonding and 8021q drivers (VM tier: the host kernel
# has neither):
#   - strata-bond ADD builds an active-backup bond from two veth ports in a pod namespace and an
#     802.1Q VLAN (id 100) on it as CNI_IFNAME; the kernel reports the VLAN's id and lower device;
#     CHECK passes, and fails for another id;
#   - the ports' peers sit on a bridge (a switch that passes tags) with two more namespaces: one
#     with a VLAN 100 interface, one with a VLAN 200 interface, both holding the SAME address.
#     Pings from the pod reach the VLAN 100 peer; the VLAN 200 peer's port sees the tagged frames
#     but its VLAN 200 interface receives nothing;
#   - the active port's carrier is cut under a ping stream: the bond fails over, tagged traffic
#     goes on through the backup port (most replies received, the outage reported);
#   - DEL removes the VLAN and the bond, the ports stay in the pod; DEL again succeeds.
# Usage: tests/vm/run-in-vm.sh tests/cni/vlan_vm_test.sh STRATA_CNI_BIN_DIR
# Prints PASS/FAIL lines and "RESULT key=value" lines; exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
STRATA_CNI_BIN=$1
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root"; exit 1; }
readonly kPodAddr=10.205.0.1 kPeerAddr=10.205.0.2
pod=scvpod-$$ sw=scvsw-$$ peer100=scv100-$$ peer200=scv200-$$
nspath=/run/netns/$pod
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  for ns in "$pod" "$sw" "$peer100" "$peer200"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -f "/tmp/vlan-ping.$$"
}
trap cleanup EXIT

# 8021q is preloaded in the VM tier (build-vm.sh MODULES); load it when it is not.
[ -d /proc/net/vlan ] || modprobe -d "${STRATA_VM_MODROOT:-/}" 8021q
in_pod() { ip netns exec "$pod" "$@"; }
ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)
ping_once() { in_pod "${ping_cmd[@]}" -q -c 1 -W 1 "$kPeerAddr" >/dev/null 2>&1; }
rx_packets() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }
active_is() { [ "$(in_pod cat /sys/class/net/net0-bond/bonding/active_slave)" = "$1" ]; }
mii_up() { [ "$(in_pod cat "/sys/class/net/$1/bonding_slave/mii_status")" = up ]; }

for ns in "$pod" "$sw" "$peer100" "$peer200"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip -n "$sw" link add br0 type bridge # vlan_filtering 0: tagged frames pass as they are
ip -n "$sw" link set br0 up
for p in port0 port1; do
  ip -n "$pod" link add "$p" type veth peer name "$p-sw" netns "$sw"
done
for id in 100 200; do
  ns=scv$id-$$
  ip -n "$ns" link add "p$id" type veth peer name "p$id-sw" netns "$sw"
  ip -n "$ns" link set "p$id" up
  ip -n "$ns" link add link "p$id" name "p$id.$id" type vlan id "$id"
  ip -n "$ns" addr add "$kPeerAddr/24" dev "p$id.$id"
  ip -n "$ns" link set "p$id.$id" up
done
for p in port0-sw port1-sw p100-sw p200-sw; do
  ip -n "$sw" link set "$p" master br0
  ip -n "$sw" link set "$p" up
done

conf=$(jq -cn '{cniVersion:"1.1.0", name:"tagged", type:"strata-bond", mode:"active-backup",
  miimon:100, primary:"port0", vlan:100, links:[{name:"port0"},{name:"port1"}]}')
cni_exec "$STRATA_CNI_BIN" strata-bond ADD "$nspath" net0 ctr-vlan "$conf"
expect_eq "ADD bond + VLAN 100" "$cni_rc" 0
expect_eq "result lists the bond, then the VLAN" "$(jq -c '[.interfaces[].name]' <<<"$cni_out")" \
  '["net0-bond","net0"]'
expect_eq "kernel: net0 is a VLAN" "$(in_pod ip -d -j link show net0 | jq -r '.[0].linkinfo.info_kind')" vlan
expect_eq "kernel: VLAN id" "$(in_pod ip -d -j link show net0 | jq -r '.[0].linkinfo.info_data.id')" 100
expect_eq "kernel: VLAN protocol" \
  "$(in_pod ip -d -j link show net0 | jq -r '.[0].linkinfo.info_data.protocol')" 802.1Q
expect_eq "kernel: the VLAN's lower device" "$(in_pod ip -j link show net0 | jq -r '.[0].link')" net0-bond
expect_eq "kernel: bond mode" "$(in_pod cat /sys/class/net/net0-bond/bonding/mode)" "active-backup 1"
expect_eq "kernel: bond members" "$(in_pod cat /sys/class/net/net0-bond/bonding/slaves)" "port0 port1"
in_pod ip addr add "$kPodAddr/24" dev net0
check "port0 link up" wait_until 10 mii_up port0
check "port1 link up" wait_until 10 mii_up port1
check "active port is the primary" wait_until 10 active_is port0
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" net0 ctr-vlan "$conf"
expect_eq "CHECK" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" net0 ctr-vlan "$(jq -c '.vlan = 200' <<<"$conf")"
expect_eq "CHECK with another VLAN id fails" "$cni_rc" 1
expect_contains "CHECK says which id" "$(jq -r .msg <<<"$cni_out")" "net0 has VLAN id 100, configured 200"

# --- tagged traffic reaches VLAN 100 only --------------------------------------------------------
rx200_vlan_before=$(rx_packets "$peer200" p200.200)
rx200_port_before=$(rx_packets "$peer200" p200)
rx100_before=$(rx_packets "$peer100" p100.100)
check "ping over VLAN 100 through the bond" wait_until 10 ping_once
in_pod "${ping_cmd[@]}" -q -c 5 -i 0.2 -W 1 "$kPeerAddr" >/dev/null 2>&1 || true
check "VLAN 100 peer received the pings" [ "$(rx_packets "$peer100" p100.100)" -ge $((rx100_before + 5)) ]
check "VLAN 200 peer's port saw the (flooded) tagged frames" \
  [ "$(rx_packets "$peer200" p200)" -gt "$rx200_port_before" ]
expect_eq "VLAN 200 peer's interface received nothing" \
  "$(rx_packets "$peer200" p200.200)" "$rx200_vlan_before"
expect_eq "VLAN 200 peer never learned the pod's address" \
  "$(ip -n "$peer200" -j neigh show dev p200.200 | jq -c "map(select(.dst == \"$kPodAddr\")) | length")" 0
expect_eq "the pod reaches the VLAN 100 peer's MAC" \
  "$(in_pod ip -j neigh show dev net0 | jq -r ".[] | select(.dst == \"$kPeerAddr\") | .lladdr")" \
  "$(ip -n "$peer100" -j link show p100.100 | jq -r '.[0].address')"

# --- failover keeps tagged traffic flowing -------------------------------------------------------
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
ping_start=$(now_ms)
ip netns exec "$pod" "${ping_cmd[@]}" -i 0.01 -w 30 "$kPeerAddr" >"/tmp/vlan-ping.$$" 2>&1 &
ping_pid=$!
# The stream is running once its first reply is in (a poll on its output, not a fixed sleep).
check "ping stream started" wait_until 10 grep -q 'seq=' "/tmp/vlan-ping.$$"
ip -n "$sw" link set port0-sw down
check "active port moved to port1" wait_until 10 active_is port1
rx_after_failover=$(rx_packets "$peer100" p100.100)
rx100_above() { [ "$(rx_packets "$peer100" p100.100)" -gt "$1" ]; }
check "tagged pings reach VLAN 100 after failover" wait_until 10 rx100_above $((rx_after_failover + 20))
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
ping_ms=$(($(now_ms) - ping_start))
lost_run=$( { grep -o 'seq=[0-9]*' "/tmp/vlan-ping.$$" || true; } | cut -d= -f2 |
  awk 'NR > 1 && $1 - p - 1 > m { m = $1 - p - 1 } { p = $1 } END { printf "%d", m }')
sent=$( { grep -o '[0-9]* packets transmitted' "/tmp/vlan-ping.$$" || echo 0; } | cut -d' ' -f1)
recv=$( { grep -o '[0-9]* packets received' "/tmp/vlan-ping.$$" || echo 0; } | cut -d' ' -f1)
interval_ms=$((ping_ms / (sent > 0 ? sent : 1)))
echo "RESULT vlan_failover_gap_ms<=$(((lost_run + 1) * interval_ms)) lost_in_a_row=$lost_run ping_sent=$sent ping_received=$recv"
check "tagged traffic kept flowing across failover: ${recv}/${sent} replies" \
  [ "${recv:-0}" -gt $((${sent:-1} / 2)) ]
expect_eq "still nothing on VLAN 200" "$(rx_packets "$peer200" p200.200)" "$rx200_vlan_before"
cni_exec "$STRATA_CNI_BIN" strata-bond CHECK "$nspath" net0 ctr-vlan "$conf"
expect_eq "CHECK on the backup port" "$cni_rc" 0

# --- DEL -----------------------------------------------------------------------------------------
cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" net0 ctr-vlan "$conf"
expect_eq "DEL" "$cni_rc" 0
check "VLAN gone" in_pod test ! -e /sys/class/net/net0
check "bond gone" in_pod test ! -e /sys/class/net/net0-bond
check "ports released" in_pod test ! -e /sys/class/net/port0/master
expect_eq "ports stay in the pod" "$(in_pod ip -j link show | jq -c '[.[].ifname] | sort')" \
  '["lo","port0","port1"]'
cni_exec "$STRATA_CNI_BIN" strata-bond DEL "$nspath" net0 ctr-vlan "$conf"
expect_eq "DEL again" "$cni_rc" 0
finish
