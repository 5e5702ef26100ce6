#!/usr/bin/env bash
# Snapshots through strata-admin against a real strata-stored, data through Debian's
# real NBD clients (qemu-io, nbdinfo, nbdcopy): write A, snapshot, write B, restore
# the snapshot into a new LUN -> it reads A, the source reads B; restore to another
# tier; idempotence and errors naming the field; snapshots are not exported; deleting
# the LUN keeps its snapshots; everything survives a restart; space shows shared and
# snapshot bytes; maintenance refuses new snapshots; a LUN with snapshots cannot move
# to another device.
set -uo pipefail
STORED=$1
ADMIN=$2
. "$(dirname "$0")/../lib/assert.sh"

work=$(mktemp -d /tmp/strata-snapshot-test.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_stored() {
  rm -f "$work/ready"
  "$STORED" --device snap-dev --tier "ssd=$work/ssd:1GiB" --tier "sata=$work/sata:1GiB" \
    --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" 2>>"$work/stored.log" &
  pid=$!
  wait_until 30 test -s "$work/ready"
}
stop_stored() { stop_within 30 "$pid"; pid=; }

check "daemon becomes ready" start_stored
A() { "$ADMIN" --insecure --server "$(jq -r .grpc "$work/ready")" "$@"; }
nbd() { echo "nbd://$(jq -r '.nbd[0]' "$work/ready")/$1"; }
# reads LUN $1: pattern $2 at offset $3 for $4 bytes; true when it verifies
reads() {
  local out
  out=$(qemu-io -f raw -r -c "read -P $2 $3 $4" "$(nbd "$1")" 2>&1) || return 1
  ! grep -q 'Pattern verification failed' <<<"$out" && grep -q "read $(numfmt --from=iec "$4")/" <<<"$out"
}
migration_done() { [ "$(A -o json lun get "$1" | jq -r .migration.state)" = MIGRATION_STATE_DONE ]; }

A lun create vol --size 64MiB --owner team-a >/dev/null
check "write A (qemu-io)" qemu-io -f raw -c 'write -P 0xaa 0 8M' -c flush "$(nbd vol)"

j=$(A -o json snapshot create snap1 --lun vol --meta csi.storage.k8s.io/volumesnapshot/name=s1)
expect_eq "snapshot: source" "$(jq -r .source_lun <<<"$j")" "vol"
expect_eq "snapshot: size" "$(jq -r .size_bytes <<<"$j")" "$((64 << 20))"
expect_eq "snapshot: ready" "$(jq -r .ready_to_use <<<"$j")" "true"
expect_eq "snapshot: tier" "$(jq -r .tier <<<"$j")" "TIER_CLASS_SSD"
expect_eq "snapshot: owner" "$(jq -r .owner <<<"$j")" "team-a"
expect_eq "snapshot: metadata" "$(jq -r '.metadata["csi.storage.k8s.io/volumesnapshot/name"]' <<<"$j")" "s1"
id=$(jq -r .id <<<"$j")
check "snapshot: has an id" test -n "$id"
check "snapshot: creation time is now" \
  test "$(( $(date +%s) - $(jq -r .created_unix_nanos <<<"$j") / 1000000000 ))" -le 60
expect_eq "create again: same snapshot" "$(A -o json snapshot create snap1 --lun vol | jq -r .id)" "$id"

check "write B (qemu-io)" qemu-io -f raw -c 'write -P 0xbb 0 4M' -c flush "$(nbd vol)"
A lun create restored --size 64MiB --from-snapshot snap1 >/dev/null
check "restore reads A where B was written" reads restored 0xaa 0 4M
check "restore reads A elsewhere" reads restored 0xaa 4M 4M
check "source reads B" reads vol 0xbb 0 4M
check "source still reads A past B" reads vol 0xaa 4M 4M
check "restore writes on its own" qemu-io -f raw -c 'write -P 0xcc 0 1M' "$(nbd restored)"
check "snapshot unchanged by the restore's write" \
  bash -c "'$ADMIN' --insecure --server '$(jq -r .grpc "$work/ready")' lun create r2 --size 64MiB --from-snapshot snap1 >/dev/null"
check "second restore reads A" reads r2 0xaa 0 8M

# nbdcopy of the restore equals the snapshot's image (A then zeros)
head -c 8M /dev/zero | tr '\0' '\252' >"$work/a.img"
head -c 56M /dev/zero >>"$work/a.img"
check "nbdcopy out of a restore" nbdcopy "$(nbd r2)" "$work/r2.img"
expect_eq "restore image is the snapshot" "$(sha256sum <"$work/r2.img")" "$(sha256sum <"$work/a.img")"

j=$(A -o json lun create cold --size 128MiB --from-snapshot snap1 --tier sata)
check "restore to another tier moves it" wait_until 60 migration_done cold
expect_eq "restore on sata" "$(A -o json lun get cold | jq -r .tier)" "TIER_CLASS_SATA"
check "sata restore reads A" reads cold 0xaa 0 8M
check "sata restore reads zeros past the snapshot" reads cold 0 64M 1M

# space: B is the source's own, A under B only the snapshot's and the restores'
j=$(A -o json lun get vol)
expect_eq "source: B is exclusive" "$(jq -r .space.exclusive_bytes <<<"$j")" "$((4 << 20))"
expect_eq "source: A past B is shared" "$(jq -r .space.shared_bytes <<<"$j")" "$((4 << 20))"
j=$(A -o json snapshot get snap1)
expect_eq "snapshot: all shared (with the source and the restores)" \
  "$(jq -r .shared_bytes <<<"$j")" "$((8 << 20))"

# errors name the field
A lun create other --size 16MiB >/dev/null
out=$(A snapshot create snap1 --lun other 2>&1); rc=$?
expect_eq "name taken by another source exits 1" "$rc" "1"
expect_contains "ALREADY_EXISTS naming name" "$out" "ALREADY_EXISTS: name: "
out=$(A snapshot create s-x --lun nope 2>&1)
expect_contains "missing source: NOT_FOUND naming source_lun" "$out" "NOT_FOUND: source_lun: "
out=$(A snapshot create 'bad/name' --lun vol 2>&1)
expect_contains "bad name: INVALID_ARGUMENT naming name" "$out" "INVALID_ARGUMENT: name: "
out=$(A lun create small --size 1MiB --from-snapshot snap1 2>&1)
expect_contains "restore too small: OUT_OF_RANGE naming size_bytes" "$out" "OUT_OF_RANGE: size_bytes: "
out=$(A lun create x --size 64MiB --from-snapshot nope 2>&1)
expect_contains "restore of a missing snapshot: NOT_FOUND naming from_snapshot" "$out" \
  "NOT_FOUND: from_snapshot: "
out=$(A lun create x --size 64MiB --from-snapshot snap1 --clone-from vol 2>&1)
expect_contains "from_snapshot with clone_from: INVALID_ARGUMENT" "$out" \
  "INVALID_ARGUMENT: from_snapshot: "
out=$(A snapshot get nope 2>&1)
expect_contains "get of a missing snapshot: NOT_FOUND" "$out" "NOT_FOUND"
check "delete of a missing snapshot succeeds" A snapshot delete nope
out=$(A snapshot create 2>&1); rc=$?
expect_eq "snapshot create without NAME is usage (2)" "$rc" "2"

# own namespace, not exported
check "a snapshot may have a LUN's name" A snapshot create other --lun vol
check "the LUN of that name is still a LUN" reads other 0 0 1M
out=$(nbdinfo "$(nbd snap1)" 2>&1); rc=$?
check "a snapshot is not an NBD export" test "$rc" -ne 0
list=$(nbdinfo --list --json "nbd://$(jq -r '.nbd[0]' "$work/ready")" | jq -r '.exports[]."export-name"')
check "export list has no snapshot" bash -c "! grep -qx snap1 <<<'$list'"

A snapshot create snap2 --lun vol >/dev/null
expect_eq "list by source" "$(A -o json snapshot list --lun vol | jq -r '[.snapshots[].name] | join(",")')" \
  "other,snap1,snap2"
expect_contains "table list" "$(A snapshot list)" "snap2"


# a LUN with snapshots cannot move to another device
out=$(A lun migrate vol --to-device 127.0.0.1:1 2>&1)
expect_contains "device move refused naming the snapshots" "$out" \
  "FAILED_PRECONDITION: LUN 'vol' has snapshots (other, snap1, snap2)"

# maintenance refuses new snapshots, answers retries
A device maintenance on --reason test >/dev/null
out=$(A snapshot create snap3 --lun vol 2>&1)
expect_contains "maintenance: new snapshot refused" "$out" "FAILED_PRECONDITION: name: snapshot snap3"
check "maintenance: retry of an existing snapshot answered" A snapshot create snap2 --lun vol
A device maintenance off >/dev/null

# deleting the LUN keeps its snapshots
A lun delete vol >/dev/null
check "snapshot outlives its LUN" A snapshot get snap1
A lun create after --size 64MiB --from-snapshot snap1 >/dev/null
check "restore after the LUN is gone reads A" reads after 0xaa 0 8M
o=$(A -o json device status | jq -r '.owners[] | select(.owner == "team-a") | .space.unique_bytes')
check "owner: its snapshots' space still counts once the LUN is gone" test "${o:-0}" -gt 0

# restart: snapshots and restores persist
check "daemon stops" stop_stored
check "daemon restarts" start_stored
expect_eq "snapshot id survives a restart" "$(A -o json snapshot get snap1 | jq -r .id)" "$id"
check "restore after restart reads A" reads restored 0xaa 1M 7M
A lun create after-restart --size 64MiB --from-snapshot snap1 >/dev/null
check "new restore after restart reads A" reads after-restart 0xaa 0 8M

for s in snap1 snap2 other; do A snapshot delete "$s" >/dev/null; done
expect_eq "all snapshots deleted" "$(A -o json snapshot list | jq '.snapshots | length')" "0"
check "restores stay after their snapshot is gone" reads after 0xaa 0 8M

check "daemon stops cleanly" stop_stored
finish
