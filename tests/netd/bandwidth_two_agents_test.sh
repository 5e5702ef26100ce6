#!/usr/bin/env bash
# BandwidthPolicy end to end on real parts: the real kube-apiserver, TWO strata-netd processes
# (nodes A and B, each with its own attachments dir), pods made by this test the way a kubelet
# would: a Pod object with spec.nodeName, a real network namespace, CNI ADD through Debian's ptp +
# host-local chained with strata-bandwidth (which records the attachment) with the K8S_POD_*
# CNI_ARGS. Asserts:
#   - a policy (and a change of it) reaches each pod's qdisc, applied by that node's agent only
#     (latency printed; bench/netd measures it);
#   - a record of a pod whose Pod object is on the other node is left alone;
#   - the measured throughput follows the applied rate (within 10%);
#   - elastic: traffic above the high-water mark raises the rate, idle lowers it back;
#   - the agent killed and restarted: tc sampled throughout shows the rate unchanged;
#   - an invalid policy gets Ready=False InvalidSpec naming the field;
#   - two policies on one pod: the older wins, the newer gets Conflicting=True;
#   - usage metrics for the pod on the agent's /metrics.
# Usage: bandwidth_two_agents_test.sh NETD CNI_BUILD_DIR TCP_METER KUBECONFIG
set -uo pipefail
NETD=$1 STRATA_CNI_BIN=$2 meter=$3
export KUBECONFIG=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../cni/lib.sh"
kubectl() { command kubectl --request-timeout=15s "$@"; }
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (netns, veths, tc)"; exit 1; }
for p in ptp host-local; do
  [ -x "$REF_CNI_BIN/$p" ] || { echo "FAIL: $REF_CNI_BIN/$p missing (containernetworking-plugins)"; exit 1; }
done

id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=netd-bw-$id
nodeA=netd-a-$id nodeB=netd-b-$id
work=$(mktemp -d /tmp/strata-netd-bw.XXXXXX)
declare -A agent_pid=()
netnss=()
cleanup() {
  local n
  for n in "${agent_pid[@]}"; do kill "$n" 2>/dev/null; done
  for n in "${netnss[@]}"; do ip netns del "$n" 2>/dev/null; done
  jobs -p | xargs -r kill 2>/dev/null
  wait 2>/dev/null
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null
# No controller-manager on the test control plane: the ServiceAccount admission needs "default".
kubectl -n "$ns" create serviceaccount default >/dev/null

start_agent() {  # NODE LETTER
  local node=$1 d=$work/$2
  mkdir -p "$d/att" "$d/state"
  rm -f "$d/ready"
  "$NETD" --node-name "$node" --kubeconfig "$KUBECONFIG" --cni-plugins "" \
    --cni-bin-dir "$d/bin" --cni-conf-dir "$d/conf" --state-dir "$d/state" \
    --attachments-dir "$d/att" --status-interval 0.5 --metrics-addr 127.0.0.1:0 \
    --health-addr 0 --ready-file "$d/ready" 2>>"$d/netd.log" &
  agent_pid[$2]=$!
  wait_until 20 test -s "$d/ready"
}
check "agent A starts" start_agent "$nodeA" A
check "agent B starts" start_agent "$nodeB" B

# make_pod NAME NODE LETTER SUBNET: Pod object on NODE, netns, CNI ADD (ptp + strata-bandwidth
# recording into LETTER's attachments dir). Sets pod_ip_NAME and gw_NAME.
make_pod() {
  local name=$1 node=$2 letter=$3 subnet=$4 netns=snetd-$id-$1 uid prev conf cid=ctr-$1-$id
  kubectl create -f - >/dev/null <<YAML || return 1
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: $ns, labels: {app: web}}
spec:
  nodeName: $node
  automountServiceAccountToken: false
  containers: [{name: c, image: registry.k8s.io/pause:3.9}]
YAML
  uid=$(kubectl -n "$ns" get pod "$name" -o jsonpath='{.metadata.uid}')
  ip netns add "$netns" && netnss+=("$netns")
  ip -n "$netns" link set lo up
  conf=$(jq -cn --arg d "$work/ipam-$letter" --arg s "$subnet" '{cniVersion:"1.0.0",
    name:"netd-test", type:"ptp", ipam:{type:"host-local", subnet:$s, dataDir:$d}}')
  CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$ns;K8S_POD_NAME=$name;K8S_POD_INFRA_CONTAINER_ID=$cid;K8S_POD_UID=$uid" \
    cni_exec_args "$REF_CNI_BIN" ptp ADD "/run/netns/$netns" eth0 "$cid" "$conf"
  [ "$cni_rc" = 0 ] || { echo "ptp ADD: $cni_out"; return 1; }
  prev=$cni_out
  conf=$(jq -cn --argjson prev "$prev" --arg att "$work/$letter/att" '{cniVersion:"1.0.0",
    name:"netd-test", type:"strata-bandwidth", attachmentsDir:$att, prevResult:$prev}')
  CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$ns;K8S_POD_NAME=$name;K8S_POD_INFRA_CONTAINER_ID=$cid;K8S_POD_UID=$uid" \
    cni_exec_args "$STRATA_CNI_BIN" strata-bandwidth ADD "/run/netns/$netns" eth0 "$cid" "$conf"
  [ "$cni_rc" = 0 ] || { echo "strata-bandwidth ADD: $cni_out"; return 1; }
  local ip4 gw
  ip4=$(jq -r '.ips[0].address' <<<"$prev")
  gw=$(jq -r '.ips[0].gateway' <<<"$prev")
  printf -v "pod_ip_$name" %s "${ip4%/*}"
  printf -v "gw_$name" %s "$gw"
}
# cni_exec with CNI_ARGS passed through (lib.sh's cni_exec runs under env -i).
cni_exec_args() {
  local dir=$1 plugin=$2 cmd=$3 netns=$4 ifname=$5 cid=$6 conf=$7
  cni_out=$(printf '%s' "$conf" | env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" \
    CNI_NETNS="$netns" CNI_IFNAME="$ifname" CNI_PATH="$REF_CNI_BIN:$STRATA_CNI_BIN" \
    CNI_ARGS="$CNI_ARGS" "$dir/$plugin")
  cni_rc=$?
}

check "pod a1 on node A" make_pod a1 "$nodeA" A 10.213.1.0/24
check "pod b1 on node B" make_pod b1 "$nodeB" B 10.213.2.0/24
# A record in A's dir whose Pod object says node B: not A's to touch (and B has no record of it).
check "pod x1: Pod on node B, record on A" make_pod x1 "$nodeB" A 10.213.3.0/24
expect_eq "attachment recorded for a1" \
  "$(jq -r .podName "$work/A/att/ctr-a1-${id}_eth0.json")" a1

egress() { root_qdisc "snetd-$id-$1" eth0 | awk '{print $3}'; }  # "" when unshaped
egress_is() { [ "$(egress "$1")" = "$2" ]; }
ms() { date +%s%3N; }

policy() {  # NAME EGRESS_JSON [ELASTIC_JSON]
  local spec
  spec=$(jq -cn --argjson e "$2" --argjson el "${3:-null}" \
    '{podSelector:{matchLabels:{app:"web"}}, egress:$e} + (if $el then {elastic:$el} else {} end)')
  jq -cn --arg n "$1" --arg ns "$ns" --argjson spec "$spec" \
    '{apiVersion:"strata.io/v1alpha1", kind:"BandwidthPolicy", metadata:{name:$n, namespace:$ns},
      spec:$spec}' | kubectl apply -f - >/dev/null
}

