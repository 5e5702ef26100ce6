#!/bin/sh
# Runs inside the VM tier (run-in-vm.sh): NodeServer stages a block volume exported by two
# nbdkit servers on the same file (two portals) through kernel nbd + dm-multipath, does I/O
# through the mapper device (also with one portal's server killed) and a published target,
# unstages, and checks nothing remains and the data reached the file.
#   node_stage_vm_test.sh PATH/TO/strata_csi_node_attach_vm
set -eu
tool=$1
work=$(mktemp -d /tmp/strata-csi-vm.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
/usr/sbin/ip link set lo up
truncate -s 64M "$work/disk.img"
for port in 10809 10810; do
  nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$port" \
    --pidfile "$work/nbdkit-$port.pid" file "$work/disk.img" &
  pids="$pids $!"
done
i=0
while [ ! -s "$work/nbdkit-10809.pid" ] || [ ! -s "$work/nbdkit-10810.pid" ]; do
  i=$((i + 1))
  [ "$i" -lt 300 ] || { echo "nbdkit did not start"; exit 1; }
  sleep 0.1
done
"$tool" 127.0.0.1:10809,127.0.0.1:10810 vol "$work" "$work/nbdkit-10810.pid"
# The data is in the file behind both portals.
[ "$(od -An -c -j 1048576 -N 1 "$work/disk.img" | tr -d ' ')" = A ] || { echo "FAIL data not in the file"; exit 1; }
[ "$(od -An -c -j 11534336 -N 1 "$work/disk.img" | tr -d ' ')" = h ] || { echo "FAIL data (path dead) not in the file"; exit 1; }
echo "ok   data in the backing file"
