#!/usr/bin/env bash
# Builds a busybox initramfs: /init = guest-init.sh, plus (for a modular kernel) the .ko files
# of the requested modules and all their dependencies, listed in load order in /modules.order.
# Usage: initramfs.sh OUT.cpio.gz [MODULES_DIR MODULE...]
source "$(dirname "$0")/common.sh"
need_pkgs /bin/busybox:busybox-static cpio:cpio modinfo:kmod gzip:gzip
out="$1"; shift
moddir="${1:-}"; [[ $# -gt 0 ]] && shift
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,mnt,out,tmp,lib/modules}
cp /bin/busybox "$stage/bin/busybox"
for app in $(/bin/busybox --list); do [[ "$app" == busybox ]] || ln -sf busybox "$stage/bin/$app"; done
cp "$VM_DIR/guest-init.sh" "$stage/init"
chmod +x "$stage/init"
: > "$stage/modules.order"
if [[ -n "$moddir" ]]; then
  declare -A done_=()
  ko_of() { find "$moddir" -name "$1.ko" -o -name "${1//_/-}.ko" -o -name "${1//-/_}.ko" | head -1; }
  add() { # depth-first: dependencies before the module
    local m="$1" ko deps d
    [[ -n "${done_[$m]:-}" ]] && return 0
    done_[$m]=1
    ko=$(ko_of "$m")
    [[ -n "$ko" ]] || { log "module $m not found (built in?)"; return 0; }
    deps=$(modinfo -F depends "$ko" | tr ',' ' ')
    for d in $deps; do add "$d"; done
    cp "$ko" "$stage/lib/modules/"
    basename "$ko" >> "$stage/modules.order"
  }
  for m in "$@"; do add "$m"; done
fi
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
log "initramfs $(du -h "$out" | cut -f1) with $(wc -l < "$stage/modules.order") modules"
