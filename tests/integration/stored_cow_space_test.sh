#!/usr/bin/env bash
# Copy-on-write space is bounded (issue #16): a real strata-stored whose tier is
# configured at the whole size of a small file system (a 96 MiB tmpfs, mounted in a
# private mount + user namespace so no host mount is left behind), a dedup LUN of half
# that (every overwrite of unique data takes a new block and frees the old one only at
# the next flush), and a real NBD client (fio's nbd engine) overwriting it randomly
# with unique data and never flushing, for 10x the LUN's size. Before the bound, the
# replaced blocks piled up until the file system was full and writes failed with
# ENOSPC. Now: no I/O error, the data verifies, the data file stays near the LUN's size.
set -uo pipefail
STORED=$1
ADMIN=$2
FS_MIB=96
LUN_MIB=48

. "$(dirname "$0")/../lib/private_tmpfs.sh"
need_tools fio unshare jq nbdinfo
in_private_mount_namespace "$0" "$@"
. "$(dirname "$0")/../lib/assert.sh"
start_private_tmpfs strata-cow-space "$FS_MIB"
mkdir -p "$work/fs/ssd"

"$STORED" --device cow-dev --tier "ssd=$work/fs/ssd:${FS_MIB}MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" 2>>"$work/stored.log" &
pid=$!
check "daemon becomes ready" wait_until 30 test -s "$work/ready"
A() { "$ADMIN" --insecure --server "$(jq -r .grpc "$work/ready")" "$@"; }
check "create a ${LUN_MIB} MiB dedup LUN" A lun create v --size "${LUN_MIB}MiB" --dedup
uri="nbd://$(jq -r '.nbd[0]' "$work/ready")/v"
check "export is served" wait_until 30 nbdinfo --size "$uri"

# Unique data in every write (refill_buffers, no dedupe_percentage): no dedup hit, so
# each overwrite is a copy-on-write. fio sends no FLUSH unless asked (fsync=0).
fio_out=$(fio --name=storm --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
  --size="${LUN_MIB}M" --io_size="$((LUN_MIB * 10))M" --refill_buffers --fsync=0 \
  --output-format=json 2>&1)
rc=$?
expect_eq "10x the LUN overwritten without flushes: fio exits 0" "$rc" "0"
errs=$(sed -n '/^{/,$p' <<<"$fio_out" | jq '.jobs[0].error' 2>/dev/null)
expect_eq "no I/O error (ENOSPC) reported" "$errs" "0"
written=$(sed -n '/^{/,$p' <<<"$fio_out" | jq '.jobs[0].write.io_bytes' 2>/dev/null)
expect_eq "all of it written" "$written" "$((LUN_MIB * 10 << 20))"

# The data file holds the LUN's blocks, those waiting for a flush (at most 1/8 of the
# tier here: 12 MiB) and the free ones recycled from them, not the whole tier.
size=$(stat -c %s "$work/fs/ssd/blocks.dat")
check "data file ($size bytes) within LUN + bound + a run" \
  test "$size" -le "$(((LUN_MIB + FS_MIB / 8 + 2) << 20))"

# One more pass with verification: every block reads back what was written last.
check "write + verify pass (crc32c)" fio --name=verify --ioengine=nbd --uri="$uri" \
  --rw=randwrite --bs=4k --iodepth=16 --size="${LUN_MIB}M" --refill_buffers \
  --verify=crc32c --verify_fatal=1 --output=/dev/null
check "daemon still running" kill -0 "$pid"
finish
