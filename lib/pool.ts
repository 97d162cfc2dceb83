/**
 * DmaPool: Linux's dma_pool over a provider's coherent memory. Pages are `allocation`-byte
 * chunks of DMA-contiguous memory; blocks are laid out in them as mm/dmapool.c does; every
 * piece of allocator state lives in typed arrays outside DMA memory, so a device scribbling
 * on free blocks cannot corrupt the pool.
 */
import { DmaPoolError, hex } from './errors';
import { native } from './native';
import { LinearIndex } from './index/linear';
import { INDEX_KINDS, type IndexKind, type PageIndex, type PageIndexFactory } from './index/page-index';
export { INDEX_KINDS };
import { asNoMem, Link, PageTable } from './index/pages';
import { RbTreeIndex } from './index/rbtree-index';
import { RadixIndex } from './index/radix';
import { StackIndex } from './index/stack';
import { LayoutOptions, PoolGeometry, blockIndex, describeValue, poolGeometry } from './layout';
import { isPow2 } from './pow2';
import type { Chunk, ChunkView, SlabProvider } from './provider';

export const POOL_POISON_FREED = 0xa7;
export const POOL_POISON_ALLOCATED = 0xa9;
/**
 * dma_pool names are truncated to fit char name[32]: the kernel keeps 31 bytes. We keep at most
 * 31 code points (whole characters: a surrogate pair is never split), so ASCII names truncate
 * exactly as the kernel's do. The name is otherwise kept as given; the `pools` report escapes
 * control characters (see report.ts).
 */
export const POOL_NAME_MAX = 31;

/** The name as the pool keeps it: at most POOL_NAME_MAX code points. */
export function truncatePoolName(name: string): string {
  if (name.length <= POOL_NAME_MAX) return name; // ≤ 31 UTF-16 units ⇒ ≤ 31 code points
  let i = 0;
  for (let n = 0; n < POOL_NAME_MAX && i < name.length; n++) {
    const c = name.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    i += pair ? 2 : 1;
  }
  return name.slice(0, i);
}

const OPTION_NAMES: readonly string[] = ['align', 'boundary', 'legacyLayout', 'index', 'debug', 'onDebugReport'];

/**
 * What a pool needs from its memory provider (SlabProvider satisfies it). Tests pass doubles
 * that fail on demand and count live chunks.
 */
export interface ChunkSource {
  readonly pageSize: number;
  /** A zeroed, naturally aligned DMA-contiguous chunk; throws (ENOMEM, …) leaving nothing allocated. */
  allocChunk(bytes: number): Chunk;
  freeChunk(chunk: Chunk): void;
  /**
   * Returns all chunks, or throws having returned none. A chunk listed in `escaped` (views of it
   * that JS moved away) is kept out of reuse until those views are collected.
   */
  freeChunks(chunks: readonly Chunk[], escaped?: ReadonlyMap<Chunk, readonly number[]>): void;
  /** A new ArrayBuffer over exactly [offset, offset + length) of a live chunk, and its view id. */
  exposeChunk(chunk: Chunk, offset: number, length: number): ChunkView;
  /** Detaches views; returns the ids of those JS had moved away (still reachable until collected). */
  releaseViews(views: readonly number[]): number[];
  /** CPU address of a chunk's first byte (tests compare it with pagemap). */
  chunkAddress?(chunk: Chunk): bigint;
}

/**
 * @internal Failure-injection seams for tests (not reachable through Device.createPool):
 * the page index and the page table can be replaced by ones that fail on demand.
 */
export interface PoolSeams {
  makeIndex?: PageIndexFactory;
  makePageTable?: (blocksPerPage: number, allocation: number) => PageTable<Chunk>;
}

/** Warning code of a debug reporter that threw (delivered through process.emitWarning). */
export const REPORTER_THREW_WARNING = 'DMAPOOL_DEBUG_REPORTER_THREW';

export interface PoolOptions extends LayoutOptions {
  /** Page lookup strategy (default 'rbtree', the seed's). */
  index?: IndexKind;
  /** DMAPOOL_DEBUG: poison blocks and check free blocks for corruption on alloc. */
  debug?: boolean;
  /**
   * Receives debug-mode corruption reports (default: process.emitWarning). Reports are queued
   * and delivered in a microtask, after the operation that found the corruption has returned,
   * so the reporter may use the pool freely; an exception it throws is passed to
   * process.emitWarning (code DMAPOOL_DEBUG_REPORTER_THREW) and never reaches the pool.
   */
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
    default: throw new DmaPoolError('EINVAL', `index must be one of ${INDEX_KINDS.join(', ')}; got ${describeValue(kind)}`);
  }
}

function einval(message: string, hint?: string): DmaPoolError {
  return new DmaPoolError('EINVAL', message, hint);
}

