/**
 * `sim`: no device. Slabs are anonymous memory, populated (and mlocked where permitted) at
 * creation like pinned DMA memory; DMA addresses are fake IOVAs from a private IOVA space that
 * deliberately differs from the CPU addresses. Never device-visible.
 */
import { IovaAllocator } from '../iova';
import { native } from '../native';
import { MappedSlab, SlabProvider, Slab, SlabProviderOptions } from '../provider';

export interface SimOptions extends SlabProviderOptions {
  /** mlock slabs when permitted (default true). */
  lock?: boolean;
  /** First fake IOVA (default 4 GiB, so 32-bit truncation bugs show). */
  iovaBase?: number;
}

export class SimProvider extends SlabProvider {
  readonly kind = 'sim' as const;
  readonly deviceVisible = false;
  readonly description: string;
  private iova: IovaAllocator;
  private lock: boolean;

  constructor(opts: SimOptions = {}) {
    super(native().pageSize, opts);
    const base = opts.iovaBase ?? 0x1_0000_0000;
    this.iova = new IovaAllocator([{ start: base, end: base + 2 ** 46 - 1 }]);
    this.lock = opts.lock ?? true;
    this.description = 'sim: anonymous memory with fake IOVAs — NOT device-visible';
  }

  protected mapSlab(size: number, align: number): MappedSlab {
    const dma = this.iova.alloc(size, align);
    try {
      const m = native().mapAnonymous(size, align, { thp: true, populate: true, lock: this.lock ? 1 : 0 });
      return { mapping: m.id, buffer: m.buffer, dma };
    } catch (e) {
      this.iova.release(dma);
      throw e;
    }
  }

  protected unmapSlab(slab: Slab): void {
    native().unmap(slab.mapping);
    this.iova.release(slab.dma);
  }
}
