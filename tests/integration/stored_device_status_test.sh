#!/usr/bin/env bash
# strata-stored + strata-admin, real processes on loopback: a two-tier device comes
# up, reports its tiers over gRPC and Prometheus, keeps its identity across a
# restart, stops cleanly on SIGTERM; bad flags and an absent server get clear errors.
set -uo pipefail
STORED=$1
ADMIN=$2
. "$(dirname "$0")/../lib/assert.sh"

work=$(mktemp -d /tmp/strata-stored-test.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_stored() {
  rm -f "$work/ready"
  "$STORED" --device it-dev --tier "ssd=$work/ssd:10GiB" --tier "sata=$work/sata:100GiB:0.00002" \
    --portal 127.0.0.1:0 --portal 127.0.0.2:0 \
    --grpc 127.0.0.1:0 --insecure --metrics 127.0.0.1:0 --ready-file "$work/ready" \
    2>"$work/stored.log" &
  pid=$!
  wait_until 30 test -s "$work/ready"
}

check "daemon becomes ready" start_stored
addr=$(jq -r .grpc "$work/ready")

json=$("$ADMIN" --insecure --server "$addr" -o json device status)
expect_eq "device name" "$(jq -r .name <<<"$json")" "it-dev"
expect_eq "state" "$(jq -r .state <<<"$json")" "DEVICE_STATE_ONLINE"
expect_eq "two tiers" "$(jq '.tiers | length' <<<"$json")" "2"
expect_eq "ssd capacity" "$(jq -r '.tiers[0].capacity_bytes' <<<"$json")" "$((10 << 30))"
expect_eq "sata class" "$(jq -r '.tiers[1].class' <<<"$json")" "TIER_CLASS_SATA"
expect_eq "sata price" "$(jq -r '.tiers[1].price_per_gib_hour' <<<"$json")" "2e-05"
expect_eq "total capacity" "$(jq -r .capacity_bytes <<<"$json")" "$((110 << 30))"
# Portals on port 0 (a fixed port such as 10809 collides with any other NBD server or test run
# on the host): the status must list what the daemon bound, as its ready file reports it.
expect_eq "portals" "$(jq -c .portals <<<"$json")" "$(jq -c .nbd "$work/ready")"
expect_contains "portals on both addresses" "$(jq -c .portals <<<"$json")" '"127.0.0.2:'
id1=$(jq -r .device_id <<<"$json")
check "tier directories created" test -d "$work/ssd" -a -d "$work/sata"
check "identity file written" test -s "$work/ssd/device.json"

table=$("$ADMIN" --insecure --server "$addr" device status)
expect_contains "table shows ssd tier" "$table" "ssd    10 GiB"
expect_contains "table shows state" "$table" "State:     Online"

# Port 0 for metrics too: the ready file says where they are.
metrics=$(curl -sf --max-time 10 "http://$(jq -r .metrics "$work/ready")/metrics")
expect_contains "metrics: sata capacity" "$metrics" \
  "strata_tier_capacity_bytes{device=\"it-dev\",tier=\"sata\"} 107374182400"
expect_contains "metrics: the copy starvation guard's raises" "$metrics" \
  "strata_copy_starvation_raises_total{device=\"it-dev\"} 0"
expect_contains "metrics: copy threads not raised" "$metrics" \
  "strata_copy_threads_raised{device=\"it-dev\"} 0"
expect_contains "metrics: no copy held back by the pacing" "$metrics" \
  "strata_copy_paced_seconds_total{device=\"it-dev\"} 0"

stop_within 30 "$pid"; rc=$?; pid=
expect_eq "SIGTERM stops with exit 0" "$rc" "0"

check "daemon restarts" start_stored
addr=$(jq -r .grpc "$work/ready")
id2=$("$ADMIN" --insecure --server "$addr" -o json device status | jq -r .device_id)
expect_eq "device id survives restart" "$id2" "$id1"
stop_within 30 "$pid"; pid=

# Bad input: exit 2, the message names the flag and the reason, nothing created.
out=$("$STORED" --device d --tier "nvme=$work/x" --grpc 127.0.0.1:0 --insecure 2>&1); rc=$?
expect_eq "bad tier class exits 2" "$rc" "2"
expect_contains "bad tier class message" "$out" "--tier 'nvme=$work/x': class: tier class 'nvme' is not one of ssd, sas, sata"
check "nothing created for a bad flag" test ! -e "$work/x"
out=$("$STORED" --device d --tier "ssd=$work/y" --tier "ssd=$work/z" --grpc 127.0.0.1:0 --insecure 2>&1); rc=$?
expect_eq "duplicate class exits 2" "$rc" "2"
expect_contains "duplicate class message" "$out" "class 'ssd' is given twice"
out=$("$STORED" --device d --tier "ssd=$work/y" --grpc nowhere --insecure 2>&1); rc=$?
expect_contains "bad --grpc message" "$out" "--grpc: 'nowhere' has no port"
out=$("$STORED" --tier "ssd=$work/y" --grpc 127.0.0.1:0 --insecure 2>&1); rc=$?
expect_contains "missing --device" "$out" "device"
expect_eq "missing --device exits 2" "$rc" "2"

# The admin CLI against nothing: exit 1 with the gRPC code.
out=$("$ADMIN" --insecure --server "127.0.0.1:$(free_port)" --timeout 2 device status 2>&1); rc=$?
expect_eq "absent server exits 1" "$rc" "1"
expect_contains "absent server says UNAVAILABLE or DEADLINE" "$out" "device status: "
out=$("$ADMIN" --insecure --server 127.0.0.1:1 lun frobnicate 2>&1); rc=$?
expect_eq "unknown command exits 2" "$rc" "2"
expect_contains "unknown command named" "$out" "unknown command 'lun frobnicate'"
out=$("$ADMIN" --insecure --server 127.0.0.1:1 -o yaml device status 2>&1); rc=$?
expect_contains "bad -o named" "$out" "--output: 'yaml' is not one of table, json"

finish
