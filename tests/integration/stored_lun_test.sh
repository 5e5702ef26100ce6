#!/usr/bin/env bash
# LUN management through strata-admin against a real strata-stored: create (and
# idempotent re-create), list with paging, get, resize, access lists, stats, a
# live tier move, delete; every bad request gets a clear error and exit code; LUNs
# survive a restart with their WWNs.
set -uo pipefail
STORED=$1
ADMIN=$2
. "$(dirname "$0")/../lib/assert.sh"

work=$(mktemp -d /tmp/strata-lun-test.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_stored() {
  rm -f "$work/ready"
  "$STORED" --device lun-dev --tier "ssd=$work/ssd:1GiB" --tier "sata=$work/sata:4GiB" \
    --grpc 127.0.0.1:0 --ready-file "$work/ready" 2>>"$work/stored.log" &
  pid=$!
  wait_until 30 test -s "$work/ready"
}
stop_stored() { stop_within 30 "$pid"; pid=; }

check "daemon becomes ready" start_stored
A() { "$ADMIN" --server "$(jq -r .grpc "$work/ready")" "$@"; }

j=$(A -o json lun create db-1 --size 64MiB --dedup --owner team-a --allow 10.0.0.0/24,127.0.0.1)
expect_eq "create: size" "$(jq -r .size_bytes <<<"$j")" "$((64 << 20))"
expect_eq "create: tier defaults to the first" "$(jq -r .tier <<<"$j")" "TIER_CLASS_SSD"
expect_eq "create: access" "$(jq -c .access.allowed_clients <<<"$j")" '["10.0.0.0/24","127.0.0.1"]'
wwn=$(jq -r .wwn <<<"$j")
check "create: NAA type 3 WWN" grep -qE '^naa\.3[0-9a-f]{15}$' <<<"$wwn"
j2=$(A -o json lun create db-1 --size 64MiB --dedup --owner team-a)
expect_eq "re-create is idempotent (same WWN)" "$(jq -r .wwn <<<"$j2")" "$wwn"
out=$(A lun create db-1 --size 128MiB 2>&1); rc=$?
expect_eq "conflicting re-create exits 1" "$rc" "1"
expect_contains "conflicting re-create is ALREADY_EXISTS" "$out" "ALREADY_EXISTS"

for i in 1 2 3 4 5; do A lun create "web-$i" --size 16MiB --tier sata >/dev/null; done
expect_eq "list pages through all LUNs" "$(A -o json lun list | jq '.luns | length')" "6"
expect_eq "list by owner" "$(A -o json lun list --owner team-a | jq -r '.luns[].name')" "db-1"
expect_contains "table list" "$(A lun list)" "web-3"

j=$(A -o json lun resize db-1 --size 128MiB)
expect_eq "resize grows" "$(jq -r .size_bytes <<<"$j")" "$((128 << 20))"
out=$(A lun resize db-1 --size 32MiB 2>&1); rc=$?
expect_eq "shrink exits 1" "$rc" "1"
expect_contains "shrink is INVALID_ARGUMENT naming size" "$out" "INVALID_ARGUMENT: size: "

j=$(A -o json lun access db-1 --allow '')
expect_eq "access emptied" "$(jq -c .access.allowed_clients <<<"$j")" "[]"
out=$(A lun access db-1 --allow 10.0.0.0/99 2>&1)
expect_contains "bad CIDR named" "$out" "allowed_clients[0]: '10.0.0.0/99'"

j=$(A -o json lun stats db-1)
expect_eq "stats: no I/O yet" "$(jq -r .read.ops <<<"$j")" "0"

j=$(A -o json lun migrate db-1 --tier sata --wait)
expect_eq "tier move done" "$(jq -r .state <<<"$j")" "MIGRATION_STATE_DONE"
expect_eq "LUN now on sata" "$(A -o json lun get db-1 | jq -r .tier)" "TIER_CLASS_SATA"
out=$(A lun migrate db-1 --tier sas 2>&1); rc=$?
expect_contains "move to an absent tier names it" "$out" "'sas' is not a disk group of this device"

# Dedup can be switched off for a whole device.
"$STORED" --device nodedup --tier "ssd=$work/nd:1GiB" --dedup off --grpc 127.0.0.1:0 \
  --ready-file "$work/nd.ready" 2>>"$work/stored.log" &
nd_pid=$!
check "a --dedup off device starts" wait_until 30 test -s "$work/nd.ready"
nd=$(jq -r .grpc "$work/nd.ready")
expect_eq "device reports dedup off" "$("$ADMIN" --server "$nd" -o json device status | jq -r .dedup_enabled)" "false"
out=$("$ADMIN" --server "$nd" lun create d --size 1MiB --dedup 2>&1); rc=$?
expect_eq "dedup LUN on a dedup-off device exits 1" "$rc" "1"
expect_contains "and says why" "$out" "FAILED_PRECONDITION: dedup: de-duplication is off on device nodedup"
check "plain LUNs still fine there" "$ADMIN" --server "$nd" lun create d --size 1MiB
stop_within 30 "$nd_pid"
out=$("$STORED" --device x --tier "ssd=$work/x2" --dedup maybe --grpc 127.0.0.1:0 2>&1); rc=$?
expect_contains "bad --dedup named" "$out" "--dedup: 'maybe' is not one of on, off"

# Errors: names, sizes, unknown LUNs.
out=$(A lun create 'bad name' --size 1GiB 2>&1); rc=$?
expect_eq "bad name exits 1" "$rc" "1"
expect_contains "bad name message" "$out" "INVALID_ARGUMENT: name: 'bad name'"
out=$(A lun create x --size 1000 2>&1)
expect_contains "size not a multiple of 512" "$out" "size: 1000 bytes is not a positive multiple of 512"
out=$(A lun create x --size 10XB 2>&1); rc=$?
expect_eq "unparseable size exits 2" "$rc" "2"
expect_contains "unparseable size names --size" "$out" "--size: '10XB' has unknown unit"
out=$(A lun create huge --size 2GiB 2>&1)
expect_contains "bigger than the tier is RESOURCE_EXHAUSTED" "$out" "RESOURCE_EXHAUSTED"
out=$(A lun get nope 2>&1); rc=$?
expect_eq "unknown LUN exits 1" "$rc" "1"
expect_contains "unknown LUN is NOT_FOUND" "$out" "NOT_FOUND: LUN 'nope' not found"
out=$(A lun create x 2>&1); rc=$?
expect_eq "missing --size exits 2" "$rc" "2"

# Maintenance: I/O and existing LUNs go on, new LUNs are refused; it survives a restart.
j=$(A -o json device maintenance on --reason "firmware upgrade")
expect_eq "maintenance on" "$(jq -r .state <<<"$j")" "DEVICE_STATE_MAINTENANCE"
out=$(A lun create new-1 --size 16MiB 2>&1); rc=$?
expect_eq "create in maintenance exits 1" "$rc" "1"
expect_contains "create in maintenance is FAILED_PRECONDITION" "$out" "FAILED_PRECONDITION: device lun-dev is in maintenance (firmware upgrade)"
check "existing LUNs still answer in maintenance" A lun get db-1

stop_stored
check "daemon restarts" start_stored
expect_eq "maintenance survives restart" "$(A -o json device status | jq -r .state_reason)" "firmware upgrade"
j=$(A -o json device maintenance off)
expect_eq "maintenance off" "$(jq -r .state <<<"$j")" "DEVICE_STATE_ONLINE"
check "create works again" A lun create new-1 --size 16MiB
check "and goes" A lun delete new-1
j=$(A -o json lun create web-2-clone --size 32MiB --clone-from web-2)
expect_eq "clone starts on its source's tier" "$(jq -r .tier <<<"$j")" "TIER_CLASS_SATA"
expect_eq "clone may be larger" "$(jq -r .size_bytes <<<"$j")" "$((32 << 20))"
out=$(A lun create c-x --size 16MiB --clone-from no-such 2>&1); rc=$?
expect_eq "clone of a missing LUN exits 1" "$rc" "1"
expect_contains "clone of a missing LUN is NOT_FOUND" "$out" "NOT_FOUND: source LUN 'no-such' not found"
out=$(A lun create c-y --size 1MiB --clone-from web-2 2>&1); rc=$?
expect_contains "clone smaller than its source is OUT_OF_RANGE" "$out" "OUT_OF_RANGE: size: "
check "clone goes" A lun delete web-2-clone
out=$(A device maintenance maybe 2>&1); rc=$?
expect_eq "bad maintenance word exits 2" "$rc" "2"
j=$(A -o json lun get db-1)
expect_eq "WWN survives restart" "$(jq -r .wwn <<<"$j")" "$wwn"
expect_eq "tier survives restart" "$(jq -r .tier <<<"$j")" "TIER_CLASS_SATA"
expect_eq "size survives restart" "$(jq -r .size_bytes <<<"$j")" "$((128 << 20))"
check "delete" A lun delete web-1
out=$(A lun delete web-1 2>&1)
expect_contains "second delete is NOT_FOUND" "$out" "NOT_FOUND"
expect_eq "device counts LUNs" "$(A -o json device status | jq -r .lun_count)" "5"
stop_stored

finish
