#!/usr/bin/env bash
# Bond active-backup failover on veth ports, against the real kernel bonding driver:
#   - bond0 (active-backup, miimon 100, primary port0) over port0 and port1 comes up on port0,
#     and traffic crosses it to a bridge that joins both ports' peers;
#   - when port0's carrier drops (its veth peer goes down) the active port becomes port1 within a
#     deadline; the time it took is reported; traffic flows again, through port1;
#   - when port0's carrier returns, the primary takes over again.
# Prints one PASS/FAIL line per check and "RESULT key=value" lines; exits non-zero on any failure.
#
# Needs root and a kernel with bonding, veth and bridge: run it in the VM tier,
#   tests/vm/run-in-vm.sh tests/vm/bond_failover_test.sh
# Everything lives in two private network namespaces deleted on exit; the caller's network is
# never touched, so names like bond0 cannot collide.
set -euo pipefail

readonly kBondAddr=10.203.0.1 kPeerAddr=10.203.0.2
# Deadlines, not sleeps: miimon reacts within 100 ms on real hardware; TCG is ~8x slower, and a
# host busy with other tests (ctest -j2 on 2 cores) can stall the guest's vCPUs for seconds. The
# time taken is reported (RESULT failover_ms=...); the deadline only catches a failover that
# never happens.
readonly kSetupDeadlineMs=10000 kFailoverDeadlineMs=15000 kPingDeadlineMs=10000

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

# Milliseconds since the epoch, without forking (bash 5).
now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  now=$((t / 1000))
}

# wait_until DEADLINE_MS COMMAND...: polls COMMAND every 10 ms; sets `waited` to the milliseconds
# it took. Returns 1 when the deadline passed first.
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

active_slave() {
  active=
  read -r active </sys/class/net/bond0/bonding/active_slave || true
}
active_is() {
  active_slave
  [ "$active" = "$1" ]
}
active_is_not() {
  active_slave
  [ -n "$active" ] && [ "$active" != "$1" ]
}
mii_up() {
  local s
  read -r s <"/sys/class/net/$1/bonding_slave/mii_status" && [ "$s" = up ]
}
tx_packets() {
  local n
  read -r n <"/sys/class/net/$1/statistics/tx_packets"
  echo "$n"
}

ping_cmd=(ping)
command -v ping >/dev/null || ping_cmd=(busybox ping)
ping_once() { "${ping_cmd[@]}" -q -c 1 -W 1 "$kPeerAddr" >/dev/null 2>&1; }

# Runs inside the bond's namespace (so /sys/class/net is that namespace's view); the bridge and
# the ports' peers live in the peer namespace, reached with `ip -n`.
inside() {
  local peer_ns=$1
  local pip=(ip -n "$peer_ns")
  ip link set lo up

  ip link add bond0 type bond mode active-backup miimon 100 ||
    fatal "cannot create an active-backup bond (no bonding in this kernel? use tests/vm/run-in-vm.sh)"
  local port
  for port in port0 port1; do
    ip link add "$port" type veth peer name "$port-peer" netns "$peer_ns"
    ip link set "$port" master bond0
  done
  ip link set bond0 type bond primary port0
  ip addr add "$kBondAddr/24" dev bond0

  "${pip[@]}" link set lo up
  "${pip[@]}" link add br0 type bridge
  for port in port0 port1; do
    "${pip[@]}" link set "$port-peer" master br0
    "${pip[@]}" link set "$port-peer" up
  done
  "${pip[@]}" addr add "$kPeerAddr/24" dev br0
  "${pip[@]}" link set br0 up
  ip link set bond0 up

  if wait_until "$kSetupDeadlineMs" mii_up port0 && wait_until "$kSetupDeadlineMs" mii_up port1; then
    pass "both ports report link up"
  else
    fatal "ports not up after ${kSetupDeadlineMs} ms: $(cat /proc/net/bonding/bond0)"
  fi
  if wait_until "$kSetupDeadlineMs" active_is port0; then
    pass "active slave is port0 (the primary)"
  else
    fatal "active slave is '$active', expected port0"
  fi
  if wait_until "$kPingDeadlineMs" ping_once; then
    pass "ping $kPeerAddr through port0"
  else
    fail "no ping reply from $kPeerAddr through port0"
  fi

  # Failover: dropping the peer takes the carrier off port0; miimon notices on its next tick.
  local tx_before
  tx_before=$(tx_packets port1)
  "${pip[@]}" link set port0-peer down
  if wait_until "$kFailoverDeadlineMs" active_is_not port0; then
    echo "RESULT failover_ms=$waited"
    if [ "$active" = port1 ]; then
      pass "failover to port1 in ${waited} ms after port0 lost carrier"
    else
      fail "active slave moved to '$active', expected port1"
    fi
  else
    fail "active slave still '$active' ${kFailoverDeadlineMs} ms after port0 lost carrier"
  fi
  if wait_until "$kPingDeadlineMs" ping_once; then
    echo "RESULT traffic_recovery_ms=$waited"
    pass "ping $kPeerAddr after failover (${waited} ms to first reply)"
  else
    fail "no ping reply from $kPeerAddr after failover"
  fi
  local tx_after
  tx_after=$(tx_packets port1)
  if ((tx_after > tx_before)); then
    pass "traffic left through port1 ($((tx_after - tx_before)) packets)"
  else
    fail "port1 sent no packets after failover"
  fi

  # Restore: port0 is the primary, so it takes over again once its carrier is back.
  "${pip[@]}" link set port0-peer up
  if wait_until "$kFailoverDeadlineMs" active_is port0; then
    echo "RESULT failback_ms=$waited"
    pass "port0 active again ${waited} ms after its carrier returned"
  else
    fail "active slave is '$active' ${kFailoverDeadlineMs} ms after port0's carrier returned"
  fi
  if wait_until "$kPingDeadlineMs" ping_once; then
    pass "ping $kPeerAddr after failback"
  else
    fail "no ping reply from $kPeerAddr after failback"
  fi

  ip link del bond0
  ((failures == 0))
}

if [ "${1:-}" = --inside ]; then
  inside "$2"
  exit
fi

[ "$(id -u)" = 0 ] || fatal "needs root (run through tests/vm/run-in-vm.sh)"
bond_ns=strata-bond-$$
peer_ns=strata-bondpeer-$$
cleanup() {
  ip netns del "$bond_ns" 2>/dev/null || true
  ip netns del "$peer_ns" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$bond_ns" || fatal "cannot create a network namespace"
ip netns add "$peer_ns" || fatal "cannot create a network namespace"

if ip netns exec "$bond_ns" "$0" --inside "$peer_ns"; then
  echo "PASS bond_failover"
else
  echo "FAIL bond_failover"
  exit 1
fi
