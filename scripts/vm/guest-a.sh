# Guest A (sourced by /init): q35 + intel-iommu, Debian's stock kernel. edu bound to vfio-pci;
# the VFIO provider suite, the pool suite on vfio: (stress loops included) and the device-DMA proof.
MOCHA="node $REPO/node_modules/mocha/bin/mocha.js --config $REPO/.mocharc.json"
run bind-vfio sh -c "cd $REPO && node dist/lib/cli.js bind $edu --driver vfio-pci"
run suite-vfio sh -c "cd $REPO && DMAPOOL_TEST_DEVICES=vfio:$edu $MOCHA"
