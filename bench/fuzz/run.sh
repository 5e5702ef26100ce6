#!/usr/bin/env bash
# Runs every libFuzzer target for a long time (default 600 s each, two at a time) from its seed
# corpus, and prints one Markdown row per target for docs/benchmarks.md: runs (execs), exec/s,
# coverage (cov = edges, ft = features, from libFuzzer's last status line), corpus size, peak
# RSS, crashes. A crash, leak, timeout or OOM makes the target's row say so and the script fail.
#
# Usage: bench/fuzz/run.sh [SECONDS] [PARALLEL]   (after: cmake --preset fuzz &&
#                                                  cmake --build --preset fuzz)
# Environment: BUILD (default build/fuzz), OUT (logs, new inputs and crash files; default
# build/fuzz/bench), TARGETS (default: all seven, space-separated).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
parallel=${2:-2}
build=${BUILD:-build/fuzz}
out=${OUT:-$build/bench}
read -r -a targets <<<"${TARGETS:-nbd cni_config crd kubeconfig journal admin_args lun_data}"

for t in "${targets[@]}"; do
  [ -x "$build/fuzz/${t}_fuzzer" ] || { echo "run.sh: $build/fuzz/${t}_fuzzer missing (build the fuzz preset)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out"

run_one() {
  local t=$1 dir=$out/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local rc=0
  "$build/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" "fuzz/corpus/$t" \
    >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

stat() { sed -n "s/^stat::$2: *//p" "$out/$1/log" | tail -n 1; }
failed=0
echo "| target | seconds | runs | exec/s | cov | ft | corpus | peak RSS MiB | crashes |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  last=$(grep -E '^#[0-9]+' "$out/$t/log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  crashes=$(find "$out/$t/artifacts" -type f | wc -l)
  rc=$(cat "$out/$t/rc")
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    crashes="$crashes (exit $rc; see $out/$t/log)"
  fi
  echo "| $t | $seconds | $(stat "$t" number_of_executed_units) | $(stat "$t" average_exec_per_sec) | $cov | $ft | $corp | $(stat "$t" peak_rss_mb) | $crashes |"
done
exit "$failed"
