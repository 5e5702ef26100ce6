#!/usr/bin/env bash
# Node uplinks under strata-netd, against the real bonding and bridge drivers (VM tier):
#   - strata-netd --node-network-policy-file builds bond0 (active-backup, miimon 100, primary eth1,
#     primary_reselect always) over two veth uplinks under the bridge br-strata, in a "node"
#     namespace; a "pod" namespace hangs off br-strata; the uplinks' peers join a "switch"
#     namespace's bridge that holds the far end;
#   - UDP traffic (udp_seq, one datagram per ms) runs from the pod to the switch throughout;
#   - the active uplink's carrier is cut (its switch-side peer goes down): the time from the cut
#     to traffic flowing again through eth2 and the datagrams lost are measured (goal: miimon +
#     50 ms = 150 ms; reported, not asserted); the status file and the metrics show eth2 active
#     and one failover;
#   - the carrier returns: the bond fails back to the primary eth1, measured the same way;
#   - strata-netd restarts: the bond is left alone (same ifindex, no traffic gap);
#   - the policy file is removed: bond and bridge are gone, the uplinks released.
# Prints PASS/FAIL per check and RESULT key=value lines; exits non-zero on any failure.
#
# Usage (as root, in the VM tier: the host kernel has no bonding):
#   tests/vm/run-in-vm.sh tests/netd/uplink_failover_vm_test.sh STRATA_NETD UDP_SEQ
# shellcheck disable=SC2015  # `pass` is an echo that cannot fail: A && pass || fail is if/else
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 STRATA_NETD UDP_SEQ" >&2
  exit 2
fi
readonly kNetd=$1 kUdpSeq=$2
readonly kPodAddr=10.204.0.1 kFarAddr=10.204.0.2
readonly kMiimonMs=100
# Deadlines, not sleeps; generous for TCG on a busy host (see tests/vm/bond_failover_test.sh).
readonly kDeadlineMs=20000

failures=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
fatal() {
  echo "FAIL: $*"
  exit 1
}

