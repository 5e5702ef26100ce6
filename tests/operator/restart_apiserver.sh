#!/usr/bin/env bash
# Restarts the kube-apiserver of a control plane started by `kube-testenv.sh up DIR`, on the same
# port with the same etcd (so objects and resourceVersions survive), and waits until it is ready.
# Only for private control planes of restart tests: every client of DIR sees the outage.
# Usage: restart_apiserver.sh DIR [DOWN_SECONDS [EXTRA_FLAG...]]
#   EXTRA_FLAGs are added to the apiserver's command line (e.g. --client-ca-file=...), once.
set -euo pipefail
dir=$(cd "$1" && pwd)
down_seconds=${2:-0}
shift $(($# < 2 ? $# : 2))
pidfile=$dir/kube-apiserver.pid
pid=$(cat "$pidfile")
[[ -r /proc/$pid/cmdline ]] || { echo "restart_apiserver: pid $pid is not running" >&2; exit 1; }
mapfile -d '' cmd <"/proc/$pid/cmdline"
for extra in "$@"; do
  have=
  for arg in "${cmd[@]}"; do [[ $arg == "$extra" ]] && have=1; done
  [[ -n $have ]] || cmd+=("$extra")
done
alive() { [[ -e /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
kill -TERM "$pid"
for _ in $(seq 150); do
  alive "$pid" || break
  sleep 0.1
done
if alive "$pid"; then
  kill -KILL "$pid" 2>/dev/null || true # it may exit by itself meanwhile (set -e)
  # SIGKILL is asynchronous: the port is free only once the process is gone (or a zombie).
  # Restarting before that would make the new apiserver fail with "address already in use".
  for _ in $(seq 100); do
    alive "$pid" || break
    sleep 0.1
  done
fi
sleep "$down_seconds"
# As kube-testenv.sh's spawn: own session, pid recorded by the exec'ing shell.
rm -f "$pidfile"
setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "${cmd[@]}" \
  </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
# shellcheck disable=SC1091
source "$dir/env"
token=$(cut -d, -f1 "$dir/tokens.csv")
# A deadline in seconds, not a count of attempts: each attempt may itself take up to 2 s.
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  if curl -fsS --max-time 2 --cacert "$dir/ca.crt" -H @<(printf 'Authorization: Bearer %s\n' "$token") \
    "$STRATA_KUBE_SERVER/readyz" >/dev/null 2>&1; then
    echo "restart_apiserver: ready again (pid $(cat "$pidfile"))"
    exit 0
  fi
  sleep 0.1
done
echo "restart_apiserver: not ready after 60 s" >&2
exit 1
