/**
 * A tiny driver for QEMU's `edu` PCI device (vendor 1234, device 11e8): its DMA engine copies
 * between a DMA address and a 4 KiB buffer inside the device. The only honest proof that a DMA
 * address is right is a device that really reads and writes through it.
 */
import type { PciAccess } from '../lib/vfio/pci-access';

const ID = 0x00, LIVENESS = 0x04, DMA_SRC = 0x80, DMA_DST = 0x88, DMA_CNT = 0x90, DMA_CMD = 0x98;
const CMD_START = 1, CMD_FROM_DEVICE = 2;
export const EDU_BUF = 0x40000;
/** QEMU 7.2 rejects a transfer ending exactly at the buffer end, so stay strictly below 4096. */
export const EDU_BUF_SIZE = 4096;

export class Edu {
  transfers = 0;
  constructor(readonly pci: PciAccess) {
    const id = pci.read32(0, ID);
    if (id !== 0x010000ed) throw new Error(`not an edu device: id ${id.toString(16)}`);
    pci.enableBusMaster();
  }

  /** The liveness register returns the bitwise NOT of what was written. */
  liveness(v: number): number {
    this.pci.write32(0, LIVENESS, v);
    return this.pci.read32(0, LIVENESS);
  }

  private run(src: number, dst: number, count: number, cmd: number): void {
    if (count <= 0 || count >= EDU_BUF_SIZE) throw new Error(`edu transfer of ${count} bytes`);
    this.pci.write64(0, DMA_SRC, src);
    this.pci.write64(0, DMA_DST, dst);
    this.pci.write64(0, DMA_CNT, count);
    this.pci.write64(0, DMA_CMD, cmd | CMD_START);
    const deadline = Date.now() + 10000;
    while (this.pci.read64(0, DMA_CMD) & 1n) {
      if (Date.now() > deadline) throw new Error('edu DMA did not complete within 10 s');
    }
    this.transfers++;
  }

  /** Device reads `count` bytes at DMA address `dma` into its buffer at `off`. */
  toDevice(dma: number, off: number, count: number): void {
    if (off + count >= EDU_BUF_SIZE) throw new Error('edu buffer overrun');
    this.run(dma, EDU_BUF + off, count, 0);
  }

  /** Device writes `count` bytes from its buffer at `off` to DMA address `dma`. */
  fromDevice(off: number, dma: number, count: number): void {
    if (off + count >= EDU_BUF_SIZE) throw new Error('edu buffer overrun');
    this.run(EDU_BUF + off, dma, count, CMD_FROM_DEVICE);
  }
}
