/**
 * Providers of DMA-coherent memory. A provider maps large slabs (one native call and, for
 * VFIO, one IOMMU mapping per slab) and carves them into chunks the way dma_alloc_coherent()
 * returns memory: a chunk of n bytes occupies the next power of two ≥ max(n, PAGE_SIZE) and
 * is aligned to it in both CPU and DMA address, so a pool's align/boundary guarantees hold
 * in absolute DMA addresses.
 */
import { DmaPoolError, hex } from './errors';
import { native, nativeCallCount } from './native';
import { nextPow2 } from './pow2';
import type { PciAccess } from './vfio/pci-access';

export type ProviderKind = 'sim' | 'vfio' | 'uio' | 'udmabuf' | 'u-dma-buf';

/**
 * One mapped slab: a CPU view and its DMA addresses. A slab is DMA-contiguous in units of
 * `unit` bytes: the whole slab for IOMMU-mapped memory (we choose the IOVAs), one huge page or one
 * 4 KiB page for physical memory found through pagemap. `unitDma[i]` is the DMA address of unit i.
 */
export interface Slab {
  id: number;
  /** The native mapping behind the slab (unmap, subBuffer, DMA map calls name it). */
  mapping: number;
  /** The whole slab; internal to the library, never handed to users (views are per page). */
  buffer: ArrayBuffer;
  /** DMA address of byte 0. */
  dma: number;
  size: number;
  unit: number;
  unitDma: Float64Array | undefined;
  /** Chunks handed out and not yet released. */
  live: number;
  /**
   * The live chunk object starting at each page of the slab (index offset / pageSize), else
   * undefined: a chunk is live only while it is the very object recorded here, so a copy, a
   * forgery or a stale reference to reused memory is foreign — without hashing on the hot path.
   */
  owners: (Chunk | undefined)[];
  /** Provider-private state (fds, IOVA, …). */
  priv: unknown;
  /**
   * The slab sits in the slab cache: its memory held earlier chunks. It is zeroed as a whole when
   * taken out again (one zeroing instead of one per chunk), so every chunk carved from it is zero,
   * as from a fresh mapping.
   */
  dirty: boolean;
  /** The whole slab as bytes, for zeroing chunks without a view object per chunk. */
  bytes: Uint8Array;
}

/** What mapSlab returns. Omit `unit`/`unitDma` for a slab that is DMA-contiguous as a whole. */
export interface MappedSlab {
  mapping: number;
  buffer: ArrayBuffer;
  dma: number;
  unit?: number;
  unitDma?: Float64Array;
  priv?: unknown;
}

/** A DMA-contiguous piece of a slab, handed to one pool page. */
export interface Chunk {
  slab: Slab;
  /** Byte offset of the chunk inside slab.buffer. */
  offset: number;
  dma: number;
  /** Bytes occupied (power of two ≥ the request). */
  footprint: number;
}

export interface ProviderCounters {
  /** Calls into the native shim made by this provider. */
  nativeCalls: number;
  /** IOMMU map / unmap operations (VFIO only). */
  iommuMaps: number;
  iommuUnmaps: number;
  slabsMapped: number;
  slabsUnmapped: number;
  /** Slabs whose unmap failed: left mapped and never reused. */
  slabsLeaked: number;
  bytesMapped: number;
  /** Slabs taken from the slab cache instead of being mapped (see SlabProvider.setSlabCache). */
  slabsReused: number;
  /**
   * Wall time (ms) inside this provider's native calls — mapping (populate, mlock, IOMMU map),
   * unmapping, views: the kernel's share of a run, apart from the JavaScript's.
   */
  nativeMs: number;
}

/** Counters at zero: a fresh provider's, and a figure's that made no provider call. */
export function noCounters(): ProviderCounters {
  return {
    nativeCalls: 0, iommuMaps: 0, iommuUnmaps: 0, slabsMapped: 0, slabsUnmapped: 0, slabsLeaked: 0, bytesMapped: 0,
    slabsReused: 0, nativeMs: 0,
  };
}