t0=$(ms)
policy bw '{"rateBitsPerSecond":4000000}'
check "policy reaches a1's qdisc (agent A)" wait_until 10 egress_is a1 4000000
echo "latency policy create -> qdisc: $(($(ms) - t0)) ms"
check "policy reaches b1's qdisc (agent B)" wait_until 10 egress_is b1 4000000
t0=$(ms)
policy bw '{"rateBitsPerSecond":6000000}'
check "policy change reaches a1 live" wait_until 10 egress_is a1 6000000
echo "latency policy change -> qdisc: $(($(ms) - t0)) ms"
check "policy change reaches b1 live" wait_until 10 egress_is b1 6000000
expect_eq "x1 (Pod on B, record on A) untouched" "$(root_qdisc "snetd-$id-x1" eth0)" none

status_rate() {
  kubectl -n "$ns" get bandwidthpolicy bw -o json |
    jq -r --arg n "$1" --arg p "$2" '.status.nodes[$n].pods[$p].egressRateBitsPerSecond // empty'
}
status_is() { [ "$(status_rate "$1" "$2")" = "$3" ]; }
check "status: a1 on node A at 6 Mbit/s" wait_until 10 status_is "$nodeA" a1 6000000
check "status: b1 on node B at 6 Mbit/s" wait_until 10 status_is "$nodeB" b1 6000000

# --- throughput follows the applied rate -------------------------------------------------------
port=$(free_port)
measure() {  # POD SECONDS -> bits/s measured at the host, sent from the pod
  local pod=$1 secs=$2 out=$work/meter.$RANDOM gwv="gw_$1"
  "$meter" recv "$port" "$secs" >"$out" &
  local rpid=$!
  wait_until 10 grep -q listening "$out"
  timeout $((secs + 20)) ip netns exec "snetd-$id-$pod" "$meter" send "${!gwv}" "$port" $((secs + 2)) || true
  wait_until 15 grep -q bitsPerSecond "$out" || kill "$rpid" 2>/dev/null
  wait "$rpid" 2>/dev/null
  jq -r '.bitsPerSecond | floor' < <(tail -n 1 "$out")
}
got=$(measure a1 4)
if [ "${got:-0}" -ge 5400000 ] && [ "${got:-0}" -le 6600000 ]; then
  pass "throughput follows the rate: $got bit/s at 6000000"
else
  fail "throughput $got bit/s not within 10% of 6000000"
fi

