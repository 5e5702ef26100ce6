#!/usr/bin/env bash
# VirtualNetworkConfig (issue #12, seed 13.9) end to end: a real kube-apiserver (a PRIVATE one:
# this test stops it), two strata-netd agents (nodes A and B, each with its own store directory)
# and the real strata-vnc CNI binary in real network namespaces:
#   1. a VirtualNetworkConfig for VirtualMachine db-vm is replicated by both agents to their
#      node-local stores;
#   2. the VM's virt-launcher pod (a Pod object on node A with KubeVirt's labels) is "created
#      under A": a netns + veth, strata-vnc ADD with A's store: MAC, MTU, addresses, routes, DNS
#      and the VLAN from the store, in the result and on the interface; A's agent resolved the
#      pod (pod index) and reports node A in status.nodes; then DEL, and the entry goes;
#   3. the apiserver is STOPPED (its process killed; kubectl fails);
#   4. the VM's next pod is "created under B": strata-vnc ADD with B's store gives the identical
#      MAC, MTU, addresses, routes, DNS and VLAN (resolved from the virt-launcher pod name: B's
#      agent cannot see the new Pod object with the apiserver down); DEL.
# VLAN: the host kernel has no 8021q, so the test uses vlanMode "external" (the tag is applied
# outside the pod, as the PF does for an SR-IOV VF): the VLAN id travels through the store and the
# CNI result (strata.io/vnc.vlan) and is compared; the 802.1Q device mode is tested in the VM tier
# (vnc_vlan_vm_test.sh) and on the fake kernel (strata_cni_test).
# Usage (under tests/operator/private_testenv.sh, which exports STRATA_KUBECONFIG and
# STRATA_PRIVATE_TESTENV): vnc_move_test.sh STRATA_NETD STRATA_CNI_BIN_DIR     (root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
netd=$1
cni_bin=$2
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (network namespaces)"; exit 1; }
for tool in ip jq kubectl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing"; exit 1; }
done
: "${STRATA_KUBECONFIG:?run under tests/operator/private_testenv.sh}"
: "${STRATA_PRIVATE_TESTENV:?run under tests/operator/private_testenv.sh}"
export KUBECONFIG=$STRATA_KUBECONFIG

id=$$
ns=vnc-move-$id
work=$(mktemp -d)
netnses=()
pids=()
cleanup() {
  local n p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${netnses[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  ip link del "vncA$id" 2>/dev/null || true
  ip link del "vncB$id" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_agent() {  # NODE DIR: starts strata-netd for NODE with its state under DIR
  local node=$1 dir=$2
  mkdir -p "$dir/bin" "$dir/conf"
  "$netd" --node-name "$node" --kubeconfig "$KUBECONFIG" --state-dir "$dir" \
    --cni-bin-dir "$dir/bin" --cni-conf-dir "$dir/conf" --cni-plugins "" \
    --metrics-addr 127.0.0.1:0 --health-addr 0 --ready-file "$dir/ready.json" \
    --vnc-sync-interval 0.2 >"$dir/netd.log" 2>&1 &
  pids+=($!)
}

# cni NODE_DIR COMMAND NETNS CONTAINER_ID POD CONF: runs strata-vnc as the runtime would.
cni() {
  local dir=$1 cmd=$2 netns=$3 cid=$4 pod=$5 conf=$6
  set +e
  cni_out=$(printf '%s' "$conf" | env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" \
    CNI_NETNS="$netns" CNI_IFNAME=net1 CNI_PATH="$cni_bin" STRATA_CNI_VNC_STORE_DIR="$dir/vnc" \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$ns;K8S_POD_NAME=$pod;K8S_POD_UID=${pod_uid:-}" \
    "$cni_bin/strata-vnc")
  cni_rc=$?
  set -e
}

vnc_conf() {  # NETNS_PATH: the plugin's config with the previous plugin's result (the veth)
  jq -cn --arg sb "$1" '{cniVersion:"1.1.0", name:"vnc-net", type:"strata-vnc",
    vlanMode:"external", podIndexWaitMilliseconds:500,
    prevResult:{cniVersion:"1.1.0", interfaces:[{name:"net1", sandbox:$sb}]}}'
}

new_pod_netns() {  # SUFFIX: a netns with net1, one end of a veth whose host end is up
  local n=vnc-$id-$1
  ip netns add "$n"
  netnses+=("$n")
  ip link add "vnc$1$id" type veth peer name net1 netns "$n"
  ip link set "vnc$1$id" up
  ip -n "$n" link set lo up
  echo "$n"
}

# What the pod sees on net1: MAC, MTU, addresses, routes via net1 (one line, sorted).
pod_view() {
  local n=$1
  printf '%s %s | %s | %s\n' \
    "$(ip -n "$n" -j link show net1 | jq -r '.[0].address')" \
    "$(ip -n "$n" -j link show net1 | jq -r '.[0].mtu')" \
    "$(ip -n "$n" -j addr show dev net1 | jq -r '[.[0].addr_info[] | select(.scope == "global")
        | "\(.local)/\(.prefixlen)"] | sort | join(",")')" \
    "$(ip -n "$n" -j route show dev net1 | jq -r '[.[] | select(.gateway) | "\(.dst) via \(.gateway)"]
        | sort | join(",")')"
}

# The parts of a result that must be identical on every node (the resourceVersion of the record
# may differ: a status write bumps it without changing the spec; the generation may not).
result_view() {
  jq -cS '{mac: .interfaces[0].mac, mtu: .interfaces[0].mtu, ips: [.ips[].address],
    routes: .routes, dns: .dns, vlan: ."strata.io/vnc".vlan, source: ."strata.io/vnc".source,
    generation: ."strata.io/vnc".generation}' <<<"$1"
}