/** Edit distance ≤ 2 to a known option: the likely typo ("aling" → "align"). */
function suggestOption(name: string): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diag = d[0];
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const up = d[j];
        d[j] = Math.min(d[j] + 1, d[j - 1] + 1, diag + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
        diag = up;
      }
    }
    return d[b.length];
  };
  let best: string | undefined, bestD = 3;
  for (const o of OPTION_NAMES) {
    const dd = dist(name, o);
    if (dd < bestD) { best = o; bestD = dd; }
  }
  return best;
}

/**
 * dma_pool_create()'s option checks beyond the layout rules: `opts` is undefined or a plain
 * object with only known option names, each of the right type. Returns a snapshot (each option
 * read once) so later changes to the caller's object, or getters, cannot change the pool.
 * Throws DmaPoolError EINVAL naming the option; nothing is created.
 */
export function checkPoolOptions(opts: unknown): PoolOptions {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    throw einval(`options must be an object or undefined, got ${describeValue(opts)}`);
  const o = opts as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  try { // a Proxy or a getter may throw anywhere in here
    const proto: unknown = Object.getPrototypeOf(opts);
    // a plain object from this or another realm: its prototype is Object.prototype (or null)
    if (proto !== null && Object.getPrototypeOf(proto) !== null)
      throw einval('options must be a plain object ({ align, boundary, … })');
    for (const k of Object.keys(o)) {
      if (!OPTION_NAMES.includes(k)) {
        const s = suggestOption(k);
        throw einval(`unknown option ${JSON.stringify(k)}`,
          s ? `did you mean ${s}? (options: ${OPTION_NAMES.join(', ')})` : `options: ${OPTION_NAMES.join(', ')}`);
      }
    }
    for (const k of OPTION_NAMES) {
      const v = o[k];
      if (v !== undefined) out[k] = v;
    }
  } catch (e) {
    if (e instanceof DmaPoolError) throw e;
    throw new DmaPoolError('EINVAL', `options could not be read: ${describeValue(e)}`, { cause: e });
  }
  for (const k of ['debug', 'legacyLayout'])
    if (out[k] !== undefined && typeof out[k] !== 'boolean') throw einval(`${k} must be a boolean, got ${describeValue(out[k])}`);
  if (out.index !== undefined && !INDEX_KINDS.includes(out.index as IndexKind))
    throw einval(`index must be one of ${INDEX_KINDS.join(', ')}; got ${describeValue(out.index)}`);
  if (out.onDebugReport !== undefined && typeof out.onDebugReport !== 'function')
    throw einval(`onDebugReport must be a function, got ${describeValue(out.onDebugReport)}`);
  // align and boundary: poolGeometry() applies the create rules (integers, powers of two)
  return out as PoolOptions;
}

/** process.emitWarning, guarded: a warning must never throw out of report delivery. */
function warn(message: string, code: string, detail?: string): void {
  try {
    process.emitWarning(message, { type: 'DmaPoolWarning', code, ...(detail !== undefined ? { detail } : {}) });
  } catch { /* nothing left to tell */ }
}

const defaultReporter = (r: DebugReport): void => warn(`${r.message}\n${r.dump}`, 'DMAPOOL_DEBUG_CORRUPTED');

/**
 * A dma_pool, made by Device.createPool(). Blocks are DMA addresses (numbers < 2^53); view() and
 * dataView() give CPU access to allocated ones. Release it with destroy() — or declare it with
 * `using`, which destroys it when the block exits (EBUSY, releasing nothing, while blocks are in use).
 */
export class DmaPool {
  /** The pool's name as the `pools` report shows it (at most POOL_NAME_MAX code points). */
  readonly name: string;
  /** Block size, alignment, boundary and layout, as dma_pool_create() computed them. */
  readonly geometry: PoolGeometry;
  /** Whether blocks are poisoned and free blocks checked for corruption on alloc. */
  readonly debug: boolean;
  /** The page-lookup strategy (`index.kind`: 'rbtree', 'linear', 'stack' or 'radix'). */
  readonly index: PageIndex;
  private readonly pages: PageTable<Chunk>;
  private readonly size: number;
  private readonly bpp: number;
  private readonly offsets: Int32Array;
  /** boundary === allocation: one window per page, block index = offset / size. */
  private readonly oneWindow: boolean;
  /** Bytes per page (geometry.allocation), on the pool for the free path. */
  private readonly allocation: number;
  /**
   * The page resolve() found last (always the page of the block it returned). rbtree, stack
   * and radix try it before the index (a range check: page ranges never overlap, so a hit is
   * exact); linear stays the faithful O(pages) original and always asks its index.
   */
  private hint = 0;
  /** How far past the hinted page's DMA address an address may lie to belong to it: the page size, or 0 for linear (never hinted). */
  private readonly hintSpan: number;
  /** log2(size) when blocks are a power of two in one window of ≤ 2^30 bytes, else -1. */
  private readonly sizeShift: number;
  /** size - 1 when sizeShift >= 0 (a block start's offset has none of these bits), else 0. */
  private readonly sizeMask: number;
  private inUseTotal = 0;
  /**
   * The hot paths test this and `debug` with `=== true`: V8 does not track a boolean field's type,
   * so a plain `if (flag)` compiles to a generic truthiness test, a constant comparison to one compare.
   */
  private destroyed = false;
  private readonly onDebugReport: (r: DebugReport) => void;
  /** Debug reports found by operations, waiting for the microtask that delivers them. */
  private pendingReports: DebugReport[] = [];
  private reportsScheduled = false;
  /**
   * Per page, the ArrayBuffer that view() hands out: exactly that page of this pool (never a
   * shared slab), made on the first view() of the page and detached at destroy.
   */
  private pageBuffers: (ArrayBuffer | undefined)[] = [];
  /** Every view id made for this pool and the page it covers (parallel arrays). */
  private viewIds: number[] = [];
  private viewPages: number[] = [];
  /** Per page: views JS moved away (a transfer), still reachable until collected. */
  private escapedViews = new Map<number, number[]>();

