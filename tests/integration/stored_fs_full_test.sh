#!/usr/bin/env bash
# A tier whose file system fills up before the tier does (a 48 MiB tmpfs under a tier
# configured at 256 MiB), written by a real NBD client (qemu-io) in 1 MiB requests of
# new blocks: those the NBD server splices from the socket straight into the tier file.
# The write that finds no room is answered ENOSPC (the NBD error, not a dropped
# connection); on the same connection every block written before still reads back, and
# an overwrite in place of one of them still succeeds. Nothing is half-applied: the
# refused write's range still reads as it was (zeros). The daemon keeps running.
set -uo pipefail
STORED=$1
ADMIN=$2
FS_MIB=48
TIER_MIB=256
LUN_MIB=96

. "$(dirname "$0")/../lib/private_tmpfs.sh"
need_tools qemu-io unshare jq nbdinfo
in_private_mount_namespace "$0" "$@"
. "$(dirname "$0")/../lib/assert.sh"
start_private_tmpfs strata-fs-full "$FS_MIB"
mkdir -p "$work/fs/ssd"

"$STORED" --device full-dev --tier "ssd=$work/fs/ssd:${TIER_MIB}MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" 2>>"$work/stored.log" &
pid=$!
check "daemon becomes ready" wait_until 30 test -s "$work/ready"
A() { "$ADMIN" --insecure --server "$(jq -r .grpc "$work/ready")" "$@"; }
check "create a ${LUN_MIB} MiB LUN (dedup off)" A lun create v --size "${LUN_MIB}MiB"
uri="nbd://$(jq -r '.nbd[0]' "$work/ready")/v"
check "export is served" wait_until 30 nbdinfo --size "$uri"

# One qemu-io session, one NBD connection: 1 MiB writes of new blocks, each MiB its own
# pattern byte, until well past the file system's size; then reads and an overwrite.
cmds=()
for ((i = 0; i < LUN_MIB; i++)); do
  cmds+=(-c "write -P $((i % 200 + 1)) ${i}M 1M")
done
out=$(qemu-io -f raw "$uri" "${cmds[@]}" 2>&1)
ok=$(grep -c "^wrote 1048576/1048576 bytes" <<<"$out")
nospc=$(grep -c "No space left on device" <<<"$out")
echo "# $ok MiB written, $nospc writes refused"
check "the first writes fill the file system ($ok MiB written)" \
  test "$ok" -ge $((FS_MIB / 2)) -a "$ok" -lt "$FS_MIB"
check "the writes past it are refused with ENOSPC ($nospc)" test "$nospc" -ge $((LUN_MIB - FS_MIB))
# The written MiB come first (the tier file fills in order); every other one was refused.
first_bad=$(grep -n "No space left on device" <<<"$out" | head -1 | cut -d: -f1)
check "no write succeeded after the first refusal" \
  test "$(sed -n "${first_bad},\$p" <<<"$out" | grep -c '^wrote')" -eq 0

# The same connection (qemu-io reopens nothing between commands): what was written reads
# back; the first refused MiB reads as zeros; an overwrite in place still succeeds.
cmds=()
for ((i = 0; i < ok; i++)); do
  cmds+=(-c "read -P $((i % 200 + 1)) ${i}M 1M")
done
cmds+=(-c "read -P 0 ${ok}M 1M")
for ((i = 0; i < LUN_MIB; i++)); do
  cmds+=(-c "write -P $((i % 200 + 1)) ${i}M 1M")
done
cmds+=(-c "write -P 0xee 0 64k" -c "read -P 0xee 0 64k")
out=$(qemu-io -f raw "$uri" "${cmds[@]}" 2>&1)
expect_eq "every written MiB and the refused one read back as they should" \
  "$(grep -c "^read 1048576/1048576 bytes" <<<"$out")" "$((ok + 1))"
expect_eq "no pattern mismatch" "$(grep -c "Pattern verification failed" <<<"$out")" "0"
expect_contains "an overwrite in place after ENOSPC succeeds" "$out" "read 65536/65536 bytes"
check "daemon still running" kill -0 "$pid"
expect_eq "no crash in the log" "$(grep -ci "fatal\|sigbus\|abort" "$work/stored.log")" "0"
finish
