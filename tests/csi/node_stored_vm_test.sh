#!/bin/sh
# Runs inside the VM tier (run-in-vm.sh): two strata-stored devices (A with two portals,
# B with two) on tmpfs, then strata_csi_node_stored_vm drives the node plugin against them
# (multipath failover + reinstate under I/O, a LUN shared by two nodes, expand, a device
# move with path swap, an ext4 volume). See node_stored_vm_main.cc.
#   node_stored_vm_test.sh STRATA-STORED STRATA-ADMIN strata_csi_node_stored_vm
set -eu
stored=$1 admin=$2 tool=$3
work=$(mktemp -d /tmp/strata-csi-stored-vm.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  umount "$work/data" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
/usr/sbin/ip link set lo up

# ext4 (with crc32c_generic) and xfs are preloaded by the VM image (build-vm.sh MODULES).
# The devices' data on tmpfs in guest RAM (the 9p /tmp is slow and shared with the host).
mkdir -p "$work/data"
mount -t tmpfs -o size=700m tmpfs "$work/data"

start_device() { # NAME GRPC PORTAL1 PORTAL2
  mkdir -p "$work/data/$1"
  "$stored" --device "$1" --tier "ssd=$work/data/$1/ssd:1GiB" \
    --portal "$3" --portal "$4" --grpc "$2" --insecure --ready-file "$work/$1.ready" \
    --log-level warn >"$work/$1.log" 2>&1 &
  pids="$pids $!"
}
start_device dev-a 127.0.0.1:50061 127.0.0.1:10901 127.0.0.1:10902
start_device dev-b 127.0.0.1:50062 127.0.0.1:10911 127.0.0.1:10912
i=0
while [ ! -s "$work/dev-a.ready" ] || [ ! -s "$work/dev-b.ready" ]; do
  i=$((i + 1))
  if [ "$i" -ge 600 ]; then
    echo "strata-stored did not become ready"
    cat "$work"/*.log
    exit 1
  fi
  sleep 0.1
done
# Staging and target paths on tmpfs too: the kernel cannot mount onto the 9p /tmp.
mkdir -p "$work/data/node"
set +e
"$tool" "$admin" 127.0.0.1:50061 127.0.0.1:50062 127.0.0.1:10901 127.0.0.1:10902 \
  127.0.0.1:10911 "$work/data/node"
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- device logs"
  cat "$work"/*.log
fi
exit "$rc"
