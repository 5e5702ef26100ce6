#!/usr/bin/env bash
# Mutual TLS and authorization on strata-stored's management API, against real daemons with
# certificates from tests/lib/test_ca.sh: a daemon with neither TLS nor --insecure refuses to
# start; strata-admin works with an admin certificate and fails without one, with one of another
# CA, or in plaintext; a tenant sees and uses only LUNs of its owners (PERMISSION_DENIED naming
# the identity and the LUN otherwise); an identity the policy does not list is refused; a
# revoked certificate is refused at the next call once the CRL is rewritten (no restart); a new
# server certificate (Secret-style symlink swap) is served without a restart; a LUN moves to a
# second device over mTLS with the first device's own certificate (role "device" there); a
# client given --tls-crl refuses a device whose server certificate is revoked.
set -uo pipefail
STORED=$1
ADMIN=$2
here=$(dirname "$0")
. "$here/../lib/assert.sh"
. "$here/../lib/test_ca.sh"

work=$(mktemp -d /tmp/strata-grpc-tls.XXXXXX)
pid_a=
pid_b=
pid_c=
cleanup() {
  [ -n "$pid_a" ] && kill "$pid_a" 2>/dev/null
  [ -n "$pid_b" ] && kill "$pid_b" 2>/dev/null
  [ -n "$pid_c" ] && kill "$pid_c" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ca=$work/ca
test_ca_init "$ca"
# Device certificates serve and also authenticate the device's own moves (both usages).
test_ca_issue "$ca" stored-a both IP:127.0.0.1 DNS:localhost
test_ca_issue "$ca" stored-a-renewed both IP:127.0.0.1 DNS:localhost
test_ca_issue "$ca" stored-b both IP:127.0.0.1 DNS:localhost
test_ca_issue "$ca" admin client
test_ca_issue "$ca" tenant-a client
test_ca_issue "$ca" tenant-b client URI:spiffe://strata.test/ns/team-b/sa/app
test_ca_issue "$ca" stranger client
# A device certificate that names another host: refused whether or not the client checks a CRL
# (with --tls-crl a custom verifier replaces gRPC's default one: the host name is still checked).
test_ca_issue "$ca" stored-elsewhere both DNS:elsewhere.example
other=$work/other-ca
test_ca_init "$other"
test_ca_issue "$other" admin client

# Device a's serving certificate as a Kubernetes Secret volume lays it out: the files are
# symlinks into a directory that an update swaps atomically.
mkdir -p "$work/secret-a/v1"
cp "$ca/stored-a/"{tls.crt,tls.key,ca.crt} "$work/secret-a/v1/"
ln -s v1 "$work/secret-a/..data"
for f in tls.crt tls.key ca.crt; do ln -s "..data/$f" "$work/secret-a/$f"; done

cat >"$work/authz-a.json" <<'JSON'
{"identities": [
  {"identity": "admin", "role": "admin"},
  {"identity": "tenant-a", "role": "tenant", "owners": ["team-a"]},
  {"identity": "spiffe://strata.test/ns/team-b/sa/app", "role": "tenant", "owners": ["team-b*"]}
]}
JSON
cat >"$work/authz-b.json" <<'JSON'
{"identities": [
  {"identity": "admin", "role": "admin"},
  {"identity": "stored-a", "role": "device"}
]}
JSON

out=$("$STORED" --device x --tier "ssd=$work/x" --grpc 127.0.0.1:0 2>&1); rc=$?
expect_eq "neither TLS nor --insecure: exit 2" "$rc" "2"
expect_contains "and says plaintext needs --insecure" "$out" "plaintext only with an explicit --insecure"
out=$("$STORED" --device x --tier "ssd=$work/x" --grpc 127.0.0.1:0 --insecure \
  --tls-cert "$ca/stored-a/tls.crt" 2>&1); rc=$?
expect_eq "--insecure with --tls-cert: exit 2" "$rc" "2"
out=$("$STORED" --device x --tier "ssd=$work/x" --grpc 127.0.0.1:0 --tls-cert "$ca/stored-a/tls.crt" \
  --tls-key "$ca/stored-a/tls.key" 2>&1); rc=$?
expect_contains "TLS without a client CA names --tls-client-ca" "$out" "--tls-client-ca: is required"
echo '{"identities": [{"identity": "t", "role": "tenant"}]}' >"$work/bad-authz.json"
out=$("$STORED" --device x --tier "ssd=$work/x" --grpc 127.0.0.1:0 --tls-cert "$ca/stored-a/tls.crt" \
  --tls-key "$ca/stored-a/tls.key" --tls-client-ca "$ca/ca.crt" --authz "$work/bad-authz.json" 2>&1)
expect_contains "a bad policy names the field" "$out" "identities[0].owners: a tenant needs at least one owner"

start() {  # NAME CERTDIR POLICY [FLAGS...]
  rm -f "$work/$1.ready"
  "$STORED" --device "$1" --tier "ssd=$work/$1-ssd:1GiB" --tier "sata=$work/$1-sata:1GiB" \
    --grpc 127.0.0.1:0 --ready-file "$work/$1.ready" --tls-cert "$2/tls.crt" \
    --tls-key "$2/tls.key" --tls-client-ca "$2/ca.crt" --tls-crl "$ca/ca.crl" --authz "$3" \
    "${@:4}" 2>>"$work/$1.log" &
}
start a "$work/secret-a" "$work/authz-a.json"
pid_a=$!
# b serves NBD (plaintext): a's moves there send their data into a move export
# (OpenMoveExport, authorised for the device role like WriteLunData).
start b "$ca/stored-b" "$work/authz-b.json" --portal 127.0.0.1:0
pid_b=$!
check "device a ready with TLS" wait_until 30 test -s "$work/a.ready"
check "device b ready with TLS" wait_until 30 test -s "$work/b.ready"
ga=$(jq -r .grpc "$work/a.ready")
gb=$(jq -r .grpc "$work/b.ready")

# as WHO SERVER ARGS...: strata-admin with WHO's certificate (from our CA).
as() {
  local who=$1 server=$2
  shift 2
  "$ADMIN" --server "$server" --timeout 5 --tls-cert "$ca/$who/tls.crt" --tls-key "$ca/$who/tls.key" \
    --tls-ca "$ca/ca.crt" "$@"
}

j=$(as admin "$ga" -o json device status)
expect_eq "admin: device status over mTLS" "$(jq -r .name <<<"$j")" "a"
check "admin: creates a LUN of team-a" as admin "$ga" lun create vol-a --size 16MiB --owner team-a
check "admin: creates a LUN of team-b" as admin "$ga" lun create vol-b --size 16MiB --owner team-b-db

out=$("$ADMIN" --server "$ga" --timeout 5 --tls-ca "$ca/ca.crt" device status 2>&1); rc=$?
expect_eq "no client certificate: exit 1" "$rc" "1"
check "no client certificate: UNAVAILABLE or UNAUTHENTICATED" \
  grep -qE "UNAVAILABLE|UNAUTHENTICATED" <<<"$out"
out=$("$ADMIN" --server "$ga" --timeout 5 --tls-cert "$other/admin/tls.crt" \
  --tls-key "$other/admin/tls.key" --tls-ca "$ca/ca.crt" device status 2>&1); rc=$?
expect_eq "certificate of another CA: exit 1" "$rc" "1"
check "certificate of another CA: UNAVAILABLE or UNAUTHENTICATED" \
  grep -qE "UNAVAILABLE|UNAUTHENTICATED" <<<"$out"
out=$("$ADMIN" --server "$ga" --timeout 5 --insecure device status 2>&1); rc=$?
expect_eq "plaintext against TLS: exit 1" "$rc" "1"
out=$("$ADMIN" --server "$ga" device status 2>&1); rc=$?
expect_eq "strata-admin with neither TLS nor --insecure: exit 2" "$rc" "2"
expect_contains "and says so" "$out" "plaintext to the management API only with an explicit --insecure"
out=$(as stranger "$ga" lun list 2>&1); rc=$?
expect_contains "an identity not in the policy: PERMISSION_DENIED" "$out" \
  "PERMISSION_DENIED: identity 'stranger' is not in the device's access policy"

# Tenants.
expect_eq "tenant-a lists only its LUNs" "$(as tenant-a "$ga" -o json lun list | jq -r '[.luns[].name] | join(",")')" "vol-a"
expect_eq "tenant-b (by URI SAN, owner prefix) lists only its LUNs" \
  "$(as tenant-b "$ga" -o json lun list | jq -r '[.luns[].name] | join(",")')" "vol-b"
check "tenant-a gets its LUN" as tenant-a "$ga" lun get vol-a
check "tenant-a resizes its LUN" as tenant-a "$ga" lun resize vol-a --size 32MiB
check "tenant-a creates a LUN of its owner" as tenant-a "$ga" lun create vol-a2 --size 8MiB --owner team-a
check "tenant-a snapshots its LUN" as tenant-a "$ga" snapshot create snap-a --lun vol-a
check "tenant-a moves its LUN between tiers" as tenant-a "$ga" lun migrate vol-a --tier sata --wait
for cmd in "lun get vol-b" "lun stats vol-b" "lun resize vol-b --size 64MiB" "lun delete vol-b" \
  "lun access vol-b --allow 10.0.0.1" "lun migrate vol-b --tier sata" "snapshot create s --lun vol-b" \
  "lun create c --size 8MiB --owner team-a --clone-from vol-b"; do
  # shellcheck disable=SC2086 # the command words split on purpose (no glob characters)
  out=$(as tenant-a "$ga" $cmd 2>&1); rc=$?
  expect_eq "tenant-a: $cmd: exit 1" "$rc" "1"
  expect_contains "tenant-a: $cmd: PERMISSION_DENIED naming identity and LUN" "$out" \
    "PERMISSION_DENIED: identity 'tenant-a' (tenant) may not"
  expect_contains "tenant-a: $cmd: names vol-b" "$out" "'vol-b'"
done
out=$(as tenant-a "$ga" lun create x --size 8MiB --owner team-b-db 2>&1)
expect_contains "tenant-a cannot create for another owner" "$out" \
  "PERMISSION_DENIED: identity 'tenant-a' (tenant) may not create LUN 'x' for owner 'team-b-db'"
out=$(as tenant-a "$ga" lun list --owner team-b-db 2>&1)
expect_contains "tenant-a cannot list another owner" "$out" "PERMISSION_DENIED"
out=$(as tenant-a "$ga" device status 2>&1)
expect_contains "tenant-a cannot read the device status" "$out" \
  "PERMISSION_DENIED: identity 'tenant-a' (tenant) may not call GetDeviceStatus"
out=$(as tenant-a "$ga" lun migrate vol-a --to-device "$gb" 2>&1)
expect_contains "tenant-a cannot move a LUN to another device" "$out" "PERMISSION_DENIED"
expect_eq "tenant-b does not see tenant-a's snapshot" \
  "$(as tenant-b "$ga" -o json snapshot list | jq -r '.snapshots // [] | length')" "0"
expect_eq "vol-b untouched" "$(as admin "$ga" -o json lun get vol-b | jq -r .size_bytes)" "$((16 << 20))"

# Device-to-device move: a presents its own certificate (CN stored-a, role device on b).
j=$(as admin "$ga" -o json lun migrate vol-a2 --to-device "$gb" --wait)
expect_eq "move to device b over mTLS" "$(jq -r .state <<<"$j")" "MIGRATION_STATE_DONE"
expect_eq "b holds the LUN" "$(as admin "$gb" -o json lun get vol-a2 | jq -r .owner)" "team-a"
expect_contains "the move's data went over NBD (OpenMoveExport allowed to the device role)" \
  "$(cat "$work/a.log")" "copying over NBD"
out=$(as stored-a "$gb" lun list 2>&1)
expect_contains "a device identity may not list LUNs" "$out" \
  "PERMISSION_DENIED: identity 'stored-a' (device) may not call ListLuns"

# The NBD access lists' spelling (CN=, URI:) names certificates in the policy too; a
# rewritten policy applies from the next call; one certificate named twice is refused.
cp "$work/authz-a.json" "$work/authz-a.orig.json"
swap_policy() { cp "$1" "$work/authz-a.json.new" && mv "$work/authz-a.json.new" "$work/authz-a.json"; }
cat >"$work/authz-prefixed.json" <<'JSON'
{"identities": [
  {"identity": "CN=admin", "role": "admin"},
  {"identity": "CN=tenant-a", "role": "tenant", "owners": ["team-a"]},
  {"identity": "URI:spiffe://strata.test/ns/team-b/sa/app", "role": "tenant", "owners": ["team-b*"]},
  {"identity": "CN=stranger", "role": "tenant", "owners": ["team-s"]}
]}
JSON
swap_policy "$work/authz-prefixed.json"
expect_eq "CN=stranger, now listed: its (empty) list of LUNs" \
  "$(as stranger "$ga" -o json lun list | jq -r '.luns // [] | length')" "0"
expect_eq "URI:... names tenant-b: only its LUNs" \
  "$(as tenant-b "$ga" -o json lun list | jq -r '[.luns[].name] | join(",")')" "vol-b"
check "CN=admin names the admin" as admin "$ga" device status
jq '.identities += [{"identity": "CN=tenant-b", "role": "admin"}]' "$work/authz-prefixed.json" \
  >"$work/authz-twice.json"
swap_policy "$work/authz-twice.json"
out=$(as tenant-b "$ga" lun list 2>&1); rc=$?
expect_eq "a certificate two entries name: exit 1" "$rc" "1"
expect_contains "a certificate two entries name: PERMISSION_DENIED naming both" "$out" \
  "is named by 2 entries of the device's access policy ('CN=tenant-b', 'URI:spiffe://strata.test/ns/team-b/sa/app')"
swap_policy "$work/authz-a.orig.json"
out=$(as stranger "$ga" lun list 2>&1)
expect_contains "the original policy back: stranger refused again" "$out" \
  "PERMISSION_DENIED: identity 'stranger' is not in the device's access policy"

# Revocation: rewriting the CRL refuses the certificate from the next call on.
check "tenant-a works before revocation" as tenant-a "$ga" lun get vol-a
test_ca_revoke "$ca" tenant-a
out=$(as tenant-a "$ga" lun get vol-a 2>&1); rc=$?
expect_eq "revoked: exit 1" "$rc" "1"
expect_contains "revoked: UNAUTHENTICATED naming the identity" "$out" \
  "UNAUTHENTICATED: client certificate of 'tenant-a'"
check "others unaffected by tenant-a's revocation" as admin "$ga" lun get vol-a

# Rotation: a new serving certificate, swapped in as the kubelet updates a Secret volume.
served_serial() {
  openssl s_client -connect "$ga" -cert "$ca/admin/tls.crt" -key "$ca/admin/tls.key" \
    -CAfile "$ca/ca.crt" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}
old=$(openssl x509 -in "$ca/stored-a/tls.crt" -noout -serial)
new=$(openssl x509 -in "$ca/stored-a-renewed/tls.crt" -noout -serial)
expect_eq "serves its first certificate" "$(served_serial)" "$old"
mkdir -p "$work/secret-a/v2"
cp "$ca/stored-a-renewed/"{tls.crt,tls.key,ca.crt} "$work/secret-a/v2/"
ln -s v2 "$work/secret-a/..data_tmp"
mv -T "$work/secret-a/..data_tmp" "$work/secret-a/..data"
is_new() { [ "$(served_serial)" = "$new" ]; }
check "serves the renewed certificate without a restart" wait_until 20 is_new
check "admin works after rotation" as admin "$ga" lun get vol-a
check "device a still running" kill -0 "$pid_a"

# A client's --tls-crl: the device's own server certificate revoked -> clients that check refuse
# to connect (at the handshake), clients that do not still connect; a CRL that does not parse
# stops the client before it dials.
as_crl() { as "$@" --tls-crl "$ca/ca.crl"; }
check "admin with --tls-crl: the device's certificate is not revoked" as_crl admin "$ga" lun get vol-a
test_ca_revoke "$ca" stored-a-renewed
out=$(as_crl admin "$ga" lun get vol-a 2>&1); rc=$?
expect_eq "device certificate revoked, client checks: exit 1" "$rc" "1"
expect_contains "the client says why" "$out" "server certificate (serial"
expect_contains "... and names the CRL" "$out" "is revoked (--tls-crl)"
check "a client without --tls-crl still connects" as admin "$ga" lun get vol-a
start c "$ca/stored-elsewhere" "$work/authz-b.json"
pid_c=$!
check "device c (certificate for elsewhere.example) ready" wait_until 30 test -s "$work/c.ready"
gc=$(jq -r .grpc "$work/c.ready")
out=$(as admin "$gc" device status 2>&1); rc=$?
expect_eq "a certificate not naming 127.0.0.1: refused without --tls-crl" "$rc" "1"
out=$(as_crl admin "$gc" device status 2>&1); rc=$?
expect_eq "... and with --tls-crl (host name still checked)" "$rc" "1"
stop_within 30 "$pid_c"; pid_c=
echo "not a CRL" >"$work/bad.crl"
out=$(as admin "$ga" --tls-crl "$work/bad.crl" lun get vol-a 2>&1); rc=$?
expect_eq "a CRL that does not parse: exit 2 (usage), nothing dialled" "$rc" "2"
expect_contains "naming the flag" "$out" "--tls-crl"

stop_within 30 "$pid_a"; pid_a=
stop_within 30 "$pid_b"; pid_b=
finish
