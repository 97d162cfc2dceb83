/**
 * The JS floors: rulers for the benchmark, not pools. Each is the least a JavaScript dma_pool can
 * spend per call on this V8, run through dmapool_test's loops in the same process as ours, so a
 * ratio to Linux splits into the language's own cost per call (floor ÷ Linux) and what our pool
 * adds on top of it (ours ÷ floor).
 *
 * - `JS floor`: one pool-wide LIFO of block ids in an Int32Array (Linux 6.12's design, its links
 *   outside the blocks), each address computed from one base in integer arithmetic, no pages, no
 *   page lookup and no check of the caller's address: its free trusts the address, as Linux 6.12's
 *   does outside debug builds.
 * - `checked floor`: the same stack, plus what any pool that refuses bad frees must do per call —
 *   free checks the address lies in the pool's memory, starts a block and is allocated (one state
 *   word per block), alloc notices exhaustion. Its memory is one contiguous range, so it needs no
 *   page lookup at all: every real pool (pages scattered in DMA space) does at least this much.
 * - `paged floor`: the checked floor with pages, as every real pool has them: 4 KiB pages scattered
 *   over DMA space, each free finding its page through one flat table (the cheapest lookup there
 *   is), then the same checks. What a pool whose pages are not one range spends at least.
 *
 * All use integer arithmetic on the offset from the base (the offset of a block is below 2^31):
 * a double division per free would measure the floor's own clumsiness, not the language's.
 */
import { isPow2 } from '../pow2';
import { rng, shuffle } from '../rng';

export const FLOORS = ['JS floor', 'checked floor', 'paged floor'] as const;
export type FloorKind = (typeof FLOORS)[number];

const ALLOCATED = -2;

/** log2(size) for a power of two, else -1. */
function shiftOf(size: number): number {
  return isPow2(size) ? Math.log2(size) : -1;
}

/** The links of a stack holding blocks 0 … blocks - 1, block 0 on top (each links to the next, the last to -1). */
function blockStack(blocks: number): Int32Array {
  const next = new Int32Array(blocks);
  for (let b = 0; b < blocks; b++) next[b] = b + 1 < blocks ? b + 1 : -1;
  return next;
}

/** Bytes per page of the paged floor: Linux's PAGE_SIZE (every dmapool_test row's and the seed's allocation). */
export const FLOOR_PAGE = 4096;

/** Bytes of DMA address space a floor's pool of `blocks` blocks of `size` bytes spans. */
export function floorSpan(kind: FloorKind, blocks: number, size: number): number {
  return kind === 'paged floor' ? Math.ceil(blocks / Math.floor(FLOOR_PAGE / size)) * 2 * FLOOR_PAGE : blocks * size;
}

/** The floors compute offsets in 32-bit integer arithmetic: a floor's pool spans less than this. */
export const FLOOR_MAX_SPAN = 2 ** 31;

/** The floors that can hold `blocks` blocks of `size` bytes (span under FLOOR_MAX_SPAN), in FLOORS order. */
export function fittingFloors(blocks: number, size: number): FloorKind[] {
  return FLOORS.filter((f) => floorSpan(f, blocks, size) < FLOOR_MAX_SPAN);
}

/** Refuses a pool past FLOOR_MAX_SPAN (its integer offsets would wrap: wrong blocks, not slow ones). */
function checkSpan(kind: FloorKind, blocks: number, size: number): void {
  const span = floorSpan(kind, blocks, size);
  if (!(span < FLOOR_MAX_SPAN))
    throw new RangeError(`${kind}: ${blocks} blocks of ${size} B span ${span} bytes, past the 2^31 its integer arithmetic covers`);
}

/** A bare block stack over `blocks` blocks of `size` bytes from DMA address `base`. */
export class FloorPool {
  private readonly next: Int32Array;
  private head = 0;
  private readonly shift: number;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
    checkSpan('JS floor', blocks, size);
    this.next = blockStack(blocks);
    this.shift = shiftOf(size);
  }

  /** Pops a block (the caller never takes more than `blocks`: no check, as no check is the point). */
  alloc(): number {
    const b = this.head;
    this.head = this.next[b];
    return this.base + (this.shift >= 0 ? b << this.shift : b * this.size);
  }

  /** Pushes the block at `dma` back, trusting it. */
  free(dma: number): void {
    const off = (dma - this.base) | 0;
    const b = this.shift >= 0 ? off >> this.shift : (off / this.size) | 0;
    this.next[b] = this.head;
    this.head = b;
  }
}