  /**
   * @internal Use Device.createPool(). Checks every argument first (EINVAL naming it) and
   * allocates no DMA memory. `provider` is any ChunkSource (a SlabProvider in practice);
   * `seams` are for failure-injection tests only.
   */
  constructor(
    name: string,
    requestedSize: number,
    options: PoolOptions | undefined,
    private readonly provider: ChunkSource | SlabProvider,
    private readonly onDestroy: (pool: DmaPool) => void,
    seams: PoolSeams = {},
  ) {
    if (typeof name !== 'string') throw einval(`name must be a string, got ${describeValue(name)}`);
    const opts = checkPoolOptions(options);
    this.geometry = poolGeometry(requestedSize, opts, provider.pageSize);
    this.name = truncatePoolName(name);
    this.debug = opts.debug ?? false;
    this.size = this.geometry.size;
    this.bpp = this.geometry.blocksPerPage;
    this.offsets = this.geometry.offsets;
    this.oneWindow = this.geometry.boundary === this.geometry.allocation;
    this.allocation = this.geometry.allocation;
    this.sizeShift = this.oneWindow && this.allocation <= 2 ** 30 && isPow2(this.size) ? Math.log2(this.size) : -1;
    this.sizeMask = this.sizeShift >= 0 ? this.size - 1 : 0;
    this.pages = seams.makePageTable ? seams.makePageTable(this.bpp, this.geometry.allocation)
      : new PageTable<Chunk>(this.bpp, this.geometry.allocation);
    this.index = seams.makeIndex ? seams.makeIndex(this.pages) : makeIndex(opts.index ?? 'rbtree', this.pages);
    this.onDebugReport = opts.onDebugReport ?? defaultReporter;
    this.hintSpan = this.index.kind === 'linear' ? 0 : this.allocation;
    if (!seams.makeIndex && !seams.makePageTable) keepShapes(this.index.kind);
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
    if (this.destroyed === true) throw this.destroyedError();
    const index = this.index;
    let b = index.take();
    if (b === Link.None) {
      this.addPage(); // all-or-nothing: throws with the pool unchanged
      b = index.take();
    }
    const pages = this.pages;
    const p = index.takenPage;
    const off = this.offsets[b - p * this.bpp];
    const dma = pages.dma[p] + off;
    // touch the memory before the block counts as allocated: if that throws, prepareBlock puts it back
    if (zero || this.debug === true) this.prepareBlock(b, p, off, dma, zero);
    pages.next[b] = Link.Allocated;
    this.inUseTotal++;
    return dma;
  }

  /** Debug check + poison or zeroing of a block just taken from the index (not yet counted). */
  private prepareBlock(b: number, p: number, off: number, dma: number, zero: boolean): void {
    try {
      if (this.debug) this.debugCheckFree(p, off, dma);
      this.blockView(p, off).fill(zero ? 0 : POOL_POISON_ALLOCATED);
    } catch (e) {
      this.index.put(b, p); // exactly undoes take(): the block is the head of its list again
      throw memoryError(e, dma);
    }
  }

  /**
   * Adds one page, all-or-nothing: the table grows before a chunk is taken, and a chunk whose
   * index entry fails is removed from the table and returned to the provider. Any failure
   * throws a DmaPoolError (ENOMEM for exhausted memory, EINVAL for a page the index refuses)
   * with the pool exactly as it was and no chunk kept.
   */
  private addPage(): void {
    const pages = this.pages;
    try {
      pages.reserve(pages.count + 1);
    } catch (e) {
      throw asNoMem(e, `dma_pool_alloc ${this.name}: page table`);
    }
    const chunk = this.provider.allocChunk(this.geometry.allocation);
    let added = false;
    try {
      if (this.debug) this.poisonChunk(chunk);
      const p = pages.add(chunk, this.index.linksPages); // room was reserved: cannot fail
      added = true;
      this.index.addPage(p); // the last step that can fail; it changes nothing when it throws
    } catch (e) {
      if (added) pages.removeLast();
      try {
        this.provider.freeChunk(chunk);
      } catch { /* the provider refused its own chunk: nothing better to do than report the first error */ }
      throw asNoMem(e, `dma_pool_alloc ${this.name}: page index`);
    }
  }

