#!/usr/bin/env bash
# strata-stored's LUNs through Debian's real NBD clients over two portals: qemu-io
# write/read patterns through each portal, nbdinfo (handshake, export list, sizes),
# nbdcopy round trips (multi-conn) with equal checksums, dedup visible in the stats,
# access lists refusing clients, malformed requests that must not hurt the daemon,
# and the per-LUN I/O stats and metrics that the traffic leaves behind.
set -uo pipefail
STORED=$1
ADMIN=$2
. "$(dirname "$0")/../lib/assert.sh"

work=$(mktemp -d /tmp/strata-stored-nbd.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$STORED" --device nbd-dev --tier "ssd=$work/ssd:2GiB" --tier "sata=$work/sata:2GiB" \
  --portal 127.0.0.1:0 --portal 127.0.0.2:0 --grpc 127.0.0.1:0 --insecure \
  --metrics 127.0.0.1:0 --ready-file "$work/ready" 2>"$work/stored.log" &
pid=$!
check "daemon becomes ready" wait_until 30 test -s "$work/ready"
g=$(jq -r .grpc "$work/ready")
p1=$(jq -r '.nbd[0]' "$work/ready")
p2=$(jq -r '.nbd[1]' "$work/ready")
A() { "$ADMIN" --insecure --server "$g" "$@"; }
expect_contains "two portals bound" "$p1 $p2" "127.0.0.2:"
expect_contains "status lists the bound portals" "$(A -o json device status | jq -c .portals)" "$p2"

A lun create vol --size 64MiB --dedup --owner team-a >/dev/null
A lun create plain --size 16MiB >/dev/null
A lun create locked --size 1MiB --allow 10.9.9.9 >/dev/null

# nbdinfo: handshake, size, flags, export list
json=$(nbdinfo --json "nbd://$p1/vol")
expect_eq "nbdinfo: size" "$(jq '.exports[0]["export-size"]' <<<"$json")" "67108864"
expect_eq "nbdinfo: can_multi_conn" "$(jq '.exports[0].can_multi_conn' <<<"$json")" "true"
expect_eq "nbdinfo: can_fua" "$(jq '.exports[0].can_fua' <<<"$json")" "true"
expect_eq "nbdinfo: can_trim" "$(jq '.exports[0].can_trim' <<<"$json")" "true"
expect_eq "nbdinfo: preferred block" "$(jq '.exports[0].block_size_preferred' <<<"$json")" "4096"
expect_eq "nbdinfo --size via portal 2" "$(nbdinfo --size "nbd://$p2/plain")" "16777216"
list=$(nbdinfo --list --json "nbd://$p1")
expect_eq "export list hides the locked LUN" \
  "$(jq -c '[.exports[]["export-name"]] | sort' <<<"$list")" '["plain","vol"]'
out=$(nbdinfo "nbd://$p1/locked" 2>&1); rc=$?
check "a client off the access list is refused" test "$rc" -ne 0
out=$(nbdinfo "nbd://$p1/nope" 2>&1); rc=$?
check "an unknown export is refused" test "$rc" -ne 0

# qemu-io: patterns through portal 1, verified through portal 2 (multipath)
qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 4M 64k' -c 'write -z 8M 1M' \
  "nbd://$p1/vol" >/dev/null
check "qemu-io: write succeeded" test $? -eq 0
out=$(qemu-io -f raw -r -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 4M 64k' -c 'read -P 0 8M 1M' \
  "nbd://$p2/vol" 2>&1)
check "qemu-io: same data through portal 2" test "$(grep -c 'Pattern verification failed' <<<"$out")" -eq 0
expect_contains "qemu-io: reads done" "$out" "read 65536/65536 bytes"
out=$(qemu-io -f raw -r -c 'read -P 0xee 0 4k' "nbd://$p2/vol" 2>&1)
expect_contains "qemu-io: a wrong pattern is noticed" "$out" "Pattern verification failed"

# dedup: 1 MiB of one byte is 256 identical blocks
j=$(A -o json lun get vol)
expect_eq "dedup: logical bytes" "$(jq -r .space.logical_bytes <<<"$j")" "$(((1 << 20) + (64 << 10)))"
check "dedup: ratio far above 1" awk -v r="$(jq -r .space.dedup_ratio <<<"$j")" 'BEGIN{exit !(r > 50)}'

# nbdcopy: a random image in over 4 connections and back out, checksums equal
head -c 16M /dev/urandom >"$work/in.img"
check "nbdcopy in (multi-conn)" nbdcopy --connections=4 "$work/in.img" "nbd://$p1/plain"
check "nbdcopy out via portal 2" nbdcopy "nbd://$p2/plain" "$work/out.img"
expect_eq "round trip checksum" "$(sha256sum <"$work/out.img")" "$(sha256sum <"$work/in.img")"

# malformed requests: bad magic, a huge write length, an unknown command, garbage in
# the handshake. Each may cost its connection, never the daemon.
python3 - "$p1" <<'PY'
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
def conn():
    s = socket.create_connection((host, int(port)), timeout=5)
    s.recv(18)                       # NBDMAGIC IHAVEOPT flags
    s.sendall(struct.pack(">I", 1))  # client flags: fixed newstyle
    name = b"plain"
    s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(name) + 6) + struct.pack(">I", len(name)) + name + b"\0\0")
    hdr = s.recv(20)
    return s
for payload in (b"\xde\xad\xbe\xef" * 8,                                               # bad magic
                struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, 0, 0x7fffffff),             # 2 GiB write
                struct.pack(">IHHQQI", 0x25609513, 0, 99, 2, 0, 0),                     # unknown command
                struct.pack(">IHHQQI", 0x25609513, 0, 0, 3, 1 << 40, 4096)):            # read past the end
    try:
        s = conn(); s.sendall(payload); s.recv(64); s.close()
    except OSError:
        pass
s = socket.create_connection((host, int(port)), timeout=5); s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4); s.close()
PY
check "daemon alive after malformed requests" kill -0 "$pid"
check "and still serving" test "$(nbdinfo --size "nbd://$p1/plain")" = 16777216

# I/O stats and metrics left by the traffic
j=$(A -o json lun stats vol)
check "stats: writes counted" test "$(jq -r .write.ops <<<"$j")" -gt 0
check "stats: reads counted" test "$(jq -r .read.ops <<<"$j")" -gt 0
check "stats: read latency p99 measured" test "$(jq -r .read.latency_p99_ns <<<"$j")" -gt 0
metrics=$(curl -sf --max-time 10 "http://$(jq -r .metrics "$work/ready")/metrics")
expect_contains "metrics: per-LUN write counter" "$metrics" 'strata_lun_io_ops_total{device="nbd-dev",lun="vol",owner="team-a",kind="write"}'
expect_contains "metrics: dedup ratio" "$metrics" 'strata_device_dedup_ratio{device="nbd-dev"}'

stop_within 30 "$pid"; rc=$?; pid=
expect_eq "SIGTERM with clients gone exits 0" "$rc" "0"
finish
