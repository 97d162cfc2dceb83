#!/usr/bin/env bash
# npm run test:vm — boots guest A (IOMMU + vfio-pci type1, Debian's stock 6.1 kernel) and guest B
# (Linux 6.12 built from Debian's linux-source-6.12: intel-iommu with iommu=pt, vfio-pci through
# the VFIO cdev + iommufd, udmabuf with huge-page memfds, uio, the kernel's own dmapool_test),
# runs the suites inside, prints their logs, and fails when any guest suite fails, a guest does
# not come up, or it hangs.
# Usage: run.sh [a] [b]   (default: both)
source "$(dirname "$0")/common.sh"
guests=("$@"); ((${#guests[@]})) || guests=(a b)
[[ -f "$REPO/dist/lib/index.js" && -f "$REPO/build/Release/dmapool.node" ]] || die "build first: npm install"
results="${DMAPOOL_VM_OUT:-$REPO/vm-out}"  # not under build/: node-gyp rebuild wipes that
# The guests read the repo over 9p while they run: give them a snapshot of what was built, so
# rebuilding the work tree meanwhile cannot change what a running guest executes.
snap="$results/repo"
rm -rf "$snap"; mkdir -p "$snap/build"
cp -a "$REPO/package.json" "$REPO/.mocharc.json" "$REPO/dist" "$REPO/node_modules" "$REPO/scripts" "$snap/"
cp -a "$REPO/build/Release" "$snap/build/"
export REPO_GUEST="$snap"
fail=0
for g in "${guests[@]}"; do
  out="$results/guest-$g"
  mkdir -p "$out"
  if [[ "$g" == a ]]; then
    kdir=$("$VM_DIR/kernel-stock.sh")
    kernel=$(ls "$kdir"/root/boot/vmlinuz-*)
    moddir=$(ls -d "$kdir"/root/lib/modules/*)
    "$VM_DIR/initramfs.sh" "$out/initrd.gz" "$moddir" virtio_pci 9p 9pnet_virtio vfio-pci vfio_iommu_type1 uio_pci_generic
  else
    kernel=$("$VM_DIR/kernel-custom.sh")
    "$VM_DIR/initramfs.sh" "$out/initrd.gz"
  fi
  "$VM_DIR/boot.sh" "$g" "$kernel" "$out/initrd.gz" "$out" "${DMAPOOL_VM_TIMEOUT:-2400}" || { fail=1; continue; }
  for s in "$out"/*.status; do
    [[ -e "$s" ]] || { log "guest $g ran no suite"; fail=1; break; }
    name=$(basename "$s" .status)
    printf '\n----- guest %s: %s (exit %s) -----\n' "$g" "$name" "$(cat "$s")"
    cat "$out/$name.log"
    [[ "$(cat "$s")" == 0 ]] || { log "guest $g: $name failed"; fail=1; }
  done
  grep -E 'DMAR|dmar.*fault|BUG|Oops|panic' "$out/console.txt" | head -20 || true
done
# Each guest's NVMe image, byte for byte (A: type1, B: iommufd): the NVMe suite recorded every
# write it made (LBA, blocks, pattern seed) in nvme-manifest.json; replay them onto zeros and
# compare with the image QEMU wrote.
for g in "${guests[@]}"; do
  if [[ -f "$results/guest-$g/nvme-manifest.json" ]]; then
    node "$snap/dist/test/nvme-image.js" "$results/guest-$g/nvme-manifest.json" "$results/guest-$g/nvme.img" ||
      { log "guest $g: the NVMe image differs from what the driver wrote"; fail=1; }
  else
    log "guest $g: no NVMe manifest (the NVMe suite did not run to its end)"; fail=1
  fi
done
((fail == 0)) && log "VM test bed passed (${guests[*]})" || log "VM test bed FAILED"
exit "$fail"
