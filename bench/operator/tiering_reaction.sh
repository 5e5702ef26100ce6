#!/usr/bin/env bash
# TieringPolicy reaction time (bench/operator/tiering_reaction.py) on a private control plane.
# Usage: bench/operator/tiering_reaction.sh BUILD_DIR [ROUNDS]
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/strata-bench-react.XXXXXX)
trap 'rm -rf "$work"' EXIT
bash "$repo/tests/operator/private_testenv.sh" "$work/kube" \
  python3 "$repo/bench/operator/tiering_reaction.py" "$build" "${2:-5}"