  private poisonChunk(chunk: Chunk): void {
    try {
      new Uint8Array(chunk.slab.buffer, chunk.offset, this.geometry.allocation).fill(POOL_POISON_FREED);
    } catch (e) {
      throw memoryError(e, chunk.dma);
    }
  }

  /**
   * Resolves a DMA address to its global block id, or throws (pool unchanged):
   * EFAULT when no page holds it, EINVAL when no block starts there.
   *
   * The page found last is tried first (consecutive frees mostly hit the same page): an address
   * inside its [dma, dma + allocation) range belongs to it — page ranges never overlap — so the
   * index is asked only on a miss (see pageOf). Every address is still validated in full.
   */
  private resolve(dma: number, op: string): number {
    if (this.destroyed === true) throw this.destroyedError();
    if (typeof dma !== 'number') throw this.notANumber(dma, op);
    const pages = this.pages;
    let p = this.hint;
    let off = dma - pages.dma[p];
    // false for NaN; p may be past count after a page was taken back (removeLast)
    if (!(off >= 0 && off < this.hintSpan && p < pages.count)) {
      pages.probe = dma; // the address goes to pageOf and the index unboxed (see PageTable.probe)
      p = this.pageOf(p, op);
      this.hint = p;
      off = dma - pages.dma[p];
    }
    let idx: number;
    const shift = this.sizeShift;
    if (shift >= 0) {
      // a power-of-two size in one window of at most 2^30 bytes, and 0 <= off < allocation here:
      // o is off exactly when off is an integer, and one double comparison says whether it is
      const o = off | 0;
      idx = o >> shift;
      if (o !== off || (o & this.sizeMask) !== 0 || idx >= this.bpp) idx = -1;
    } else if (this.oneWindow) {
      idx = off / this.size;
      if (idx !== (idx | 0) || idx >= this.bpp) idx = -1;
    } else {
      idx = blockIndex(this.geometry, off);
    }
    if (idx < 0) throw this.notABlock(dma, op);
    // an int32 (block ids are < MAX_BLOCKS): off / size gives an integral double, and a double
    // reaching the index (the stack's head) would change its hidden class, the one the shape
    // keeper holds (see keepShapes)
    return (p * this.bpp + idx) | 0;
  }

  /**
   * The page holding the address in pages.probe when the hinted page `hint` does not: its two
   * neighbours first, by the same exact range check, then the index. Frees in allocation order
   * walk the pages upwards; frees in reverse allocation order walk them downwards — a LIFO pool
   * (stack) hands out its blocks in reverse after freeing them in order, so dmapool_test's
   * alloc-all / free-all passes alternate directions, and a driver tearing a ring down
   * newest-first does the same. With one block per page (4096-byte blocks) every free misses
   * the hint, and a tree walk per free measured 49 ns against 16 ns. Throws EFAULT when no page
   * holds the address.
   */
  private pageOf(hint: number, op: string): number {
    const pages = this.pages;
    const dma = pages.probe;
    const count = pages.count;
    const span = this.hintSpan;
    const up = hint + 1;
    if (up < count) {
      const off = dma - pages.dma[up];
      if (off >= 0 && off < span) return up;
    }
    const down = hint - 1; // hint may be past count after removeLast(): down is then checked like up
    if (down >= 0 && down < count) {
      const off = dma - pages.dma[down];
      if (off >= 0 && off < span) return down;
    }
    // NaN or a negative number would otherwise compare its way into some page of the tree
    const p = dma >= 0 ? this.index.findProbe() : -1;
    if (p < 0) throw this.badDma(dma, op);
    return p;
  }

  private notANumber(dma: unknown, op: string): DmaPoolError {
    return new DmaPoolError('EINVAL', `${op}: DMA address must be a number, got ${typeof dma}`);
  }

  private badDma(dma: number, op: string): DmaPoolError {
    return new DmaPoolError('EFAULT', `${op} ${this.name}, ${hex(dma)} (bad dma)`);
  }

  private notABlock(dma: number, op: string): DmaPoolError {
    return new DmaPoolError('EINVAL', `${op} ${this.name}, ${hex(dma)} is not the start of a block`);
  }

  private alreadyFree(dma: number): DmaPoolError {
    return new DmaPoolError('EALREADY', `dma_pool_free ${this.name}, dma ${hex(dma)} already free`);
  }

