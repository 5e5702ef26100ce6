#!/usr/bin/env bash
# The format and lint gate (CI runs it first; run it before every commit). Checks, over the
# tracked files only (git ls-files; generated code lives under build/, which is not tracked):
#   - clang-format --dry-run --Werror on every *.cc and *.h (style: .clang-format)
#   - shellcheck -x -P SCRIPTDIR -S warning on every *.sh
#   - bash -n on every *.sh
# Prints each failing file with a hint, exits non-zero on any failure. Takes seconds.
# Needs clang-format and shellcheck: scripts/install-deps.sh build.
# Usage: scripts/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in clang-format shellcheck; do
  command -v "$tool" >/dev/null || {
    echo "lint: $tool not found (install it: scripts/install-deps.sh build)" >&2
    exit 2
  }
done

# Tracked files that exist in the work tree (a file deleted but not yet committed is skipped).
tracked() {
  local f
  git ls-files -z -- "$@" | while IFS= read -r -d '' f; do
    [ -f "$f" ] && printf '%s\0' "$f"
  done
}
mapfile -d '' -t cxx < <(tracked '*.cc' '*.h')
mapfile -d '' -t sh < <(tracked '*.sh')

failed=0

# --- C++ format: many files per clang-format call; it reports every file, not just the first.
if [ ${#cxx[@]} -gt 0 ]; then
  rc=0
  out=$(printf '%s\0' "${cxx[@]}" | xargs -0 clang-format --dry-run --Werror 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    failed=1
    mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
      <<<"$out" | sort -u)
    if [ ${#bad[@]} -gt 0 ]; then
      echo "lint: clang-format: ${#bad[@]} file(s) not formatted:"
      printf '  %s\n' "${bad[@]}"
      echo "  fix: clang-format -i$(printf ' %q' "${bad[@]}")"
    else  # clang-format itself failed (bad .clang-format, unreadable file): show why
      echo "lint: clang-format failed (exit $rc):"
      printf '%s\n' "$out" | head -20
    fi
  fi
fi

# --- Shell: shellcheck (warnings and errors), then the parser itself.
if [ ${#sh[@]} -gt 0 ]; then
  rc=0
  out=$(shellcheck -x -P SCRIPTDIR -S warning -f gcc "${sh[@]}" 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    failed=1
    echo "lint: shellcheck:"
    printf '%s\n' "$out" | sed 's/^/  /'
    echo "  details: shellcheck -x -P SCRIPTDIR -S warning FILE   (https://www.shellcheck.net/wiki/SCnnnn)"
  fi
  for f in "${sh[@]}"; do
    if ! err=$(bash -n "$f" 2>&1); then
      failed=1
      echo "lint: bash -n: $f does not parse:"
      printf '%s\n' "$err" | sed 's/^/  /'
    fi
  done
fi

if [ "$failed" != 0 ]; then
  echo "lint: FAILED"
  exit 1
fi
echo "lint: ok (${#cxx[@]} C++ files, ${#sh[@]} shell scripts)"
