#!/usr/bin/env bash
# Boots one test guest under QEMU/TCG and waits for it, bounded by a timeout.
# Usage: boot.sh a|b KERNEL INITRD OUTDIR TIMEOUT_SECONDS
source "$(dirname "$0")/common.sh"
need_pkgs qemu-system-x86_64:qemu-system-x86
guest="$1" kernel="$2" initrd="$3" out="$4" limit="$5"
mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.status
args=(-machine q35,accel=tcg,kernel-irqchip=split -cpu max -m 2048 -smp 2 -nographic -no-reboot -nic none
      -kernel "$kernel" -initrd "$initrd"
      -virtfs local,path=/,mount_tag=hostfs,security_model=none,readonly=on,multidevs=remap
      -virtfs local,path="$out",mount_tag=out,security_model=none,multidevs=remap)
append="console=ttyS0 quiet panic=-1 no_timer_check dmapool.guest=$guest dmapool.repo=${REPO_GUEST:-$REPO}"
if [[ "$guest" == a ]]; then
  nvme="$out/nvme.img"
  # a fresh all-zero image each boot: run.sh compares it afterwards with what the NVMe suite wrote
  rm -f "$nvme" "$out/nvme-manifest.json"
  truncate -s 64M "$nvme"
  args+=(-device intel-iommu,intremap=on,caching-mode=on
         -device edu,dma_mask=0xffffffffffffffff
         -drive file="$nvme",if=none,id=n0,format=raw -device nvme,serial=dmapool,drive=n0,mdts=10)  # MDTS 4 MiB: commands with chained PRP lists
  append+=" intel_iommu=on"
else
  # Linux 6.12, intel-iommu with iommu=pt: edu #1 (uio_pci_generic) stays identity-mapped for the
  # physical-address proofs (uio, udmabuf); edu #2 and the NVMe go to vfio-pci through the VFIO
  # cdev + iommufd, both attached to one IOAS
  nvme="$out/nvme.img"
  rm -f "$nvme" "$out/nvme-manifest.json"  # the image comparison replays the writes onto zeros
  truncate -s 64M "$nvme"
  args+=(-device intel-iommu,intremap=on,caching-mode=on
         -device edu,dma_mask=0xffffffffffffffff
         -device edu,dma_mask=0xffffffffffffffff
         -drive file="$nvme",if=none,id=n0,format=raw -device nvme,serial=dmapool,drive=n0,mdts=10)
  append+=" intel_iommu=on iommu=pt"
fi
log "booting guest $guest (timeout ${limit}s; console: $out/console.txt)"
start=$(date +%s)
set +e
timeout --foreground -k 10 "$limit" qemu-system-x86_64 "${args[@]}" -append "$append" \
  </dev/null >"$out/console.txt" 2>&1
rc=$?
set -e
echo "$(( $(date +%s) - start ))" > "$out/seconds"
if ((rc == 124 || rc == 137)); then
  log "guest $guest hung: no poweroff within ${limit}s. Console tail:"
  tail -30 "$out/console.txt" >&2
  exit 1
fi
if ! grep -q 'dmapool-guest: done' "$out/console.txt"; then
  log "guest $guest did not finish (qemu exit $rc). Console tail:"
  tail -40 "$out/console.txt" >&2
  exit 1
fi
log "guest $guest finished in $(cat "$out/seconds")s"
