# shellcheck shell=bash
# Small assertion helpers for shell tests. Source it; call `finish` last.
# Every check prints one PASS/FAIL line; `finish` prints "N passed, N failed" and
# exits non-zero when anything failed.
_passed=0
_failed=0

pass() { _passed=$((_passed + 1)); echo "PASS: $*"; }
fail() { _failed=$((_failed + 1)); echo "FAIL: $*"; }

# check "description" command args...   (passes when the command succeeds)
check() {
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_eq "description" actual expected
expect_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}

# expect_contains "description" haystack needle
expect_contains() {
  case "$2" in
    *"$3"*) pass "$1" ;;
    *) fail "$1: '$3' not in: $2" ;;
  esac
}

# wait_until SECONDS command args...: polls the condition every 50 ms until it
# holds or the deadline passes. A bounded poll of a condition, not a sleep.
wait_until() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# stop_within SECONDS PID [SIGNAL]: sends SIGNAL (default TERM) to PID, a child of this shell,
# and reaps it; if it has not exited after SECONDS it is killed with SIGKILL, so a daemon that
# hangs in its shutdown fails the test instead of hanging it. Returns the child's exit status
# (137 after the SIGKILL).
stop_within() {
  local secs=$1 pid=$2 sig=${3:-TERM}
  kill -"$sig" "$pid" 2>/dev/null
  if ! wait_until "$secs" _exited "$pid"; then
    echo "stop_within: pid $pid still running ${secs}s after SIG$sig; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid"
}

# _exited PID: true once PID has exited (a zombie, or already reaped by bash).
_exited() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago. Racy (another process
# may bind it before the caller's daemon does): prefer ADDR:0 and a ready file where a daemon
# reports what it bound (strata-stored --ready-file, strata-nbd-testserver --ready-file).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

finish() {
  echo "$_passed passed, $_failed failed"
  [ "$_failed" -eq 0 ]
}
