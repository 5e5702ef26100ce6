#!/usr/bin/env bash
# Prepares the VM tier's kernel and initramfs and prints the directory holding them
# (kernel, initrd.img, manifest.txt) on stdout; progress goes to stderr.
#
#   ${STRATA_CACHE:-$HOME/.cache/strata}/vm/<kernel version>/
#       linux-image-<kver>_<version>_amd64.deb    the pinned package, downloaded once
#       vmlinux (or vmlinuz)                       the kernel, extracted once
#       <hash>/{kernel,initrd.img,manifest.txt}    one image per hash of its inputs
#
# The hash covers guest-init.sh, this script (module list, layout) and the versions of the
# Debian packages copied in, so editing any of them builds a new image next to the old ones.
# Idempotent and safe to run concurrently: a cached image is returned without taking the lock;
# a build happens under flock in a temp dir inside the cache and is renamed into place.
#
# Needs (scripts/install-deps.sh test): busybox-static dmsetup cpio kmod iproute2 and apt's
# package lists. Runs as any user that can write the cache; no kernel is installed.
set -euo pipefail

# Pinned kernel: the newest Debian 6.1 ABI in bookworm(-security) when this was written. The
# security archive keeps only its newest ABI, so when the download fails, pick the newest of
# `apt-cache policy 'linux-image-6.1.0-*-amd64'` and update both the name and the version here.
KERNEL_DEB=linux-image-6.1.0-56-amd64=6.1.192-2

# Loaded by the guest's /init in this order (after the 9p transport), with these parameters.
# bonding and dummy would otherwise create bond0/dummy0 on load.
MODULES=(
  "virtio_pci"
  "9pnet_virtio"
  "9p"
  "overlay"
  "virtio_net"
  "bonding max_bonds=0"
  "8021q"
  "macvlan"
  "dummy numdummies=0"
  "veth"
  "bridge"
  "sch_tbf"
  "tun"
  "dm-multipath"
  "dm-round-robin"
  "nbd"
  "loop"
  "crc32c_generic"
  "ext4"
  "xfs"
  # Kernel TLS (kTLS) for NBD over TLS: the ULP and the AEAD it installs keys into (the
  # kernel instantiates gcm(aes) on setsockopt(SOL_TLS); without gcm here it cannot, and
  # OpenSSL's SSL_OP_ENABLE_KTLS silently stays in userspace).
  "tls"
  "gcm"
  "ghash_generic"
  "ctr"
  "aes_generic"
)

