/**
 * Coherent DMA memory for queues and data: the dma_alloc_coherent() of the device's provider
 * (a naturally aligned, DMA-contiguous chunk of one IOMMU-mapped slab), with a CPU view.
 */
import { DmaPoolError } from '../../errors';
import type { Chunk, SlabProvider } from '../../provider';

export class DmaBuffer {
  /** DMA address of byte 0 (what the device is given). */
  readonly dma: number;
  /** The CPU view of the whole buffer (detached once freed). */
  readonly bytes: Uint8Array;
  /** A DataView over the same bytes, for little-endian descriptor fields. */
  readonly view: DataView;
  private freed = false;
  private readonly viewId: number;

  /** @internal Use Nvme.allocBuffer() (or provider-level code): `bytes` of zeroed coherent memory. */
  constructor(private readonly provider: SlabProvider, readonly size: number) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new DmaPoolError('EINVAL', `a DMA buffer size is a positive integer, got ${size}`);
    this.chunk = provider.allocChunk(size);
    try {
      const v = provider.exposeChunk(this.chunk, 0, size);
      this.viewId = v.view;
      this.bytes = new Uint8Array(v.buffer);
      this.view = new DataView(v.buffer);
    } catch (e) {
      provider.freeChunk(this.chunk);
      throw e;
    }
    this.dma = this.chunk.dma;
  }
  private readonly chunk: Chunk;

  get isFreed(): boolean {
    return this.freed;
  }

  /** dma_free_coherent(): detaches the view and returns the chunk. Twice is harmless. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    const escaped = this.provider.releaseViews([this.viewId]);
    this.provider.freeChunks([this.chunk], escaped.length ? new Map([[this.chunk, escaped]]) : undefined);
  }
}
