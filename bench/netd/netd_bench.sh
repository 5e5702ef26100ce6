#!/usr/bin/env bash
# strata-netd benchmarks against the real apiserver and kernel (root):
#   1. BandwidthPolicy change -> qdisc applied: N changes of spec.egress.rateBitsPerSecond of a
#      policy selecting every pod; latency from the API write returning to the new rate on the
#      FIRST and on the LAST pod's qdisc (tc polled every ~5 ms); p50/p99.
#   2. Agent RSS and CPU with PODS pods under an elastic policy at 1 s sampling, over WINDOW s,
#      against the goal RSS <= 40 MB, CPU <= 5% of a core.
# Pods: PODS network namespaces, each with a veth pair (eth0 inside, vnb<i> on the host), a Pod
# object (spec.nodeName = the agent's node) and an attachment record naming both, as the CNI
# plugin writes it.
# Usage: netd_bench.sh NETD KUBECONFIG [PODS=500] [CHANGES=20] [WINDOW=60]
set -uo pipefail
NETD=$1
export KUBECONFIG=$2
PODS=${3:-500} CHANGES=${4:-20} WINDOW=${5:-60}
kubectl() { command kubectl --request-timeout=30s "$@"; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=netd-bench-$id node=bench-$id
work=$(mktemp -d /tmp/strata-netd-bench.XXXXXX)
pid=''
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  for i in $(seq 1 "$PODS"); do ip netns del "nb$id-$i" 2>/dev/null; done
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" create serviceaccount default >/dev/null  # no controller-manager makes it

echo "== $PODS pods (netns + veth + Pod object + attachment record)"
{
  echo '{"apiVersion":"v1","kind":"List","items":['
  for i in $(seq 1 "$PODS"); do
    [ "$i" = 1 ] || echo ,
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p%d","namespace":"%s","labels":{"app":"bench"}},"spec":{"nodeName":"%s","automountServiceAccountToken":false,"containers":[{"name":"c","image":"registry.k8s.io/pause:3.9"}]}}' "$i" "$ns" "$node"
  done
  echo ']}'
} >"$work/pods.json"
kubectl create -f "$work/pods.json" >/dev/null
kubectl -n "$ns" get pods -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.uid)"' >"$work/uids"
mkdir -p "$work/att"
while read -r name uid; do
  i=${name#p}
  ip netns add "nb$id-$i"
  ip link add "vnb$id-$i" type veth peer name eth0 netns "nb$id-$i"
  ip link set "vnb$id-$i" up
  ip -n "nb$id-$i" link set eth0 up
  jq -cn --arg c "c$i" --arg n "/run/netns/nb$id-$i" --arg ns "$ns" --arg p "$name" --arg u "$uid" \
    --arg h "vnb$id-$i" '{version:1, containerId:$c, ifname:"eth0", netns:$n, podNamespace:$ns,
    podName:$p, podUid:$u, podInfraContainerId:$c, hostInterface:$h, plugin:"bench"}' \
    >"$work/att/c${i}_eth0.json"
done <"$work/uids"

"$NETD" --node-name "$node" --kubeconfig "$KUBECONFIG" --cni-plugins "" --cni-bin-dir "$work/bin" \
  --cni-conf-dir "$work/conf" --state-dir "$work/state" --attachments-dir "$work/att" \
  --metrics-addr 127.0.0.1:0 --health-addr 0 --ready-file "$work/ready" 2>"$work/netd.log" &
pid=$!

policy() {  # EGRESS_RATE [ELASTIC_JSON]
  jq -cn --arg ns "$ns" --argjson r "$1" --argjson el "${2:-null}" '{apiVersion:"strata.io/v1alpha1",
    kind:"BandwidthPolicy", metadata:{name:"bench", namespace:$ns},
    spec:({podSelector:{matchLabels:{app:"bench"}}, egress:{rateBitsPerSecond:$r}}
          + (if $el then {elastic:$el} else {} end))}' | kubectl apply -f - >/dev/null
}
rate_of() { ip netns exec "nb$id-$1" tc -j qdisc show dev eth0 root | jq -r '.[0].options.rate // 0 | . * 8'; }
wait_rate() {  # POD RATE: polls until the qdisc has RATE (deadline 120 s)
  local deadline=$(( $(date +%s) + 120 ))
  until [ "$(rate_of "$1")" = "$2" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.005
  done
}
ms() { date +%s%3N; }

echo "== $CHANGES policy changes"
policy 1000000
wait_rate "$PODS" 1000000 || { echo "initial policy never applied" >&2; exit 1; }
: >"$work/first"; : >"$work/last"
for k in $(seq 1 "$CHANGES"); do
  r=$(( 2000000 + k * 8000 ))
  t0=$(ms)
  policy "$r"
  wait_rate 1 "$r" && echo $(( $(ms) - t0 )) >>"$work/first"
  wait_rate "$PODS" "$r" && echo $(( $(ms) - t0 )) >>"$work/last"
done
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int((NR-1)*p/100)+1; print a[i]}'; }
echo "policy change -> qdisc, first pod: p50 $(pct "$work/first" 50) ms, p99 $(pct "$work/first" 99) ms"
echo "policy change -> qdisc, all $PODS pods: p50 $(pct "$work/last" 50) ms, p99 $(pct "$work/last" 99) ms"

echo "== elastic, 1 s sampling, ${WINDOW} s"
policy 2000000 '{"minRateBitsPerSecond":1000000,"maxRateBitsPerSecond":8000000,"sampleInterval":"1s","sustainedFor":"5s","cooldown":"10s"}'
sleep 10  # settle (measurement window, not synchronisation)
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(ms)
sleep "$WINDOW"
c1=$(cpu); t1=$(ms)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
cpu_pct=$(awk -v c=$((c1 - c0)) -v hz="$ticks" -v ms=$((t1 - t0)) 'BEGIN {printf "%.2f", c / hz / (ms / 1000) * 100}')
echo "agent with $PODS elastic pods: RSS $((rss_kb / 1024)) MB (goal <= 40), CPU ${cpu_pct}% of a core (goal <= 5)"
