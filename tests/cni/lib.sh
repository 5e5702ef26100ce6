# shellcheck shell=bash
# Helpers for the strata-cni root tests: run CNI plugins the way a runtime does, in real network
# namespaces. Source after tests/lib/assert.sh. Needs: root, iproute2, jq.
#   STRATA_CNI_BIN   directory holding strata-cni and its plugin-name links (the build tree)
#   REF_CNI_BIN      Debian's reference plugins (/usr/lib/cni)

: "${REF_CNI_BIN:=/usr/lib/cni}"

# cni_exec DIR PLUGIN COMMAND NETNS IFNAME CONTAINERID CONFIG_JSON
# Prints the plugin's stdout; sets cni_rc to its exit status. Never fails the caller.
cni_exec() {
  local dir=$1 plugin=$2 cmd=$3 netns=$4 ifname=$5 cid=$6 conf=$7
  set +e
  # cni_out and cni_rc are globals: the scripts that source this file read them.
  # shellcheck disable=SC2034
  cni_out=$(printf '%s' "$conf" | env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" \
    CNI_NETNS="$netns" CNI_IFNAME="$ifname" CNI_PATH="$REF_CNI_BIN:$STRATA_CNI_BIN" \
    ${STRATA_CNI_SYSFS_ROOT:+STRATA_CNI_SYSFS_ROOT="$STRATA_CNI_SYSFS_ROOT"} \
    ${STRATA_CNI_SIMULATE_PF:+STRATA_CNI_SIMULATE_PF="$STRATA_CNI_SIMULATE_PF"} \
    ${STRATA_CNI_STATE_DIR:+STRATA_CNI_STATE_DIR="$STRATA_CNI_STATE_DIR"} \
    "$dir/$plugin")
  # shellcheck disable=SC2034  # read by the sourcing script (see above)
  cni_rc=$?
  set -e
}

# Root qdisc of DEV (in NETNS, or the host when NETNS is empty) as "kind handle rate_bits", or
# "none" for the kernel's default.
root_qdisc() {
  local netns=$1 dev=$2 j
  if [ -n "$netns" ]; then
    j=$(ip netns exec "$netns" tc -j qdisc show dev "$dev" root 2>/dev/null || echo '[]')
  else
    j=$(tc -j qdisc show dev "$dev" root 2>/dev/null || echo '[]')
  fi
  jq -r 'map(select(.root == true)) | if length == 0 or .[0].handle == "0:" then "none"
         else .[0] | "\(.kind) \(.handle) \((.options.rate // 0) * 8)" end' <<<"$j"
}

# Number of links of a kind (e.g. ifb) in the host namespace.
count_links() { ip -j link show type "$1" 2>/dev/null | jq length; }
