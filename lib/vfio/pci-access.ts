/**
 * Register-level access to a PCI function for drivers and tests: BAR mmap as an ArrayBuffer,
 * config space, bus mastering, MMIO with single fenced accesses. Two back ends: VFIO (device fd
 * regions) and sysfs (resourceN / config files, for UIO-bound or driverless devices).
 */
import { native } from '../native';

export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;

export abstract class PciAccess {
  protected bars = new Map<number, ArrayBuffer>();
  protected closed = false;
  constructor(readonly bdf: string) {}

  protected abstract mapBarImpl(index: number): ArrayBuffer;
  abstract readConfig(offset: number, length: number): Uint8Array;
  abstract writeConfig(offset: number, bytes: Uint8Array): void;
  protected abstract closeImpl(): void;

  /** BAR `index` mapped as an ArrayBuffer (cached; detached at close). */
  mapBar(index: number): ArrayBuffer {
    let b = this.bars.get(index);
    if (!b) this.bars.set(index, (b = this.mapBarImpl(index)));
    return b;
  }

  configRead16(offset: number): number {
    const b = this.readConfig(offset, 2);
    return b[0] | (b[1] << 8);
  }

  configRead32(offset: number): number {
    const b = this.readConfig(offset, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  configWrite16(offset: number, v: number): void {
    this.writeConfig(offset, Uint8Array.of(v & 0xff, (v >> 8) & 0xff));
  }

  /** Sets Bus Master Enable (and Memory Space Enable) so the device may issue DMA. */
  enableBusMaster(): void {
    const cmd = this.configRead16(PCI_COMMAND);
    this.configWrite16(PCI_COMMAND, cmd | PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
  }

  disableBusMaster(): void {
    this.configWrite16(PCI_COMMAND, this.configRead16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
  }

  read32(bar: number, offset: number): number {
    return Number(native().mmioRead(this.mapBar(bar), offset, 4));
  }

  write32(bar: number, offset: number, v: number): void {
    native().mmioWrite(this.mapBar(bar), offset, BigInt(v >>> 0), 4);
  }

  read64(bar: number, offset: number): bigint {
    return native().mmioRead(this.mapBar(bar), offset, 8);
  }

  write64(bar: number, offset: number, v: bigint | number): void {
    native().mmioWrite(this.mapBar(bar), offset, BigInt(v), 8);
  }

  /** Unmaps BARs (detaching their views) and closes the back end. Twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const b of this.bars.values()) native().unmap(b);
    this.bars.clear();
    this.closeImpl();
  }
}
