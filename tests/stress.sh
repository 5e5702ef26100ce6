#!/usr/bin/env bash
# Runs every test of one CTest label N times in a row and reports, per test, how often it failed:
# a flaky test shows up here, not in CI. Each round is one `ctest -L LABEL` run, so fixtures
# (the control plane, the VM image) are set up and torn down every round too.
#
# Usage: tests/stress.sh LABEL N [PRESET]      e.g. tests/stress.sh vm 10
#   LABEL   a CTest label (vm, controlplane, integration, unit) or a regex of labels ('vm|controlplane')
#   N       rounds
#   PRESET  the CMake test preset whose build is used (default: default); build it first
# Environment: STRATA_STRESS_DIR  where round logs go (default: build/<preset>/stress/<label>)
# Exit status: 0 when every test passed every round, 1 otherwise, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || {
  sed -n '2,11s/^# \{0,1\}//p' "$0" >&2
  exit 2
}
label=$1 rounds=$2 preset=${3:-default}
build=build/$preset
[ -f "$build/CTestTestfile.cmake" ] || {
  echo "stress: $build is not a configured build tree (cmake --preset $preset && cmake --build --preset $preset)" >&2
  exit 2
}
out=${STRATA_STRESS_DIR:-$build/stress/${label//[^A-Za-z0-9]/_}}
rm -rf "$out"
mkdir -p "$out"

declare -A runs fails secs
order=()
t_all=$SECONDS
for ((r = 1; r <= rounds; r++)); do
  t0=$SECONDS
  junit=$PWD/$out/round-$r.xml
  set +e
  ctest --preset "$preset" -L "$label" --output-junit "$junit" >"$out/round-$r.log" 2>&1
  rc=$?
  set -e
  [ -s "$junit" ] || {
    echo "stress: round $r wrote no results (ctest exit $rc); see $out/round-$r.log" >&2
    exit 1
  }
  # One line per test case: NAME STATUS SECONDS (JUnit as CTest writes it).
  while read -r name status time; do
    [ -n "${runs[$name]+x}" ] || order+=("$name")
    runs[$name]=$((${runs[$name]:-0} + 1))
    secs[$name]=$(awk -v a="${secs[$name]:-0}" -v b="$time" 'BEGIN { printf "%.1f", a + b }')
    if [ "$status" != run ]; then
      fails[$name]=$((${fails[$name]:-0} + 1))
      echo "stress: round $r: $name $status (log: $out/round-$r.log)"
    fi
  done < <(python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    status = case.get("status", "run")
    if case.find("failure") is not None or case.find("error") is not None:
        status = "fail"
    print(case.get("name"), status, case.get("time", "0"))
PY
  )
  echo "stress: round $r/$rounds done in $((SECONDS - t0)) s (ctest exit $rc)"
done

total_fail=0
printf '\n%-34s %6s %6s %9s\n' test runs fails "mean s"
for name in "${order[@]}"; do
  f=${fails[$name]:-0}
  total_fail=$((total_fail + f))
  printf '%-34s %6d %6d %9s\n' "$name" "${runs[$name]}" "$f" \
    "$(awk -v s="${secs[$name]}" -v n="${runs[$name]}" 'BEGIN { printf "%.1f", s / n }')"
done
echo "stress: label '$label', $rounds rounds, $((SECONDS - t_all)) s, $total_fail failed runs; logs in $out"
[ "$total_fail" = 0 ]
