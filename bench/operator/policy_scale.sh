#!/usr/bin/env bash
# strata-operator at scale: N PVCs (LUNs with owner metadata on one strata-stored, PVC objects in
# one namespace) under 3 policies (two TieringPolicies, one DedupPolicy) for a measured window.
# Reports the operator's resident memory (VmRSS, VmHWM), CPU (utime+stime over the window) and
# reconcile latency p50/p99 per controller (from its /metrics histogram), beside the issue's
# limits in the same table: RSS <= 60 MB, reconcile p99 <= 100 ms. Private control plane
# (tests/operator/private_testenv.sh), nothing else loads it.
# Usage: bench/operator/policy_scale.sh BUILD_DIR [PVCS] [WINDOW_SECONDS]
set -euo pipefail
build=$(cd "$1" && pwd)
pvcs=${2:-1000}
window=${3:-120}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/strata-bench-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT

inner() {
  set -euo pipefail
  # shellcheck source=tests/lib/assert.sh
  source "$repo/tests/lib/assert.sh"
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
  k() { kubectl --kubeconfig "$STRATA_KUBECONFIG" --request-timeout=30s "$@"; }
  "$build/storage/strata-stored" --device scale-dev --tier "ssd=$work/ssd:64GiB" \
    --tier "sata=$work/sata:64GiB" --grpc 127.0.0.1:0 --insecure --portal 127.0.0.1:0 \
    --ready-file "$work/ready" 2>"$work/stored.log" &
  pids+=($!)
  wait_until 30 test -s "$work/ready"
  grpc=$(jq -r .grpc "$work/ready")
  echo "creating $pvcs LUNs and PVC objects..."
  {
    for i in $(seq 1 "$pvcs"); do
      app=$([ $((i % 2)) -eq 0 ] && echo web || echo db)
      cat <<YAML
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: pvc-$i
  namespace: scale
  labels: {app: $app, strata.io/content: $([ $((i % 3)) -eq 0 ] && echo vm-image || echo data)}
spec:
  accessModes: [ReadWriteOnce]
  volumeMode: Block
  resources: {requests: {storage: 1Mi}}
YAML
    done
  } >"$work/pvcs.yaml"
  k create namespace scale >/dev/null
  k apply -f "$work/pvcs.yaml" >/dev/null
  for i in $(seq 1 "$pvcs"); do
    "$build/storage/strata-admin" --insecure -s "$grpc" --timeout 60 lun create "pvc-$i" --size 1MiB --tier sata \
      --owner scale --meta csi.storage.k8s.io/pvc/name="pvc-$i" \
      --meta csi.storage.k8s.io/pvc/namespace=scale >/dev/null
  done
  k create -f - >/dev/null <<YAML
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {name: scale-dev}
spec:
  endpoint: "$grpc"
  tiers: [{class: ssd, capacityBytes: 68719476736, pricePerGiBHour: 0.0002},
          {class: sata, capacityBytes: 68719476736, pricePerGiBHour: 0.00005}]
---
apiVersion: strata.io/v1alpha1
kind: TieringPolicy
metadata: {name: db-hot, namespace: scale}
spec:
  selector: {matchLabels: {app: db}}
  rules:
    - {name: promote, metric: ReadIOPS, comparison: Above, threshold: 100000, sustainedFor: 30s, targetTier: ssd}
---
apiVersion: strata.io/v1alpha1
kind: TieringPolicy
metadata: {name: web-idle, namespace: scale}
spec:
  selector: {matchLabels: {app: web}}
  rules:
    - {name: demote, metric: IdleSeconds, comparison: Above, threshold: 86400, targetTier: sata}
---
apiVersion: strata.io/v1alpha1
kind: DedupPolicy
metadata: {name: images, namespace: scale}
spec:
  selector: {matchLabels: {strata.io/content: vm-image}}
  mode: Inline
YAML
  metrics=$(free_port)
  "$build/operator/strata-operator" --kubeconfig "$STRATA_KUBECONFIG" --insecure \
    --metrics-addr "127.0.0.1:$metrics" --health-addr 0 --log-level warn \
    --volume-resync "${STRATA_BENCH_RESYNC:-5}" 2>"$work/operator.log" &
  op=$!
  pids+=("$op")
  wait_until 60 eval "curl -sf http://127.0.0.1:$metrics/metrics | grep -q 'controller=\"storagedevice\"'"
  # Convergence first (every selected volume's dedup switched, one Event each, through the
  # client-side QPS limit), timed; then the steady state is measured on its own.
  conv0=$(date +%s.%N)
  want_dedup=$((pvcs / 3))
  wait_until 600 eval "[ \"\$(k get deduppolicy images -n scale -o json |
    jq '[.status.volumes[]? | select(.state == \"Deduplicating\")] | length')\" -ge $want_dedup ]"
  conv1=$(date +%s.%N)
  echo "converged: $want_dedup volumes deduplicating $(awk -v a="$conv0" -v b="$conv1" 'BEGIN { printf "%.1f", b - a }') s after the operator was ready"
  curl -sf "http://127.0.0.1:$metrics/metrics" >"$work/metrics0.txt"
  ticks=$(getconf CLK_TCK)
  cpu() { awk '{print $14 + $15}' "/proc/$op/stat"; }
  c0=$(cpu)
  t0=$(date +%s.%N)
  echo "measuring for ${window}s: kube-apiserver $(k version -o json 2>/dev/null | jq -r .serverVersion.gitVersion), $(nproc) cores"
  # The window is the measurement itself, not a synchronisation.
  sleep "$window"
  c1=$(cpu)
  t1=$(date +%s.%N)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$op/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$op/status")
  curl -sf "http://127.0.0.1:$metrics/metrics" >"$work/metrics.txt"
  python3 - "$work/metrics0.txt" "$work/metrics.txt" "$c0" "$c1" "$t0" "$t1" "$ticks" "$rss" "$hwm" "$pvcs" <<'PY'
import collections, re, sys
path0, path, c0, c1, t0, t1, ticks, rss, hwm, pvcs = sys.argv[1:]
cpu = (float(c1) - float(c0)) / float(ticks) / (float(t1) - float(t0)) * 100
def read(p):
    out = {}
    for line in open(p):
        m = re.match(r'strata_operator_reconcile_duration_seconds_bucket\{(.*)\} (\S+)', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            le = float('inf') if labels['le'] == '+Inf' else float(labels['le'])
            out[(labels['controller'], le)] = float(m.group(2))
    return out
before, after = read(path0), read(path)
# The steady state only: the window's increments of each cumulative bucket.
buckets = collections.defaultdict(list)
for (ctl, le), n in after.items():
    buckets[ctl].append((le, n - before.get((ctl, le), 0)))
def q(b, p):
    b.sort()
    total = b[-1][1]
    if total == 0:
        return 0, 0
    for le, c in b:
        if c >= p * total:
            return le, total
    return float('inf'), total
print(f"| {pvcs} PVCs, 3 policies, steady state | measured | limit |")
print("|---|---|---|")
print(f"| RSS now / peak | {int(rss)/1024:.1f} / {int(hwm)/1024:.1f} MB | 60 MB |")
print(f"| CPU over the window | {cpu:.1f} % of one core | - |")
for ctl, b in sorted(buckets.items()):
    p50, n = q(b, 0.5)
    p99, _ = q(b, 0.99)
    print(f"| reconcile {ctl} (n={int(n)}) p50 / p99 | <= {p50*1000:g} / <= {p99*1000:g} ms | p99 100 ms |")
PY
}
export -f inner
export build work pvcs window repo
bash "$repo/tests/operator/private_testenv.sh" "$work/kube" bash -c inner