  /** dma_pool_free(): returns the block at `dma`. Throws EFAULT/EINVAL/EALREADY/EBADF (pool unchanged). */
  free(dma: number): void {
    const b = this.resolve(dma, 'dma_pool_free');
    const p = this.hint; // resolve() leaves the block's page there
    const pages = this.pages;
    if (pages.next[b] !== Link.Allocated) throw this.alreadyFree(dma);
    if (this.debug === true) this.poisonFreed(p, this.offsets[b - p * this.bpp], dma); // before any change: it may throw
    this.inUseTotal--;
    this.index.put(b, p);
  }

  private poisonFreed(p: number, off: number, dma: number): void {
    try {
      this.blockView(p, off).fill(POOL_POISON_FREED);
    } catch (e) {
      throw memoryError(e, dma);
    }
  }

  /**
   * A CPU view of exactly `size` bytes of the allocated block at `dma`. Its `.buffer` is this
   * pool's page holding the block (never memory of another pool), detached at destroy()/close.
   * If JS detaches it (a transfer: stream enqueue or BYOB read, postMessage), only that page of
   * this pool is affected: the next view() makes a new buffer for the page, and at destroy the
   * page is kept out of reuse until the moved-away buffer is garbage-collected.
   */
  view(dma: number): Uint8Array {
    const b = this.allocatedBlock(dma, 'view');
    const p = (b / this.bpp) | 0;
    return new Uint8Array(this.pageBuffer(p), this.offsets[b - p * this.bpp], this.size);
  }

  /**
   * A DataView over exactly `size` bytes of the allocated block at `dma`, for descriptor fields
   * (pass `true` for little-endian: `dv.setUint32(4, len, true)`,
   * `dv.setBigUint64(8, dmaToBigInt(next), true)`). The same rules as view(): its `.buffer` is
   * this pool's page holding the block (the one view() uses, never a slab shared with another
   * pool), accesses past `size` throw RangeError, and it is detached at destroy()/close (any
   * access then throws TypeError). Throws like view(): EFAULT, EINVAL (not a block start),
   * EALREADY (a free block), EBADF (destroyed).
   */
  dataView(dma: number): DataView {
    const b = this.allocatedBlock(dma, 'dataView');
    const p = (b / this.bpp) | 0;
    return new DataView(this.pageBuffer(p), this.offsets[b - p * this.bpp], this.size);
  }

  /** The block id of the allocated block at `dma` (the resolve() errors, EALREADY when free). */
  private allocatedBlock(dma: number, op: string): number {
    const b = this.resolve(dma, op);
    if (this.pages.next[b] !== Link.Allocated)
      throw new DmaPoolError('EALREADY', `${op} ${this.name}, dma ${hex(dma)}: block is free`);
    return b;
  }

  /** The user-visible buffer of page `p`, made again when JS detached the previous one. */
  private pageBuffer(p: number): ArrayBuffer {
    const buf = this.pageBuffers[p];
    return buf === undefined || buf.byteLength === 0 ? this.exposePage(p) : buf;
  }

  /**
   * `n` blocks at once (ring set-up): their DMA addresses, in allocation order — the order n
   * alloc() calls would give. All or nothing: on any error (ENOMEM when memory runs out, EFAULT,
   * EBADF) the blocks this call took are freed again before it throws, so no block stays
   * allocated; pages it added stay with the pool, as pages always do until destroy().
   * EINVAL unless `n` is a non-negative safe integer; 0 gives an empty array.
   */
  allocMany(n: number): Float64Array {
    return this.allocBlocks(n, false, 'allocMany');
  }

  /** allocMany() with every block's `size` bytes zeroed (n zalloc() calls, all or nothing). */
  zallocMany(n: number): Float64Array {
    return this.allocBlocks(n, true, 'zallocMany');
  }

  private allocBlocks(n: number, zero: boolean, op: string): Float64Array {
    if (this.destroyed) throw this.destroyedError();
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      throw einval(`${op} ${this.name}: the count must be a non-negative safe integer, got ${describeValue(n)}`);
    let out: Float64Array;
    try {
      out = new Float64Array(n);
    } catch (e) {
      throw new DmaPoolError('ENOMEM', `${op} ${this.name}: no room for ${n} addresses`, { cause: e });
    }
    let i = 0;
    try {
      for (; i < n; i++) out[i] = this.allocBlock(zero);
    } catch (e) {
      // newest first: each free exactly undoes the last take, and (debug) re-poisons the block
      for (let j = i - 1; j >= 0; j--) {
        try {
          this.free(out[j]);
        } catch { /* the memory went away under the pool: report the first error */ }
      }
      throw e;
    }
    return out;
  }

