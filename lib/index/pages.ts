/**
 * Per-page and per-block bookkeeping of one pool, in typed arrays outside DMA memory.
 * Block ids are global: page * blocksPerPage + index-in-page. `next` links blocks into
 * free lists (per page, or one pool-wide stack, depending on the index strategy).
 */
import type { Chunk } from '../provider';

export const NONE = -1;

export class PageTable {
  readonly blocksPerPage: number;
  readonly allocation: number;
  count = 0;
  /** DMA address of each page. */
  dma: Float64Array;
  /** Allocated blocks per page. */
  inUse: Int32Array;
  /** First free block of each page's free list (per-page strategies), or NONE. */
  freeHead: Int32Array;
  /** Free-list link per block. */
  next: Int32Array;
  /** 1 while a block is allocated. */
  allocated: Uint8Array;
  /** The provider chunk behind each page (CPU view + release). */
  chunks: Chunk[] = [];

  constructor(blocksPerPage: number, allocation: number, capacity = 16) {
    this.blocksPerPage = blocksPerPage;
    this.allocation = allocation;
    this.dma = new Float64Array(capacity);
    this.inUse = new Int32Array(capacity);
    this.freeHead = new Int32Array(capacity);
    this.next = new Int32Array(capacity * blocksPerPage);
    this.allocated = new Uint8Array(capacity * blocksPerPage);
  }

  get capacity(): number {
    return this.dma.length;
  }

  /**
   * Adds a page over `chunk`; its blocks are linked in ascending order (first block first,
   * the last one's link NONE). Returns the page id.
   */
  add(chunk: Chunk): number {
    if (this.count === this.dma.length) this.grow();
    const p = this.count++;
    const bpp = this.blocksPerPage;
    const base = p * bpp;
    this.dma[p] = chunk.dma;
    this.inUse[p] = 0;
    this.freeHead[p] = base;
    this.chunks.push(chunk);
    const next = this.next;
    const last = base + bpp - 1;
    for (let b = base; b < last; b++) next[b] = b + 1;
    next[last] = NONE;
    return p;
  }

  private grow(): void {
    const cap = this.dma.length * 2;
    const bpp = this.blocksPerPage;
    const f64 = (a: Float64Array) => { const b = new Float64Array(cap); b.set(a); return b; };
    const i32 = (a: Int32Array, n: number) => { const b = new Int32Array(n); b.set(a); return b; };
    this.dma = f64(this.dma);
    this.inUse = i32(this.inUse, cap);
    this.freeHead = i32(this.freeHead, cap);
    this.next = i32(this.next, cap * bpp);
    const al = new Uint8Array(cap * bpp);
    al.set(this.allocated);
    this.allocated = al;
  }

  /** Bytes of bookkeeping per page (page arrays + per-block link and state). */
  get bytesPerPage(): number {
    return 8 + 4 + 4 + this.blocksPerPage * (4 + 1);
  }
}