# --- elastic -----------------------------------------------------------------------------------
policy bw '{"rateBitsPerSecond":2000000}' '{"minRateBitsPerSecond":2000000,
  "maxRateBitsPerSecond":8000000,"scaleUpUtilizationPercent":70,"scaleDownUtilizationPercent":20,
  "stepPercent":100,"sustainedFor":"1s","cooldown":"1s","sampleInterval":"500ms"}'
# The scaler starts from the rate in force (6 Mbit/s, in range): an idle pod steps down to min.
check "elastic: the idle pod settles at the minimum" wait_until 15 egress_is a1 2000000
"$meter" recv "$port" 12 >"$work/elastic.meter" &
rpid=$!
wait_until 10 grep -q listening "$work/elastic.meter"
gwv=gw_a1
ip netns exec "snetd-$id-a1" "$meter" send "${!gwv}" "$port" 14 >/dev/null 2>&1 &
spid=$!
rate_above() { [ "$(egress a1)" -gt "$1" ] 2>/dev/null; }
check "traffic above high water raises the rate" wait_until 15 rate_above 2000000
echo "elastic rate under load: $(egress a1) bit/s"
wait "$spid" 2>/dev/null; wait "$rpid" 2>/dev/null
check "idle lowers it back to the minimum" wait_until 30 egress_is a1 2000000
reason=$(kubectl -n "$ns" get bandwidthpolicy bw -o json | jq -r --arg n "$nodeA" '.status.nodes[$n].pods.a1.reason')
expect_contains "status reason names the elastic step" "$reason" Elastic

# --- agent restart: no flap ----------------------------------------------------------------------
policy bw '{"rateBitsPerSecond":5000000}'
check "fixed rate before restart" wait_until 10 egress_is a1 5000000
: >"$work/tc-samples"
( trap - EXIT; while :; do egress a1 >>"$work/tc-samples"; done ) &
sampler=$!
kill -KILL "${agent_pid[A]}"; wait "${agent_pid[A]}" 2>/dev/null
check "agent A restarts" start_agent "$nodeA" A
# Until the restarted agent has reconciled the policy (a success counted), and tc was read often.
reconciled() {
  curl -sf "http://$(jq -r .metrics "$work/A/ready")/metrics" |
    grep -q '^strata_netd_reconcile_total{.*bandwidthpolicy.*success'
}
check "restarted agent reconciles" wait_until 20 reconciled
enough_samples() { [ "$(wc -l <"$work/tc-samples")" -ge 20 ]; }
check "tc sampled during the restart" wait_until 20 enough_samples
kill "$sampler"; wait "$sampler" 2>/dev/null
expect_eq "tc during the restart: only 5000000 ($(wc -l <"$work/tc-samples") samples)" \
  "$(sort -u "$work/tc-samples" | grep -v '^$' | tr '\n' ' ')" "5000000 "
expect_eq "rate after the restart" "$(egress a1)" 5000000

# --- invalid policy, conflict ------------------------------------------------------------------
policy bad '{"rateBitsPerSecond":2000000}' '{"minRateBitsPerSecond":9000000,"maxRateBitsPerSecond":1000000}'
invalid() {
  kubectl -n "$ns" get bandwidthpolicy bad -o json |
    jq -e '.status.conditions[]? | select(.type=="Ready" and .status=="False" and .reason=="InvalidSpec")
           | .message | test("spec.elastic.minRateBitsPerSecond")' >/dev/null
}
check "invalid policy: Ready=False InvalidSpec naming the field" wait_until 15 invalid
policy newer '{"rateBitsPerSecond":9000000}'
conflicting() {
  kubectl -n "$ns" get bandwidthpolicy newer -o json |
    jq -e '.status.conditions[]? | select(.type=="Conflicting" and .status=="True")' >/dev/null
}
check "newer policy on the same pods: Conflicting=True" wait_until 15 conflicting
expect_eq "the older policy keeps the pod" "$(egress a1)" 5000000
check "Overridden event" wait_until 10 bash -c \
  "kubectl -n $ns get events -o json | jq -e '.items[] | select(.reason==\"Overridden\")' >/dev/null"

# --- usage metrics -------------------------------------------------------------------------------
metrics=$(curl -sf "http://$(jq -r .metrics "$work/A/ready")/metrics")
tx=$(awk -v p='pod="a1"' '/^strata_netd_pod_transmit_bytes_total/ && index($0, p) {print int($2)}' <<<"$metrics")
check "usage metric: a1's transmitted bytes ($tx)" test "${tx:-0}" -gt 1000000 ||
  grep strata_netd_pod <<<"$metrics" | head

# --- DEL removes the record ----------------------------------------------------------------------
CNI_ARGS="" cni_exec_args "$STRATA_CNI_BIN" strata-bandwidth DEL "/run/netns/snetd-$id-a1" eth0 \
  "ctr-a1-$id" "$(jq -cn --arg att "$work/A/att" '{cniVersion:"1.0.0",name:"netd-test",type:"strata-bandwidth",attachmentsDir:$att}')"
expect_eq "DEL" "$cni_rc" 0
check "DEL removed the record" test ! -e "$work/A/att/ctr-a1-${id}_eth0.json"
finish