has_record() { [ -f "$1/vnc/configs/virtualmachine_${ns}_db-vm.json" ]; }
has_pod_entry() { [ -f "$1/vnc/pods/${ns}_$2.json" ]; }
status_json() { kubectl get -n "$ns" virtualnetworkconfig db-vm-net -o json | jq -c '.status // {}'; }
status_has_node() { status_json | jq -e --arg n "$1" '[.nodes // [] | .[] | select(.node == $n)] | length == 1' >/dev/null; }
status_lacks_node() { status_json | jq -e --arg n "$1" '[.nodes // [] | .[] | select(.node == $n)] | length == 0' >/dev/null; }
ready_true() { status_json | jq -e '.conditions[] | select(.type == "Ready") | .status == "True"' >/dev/null; }

kubectl create namespace "$ns" >/dev/null
# No controller-manager here: the namespace's default ServiceAccount is made by hand (the pod does
# not mount its token).
kubectl create -n "$ns" serviceaccount default >/dev/null
start_agent node-a "$work/a"
start_agent node-b "$work/b"
check "agent A ready" wait_until 30 test -s "$work/a/ready.json"
check "agent B ready" wait_until 30 test -s "$work/b/ready.json"

# 1. Replication.
kubectl apply -n "$ns" -f - >/dev/null <<'EOF'
apiVersion: strata.io/v1alpha1
kind: VirtualNetworkConfig
metadata:
  name: db-vm-net
spec:
  workload: {kind: VirtualMachine, name: db-vm}
  interfaces:
    - name: net1
      type: sriov
      mac: "02:5e:10:00:00:15"
      mtu: 1400
      vlan: 120
      addresses: [10.120.0.15/24, "fd00:120::15/64"]
  routes:
    - {destination: 10.0.0.0/8, gateway: 10.120.0.1}
    - {destination: 192.168.50.0/24, gateway: 10.120.0.1}
  dns:
    nameservers: [10.120.0.53]
    searches: [db.svc.cluster.local]
EOF
check "replicated to A's store" wait_until 30 has_record "$work/a"
check "replicated to B's store" wait_until 30 has_record "$work/b"
check "Ready=True Replicated" wait_until 30 ready_true
uid=$(kubectl get -n "$ns" virtualnetworkconfig db-vm-net -o jsonpath='{.metadata.uid}')
for n in a b; do
  expect_eq "$n's record comes from the object (uid, generation 1)" \
    "$(jq -r '"\(.source.uid) \(.source.generation)"' "$work/$n/vnc/configs/virtualmachine_${ns}_db-vm.json")" \
    "$uid 1"
done

# 2. The virt-launcher pod on node A (no kubelet here: the Pod object only carries what KubeVirt
# puts on it; the netns + veth stand in for the runtime's sandbox).
pod_a=virt-launcher-db-vm-ab12c
kubectl apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod_a
  labels: {kubevirt.io: virt-launcher, vm.kubevirt.io/name: db-vm, kubevirt.io/domain: db-vm}
spec:
  nodeName: node-a
  automountServiceAccountToken: false
  containers: [{name: compute, image: registry.invalid/virt-launcher:none}]
EOF
pod_uid=$(kubectl get -n "$ns" pod "$pod_a" -o jsonpath='{.metadata.uid}')
check "A's agent indexed its pod" wait_until 30 has_pod_entry "$work/a" "$pod_a"
check "B's agent did not (not its node)" test ! -e "$work/b/vnc/pods/${ns}_$pod_a.json"

