#!/usr/bin/env bash
# The local demo on an embedded default: builds Strata, starts a strata-stored
# device with two tiers (ssd and sata, directories under $STRATA_DEMO_DIR) and two
# NBD portals, then shows what the device does:
#   1. its status;
#   2. a de-duplicated LUN, written through one portal with Debian's qemu-io (the
#      same pattern many times) and read back through the other portal;
#   3. the dedup ratio and per-LUN I/O stats;
#   4. a live move of the LUN from the ssd tier to the sata tier;
#   5. the device status again.
#   scripts/demo.sh          run, show, stop
#   scripts/demo.sh --keep   leave the daemon running and say how to reach it
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones in different folders (CI clones afresh on the same machine).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
keep=0
[ "${1:-}" = "--keep" ] && keep=1

demo_dir=${STRATA_DEMO_DIR:-/var/tmp/strata-demo}
grpc_addr=${STRATA_DEMO_GRPC:-127.0.0.1:7400}

bash scripts/install-deps.sh demo
cmake --preset default >/dev/null
cmake --build --preset default --target strata-stored strata-admin
bin=build/default/storage
admin() { "$bin/strata-admin" --server "$grpc_addr" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$demo_dir"
if [ -f "$demo_dir/stored.pid" ] && kill -0 "$(cat "$demo_dir/stored.pid")" 2>/dev/null; then
  kill "$(cat "$demo_dir/stored.pid")"
  while kill -0 "$(cat "$demo_dir/stored.pid")" 2>/dev/null; do sleep 0.1; done
fi
rm -rf "$demo_dir/ssd" "$demo_dir/sata" "$demo_dir/ready"
"$bin/strata-stored" --device demo-1 \
  --tier "ssd=$demo_dir/ssd:20GiB" --tier "sata=$demo_dir/sata:200GiB" \
  --portal 127.0.0.1:10809 --portal 127.0.0.2:10809 \
  --grpc "$grpc_addr" --metrics 127.0.0.1:7401 --ready-file "$demo_dir/ready" \
  2>"$demo_dir/stored.log" &
pid=$!
echo "$pid" >"$demo_dir/stored.pid"

# Wait (bounded) for the daemon to say it is serving.
for _ in $(seq 1 200); do
  [ -s "$demo_dir/ready" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$demo_dir/stored.log"; exit 1; }
  sleep 0.05
done
[ -s "$demo_dir/ready" ] || { echo "strata-stored did not become ready"; cat "$demo_dir/stored.log"; exit 1; }

step "strata-admin device status"
admin device status

step "strata-admin lun create db-1 --size 1GiB --tier ssd --dedup --owner team-a"
admin lun create db-1 --size 1GiB --tier ssd --dedup --owner team-a

step "qemu-io: write 64 MiB of one pattern through portal 127.0.0.1, read it back through 127.0.0.2"
qemu-io -f raw -c 'write -P 0x5a 0 64M' -c 'write -P 0xa5 512M 16M' nbd://127.0.0.1:10809/db-1 | grep -v '^ops'
qemu-io -f raw -r -c 'read -P 0x5a 0 64M' -c 'read -P 0xa5 512M 16M' nbd://127.0.0.2:10809/db-1 | grep -v '^ops'

step "strata-admin lun get db-1   (80 MiB written, 2 distinct blocks stored)"
admin lun get db-1
step "strata-admin lun stats db-1"
admin lun stats db-1

step "strata-admin lun migrate db-1 --tier sata --wait   (live: the data stays readable)"
admin lun migrate db-1 --tier sata --wait
qemu-io -f raw -r -c 'read -P 0x5a 0 64M' nbd://127.0.0.1:10809/db-1 | grep -v '^ops'

step "strata-admin device status"
admin device status

echo
if [ $keep = 1 ]; then
  echo "strata-stored is running (pid $pid)."
  echo "  $bin/strata-admin --server $grpc_addr lun list"
  echo "  nbdinfo --list nbd://127.0.0.1:10809"
  echo "  curl -s http://127.0.0.1:7401/metrics | grep strata_"
  echo "  kill $pid"
else
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$demo_dir/stored.pid"
  echo "demo finished; strata-stored stopped (rerun with --keep to leave it running)."
fi
