#!/usr/bin/env bash
# strata-stored's NBD over TLS (NBD_OPT_STARTTLS) with Debian's real clients:
# qemu-io (tls-creds-x509), nbdinfo and nbdcopy (nbds:// with tls-certificates=DIR)
# move data that matches; in --nbd-tls=require a plaintext client gets the spec's
# NBD_REP_ERR_TLS_REQD (and NBD_OPT_EXPORT_NAME ends the session); a client
# certificate from another CA, no client certificate, and a revoked one are refused;
# an export whose access list names certificate identities admits only those, and
# loses a removed one; credentials are re-read when their files change; in
# --nbd-tls=allow plaintext works where the access list does not name identities.
set -uo pipefail
STORED=$1
ADMIN=$2
here=$(dirname "$0")
. "$here/../lib/assert.sh"
. "$here/../lib/test_ca.sh"

work=$(mktemp -d /tmp/strata-stored-nbd-tls.XXXXXX)
pid=
pid2=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$pid2" ] && kill "$pid2" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Certificates: the server's, clients alice (URI SAN), bob, mallory (to be revoked),
# and eve from another CA. qemu and libnbd read a client directory holding
# ca-cert.pem, client-cert.pem and client-key.pem.
ca=$work/ca
test_ca_init "$ca"
test_ca_issue "$ca" srv server DNS:localhost IP:127.0.0.1
for c in alice bob mallory; do test_ca_issue "$ca" "$c" client "URI:spiffe://strata/$c"; done
test_ca_init "$work/other"
test_ca_issue "$work/other" eve client
client_dir() { # NAME CERT_DIR|"" -> $work/clients/NAME
  local d=$work/clients/$1
  mkdir -p "$d"
  ln -sf "$ca/ca.crt" "$d/ca-cert.pem"
  if [ -n "$2" ]; then
    ln -sf "$2/tls.crt" "$d/client-cert.pem"
    ln -sf "$2/tls.key" "$d/client-key.pem"
  fi
}
client_dir alice "$ca/alice"
client_dir bob "$ca/bob"
client_dir mallory "$ca/mallory"
client_dir eve "$work/other/eve"
client_dir nocert ""
# The server reads copies, so that the reload step can replace them.
mkdir -p "$work/srv"
cp "$ca/srv/tls.crt" "$ca/srv/tls.key" "$work/srv/"
cp "$ca/ca.crl" "$work/srv/ca.crl"

"$STORED" --device tls-dev --tier "ssd=$work/ssd:1GiB" --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure \
  --nbd-tls require --nbd-tls-cert "$work/srv/tls.crt" --nbd-tls-key "$work/srv/tls.key" \
  --nbd-tls-client-ca "$ca/ca.crt" --nbd-tls-crl "$work/srv/ca.crl" \
  --ready-file "$work/ready" 2>"$work/stored.log" &
pid=$!
check "daemon becomes ready" wait_until 30 test -s "$work/ready"
g=$(jq -r .grpc "$work/ready")
p=$(jq -r '.nbd[0]' "$work/ready")
A() { "$ADMIN" --insecure --server "$g" "$@"; }
A lun create vol --size 64MiB >/dev/null
A lun create plain --size 16MiB >/dev/null
A lun create alice-only --size 1MiB --allow-identity URI:spiffe://strata/alice >/dev/null
A lun create bob-net --size 1MiB --allow 10.9.9.9 --allow-identity CN=bob >/dev/null
uri() { echo "nbds://$p/$1?tls-certificates=$work/clients/$2"; }

# Flags that cannot work are refused at start, naming the flag.
out=$("$STORED" --device x --tier "ssd=$work/x:1GiB" --grpc 127.0.0.1:0 --insecure --nbd-tls sometimes 2>&1)
expect_contains "a bad --nbd-tls is refused" "$out" "--nbd-tls: 'sometimes' is not one of off, allow, require"
out=$("$STORED" --device x --tier "ssd=$work/x:1GiB" --grpc 127.0.0.1:0 --insecure --portal 127.0.0.1:0 \
  --nbd-tls require --nbd-tls-cert "$work/srv/tls.crt" --nbd-tls-key "$ca/alice/tls.key" 2>&1)
expect_contains "a key not matching the certificate is refused, naming the flag" "$out" "--nbd-tls-key '$ca/alice/tls.key'"
expect_contains "and the reason" "$out" "key values mismatch"

