#!/usr/bin/env bash
# Guest A kernel: Debian's stock 6.1 kernel image + modules (vfio, vfio-pci, uio, 9p, virtio),
# unpacked (not installed) into the cache, keyed by the package version. Prints the directory.
source "$(dirname "$0")/common.sh"
need_pkgs dpkg-deb:dpkg apt-get:apt
if ((apt_updated == 0)) && [[ ! -f "$CACHE/.apt-updated" || -n "$(find "$CACHE/.apt-updated" -mmin +720)" ]]; then
  apt-get update -qq && touch "$CACHE/.apt-updated"
fi
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[[ -n "$pkg" ]] || die "cannot resolve linux-image-amd64 (apt-get update?)"
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
dir="$CACHE/kernel-stock-$pkg-$ver"
if [[ ! -f "$dir/.complete" ]]; then
  log "downloading $pkg $ver"
  rm -rf "$dir"; mkdir -p "$dir/dl"
  (cd "$dir/dl" && apt-get download "$pkg" >/dev/null)
  dpkg -x "$dir"/dl/*.deb "$dir/root"
  rm -rf "$dir/dl"
  touch "$dir/.complete"
fi
echo "$dir"
