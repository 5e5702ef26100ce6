#!/usr/bin/env bash
# strata-vnc's VLAN device mode against the real 8021q driver (VM tier: the host kernel has none):
#   - a node-local store with a VirtualMachine workload's record (MAC, MTU, VLAN 120, address,
#     route), laid out as strata-netd writes it (one JSON file per workload);
#   - strata-vnc ADD, chained after a veth whose pod end is net1: net1 becomes an 802.1Q device
#     (id 120) on net1-raw with the record's MAC, MTU, address and route; the result lists both;
#   - the veth's other end (in a peer namespace, a trunk) carries VLAN 120 (the gateway's address)
#     and VLAN 200 devices: a ping from the pod is answered through VLAN 120, and VLAN 200 receives
#     nothing; CHECK passes;
#   - DEL deletes the VLAN device and gives net1-raw its name back; DEL again succeeds.
# Usage: tests/vm/run-in-vm.sh tests/netd/vnc_vlan_vm_test.sh STRATA_CNI_BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
cni_bin=$1
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root"; exit 1; }
pod=vncvpod-$$ peer=vncvpeer-$$
store=$(mktemp -d)
cleanup() {
  ip netns del "$pod" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
  rm -rf "$store"
}
trap cleanup EXIT
[ -d /proc/net/vlan ] || modprobe -d "${STRATA_VM_MODROOT:-/}" 8021q
ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)

mkdir -p "$store/configs" "$store/pods" "$store/applied"
cat >"$store/configs/virtualmachine_db_db-vm.json" <<'EOF'
{"workload": {"namespace": "db", "kind": "VirtualMachine", "name": "db-vm"},
 "source": {"namespace": "db", "name": "db-vm-net", "uid": "uid-1", "resourceVersion": "42",
            "generation": 1},
 "spec": {"workload": {"kind": "VirtualMachine", "name": "db-vm"},
          "interfaces": [{"name": "net1", "type": "sriov", "mac": "02:5e:10:00:00:15",
                          "mtu": 1400, "vlan": 120, "addresses": ["10.120.0.15/24"]}],
          "routes": [{"destination": "10.0.0.0/8", "gateway": "10.120.0.1"}]}}
EOF

ip netns add "$pod"
ip netns add "$peer"
ip -n "$pod" link set lo up
ip link add net1 netns "$pod" type veth peer name trunk netns "$peer"
ip -n "$peer" link set trunk up
for id in 120 200; do
  ip -n "$peer" link add link trunk name "trunk.$id" type vlan id "$id"
  ip -n "$peer" addr add "10.$id.0.1/24" dev "trunk.$id"
  ip -n "$peer" link set "trunk.$id" up
done

conf=$(jq -cn --arg sb "/run/netns/$pod" '{cniVersion:"1.1.0", name:"vnc-net", type:"strata-vnc",
  podIndexWaitMilliseconds:0, prevResult:{cniVersion:"1.1.0", interfaces:[{name:"net1", sandbox:$sb}]}}')
run() {  # COMMAND CONF
  set +e
  out=$(printf '%s' "$2" | env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=ctr-vlan \
    CNI_NETNS="/run/netns/$pod" CNI_IFNAME=net1 CNI_PATH="$cni_bin" STRATA_CNI_VNC_STORE_DIR="$store" \
    CNI_ARGS="K8S_POD_NAMESPACE=db;K8S_POD_NAME=virt-launcher-db-vm-q2w3e" "$cni_bin/strata-vnc")
  rc=$?
  set -e
}

run ADD "$conf"
expect_eq "ADD" "$rc" 0
result=$out
expect_eq "result: net1-raw then the VLAN net1" "$(jq -c '[.interfaces[].name]' <<<"$result")" '["net1-raw","net1"]'
expect_eq "result: VLAN and mode" "$(jq -c '."strata.io/vnc" | [.vlan, .vlanMode]' <<<"$result")" '[120,"device"]'
details=$(ip -n "$pod" -d -j link show net1)
expect_eq "net1 is VLAN 120 on net1-raw" \
  "$(jq -r '.[0] | "\(.linkinfo.info_kind) \(.linkinfo.info_data.id) \(.link)"' <<<"$details")" "vlan 120 net1-raw"
expect_eq "net1's MAC and MTU" "$(jq -r '.[0] | "\(.address) \(.mtu)"' <<<"$details")" "02:5e:10:00:00:15 1400"
expect_eq "net1's address" \
  "$(ip -n "$pod" -j addr show dev net1 | jq -r '[.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"] | join(",")')" \
  10.120.0.15/24
expect_eq "route via the VLAN" \
  "$(ip -n "$pod" -j route show 10.0.0.0/8 | jq -r '.[0] | "\(.gateway) \(.dev)"')" "10.120.0.1 net1"
rx200_before=$(ip netns exec "$peer" cat /sys/class/net/trunk.200/statistics/rx_packets)
check "ping through VLAN 120" wait_until 10 ip netns exec "$pod" "${ping_cmd[@]}" -q -c 1 -W 1 10.120.0.1
rx200_after=$(ip netns exec "$peer" cat /sys/class/net/trunk.200/statistics/rx_packets)
expect_eq "VLAN 200 received nothing" "$rx200_after" "$rx200_before"
run CHECK "$(jq -c --argjson r "$result" '.prevResult = $r' <<<"$conf")"
expect_eq "CHECK" "$rc" 0
run DEL "$conf"
expect_eq "DEL" "$rc" 0
expect_eq "net1 is the veth again" "$(ip -n "$pod" -d -j link show net1 | jq -r '.[0].linkinfo.info_kind')" veth
check "net1-raw is gone" bash -c "! ip -n $pod link show net1-raw >/dev/null 2>&1"
run DEL "$conf"
expect_eq "DEL again" "$rc" 0
finish