/** The block stack with the checks every safe free makes (see the file comment). */
export class CheckedFloorPool {
  private readonly next: Int32Array;
  private head: number;
  private readonly shift: number;
  private readonly span: number;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
    checkSpan('checked floor', blocks, size);
    this.head = blocks > 0 ? 0 : -1;
    this.next = blockStack(blocks);
    this.shift = shiftOf(size);
    this.span = blocks * size;
  }

  alloc(): number {
    const b = this.head;
    if (b < 0) throw new RangeError('checked floor: no free block');
    this.head = this.next[b];
    this.next[b] = ALLOCATED;
    return this.base + (this.shift >= 0 ? b << this.shift : b * this.size);
  }

  free(dma: number): void {
    const off = dma - this.base;
    if (!(off >= 0 && off < this.span)) throw new RangeError('checked floor: not this pool\'s address');
    const o = off | 0; // exact: 0 ≤ off < span < 2^31 (a fraction fails the block-start check)
    const b = this.shift >= 0 ? o >> this.shift : (o / this.size) | 0;
    if ((this.shift >= 0 ? b << this.shift : b * this.size) !== off) throw new RangeError('checked floor: not a block start');
    if (this.next[b] !== ALLOCATED) throw new RangeError('checked floor: already free');
    this.next[b] = this.head;
    this.head = b;
  }
}

let scatter: Int32Array | undefined;

/**
 * 0 … slots - 1 in a shuffled order (seeded: the same every run), made before the clock
 * (Floor.prepare) and kept for the next pool of the same size: a timed create does not time the
 * shuffle (a real pool's pages arrive placed).
 */
function scatterOrder(slots: number): Int32Array {
  if (scatter === undefined || scatter.length !== slots) {
    scatter = new Int32Array(slots);
    for (let i = 0; i < slots; i++) scatter[i] = i;
    shuffle(scatter, rng(0x9a9ed));
  }
  return scatter;
}

/**
 * The checked floor with pages (see the file comment). `blocks` blocks of `size` ≤ FLOOR_PAGE bytes
 * are laid out as dma_pool_create() lays out a page: ⌊FLOOR_PAGE / size⌋ per page from its start.
 * The pages sit in a DMA window of twice their number of 4 KiB slots, in an order shuffled once
 * (seeded): neighbouring pages are not neighbours in DMA space, as in a long-running IOVA space.
 * `table[slot]` holds page + 1 (0: no page). One LIFO of all blocks, as the other floors; a
 * block's address is its page's plus its offset (no per-block table to build at create).
 */
export class PagedFloorPool {
  private readonly next: Int32Array;
  private head: number;
  private readonly table: Int32Array;
  private readonly bpp: number;
  /** log2(bpp) when a power of two, else -1 (a division finds a block's page). */
  private readonly bppShift: number;
  private readonly shift: number;
  /** Bytes of the DMA window. */
  private readonly window: number;
  /** Each page's DMA address. */
  readonly pageDma: Float64Array;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
    if (!(size >= 1 && size <= FLOOR_PAGE)) throw new RangeError(`paged floor: size ${size} not in 1…${FLOOR_PAGE}`);
    checkSpan('paged floor', blocks, size);
    const bpp = Math.floor(FLOOR_PAGE / size);
    const pages = Math.ceil(blocks / bpp);
    const slots = pages * 2;
    this.bpp = bpp;
    this.shift = shiftOf(size);
    this.window = slots * FLOOR_PAGE;
    const order = scatterOrder(slots);
    this.pageDma = new Float64Array(pages);
    this.table = new Int32Array(slots);
    for (let p = 0; p < pages; p++) {
      this.pageDma[p] = base + order[p] * FLOOR_PAGE;
      this.table[order[p]] = p + 1;
    }
    this.bppShift = shiftOf(bpp);
    this.next = blockStack(pages * bpp);
    this.head = pages > 0 ? 0 : -1;
  }

  alloc(): number {
    const b = this.head;
    if (b < 0) throw new RangeError('paged floor: no free block');
    this.head = this.next[b];
    this.next[b] = ALLOCATED;
    const p = this.bppShift >= 0 ? b >> this.bppShift : (b / this.bpp) | 0;
    const idx = b - p * this.bpp;
    return this.pageDma[p] + (this.shift >= 0 ? idx << this.shift : idx * this.size);
  }

  free(dma: number): void {
    const off = dma - this.base;
    if (!(off >= 0 && off < this.window)) throw new RangeError('paged floor: not this pool\'s address');
    const o = off | 0; // exact: 0 ≤ off < window < 2^31 (a fraction fails the block-start check)
    const p = this.table[o >>> 12] - 1;
    if (p < 0) throw new RangeError('paged floor: not this pool\'s address');
    const within = o & (FLOOR_PAGE - 1);
    const idx = this.shift >= 0 ? within >> this.shift : (within / this.size) | 0;
    if ((this.shift >= 0 ? idx << this.shift : idx * this.size) !== within || o !== off || idx >= this.bpp)
      throw new RangeError('paged floor: not a block start');
    const b = p * this.bpp + idx;
    if (this.next[b] !== ALLOCATED) throw new RangeError('paged floor: already free');
    this.next[b] = this.head;
    this.head = b;
  }
}

