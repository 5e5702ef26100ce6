#!/usr/bin/env bash
# LUN management through strata-admin against a real strata-stored: create (and
# idempotent re-create), list with paging, get, resize, access lists, stats, a
# live tier move, delete; every bad request gets a clear error and exit code; LUNs
# survive a restart with their WWNs and metadata. Dedup switched per LUN (set-dedup,
# with and without --fold) under real qemu-io writes shows in the space stats.
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
    --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" 2>>"$work/stored.log" &
  pid=$!
  wait_until 30 test -s "$work/ready"
}
stop_stored() { stop_within 30 "$pid"; pid=; }

check "daemon becomes ready" start_stored
A() { "$ADMIN" --insecure --server "$(jq -r .grpc "$work/ready")" "$@"; }

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
"$STORED" --device nodedup --tier "ssd=$work/nd:1GiB" --dedup off --grpc 127.0.0.1:0 --insecure \
  --ready-file "$work/nd.ready" 2>>"$work/stored.log" &
nd_pid=$!
check "a --dedup off device starts" wait_until 30 test -s "$work/nd.ready"
nd=$(jq -r .grpc "$work/nd.ready")
expect_eq "device reports dedup off" "$("$ADMIN" --insecure --server "$nd" -o json device status | jq -r .dedup_enabled)" "false"
out=$("$ADMIN" --insecure --server "$nd" lun create d --size 1MiB --dedup 2>&1); rc=$?
expect_eq "dedup LUN on a dedup-off device exits 1" "$rc" "1"
expect_contains "and says why" "$out" "FAILED_PRECONDITION: dedup: de-duplication is off on device nodedup"
check "plain LUNs still fine there" "$ADMIN" --insecure --server "$nd" lun create d --size 1MiB
out=$("$ADMIN" --insecure --server "$nd" lun set-dedup d on 2>&1); rc=$?
expect_eq "set-dedup on, on a dedup-off device, exits 1" "$rc" "1"
expect_contains "and says why" "$out" "FAILED_PRECONDITION: dedup: de-duplication is off on device nodedup"
check "set-dedup off is fine there" "$ADMIN" --insecure --server "$nd" lun set-dedup d off
stop_within 30 "$nd_pid"
out=$("$STORED" --device x --tier "ssd=$work/x2" --dedup maybe --grpc 127.0.0.1:0 --insecure 2>&1); rc=$?
expect_contains "bad --dedup named" "$out" "--dedup: 'maybe' is not one of on, off"

# Metadata: kept with the LUN, shown by get and list, not part of create's idempotence.
pvc=csi.storage.k8s.io/pvc/name
j=$(A -o json lun create meta-1 --size 16MiB --meta "$pvc=data-0" \
  --meta csi.storage.k8s.io/pvc/namespace=shop)
expect_eq "create: metadata" "$(jq -cS .metadata <<<"$j")" \
  '{"csi.storage.k8s.io/pvc/name":"data-0","csi.storage.k8s.io/pvc/namespace":"shop"}'
j=$(A -o json lun create meta-1 --size 16MiB --meta "$pvc=other")
expect_eq "re-create with other metadata keeps the first" "$(jq -r --arg k "$pvc" '.metadata[$k]' <<<"$j")" "data-0"
expect_contains "get shows metadata" "$(A lun get meta-1)" "csi.storage.k8s.io/pvc/namespace=shop"
expect_contains "list shows metadata" "$(A lun list)" "$pvc=data-0"
expect_eq "list JSON has metadata" \
  "$(A -o json lun list | jq -r --arg k "$pvc" '.luns[] | select(.name == "meta-1") | .metadata[$k]')" "data-0"
long_key=$(printf 'k%.0s' $(seq 254))
out=$(A lun create meta-2 --size 16MiB --meta "$long_key=x" 2>&1); rc=$?
expect_eq "too long a key exits 1" "$rc" "1"
expect_contains "and names metadata and the key" "$out" "INVALID_ARGUMENT: metadata: key '$long_key'"
out=$(A lun create meta-2 --size 16MiB --meta novalue 2>&1); rc=$?
expect_eq "--meta without '=' exits 2" "$rc" "2"
expect_contains "and says so" "$out" "--meta: 'novalue' is not KEY=VALUE"

