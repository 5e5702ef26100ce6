#!/usr/bin/env bash
# strata-sriov in real network namespaces on a laid-out sysfs tree (STRATA_CNI_SYSFS_ROOT): a PF
# with two VFs, VF0 "bound to iavf" whose netdev is a real veth, VF1 bound to vfio-pci.
# Real here: moving the VF netdev into the pod and back, rename, MAC, MTU, up/down, the ownership
# records. Simulated (see cni-plugin/include/strata/cni/sriov_sim.h): the PF-level IFLA_VF_*
# settings, kept in $sysfs/strata-sim-vf/<pf>/vf<N>.json, which this test reads back; that takes
# the test-only switch STRATA_CNI_SIMULATE_PF=1. The last case runs without it: a sysfs root other
# than /sys is then a real sysfs mounted elsewhere, and ADD goes to this fake PF through netlink
# and fails naming it.
# Covers every spec version, CHECK, DEL restoring the VF (admin state included), ownership across
# pods, failed ADDs undone (one half-way through the kernel's move), a vfio pass-through, chaining
# strata-bandwidth after it, IPAM delegated to Debian's host-local (addresses, routes, traffic,
# release on DEL and on a failed ADD, an exhausted pool), the per-VF lock (a waiting ADD, four
# racing ADDs), and malformed configs.
# Usage: sriov_netns_test.sh STRATA_CNI_BIN_DIR     (root; labels root, integration)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
STRATA_CNI_BIN=$1
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

id=$$
tmp=$(mktemp -d)
export STRATA_CNI_SYSFS_ROOT=$tmp/sys STRATA_CNI_STATE_DIR=$tmp/state STRATA_CNI_SIMULATE_PF=1
pf_pci=0000:5e:00.0 vf0=0000:5e:02.0 vf1=0000:5e:02.1
pf=svpf$id vfdev=sv${id}v0 swdev=sv${id}s0
vf_mac=02:5e:00:00:02:00
namespaces=()
# The namespaces' names, each set by new_ns (printf -v, which shellcheck cannot follow).
nsa='' nsb='' nsf='' nsu='' nsd='' nsm='' nsi='' nsl='' ns_race='' nsg='' nsn=''
cleanup() {
  local ns
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$swdev" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

lay_out_tree() {
  local d=$STRATA_CNI_SYSFS_ROOT/bus/pci
  mkdir -p "$d/drivers/iavf" "$d/drivers/vfio-pci" "$d/devices/$pf_pci/net/$pf" \
    "$d/devices/$vf0/net/$vfdev" "$d/devices/$vf1"
  ln -s "../$pf_pci" "$d/devices/$vf0/physfn"
  ln -s "../$pf_pci" "$d/devices/$vf1/physfn"
  ln -s "../$vf0" "$d/devices/$pf_pci/virtfn0"
  ln -s "../$vf1" "$d/devices/$pf_pci/virtfn1"
  ln -s ../../../bus/pci/drivers/iavf "$d/devices/$vf0/driver"
  ln -s ../../../bus/pci/drivers/vfio-pci "$d/devices/$vf1/driver"
}
# The VF stand-in: one end of a veth whose other end stays on the host (the "switch" side).
make_vf() {
  ip link del "$swdev" 2>/dev/null || true
  ip link add "$vfdev" address "$vf_mac" mtu 1500 type veth peer name "$swdev"
  ip link set "$swdev" up
}
new_ns() {  # SUFFIX VAR: makes the namespace, records it for cleanup, names it in VAR
  local name=ssri-$id-$1
  ip netns add "$name"
  namespaces+=("$name")
  printf -v "$2" %s "$name"
}
sim_vf() { cat "$STRATA_CNI_SYSFS_ROOT/strata-sim-vf/$pf/vf$1.json" 2>/dev/null || echo '{}'; }
record() { cat "$STRATA_CNI_STATE_DIR/$1.json" 2>/dev/null || echo '{}'; }
sriov_conf() {  # VERSION [JQ]
  jq -cn --arg v "$1" --arg dev "$vf0" '{cniVersion:$v, name:"sriov-net", type:"strata-sriov",
    deviceID:$dev, mac:"0a:58:00:00:00:01", vlan:100, vlanQoS:3, spoofchk:"off", trust:"on",
    link_state:"enable", max_tx_rate:1000, mtu:9000}' | jq -c "${2:-.}"
}
link_json() { { ip ${1:+-n "$1"} -j link show "$2" 2>/dev/null || echo '[]'; } | jq -c '.[0] // {}'; }

