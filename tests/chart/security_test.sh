#!/usr/bin/env bash
# Least privilege of the Helm chart (charts/strata), issue #14: renders the chart with the real
# Helm (default values, and tests/chart/values-nondefault.yaml with every component on) and runs
# check_security.py on both: each ServiceAccount's verbs per resource (printed), no "*" anywhere,
# the control plane's containers unprivileged, every privilege of a node component documented in
# docs/security.md. No cluster needed.
#
# Usage: security_test.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

helm_bin=$(bash "$repo/tests/testenv/helm.sh" path) || {
  echo "FAIL: no helm (tests/testenv/helm.sh path failed)"
  exit 1
}
work=$(mktemp -d /tmp/strata-chart-security.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HELM_CONFIG_HOME="$work/helm/config" HELM_CACHE_HOME="$work/helm/cache" \
  HELM_DATA_HOME="$work/helm/data"

if ! "$helm_bin" template strata "$repo/charts/strata" -n strata-system \
  >"$work/default.yaml"; then
  echo "FAIL: helm template (default values)"
  exit 1
fi
if ! "$helm_bin" template strata "$repo/charts/strata" -n strata-system \
  -f "$here/values-nondefault.yaml" \
  --api-versions monitoring.coreos.com/v1/ServiceMonitor \
  --api-versions snapshot.storage.k8s.io/v1/VolumeSnapshotClass >"$work/nondefault.yaml"; then
  echo "FAIL: helm template (values-nondefault.yaml)"
  exit 1
fi
exec python3 "$here/check_security.py" "$repo/docs/security.md" "$work/default.yaml" \
  "$work/nondefault.yaml"
