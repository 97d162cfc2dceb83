# Guest A (sourced by /init): q35 + intel-iommu, Debian's stock kernel. The CLI binds edu (taken
# from uio_pci_generic, so unbind has a driver to restore) and the NVMe controller to vfio-pci,
# doctor must pass; then the VFIO suite, the whole pool suite on vfio: (stress loops included),
# the device-DMA proof, the interrupt tests (test/irq.test.ts: edu MSI and INTx, the NVMe's
# MSI-X), the seed benchmark on vfio, and unbind.
nvme=""
for d in /sys/bus/pci/devices/*; do [ "$(cat $d/class)" = 0x010802 ] && nvme=$(basename $d); done
echo uio_pci_generic > /sys/bus/pci/devices/$edu/driver_override
echo $edu > /sys/bus/pci/drivers_probe
echo > /sys/bus/pci/devices/$edu/driver_override
run bind-vfio sh -c "$CLI bind $edu --driver vfio-pci && $CLI bind $nvme --driver vfio-pci --force && $CLI devices"
run doctor sh -c "$CLI doctor $edu --memory 256M"
run suite-vfio sh -c "cd $REPO && DMAPOOL_TEST_SIM=0 DMAPOOL_TEST_DEVICES=vfio:$edu DMAPOOL_VFIO_BDF2=$nvme $MOCHA --ignore dist/test/nvme.test.js"
# The NVMe driver suite on the emulated controller; its write manifest goes to /out for run.sh's image comparison
run suite-nvme sh -c "cd $REPO && DMAPOOL_VFIO_BDF2=$nvme DMAPOOL_EXPECT_IOMMU=type1 DMAPOOL_NVME_MANIFEST=/run/tmp/nvme-manifest.json DMAPOOL_NVME_BYTES=67108864 node $REPO/node_modules/mocha/bin/mocha.js --no-config --timeout 600000 --no-color dist/test/nvme.test.js"
cp /mnt/run/tmp/nvme-manifest.json /out/ 2>/dev/null || echo "dmapool-guest: no NVMe manifest"
run nvme-bench sh -c "$CLI nvme bench $nvme --seconds 3"
run bench-vfio sh -c "cd $REPO && $CLI bench --device vfio:$edu --strategies rbtree,stack,radix --workloads seed-alloc,seed-free,free-random --reps 5 --warmups 8 --no-cold --no-dmapool-test"
run unbind sh -c "$CLI unbind $nvme && $CLI unbind $edu && test \"\$(basename \$(readlink /sys/bus/pci/devices/$edu/driver))\" = uio_pci_generic && echo 'edu is back on uio_pci_generic'"
