/**
 * DmaPool: Linux's dma_pool over a provider's coherent memory. Pages are `allocation`-byte
 * chunks of DMA-contiguous memory; blocks are laid out in them as mm/dmapool.c does; every
 * piece of allocator state lives in typed arrays outside DMA memory, so a device scribbling
 * on free blocks cannot corrupt the pool.
 */
import { DmaPoolError, hex } from './errors';
import { LinearIndex } from './index/linear';
import type { IndexKind, PageIndex } from './index/page-index';
import { NONE, PageTable } from './index/pages';
import { RbTreeIndex } from './index/rbtree-index';
import { RadixIndex } from './index/radix';
import { StackIndex } from './index/stack';
import { LayoutOptions, PoolGeometry, blockIndex, poolGeometry } from './layout';
import type { SlabProvider } from './provider';

export const POOL_POISON_FREED = 0xa7;
export const POOL_POISON_ALLOCATED = 0xa9;
/** dma_pool names are truncated to fit char name[32]. */
export const POOL_NAME_MAX = 31;

export interface PoolOptions extends LayoutOptions {
  /** Page lookup strategy (default 'rbtree', the seed's). */
  index?: IndexKind;
  /** DMAPOOL_DEBUG: poison blocks and check free blocks for corruption on alloc. */
  debug?: boolean;
  /** Receives debug-mode corruption reports (default: process.emitWarning). */
  onDebugReport?: (report: DebugReport) => void;
}

export interface DebugReport {
  pool: string;
  kind: 'corrupted';
  dma: number;
  /** The kernel-style message, e.g. "dma_pool_alloc chain pool, 0x100001000 (corrupted)". */
  message: string;
  /** Hex dump of the block's first bytes, as the kernel prints it. */
  dump: string;
}

export interface PoolStats {
  name: string;
  /** Blocks allocated now. */
  inUse: number;
  /** Total blocks, counted as the kernel's `pools` file counts them. */
  blocks: number;
  /** Block size after alignment. */
  size: number;
  /** Bytes of coherent memory per page. */
  allocation: number;
  pages: number;
  align: number;
  boundary: number;
  /** Blocks that really fit in one page with this layout. */
  blocksPerPage: number;
  index: IndexKind;
  legacyLayout: boolean;
  debug: boolean;
  /** Pages or tree nodes the index visited so far (its work). */
  indexVisits: number;
  /** Bookkeeping bytes per page (page table + index). */
  metadataBytesPerPage: number;
}

export function makeIndex(kind: IndexKind, pages: PageTable): PageIndex {
  switch (kind) {
    case 'rbtree': return new RbTreeIndex(pages);
    case 'linear': return new LinearIndex(pages);
    case 'stack': return new StackIndex(pages);
    case 'radix': return new RadixIndex(pages);
    default: throw new DmaPoolError('EINVAL', `index must be one of rbtree, linear, stack, radix; got ${String(kind)}`);
  }
}

export class DmaPool {
  readonly name: string;
  readonly geometry: PoolGeometry;
  readonly debug: boolean;
  readonly index: PageIndex;
  private readonly pages: PageTable;
  private readonly size: number;
  private readonly bpp: number;
  private readonly offsets: Int32Array;
  /** boundary === allocation: one window per page, block index = offset / size. */
  private readonly oneWindow: boolean;
  private inUseTotal = 0;
  private destroyed = false;
  private readonly onDebugReport: (r: DebugReport) => void;

  /** @internal Use Device.createPool(). */
  constructor(
    name: string,
    requestedSize: number,
    opts: PoolOptions,
    private readonly provider: SlabProvider,
    private readonly onDestroy: (pool: DmaPool) => void,
  ) {
    if (typeof name !== 'string') throw new DmaPoolError('EINVAL', 'name must be a string');
    this.name = name.slice(0, POOL_NAME_MAX);
    this.geometry = poolGeometry(requestedSize, opts, provider.pageSize);
    this.debug = opts.debug ?? false;
    this.size = this.geometry.size;
    this.bpp = this.geometry.blocksPerPage;
    this.offsets = this.geometry.offsets;
    this.oneWindow = this.geometry.boundary === this.geometry.allocation;
    this.pages = new PageTable(this.bpp, this.geometry.allocation);
    this.index = makeIndex(opts.index ?? 'rbtree', this.pages);
    this.onDebugReport = opts.onDebugReport ??
      ((r) => process.emitWarning(`${r.message}\n${r.dump}`, 'DmaPoolWarning'));
  }

  /** dma_pool_alloc(): the DMA address of a free block (contents undefined; poisoned in debug). */
  alloc(): number {
    return this.allocBlock(false);
  }

  /** dma_pool_zalloc(): like alloc(), with the block's `size` bytes zeroed. */
  zalloc(): number {
    return this.allocBlock(true);
  }

  private allocBlock(zero: boolean): number {
    if (this.destroyed) throw this.destroyedError();
    let b = this.index.take();
    if (b === NONE) {
      this.addPage();
      b = this.index.take();
    }
    const pages = this.pages;
    pages.allocated[b] = 1;
    const p = (b / this.bpp) | 0;
    pages.inUse[p]++;
    this.inUseTotal++;
    const off = this.offsets[b - p * this.bpp];
    const dma = pages.dma[p] + off;
    if (this.debug) this.debugCheckFree(p, off, dma);
    if (zero) this.blockView(p, off).fill(0);
    else if (this.debug) this.blockView(p, off).fill(POOL_POISON_ALLOCATED);
    return dma;
  }

  private addPage(): void {
    const chunk = this.provider.allocChunk(this.geometry.allocation);
    const p = this.pages.add(chunk);
    this.index.addPage(p);
    if (this.debug) new Uint8Array(chunk.slab.buffer, chunk.offset, this.geometry.allocation).fill(POOL_POISON_FREED);
  }

