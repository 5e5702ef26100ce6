#!/usr/bin/env bash
# Runs CMD... against a private control plane (its own etcd + kube-apiserver) in DIR, which tests
# may restart or break without disturbing the shared one; tears it down afterwards whatever CMD did.
# Exports STRATA_KUBECONFIG, STRATA_PRIVATE_TESTENV (DIR) and STRATA_RESTART_APISERVER, and installs
# the strata.io CRDs. Exits with CMD's status.
# Usage: private_testenv.sh DIR CMD...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=$1
shift
cleanup() { bash "$repo/tests/testenv/kube-testenv.sh" down "$dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
bash "$repo/tests/testenv/kube-testenv.sh" down "$dir" >/dev/null 2>&1 || true
bash "$repo/tests/testenv/kube-testenv.sh" up "$dir"
dir=$(cd "$dir" && pwd)
bash "$here/install_crds.sh" "$dir/kubeconfig"
export STRATA_KUBECONFIG=$dir/kubeconfig STRATA_PRIVATE_TESTENV=$dir
export STRATA_RESTART_APISERVER=$here/restart_apiserver.sh
rc=0
"$@" || rc=$?
exit "$rc"
