#!/usr/bin/env bash
# Runs CMD [ARGS...] as root inside a QEMU VM booted with the VM tier's Debian 6.1 kernel, in the
# host's current directory, with the host's userland (its root shared read-only over 9p and made
# writable by a tmpfs overlay whose changes are discarded at poweroff). Prints the command's
# output (the guest's serial console) and exits with the command's exit status.
#
# Usage: tests/vm/run-in-vm.sh CMD [ARGS...]
# Environment:
#   STRATA_VM_ENV       space-separated names of variables to pass into the guest command
#   STRATA_VM_TIMEOUT   hard limit for boot + command in seconds (default 600)
#   STRATA_VM_MEM       guest memory in MiB (default 1024)
#   STRATA_VM_SMP       guest CPUs (default 2)
#   STRATA_VM_VERBOSE=1 show kernel messages and the guest's boot steps
#   STRATA_VM_KEEP=1    keep the share (cmd.sh, rc) and print its path
# Inside the guest: STRATA_VM=1; STRATA_VM_SHARE is a directory shared read-write with the host
# (at the same path on both sides, the only place where writes outlive the VM); modules beyond the
# preloaded ones (build-vm.sh MODULES) load with `modprobe -d "$STRATA_VM_MODROOT" MOD`.
# Exit status: CMD's; 124 when the hard timeout fired; 125 when the VM could not run CMD or died
# before CMD finished (a message on stderr says which).
set -euo pipefail

log() { echo "run-in-vm: $*" >&2; }
die() {
  log "error: $*"
  exit 125
}

[ $# -ge 1 ] || {
  sed -n '2,20s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
timeout_s=${STRATA_VM_TIMEOUT:-600}
mem=${STRATA_VM_MEM:-1024}
smp=${STRATA_VM_SMP:-2}
for v in timeout_s mem smp; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
qemu="qemu-system-x86_64"
command -v "$qemu" >/dev/null || die "missing $qemu (run scripts/install-deps.sh test)"

image=$("$here/build-vm.sh") || die "could not prepare the VM image (tests/vm/build-vm.sh)"

share=$(mktemp -d "${TMPDIR:-/tmp}/strata-vm.XXXXXX")
case $share in *$'\n'* | *,*) die "unusable share path (newline or comma): $share" ;; esac
vm_pid=
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [ -n "$vm_pid" ]; then
    kill -TERM "$vm_pid" 2>/dev/null || true
    wait "$vm_pid" 2>/dev/null || true
  fi
  if [ "${STRATA_VM_KEEP:-0}" = 1 ]; then log "share kept at $share"; else rm -rf "$share"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# The command reaches the guest as a POSIX sh script: every word single-quoted, so spaces,
# quotes and newlines in arguments, values and the cwd survive unchanged.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  echo "# written by run-in-vm.sh for: $(date -u +%FT%TZ)"
  for name in ${STRATA_VM_ENV:-}; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "STRATA_VM_ENV: '$name' is not a variable name"
    if [ -n "${!name+set}" ]; then echo "export $name=$(quote "${!name}")"; fi
  done
  echo "cd -- $(quote "$PWD") || exit 125"
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
  echo
} >"$share/cmd.sh"
printf '%s\n' "$share" >"$share/hostpath"

# no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss its ticks and
# panic the boot ("IO-APIC + timer doesn't work!"; seen at load 20 on 2 cores).
append="console=ttyS0 panic=-1 no_timer_check"
if [ "${STRATA_VM_VERBOSE:-0}" = 1 ]; then append+=" strata.verbose=1"; else append+=" quiet loglevel=3"; fi

# TCG: /dev/kvm on the machines this runs on cannot run a stock kernel. The serial console is the
# only output device; stdin is /dev/null so nothing waits on it and a tty's modes are never touched.
# -nodefaults drops the emulated VGA, NIC, floppy and CD-ROM: nothing here needs them.
vm=(
  "$qemu" -accel tcg -cpu max -smp "$smp" -m "$mem"
  -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot
  -kernel "$image/kernel" -initrd "$image/initrd.img" -append "$append"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$share,mount_tag=share,security_model=none"
)

start=$(date +%s%N)
timeout -k 10 "$timeout_s" "${vm[@]}" </dev/null &
vm_pid=$!
set +e
wait "$vm_pid"
vm_status=$?
set -e
vm_pid=
elapsed_ms=$((($(date +%s%N) - start) / 1000000))

if [ "$vm_status" = 124 ]; then
  log "error: timed out after ${timeout_s}s (STRATA_VM_TIMEOUT); VM killed"
  exit 124
fi
if [ -f "$share/rc" ]; then
  rc=$(cat "$share/rc")
  [[ $rc =~ ^[0-9]+$ ]] || die "guest wrote a malformed exit status: '$rc'"
  log "exit status $rc, VM wall time ${elapsed_ms} ms"
  exit "$rc"
fi
if [ -f "$share/boot-error" ]; then
  die "guest could not run the command: $(cat "$share/boot-error")"
fi
die "VM exited (qemu status $vm_status) after ${elapsed_ms} ms without reporting an exit status" \
  "(kernel panic or crash? rerun with STRATA_VM_VERBOSE=1)"
