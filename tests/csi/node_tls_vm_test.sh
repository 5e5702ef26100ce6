#!/usr/bin/env bash
# Runs inside the VM tier (run-in-vm.sh): strata-csi's kernel nbd path over TLS (#14). A throwaway
# CA (tests/lib/test_ca.sh) issues the device's server certificate (IP:127.0.0.1), the node's
# client certificate (CN=node-1) and, from a second CA, one the device does not trust; one
# strata-stored with --nbd-tls require and two portals on guest tmpfs; then
# strata_csi_node_tls_vm stages over two TLS paths with kernel TLS, kills one and has it
# redialled, and checks the refusals (see node_tls_vm_main.cc).
#   node_tls_vm_test.sh STRATA-STORED STRATA-ADMIN strata_csi_node_tls_vm
set -eu
stored=$1 admin=$2 tool=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/test_ca.sh
. "$here/../lib/test_ca.sh"
work=$(mktemp -d /tmp/strata-csi-tls-vm.XXXXXX)
pid=""
cleanup() {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  umount "$work/data" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
/usr/sbin/ip link set lo up
# Kernel TLS: the 'tls' module and gcm(aes) (preloaded by the VM image, build-vm.sh MODULES).
grep -q '^tls ' /proc/modules || { echo "FAIL the tls kernel module is not loaded"; exit 1; }

test_ca_init "$work/ca"
test_ca_issue "$work/ca" dev server IP:127.0.0.1 IP:127.0.0.2
test_ca_issue "$work/ca" node-1 client
test_ca_init "$work/rogue-ca"
test_ca_issue "$work/rogue-ca" node-1 client

mkdir -p "$work/data"
mount -t tmpfs -o size=300m tmpfs "$work/data"
"$stored" --device dev-t --tier "ssd=$work/data/ssd:256MiB" \
  --portal 127.0.0.1:0 --portal 127.0.0.2:0 --grpc 127.0.0.1:0 --insecure \
  --nbd-tls require --nbd-tls-cert "$work/ca/dev/tls.crt" --nbd-tls-key "$work/ca/dev/tls.key" \
  --nbd-tls-client-ca "$work/ca/ca.crt" --nbd-tls-crl "$work/ca/ca.crl" \
  --ready-file "$work/ready" --log-level warn >"$work/stored.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$work/ready" ]; do
  i=$((i + 1))
  if [ "$i" -ge 600 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "strata-stored did not become ready"
    cat "$work/stored.log"
    exit 1
  fi
  sleep 0.1
done
grpc=$(jq -r .grpc "$work/ready")
p1=$(jq -r '.nbd[0]' "$work/ready")
p2=$(jq -r '.nbd[1]' "$work/ready")
set +e
"$tool" "$admin" "$grpc" "$p1" "$p2" "$work/ca/node-1" "$work/rogue-ca/node-1" "$work"
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- device log"
  cat "$work/stored.log"
fi
exit "$rc"
