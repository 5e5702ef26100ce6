#!/usr/bin/env bash
# strata-bandwidth in real network namespaces, chained after Debian's reference bridge + host-local
# plugins so prevResult is real:
#   - ADD/CHECK/DEL for spec 0.3.1, 0.4.0 and 1.0.0 (bridge's newest) and 1.1.0 (veth by hand:
#     the reference plugins stop at 1.0.0); result echoed in the requested version;
#   - tc state read back: tbf 5354: on the host veth (ingress) and on the pod's eth0 (egress);
#     no ifb device is ever created; DEL removes both qdiscs and is idempotent (also without netns);
#   - throughput through the shaped link measured both ways, then changed live with
#     strata-cni-ctl (same qdisc, new rate, measured again) and counters read as JSON;
#   - a table of malformed inputs: each gets its spec code and message and leaves no qdisc.
# Usage: bandwidth_netns_test.sh STRATA_CNI_BIN_DIR TCP_METER     (root; labels root, integration)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
STRATA_CNI_BIN=$1
meter=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
for p in bridge host-local; do
  [ -x "$REF_CNI_BIN/$p" ] || { echo "FAIL: $REF_CNI_BIN/$p missing (containernetworking-plugins)"; exit 1; }
done

id=$$
br=scbr$id
tmp=$(mktemp -d)
namespaces=()
cleanup() {
  local ns
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$br" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

new_ns() {  # SUFFIX VAR: makes the namespace, records it for cleanup, names it in VAR
  local name=scni-$id-$1
  ip netns add "$name"
  ip -n "$name" link set lo up
  namespaces+=("$name")
  printf -v "$2" %s "$name"
}

bridge_conf() {  # VERSION
  jq -cn --arg v "$1" --arg br "$br" --arg d "$tmp/ipam" '{cniVersion:$v, name:"scni-test",
    type:"bridge", bridge:$br, isGateway:true,
    ipam:{type:"host-local", subnet:"10.231.77.0/24", dataDir:$d}}'
}

# bw_conf VERSION PREV_JSON [EXTRA_JQ]: 10 Mbit/s into the pod, 20 Mbit/s out of it.
bw_conf() {
  jq -cn --arg v "$1" --argjson prev "$2" '{cniVersion:$v, name:"scni-test",
    type:"strata-bandwidth", ingressRate:10000000, ingressBurst:800000,
    egressRate:20000000, egressBurst:800000, prevResult:$prev}' | jq -c "${3:-.}"
}

host_veth_of() { jq -r --arg br "$br" '[.interfaces[] | select(.sandbox == null and .name != $br)][0].name' <<<"$1"; }

ifbs_before=$(count_links ifb)