netns_a=$(new_pod_netns A)
cni "$work/a" ADD "/run/netns/$netns_a" ctr-a "$pod_a" "$(vnc_conf "/run/netns/$netns_a")"
expect_eq "ADD under A" "$cni_rc" 0
result_a=$cni_out
expect_eq "A: resolved by the agent's pod index" "$(jq -r '."strata.io/vnc".resolvedBy' <<<"$result_a")" podIndex
expect_eq "A: result MAC" "$(jq -r '.interfaces[0].mac' <<<"$result_a")" 02:5e:10:00:00:15
expect_eq "A: result MTU" "$(jq -r '.interfaces[0].mtu' <<<"$result_a")" 1400
expect_eq "A: result VLAN" "$(jq -r '."strata.io/vnc".vlan' <<<"$result_a")" 120
expect_eq "A: result DNS" "$(jq -c '.dns' <<<"$result_a")" \
  '{"nameservers":["10.120.0.53"],"search":["db.svc.cluster.local"]}'
view_a=$(pod_view "$netns_a")
expect_eq "A: the pod's net1" "$view_a" \
  "02:5e:10:00:00:15 1400 | 10.120.0.15/24,fd00:120::15/64 | 10.0.0.0/8 via 10.120.0.1,192.168.50.0/24 via 10.120.0.1"
cni "$work/a" CHECK "/run/netns/$netns_a" ctr-a "$pod_a" \
  "$(vnc_conf "/run/netns/$netns_a" | jq -c --argjson r "$result_a" '.prevResult = $r')"
expect_eq "CHECK under A" "$cni_rc" 0
check "status.nodes names node A" wait_until 30 status_has_node node-a
expect_eq "status: phase Applied on node-a with the MAC" \
  "$(status_json | jq -r '"\(.phase) \(.node) \(.nodes[0].pod) \(.interfaces[0].mac)"')" \
  "Applied node-a $pod_a 02:5e:10:00:00:15"

# The pod goes away from A.
cni "$work/a" DEL "/run/netns/$netns_a" ctr-a "$pod_a" "$(vnc_conf "/run/netns/$netns_a")"
expect_eq "DEL under A" "$cni_rc" 0
ip netns del "$netns_a"
kubectl delete -n "$ns" pod "$pod_a" --wait=false >/dev/null
check "status.nodes no longer names node A" wait_until 30 status_lacks_node node-a
expect_eq "status: phase Pending" "$(status_json | jq -r .phase)" Pending

# 3. The apiserver stops (this test's private one).
apiserver_pid=$(cat "$STRATA_PRIVATE_TESTENV/kube-apiserver.pid")
gone() { ! kill -0 "$apiserver_pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$apiserver_pid/stat" 2>/dev/null)" = Z ]; }
kill -TERM "$apiserver_pid"
# As restart_apiserver.sh: a graceful stop may wait on open watches (the agents'); then SIGKILL.
wait_until 15 gone || kill -KILL "$apiserver_pid" 2>/dev/null || true
check "apiserver stopped" wait_until 30 gone
check "the API does not answer" bash -c '! kubectl --request-timeout=2s get --raw /healthz >/dev/null 2>&1'

# 4. The VM's new pod on node B, with the apiserver down.
pod_b=virt-launcher-db-vm-zz9q7
unset pod_uid
netns_b=$(new_pod_netns B)
cni "$work/b" ADD "/run/netns/$netns_b" ctr-b "$pod_b" "$(vnc_conf "/run/netns/$netns_b")"
expect_eq "ADD under B with the apiserver down" "$cni_rc" 0
result_b=$cni_out
expect_eq "B: resolved from the virt-launcher pod name" \
  "$(jq -r '."strata.io/vnc".resolvedBy' <<<"$result_b")" launcherPodName
expect_eq "B's result equals A's (MAC, MTU, addresses, routes, DNS, VLAN, source version)" \
  "$(result_view "$result_b")" "$(result_view "$result_a")"
expect_eq "B: the pod's net1 equals A's" "$(pod_view "$netns_b")" "$view_a"
check "B: applied record written" test -f "$work/b/vnc/applied/ctr-b_net1.json"
cni "$work/b" DEL "/run/netns/$netns_b" ctr-b "$pod_b" "$(vnc_conf "/run/netns/$netns_b")"
expect_eq "DEL under B" "$cni_rc" 0
check "B: applied record removed" test ! -e "$work/b/vnc/applied/ctr-b_net1.json"
for p in "${pids[@]}"; do check "agent $p still running through the outage" kill -0 "$p"; done

finish