# iputils ping when present, busybox's otherwise (the build machines have only busybox's).
ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)

lay_out_tree
make_vf

for v in 0.3.1 0.4.0 1.0.0 1.1.0; do
  new_ns "${v//./}" ns
  nspath=/run/netns/$ns
  cid=ctr-$v
  cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "$nspath" net1 "$cid" "$(sriov_conf "$v")"
  expect_eq "[$v] ADD" "$cni_rc" 0
  expect_eq "[$v] result version" "$(jq -r .cniVersion <<<"$cni_out")" "$v"
  expect_eq "[$v] result interface" "$(jq -c '.interfaces[0] | [.name, .sandbox, .mac]' <<<"$cni_out")" \
    "[\"net1\",\"$nspath\",\"0a:58:00:00:00:01\"]"
  if [ "$v" = 1.1.0 ]; then
    expect_eq "[$v] result pciID and mtu" "$(jq -c '.interfaces[0] | [.pciID, .mtu]' <<<"$cni_out")" "[\"$vf0\",9000]"
  else
    expect_eq "[$v] no 1.1.0 fields" "$(jq -c '.interfaces[0] | [.pciID, .mtu]' <<<"$cni_out")" "[null,null]"
  fi
  pod_link=$(link_json "$ns" net1)
  expect_eq "[$v] VF netdev in the pod as net1, MAC, MTU, up" \
    "$(jq -c '[.address, .mtu, (.flags | index("UP") != null)]' <<<"$pod_link")" '["0a:58:00:00:00:01",9000,true]'
  expect_eq "[$v] VF netdev gone from the host" "$(link_json "" "$vfdev")" "{}"
  expect_eq "[$v] PF settings (simulated)" \
    "$(sim_vf 0 | jq -c '[.vlan, .vlanQoS, .spoofchk, .trust, .linkState, .maxTxRate, .mac]')" \
    '[100,3,false,true,"enable",1000,"0a:58:00:00:00:01"]'
  expect_eq "[$v] ownership record" "$(record "$vf0" | jq -c '[.containerID, .ifname, .hostIfName, .hostMac]')" \
    "[\"$cid\",\"net1\",\"$vfdev\",\"$vf_mac\"]"
  if [ "$v" != 0.3.1 ]; then
    cni_exec "$STRATA_CNI_BIN" strata-sriov CHECK "$nspath" net1 "$cid" "$(sriov_conf "$v")"
    expect_eq "[$v] CHECK" "$cni_rc" 0
    cni_exec "$STRATA_CNI_BIN" strata-sriov CHECK "$nspath" net1 "$cid" "$(sriov_conf "$v" '.vlan = 200')"
    expect_eq "[$v] CHECK sees a different vlan" "$cni_rc" 1
  fi
  if [ "$v" = 1.0.0 ]; then
    # strata-bandwidth chained after it: egress shaping on the VF inside the pod.
    bw=$(jq -cn --argjson prev "$cni_out" '{cniVersion:"1.0.0", name:"sriov-net", type:"strata-bandwidth",
      egressRate:100000000, egressBurst:1000000, prevResult:$prev}')
    cni_exec "$STRATA_CNI_BIN" strata-bandwidth ADD "$nspath" net1 "$cid" "$bw"
    expect_eq "[$v] strata-bandwidth chained after strata-sriov" "$cni_rc" 0
    expect_eq "[$v] egress tbf on the VF" "$(root_qdisc "$ns" net1)" "tbf 5354: 100000000"
    cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$nspath" net1 "$cid" "$bw"
    expect_eq "[$v] strata-bandwidth DEL" "$cni_rc" 0
    expect_eq "[$v] its qdisc removed" "$(root_qdisc "$ns" net1)" "none"
  fi
  cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "$nspath" net1 "$cid" "$(sriov_conf "$v")"
  expect_eq "[$v] DEL" "$cni_rc" 0
  expect_eq "[$v] VF back on the host with its name, MAC, MTU" \
    "$(link_json "" "$vfdev" | jq -c '[.ifname, .address, .mtu]')" "[\"$vfdev\",\"$vf_mac\",1500]"
  expect_eq "[$v] PF settings restored" "$(sim_vf 0 | jq -c '[.vlan, .spoofchk, .trust, .linkState, .maxTxRate]')" \
    '[0,true,false,"auto",0]'
  expect_eq "[$v] record removed" "$(record "$vf0")" "{}"
  cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "$nspath" net1 "$cid" "$(sriov_conf "$v")"
  expect_eq "[$v] DEL again" "$cni_rc" 0
  ip netns del "$ns"
