#!/usr/bin/env bash
# StorageDevice change -> status latency (p50/p99 over N changes) beside the floor of one watch
# round trip on the same apiserver, and strata-operator's resident memory. Uses a private control
# plane (tests/operator/private_testenv.sh) so nothing else loads the apiserver.
# Usage: bench/operator/run.sh BUILD_DIR [CHANGES]
set -euo pipefail
build=$(cd "$1" && pwd)
changes=${2:-100}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/strata-bench-op.XXXXXX)
trap 'rm -rf "$work"' EXIT

inner() {
  set -euo pipefail
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$build/storage/strata-stored" --device bench-dev --tier "ssd=$work/ssd:4GiB" \
    --grpc "127.0.0.1:$port" --insecure --ready-file "$work/ready" 2>"$work/stored.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
  kubectl --kubeconfig "$STRATA_KUBECONFIG" create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: bench-dev}
spec:
  endpoint: 127.0.0.1:$port
  tiers: [{class: ssd, capacityBytes: 1073741824}]
YAML
  "$build/operator/strata-operator" --kubeconfig "$STRATA_KUBECONFIG" --insecure --metrics-addr 0 \
    --health-addr 0 --log-level warn 2>"$work/operator.log" &
  op=$!
  pids+=("$op")
  for _ in $(seq 100); do
    [ "$(kubectl --kubeconfig "$STRATA_KUBECONFIG" get sdev bench-dev -o jsonpath='{.status.phase}')" = Online ] && break
    sleep 0.1
  done
  echo "kube-apiserver $(kubectl --kubeconfig "$STRATA_KUBECONFIG" version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "${STRATA_BENCH_OPERATOR:-$build/bench/operator/strata-bench-operator}" --kubeconfig "$STRATA_KUBECONFIG" \
    --device bench-dev --changes "$changes" --operator-pid "$op"
}
export -f inner
export build work changes
bash "$repo/tests/operator/private_testenv.sh" "$work/kube" bash -c inner