  /**
   * Resolves a DMA address to its global block id, or throws (pool unchanged):
   * EFAULT when no page holds it, EINVAL when no block starts there.
   */
  private resolve(dma: number, op: string): number {
    if (this.destroyed) throw this.destroyedError();
    if (typeof dma !== 'number') throw new DmaPoolError('EINVAL', `${op}: DMA address must be a number, got ${typeof dma}`);
    // NaN or a negative number would otherwise compare its way into some page of the tree
    const p = dma >= 0 ? this.index.findPage(dma) : -1;
    if (p < 0) throw new DmaPoolError('EFAULT', `${op} ${this.name}, ${hex(dma)} (bad dma)`);
    const off = dma - this.pages.dma[p];
    let idx: number;
    if (this.oneWindow) {
      idx = off / this.size;
      if (idx !== (idx | 0) || idx >= this.bpp) idx = -1;
    } else {
      idx = blockIndex(this.geometry, off);
    }
    if (idx < 0) throw new DmaPoolError('EINVAL', `${op} ${this.name}, ${hex(dma)} is not the start of a block`);
    return p * this.bpp + idx;
  }

  /** dma_pool_free(): returns the block at `dma`. Throws EFAULT/EINVAL/EALREADY/EBADF (pool unchanged). */
  free(dma: number): void {
    const b = this.resolve(dma, 'dma_pool_free');
    const pages = this.pages;
    if (pages.allocated[b] === 0)
      throw new DmaPoolError('EALREADY', `dma_pool_free ${this.name}, dma ${hex(dma)} already free`);
    pages.allocated[b] = 0;
    const p = (b / this.bpp) | 0;
    pages.inUse[p]--;
    this.inUseTotal--;
    if (this.debug) this.blockView(p, this.offsets[b - p * this.bpp]).fill(POOL_POISON_FREED);
    this.index.put(b);
  }

  /** A CPU view of exactly `size` bytes of the allocated block at `dma`. Detached when memory is unmapped. */
  view(dma: number): Uint8Array {
    const b = this.resolve(dma, 'view');
    if (this.pages.allocated[b] === 0)
      throw new DmaPoolError('EALREADY', `view ${this.name}, dma ${hex(dma)}: block is free`);
    const p = (b / this.bpp) | 0;
    return this.blockView(p, this.offsets[b - p * this.bpp]);
  }

  /** True when `dma` is the start of an allocated block of this pool. */
  owns(dma: number): boolean {
    try {
      return this.pages.allocated[this.resolve(dma, 'owns')] === 1;
    } catch {
      return false;
    }
  }

  private blockView(page: number, off: number): Uint8Array {
    const c = this.pages.chunks[page];
    return new Uint8Array(c.slab.buffer, c.offset + off, this.size);
  }

  private debugCheckFree(page: number, off: number, dma: number): void {
    const v = this.blockView(page, off);
    for (let i = 0; i < v.length; i++) {
      if (v[i] !== POOL_POISON_FREED) {
        this.onDebugReport({
          pool: this.name, kind: 'corrupted', dma,
          message: `dma_pool_alloc ${this.name}, ${hex(dma)} (corrupted)`,
          dump: hexDump(v.subarray(0, Math.min(v.length, 32))),
        });
        return;
      }
    }
  }

  get stats(): PoolStats {
    const g = this.geometry;
    return {
      name: this.name,
      inUse: this.inUseTotal,
      blocks: this.pages.count * g.reportedBlocksPerPage,
      size: g.size,
      allocation: g.allocation,
      pages: this.pages.count,
      align: g.align,
      boundary: g.boundary,
      blocksPerPage: g.blocksPerPage,
      index: this.index.kind,
      legacyLayout: g.legacyLayout,
      debug: this.debug,
      indexVisits: this.index.visits,
      metadataBytesPerPage: this.pages.bytesPerPage + this.index.bytesPerPage,
    };
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Verifies the index's invariants and the page table's counts; throws on the first violation. */
  check(): void {
    this.index.check();
    let total = 0;
    for (let p = 0; p < this.pages.count; p++) {
      let n = 0;
      for (let i = 0; i < this.bpp; i++) n += this.pages.allocated[p * this.bpp + i];
      if (n !== this.pages.inUse[p]) throw new Error(`page ${p}: ${n} allocated blocks, inUse says ${this.pages.inUse[p]}`);
      total += n;
    }
    if (total !== this.inUseTotal) throw new Error(`pool: ${total} blocks allocated, counter says ${this.inUseTotal}`);
  }

  /**
   * dma_pool_destroy(). With blocks still allocated it throws EBUSY and changes nothing (the
   * memory stays mapped: a device may still DMA into it). Otherwise every page goes back to the
   * provider and all views over them are detached once their slabs are unmapped. Twice is harmless.
   */
  destroy(): void {
    if (this.destroyed) return;
    if (this.inUseTotal > 0)
      throw new DmaPoolError('EBUSY', `dma_pool_destroy ${this.name} busy (${this.inUseTotal} blocks in use)`,
        'free every block before destroying the pool');
    this.destroyed = true;
    this.provider.freeChunks(this.pages.chunks);
    this.pages.chunks = [];
    this.onDestroy(this);
  }

  private destroyedError(): DmaPoolError {
    return new DmaPoolError('EBADF', `pool ${this.name} was destroyed`);
  }
}

/** The kernel's print_hex_dump layout: 16 bytes per line, offset prefix. */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${i.toString(16).padStart(8, '0')}: ${row}`);
  }
  return lines.join('\n');
}
