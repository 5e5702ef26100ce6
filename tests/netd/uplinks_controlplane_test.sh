#!/usr/bin/env bash
# strata-netd's NodeNetworkPolicy part against the real kube-apiserver (its status must pass the
# CRD's schema) and the host's real kernel. The host has no bonding driver (the bond itself is
# tested in the VM tier: tests/netd/uplink_failover_vm_test.sh), so here:
#   - a policy the schema accepts but the bonding rules refuse (xmitHashPolicy in active-backup)
#     gets Ready=False/InvalidSpec naming spec.bond.xmitHashPolicy in this node's status entry;
#   - a second policy selecting the node: both get Ready=False/Conflict naming the other;
#   - the invalid one deleted: the other is applied to two real veth uplinks: Ready=True with the
#     bond and bridge present where the kernel has bonding, else Ready=False/ApplyFailed with the
#     kernel's answer and nothing half-built (no bond, no bridge, uplinks not enslaved);
#   - the node's label removed: its status entry goes.
# Needs root (veths in the host namespace, named after this PID, removed on exit).
# Usage: uplinks_controlplane_test.sh NETD KUBECONFIG
set -uo pipefail
NETD=$1
export KUBECONFIG=$2
. "$(dirname "$0")/../lib/assert.sh"

# Not root: 77, the `root` label's convention (CONTRIBUTING.md) for a developer's non-root ctest run;
# CI and scripts/test.sh run as root, so there it always runs and never counts as a pass by skipping.
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (veths)"
  exit 77
fi
for tool in kubectl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing"; exit 1; }
done

id=$$
node=nnp-test-node-$id
label=strata.io/nnp-test
up1=nnpa$id up2=nnpb$id
bad=nnp-test-bad-$id good=nnp-test-good-$id
work=$(mktemp -d /tmp/strata-netd-nnp.XXXXXX)
netd_pid=''
kc() { kubectl --request-timeout=30s "$@"; }
cleanup() {
  [ -n "$netd_pid" ] && kill "$netd_pid" 2>/dev/null
  wait 2>/dev/null
  kc delete nodenetworkpolicy "$bad" "$good" --ignore-not-found >/dev/null 2>&1
  kc delete node "$node" --ignore-not-found >/dev/null 2>&1
  ip link del "$up1" 2>/dev/null
  ip link del "$up2" 2>/dev/null
  ip link del "b$id" 2>/dev/null
  ip link del "br$id" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Does this kernel have bonding? (decides what the valid policy must end as)
has_bonding=no
probe=nnp-probe-$id
if ip netns add "$probe" 2>/dev/null; then
  ip -n "$probe" link add b0 type bond 2>/dev/null && has_bonding=yes
  ip netns del "$probe"
fi
echo "kernel bonding: $has_bonding"

ip link add "$up1" type veth peer name "${up1}p" || { echo "FAIL: cannot create veths"; exit 1; }
ip link add "$up2" type veth peer name "${up2}p"
kc create -f - >/dev/null <<YAML || { echo "FAIL: cannot create Node $node"; exit 1; }
apiVersion: v1
kind: Node
metadata:
  name: $node
  labels: {$label: "$id"}
YAML

policy() { # NAME XMIT_HASH_POLICY_LINE
  cat <<YAML
apiVersion: strata.io/v1alpha1
kind: NodeNetworkPolicy
metadata:
  name: $1
spec:
  nodeSelector: {matchLabels: {$label: "$id"}}
  bond:
    name: b$id
    mode: active-backup
    uplinks: [{name: $up1}, {name: $up2}]
    primary: $up1
    $2
  bridge: {name: br$id}
YAML
}
policy "$bad" "xmitHashPolicy: layer3+4" | kc create -f - >/dev/null || fail "create $bad"

"$NETD" --node-name "$node" --kubeconfig "$KUBECONFIG" --cni-plugins "" \
  --cni-bin-dir "$work/bin" --cni-conf-dir "$work/conf" --state-dir "$work/state" \
  --metrics-addr 127.0.0.1:0 --health-addr 0 --ready-file "$work/ready" 2>"$work/netd.log" &
netd_pid=$!

# entry NAME: this node's entry of the policy's status.nodes (or null).
entry() { kc get nodenetworkpolicy "$1" -o json | jq -c --arg n "$node" '[.status.nodes[]? | select(.nodeName == $n)] | first'; }
ready_is() { # NAME REASON
  entry "$1" | jq -e --arg r "$2" '.conditions[] | select(.type == "Ready") | .reason == $r' >/dev/null
}
check "invalid policy: Ready=False/InvalidSpec on $node" wait_until 30 ready_is "$bad" InvalidSpec
expect_contains "the condition names the field" "$(entry "$bad")" \
  '"message":"spec.bond.xmitHashPolicy: applies to balance-xor, 802.3ad and balance-tlb, not active-backup"'
expect_eq "observedGeneration" "$(entry "$bad" | jq .observedGeneration)" \
  "$(kc get nodenetworkpolicy "$bad" -o jsonpath='{.metadata.generation}')"

policy "$good" "" | kc create -f - >/dev/null || fail "create $good"
check "two policies select the node: $good gets Conflict" wait_until 30 ready_is "$good" Conflict
check "... and so does $bad" wait_until 30 ready_is "$bad" Conflict
expect_contains "the Conflict names the other policy" "$(entry "$good")" "$bad"
check "nothing was built during the conflict" bash -c "! ip link show b$id >/dev/null 2>&1"

kc delete nodenetworkpolicy "$bad" >/dev/null
if [ "$has_bonding" = yes ]; then
  check "the remaining policy is applied: Ready=True" wait_until 30 ready_is "$good" Applied
  check "bond b$id exists" ip link show "b$id"
  check "bridge br$id exists" ip link show "br$id"
else
  check "the remaining policy: Ready=False/ApplyFailed (no bonding in this kernel)" \
    wait_until 30 ready_is "$good" ApplyFailed
  expect_contains "the kernel's answer is in the condition" "$(entry "$good")" "create bond b$id"
  check "no bond left behind" bash -c "! ip link show b$id >/dev/null 2>&1"
  check "no bridge created" bash -c "! ip link show br$id >/dev/null 2>&1"
  expect_eq "$up1 not enslaved" "$(ip -j link show "$up1" | jq -r '.[0].master // ""')" ""
fi

kc label node "$node" "$label-" >/dev/null
gone() { [ "$(entry "$good")" = null ]; }
check "node label removed: its status entry goes" wait_until 30 gone

stop_within 10 "$netd_pid"
rc=$?
netd_pid=''
expect_eq "SIGTERM stops the agent cleanly" "$rc" 0
finish || {
  cat "$work/netd.log"
  exit 1
}