done

# --- ownership: a VF held by pod A is neither taken nor reset by pod B ---------------------------
new_ns a nsa
new_ns b nsb
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsa" net1 pod-a "$(sriov_conf 1.0.0)"
expect_eq "pod A: ADD" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsb" net1 pod-b "$(sriov_conf 1.0.0)"
expect_eq "pod B: ADD of the same VF -> try again later (11)" "$(jq -r .code <<<"$cni_out")" 11
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsb" net1 pod-b "$(sriov_conf 1.0.0)"
expect_eq "pod B: DEL succeeds" "$cni_rc" 0
expect_eq "pod B: DEL left pod A's VF in place" "$(link_json "$nsa" net1 | jq -r .ifname)" net1
expect_eq "pod B: DEL left pod A's VF settings" "$(sim_vf 0 | jq .vlan)" 100
# Pod A's sandbox disappears before its DEL: the veth stand-in dies with it (a real VF would
# return to the host by itself); DEL still restores the PF settings and drops the record.
ip netns del "$nsa"
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsa" net1 pod-a "$(sriov_conf 1.0.0)"
expect_eq "pod A: DEL with the netns gone" "$cni_rc" 0
expect_eq "pod A: PF settings restored" "$(sim_vf 0 | jq .vlan)" 0
expect_eq "pod A: record removed" "$(record "$vf0")" "{}"
make_vf

# --- the pod already has a link with the VF's host name: the move renames on the way in ---------
new_ns f nsf
ip -n "$nsf" link add "$vfdev" type veth peer name blocker
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsf" net1 ctr-f "$(sriov_conf 1.0.0)"
expect_eq "host name taken in the pod: ADD" "$cni_rc" 0
expect_eq "host name taken in the pod: VF is net1" "$(link_json "$nsf" net1 | jq -r .address)" 0a:58:00:00:00:01
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsf" net1 ctr-f "$(sriov_conf 1.0.0)"
expect_eq "host name taken in the pod: DEL" "$cni_rc" 0
expect_eq "host name taken in the pod: VF home" \
  "$(link_json "" "$vfdev" | jq -c '[.ifname, .address, .mtu]')" "[\"$vfdev\",\"$vf_mac\",1500]"
expect_eq "host name taken in the pod: the pod's own link untouched" \
  "$(link_json "$nsf" "$vfdev" | jq -r .ifname)" "$vfdev"

# --- a failed ADD is undone: the kernel refuses the (multicast) MAC after moving the VF ----------
# One RTM_NEWLINK moves, sets the MAC, MTU, name and up; do_setlink stops at the MAC, leaving the
# VF in the pod under its host name: the undo must find it there and bring it home.
new_ns u nsu
ip link set "$vfdev" up # and an admin state to restore
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsu" net1 ctr-u \
  "$(sriov_conf 1.0.0 '.mac = "01:00:5e:00:00:01"')"
expect_eq "failed ADD reports an error" "$cni_rc" 1
expect_contains "failed ADD: the kernel's reason" "$(jq -r .msg <<<"$cni_out")" "MAC 01:00:5e:00:00:01"
expect_eq "failed ADD: VF back on the host, unchanged, up again" \
  "$(link_json "" "$vfdev" | jq -c '[.ifname, .address, .mtu, (.flags | index("UP") != null)]')" \
  "[\"$vfdev\",\"$vf_mac\",1500,true]"
expect_eq "failed ADD: nothing left in the pod" \
  "$(ip -n "$nsu" -j link show | jq 'map(select(.ifname != "lo")) | length')" 0