/** Device.sync(): CPU access begins or ends. */
export type SyncPhase = 'begin' | 'end';
/** Device.sync(): what the CPU does in between (read what the device wrote, write for the device, both). */
export type SyncDirection = 'read' | 'write' | 'rw';

export interface ProviderInfo {
  kind: ProviderKind;
  /** True only when a device really sees these DMA addresses. `sim` is never device-visible. */
  deviceVisible: boolean;
  /** One line: what backs the memory and what the DMA addresses are. */
  description: string;
}

export interface SlabProviderOptions {
  /** Bytes per slab (power of two, ≥ the page size). Default 2 MiB. */
  slabSize?: number;
}

const DEFAULT_SLAB = 2 << 20;

/** Marks a chunk while freeChunks validates a batch (a second occurrence is then not live). */
const SEEN: Chunk = Object.freeze({ slab: undefined as unknown as Slab, offset: -1, dma: -1, footprint: 0 });

/** One chunk footprint's state in a provider: chunks released for reuse, and the slab being carved upwards. */
interface SizeClass {
  readonly footprint: number;
  readonly released: Chunk[];
  /** The slab chunks of this footprint are carved from next (at `next`), or undefined. */
  slab: Slab | undefined;
  next: number;
}

/** A user-visible ArrayBuffer over part of one chunk, made by exposeChunk(). */
export interface ChunkView {
  /** The native view id (release it with releaseViews, or it dies with its slab). */
  view: number;
  buffer: ArrayBuffer;
}

/** Zeroes a chunk's bytes (dma_alloc_coherent memory is zeroed) through its slab's one byte view. */
function zeroChunk(c: Chunk): void {
  const s = c.slab;
  s.bytes.fill(0, c.offset, c.offset + c.footprint);
}

/**
 * Slab carving shared by every provider: per size order, a free list of released chunks and a
 * bump pointer into the current slab; a slab whose chunks are all released is unmapped.
 */
export abstract class SlabProvider implements ProviderInfo {
  abstract readonly kind: ProviderKind;
  abstract readonly deviceVisible: boolean;
  abstract readonly description: string;
  readonly pageSize: number;
  readonly slabSize: number;
  readonly counters: ProviderCounters = noCounters();
  private slabs = new Map<number, Slab>();
  private nextSlabId = 1;
  /** Per footprint: released chunks ready for reuse and the slab being carved (see SizeClass). */
  private classes = new Map<number, SizeClass>();
  /** The class allocChunk used last and the request size it served: a pool asks for one size again and again. */
  private lastClass: SizeClass | undefined;
  private lastBytes = 0;
  /**
   * Chunks returned while an ArrayBuffer over them that JS moved away (a transfer) may still be
   * reachable: kept out of reuse until the GC collects it (see reclaim()).
   */
  private quarantine: { chunk: Chunk; views: number[] }[] = [];
  private closed = false;
  /**
   * The slab cache: slabs whose every chunk came back, kept mapped (still counted in slabCount)
   * instead of being unmapped, up to `cacheLimit` bytes, most recently emptied last. Off (0) by
   * default; see setSlabCache().
   */
  private cached: Slab[] = [];
  private cachedBytes = 0;
  private cacheLimit = 0;

  constructor(pageSize: number, opts: SlabProviderOptions = {}) {
    this.pageSize = pageSize;
    const slabSize = opts.slabSize ?? DEFAULT_SLAB;
    if (typeof slabSize !== 'number' || !Number.isInteger(slabSize) || slabSize < pageSize || slabSize > 2 ** 40 ||
        !Number.isInteger(Math.log2(slabSize)))
      throw new DmaPoolError('EINVAL', `slabSize must be a power of two >= ${pageSize}, got ${slabSize}`);
    this.slabSize = slabSize;
  }

  /**
   * Maps `size` bytes, CPU- and DMA-aligned to `align` (per contiguous unit when the slab is
   * contiguous only in units).
   */
  protected abstract mapSlab(size: number, align: number): MappedSlab;

