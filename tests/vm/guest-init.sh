#!/bin/busybox sh
# shellcheck shell=dash
# /init of the VM tier's initramfs (copied in by build-vm.sh; runs as PID 1 under busybox).
#
# Contract with run-in-vm.sh, all through the read-write 9p share (mount tag "share"):
#   share/hostpath  the share's path on the host; bound at that same path inside the chroot so the
#                   command sees it where the host does (exported as STRATA_VM_SHARE)
#   share/cmd.sh    POSIX sh script written by the host: exports, cd to the host's cwd, exec CMD ARGS
#   share/rc        written here: CMD's exit status (absent = the guest died before CMD finished)
#   share/boot-error  written here when the guest could not set up the chroot
# The host root arrives read-only over 9p (mount tag "hostroot"), gets a tmpfs overlay so it is
# writable (host paths under /tmp, build trees, /etc all stay where they are; changes vanish at
# poweroff) and fresh proc/sys/dev/run mounts, so the host's userland runs unchanged here.
#
# Traps: busybox ash runs its own applets before $PATH (so `ip` here is busybox's, not iproute2's:
# use /usr/sbin/ip); virtio_pci must be loaded before 9pnet_virtio; bonding/dummy would create
# bond0/dummy0 on load without max_bonds=0/numdummies=0.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# Raw newlines on the serial console: the host prints the command's output as-is.
stty -onlcr 2>/dev/null

verbose=0
case " $(cat /proc/cmdline) " in *" strata.verbose=1 "*) verbose=1 ;; esac
say() { [ "$verbose" = 0 ] || echo "strata-vm: $* (up $(cut -d' ' -f1 /proc/uptime) s)"; }

die() {
  echo "strata-vm: $*"
  [ -f /share/hostpath ] && echo "$*" >/share/boot-error
  sync
  poweroff -f
}

# A failed insmod is not fatal here: the command then fails with its own, clearer message.
load() { modprobe "$@" || echo "strata-vm: modprobe $* failed"; }

# What mounting the host root needs, in order; the rest load in the background meanwhile.
load virtio_pci
load 9pnet_virtio
load 9p
load overlay
# The kernel features the VM tier exists for; loaded up front because modprobe in the chroot
# would look in the host's /lib/modules (absent or for another kernel).
while read -r mod opts; do
  case $mod in '' | '#'*) continue ;; esac
  # shellcheck disable=SC2086  # opts is a list of module parameters
  load "$mod" $opts
done </etc/strata-vm-modules &
modules_pid=$!

mkdir -p /lower /rw /host /share
# msize: 9p's small default turns every exec into many round trips through TCG.
# cache=loose on the read-only root is safe for one run (the guest cannot write it) and makes
# exec and reads hit the guest page cache; the share stays uncached so rc is never stale.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose hostroot /lower ||
  die "cannot mount the host root (9p tag hostroot)"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share ||
  die "cannot mount the results share (9p tag share)"

# A writable view of the host root: tmpfs upper over the read-only 9p lower. Tests can write
# anywhere (build dirs, /var/lib, /etc); it all vanishes at poweroff, except the share.
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /host; then
  echo "strata-vm: overlay over the host root failed; the root stays read-only, /tmp is empty"
  mount --bind /lower /host
  mount -t tmpfs -o mode=1777 tmpfs /host/tmp
fi
say "host root mounted"

hostname strata-vm
/usr/sbin/ip link set lo up

H=/host
mount -t proc proc $H/proc || die "mount proc on the host root"
mount -t sysfs sysfs $H/sys || die "mount sysfs on the host root"
mount -t devtmpfs devtmpfs $H/dev || die "mount devtmpfs on the host root"
mkdir -p $H/dev/pts $H/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $H/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $H/dev/shm
# The host's /run describes the host's daemons and sockets: start empty.
mount -t tmpfs -o mode=0755 tmpfs $H/run || die "mount tmpfs on /run"
mount -t cgroup2 cgroup2 $H/sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs $H/sys/kernel/debug 2>/dev/null
mkdir -p $H/run/lock $H/run/netns
# modprobe inside the chroot: `modprobe -d "$STRATA_VM_MODROOT" MOD OPTS`.
modroot=/run/strata-vm/modroot
mkdir -p $H$modroot/lib/modules
mount --bind /lib/modules $H$modroot/lib/modules

hostpath=$(cat /share/hostpath) || die "share/hostpath missing"
case $hostpath in /*) ;; *) die "share/hostpath is not absolute: $hostpath" ;; esac
# On the read-only root mkdir fails when the path already exists there; either way it is bindable.
mkdir -p "$H$hostpath" 2>/dev/null
mount --bind /share "$H$hostpath" || die "cannot bind the share at $hostpath"

wait "$modules_pid"
say "running the command from share/cmd.sh"
term=${TERM:-dumb}
[ "$term" = linux ] && term=dumb
# stdin from /dev/null: nothing feeds the serial console, a read would hang until the timeout.
chroot $H /usr/bin/env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM="$term" LANG=C.UTF-8 \
  STRATA_VM=1 STRATA_VM_SHARE="$hostpath" STRATA_VM_MODROOT="$modroot" \
  /bin/sh "$hostpath/cmd.sh" </dev/null
rc=$?
say "command exited with $rc"

echo "$rc" >/share/rc.tmp && mv /share/rc.tmp /share/rc
sync
# Even emergency messages ("reboot: Power down") stay off the command's output.
[ "$verbose" = 1 ] || echo 0 >/proc/sys/kernel/printk
umount "$H$hostpath" 2>/dev/null
umount /share 2>/dev/null
poweroff -f
