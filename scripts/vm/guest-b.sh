# Guest B (sourced by /init): no IOMMU; custom kernel with udmabuf, UIO and no-IOMMU VFIO built in.
# The CLI binds edu to uio_pci_generic; the pool suite (stress loops included) on udmabuf and
# uio:, the physical-memory tests (4 KiB mode), the device-DMA proof on both and UIO interrupts
# (test/irq.test.ts: edu INTx through /dev/uioN).
run bind-uio sh -c "$CLI bind $edu --driver uio_pci_generic && $CLI doctor $edu --provider uio && $CLI doctor --provider udmabuf"
run suite-phys sh -c "cd $REPO && DMAPOOL_TEST_SIM=0 DMAPOOL_TEST_DEVICES=udmabuf,uio:$edu DMAPOOL_UIO_BDF=$edu $MOCHA"