expect_eq "failed ADD: PF settings restored" "$(sim_vf 0 | jq -c '[.vlan, .spoofchk]')" '[0,true]'
expect_eq "failed ADD: no record" "$(record "$vf0")" "{}"
ip link set "$vfdev" down

# --- a VF bound to vfio-pci is passed through without a netdev ---------------------------------
new_ns d nsd
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsd" net1 ctr-d \
  "$(sriov_conf 1.1.0 ".deviceID = \"$vf1\" | del(.mtu)")"
expect_eq "vfio: ADD" "$cni_rc" 0
expect_eq "vfio: result carries the PCI address" "$(jq -r '.interfaces[0].pciID' <<<"$cni_out")" "$vf1"
expect_eq "vfio: nothing moved into the pod" "$(ip -n "$nsd" -j link show | jq 'map(select(.ifname != "lo")) | length')" 0
expect_eq "vfio: PF settings applied" "$(sim_vf 1 | jq .vlan)" 100
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsd" net1 ctr-d "$(sriov_conf 1.1.0 ".deviceID = \"$vf1\"")"
expect_eq "vfio: DEL" "$cni_rc" 0
expect_eq "vfio: PF settings restored" "$(sim_vf 1 | jq .vlan)" 0

# --- malformed configs: code, message, nothing changed ------------------------------------------
new_ns m nsm
cases=(
  "no deviceID|del(.deviceID)|7|deviceID: required"
  "unknown PCI address|.deviceID = \"0000:99:00.0\"|7|deviceID: PCI device '0000:99:00.0' not found"
  "a PF, not a VF|.deviceID = \"$pf_pci\"|7|deviceID: $pf_pci is not an SR-IOV virtual function"
  "vlan out of range|.vlan = 4095|7|vlan: 4095 is outside 0..4094"
  "vlan as a string|.vlan = \"100\"|7|vlan: must be an integer"
  "QoS without vlan|.vlan = 0|7|vlanQoS: needs a non-zero vlan"
  "bad MAC|.mac = \"0a:58:00\"|7|mac: '0a:58:00' is not a MAC address"
  "bad runtimeConfig MAC|.runtimeConfig = {mac: \"x\"}|7|runtimeConfig.mac: 'x' is not a MAC address"
  "spoofchk not on/off|.spoofchk = \"yes\"|7|spoofchk: 'yes' is not \"on\" or \"off\""
  "link_state unknown|.link_state = \"up\"|7|link_state: 'up' is not one of auto, enable, disable"
  "min above max rate|.min_tx_rate = 2000|7|min_tx_rate: 2000 Mbps is above max_tx_rate 1000"
  "MTU too small|.mtu = 10|7|mtu: 10 is outside 68..65535"
  "ipam without a type|.ipam = {subnet: \"10.77.0.0/24\"}|7|ipam.type: required"
  "ipam type a path|.ipam = {type: \"../host-local\"}|7|ipam.type: '../host-local' is not a plugin name"
  "unsupported version|.cniVersion = \"0.1.0\"|1|cniVersion: '0.1.0' is not supported"
)
for c in "${cases[@]}"; do
  IFS='|' read -r what filter code msg <<<"$c"
  cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsm" net1 ctr-m "$(sriov_conf 1.0.0 "$filter")"
  got_code=$(jq -r .code <<<"$cni_out" 2>/dev/null || echo "?")
  got_msg=$(jq -r .msg <<<"$cni_out" 2>/dev/null || echo "$cni_out")
  if [ "$cni_rc" != 0 ] && [ "$got_code" = "$code" ] && [[ $got_msg == "$msg"* ]]; then
    pass "malformed: $what -> $code '$got_msg'"
  else
    fail "malformed: $what: exit $cni_rc, got $cni_out; want code $code '$msg...'"
  fi
  if [ "$(link_json "" "$vfdev" | jq -r .ifname)" != "$vfdev" ] || [ "$(record "$vf0")" != "{}" ] ||
    [ "$(sim_vf 0 | jq -c '[.vlan, .spoofchk]')" != '[0,true]' ]; then
    fail "malformed: $what changed the VF, its settings or left a record"
  fi
done