# nbdinfo over TLS: handshake, size, TLS negotiated.
json=$(nbdinfo --json "$(uri vol alice)")
expect_eq "nbdinfo over TLS: size" "$(jq '.exports[0]["export-size"]' <<<"$json")" "67108864"
expect_eq "nbdinfo over TLS: TLS negotiated" "$(jq '.TLS' <<<"$json")" "true"
list=$(nbdinfo --list --json "nbds://$p?tls-certificates=$work/clients/alice")
expect_eq "export list over TLS (alice sees her export, not bob's)" \
  "$(jq -c '[.exports[]["export-name"]] | sort' <<<"$list")" '["alice-only","plain","vol"]'

# qemu-io: patterns written and read back over TLS.
qio() { # CLIENT EXPORT qemu-io-args...
  local c=$1 e=$2
  shift 2
  qemu-io --object "tls-creds-x509,id=tls0,endpoint=client,dir=$work/clients/$c" \
    --image-opts "driver=nbd,host=127.0.0.1,port=${p##*:},export=$e,tls-creds=tls0" "$@"
}
qio alice vol -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 4M 64k' -c 'write -z 8M 1M' >/dev/null
check "qemu-io over TLS: write succeeded" test $? -eq 0
out=$(qio bob vol -r -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 4M 64k' -c 'read -P 0 8M 1M' 2>&1)
check "qemu-io over TLS: data matches" test "$(grep -c 'Pattern verification failed' <<<"$out")" -eq 0
expect_contains "qemu-io over TLS: reads done" "$out" "read 65536/65536 bytes"

# nbdcopy: a random image in over 4 TLS connections and back out.
head -c 16M /dev/urandom >"$work/in.img"
check "nbdcopy in over TLS (multi-conn)" nbdcopy --connections=4 "$work/in.img" "$(uri plain alice)"
check "nbdcopy out over TLS" nbdcopy "$(uri plain bob)" "$work/out.img"
expect_eq "nbdcopy round trip checksum" "$(sha256sum <"$work/out.img")" "$(sha256sum <"$work/in.img")"

# Plaintext in require mode: refused by the real client, and on the wire the spec's
# NBD_REP_ERR_TLS_REQD for options, a closed session for NBD_OPT_EXPORT_NAME, and
# NBD_REP_ERR_INVALID for a second NBD_OPT_STARTTLS.
out=$(nbdinfo "nbd://$p/vol" 2>&1); rc=$?
check "plaintext nbdinfo is refused" test "$rc" -ne 0
expect_contains "plaintext nbdinfo is told TLS is required" "$out" "TLS"
out=$(python3 - "$p" "$work/clients/alice" <<'PY'
import socket, ssl, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
d = sys.argv[2]
IHAVEOPT = 0x49484156454F5054
def start():
    s = socket.create_connection((host, int(port)), timeout=10)
    s.recv(18, socket.MSG_WAITALL)
    s.sendall(struct.pack(">I", 1))
    return s
def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
def reply(s):
    magic, o, typ, n = struct.unpack(">QIII", recvn(s, 20))
    recvn(s, n)
    return typ
def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
s = start()
opt(s, 3)                                  # NBD_OPT_LIST
print("list: %#x" % reply(s))
opt(s, 7, struct.pack(">I", 3) + b"vol" + b"\0\0")   # NBD_OPT_GO
print("go: %#x" % reply(s))
opt(s, 5)                                  # NBD_OPT_STARTTLS
print("starttls: %#x" % reply(s))
ctx = ssl.create_default_context(cafile=d + "/ca-cert.pem")
ctx.load_cert_chain(d + "/client-cert.pem", d + "/client-key.pem")
t = ctx.wrap_socket(s, server_hostname="localhost")
opt(t, 5)
print("starttls again: %#x" % reply(t))
opt(t, 7, struct.pack(">I", 3) + b"vol" + b"\0\0")
typ = reply(t)
while typ == 3: typ = reply(t)             # NBD_REP_INFO until the ACK
print("go over tls: %#x" % typ)
s = start()
opt(s, 1, b"vol")                          # NBD_OPT_EXPORT_NAME in plaintext
try:
    print("export_name: got %r" % s.recv(8))
except OSError as e:
    print("export_name: closed (%s)" % e)
PY
)
expect_contains "plaintext NBD_OPT_LIST: NBD_REP_ERR_TLS_REQD" "$out" "list: 0x80000005"
expect_contains "plaintext NBD_OPT_GO: NBD_REP_ERR_TLS_REQD" "$out" "go: 0x80000005"
expect_contains "NBD_OPT_STARTTLS: ACK" "$out" "starttls: 0x1"
expect_contains "NBD_OPT_STARTTLS twice: NBD_REP_ERR_INVALID" "$out" "starttls again: 0x80000003"
expect_contains "NBD_OPT_GO after TLS: ACK" "$out" "go over tls: 0x1"
expect_contains "plaintext NBD_OPT_EXPORT_NAME: session ended" "$out" "export_name: got b''"

# Clients the TLS handshake must refuse.
out=$(nbdinfo --size "$(uri vol eve)" 2>&1); rc=$?
check "a client certificate from another CA is refused" test "$rc" -ne 0
out=$(nbdinfo --size "$(uri vol nocert)" 2>&1); rc=$?
check "a client without a certificate is refused" test "$rc" -ne 0
expect_eq "mallory works before revocation" "$(nbdinfo --size "$(uri vol mallory)")" "67108864"
test_ca_revoke "$ca" mallory
cp "$ca/ca.crl" "$work/srv/ca.crl.new" && mv "$work/srv/ca.crl.new" "$work/srv/ca.crl"
out=$(nbdinfo --size "$(uri vol mallory)" 2>&1); rc=$?
check "a revoked certificate is refused at once (CRL re-read)" test "$rc" -ne 0
expect_contains "the log says why" "$(cat "$work/stored.log")" "certificate revoked"
expect_eq "others still work after the CRL change" "$(nbdinfo --size "$(uri vol alice)")" "67108864"

# Identities in access lists (checked at NBD_OPT_GO).
expect_eq "alice reaches alice-only (URI SAN listed)" "$(nbdinfo --size "$(uri alice-only alice)")" "1048576"
out=$(nbdinfo --size "$(uri alice-only bob)" 2>&1); rc=$?
check "bob is refused on alice-only" test "$rc" -ne 0
expect_contains "bob gets NBD_REP_ERR_POLICY" "$out" "server policy prevents NBD_OPT_GO"
out=$(nbdinfo --size "$(uri bob-net bob)" 2>&1); rc=$?
check "bob's identity from an IP off the list is refused (both lists must admit)" test "$rc" -ne 0
A lun access bob-net --allow 127.0.0.0/8 --allow-identity CN=bob >/dev/null
expect_eq "bob from a listed IP is admitted" "$(nbdinfo --size "$(uri bob-net bob)")" "1048576"
expect_contains "lun get shows the identities" "$(A lun get alice-only)" "identities: URI:spiffe://strata/alice"
expect_eq "identities in the JSON access list" \
  "$(A -o json lun get alice-only | jq -c .access.allowed_identities)" '["URI:spiffe://strata/alice"]'
out=$(A lun access alice-only --allow-identity 'O=acme' 2>&1); rc=$?
check "a malformed identity is refused" test "$rc" -ne 0
expect_contains "naming the field and the reason" "$out" "allowed_identities[0]: 'O=acme' is not CN=NAME, DNS:NAME or URI:URI"
A lun access alice-only --allow-identity CN=bob >/dev/null
out=$(nbdinfo --size "$(uri alice-only alice)" 2>&1); rc=$?
check "alice loses alice-only once her identity is removed" test "$rc" -ne 0
expect_eq "bob, now listed, gets in" "$(nbdinfo --size "$(uri alice-only bob)")" "1048576"
# An open connection loses access at its next request, as for an IP.
out=$(python3 - "$p" "$work/clients/bob" "$ADMIN" "$g" <<'PY'
import socket, ssl, struct, subprocess, sys
host, port = sys.argv[1].rsplit(":", 1)
d, admin, grpc = sys.argv[2:5]
def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
s = socket.create_connection((host, int(port)), timeout=10)
recvn(s, 18); s.sendall(struct.pack(">I", 1))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 5, 0)); recvn(s, 20)
ctx = ssl.create_default_context(cafile=d + "/ca-cert.pem")
ctx.load_cert_chain(d + "/client-cert.pem", d + "/client-key.pem")
t = ctx.wrap_socket(s, server_hostname="localhost")
name = b"alice-only"
t.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(name) + 6) + struct.pack(">I", len(name)) + name + b"\0\0")
while True:
    _, _, typ, n = struct.unpack(">QIII", recvn(t, 20)); recvn(t, n)
    if typ != 3: break
