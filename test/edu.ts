/**
 * A tiny driver for QEMU's `edu` PCI device (vendor 1234, device 11e8): its DMA engine copies
 * between a DMA address and a 4 KiB buffer inside the device. The only honest proof that a DMA
 * address is right is a device that really reads and writes through it.
 */
import type { PciAccess } from '../lib/vfio/pci-access';

const ID = 0x00, LIVENESS = 0x04, DMA_SRC = 0x80, DMA_DST = 0x88, DMA_CNT = 0x90, DMA_CMD = 0x98;
const CMD_START = 1, CMD_FROM_DEVICE = 2, CMD_IRQ = 4;
/** Interrupt registers: status (read), raise (write: status |= v, then MSI or INTx), acknowledge (status &= ~v). */
export const IRQ_STATUS = 0x24, IRQ_RAISE = 0x60, IRQ_ACK = 0x64;
/** The status bit edu sets when a DMA transfer started with the IRQ command bit completes. */
export const DMA_IRQ = 0x100;
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

  /** Raises an interrupt: status |= bits (an MSI per raise with MSI on; INTx stays asserted until acknowledged). */
  raise(bits: number): void {
    this.pci.write32(0, IRQ_RAISE, bits);
  }

  /** Acknowledges: status &= ~bits (INTx deasserts when status reaches 0). */
  ack(bits: number): void {
    this.pci.write32(0, IRQ_ACK, bits);
  }

  irqStatus(): number {
    return this.pci.read32(0, IRQ_STATUS);
  }

  /**
   * Starts a transfer with the command's IRQ bit and returns at once: the device raises DMA_IRQ
   * when it is done (edu runs it from a 100 ms virtual-clock timer). `toDevice`: RAM → buffer.
   */
  startWithIrq(toDevice: boolean, dma: number, off: number, count: number): void {
    if (count <= 0 || count >= EDU_BUF_SIZE || off + count >= EDU_BUF_SIZE) throw new Error(`edu transfer of ${count} bytes at ${off}`);
    this.pci.write64(0, DMA_SRC, toDevice ? dma : EDU_BUF + off);
    this.pci.write64(0, DMA_DST, toDevice ? EDU_BUF + off : dma);
    this.pci.write64(0, DMA_CNT, count);
    this.pci.write64(0, DMA_CMD, (toDevice ? 0 : CMD_FROM_DEVICE) | CMD_IRQ | CMD_START);
  }

  /** True while a transfer runs. */
  busy(): boolean {
    return (this.pci.read64(0, DMA_CMD) & 1n) !== 0n;
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