  // Capabilities, declared here and implemented by the providers that have them (device.ts calls
  // them without casts; absent means the provider has no such thing):
  /** Register access to a PCI function this provider serves (vfio, uio); `bdf` picks one of several. */
  device?(bdf?: string): PciAccess;
  /** CPU cache maintenance around CPU access (udmabuf, u-dma-buf); absent where memory is coherent. */
  sync?(phase: SyncPhase, dir: SyncDirection): void;
  /**
   * The largest chunk footprint this provider can hand out DMA-contiguously, or Infinity.
   * Physical-memory providers without huge pages return the page size.
   */
  get maxContiguous(): number {
    return Infinity;
  }
  /** Undoes mapSlab (IOMMU unmap, detach views, munmap). */
  protected abstract unmapSlab(slab: Slab): void;
  /** Provider-specific teardown after all slabs are gone. */
  protected closeProvider(): void {}

  /** dma_alloc_coherent(): a zero-filled chunk of at least `bytes`, naturally aligned. */
  allocChunk(bytes: number): Chunk {
    if (this.closed) throw new DmaPoolError('EBADF', `${this.kind} provider is closed`);
    if (this.quarantine.length) this.reclaim();
    // a pool asks for the same size every time: its class is remembered (checked once per size)
    const cls = bytes === this.lastBytes && this.lastClass !== undefined ? this.lastClass : this.sizeClass(bytes);
    const footprint = cls.footprint;
    const reuse = cls.released;
    let chunk: Chunk;
    if (reuse.length) {
      // a fresh object for reused memory: a stale reference to the old chunk stays foreign
      const r = reuse.pop()!;
      chunk = { slab: r.slab, offset: r.offset, dma: r.dma, footprint };
      zeroChunk(chunk);
    } else if (footprint >= this.slabSize) {
      const slab = this.newSlab(footprint, footprint);
      chunk = { slab, offset: 0, dma: this.dmaAt(slab, 0), footprint };
    } else {
      let slab = cls.slab;
      if (slab === undefined || cls.next + footprint > slab.size) {
        slab = this.newSlab(this.slabSize, this.slabSize);
        cls.slab = slab;
        cls.next = 0;
      }
      const offset = cls.next;
      chunk = { slab, offset, dma: slab.unitDma ? this.dmaAt(slab, offset) : slab.dma + offset, footprint };
      cls.next = offset + footprint; // fresh slab memory is zero, and a cached slab was zeroed when taken out
    }
    chunk.slab.live++;
    chunk.slab.owners[chunk.offset / this.pageSize] = chunk;
    return chunk;
  }

  /**
   * The size class serving `bytes` (made on first use), after the checks allocChunk makes of a
   * size: a positive safe integer whose footprint this memory can hand out DMA-contiguously.
   */
  private sizeClass(bytes: number): SizeClass {
    if (!Number.isSafeInteger(bytes) || bytes <= 0)
      throw new DmaPoolError('EINVAL', `chunk size must be a positive integer, got ${bytes}`);
    const footprint = nextPow2(Math.max(bytes, this.pageSize));
    if (footprint > this.maxContiguous)
      throw new DmaPoolError('EINVAL',
        `${this.kind}: a ${bytes}-byte chunk needs ${footprint} DMA-contiguous bytes, but this memory is ` +
        `contiguous only per ${this.maxContiguous} bytes`, this.contiguityHint());
    let cls = this.classes.get(footprint);
    if (!cls) this.classes.set(footprint, (cls = { footprint, released: [], slab: undefined, next: 0 }));
    this.lastClass = cls;
    this.lastBytes = bytes;
    return cls;
  }

  /** True while `chunk` is the very object allocChunk handed out and it was not returned. */
  isLive(chunk: Chunk): boolean {
    const s = chunk?.slab;
    return s !== undefined && this.slabs.get(s.id) === s && s.owners[chunk.offset / this.pageSize] === chunk;
  }

