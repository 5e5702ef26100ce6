#!/usr/bin/env bash
# Runs every Strata test on this machine: the format and lint gate; unit and integration tests
# under ASan+UBSan; the fuzz targets (30 s each); the real Kubernetes control plane and the QEMU
# VM tier on the default build.
# Installs what it needs (as root).
#
# Each test binary is built once, in the tree whose tests run it (CMake targets
# strata_sanitized_tests and strata_system_tests; see strata_test_needs in
# cmake/StrataOptions.cmake). kube-apiserver (Go) builds in the background meanwhile: only the
# controlplane tests, the last stage, need it.
#
# Environment: STRATA_CACHE (default ~/.cache/strata) keeps the kube-apiserver build and the VM
# kernel between runs; ccache keeps objects.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones in different folders (CI clones afresh on the same machine).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1

timings=()
stage() {
  local name=$1
  shift
  local t0=$SECONDS
  echo "==> $name"
  "$@"
  timings+=("$(printf '%-14s %4ds' "$name" $((SECONDS - t0)))")
}
build() { cmake --preset "$1" >/dev/null && cmake --build --preset "$1" --target "$2"; }

t_start=$SECONDS
stage deps bash scripts/install-deps.sh all
stage lint bash scripts/lint.sh

mkdir -p build
apiserver_log=build/kube-apiserver-build.log
bash tests/testenv/kube-testenv.sh build >"$apiserver_log" 2>&1 &
apiserver_pid=$!
trap 'kill "$apiserver_pid" 2>/dev/null || true' EXIT
wait_apiserver() {
  if ! wait "$apiserver_pid"; then
    echo "kube-apiserver build failed; its log ($apiserver_log):" >&2
    tail -n 40 "$apiserver_log" >&2
    return 1
  fi
  tail -n 1 "$apiserver_log"
}

stage vm-image bash tests/vm/build-vm.sh
stage compile-asan build asan strata_sanitized_tests
stage tests-asan ctest --preset asan -L 'unit|integration'
# libFuzzer targets (clang-14; fuzz/CMakeLists.txt): seeds and regressions replayed, then 30 s each.
stage compile-fuzz build fuzz strata_fuzzers
stage fuzz ctest --preset fuzz
stage compile build default strata_system_tests
stage apiserver wait_apiserver
stage tests ctest --preset default -L 'controlplane|vm'

echo "==> stage times (kube-apiserver built beside compile-asan; 'apiserver' is the wait for it)"
printf '  %s\n' "${timings[@]}"
echo "==> all tests passed in $((SECONDS - t_start)) s"