  /**
   * Frees a batch of blocks, all or nothing: every address is validated first — EFAULT (no page
   * of this pool), EINVAL (not a number, not a block start), EALREADY (already free, or twice in
   * the batch) — and on the first bad one it throws with no block freed. `addrs` is any
   * array-like of numbers (an allocMany() result, a plain array); it is read once. Debug pools
   * poison every block before any is counted free.
   */
  freeMany(addrs: ArrayLike<number>): void {
    if (this.destroyed) throw this.destroyedError();
    const op = 'dma_pool_free';
    const dmas = this.readAddresses(addrs);
    const n = dmas.length;
    // pass 1: resolve every address, refuse free blocks and repeats; nothing changes
    const blocks = new Int32Array(n);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const dma = dmas[i];
      const b = this.resolve(dma, op);
      if (this.pages.next[b] !== Link.Allocated) throw this.alreadyFree(dma);
      if (seen.has(b))
        throw new DmaPoolError('EALREADY', `dma_pool_free ${this.name}, dma ${hex(dma)} is in the batch twice`);
      seen.add(b);
      blocks[i] = b;
    }
    // pass 2 (debug): poison every block first — the only step that can fail, before any change
    if (this.debug) {
      for (let i = 0; i < n; i++) {
        const b = blocks[i];
        const p = (b / this.bpp) | 0;
        this.poisonFreed(p, this.offsets[b - p * this.bpp], dmas[i]);
      }
    }
    // pass 3: commit, as free() does
    for (let i = 0; i < n; i++) {
      const b = blocks[i];
      this.inUseTotal--;
      this.index.put(b, (b / this.bpp) | 0); // its link replaces Link.Allocated
    }
  }

  /**
   * freeMany()'s snapshot of its argument: each element read once (a getter or a Proxy cannot
   * change an address between validation and free), every one a number. EINVAL otherwise.
   */
  private readAddresses(addrs: ArrayLike<number>): Float64Array {
    if (addrs === null || typeof addrs !== 'object')
      throw einval(`freeMany ${this.name}: addresses must be an array-like of numbers, got ${describeValue(addrs)}`);
    try {
      const n: unknown = addrs.length;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
        throw einval(`freeMany ${this.name}: addresses must be an array-like with a length, got length ${describeValue(n)}`);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v: unknown = addrs[i];
        if (typeof v !== 'number') throw einval(`freeMany ${this.name}: address [${i}] must be a number, got ${describeValue(v)}`);
        out[i] = v;
      }
      return out;
    } catch (e) {
      if (e instanceof DmaPoolError) throw e;
      throw new DmaPoolError('EINVAL', `freeMany ${this.name}: addresses could not be read: ${describeError(e, false)}`, { cause: e });
    }
  }

  private exposePage(p: number): ArrayBuffer {
    const v = this.provider.exposeChunk(this.pages.chunks[p], 0, this.geometry.allocation);
    this.viewIds.push(v.view);
    this.viewPages.push(p);
    this.pageBuffers[p] = v.buffer;
    return v.buffer;
  }

  /** Detaches every view of this pool, remembering (per page) those JS had moved away. */
  private releaseViews(): void {
    if (this.viewIds.length === 0) return;
    const escaped = new Set(this.provider.releaseViews(this.viewIds));
    for (let i = 0; i < this.viewIds.length; i++) {
      if (!escaped.has(this.viewIds[i])) continue;
      const list = this.escapedViews.get(this.viewPages[i]) ?? [];
      list.push(this.viewIds[i]);
      this.escapedViews.set(this.viewPages[i], list);
    }
    this.viewIds = [];
    this.viewPages = [];
    this.pageBuffers = [];
  }

  /**
   * @internal Test seam: each page of this pool as the device sees it — the whole page, free
   * blocks and padding included — so tests can scribble where a runaway device would. Drivers
   * never need this: view() hands out allocated blocks only.
   */
  devicePages(): Uint8Array[] {
    return this.pages.chunks.map((c) => new Uint8Array(c.slab.buffer, c.offset, this.allocation));
  }

  /**
   * @internal CPU virtual address of the block at `dma` (tests check it against pagemap).
   */
  cpuAddress(dma: number): bigint {
    const b = this.resolve(dma, 'cpuAddress');
    const p = (b / this.bpp) | 0;
    const c = this.pages.chunks[p];
    if (!this.provider.chunkAddress) throw new DmaPoolError('ENODEV', 'this provider does not report CPU addresses');
    return this.provider.chunkAddress(c) + BigInt(this.offsets[b - p * this.bpp]);
  }

  /** True when `dma` is the start of an allocated block of this pool. */
  owns(dma: number): boolean {
    try {
      return this.pages.next[this.resolve(dma, 'owns')] === Link.Allocated;
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
        // the dump is taken now (alloc overwrites the block); delivery waits until the pool is consistent
        this.queueReport({
          pool: this.name, kind: 'corrupted', dma,
          message: `dma_pool_alloc ${this.name}, ${hex(dma)} (corrupted)`,
          dump: hexDump(v.subarray(0, Math.min(v.length, 32))),
        });
        return;
      }
    }
  }

  /**
   * Reports are never delivered from inside an operation: the reporter could free, allocate or
   * destroy while the pool is half-updated. They are queued and delivered by one microtask,
   * which runs after the current operation (and its caller's synchronous code) has finished.
   * A reporter that uses the pool may queue further reports: they get a fresh microtask, so
   * there is no recursion. A reporter's exception goes to process.emitWarning (code
   * DMAPOOL_DEBUG_REPORTER_THREW, the report in `detail`) and delivery continues.
   */
  private queueReport(r: DebugReport): void {
    this.pendingReports.push(r);
    if (!this.reportsScheduled) {
      this.reportsScheduled = true;
      queueMicrotask(() => this.deliverReports());
    }
  }

  private deliverReports(): void {
    const batch = this.pendingReports;
    this.pendingReports = [];
    this.reportsScheduled = false;
    for (const r of batch) {
      try {
        this.onDebugReport(r);
      } catch (e) {
        warn(`onDebugReport of pool ${this.name} threw: ${describeError(e, true)}`, REPORTER_THREW_WARNING, `${r.message}\n${r.dump}`);
      }
    }
  }

  /** A snapshot of the pool's counters and geometry (what the `pools` report prints, and more). */
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

  /** True once destroy() succeeded. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Verifies the index's invariants and the page table's counts; throws DmaPoolError EIO on the first violation. */
  check(): void {
    try {
      this.checkInvariants();
    } catch (e) {
      if (e instanceof DmaPoolError) throw e;
      throw new DmaPoolError('EIO', `pool ${this.name}: invariant violated: ${(e as Error).message}`, { cause: e });
    }
  }

  private checkInvariants(): void {
    this.index.check();
    let total = 0;
    for (let p = 0; p < this.pages.count; p++) total += this.pages.allocatedIn(p);
    if (total !== this.inUseTotal) throw new Error(`pool: ${total} blocks allocated, counter says ${this.inUseTotal}`);
  }

  /**
   * dma_pool_destroy(). With blocks still allocated it throws EBUSY and changes nothing (the
   * memory stays mapped: a device may still DMA into it). Otherwise every view of the pool is
   * detached and every page goes back to the provider. Twice is harmless.
   */
  destroy(): void {
    if (this.destroyed) return;
    if (this.inUseTotal > 0)
      throw new DmaPoolError('EBUSY', `dma_pool_destroy ${this.name} busy (${this.inUseTotal} blocks in use)`,
        'free every block before destroying the pool');
    // Views die with the pool, even where other pools keep the slab mapped. Pages with views JS
    // moved away go back quarantined (out of reuse until those are collected).
    this.releaseViews();
    let escaped: Map<Chunk, number[]> | undefined;
    if (this.escapedViews.size) {
      escaped = new Map();
      for (const [p, ids] of this.escapedViews) escaped.set(this.pages.chunks[p], ids);
    }
    // the pool is marked destroyed only once its pages are back: if the provider refuses them
    // (it returns all or none), the pool stays as it was and usable (view() makes new buffers)
    this.provider.freeChunks(this.pages.chunks, escaped);
    this.destroyed = true;
    this.pages.chunks = [];
    this.escapedViews.clear();
    this.onDestroy(this);
  }

  /**
   * `using pool = dev.createPool(…)`: destroy() when the block exits, under the same rules. With
   * blocks still allocated it throws EBUSY and releases nothing — the pool stays usable and its
   * memory mapped (a device may still DMA into it); free the blocks and destroy() again. When the
   * block itself threw, `using` reports both: a SuppressedError whose `error` is this EBUSY and
   * whose `suppressed` is the block's error. A `using dev` declared before the pool is disposed
   * after it and throws EBUSY too, so both come out as one SuppressedError (the device's EBUSY in
   * `error`, the pool's in `suppressed`).
   */
  [Symbol.dispose](): void {
    this.destroy();
  }

  private destroyedError(): DmaPoolError {
    return new DmaPoolError('EBADF', `pool ${this.name} was destroyed`);
  }
}

