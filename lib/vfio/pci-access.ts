/**
 * Register-level access to a PCI function for drivers and tests: BAR mmap as an ArrayBuffer,
 * config space, bus mastering, MMIO with single fenced accesses. Two back ends: VFIO (device fd
 * regions) and sysfs (resourceN / config files, for UIO-bound or driverless devices).
 */
import { DmaPoolError } from '../errors';
import { checkIrqKind, Interrupts, IrqInfo, IrqKind } from '../irq';
import { native } from '../native';

export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;

/** A BAR mapping: the native mapping id (MMIO goes through it) and its ArrayBuffer. */
export interface BarMapping {
  /** The native mapping id; read32/write32/read64/write64 address the BAR through it. */
  id: number;
  /** Absent when the BAR is longer than the largest ArrayBuffer (4 GiB before Node 22). */
  buffer?: ArrayBuffer;
}

/**
 * A PCI function's registers, from `device.pci()`. Close it with close() — or declare it with
 * `using`, which closes it when the block exits. Every method throws EBADF once it is closed.
 */
export abstract class PciAccess {
  private readonly bars = new Map<number, BarMapping>();
  private closed = false;
  private irqs?: Interrupts;
  /** @internal Made by the providers (device.pci()); `bdf` is the function's address. */
  constructor(
    /** The function's PCI address, e.g. '0000:85:00.0'. */
    readonly bdf: string,
  ) {}

  /** @internal */
  protected abstract mapBarImpl(index: number): BarMapping;
  /** @internal */
  protected abstract readConfigImpl(offset: number, length: number): Uint8Array;
  /** @internal */
  protected abstract writeConfigImpl(offset: number, bytes: Uint8Array): void;
  /** @internal */
  protected abstract closeImpl(): void;
  /** @internal Back ends with interrupts override both. */
  protected irqInfoImpl(kind: IrqKind): IrqInfo {
    return { count: 0, flags: 0 };
  }
  /** @internal */
  protected enableInterruptsImpl(kind: IrqKind, count: number | undefined, onClose: () => void): Interrupts {
    throw new DmaPoolError('ENODEV', `${this.bdf}: this PCI access has no interrupts`);
  }

  /** @internal Throws EBADF once closed: a closed handle never touches a (possibly reused) descriptor. */
  protected checkOpen(): void {
    if (this.closed) throw new DmaPoolError('EBADF', `${this.bdf}: PCI access is closed`);
  }

  /** True once close() ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  private bar(index: number): BarMapping {
    this.checkOpen();
    if (!Number.isInteger(index) || index < 0 || index > 5)
      throw new DmaPoolError('EINVAL', `${this.bdf}: BAR index must be an integer in [0, 5], got ${index}`);
    let b = this.bars.get(index);
    if (!b) this.bars.set(index, (b = this.mapBarImpl(index)));
    return b;
  }

  /**
   * BAR `index` mapped as an ArrayBuffer (cached; detached at close). A BAR longer than the
   * largest ArrayBuffer is EINVAL here; read32/write32/read64/write64 still reach all of it.
   */
  mapBar(index: number): ArrayBuffer {
    const b = this.bar(index);
    if (!b.buffer)
      throw new DmaPoolError('EINVAL', `${this.bdf}: BAR${index} is larger than the largest ArrayBuffer on this Node`,
        'use read32/write32/read64/write64, which reach the whole BAR');
    return b.buffer;
  }

  /** `length` bytes of config space from `offset` (bounds are the kernel's: 256 or 4096 bytes). */
  readConfig(offset: number, length: number): Uint8Array {
    this.checkOpen();
    checkConfigRange(this.bdf, offset, length);
    return this.readConfigImpl(offset, length);
  }

  /** Writes `bytes` to config space at `offset` (EINVAL outside the 4096-byte space). */
  writeConfig(offset: number, bytes: Uint8Array): void {
    this.checkOpen();
    if (!(bytes instanceof Uint8Array)) throw new DmaPoolError('EINVAL', `${this.bdf}: config bytes must be a Uint8Array`);
    checkConfigRange(this.bdf, offset, bytes.length);
    this.writeConfigImpl(offset, bytes);
  }

  /** The little-endian 16-bit config register at `offset`. */
  configRead16(offset: number): number {
    const b = this.readConfig(offset, 2);
    return b[0] | (b[1] << 8);
  }

