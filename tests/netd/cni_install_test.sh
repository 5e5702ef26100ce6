#!/usr/bin/env bash
# strata-netd's CNI install step against the real file system and apiserver: the plugins of the
# build tree (strata-cni and its plugin-name links) are installed into an empty "host" bin dir and
# the network config list into a conf dir; a removed conf, a tampered binary and a removed link
# come back; /healthz, /readyz and /metrics answer; SIGTERM stops the agent.
# Usage: cni_install_test.sh NETD CNI_BUILD_DIR KUBECONFIG
set -uo pipefail
NETD=$1 CNI_DIR=$2
export KUBECONFIG=$3
. "$(dirname "$0")/../lib/assert.sh"

work=$(mktemp -d /tmp/strata-netd-install.XXXXXX)
netd_pid=''
cleanup() {
  [ -n "$netd_pid" ] && kill "$netd_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/conf" "$work/state"
cat >"$work/strata.conflist" <<'JSON'
{"cniVersion":"1.0.0","name":"strata-test","plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"10.99.0.0/24"}},{"type":"strata-bandwidth","capabilities":{"bandwidth":true}}]}
JSON

health_port=$(free_port)  # the health server cannot report a port it bound (cpprestsdk)
"$NETD" --node-name install-test --kubeconfig "$KUBECONFIG" \
  --cni-bin-dir "$work/bin" --cni-conf-dir "$work/conf" --cni-source-dir "$CNI_DIR" \
  --cni-plugins strata-cni,strata-bandwidth,strata-bond,strata-sriov,strata-vnc \
  --cni-conf-source "$work/strata.conflist" --state-dir "$work/state" \
  --metrics-addr 127.0.0.1:0 --health-addr "127.0.0.1:$health_port" \
  --ready-file "$work/ready" 2>"$work/netd.log" &
netd_pid=$!

installed() {
  cmp -s "$CNI_DIR/strata-cni" "$work/bin/strata-cni" &&
    [ -x "$work/bin/strata-cni" ] &&
    [ "$(readlink "$work/bin/strata-bandwidth")" = strata-cni ] &&
    [ "$(readlink "$work/bin/strata-bond")" = strata-cni ] &&
    [ "$(readlink "$work/bin/strata-sriov")" = strata-cni ] &&
    cmp -s "$work/strata.conflist" "$work/conf/10-strata.conflist"
}
check "plugins and conf list installed" wait_until 20 installed
check "agent reports its metrics address" wait_until 20 test -s "$work/ready"
expect_eq "no temp files left" "$(find "$work/bin" "$work/conf" -name '.*strata-tmp' | wc -l)" 0

rm "$work/conf/10-strata.conflist"
check "removed conf list comes back" wait_until 10 installed
echo tampered >"$work/bin/strata-cni"
check "tampered binary restored" wait_until 10 installed
rm "$work/bin/strata-bandwidth"
check "removed plugin link restored" wait_until 10 installed
# The plugin as installed answers (it is the real binary, runnable from the host dir).
expect_contains "installed plugin runs" \
  "$(CNI_COMMAND=VERSION "$work/bin/strata-bandwidth" </dev/null)" '"supportedVersions"'

healthy() { curl -sf "http://127.0.0.1:$health_port/healthz" >/dev/null; }
ready() { curl -sf "http://127.0.0.1:$health_port/readyz" >/dev/null; }
check "/healthz" wait_until 20 healthy
check "/readyz" wait_until 20 ready
metrics_addr=$(jq -r .metrics "$work/ready")
expect_contains "/metrics" "$(curl -sf "http://$metrics_addr/metrics")" "strata_netd_"

stop_within 10 "$netd_pid"
rc=$?
netd_pid=''
expect_eq "SIGTERM stops the agent cleanly" "$rc" 0
grep -q 'cni install: wrote' "$work/netd.log" || cat "$work/netd.log"
finish