log() { echo "build-vm: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The pin is what we test with; when the mirror no longer carries it (the security archive
# keeps only its newest ABI) and no cached copy exists, fall back to the newest Debian 6.1
# kernel the mirror has, loudly, so a fresh machine still gets a VM tier.
resolve_kernel() {
  local pinned=$1 p=${1%%=*} v=${1#*=}
  if ls "${STRATA_CACHE:-$HOME/.cache/strata}/vm/${p#linux-image-}/${p}_${v}_amd64.deb" >/dev/null 2>&1 ||
    [ -n "$(apt-cache madison "$p" 2>/dev/null | awk -v v="$v" '$3 == v')" ]; then
    echo "$pinned"
    return
  fi
  local newest
  newest=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
    awk '{print $1}' | sort -V | tail -n 1)
  [ -n "$newest" ] || die "kernel $pinned is not in the mirror and no linux-image-6.1.0-N-amd64 is (run apt-get update)"
  local nv
  nv=$(apt-cache madison "$newest" | awk '{print $3}' | sort -V | tail -n 1)
  log "warning: pinned $pinned is gone from the mirror; using $newest=$nv (bump KERNEL_DEB)"
  echo "$newest=$nv"
}
KERNEL_DEB=$(resolve_kernel "$KERNEL_DEB")
kpkg=${KERNEL_DEB%%=*}
kpkg_version=${KERNEL_DEB#*=}
kver=${kpkg#linux-image-}
cache=${STRATA_CACHE:-$HOME/.cache/strata}/vm/$kver
deb=$cache/${kpkg}_${kpkg_version}_amd64.deb

for tool in apt-get dpkg-deb dpkg-query depmod modprobe cpio ldd sha256sum flock; do
  command -v "$tool" >/dev/null || die "missing '$tool' (run scripts/install-deps.sh test)"
done
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is missing or not static (install busybox-static)"
fi
for bin in /usr/sbin/ip /usr/sbin/dmsetup; do
  [ -x "$bin" ] || die "missing $bin (install iproute2 and dmsetup)"
done

pkg_versions=$(dpkg-query -W busybox-static iproute2 dmsetup libdevmapper1.02.1 2>/dev/null || true)
hash=$(
  {
    cat "$here/guest-init.sh" "${BASH_SOURCE[0]}"
    echo "$pkg_versions"
  } | sha256sum | cut -c1-16
)
out=$cache/$hash

if [ -f "$out/initrd.img" ] && [ -f "$out/kernel" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/initrd.img" ] && [ -f "$out/kernel" ]; then # built while we waited
  echo "$out"
  exit 0
fi

rm -rf "$cache"/.build.* # left by a killed build; none can be running while we hold the lock
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -f "$deb" ]; then
  log "downloading $KERNEL_DEB"
  # apt checks the file against the signed package lists.
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$KERNEL_DEB" >&2) ||
    die "apt-get download $KERNEL_DEB failed: run 'apt-get update'; if the version is gone from" \
      "the mirror, bump KERNEL_DEB in $0 (see apt-cache policy 'linux-image-6.1.0-*-amd64')"
  mv "$work/$(basename "$deb")" "$deb"
fi

log "building image $hash for $kver"
kroot=$work/kernel
mkdir -p "$kroot"
dpkg-deb -x "$deb" "$kroot"
kmods=$kroot/lib/modules/$kver
if [ ! -f "$kroot/boot/vmlinuz-$kver" ] || [ ! -d "$kmods" ]; then
  die "$deb does not hold kernel $kver"
fi
depmod -b "$kroot" "$kver"

img=$work/image
root=$work/initramfs
mkdir -p "$img" "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,tmp,run}
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Dynamic binaries with the libraries ldd lists, at the paths ldd prints (the initramfs has the
# same merged-/usr links as the host, so the loader finds them by those names).
copy_with_libs() {
  local bin=$1 lib
  install -D -m 0755 "$bin" "$root$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
  done
}
copy_with_libs /usr/sbin/ip
copy_with_libs /usr/sbin/dmsetup

# Modules: each one with the dependencies modprobe resolves against the package's own tree.
: >"$root/etc/strata-vm-modules"
for entry in "${MODULES[@]}"; do
  read -r mod _ <<<"$entry"
  deps=$(modprobe -d "$kroot" -S "$kver" --show-depends "$mod") || die "module $mod not in $kver"
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    rel=${path#"$kroot"/}
    [ -e "$root/$rel" ] || install -D -m 0644 "$path" "$root/$rel"
  done <<<"$deps"
  echo "$entry" >>"$root/etc/strata-vm-modules"
done
cp "$kmods"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

install -m 0755 "$here/guest-init.sh" "$root/init"

# Uncompressed: unpacking gzip costs ~0.5 s of TCG time at every boot; the cache has the room.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet >"$img/initrd.img")

# The kernel, once per package: the uncompressed ELF vmlinux booted through its PVH entry point
# skips the bzImage's xz self-decompression, ~4 s under TCG. The bzImage is the fallback.
if [ ! -f "$cache/vmlinux" ] && [ ! -f "$cache/vmlinuz" ]; then
  kimg=$kroot/boot/vmlinuz-$kver
  if grep -qx 'CONFIG_PVH=y' "$kroot/boot/config-$kver" && command -v xz >/dev/null &&
    offset=$(LC_ALL=C grep -abo -m1 $'\xfd''7zXZ' "$kimg" | head -n 1 | cut -d: -f1) && [ -n "$offset" ] &&
    xz -dc --single-stream <(tail -c +$((offset + 1)) "$kimg") >"$work/vmlinux" 2>/dev/null &&
    [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
    mv "$work/vmlinux" "$cache/vmlinux"
  else
    log "no PVH vmlinux could be extracted; booting the bzImage (slower)"
    cp "$kimg" "$cache/vmlinuz"
  fi
fi
kfile=$cache/vmlinux
[ -f "$kfile" ] || kfile=$cache/vmlinuz
ln "$kfile" "$img/kernel" 2>/dev/null || cp "$kfile" "$img/kernel"
{
  echo "kernel_deb=$KERNEL_DEB"
  echo "kver=$kver"
  echo "hash=$hash"
  echo "kernel=$(basename "$kfile")"
  echo "modules=$(cd "$root/lib/modules/$kver" && find . -name '*.ko*' | wc -l)"
  echo "$pkg_versions"
} >"$img/manifest.txt"

mv "$img" "$out"
log "image ready: $out ($(du -h "$out/initrd.img" | cut -f1) initramfs)"

# Keep the three newest images per kernel; older ones only belong to stale checkouts.
# shellcheck disable=SC2012  # names are hex hashes
ls -1dt "$cache"/*/ 2>/dev/null | tail -n +4 | while read -r old; do
  [ -f "$old/initrd.img" ] && rm -rf "$old"
done
echo "$out"
