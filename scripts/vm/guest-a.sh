# Guest A (sourced by /init): q35 + intel-iommu, Debian's stock kernel. edu (and the NVMe
# controller) bound to vfio-pci with our CLI; the VFIO suite, the whole pool suite on vfio:
# (stress loops included) and the device-DMA proof.
nvme=""
for d in /sys/bus/pci/devices/*; do [ "$(cat $d/class)" = 0x010802 ] && nvme=$(basename $d); done
MOCHA="node $REPO/node_modules/mocha/bin/mocha.js --config $REPO/.mocharc.json"
CLI="node $REPO/dist/lib/cli.js"
run bind-vfio sh -c "$CLI bind $edu --driver vfio-pci && $CLI bind $nvme --driver vfio-pci --force"
run suite-vfio sh -c "cd $REPO && DMAPOOL_TEST_DEVICES=vfio:$edu DMAPOOL_VFIO_BDF2=$nvme $MOCHA"
run unbind sh -c "$CLI unbind $nvme && $CLI unbind $edu"