// dmapool_test's inner loops, as functions of their own per floor (as ours are): separate from
// ours and from each other, so no JIT feedback mixes
function floorAlloc(pool: FloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) dma[i] = pool.alloc();
}

function floorFree(pool: FloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) pool.free(dma[i]);
}

function checkedAlloc(pool: CheckedFloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) dma[i] = pool.alloc();
}

function checkedFree(pool: CheckedFloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) pool.free(dma[i]);
}

function pagedAlloc(pool: PagedFloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) dma[i] = pool.alloc();
}

function pagedFree(pool: PagedFloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) pool.free(dma[i]);
}

/** A floor: how to make one, and its own two loops. */
interface Floor<P> {
  /** Work a real pool would not do at create (placing the paged floor's pages), done before the clock. */
  prepare?(blocks: number, size: number): void;
  make(blocks: number, size: number, base: number): P;
  alloc(pool: P, dma: Float64Array): void;
  free(pool: P, dma: Float64Array): void;
}

function floor<P>(f: Floor<P>): Floor<unknown> {
  return f as Floor<unknown>;
}

const IMPLS: Record<FloorKind, Floor<unknown>> = {
  'JS floor': floor({ make: (b, s, base) => new FloorPool(b, s, base), alloc: floorAlloc, free: floorFree }),
  'checked floor': floor({ make: (b, s, base) => new CheckedFloorPool(b, s, base), alloc: checkedAlloc, free: checkedFree }),
  'paged floor': floor({ prepare: (b, s) => { checkSpan('paged floor', b, s); scatterOrder(floorSpan('paged floor', b, s) / FLOOR_PAGE); },
    make: (b, s, base) => new PagedFloorPool(b, s, base), alloc: pagedAlloc, free: pagedFree }),
};

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Above 2^31, like real DMA addresses: doubles, not small integers. */
const FLOOR_BASE = 2 ** 32;

/** ms for 100 iterations of `iteration` (dmapool_test's NR_TESTS). */
function time100(iteration: () => void): number {
  const t0 = now();
  for (let it = 0; it < 100; it++) iteration();
  return now() - t0;
}

let addresses: Float64Array | undefined;

/**
 * The caller's address array of a run — ours (bench.ts runOnce) and the floors' share it: one per
 * process and count, reused by later runs (the kernel runner keeps one too), taken before the
 * clock. Written once when made: a fresh array's pages are not yet mapped, and a fresh process's
 * first run would otherwise time their page faults inside the alloc loop (the caller's memory,
 * not the pool's).
 */
export function addressArray(n: number): Float64Array {
  if (addresses === undefined || addresses.length !== n) addresses = new Float64Array(n).fill(0);
  return addresses;
}

/** A seed run's two figures in ms (what bench-floor-child prints for its first run). */
export interface FloorSeedSample {
  alloc: number;
  free: number;
}

/**
 * One seed run on a floor, as runOnce does ours: create + n × alloc of `size`-byte blocks (the
 * floor's constructor links its blocks, as a pool's new pages are linked), then n × free; ms of
 * each. Through the same loop functions as the floor's dmapool_test rows. In a fresh process
 * (the bench-floor-child command) the first run is what the JIT's tier-up costs a pool that does
 * almost nothing per call: the floor under any JavaScript pool's cold ÷ warm.
 */
export function floorSeedRun(kind: FloorKind, n: number, size: number): FloorSeedSample {
  const f = IMPLS[kind];
  const dma = addressArray(n);
  f.prepare?.(n, size);
  const t0 = now();
  const pool = f.make(n, size, FLOOR_BASE);
  f.alloc(pool, dma);
  const t1 = now();
  f.free(pool, dma);
  return { alloc: t1 - t0, free: now() - t1 };
}

/**
 * The bench's random-order free on a floor: n blocks allocated (untimed), their addresses
 * shuffled with the bench's seed, then the timed free loop; ms.
 */
export function floorRandomFree(kind: FloorKind, n: number, size: number, seed: number): number {
  const f = IMPLS[kind];
  const dma = addressArray(n);
  f.prepare?.(n, size);
  const pool = f.make(n, size, FLOOR_BASE);
  f.alloc(pool, dma);
  shuffle(dma, rng(seed));
  const t0 = now();
  f.free(pool, dma);
  return now() - t0;
}

/** One dmapool_test row on a floor: 100 iterations of allocate-all then free-all; ms. */
export function floorDmapoolTest(kind: FloorKind, size: number, blocks: number): number {
  const f = IMPLS[kind];
  const dma = new Float64Array(blocks);
  f.prepare?.(blocks, size);
  const pool = f.make(blocks, size, FLOOR_BASE);
  return time100(() => { f.alloc(pool, dma); f.free(pool, dma); });
}
