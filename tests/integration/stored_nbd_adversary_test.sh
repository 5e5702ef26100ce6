#!/usr/bin/env bash
# Hostile and broken NBD clients (strata-nbd-adversary) against a real strata-stored,
# each from its own loopback address, while a well-behaved client on 127.0.0.1
# (qemu-io verifying a pattern, nbdinfo) must be served throughout:
#   bad requests      every error is the errno the NBD spec names (EINVAL, ENOSPC)
#   after NBD_CMD_DISC no reply, the connection closed
#   mid-write         50 clients vanish half-way through a 1 MiB WRITE: nothing torn
#   idle              10,000 connections (half raw TCP, half handshaken): the
#                     per-client limit caps them, the handshake timeout reaps the raw
#                     ones, handshaken idle ones are kept (idle timeout off by default)
#   slow readers      pipelined READs never read: dropped after --nbd-send-timeout
# The daemon stays up, its RSS stays within a generous bound, and the refusals show
# in its metrics. Timing is never asserted (the p99 comparison is bench/storage).
set -uo pipefail
STORED=$1
ADMIN=$2
ADV=$3
. "$(dirname "$0")/../lib/assert.sh"

# 10,000 connections need descriptors, in this shell's children (daemon and tool).
ulimit -n "$(ulimit -Hn)"
check "RLIMIT_NOFILE allows 10,000 connections" test "$(ulimit -n)" -ge 12000