/**
 * Memory for no page: the source of the shape keepers below. allocChunk throws ENOMEM, so a
 * keeper could not take memory even if something reached it; it has no chunks to return or
 * expose (EINVAL for any), and no views.
 */
const NO_MEMORY: ChunkSource = {
  pageSize: 4096,
  allocChunk(): Chunk { throw new DmaPoolError('ENOMEM', 'a shape keeper has no memory'); },
  freeChunk(): void { throw new DmaPoolError('EINVAL', 'a shape keeper has no chunks'); },
  freeChunks(chunks: readonly Chunk[]): void { if (chunks.length) throw new DmaPoolError('EINVAL', 'a shape keeper has no chunks'); },
  exposeChunk(): ChunkView { throw new DmaPoolError('EINVAL', 'a shape keeper has no chunks'); },
  releaseViews(): number[] { return []; },
};

/**
 * One unused pool per index kind, made when the first pool of that kind is and kept for the
 * life of the process: it holds V8's hidden classes (maps) of a pool's objects — the pool, its
 * page table, its index and tree — alive.
 *
 * V8 reaches those maps from the class only through transitions, which are weak; the optimized
 * code of alloc() and free() embeds them. When a driver destroys its last pool and a full GC
 * runs before it makes the next one on the device it keeps open, the maps die with the last
 * instances, and V8 throws away every optimized function that embedded them (`--trace-deopt`:
 * "weak objects"). The next pool's alloc and free then run unoptimized until V8 tiers them up
 * again, against new maps whose field types are learned and generalized once more ("code
 * dependencies": a second deoptimization): in a bench process with a forced full GC every 5
 * runs, the two runs after each GC took 2–3× the others. Measured on the seed pair (sim, one
 * process, 30 runs): 60 (stack), 85 (rbtree) and 64 (radix) deoptimizations of the hot path
 * without a keeper, none with one. (A device closed too loses its provider's shapes with it:
 * then fewer functions are thrown away, not none.)
 *
 * The keeper's shapes are the real pools' only while every field keeps its representation: the
 * keeper is made with one block per page, so its numbers are small integers, and so must a real
 * pool's be (resolve() hands the index an int32 block id; a double there changes the map and
 * the keeper holds the old one).
 */
