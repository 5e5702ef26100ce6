#!/usr/bin/env bash
# Runs every Strata test on this machine: unit, integration, the real Kubernetes
# control plane and the QEMU VM tier, first under ASan+UBSan (unit and integration),
# then the whole suite on the default build. Installs what it needs (as root).
#
# Environment: STRATA_CACHE (default ~/.cache/strata) keeps the kube-apiserver build
# and the VM kernel between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones in different folders (CI clones afresh on the same machine).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1

timings=()
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "==> $name"
  "$@"
  timings+=("$(printf '%-14s %4ds' "$name" $((SECONDS - t0)))")
}

build() { cmake --preset "$1" >/dev/null && cmake --build --preset "$1"; }

stage deps bash scripts/install-deps.sh all
stage apiserver bash tests/testenv/kube-testenv.sh build
stage vm-image bash tests/vm/build-vm.sh
stage compile build default
stage compile-asan build asan
stage tests-asan ctest --preset asan -L 'unit|integration'

echo "==> stage times"
printf '  %s\n' "${timings[@]}"
echo "==> tests (all labels)"
ctest --preset default