now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  now=$((t / 1000))
}
now_us() {
  local t=${EPOCHREALTIME//[.,]/}
  echo "$t"
}
# wait_until DEADLINE_MS COMMAND...: polls every 10 ms; `waited` = milliseconds it took.
wait_until() {
  local deadline_ms=$1 start
  shift
  now_ms
  start=$now
  while :; do
    if "$@"; then
      now_ms
      waited=$((now - start))
      return 0
    fi
    now_ms
    if ((now - start > deadline_ms)); then
      waited=$((now - start))
      return 1
    fi
    sleep 0.01
  done
}

for tool in "$kNetd" "$kUdpSeq"; do
  [[ -x $tool ]] || fatal "not executable: $tool"
done
command -v jq >/dev/null || fatal "jq is missing (scripts/install-deps.sh test)"
command -v curl >/dev/null || fatal "curl is missing (scripts/install-deps.sh test)"
[[ $(id -u) == 0 ]] || fatal "needs root (run through tests/vm/run-in-vm.sh)"

node=strata-nnp-node-$$ sw=strata-nnp-sw-$$ pod=strata-nnp-pod-$$
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$node" 2>/dev/null || true
  ip netns del "$sw" 2>/dev/null || true
  ip netns del "$pod" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for ns in "$node" "$sw" "$pod"; do ip netns add "$ns" || fatal "cannot create netns $ns"; done
N=(ip -n "$node") S=(ip -n "$sw") P=(ip -n "$pod")
in_node() { ip netns exec "$node" "$@"; }

# The switch: a bridge joining the uplinks' far ends, holding the far address.
"${S[@]}" link set lo up
"${S[@]}" link add br-sw type bridge
for i in 1 2; do
  ip link add "eth$i" netns "$node" type veth peer name "swp$i" netns "$sw"
  "${S[@]}" link set "swp$i" master br-sw
  "${S[@]}" link set "swp$i" up
  "${N[@]}" link set "eth$i" up
done
"${S[@]}" addr add "$kFarAddr/24" dev br-sw
"${S[@]}" link set br-sw up
"${N[@]}" link set lo up

cat >"$work/policy.yaml" <<YAML
apiVersion: strata.io/v1alpha1
kind: NodeNetworkPolicy
metadata:
  name: vm-uplinks
spec:
  bond:
    name: bond0
    mode: active-backup
    uplinks: [{name: eth1}, {name: eth2}]
    primary: eth1
    primaryReselect: always
    miimonMilliseconds: $kMiimonMs
  bridge:
    name: br-strata
YAML

mkdir -p "$work/cni-bin" "$work/cni-conf"
start_netd() {
  rm -f "$work/ready.json"
  # Not through in_node: a function run in the background is a subshell, and $! would be
  # that shell (killing it leaves the agent running); `ip netns exec` execs the agent.
  ip netns exec "$node" "$kNetd" --node-name vm-node --node-network-policy-file "$work/policy.yaml" \
    --node-network-policy-status-file "$work/status.json" --state-dir "$work/state" \
    --metrics-addr 127.0.0.1:0 --health-addr 0 --ready-file "$work/ready.json" --cni-plugins "" \
    --cni-bin-dir "$work/cni-bin" --cni-conf-dir "$work/cni-conf" >>"$work/netd.log" 2>&1 &
  netd_pid=$!
  pids+=("$netd_pid")
  wait_until "$kDeadlineMs" test -s "$work/ready.json" || fatal "strata-netd not ready: $(cat "$work/netd.log")"
  metrics_addr=$(jq -r .metrics "$work/ready.json")
}
status_is() { jq -e "$1" "$work/status.json" >/dev/null 2>&1; }
active_is() { status_is ".activeSlave == \"$1\""; }
metric() { in_node curl -sf "http://$metrics_addr/metrics" | grep -F "$1" >/dev/null; }
rx_packets() { "${S[@]}" -s -j link show "$1" | jq '.[0].stats64.rx.packets'; }
rx_grew() { (($(rx_packets "$1") >= $2)); }
bond_index() { "${N[@]}" -j link show bond0 | jq '.[0].ifindex'; }

start_netd
if wait_until "$kDeadlineMs" status_is '.bondPresent and .bridgePresent and (.conditions[] | select(.type == "Ready") | .status == "True")'; then
  pass "strata-netd applied the policy (${waited} ms to Ready in the status file)"
else
  fatal "policy not applied: $(cat "$work/status.json" 2>/dev/null) $(cat "$work/netd.log")"
fi
wait_until "$kDeadlineMs" active_is eth1 && pass "eth1 (the primary) is the active slave" ||
  fail "active slave is not eth1: $(jq -c . "$work/status.json")"
[[ $(in_node cat /sys/class/net/bond0/bonding/mode) == "active-backup 1" ]] &&
  pass "the kernel's bond0 is active-backup" || fail "bond0 mode: $(in_node cat /sys/class/net/bond0/bonding/mode)"
[[ $(in_node cat /sys/class/net/bond0/bonding/primary_reselect) == "always 0" ]] &&
  pass "primary_reselect is always" || fail "primary_reselect: $(in_node cat /sys/class/net/bond0/bonding/primary_reselect)"
[[ $(basename "$(in_node readlink /sys/class/net/bond0/master)") == br-strata ]] &&
  pass "bond0 is a port of br-strata" || fail "bond0 is not under br-strata"

# The pod: a veth into br-strata.
ip link add pod0 netns "$pod" type veth peer name podp netns "$node"
"${N[@]}" link set podp master br-strata
"${N[@]}" link set podp up
"${P[@]}" link set lo up
"${P[@]}" addr add "$kPodAddr/24" dev pod0
"${P[@]}" link set pod0 up

ip netns exec "$sw" "$kUdpSeq" recv "$kFarAddr" "$work/port" "$work/report.json" &
recv_pid=$!
pids+=("$recv_pid")
wait_until "$kDeadlineMs" test -s "$work/port" || fatal "udp_seq recv did not start"
ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)
ping_once() { ip netns exec "$pod" "${ping_cmd[@]}" -q -c 1 -W 1 "$kFarAddr" >/dev/null 2>&1; }
wait_until "$kDeadlineMs" ping_once && pass "pod reaches $kFarAddr through br-strata/bond0/eth1" ||
  fatal "no path from the pod to $kFarAddr"
t_send=$(now_us)
ip netns exec "$pod" "$kUdpSeq" send "$kFarAddr" "$(cat "$work/port")" 1000 >"$work/sent.json" &
send_pid=$!
pids+=("$send_pid")
base=$(rx_packets swp1)
wait_until "$kDeadlineMs" rx_grew swp1 $((base + 200)) && pass "traffic flows through eth1" ||
  fail "no traffic through eth1"

# Failover: the active uplink's carrier goes.
base2=$(rx_packets swp2)
t_cut=$(now_us)
"${S[@]}" link set swp1 down
if wait_until "$kDeadlineMs" active_is eth2; then
  echo "RESULT failover_status_ms=$waited"
  pass "status shows eth2 active ${waited} ms after the cut"
else
  fail "status still shows $(jq -r .activeSlave "$work/status.json") after the cut"
fi
wait_until "$kDeadlineMs" rx_grew swp2 $((base2 + 300)) && pass "traffic flows through eth2" ||
  fail "no traffic through eth2 after the failover"
status_is '.failovers == 1 and (.uplinks[] | select(.name == "eth1") | .linkState == "down")' &&
  pass "status: 1 failover, eth1 down" || fail "status after failover: $(jq -c . "$work/status.json")"
status_is '.conditions[] | select(.type == "Degraded") | .status == "True"' &&
  pass "status: Degraded=True" || fail "status: not Degraded after losing eth1"
metric 'strata_netd_bond_active_slave{bond="bond0",slave="eth2"} 1' &&
  metric 'strata_netd_uplink_up{bond="bond0",slave="eth1"} 0' &&
  metric 'strata_netd_bond_failovers_total{bond="bond0"} 1' &&
  pass "metrics: eth2 active, eth1 down, 1 failover" || fail "metrics after failover: $(in_node curl -s "http://$metrics_addr/metrics" | grep strata_netd_)"