const shapeKeepers = new Map<IndexKind, DmaPool>();
/** The kind whose keeper is being made: its constructor comes back to keepShapes. */
let keeping: IndexKind | undefined;

function keepShapes(kind: IndexKind): void {
  if (keeping === kind || shapeKeepers.has(kind)) return;
  keeping = kind;
  try {
    shapeKeepers.set(kind, new DmaPool('shape keeper', NO_MEMORY.pageSize, { index: kind }, NO_MEMORY, () => {}));
  } catch {
    // a keeper only saves re-optimization: it never fails the pool being made (the next pool tries again)
  } finally {
    keeping = undefined;
  }
}

/** An error touching a block's memory, as a DmaPoolError (EFAULT: the memory is not accessible). */
function memoryError(e: unknown, dma: number): DmaPoolError {
  if (e instanceof DmaPoolError) return e;
  return new DmaPoolError('EFAULT', `block ${hex(dma)}: its memory is not accessible (${describeError(e, false)})`,
    { hint: 'was the provider closed under the pool?', cause: e });
}

/** A thrown value as text, without ever throwing (a value whose toString throws, a Symbol, …). */
function describeError(e: unknown, stack: boolean): string {
  try {
    if (!(e instanceof Error)) return describeValue(e);
    return (stack ? e.stack : undefined) ?? `${e.name}: ${e.message}`;
  } catch {
    return 'an unprintable value';
  }
}

/**
 * Linux's dma_rmb() for JS reading memory a device writes: call it between reading a
 * descriptor's valid/phase bit and reading the rest of the descriptor, so the rest is not read
 * before the bit (arm64 `dmb oshld`; on x86, where loads are not reordered with older loads, a
 * compiler barrier). Writes need no call: every MMIO write (a doorbell) is fenced in the shim.
 */
export function dmaReadBarrier(): void {
  native().dmaReadBarrier();
}

/**
 * A DMA address as a BigInt, for 64-bit descriptor fields (`dv.setBigUint64(off, dmaToBigInt(dma), true)`).
 * The pool's API keeps addresses as numbers — every address it hands out is an integer below
 * 2^53, exactly representable — and BigInt appears only at the descriptor boundary, through this
 * and dmaFromBigInt(). EINVAL unless `dma` is a non-negative safe integer.
 */
export function dmaToBigInt(dma: number): bigint {
  if (typeof dma !== 'number' || !Number.isSafeInteger(dma) || dma < 0)
    throw new DmaPoolError('EINVAL', `dmaToBigInt: a DMA address is a non-negative safe integer, got ${describeValue(dma)}`);
  return BigInt(dma);
}

/**
 * A 64-bit address read back from a descriptor (`dv.getBigUint64(off, true)`) as the number the
 * pool's API takes (free(), view(), …). ERANGE when it is 2^53 or more — no pool ever hands out
 * such an address, so the descriptor is corrupt; EINVAL when it is not a bigint or is negative.
 */
export function dmaFromBigInt(dma: bigint): number {
  if (typeof dma !== 'bigint' || dma < 0n)
    throw new DmaPoolError('EINVAL', `dmaFromBigInt: a DMA address is a non-negative bigint, got ${describeValue(dma)}`);
  if (dma > BigInt(Number.MAX_SAFE_INTEGER))
    throw new DmaPoolError('ERANGE', `dmaFromBigInt: 0x${dma.toString(16)} is not below 2^53, so it is no pool's DMA address`);
  return Number(dma);
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