  /** The little-endian 32-bit config register at `offset` (unsigned). */
  configRead32(offset: number): number {
    const b = this.readConfig(offset, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  /** Writes the low 16 bits of `v` to the config register at `offset`, little-endian. */
  configWrite16(offset: number, v: number): void {
    this.writeConfig(offset, Uint8Array.of(v & 0xff, (v >> 8) & 0xff));
  }

  /** Sets Bus Master Enable (and Memory Space Enable) so the device may issue DMA. */
  enableBusMaster(): void {
    const cmd = this.configRead16(PCI_COMMAND);
    this.configWrite16(PCI_COMMAND, cmd | PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
  }

  /** Clears Bus Master Enable: the device may no longer issue DMA. */
  disableBusMaster(): void {
    this.configWrite16(PCI_COMMAND, this.configRead16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
  }

  /** One fenced 32-bit MMIO read; the offset is bounds-checked against the BAR. */
  read32(bar: number, offset: number): number {
    return Number(native().mmioRead(this.bar(bar).id, offset, 4));
  }

  /** One fenced 32-bit MMIO write of `v >>> 0`; the offset is bounds-checked against the BAR. */
  write32(bar: number, offset: number, v: number): void {
    native().mmioWrite(this.bar(bar).id, offset, BigInt(v >>> 0), 4);
  }

  /** One fenced 64-bit MMIO read; the offset is bounds-checked against the BAR. */
  read64(bar: number, offset: number): bigint {
    return native().mmioRead(this.bar(bar).id, offset, 8);
  }

  /** One fenced 64-bit MMIO write (a number is converted with BigInt()); the offset is bounds-checked. */
  write64(bar: number, offset: number, v: bigint | number): void {
    native().mmioWrite(this.bar(bar).id, offset, typeof v === 'bigint' ? v : BigInt(v), 8);
  }

  /**
   * What the function offers for interrupt `kind` (VFIO_DEVICE_GET_IRQ_INFO; UIO: INTx only):
   * `count` 0 when it has none.
   */
  irqInfo(kind: IrqKind): IrqInfo {
    this.checkOpen();
    return this.irqInfoImpl(checkIrqKind(this.bdf, kind));
  }

  /**
   * Routes `count` vectors of `kind` (default: INTx 1, MSI/MSI-X every vector the function has)
   * into the event loop: see Interrupts. One kind at a time (EBUSY while another Interrupts of
   * this handle is open); closed with this handle.
   */
  enableInterrupts(kind: IrqKind, count?: number): Interrupts {
    this.checkOpen();
    checkIrqKind(this.bdf, kind);
    if (this.irqs && !this.irqs.closed)
      throw new DmaPoolError('EBUSY', `${this.bdf}: ${this.irqs.kind} interrupts are already enabled`,
        'close() them first: a function delivers one interrupt kind at a time');
    let irqs: Interrupts | undefined = undefined;
    irqs = this.enableInterruptsImpl(kind, count, () => {
      if (this.irqs === irqs) this.irqs = undefined;
    });
    this.irqs = irqs;
    return irqs;
  }

  /** The interrupts enabled on this handle, if any. */
  get interrupts(): Interrupts | undefined {
    return this.irqs;
  }

  /** Disables and closes the interrupts, unmaps BARs (detaching their buffers) and closes the back end. Twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.irqs) {
      try { this.irqs.close(); } catch { /* the descriptors are closed regardless; the device is going away */ }
      this.irqs = undefined;
    }
    for (const b of this.bars.values()) native().unmap(b.id);
    this.bars.clear();
    this.closeImpl();
  }

  /**
   * `using pci = dev.pci()`: close() when the block exits — BARs unmapped (their buffers
   * detached), the back end closed; closing twice is harmless. Bus mastering is left as it is:
   * call disableBusMaster() first if the device must stop DMA. The handle is the device's own
   * (dev.pci() returns the same object each time), so once it is disposed dev.pci() hands back
   * the closed handle (EBADF on use): scope `using pci` like the device, or leave the handle to
   * dev.close(), which closes it too.
   */
  [Symbol.dispose](): void {
    this.close();
  }
}

function checkConfigRange(bdf: string, offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > 4096)
    throw new DmaPoolError('EINVAL', `${bdf}: config range [${offset}, ${offset}+${length}) is outside the 4096-byte config space`);
}
