#!/usr/bin/env bash
# Runs inside the VM (run-in-vm.sh): kernel TLS with Debian's OpenSSL under the guest's 6.1
# kernel, the ground strata-csi's kernel nbd path over TLS stands on. TLS 1.2 (AES-GCM) must be
# offloaded both ways on both sides and a plain write(2) on the socket must arrive decrypted;
# the TLS 1.3 line is printed for the record (OpenSSL 3.0 offloads only its sending side).
set -uo pipefail
PROBE=$1
. "$(dirname "$0")/../lib/assert.sh"
. "$(dirname "$0")/../lib/test_ca.sh"
work=$(mktemp -d /tmp/strata-ktls.XXXXXX)
trap 'rm -rf "$work"' EXIT
test_ca_init "$work"
test_ca_issue "$work" srv server DNS:localhost IP:127.0.0.1
# The kernel instantiates gcm(aes) from these when keys are installed (build-vm.sh MODULES).
for m in tls gcm ctr ghash_generic; do
  check "module $m loaded" grep -q "^$m " /proc/modules
done
out=$("$PROBE" "$work" 2>&1); rc=$?
echo "$out"
expect_eq "kTLS: TLS 1.2 offloaded both ways, plain write(2) decrypted by the peer" "$rc" "0"
expect_contains "kTLS: TLS 1.2 line" "$out" "client ktls tx=1 rx=1, server ktls tx=1 rx=1, plain write(2) arrives=1"
finish