# Dedup switched per LUN, under real NBD writes (qemu-io): 1 MiB of one byte is 256
# identical blocks.
p1=$(jq -r '.nbd[0]' "$work/ready")
space() { A -o json lun get dd | jq -r ".space.$1"; }
qwrite() { qemu-io -f raw -c "write -P 0x5a $1 1M" "nbd://$p1/dd" >/dev/null; }
A lun create dd --size 16MiB --owner team-d >/dev/null
check "qemu-io: write with dedup off" qwrite 0
expect_eq "dedup off: nothing shared" "$(space unique_bytes)" "$((1 << 20))"
j=$(A -o json lun set-dedup dd on)
expect_eq "set-dedup on" "$(jq -r .dedup <<<"$j")" "true"
expect_eq "set-dedup on again is idempotent" "$(A -o json lun set-dedup dd on | jq -r .dedup)" "true"
check "qemu-io: write with dedup on" qwrite 1M
expect_eq "dedup on: the new MiB is one shared block" "$(space unique_bytes)" "$(((1 << 20) + 4096))"
check "the LUN's dedup ratio rose" jq -e '.space.dedup_ratio > 1.9' <<<"$(A -o json lun get dd)"
check "and its owner's" jq -e '.owners[] | select(.owner == "team-d") | .space.dedup_ratio > 1.9' \
  <<<"$(A -o json device status)"
j=$(A -o json lun set-dedup dd off)
expect_eq "set-dedup off" "$(jq -r .dedup <<<"$j")" "false"
check "qemu-io: write with dedup off again" qwrite 2M
expect_eq "dedup off again: more duplicates share nothing" "$(space unique_bytes)" "$(((2 << 20) + 4096))"
out=$(qemu-io -f raw -r -c 'read -P 0x5a 0 3M' "nbd://$p1/dd" 2>&1)
check "all of it reads back right" test "$(grep -c 'Pattern verification failed' <<<"$out")" -eq 0
check "set-dedup on --fold" A lun set-dedup dd on --fold
folded() { [ "$(space unique_bytes)" -le 8192 ]; }
check "the fold pass shares the blocks written with dedup off" wait_until 30 folded
out=$(qemu-io -f raw -r -c 'read -P 0x5a 0 3M' "nbd://$p1/dd" 2>&1)
check "folded blocks read back right" test "$(grep -c 'Pattern verification failed' <<<"$out")" -eq 0
out=$(A lun set-dedup nope on 2>&1); rc=$?
expect_eq "set-dedup of an unknown LUN exits 1" "$rc" "1"
expect_contains "and is NOT_FOUND" "$out" "NOT_FOUND: LUN 'nope' not found"
out=$(A lun set-dedup dd maybe 2>&1); rc=$?
expect_eq "set-dedup with a bad word exits 2" "$rc" "2"
out=$(A lun set-dedup dd off --fold 2>&1); rc=$?
expect_contains "--fold with off is INVALID_ARGUMENT" "$out" "INVALID_ARGUMENT: fold_existing"

# Stats: throughput over the sampling window, idle seconds, tier.
writing() {
  qwrite 4M && A -o json lun stats dd | jq -e '.write.bytes_per_second > 0' >/dev/null
}
check "stats: write bytes/s once writes land" wait_until 30 writing
j=$(A -o json lun stats dd)
expect_eq "stats: tier" "$(jq -r .tier <<<"$j")" "TIER_CLASS_SSD"
check "stats: idle seconds small right after I/O" jq -e '(.idle_seconds | tonumber) < 30' <<<"$j"
out=$(A lun stats dd)
expect_contains "stats table: idle" "$out" "idle:  "
expect_contains "stats table: tier" "$out" "tier:  ssd"
expect_contains "stats table: bytes/s" "$out" "BYTES/S"

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
expect_eq "metadata survives restart" "$(A -o json lun get meta-1 | jq -cS .metadata)" \
  '{"csi.storage.k8s.io/pvc/name":"data-0","csi.storage.k8s.io/pvc/namespace":"shop"}'
expect_eq "set-dedup survives restart" "$(A -o json lun get dd | jq -r .dedup)" "true"
out=$(qemu-io -f raw -r -c 'read -P 0x5a 0 3M' "nbd://$(jq -r '.nbd[0]' "$work/ready")/dd" 2>&1)
check "folded blocks read back right after restart" \
  test "$(grep -c 'Pattern verification failed' <<<"$out")" -eq 0
check "delete" A lun delete web-1
out=$(A lun delete web-1 2>&1)
expect_contains "second delete is NOT_FOUND" "$out" "NOT_FOUND"
expect_eq "device counts LUNs" "$(A -o json device status | jq -r .lun_count)" "7"
stop_stored

finish