work=$(mktemp -d /tmp/strata-nbd-adversary.XXXXXX)
pid=
bg=
cleanup() {
  [ -n "$bg" ] && kill "$bg" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$STORED" --device adv-dev --tier "ssd=$work/ssd:1GiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 --ready-file "$work/ready" \
  --nbd-handshake-timeout 3s --nbd-send-timeout 5s --nbd-max-connections 2048 \
  --nbd-max-connections-per-client 256 2>"$work/stored.log" &
pid=$!
check "daemon becomes ready" wait_until 30 test -s "$work/ready"
g=$(jq -r .grpc "$work/ready")
p=$(jq -r '.nbd[0]' "$work/ready")
m=$(jq -r .metrics "$work/ready")
A() { "$ADMIN" --insecure --server "$g" "$@"; }
A lun create vol --size 64MiB >/dev/null
check "LUN created" test $? -eq 0
# The idle flood targets its own LUN: --nbd-max-connections-per-export (128) guards the
# daemon, not an export from clients its access list lets in (a client on the list
# may hold every slot of that export; the unit tests cover that limit).
A lun create bait --size 16MiB >/dev/null
check "bait LUN created" test $? -eq 0

qemu-io -f raw -c 'write -P 0xa5 0 1M' -c 'write -P 0x5a 8M 1M' "nbd://$p/vol" >/dev/null
check "well-behaved client writes its pattern" test $? -eq 0

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
rss_before=$(rss)

# The well-behaved client: the pattern reads back, the size is right.
served() {
  local out
  out=$(qemu-io -f raw -r -c 'read -P 0xa5 0 1M' -c 'read -P 0x5a 8M 1M' "nbd://$p/vol" 2>&1) ||
    return 1
  ! grep -q 'Pattern verification failed' <<<"$out" || return 1
  [ "$(nbdinfo --size "nbd://$p/vol")" = 67108864 ]
}
adv() { "$ADV" "$1" --portal "$p" --export vol "${@:2}"; }

# Bad requests: each reply's errno is checked by the tool (exit 1 on any mismatch).
out=$(adv bad-requests --source 127.0.0.2 2>&1); rc=$?
echo "$out"
expect_eq "bad requests get the spec's errno" "$rc" 0
expect_contains "past-the-end write is ENOSPC" "$out" '"case":"write past the end","errno":"ENOSPC"'
expect_contains "unknown command is EINVAL" "$out" '"case":"unknown command 99","errno":"EINVAL"'
expect_contains "2 GiB write: EINVAL, closed" "$out" '"errno":"EINVAL","want":"EINVAL","closed":true'
check "served after bad requests" served

out=$(adv after-disconnect --source 127.0.0.2 2>&1); rc=$?
expect_eq "no reply after NBD_CMD_DISC, connection closed ($out)" "$rc" 0

out=$(adv mid-write --count 50 --source 127.0.0.2 2>&1); rc=$?
expect_eq "50 clients vanish mid-write ($out)" "$rc" 0
check "torn writes left the pattern intact" served

# 10,000 idle connections from 127.0.0.3, held while the good client works.
"$ADV" idle --portal "$p" --export bait --count 10000 --hold-seconds 20 --source 127.0.0.3 \
  >"$work/idle.out" 2>&1 &
bg=$!
check "10,000 connection attempts made" wait_until 240 grep -q '^ready' "$work/idle.out"
check "served during 10,000 idle connections" served
rss_idle=$(rss)
metric() {
  curl -sf --max-time 10 "http://$m/metrics" |
    awk -v k="$1" 'index($0, k) == 1 {print int($NF)}'
}
refused_handshake() { [ "$(metric 'strata_nbd_connections_refused_total{device="adv-dev",limit="handshake_timeout"}')" -gt 0 ]; }
check "raw connections reaped by the handshake timeout" wait_until 60 refused_handshake
wait "$bg"; rc=$?; bg=
expect_eq "idle tool exits 0" "$rc" 0
report=$(grep '^{' "$work/idle.out")
grep -v '^{' "$work/idle.out"
echo "$report"
check "some of the attacker's handshakes succeeded" test "$(jq '.handshaken' <<<"$report")" -gt 0
check "per-client limit capped the attacker" \
  test "$(jq '.handshaken' <<<"$report")" -le 256
check "most of the 10,000 were refused" test "$(jq '.refused + .raw_closed' <<<"$report")" -gt 9000
expect_eq "idle handshaken connections are kept (no idle timeout by default)" \
  "$(jq '.handshaken_closed' <<<"$report")" 0
check "refusals metered (per_client)" \
  test "$(metric 'strata_nbd_connections_refused_total{device="adv-dev",limit="per_client"}')" -gt 0
expect_contains "refusals logged" "$(cat "$work/stored.log")" "already has 256 connections"

# Slow readers from 127.0.0.4: 8 clients x 64 pipelined 1 MiB READs never read.
adv slow-readers --count 8 --depth 64 --hold-seconds 15 --source 127.0.0.4 \
  >"$work/slow.out" 2>&1 &
bg=$!
check "slow readers connected" wait_until 60 grep -q '^ready' "$work/slow.out"
check "served during slow readers" served
send_timeouts() { [ "$(metric 'strata_nbd_connections_refused_total{device="adv-dev",limit="send_timeout"}')" -ge 8 ]; }
check "slow readers dropped by the send timeout" wait_until 60 send_timeouts
wait "$bg"; rc=$?; bg=
expect_eq "slow-reader tool exits 0" "$rc" 0
report=$(grep '^{' "$work/slow.out")
echo "$report"
conns() { [ "$(metric 'strata_nbd_connections{device="adv-dev"}')" -eq 0 ]; }
check "every attacker's connection is gone in the end" wait_until 60 conns

check "daemon alive after every attack" kill -0 "$pid"
check "served after every attack" served
rss_after=$(rss)
echo "RSS kB: before $rss_before, during idle $rss_idle, after $rss_after"
# Generous: 10,000 connection attempts, 8 x 16 x 1 MiB read buffers, the buffer cache.
check "RSS bounded (after < before + 512 MiB)" test "$rss_after" -lt $((rss_before + 524288))

[ "$_failed" -eq 0 ] || tail -n 30 "$work/stored.log"
stop_within 30 "$pid"; rc=$?; pid=
expect_eq "SIGTERM exits 0" "$rc" "0"
finish
