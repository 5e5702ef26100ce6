#!/usr/bin/env bash
# The NBD server against Debian's real NBD clients (libnbd's nbdinfo and nbdcopy,
# QEMU's qemu-io), over two portals on loopback: sizes and flags as the clients see
# them, export lists, data written through one portal read back through the other,
# multi-connection copies, refused and unknown exports, clean stop on SIGTERM.
set -uo pipefail
SERVER=$1
. "$(dirname "$0")/../lib/assert.sh"

for tool in nbdinfo nbdcopy qemu-io jq sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool is not installed (scripts/install-deps.sh installs libnbd-bin, qemu-utils)"
    exit 1
  fi
done

work=$(mktemp -d /tmp/strata-nbd-interop.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$SERVER" --export disk=64MiB --export ro=8MiB:ro --export locked=1MiB:allow=10.9.9.9,::1 \
  --portal 127.0.0.1:0 --portal 127.0.0.2:0 --ready-file "$work/ready" \
  2>"$work/server.log" &
pid=$!
check "server becomes ready" wait_until 30 test -s "$work/ready"
p1=$(jq -r '.portals[0]' "$work/ready")
p2=$(jq -r '.portals[1]' "$work/ready")
expect_contains "portal 1 bound on 127.0.0.1" "$p1" "127.0.0.1:"
expect_contains "portal 2 bound on 127.0.0.2" "$p2" "127.0.0.2:"
check "portal 1 has a real port" test "${p1##*:}" -gt 0

# --- nbdinfo: size, flags, export list
json=$(nbdinfo --json "nbd://$p1/disk")
expect_eq "nbdinfo: size" "$(jq '.exports[0]["export-size"]' <<<"$json")" "67108864"
expect_eq "nbdinfo: can_multi_conn" "$(jq '.exports[0].can_multi_conn' <<<"$json")" "true"
expect_eq "nbdinfo: can_fua" "$(jq '.exports[0].can_fua' <<<"$json")" "true"
expect_eq "nbdinfo: can_trim" "$(jq '.exports[0].can_trim' <<<"$json")" "true"
expect_eq "nbdinfo: can_zero" "$(jq '.exports[0].can_zero' <<<"$json")" "true"
expect_eq "nbdinfo: can_flush" "$(jq '.exports[0].can_flush' <<<"$json")" "true"
expect_eq "nbdinfo: writable" "$(jq '.exports[0].is_read_only' <<<"$json")" "false"
expect_eq "nbdinfo: preferred block size" "$(jq '.exports[0].block_size_preferred' <<<"$json")" "4096"
expect_eq "nbdinfo: maximum block size" "$(jq '.exports[0].block_size_maximum' <<<"$json")" "33554432"
json=$(nbdinfo --json "nbd://$p2/ro")
expect_eq "nbdinfo: read-only export" "$(jq '.exports[0].is_read_only' <<<"$json")" "true"
expect_eq "nbdinfo: read-only size" "$(jq '.exports[0]["export-size"]' <<<"$json")" "8388608"
expect_eq "nbdinfo --size" "$(nbdinfo --size "nbd://$p2/disk")" "67108864"

list=$(nbdinfo --list --json "nbd://$p1")
expect_eq "nbdinfo --list: what 127.0.0.1 may open" \
  "$(jq -c '[.exports[]["export-name"]] | sort' <<<"$list")" '["disk","ro"]'

# --- refused and unknown exports. libnbd reports NBD_REP_ERR_POLICY as ENOTSUP and
# NBD_REP_ERR_UNKNOWN as ENOENT; the server's message shows in its debug log.
out=$(LIBNBD_DEBUG=1 nbdinfo "nbd://$p1/locked" 2>&1); rc=$?
check "refused client: nbdinfo fails" test "$rc" -ne 0
expect_contains "refused client: NBD_REP_ERR_POLICY" "$out" \
  "server replied with error to opt_go request: Operation not supported"
expect_contains "refused client: the server's reason" "$out" \
  "server error message: export 'locked': client 127.0.0.1 is not on the access list"
out=$(LIBNBD_DEBUG=1 nbdinfo "nbd://$p1/nope" 2>&1); rc=$?
check "unknown export: nbdinfo fails" test "$rc" -ne 0
expect_contains "unknown export: NBD_REP_ERR_UNKNOWN" "$out" \
  "server replied with error to opt_go request: No such file or directory"
expect_contains "unknown export: the server's reason" "$out" "no export named 'nope'"

# --- qemu-io: pattern written through portal 1, verified through portal 2
out=$(qemu-io -f raw "nbd://$p1/disk" -c 'write -P 0xab 1M 2M' -c 'write -f -P 0xcd 5M 64k' \
  -c 'write -z 6M 1M' -c 'discard 7M 1M' -c flush 2>&1); rc=$?
expect_eq "qemu-io: writes, FUA write, write-zeroes, discard, flush succeed" "$rc" "0"
expect_contains "qemu-io: 2 MiB written" "$out" "wrote 2097152/2097152 bytes"
out=$(qemu-io -f raw -r "nbd://$p2/disk" -c 'read -P 0xab 1M 2M' -c 'read -P 0xcd 5M 64k' \
  -c 'read -P 0 6M 2M' -c 'read -P 0 0 1M' 2>&1); rc=$?
expect_eq "qemu-io: reads through portal 2 verify" "$rc" "0"
expect_contains "qemu-io: 2 MiB read back" "$out" "read 2097152/2097152 bytes"
out=$(qemu-io -f raw -r "nbd://$p2/disk" -c 'read -P 0x11 1M 4k' 2>&1)
expect_contains "qemu-io: a wrong pattern is caught" "$out" "Pattern verification failed"
out=$(qemu-io -f raw "nbd://$p1/ro" -c 'write -P 1 0 4k' 2>&1); rc=$?
check "qemu-io: writing a read-only export fails" test "$rc" -ne 0

# --- nbdcopy: a random file in and out, one connection and four
head -c 64M /dev/urandom >"$work/in.bin"
want=$(sha256sum <"$work/in.bin" | cut -d' ' -f1)
check "nbdcopy into portal 1" nbdcopy --flush "$work/in.bin" "nbd://$p1/disk"
check "nbdcopy out of portal 2" nbdcopy "nbd://$p2/disk" "$work/out.bin"
expect_eq "nbdcopy: same bytes back" "$(sha256sum <"$work/out.bin" | cut -d' ' -f1)" "$want"

head -c 64M /dev/urandom >"$work/in4.bin"
want=$(sha256sum <"$work/in4.bin" | cut -d' ' -f1)
check "nbdcopy --connections=4 in" \
  nbdcopy --connections=4 --requests=16 --flush "$work/in4.bin" "nbd://$p2/disk"
check "nbdcopy --connections=4 out" \
  nbdcopy --connections=4 --requests=16 "nbd://$p1/disk" "$work/out4.bin"
expect_eq "nbdcopy multi-conn: same bytes back" \
  "$(sha256sum <"$work/out4.bin" | cut -d' ' -f1)" "$want"

# --- the server survived all of it and stops cleanly
check "server still running" kill -0 "$pid"
stop_within 30 "$pid"; rc=$?; pid=
expect_eq "SIGTERM stops with exit 0" "$rc" "0"
if grep -qiE "Sanitizer|runtime error|terminate called" "$work/server.log"; then
  fail "server log shows a crash or sanitizer report"; cat "$work/server.log"
else
  pass "server log is clean"
fi

# Bad flags: exit 2 and a message naming the flag.
out=$("$SERVER" --export disk=lots --portal 127.0.0.1:0 2>&1); rc=$?
expect_eq "bad --export exits 2" "$rc" "2"
expect_contains "bad --export named" "$out" "--export 'disk=lots'"

finish