# Fail-back: the carrier returns; primary_reselect=always makes eth1 active again.
base1=$(rx_packets swp1)
t_back=$(now_us)
"${S[@]}" link set swp1 up
if wait_until "$kDeadlineMs" active_is eth1; then
  echo "RESULT failback_status_ms=$waited"
  pass "status shows eth1 (primary) active again ${waited} ms after its carrier returned"
else
  fail "no fail-back to eth1: $(jq -c . "$work/status.json")"
fi
wait_until "$kDeadlineMs" rx_grew swp1 $((base1 + 300)) && pass "traffic flows through eth1 again" ||
  fail "no traffic through eth1 after the fail-back"
metric 'strata_netd_bond_failovers_total{bond="bond0"} 2' && pass "metrics: 2 active-slave changes" ||
  fail "failover counter after fail-back"

# An agent restart keeps the bond: same ifindex, no gap in the traffic.
index_before=$(bond_index)
kill -TERM "$netd_pid"
wait "$netd_pid" || true
kill -0 "$netd_pid" 2>/dev/null && fatal "strata-netd did not stop"
t_restart=$(now_us)
start_netd
wait_until "$kDeadlineMs" status_is '.activeSlave == "eth1" and (.conditions[] | select(.type == "Ready") | .status == "True")' &&
  pass "restarted strata-netd reports Ready" || fail "restarted strata-netd: $(jq -c . "$work/status.json")"
[[ $(bond_index) == "$index_before" ]] && pass "bond0 kept its ifindex across the restart (not rebuilt)" ||
  fail "bond0 was rebuilt by the restart"
base1=$(rx_packets swp1)
wait_until "$kDeadlineMs" rx_grew swp1 $((base1 + 200)) || fail "no traffic after the restart"

kill -TERM "$send_pid"
wait "$send_pid" || true
kill -TERM "$recv_pid"
wait "$recv_pid" || fail "udp_seq recv failed"
sent=$(jq .sent "$work/sent.json")
received=$(jq .received "$work/report.json")
# The rate the sender achieved (1000/s asked; far less under TCG): what `lost` counts are worth.
echo "RESULT sent=$sent received=$received lost_total=$((sent - received)) rate_per_s=$((sent * 1000000 / ($(now_us) - t_send)))"
# Each event's outage: the first loss (a hole in the sequence) after it, in the sender's time
# (udp_seq): from the event to the first datagram sent after it that arrived.
loss_after() { # T_US [BEFORE_US]
  jq -c --argjson t "$1" --argjson b "${2:-9000000000000000}" \
    '[.losses[] | select(.resumeSentUs > $t and .lastSentUs < $b)] | first // empty' "$work/report.json"
}
# `ms` is the outage as the sender saw it: from the last datagram through eth1 to the first through
# eth2 (the script's own stamp of the cut is late by the fork of `ip`, slow under TCG).
l=$(loss_after "$t_cut" "$t_back")
if [[ -n $l ]]; then
  failover_ms=$(jq '.ms | floor' <<<"$l")
  echo "RESULT failover_ms=$failover_ms lost=$(jq .lost <<<"$l") goal_ms=$((kMiimonMs + 50)) cut_to_resume_ms=$(jq -n --argjson l "$l" --argjson t "$t_cut" '(($l.resumeSentUs - $t) / 1000 | floor)')"
  pass "failover: ${failover_ms} ms without traffic, $(jq .lost <<<"$l") datagrams lost"
else
  echo "RESULT failover_ms=0 lost=0 goal_ms=$((kMiimonMs + 50))"
  pass "failover: no datagram lost"
fi
l=$(loss_after "$t_back" "$t_restart")
if [[ -n $l ]]; then
  failback_ms=$(jq '.ms | floor' <<<"$l")
  echo "RESULT failback_ms=$failback_ms failback_lost=$(jq .lost <<<"$l")"
else
  echo "RESULT failback_ms=0 failback_lost=0"
fi
restart_losses=$(jq --argjson t "$t_restart" '[.losses[] | select(.resumeSentUs > $t)]' "$work/report.json")
[[ $(jq length <<<"$restart_losses") == 0 ]] &&
  pass "no datagram lost across the agent restart" ||
  fail "datagrams lost after the restart: $(jq -c . <<<"$restart_losses")"

# Removing the policy removes what it created, only that.
rm "$work/policy.yaml"
gone() { ! "${N[@]}" link show bond0 >/dev/null 2>&1 && ! "${N[@]}" link show br-strata >/dev/null 2>&1; }
# The file is re-read at each resync (10 s): a deadline beyond it.
if wait_until 30000 gone; then
  pass "policy file removed: bond0 and br-strata deleted"
else
  fail "bond0/br-strata still there after the policy file was removed"
fi
for i in 1 2; do
  [[ -z $("${N[@]}" -j link show "eth$i" | jq -r '.[0].master // empty') ]] &&
    pass "eth$i released" || fail "eth$i still enslaved"
done

if ((failures == 0)); then
  echo "PASS uplink_failover"
else
  echo "FAIL uplink_failover ($failures failed)"
  echo "--- strata-netd log"
  cat "$work/netd.log"
  exit 1
fi
