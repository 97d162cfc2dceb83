# Guest B (sourced by /init): no IOMMU, custom kernel with udmabuf, UIO and no-IOMMU VFIO built in.
# edu bound to uio_pci_generic; the pool suite on udmabuf and uio: and the device-DMA proof.
MOCHA="node $REPO/node_modules/mocha/bin/mocha.js --config $REPO/.mocharc.json"
run bind-uio sh -c "cd $REPO && node dist/lib/cli.js bind $edu --driver uio_pci_generic"
run suite-phys sh -c "cd $REPO && DMAPOOL_TEST_DEVICES=udmabuf,uio:$edu DMAPOOL_UIO_BDF=$edu $MOCHA"