def read():
    t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 7, 0, 512))
    magic, err, handle = struct.unpack(">IIQ", recvn(t, 16))
    if err == 0: recvn(t, 512)
    return err
print("before: %d" % read())
subprocess.run([admin, "--insecure", "--server", grpc, "lun", "access", "alice-only", "--allow-identity", "CN=carol"], check=True, stdout=subprocess.DEVNULL)
print("after: %d" % read())
PY
)
expect_contains "an open TLS connection reads while listed" "$out" "before: 0"
expect_contains "and gets EPERM once its identity is removed" "$out" "after: 1"

# Server credentials re-read on change: a new certificate for new connections.
test_ca_issue "$ca" srv2 server DNS:localhost IP:127.0.0.1
cp "$ca/srv2/tls.key" "$work/srv/tls.key.new" && cp "$ca/srv2/tls.crt" "$work/srv/tls.crt.new"
mv "$work/srv/tls.key.new" "$work/srv/tls.key" && mv "$work/srv/tls.crt.new" "$work/srv/tls.crt"
served=$(python3 - "$p" "$work/clients/alice" <<'PY'
import socket, ssl, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
d = sys.argv[2]
s = socket.create_connection((host, int(port)), timeout=10)
s.recv(18, socket.MSG_WAITALL); s.sendall(struct.pack(">I", 1))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 5, 0)); s.recv(20, socket.MSG_WAITALL)
ctx = ssl.create_default_context(cafile=d + "/ca-cert.pem")
ctx.load_cert_chain(d + "/client-cert.pem", d + "/client-key.pem")
t = ctx.wrap_socket(s, server_hostname="localhost")
print(ssl.DER_cert_to_PEM_cert(t.getpeercert(binary_form=True)))
PY
)
expect_eq "a new connection gets the new server certificate" \
  "$(openssl x509 -noout -serial <<<"$served")" "$(openssl x509 -noout -serial -in "$ca/srv2/tls.crt")"
