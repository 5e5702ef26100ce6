#!/usr/bin/env bash
# A throwaway X.509 certificate authority for tests (source this file; needs openssl).
#
#   test_ca_init DIR                       -> DIR/ca.crt, DIR/ca.key, an empty DIR/ca.crl
#   test_ca_issue DIR NAME server|client|both [SAN...]
#                                          -> DIR/NAME/{tls.crt,tls.key,ca.crt} (the names of a
#                                             kubernetes.io/tls Secret as cert-manager writes it);
#                                             the subject is CN=NAME; each SAN as openssl writes
#                                             it ("DNS:localhost", "IP:127.0.0.1", "URI:spiffe://x")
#   test_ca_revoke DIR NAME                -> NAME's certificate revoked, DIR/ca.crl rewritten
#
# Keys are ECDSA P-256 (fast to make); certificates last a day. Nothing here is for production.

test_ca__openssl_conf() {
  local dir=$1
  cat >"$dir/openssl.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
dir = $dir
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 1
policy = policy_any
[policy_any]
commonName = supplied
EOF
}

test_ca_init() {
  local dir=$1
  mkdir -p "$dir"
  test_ca__openssl_conf "$dir"
  : >"$dir/index.txt"
  echo 1000 >"$dir/serial"
  echo 1000 >"$dir/crlnumber"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=strata-test-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl ca -config "$dir/openssl.cnf" -gencrl -out "$dir/ca.crl" 2>/dev/null
}

test_ca_issue() {
  local dir=$1 name=$2 usage=$3
  shift 3
  local out=$dir/$name eku
  case $usage in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
    *)
      echo "test_ca_issue: usage must be server, client or both, not '$usage'" >&2
      return 2
      ;;
  esac
  mkdir -p "$out"
  local ext=$out/ext.cnf
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    if (($# > 0)); then
      local IFS=,
      echo "subjectAltName=$*"
    fi
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
  openssl x509 -req -in "$out/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAserial "$dir/serial" -days 1 -sha256 -extfile "$ext" -out "$out/tls.crt" 2>/dev/null
  cp "$dir/ca.crt" "$out/ca.crt"
  # The CA's database, so that test_ca_revoke can name this certificate.
  local serial subject expiry
  serial=$(openssl x509 -in "$out/tls.crt" -noout -serial | cut -d= -f2)
  subject=$(openssl x509 -in "$out/tls.crt" -noout -subject -nameopt compat | sed 's/^subject=//')
  expiry=$(openssl x509 -in "$out/tls.crt" -noout -enddate | cut -d= -f2)
  expiry=$(date -u -d "$expiry" +%y%m%d%H%M%SZ)
  printf 'V\t%s\t\t%s\tunknown\t%s\n' "$expiry" "$serial" "$subject" >>"$dir/index.txt"
}

test_ca_revoke() {
  local dir=$1 name=$2
  openssl ca -config "$dir/openssl.cnf" -revoke "$dir/$name/tls.crt" 2>/dev/null
  openssl ca -config "$dir/openssl.cnf" -gencrl -out "$dir/ca.crl" 2>/dev/null
}