# --- every spec version, chained after the reference bridge ------------------------------------
for v in 0.3.1 0.4.0 1.0.0; do
  new_ns "${v//./}" ns
  nspath=/run/netns/$ns
  cid=ctr-$v-$id
  cni_exec "$REF_CNI_BIN" bridge ADD "$nspath" eth0 "$cid" "$(bridge_conf "$v")"
  expect_eq "[$v] bridge ADD" "$cni_rc" 0
  prev=$cni_out
  hveth=$(host_veth_of "$prev")
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth ADD "$nspath" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  expect_eq "[$v] strata-bandwidth ADD exit" "$cni_rc" 0
  expect_eq "[$v] result version" "$(jq -r .cniVersion <<<"$cni_out")" "$v"
  expect_eq "[$v] prevResult ips passed through" "$(jq -cS .ips <<<"$cni_out")" "$(jq -cS .ips <<<"$prev")"
  expect_eq "[$v] ingress tbf on host veth $hveth" "$(root_qdisc "" "$hveth")" "tbf 5354: 10000000"
  expect_eq "[$v] egress tbf on pod eth0" "$(root_qdisc "$ns" eth0)" "tbf 5354: 20000000"
  expect_eq "[$v] no ifb device created" "$(count_links ifb)" "$ifbs_before"
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth CHECK "$nspath" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  if [ "$v" = 0.3.1 ]; then
    expect_eq "[$v] CHECK refused (code 1)" "$(jq -r .code <<<"$cni_out")" 1
  else
    expect_eq "[$v] CHECK" "$cni_rc" 0
    cni_exec "$STRATA_CNI_BIN" strata-bandwidth CHECK "$nspath" eth0 "$cid" \
      "$(bw_conf "$v" "$prev" '.egressRate = 30000000')"
    expect_eq "[$v] CHECK sees a different configured rate" "$cni_rc" 1
  fi
  if [ "$v" = 1.0.0 ]; then
    # --- throughput through the shaped link, and live changes ---------------------------------
    pod_ip=$(jq -r '.ips[0].address' <<<"$prev")
    pod_ip=${pod_ip%/*}
    gw_ip=$(jq -r '.ips[0].gateway' <<<"$prev")
    measure() {  # RECV_NS (or "") SEND_NS (or "") DEST_IP PORT -> bits/s
      local rns=$1 sns=$2 dst=$3 port=$4 out=$tmp/meter.$4
      local rcmd=("$meter" recv "$port" 3) scmd=("$meter" send "$dst" "$port" 5)
      [ -z "$rns" ] || rcmd=(ip netns exec "$rns" "${rcmd[@]}")
      [ -z "$sns" ] || scmd=(ip netns exec "$sns" "${scmd[@]}")
      "${rcmd[@]}" >"$out" &
      local rpid=$!
      wait_until 10 grep -q listening "$out"
      # Both bounded: a sender whose connect hangs, or a receiver whose sender never connected
      # (it would sit in accept() for ever), must fail the measurement, not hang the test.
      timeout 30 "${scmd[@]}" || true
      wait_until 15 grep -q bitsPerSecond "$out" || kill "$rpid" 2>/dev/null || true
      wait "$rpid" || true
      jq -r .bitsPerSecond < <(tail -n 1 "$out")
    }
    within() {  # WHAT MEASURED WANT: measured within 60%..115% of want
      local what=$1 got=${2%.*} want=$3
      if [ "$got" -ge $((want * 60 / 100)) ] && [ "$got" -le $((want * 115 / 100)) ]; then
        pass "$what: $got bit/s (configured $want)"
      else
        fail "$what: $got bit/s, configured $want"
      fi
    }
    within "throughput into the pod" "$(measure "$ns" "" "$pod_ip" 15201)" 10000000
    within "throughput out of the pod" "$(measure "" "$ns" "$gw_ip" 15202)" 20000000
    before=$(ip netns exec "$ns" tc -j -s qdisc show dev eth0 root | jq '.[0].packets')
    set_out=$("$STRATA_CNI_BIN/strata-cni-ctl" bandwidth set --netns "$nspath" --ifname eth0 \
      --egress-rate 5m --egress-burst 800k)
    expect_eq "ctl set reports the new egress rate" "$(jq .egressRate <<<"$set_out")" 5000000
    expect_eq "live change kept the qdisc (handle) and changed the rate" \
      "$(root_qdisc "$ns" eth0)" "tbf 5354: 5000000"
    after=$(ip netns exec "$ns" tc -j -s qdisc show dev eth0 root | jq '.[0].packets')
    check "live change kept the qdisc's counters ($before -> $after packets)" [ "$after" -ge "$before" ]
    within "throughput out of the pod after the live change" "$(measure "" "$ns" "$gw_ip" 15203)" 5000000
    get_out=$("$STRATA_CNI_BIN/strata-cni-ctl" bandwidth get --netns "$nspath" --ifname eth0)
    expect_eq "ctl get: ingress untouched" "$(jq .ingressRate <<<"$get_out")" 10000000
    counters=$("$STRATA_CNI_BIN/strata-cni-ctl" counters --netns "$nspath" --ifname eth0)
    check "counters: rxBytes > 1 MB" [ "$(jq .rxBytes <<<"$counters")" -gt 1000000 ]
    check "counters: egress qdisc bytes > 1 MB" [ "$(jq .egressQdisc.bytes <<<"$counters")" -gt 1000000 ]
    expect_eq "counters: host peer" "$(jq -r .hostPeer <<<"$counters")" "$hveth"
    set +e
    "$STRATA_CNI_BIN/strata-cni-ctl" bandwidth set --netns "$nspath" --ifname eth0 --egress-rate 5m \
      --egress-burst 100 2>"$tmp/ctl.err"
    rc=$?
    set -e
    expect_eq "ctl refuses a burst below one frame" "$rc" 1
    expect_contains "ctl names the flag" "$(cat "$tmp/ctl.err")" "egressBurst"
    "$STRATA_CNI_BIN/strata-cni-ctl" bandwidth set --netns "$nspath" --ifname eth0 --egress-rate 0 >/dev/null
    expect_eq "ctl rate 0 removes egress shaping" "$(root_qdisc "$ns" eth0)" "none"
  fi
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$nspath" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  expect_eq "[$v] DEL" "$cni_rc" 0
  expect_eq "[$v] DEL removed the host qdisc" "$(root_qdisc "" "$hveth")" "none"
  expect_eq "[$v] DEL removed the pod qdisc" "$(root_qdisc "$ns" eth0)" "none"
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$nspath" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  expect_eq "[$v] DEL again" "$cni_rc" 0
  cni_exec "$REF_CNI_BIN" bridge DEL "$nspath" eth0 "$cid" "$(bridge_conf "$v")"
  expect_eq "[$v] bridge DEL" "$cni_rc" 0
  ip netns del "$ns"
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$nspath" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  expect_eq "[$v] DEL with the netns gone" "$cni_rc" 0
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "" eth0 "$cid" "$(bw_conf "$v" "$prev")"
  expect_eq "[$v] DEL without CNI_NETNS" "$cni_rc" 0
done

# --- 1.1.0: the reference plugins stop at 1.0.0, so the veth is made by hand -------------------
new_ns 110 ns
nspath=/run/netns/$ns
hveth=sh$id
ip link add "$hveth" type veth peer name eth0 netns "$ns"
ip link set "$hveth" up
ip -n "$ns" link set eth0 up
prev=$(jq -cn --arg h "$hveth" --arg ns "$nspath" '{cniVersion:"1.1.0",
  interfaces:[{name:$h},{name:"eth0", sandbox:$ns, mtu:1500}],
  ips:[{address:"10.231.78.2/24", interface:1}]}')
cni_exec "$STRATA_CNI_BIN" strata-bandwidth ADD "$nspath" eth0 ctr-110 "$(bw_conf 1.1.0 "$prev")"
expect_eq "[1.1.0] ADD" "$cni_rc" 0
expect_eq "[1.1.0] interface mtu kept (1.1.0 field)" "$(jq -c '.interfaces[1].mtu' <<<"$cni_out")" 1500
expect_eq "[1.1.0] ingress tbf" "$(root_qdisc "" "$hveth")" "tbf 5354: 10000000"
cni_exec "$STRATA_CNI_BIN" strata-bandwidth CHECK "$nspath" eth0 ctr-110 "$(bw_conf 1.1.0 "$prev")"
expect_eq "[1.1.0] CHECK" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bandwidth STATUS "" "" "" '{"cniVersion":"1.1.0","name":"scni-test","type":"strata-bandwidth"}'
expect_eq "[1.1.0] STATUS" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bandwidth GC "" "" "" '{"cniVersion":"1.1.0","name":"scni-test","type":"strata-bandwidth","cni.dev/valid-attachments":[]}'
expect_eq "[1.1.0] GC" "$cni_rc" 0
cni_exec "$STRATA_CNI_BIN" strata-bandwidth DEL "$nspath" eth0 ctr-110 "$(bw_conf 1.1.0 "$prev")"
expect_eq "[1.1.0] DEL" "$cni_rc" 0
expect_eq "[1.1.0] DEL removed the host qdisc" "$(root_qdisc "" "$hveth")" "none"

# --- malformed inputs: code, message, and nothing left behind -----------------------------------
good=$(bw_conf 1.0.0 "$prev" '.cniVersion = "1.0.0" | .prevResult.cniVersion = "1.0.0"')
# name|netns|ifname|config (jq filter over $good, or RAW:text)|code|message prefix
cases=(
  "invalid JSON|$nspath|eth0|RAW:{\"cniVersion\":|6|network configuration: not valid JSON"
  "unsupported version|$nspath|eth0|.cniVersion = \"0.2.0\"|1|cniVersion: '0.2.0' is not supported"
  "version not a string|$nspath|eth0|.cniVersion = 1|7|cniVersion: must be a string"
  "missing name|$nspath|eth0|del(.name)|7|name: required"
  "rate without burst|$nspath|eth0|del(.egressBurst)|7|egressRate: set without egressBurst"
  "negative rate|$nspath|eth0|.ingressRate = -1|7|ingressRate: must not be negative"
  "rate as a string|$nspath|eth0|.egressRate = \"10M\"|7|egressRate: must be a non-negative integer"
  "burst below one frame|$nspath|eth0|.egressBurst = 8000|7|egressBurst: 8000 bits (1000 bytes) is smaller than one frame"
  "rate beyond tbf|$nspath|eth0|.ingressRate = 99999999999999|7|ingressRate: 99999999999999 bit/s is above"
  "runtimeConfig.bandwidth not an object|$nspath|eth0|.runtimeConfig = {bandwidth: 1}|7|runtimeConfig.bandwidth: must be an object"
  "no prevResult|$nspath|eth0|del(.prevResult)|7|prevResult: required"
  "prevResult interfaces not a list|$nspath|eth0|.prevResult.interfaces = 5|7|prevResult: interfaces: must be an array"
  "interface not in the netns|$nspath|eth9|.|7|CNI_IFNAME: eth9 not found in $nspath"
  "netns does not exist|/run/netns/scni-none-$id|eth0|.|4|CNI_NETNS: /run/netns/scni-none-$id does not exist"
  "netns is not a namespace|$tmp|eth0|.|4|$tmp: not a network namespace"
  "bad interface name|$nspath|a/b|.|4|CNI_IFNAME: 'a/b' must not contain"
)
for c in "${cases[@]}"; do
  IFS='|' read -r what cns cif filter code msg <<<"$c"
  if [[ $filter == RAW:* ]]; then conf=${filter#RAW:}; else conf=$(jq -c "$filter" <<<"$good"); fi
  cni_exec "$STRATA_CNI_BIN" strata-bandwidth ADD "$cns" "$cif" ctr-bad "$conf"
  got_code=$(jq -r .code <<<"$cni_out" 2>/dev/null || echo "?")
  got_msg=$(jq -r .msg <<<"$cni_out" 2>/dev/null || echo "$cni_out")
  if [ "$cni_rc" != 0 ] && [ "$got_code" = "$code" ] && [[ $got_msg == "$msg"* ]]; then
    pass "malformed: $what -> $code '$got_msg'"
  else
    fail "malformed: $what: exit $cni_rc, got $cni_out; want code $code '$msg...'"
  fi
  if [ "$(root_qdisc "" "$hveth")" != none ] || [ "$(root_qdisc "$ns" eth0)" != none ] ||
    [ "$(count_links ifb)" != "$ifbs_before" ]; then
    fail "malformed: $what left a qdisc or device behind"
  fi
done
pass "no malformed config left a qdisc or device behind (checked after each)"

finish