expect_eq "and data still flows" "$(nbdinfo --size "$(uri vol alice)")" "67108864"

# allow mode (SELECTIVETLS): plaintext where the access list names no identity.
"$STORED" --device tls-dev2 --tier "ssd=$work/ssd2:1GiB" --portal 127.0.0.1:0 --grpc 127.0.0.1:0 --insecure \
  --nbd-tls allow --nbd-tls-cert "$work/srv/tls.crt" --nbd-tls-key "$work/srv/tls.key" \
  --nbd-tls-client-ca "$ca/ca.crt" --ready-file "$work/ready2" 2>"$work/stored2.log" &
pid2=$!
check "allow-mode daemon becomes ready" wait_until 30 test -s "$work/ready2"
g2=$(jq -r .grpc "$work/ready2")
p2=$(jq -r '.nbd[0]' "$work/ready2")
"$ADMIN" --insecure --server "$g2" lun create open --size 1MiB >/dev/null
"$ADMIN" --insecure --server "$g2" lun create ids --size 1MiB --allow-identity CN=alice >/dev/null
expect_eq "allow: plaintext client on an open export" "$(nbdinfo --size "nbd://$p2/open")" "1048576"
expect_eq "allow: TLS client on an open export" \
  "$(nbdinfo --size "nbds://$p2/open?tls-certificates=$work/clients/alice")" "1048576"
out=$(nbdinfo --size "nbd://$p2/ids" 2>&1); rc=$?
check "allow: plaintext client refused on an identity-only export" test "$rc" -ne 0
expect_eq "allow: alice over TLS on it" \
  "$(nbdinfo --size "nbds://$p2/ids?tls-certificates=$work/clients/alice")" "1048576"
stop_within 30 "$pid2"; rc=$?; pid2=
expect_eq "allow-mode daemon: SIGTERM exits 0" "$rc" "0"

check "daemon alive" kill -0 "$pid"
stop_within 30 "$pid"; rc=$?; pid=
expect_eq "SIGTERM exits 0" "$rc" "0"
finish