# --- IPAM: Debian's host-local, delegated -------------------------------------------------------
# The VF's other end (the "switch" side, on the host) holds the gateway address, so traffic from
# the pod through the VF is real.
ipam_dir=$tmp/ipam
ipam_conf() {  # VERSION [JQ]
  sriov_conf "$1" "del(.vlanQoS) | .ipam = {type: \"host-local\", dataDir: \"$ipam_dir\",
    ranges: [[{subnet: \"10.77.0.0/24\", rangeStart: \"10.77.0.10\", rangeEnd: \"10.77.0.11\",
               gateway: \"10.77.0.1\"}]], routes: [{dst: \"10.78.0.0/16\"}, {dst: \"0.0.0.0/0\"}]}
    | ${2:-.}"
}
allocated() {  # addresses host-local holds in the pool (0 when its directory does not exist)
  local f n=0
  for f in "$ipam_dir/sriov-net"/10.77.*; do
    if [ -e "$f" ] || [ -L "$f" ]; then n=$((n + 1)); fi
  done
  echo "$n"
}
ip addr add 10.77.0.1/24 dev "$swdev"
ip link set "$vfdev" up # its admin state on the host, which DEL must restore
new_ns i nsi
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsi" net1 ctr-i "$(ipam_conf 0.4.0)"
expect_eq "ipam: ADD" "$cni_rc" 0
expect_eq "ipam: result IP on the VF's interface, 0.4.0 shape" \
  "$(jq -c '.ips[0] | [.address, .gateway, .interface, .version]' <<<"$cni_out")" \
  '["10.77.0.10/24","10.77.0.1",0,"4"]'
expect_eq "ipam: result routes" "$(jq -c '[.routes[].dst]' <<<"$cni_out")" '["10.78.0.0/16","0.0.0.0/0"]'
expect_eq "ipam: address on net1 in the pod" \
  "$(ip -n "$nsi" -j addr show dev net1 | jq -c '[.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"]')" \
  '["10.77.0.10/24"]'
expect_eq "ipam: route without gw goes via the range's gateway" \
  "$(ip -n "$nsi" -j route show 10.78.0.0/16 | jq -c '.[0] | [.gateway, .dev]')" '["10.77.0.1","net1"]'
expect_eq "ipam: default route" "$(ip -n "$nsi" -j route show default | jq -c '.[0] | [.gateway, .dev]')" \
  '["10.77.0.1","net1"]'
expect_eq "ipam: host-local holds one address" "$(allocated)" 1
expect_eq "ipam: record keeps the IPAM type and the host admin state" \
  "$(record "$vf0" | jq -c '[.ipamType, .hostAdminUp]')" '["host-local",true]'
check "ipam: the pod reaches the gateway through the VF" \
  ip netns exec "$nsi" "${ping_cmd[@]}" -q -c 1 -W 2 10.77.0.1 >/dev/null
cni_exec "$STRATA_CNI_BIN" strata-sriov CHECK "/run/netns/$nsi" net1 ctr-i \
  "$(ipam_conf 0.4.0 ".prevResult = $cni_out")"
expect_eq "ipam: CHECK (host-local CHECK too)" "$cni_rc" 0
# DEL with a config that lost its ipam section: the record kept what ADD gave host-local.
expect_eq "ipam: record keeps the config host-local got" \
  "$(record "$vf0" | jq -c '.ipamConfig.ipam.ranges[0][0].subnet')" '"10.77.0.0/24"'
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsi" net1 ctr-i "$(sriov_conf 0.4.0 'del(.vlanQoS)')"
expect_eq "ipam: DEL" "$cni_rc" 0
expect_eq "ipam: DEL released the address" "$(allocated)" 0
expect_eq "ipam: VF home, no addresses, up again as before ADD" \
  "$(ip -j addr show dev "$vfdev" | jq -c '.[0] | [.ifname, ([.addr_info[] | select(.family == "inet")] | length), (.flags | index("UP") != null)]')" \
  "[\"$vfdev\",0,true]"
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsi" net1 ctr-i "$(ipam_conf 0.4.0)"
expect_eq "ipam: DEL again" "$cni_rc" 0
# A failure after IPAM's ADD (the kernel refuses the MAC after the move) releases the address.
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsi" net1 ctr-i \
  "$(ipam_conf 1.0.0 '.mac = "01:00:5e:00:00:01"')"
expect_eq "ipam: failed ADD" "$cni_rc" 1
expect_eq "ipam: failed ADD released the address (IPAM DEL)" "$(allocated)" 0
expect_eq "ipam: failed ADD left the VF home" "$(link_json "" "$vfdev" | jq -r .ifname)" "$vfdev"
expect_eq "ipam: failed ADD left no record" "$(record "$vf0")" "{}"
# An exhausted pool fails the ADD before the VF is touched.
for c in other-1 other-2; do
  cni_exec "$REF_CNI_BIN" host-local ADD "/run/netns/$nsi" eth0 "$c" "$(ipam_conf 1.0.0)"
done
expect_eq "ipam: the pool is full" "$(allocated)" 2
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsi" net1 ctr-i "$(ipam_conf 1.0.0)"
expect_eq "ipam: exhausted pool -> error" "$cni_rc" 1
expect_contains "ipam: the IPAM plugin's message" "$(jq -r .msg <<<"$cni_out")" "ipam host-local ADD: "
expect_eq "ipam: exhausted pool: VF untouched" \
  "$(link_json "" "$vfdev" | jq -c '[.ifname, .address]')" "[\"$vfdev\",\"$vf_mac\"]"
expect_eq "ipam: exhausted pool: PF settings untouched" "$(sim_vf 0 | jq -c '[.vlan, .spoofchk]')" '[0,true]'
for c in other-1 other-2; do
  cni_exec "$REF_CNI_BIN" host-local DEL "/run/netns/$nsi" eth0 "$c" "$(ipam_conf 1.0.0)"
done
ip link set "$vfdev" down
ip netns del "$nsi"

# --- per-VF lock: an ADD waits while another holder has the VF locked -----------------------------
new_ns l nsl
mkdir -p "$STRATA_CNI_STATE_DIR"
exec {lockfd}>"$STRATA_CNI_STATE_DIR/$vf0.lock"
flock "$lockfd"
printf '%s' "$(sriov_conf 1.0.0)" | env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID=ctr-l \
  CNI_NETNS="/run/netns/$nsl" CNI_IFNAME=net1 CNI_PATH="$REF_CNI_BIN" \
  STRATA_CNI_SYSFS_ROOT="$STRATA_CNI_SYSFS_ROOT" STRATA_CNI_STATE_DIR="$STRATA_CNI_STATE_DIR" \
  STRATA_CNI_SIMULATE_PF=1 "$STRATA_CNI_BIN/strata-sriov" >"$tmp/locked.out" {lockfd}>&- & # it must not inherit our lock
locked_pid=$!
waiting_on_lock() { grep -Eq -- "-> FLOCK +ADVISORY +WRITE +$locked_pid " /proc/locks; }
check "lock: the ADD blocks on the VF's lock (seen in /proc/locks)" wait_until 10 waiting_on_lock
expect_eq "lock: nothing changed while it waits" \
  "$(link_json "" "$vfdev" | jq -r .ifname) $(record "$vf0")" "$vfdev {}"
exec {lockfd}>&-
locked_rc=0
wait "$locked_pid" || locked_rc=$?
expect_eq "lock: the ADD completes once the lock is released" "$locked_rc" 0
expect_eq "lock: VF in the pod" "$(link_json "$nsl" net1 | jq -r .ifname)" net1
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsl" net1 ctr-l "$(sriov_conf 1.0.0)"
expect_eq "lock: DEL" "$cni_rc" 0

# Four pods ADD the same VF at once: one gets it, the others "try again later" (11), and the
# winner's record and VF stay consistent (no loser's undo removes them).
pids=()
for k in 1 2 3 4; do
  new_ns "r$k" ns_race
  printf '%s' "$(sriov_conf 1.0.0)" | env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID="ctr-r$k" \
    CNI_NETNS="/run/netns/$ns_race" CNI_IFNAME=net1 CNI_PATH="$REF_CNI_BIN" \
    STRATA_CNI_SYSFS_ROOT="$STRATA_CNI_SYSFS_ROOT" STRATA_CNI_STATE_DIR="$STRATA_CNI_STATE_DIR" \
    STRATA_CNI_SIMULATE_PF=1 "$STRATA_CNI_BIN/strata-sriov" >"$tmp/race.$k" &
  pids+=($!)
done
winners=0 busy=0
for k in 1 2 3 4; do
  rc=0
  wait "${pids[$((k - 1))]}" || rc=$?
  if [ "$rc" = 0 ]; then
    winners=$((winners + 1))
    winner=$k
  elif [ "$(jq -r .code "$tmp/race.$k")" = 11 ]; then
    busy=$((busy + 1))
  fi
done
expect_eq "race: one ADD wins, three are told to try again" "$winners/$busy" 1/3
expect_eq "race: the record names the winner" "$(record "$vf0" | jq -r .containerID)" "ctr-r${winner:-?}"
expect_eq "race: the VF is in the winner's pod" \
  "$(link_json "ssri-$id-r${winner:-?}" net1 | jq -r .address)" 0a:58:00:00:00:01
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/ssri-$id-r${winner:-?}" net1 "ctr-r${winner:-?}" \
  "$(sriov_conf 1.0.0)"
expect_eq "race: the winner's DEL" "$cni_rc" 0
expect_eq "race: VF home" "$(link_json "" "$vfdev" | jq -c '[.ifname, .address]')" "[\"$vfdev\",\"$vf_mac\"]"

# --- 1.1.0 STATUS and GC -------------------------------------------------------------------------
base='{"cniVersion":"1.1.0","name":"sriov-net","type":"strata-sriov"}'
cni_exec "$STRATA_CNI_BIN" strata-sriov STATUS "" "" "" "$base"
expect_eq "STATUS: ready" "$cni_rc" 0
new_ns g nsg
cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsg" net1 ctr-g "$(sriov_conf 1.1.0)"
expect_eq "GC setup: ADD" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-sriov GC "" "" "" \
  "$(jq -c '. + {"cni.dev/valid-attachments": [{containerID: "ctr-g", ifname: "net1"}]}' <<<"$base")"
expect_eq "GC keeps a valid attachment" "$(record "$vf0" | jq -r .containerID)" ctr-g
cni_exec "$STRATA_CNI_BIN" strata-sriov GC "" "" "" "$(jq -c '. + {"cni.dev/valid-attachments": []}' <<<"$base")"
expect_eq "GC" "$cni_rc" 0
expect_eq "GC released the stale VF to the host" "$(link_json "" "$vfdev" | jq -c '[.ifname, .address]')" \
  "[\"$vfdev\",\"$vf_mac\"]"
expect_eq "GC removed the record" "$(record "$vf0")" "{}"

# --- no simulation switch: a sysfs root like /host/sys is real, the PF goes through netlink ------
# A DaemonSet mounting the host's sysfs at /host/sys must not silently simulate. Here the "PF"
# named in the tree is no interface at all: ADD fails naming the PF and changes nothing.
rm -rf "$STRATA_CNI_SYSFS_ROOT/strata-sim-vf"
new_ns n nsn
real_conf=$(sriov_conf 1.0.0)
STRATA_CNI_SIMULATE_PF='' cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsn" net1 ctr-n \
  "$real_conf"
expect_eq "no switch: ADD fails" "$cni_rc" 1
expect_contains "no switch: the error names the VF and the PF" "$(jq -r .msg <<<"$cni_out")" \
  "VF $vf0 (VF 0 of PF $pf): PF settings through netlink"
expect_eq "no switch: nothing simulated" "$(test -e "$STRATA_CNI_SYSFS_ROOT/strata-sim-vf" && echo yes || echo no)" no
expect_eq "no switch: VF untouched, no record" \
  "$(link_json "" "$vfdev" | jq -r .ifname) $(record "$vf0")" "$vfdev {}"
STRATA_CNI_SIMULATE_PF='' cni_exec "$STRATA_CNI_BIN" strata-sriov ADD "/run/netns/$nsn" net1 ctr-n \
  "$(jq -c '.simulatePF = true' <<<"$real_conf")"
expect_eq "no env switch, simulatePF in the config: ADD" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-sriov DEL "/run/netns/$nsn" net1 ctr-n \
  "$(jq -c '.simulatePF = true' <<<"$real_conf")"
expect_eq "simulatePF in the config: DEL" "$cni_rc" 0

finish
