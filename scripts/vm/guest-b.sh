# Guest B (sourced by /init): Linux 6.12 built from Debian's linux-source-6.12 (kernel-custom.sh),
# q35 + intel-iommu booted with iommu=pt. edu #1 is bound to uio_pci_generic (identity-mapped:
# physical addresses); edu #2 and the NVMe controller go to vfio-pci and are opened through their
# VFIO cdevs + iommufd. Suites: udmabuf (2 MiB huge-page units on this kernel) and uio: (pool
# suite, physical-memory tests, device-DMA proof); vfio: on iommufd (VFIO suite, device-DMA and
# IOMMU-fault proofs, two devices in one IOAS); the kernel's own dmapool_test (run at boot) beside
# dmapool's; UIO interrupts (test/irq.test.ts: edu INTx through /dev/uioN) inside suite-phys.
edus=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && edus="$edus $(basename $d)"
done
set -- $edus
edu=$1 edu2=${2:-}
nvme=""
for d in /sys/bus/pci/devices/*; do [ "$(cat $d/class)" = 0x010802 ] && nvme=$(basename $d); done
echo "dmapool-guest: edu (uio)=$edu edu2 (vfio)=$edu2 nvme=$nvme"
MOCHA_ONLY="node $REPO/node_modules/mocha/bin/mocha.js --no-config --timeout 300000 --reporter spec --no-color"
run bind-uio sh -c "$CLI bind $edu --driver uio_pci_generic && $CLI doctor $edu --provider uio && $CLI doctor --provider udmabuf"
run suite-phys sh -c "cd $REPO && DMAPOOL_TEST_SIM=0 DMAPOOL_TEST_DEVICES=udmabuf,uio:$edu DMAPOOL_UIO_BDF=$edu DMAPOOL_EXPECT_UDMABUF_HUGE=1 $MOCHA"
run bind-vfio sh -c "$CLI bind $edu2 --driver vfio-pci && $CLI bind $nvme --driver vfio-pci && ls -l /dev/iommu /dev/vfio/devices && $CLI doctor $edu2 --memory 256M"
run suite-iommufd sh -c "cd $REPO && DMAPOOL_TEST_SIM=0 DMAPOOL_TEST_DEVICES=vfio:$edu2 DMAPOOL_EDU=$edu2 DMAPOOL_VFIO_BDF2=$nvme DMAPOOL_EXPECT_IOMMU=iommufd $MOCHA_ONLY dist/test/iommufd.test.js dist/test/vfio.test.js dist/test/device-dma.test.js"
# The NVMe driver suite again, now over cdev + iommufd; its write manifest goes to /out for run.sh's image comparison
run suite-nvme sh -c "cd $REPO && DMAPOOL_VFIO_BDF2=$nvme DMAPOOL_EXPECT_IOMMU=iommufd DMAPOOL_NVME_MANIFEST=/run/tmp/nvme-manifest.json DMAPOOL_NVME_BYTES=67108864 $MOCHA_ONLY dist/test/nvme.test.js"
cp /mnt/run/tmp/nvme-manifest.json /out/ 2>/dev/null || echo "dmapool-guest: no NVMe manifest"
# the chroot has no /out: the files go through its /run/tmp and are copied out after
run dmapool-test sh -c "dmesg > /run/tmp/kernel-log.txt; grep 'dmapool test:' /run/tmp/kernel-log.txt; cd $REPO && node scripts/vm/dmapool-test-rows.js /run/tmp/kernel-log.txt /run/tmp/dmapool-test.json udmabuf rbtree,stack,radix 3"
cp /mnt/run/tmp/kernel-log.txt /mnt/run/tmp/dmapool-test.json /out/ 2>/dev/null
