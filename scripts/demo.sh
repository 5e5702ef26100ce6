#!/usr/bin/env bash
# The local demo: builds Strata, starts a strata-stored device with two tiers
# (ssd and sata, in directories under $STRATA_DEMO_DIR) and prints its status.
#   scripts/demo.sh          run, print, stop
#   scripts/demo.sh --keep   leave the daemon running and say how to reach it
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

demo_dir=${STRATA_DEMO_DIR:-/var/tmp/strata-demo}
grpc_addr=${STRATA_DEMO_GRPC:-127.0.0.1:7400}

bash scripts/install-deps.sh build
cmake --preset default >/dev/null
cmake --build --preset default --target strata-stored strata-admin
bin=build/default/storage

mkdir -p "$demo_dir"
if [ -f "$demo_dir/stored.pid" ] && kill -0 "$(cat "$demo_dir/stored.pid")" 2>/dev/null; then
  kill "$(cat "$demo_dir/stored.pid")"
  while kill -0 "$(cat "$demo_dir/stored.pid")" 2>/dev/null; do sleep 0.1; done
fi
rm -f "$demo_dir/ready"
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

echo
"$bin/strata-admin" --server "$grpc_addr" device status
echo
if [ $keep = 1 ]; then
  echo "strata-stored is running (pid $pid)."
  echo "  $bin/strata-admin --server $grpc_addr -o json device status"
  echo "  curl -s http://127.0.0.1:7401/metrics | grep strata_"
  echo "  kill $pid"
else
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$demo_dir/stored.pid"
  echo "demo finished; strata-stored stopped (rerun with --keep to leave it running)."
fi
