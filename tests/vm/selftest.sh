#!/usr/bin/env bash
# Checks run-in-vm.sh itself, in one boot: arguments (spaces, quotes, $, backslash, newline,
# empty) arrive unchanged; the cwd and the variables named in STRATA_VM_ENV are passed and no
# others; the guest runs the VM tier's kernel with the host root writable; the command's output
# reaches the host; and its non-zero exit status (3) is what run-in-vm.sh exits with.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tricky="it's \"quoted\" \$HOME \\ \`x\` a  b
second line"

# Runs in the guest under the host's /bin/sh; $1..$3 are the values it must see.
# shellcheck disable=SC2016  # expanded by the guest's shell
guest_check='
  [ "$1" = "a b" ] || { echo "FAIL: \$1 is [$1]"; exit 10; }
  [ "$2" = "$STRATA_SELFTEST_VALUE" ] && [ "$#" = 4 ] && [ -z "$4" ] ||
    { echo "FAIL: \$2 [$2] or env [$STRATA_SELFTEST_VALUE] or argc $#"; exit 11; }
  [ "$PWD" = "$3" ] || { echo "FAIL: cwd is $PWD, expected $3"; exit 12; }
  [ "${STRATA_VM:-}" = 1 ] && [ -z "${STRATA_SELFTEST_UNLISTED+set}" ] ||
    { echo "FAIL: STRATA_VM unset or an unlisted variable leaked in"; exit 13; }
  case $(uname -r) in 6.1.*) ;; *) echo "FAIL: guest kernel $(uname -r)"; exit 14 ;; esac
  echo probe >"$STRATA_VM_SHARE/probe" && echo probe >/usr/strata-vm-selftest-probe ||
    { echo "FAIL: share or overlay root not writable"; exit 15; }
  echo "selftest-marker kernel $(uname -r)"
  exit 3
'

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
STRATA_VM_ENV="STRATA_SELFTEST_VALUE" STRATA_SELFTEST_VALUE="$tricky" STRATA_SELFTEST_UNLISTED=1 \
  "$here/run-in-vm.sh" sh -c "$guest_check" _ "a b" "$tricky" "$PWD" "" | tee "$out"
rc=${PIPESTATUS[0]}
set -e

if [ "$rc" != 3 ]; then
  echo "FAIL vm_selftest: run-in-vm.sh exited $rc, expected the command's 3"
  exit 1
fi
if ! grep -q '^selftest-marker kernel 6\.1\.' "$out"; then
  echo "FAIL vm_selftest: the command's output did not reach the host"
  exit 1
fi
echo "PASS vm_selftest"
