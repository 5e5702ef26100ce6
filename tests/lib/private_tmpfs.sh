# shellcheck shell=bash
# For shell tests that need a small file system of their own (a tmpfs of a given size, to
# fill up): the test re-executes itself in a mount namespace of its own, with a user
# namespace so root is not required, and every mount vanishes with it.
#
#   . "$(dirname "$0")/../lib/private_tmpfs.sh"
#   need_tools fio jq                          # before the namespace: a clear FAIL
#   in_private_mount_namespace "$0" "$@"       # returns only inside it
#   . "$(dirname "$0")/../lib/assert.sh"
#   start_private_tmpfs strata-NAME 96         # $work, a 96 MiB tmpfs at $work/fs
#   "$STORED" ... & pid=$!                     # killed on exit, with the tmpfs gone

# need_tools TOOL...: exits with a FAIL line naming the first one not on PATH.
need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "FAIL: need $t (scripts/install-deps.sh all)"; exit 1; }
  done
}

# in_private_mount_namespace "$0" "$@": unless already inside one, re-executes the script
# in a private mount namespace (unshare --mount --map-root-user); never returns there.
in_private_mount_namespace() {
  [ -n "${STRATA_PRIVATE_MOUNT_NS:-}" ] && return 0
  STRATA_PRIVATE_MOUNT_NS=1 exec unshare --mount --map-root-user --propagation private "$@"
  echo "FAIL: unshare --mount --map-root-user failed (user namespaces disabled?)"
  exit 1
}

# start_private_tmpfs PREFIX MIB: $work, a new directory under /tmp, with a MIB MiB tmpfs
# mounted at $work/fs (a `check` of assert.sh). On exit the process $pid (when set) is
# killed and waited for, the tmpfs unmounted and $work removed.
start_private_tmpfs() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pid=
  trap _private_tmpfs_cleanup EXIT
  mkdir -p "$work/fs"
  check "a $2 MiB tmpfs" mount -t tmpfs -o "size=$2m" tmpfs "$work/fs"
}

_private_tmpfs_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  umount "$work/fs" 2>/dev/null
  rm -rf "$work"
}