  /** A user-visible ArrayBuffer over exactly [offset, offset + length) of a live chunk. */
  exposeChunk(chunk: Chunk, offset: number, length: number): ChunkView {
    if (!this.isLive(chunk)) throw new DmaPoolError('EINVAL', `chunk at DMA ${hex(chunk.dma)} is not live in this provider`);
    if (!(offset >= 0 && length > 0 && offset + length <= chunk.footprint))
      throw new DmaPoolError('EINVAL', `range [${offset}, ${offset + length}) is outside the ${chunk.footprint}-byte chunk`);
    return this.tally(() => native().subBuffer(chunk.slab.mapping, chunk.offset + offset, length));
  }

  /** CPU address of a live chunk's first byte. */
  chunkAddress(chunk: Chunk): bigint {
    const m = native().mappingInfo(chunk.slab.mapping);
    if (!this.isLive(chunk) || !m) throw new DmaPoolError('EINVAL', `chunk at DMA ${hex(chunk.dma)} is not live in this provider`);
    return m.address + BigInt(chunk.offset);
  }

  /**
   * Detaches views made by exposeChunk. Returns the ids of those JS had moved away (still
   * reachable until collected): their chunk must be returned through freeChunks' `escaped`.
   */
  releaseViews(views: readonly number[]): number[] {
    const n = native();
    return this.tally(() => views.filter((v) => n.releaseBuffer(v) === 'escaped'));
  }

  /** dma_free_coherent(): returns a chunk; the slab is unmapped when its last chunk returns. */
  freeChunk(chunk: Chunk): void {
    this.freeChunks([chunk]);
  }

