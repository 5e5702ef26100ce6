#!/usr/bin/env bash
# The cost of NBD over TLS (userspace clients): strata-stored --nbd-tls allow serving one LUN
# in plaintext and over TLS (client certificate, TLS 1.3), beside nbdkit (file plugin, GnuTLS,
# --tls=on with client certificates) in plaintext and over TLS, same bytes on tmpfs, same client
# (nbdcopy, libnbd; nbds:// URIs with tls-certificates=DIR) in the same run. fio's libnbd
# engine cannot name client certificates (libnbd refuses URI parameters that read local files
# unless the program allows them, and fio does not), so nbdcopy with its request size and
# queue depth stands in: 4 KiB requests x 16 give IOPS, 1 MiB ones throughput.
# Not a test: prints markdown for docs/benchmarks.md.
#
#   [SIZE_MIB=256] bench/storage/nbd_tls_bench.sh build/default/storage/strata-stored build/default/storage/strata-admin
set -euo pipefail
STORED=$1
ADMIN=$2

SIZE_MIB=${SIZE_MIB:-256}
for t in nbdkit nbdcopy nbdinfo jq openssl python3; do
  command -v "$t" >/dev/null || { echo "need $t (scripts/install-deps.sh all)" >&2; exit 1; }
done
. "$(dirname "$0")/../../tests/lib/test_ca.sh"

work=$(mktemp -d /dev/shm/strata-tls-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_nbd() { for _ in $(seq 200); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

ca=$work/ca
test_ca_init "$ca"
test_ca_issue "$ca" srv server DNS:localhost IP:127.0.0.1
test_ca_issue "$ca" client client
cdir=$work/client
mkdir -p "$cdir" "$work/nbdkit-certs"
ln -s "$ca/ca.crt" "$cdir/ca-cert.pem"
ln -s "$ca/client/tls.crt" "$cdir/client-cert.pem"
ln -s "$ca/client/tls.key" "$cdir/client-key.pem"
ln -s "$ca/ca.crt" "$work/nbdkit-certs/ca-cert.pem"
ln -s "$ca/srv/tls.crt" "$work/nbdkit-certs/server-cert.pem"
ln -s "$ca/srv/tls.key" "$work/nbdkit-certs/server-key.pem"

head -c "${SIZE_MIB}M" /dev/urandom >"$work/src.img"
declare -A uri

cp "$work/src.img" "$work/nbdkit.img"
p=$(port)
nbdkit --foreground --ipaddr 127.0.0.1 --port "$p" --exportname disk --tls=on \
  --tls-certificates="$work/nbdkit-certs" --tls-verify-peer file "$work/nbdkit.img" &
pids+=($!)
uri[nbdkit]="nbd://127.0.0.1:$p/disk"
uri[nbdkit-tls]="nbds://127.0.0.1:$p/disk?tls-certificates=$cdir"

"$STORED" --device bench --tier "ssd=$work/strata:$((SIZE_MIB * 3))MiB" --portal 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --insecure --ready-file "$work/ready" --log-level warn --nbd-tls allow \
  --nbd-tls-cert "$ca/srv/tls.crt" --nbd-tls-key "$ca/srv/tls.key" --nbd-tls-client-ca "$ca/ca.crt" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
g=$(jq -r .grpc "$work/ready"); sp=$(jq -r '.nbd[0]' "$work/ready")
"$ADMIN" --insecure --server "$g" lun create lun --size "${SIZE_MIB}MiB" >/dev/null
uri[strata]="nbd://$sp/lun"
uri[strata-tls]="nbds://$sp/lun?tls-certificates=$cdir"
servers=(nbdkit nbdkit-tls strata strata-tls)
for s in "${servers[@]}"; do wait_nbd "${uri[$s]}"; done
nbdcopy "$work/src.img" "${uri[strata]}"

copy() {  # src dst conns request-size requests -> MiB/s
  local t0 t1
  t0=$(date +%s%N)
  nbdcopy --connections="$3" --request-size="$4" --requests="$5" "$1" "$2"
  t1=$(date +%s%N)
  echo $(( SIZE_MIB * 1000000000 / (t1 - t0) ))
}

echo "nbdcopy (libnbd), ${SIZE_MIB} MiB on tmpfs, MiB/s (4k rows: IOPS = MiB/s x 256); load $(cut -d' ' -f1 /proc/loadavg)"
echo
printf "| workload |"; for s in "${servers[@]}"; do printf " %s |" "$s"; done; echo
printf "|---|"; for s in "${servers[@]}"; do printf -- "---|"; done; echo
for w in "in 1 4096 16" "out 1 4096 16" "in 1 1048576 8" "out 1 1048576 8" "in 4 1048576 8" "out 4 1048576 8"; do
  set -- $w
  printf "| %s, %s conn, %s B x %s |" "$1" "$2" "$3" "$4"
  for s in "${servers[@]}"; do
    if [ "$1" = in ]; then
      printf " %s |" "$(copy "$work/src.img" "${uri[$s]}" "$2" "$3" "$4")"
    else
      printf " %s |" "$(copy "${uri[$s]}" "$work/out.img" "$2" "$3" "$4")"
      rm -f "$work/out.img"
    fi
  done
  echo
done
