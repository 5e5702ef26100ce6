#!/usr/bin/env bash
# CTest fixture `strata_crds`: installs every CRD under crds/ on the test control plane and waits
# until each is Established and served. Idempotent.
# Usage: install_crds.sh KUBECONFIG
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export KUBECONFIG=$1
files=("$repo"/crds/*.yaml)
args=()
for f in "${files[@]}"; do args+=(-f "$f"); done
# kube_crd_schema may apply the same CRDs concurrently: retry a conflicting write.
# --request-timeout: a wedged apiserver fails the fixture instead of hanging it.
for attempt in 1 2 3; do
  kubectl --request-timeout=30s apply "${args[@]}" >/dev/null && break
  ((attempt < 3)) || exit 1
  sleep 0.5
done
kubectl wait --for=condition=Established --timeout=60s "${args[@]}" >/dev/null
deadline=$((SECONDS + 30))
until kubectl --request-timeout=10s get --raw /apis/strata.io/v1alpha1/storagedevices >/dev/null 2>&1; do
  ((SECONDS < deadline)) || { echo "strata.io/v1alpha1 is not served" >&2; exit 1; }
  sleep 0.2
done
echo "install_crds: $(ls "$repo"/crds/*.yaml | wc -l) CRDs established"
