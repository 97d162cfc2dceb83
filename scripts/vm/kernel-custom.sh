#!/usr/bin/env bash
# Guest B kernel: Debian's linux-source-6.12 (suite trixie, fetched through the private apt list of
# scripts/lib/debian-source.sh; the system's apt sources are never changed), configured as
# `make allnoconfig` with exactly the options of scripts/vm/guest-b.config (KCONFIG_ALLCONFIG:
# IOMMUFD, VFIO cdev, no-IOMMU VFIO, udmabuf, uio_pci_generic, intel-iommu, the built-in
# DMAPOOL_TEST, and what the q35 guest and node need; all built in). A minimal base instead of
# x86_64_defconfig + kvm_guest.config: it compiles only what the guest runs. Cached under
# ~/.cache/dmapool keyed by source version + the config fragment + this script. Prints the path
# of the bzImage; the build's wall time goes to the cache directory's build-seconds.
source "$(dirname "$0")/common.sh"
need_pkgs make:make gcc:gcc flex:flex bison:bison bc:bc /usr/include/libelf.h:libelf-dev \
  /usr/include/openssl/ssl.h:libssl-dev xz:xz-utils cpio:cpio apt-get:apt dpkg-deb:dpkg
SERIES=6.12
source "$REPO/scripts/lib/debian-source.sh"
exec 9>"$CACHE/kernel-custom.lock"
flock 9
ver=$(debsrc_candidate "$SERIES") || {
  # offline: the newest kernel already built from this fragment + script
  frag_hash=$(cat "$VM_DIR/guest-b.config" "$0" | sha256sum | cut -c1-12)
  cached=$(ls -d "$CACHE"/kernel-custom-"$SERIES".*-"$frag_hash" 2>/dev/null | sort -V | tail -1)
  [[ -n "$cached" && -f "$cached/bzImage" ]] || die "linux-source-$SERIES: ${reason:-not available} (and no cached build)"
  log "using the cached $(basename "$cached") (${reason:-apt unavailable})"
  echo "$cached/bzImage"; exit 0
}
frag="$VM_DIR/guest-b.config"
key="$ver-$(cat "$frag" "$0" | sha256sum | cut -c1-12)"
dir="$CACHE/kernel-custom-$key"
if [[ -f "$dir/bzImage" ]]; then echo "$dir/bzImage"; exit 0; fi
tarball=$(debsrc_tarball "$SERIES" "$ver") || die "linux-source-$SERIES $ver: ${reason:-download failed}"
log "building guest B kernel $key (linux-source-$SERIES $ver)"
start=$(date +%s)
work="$CACHE/build-custom"
rm -rf "$work"; mkdir -p "$work"
tar -C "$work" -xf "$tarball"
src="$work/linux-source-$SERIES"
(
  cd "$src"
  awk '!/^#/ && NF { if ($2 == "y") print "CONFIG_" $1 "=y"; else if ($2 == "n") print "# CONFIG_" $1 " is not set";
    else print "CONFIG_" $1 "=" $2 }' "$frag" >"$work/allconfig"
  KCONFIG_ALLCONFIG="$work/allconfig" make -s allnoconfig >/dev/null
  make -s olddefconfig >/dev/null
  # every option of the fragment must have stuck (a missing dependency would silently drop it)
  awk '!/^#/ && NF && $2 == "y" { print $1 }' "$frag" | while read -r opt; do
    grep -q "^CONFIG_$opt=y" .config || { echo "CONFIG_$opt did not stick" >&2; exit 1; }
  done
  grep -q '^CONFIG_DMA_SHARED_BUFFER=y' .config || { echo "CONFIG_DMA_SHARED_BUFFER (udmabuf's) is not selected" >&2; exit 1; }
  make -s -j"$(( $(nproc) + 1 ))" bzImage >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
)
mkdir -p "$dir"
cp "$src/arch/x86/boot/bzImage" "$dir/bzImage.tmp" && mv "$dir/bzImage.tmp" "$dir/bzImage"
cp "$src/.config" "$dir/config"
echo "$(( $(date +%s) - start ))" > "$dir/build-seconds"
log "guest B kernel built in $(cat "$dir/build-seconds")s"
rm -rf "$work"
echo "$dir/bzImage"
