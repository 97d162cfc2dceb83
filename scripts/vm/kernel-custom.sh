#!/usr/bin/env bash
# Guest B kernel: Debian's linux-source-6.1 built with CONFIG_UDMABUF, VFIO_NOIOMMU and UIO
# (all built in), cached under ~/.cache/dmapool keyed by source version + config fragment hash.
# ~6.5 minutes on 2 cores the first time. Prints the path of the bzImage.
source "$(dirname "$0")/common.sh"
need_pkgs make:make gcc:gcc flex:flex bison:bison bc:bc /usr/include/libelf.h:libelf-dev \
  /usr/include/openssl/ssl.h:libssl-dev xz:xz-utils cpio:cpio
if [[ ! -f "$CACHE/.apt-updated" || -n "$(find "$CACHE/.apt-updated" -mmin +720)" ]]; then
  apt-get update -qq && touch "$CACHE/.apt-updated"
fi
ver=$(apt-cache policy linux-source-6.1 | awk '/Candidate:/{print $2}')
[[ -n "$ver" && "$ver" != "(none)" ]] || die "linux-source-6.1 not available from apt"
frag="$VM_DIR/guest-b.config"
key="$ver-$(cat "$frag" "$0" | sha256sum | cut -c1-12)"
dir="$CACHE/kernel-custom-$key"
if [[ -f "$dir/bzImage" ]]; then echo "$dir/bzImage"; exit 0; fi
log "building custom kernel $key (linux-source-6.1 $ver; ~7 min on 2 cores)"
work="$CACHE/build-custom"
rm -rf "$work"; mkdir -p "$work"
if [[ ! -f /usr/src/linux-source-6.1.tar.xz ]] || ! dpkg -s linux-source-6.1 2>/dev/null | grep -q "Version: $ver"; then
  apt-get install -y -qq --no-install-recommends "linux-source-6.1=$ver" >/dev/null
fi
tar -C "$work" -xf /usr/src/linux-source-6.1.tar.xz
src="$work/linux-source-6.1"
(
  cd "$src"
  make -s x86_64_defconfig kvm_guest.config >/dev/null
  args=()
  while read -r opt val; do
    [[ -z "$opt" || "$opt" == \#* ]] && continue
    case "$val" in y) args+=(-e "$opt");; n) args+=(-d "$opt");; *) args+=(--set-val "$opt" "$val");; esac
  done < "$frag"
  scripts/config "${args[@]}"
  make -s olddefconfig >/dev/null
  for opt in UDMABUF VFIO_NOIOMMU UIO_PCI_GENERIC VFIO_PCI NET_9P_VIRTIO 9P_FS; do
    grep -q "^CONFIG_$opt=y" .config || { echo "CONFIG_$opt did not stick" >&2; exit 1; }
  done
  make -s -j"$(( $(nproc) + 1 ))" bzImage >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
)
mkdir -p "$dir"
cp "$src/arch/x86/boot/bzImage" "$dir/bzImage.tmp" && mv "$dir/bzImage.tmp" "$dir/bzImage"
cp "$src/.config" "$dir/config"
rm -rf "$work"
echo "$dir/bzImage"