  /**
   * Returns many chunks at once (a pool's pages at destroy); emptied slabs are unmapped. All or
   * nothing: a chunk that is not live (a double or foreign free) is EINVAL and nothing changes.
   * `escaped` lists, per chunk, views JS moved away: such a chunk is quarantined (kept out of
   * reuse, its slab mapped) until every one of them is collected.
   */
  freeChunks(chunks: readonly Chunk[], escaped?: ReadonlyMap<Chunk, readonly number[]>): void {
    // validate all first; a chunk listed twice is caught by marking the ones already seen
    const page = this.pageSize;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      if (!this.isLive(c)) {
        for (let j = 0; j < i; j++) chunks[j].slab.owners[chunks[j].offset / page] = chunks[j]; // unmark
        throw new DmaPoolError('EINVAL', `chunk at DMA ${hex(Number(c?.dma))} is not live in this provider (double or foreign free)`);
      }
      c.slab.owners[c.offset / page] = SEEN;
    }
    for (let i = 0; i < chunks.length; i++) chunks[i].slab.owners[chunks[i].offset / page] = undefined;
    if (escaped === undefined || escaped.size === 0) {
      this.release(chunks); // the common case (a pool's destroy): no copy of the list
      return;
    }
    const now: Chunk[] = [];
    for (const c of chunks) {
      const views = escaped.get(c);
      if (views && views.length) this.quarantine.push({ chunk: c, views: [...views] });
      else now.push(c);
    }
    this.release(now);
  }

  /** Returns quarantined chunks whose escaped views have all been collected. */
  reclaim(): number {
    if (!this.quarantine.length) return 0;
    const n = native();
    const ready: Chunk[] = [];
    this.quarantine = this.quarantine.filter((q) => {
      q.views = q.views.filter((v) => n.bufferPending(v));
      if (q.views.length) return true;
      ready.push(q.chunk);
      return false;
    });
    this.release(ready);
    return ready.length;
  }

  /** Chunks kept out of reuse because JS moved a view of them away. */
  get quarantined(): number {
    return this.quarantine.length;
  }

  private release(chunks: readonly Chunk[]): void {
    // count down first: a chunk whose slab empties goes on no free list (its slab leaves every
    // class below), so a pool's destroy, which empties its slabs, pushes nothing
    let emptied: Set<Slab> | undefined;
    for (let i = 0; i < chunks.length; i++) {
      const slab = chunks[i].slab;
      if (--slab.live === 0) (emptied ??= new Set()).add(slab);
    }
    let cls: SizeClass | undefined;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      if (c.slab.live === 0) continue;
      if (cls?.footprint !== c.footprint) {
        cls = this.classes.get(c.footprint);
        if (!cls) this.classes.set(c.footprint, (cls = { footprint: c.footprint, released: [], slab: undefined, next: 0 }));
      }
      cls.released.push(c);
    }
    if (emptied === undefined) return;
    // an emptied slab leaves every class: no chunk of it stays on a free list, and no class carves it further
    for (const k of this.classes.values()) {
      if (k.slab !== undefined && emptied.has(k.slab)) { k.slab = undefined; k.next = 0; }
      const list = k.released;
      let j = 0;
      for (let i = 0; i < list.length; i++) if (!emptied.has(list[i].slab)) list[j++] = list[i];
      list.length = j;
    }
    for (const slab of emptied) {
      if (this.cachedBytes + slab.size <= this.cacheLimit) {
        // kept mapped (and, for VFIO, IOMMU-mapped) for the next slab of this size; its chunks
        // left the free lists above, so it is carved afresh — after a zeroing fill — on reuse
        slab.dirty = true;
        this.cached.push(slab);
        this.cachedBytes += slab.size;
      } else {
        this.dropSlab(slab);
      }
    }
  }

  /** Unmaps a slab that holds no chunk; a failed unmap leaks it (mapped, never reused) with a warning. */
  private dropSlab(slab: Slab): void {
    this.slabs.delete(slab.id);
    try {
      this.tally(() => this.unmapSlab(slab));
      this.counters.slabsUnmapped++;
    } catch (e) {
      // The chunks are returned either way (a caller's destroy must not become unrepeatable);
      // a slab that failed to unmap is leaked, mapped and out of use, never reused.
      this.counters.slabsLeaked++;
      process.emitWarning(`${this.kind}: slab at DMA ${hex(slab.dma)} could not be unmapped and is leaked: ` +
        `${(e as Error).message}`, { type: 'DmaPoolWarning', code: 'DMAPOOL_SLAB_LEAKED' });
    }
  }

  /**
   * The slab cache (off by default): up to `maxBytes` of slabs whose chunks have all come back
   * stay mapped instead of being unmapped, and the next slab of the same size is taken from it
   * instead of mapping a new one — no mmap/populate/mlock, no IOMMU map, no page faults — the way
   * the kernel's page allocator hands freed pages out again and DPDK/SPDK keep their memory mapped
   * for the process's lifetime. Chunks carved from a cached slab are zeroed when handed out, as
   * allocChunk() always promises.
   *
   * The trade-off: cached memory stays pinned (mlocked / IOMMU-mapped, charged to RLIMIT_MEMLOCK
   * and, for VFIO, to the container's DMA entry limit) while no pool uses it, and for VFIO its
   * IOVAs stay mapped in the device's IOMMU domain — a device holding a stale address of a
   * destroyed pool can still reach that memory (it never reaches memory outside this provider's
   * slabs). trim() unmaps the cache; close() unmaps everything. Lowering the limit trims at once.
   * EINVAL unless `maxBytes` is a non-negative safe integer.
   */
  setSlabCache(maxBytes: number): void {
    if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw new DmaPoolError('EINVAL', `slab cache limit must be a non-negative safe integer (bytes), got ${String(maxBytes)}`);
    if (this.closed) throw new DmaPoolError('EBADF', `${this.kind} provider is closed`);
    this.cacheLimit = maxBytes;
    this.trim(maxBytes);
  }

  /** The slab cache's limit in bytes (0: off) and the bytes it holds now. */
  get slabCache(): { limit: number; bytes: number; slabs: number } {
    return { limit: this.cacheLimit, bytes: this.cachedBytes, slabs: this.cached.length };
  }

  /**
   * Unmaps cached slabs, oldest first, until at most `keepBytes` (default 0: all) stay cached.
   * Returns the bytes unmapped. Slabs holding chunks are never touched.
   */
  trim(keepBytes = 0): number {
    if (typeof keepBytes !== 'number' || !(keepBytes >= 0))
      throw new DmaPoolError('EINVAL', `trim: keepBytes must be a non-negative number, got ${String(keepBytes)}`);
    let freed = 0;
    while (this.cachedBytes > keepBytes && this.cached.length) {
      const slab = this.cached.shift()!;
      this.cachedBytes -= slab.size;
      freed += slab.size;
      this.dropSlab(slab);
    }
    return freed;
  }

  /** Runs fn and adds the native calls it made to this provider's counter (counted in native.ts). */
  private tally<T>(fn: () => T): T {
    const before = nativeCallCount();
    const t0 = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      this.counters.nativeCalls += nativeCallCount() - before;
      this.counters.nativeMs += Number(process.hrtime.bigint() - t0) / 1e6;
    }
  }

  /** How to get larger contiguous chunks (physical-memory providers override). */
  protected contiguityHint(): string {
    return 'use a smaller pool size';
  }

  /** DMA address of byte `offset` of a slab. */
  dmaAt(slab: Slab, offset: number): number {
    if (!slab.unitDma) return slab.dma + offset;
    const u = Math.floor(offset / slab.unit);
    return slab.unitDma[u] + (offset - u * slab.unit);
  }

  private newSlab(size: number, align: number): Slab {
    // the slab cache first: the lowest-addressed slab of this size, so a pool's pages arrive in
    // ascending DMA order as they do from fresh slabs (the page index's insert fast path)
    let pick = -1;
    for (let i = 0; i < this.cached.length; i++) {
      const c = this.cached[i];
      if (c.size === size && c.dma % align === 0 && (pick < 0 || c.dma < this.cached[pick].dma)) pick = i;
    }
    if (pick >= 0) {
      const c = this.cached[pick];
      // zeroed before anything else: a slab whose zeroing fails (memory gone) stays in the cache.
      // Non-temporal stores: the pool never reads its pages (its bookkeeping is outside them), so
      // the megabytes need not pass through the caches (46 MiB: 1.4 ms against 3.1 ms as a fill)
      this.tally(() => native().zeroRange(c.mapping, 0, c.size));
      c.dirty = false;
      this.cached.splice(pick, 1);
      this.cachedBytes -= size;
      this.counters.slabsReused++;
      return c;
    }
    const m = this.tally(() => this.mapSlab(size, align));
    // every field from the start, in one order: all slabs share one hidden class, so the hot paths
    // that read them (allocChunk, isLive, release) never meet a second shape and deoptimize
    const slab: Slab = {
      id: this.nextSlabId++, mapping: m.mapping, buffer: m.buffer, dma: m.dma, size, unit: m.unit ?? size,
      unitDma: m.unitDma, live: 0, owners: [], priv: m.priv, dirty: false, bytes: new Uint8Array(m.buffer),
    };
    this.slabs.set(slab.id, slab);
    this.counters.slabsMapped++;
    this.counters.bytesMapped += size;
    return slab;
  }

  /** Slabs currently mapped. */
  protected liveSlabs(): IterableIterator<Slab> {
    return this.slabs.values();
  }

  /** Number of slabs currently mapped. */
  get slabCount(): number {
    return this.slabs.size;
  }

  /**
   * Unmaps every slab (detaching all views) and releases the provider. Callers (Device.close)
   * make sure no pool still has blocks in use. Calling it twice is harmless.
   */
  close(): void {
    if (this.closed) return;
    for (const slab of this.slabs.values()) {
      this.tally(() => this.unmapSlab(slab));
      this.counters.slabsUnmapped++;
    }
    this.slabs.clear();
    this.classes.clear();
    this.lastClass = undefined;
    this.lastBytes = 0;
    this.quarantine = [];
    this.cached = [];
    this.cachedBytes = 0;
    this.closed = true;
    this.closeProvider();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
