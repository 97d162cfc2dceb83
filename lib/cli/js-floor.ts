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
 *
 * Both use integer arithmetic on the offset from the base (the offset of a block is below 2^31):
 * a double division per free would measure the floor's own clumsiness, not the language's.
 */
import { isPow2 } from '../pow2';

export const FLOORS = ['JS floor', 'checked floor'] as const;
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

/** A bare block stack over `blocks` blocks of `size` bytes from DMA address `base`. */
export class FloorPool {
  private readonly next: Int32Array;
  private head = 0;
  private readonly shift: number;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
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
  private head = 0;
  private readonly shift: number;
  private readonly span: number;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
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

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Above 2^31, like real DMA addresses: doubles, not small integers. */
const FLOOR_BASE = 2 ** 32;

/** ms for 100 iterations of `iteration` (dmapool_test's NR_TESTS). */
function time100(iteration: () => void): number {
  const t0 = now();
  for (let it = 0; it < 100; it++) iteration();
  return now() - t0;
}

let seedDma: Float64Array | undefined;

/**
 * One seed run on a floor, as runOnce does ours: create + n × alloc of `size`-byte blocks (the
 * floor's constructor links its n blocks, as a pool's new pages are linked), then n × free; ms of
 * each. Through the same loop functions as the floor's dmapool_test rows. In a fresh process
 * (the bench-floor-child command) the first run is what the JIT's tier-up costs a pool that does
 * almost nothing per call: the floor under any JavaScript pool's cold ÷ warm.
 */
export function floorSeedRun(kind: FloorKind, n: number, size: number): { alloc: number; free: number } {
  // one address array per process and count, made before the clock, as the bench's for ours (a
  // fresh 3 MB array per run would time its page faults, not the floor)
  if (seedDma === undefined || seedDma.length !== n) seedDma = new Float64Array(n);
  const dma = seedDma;
  const t0 = now();
  if (kind === 'JS floor') {
    const pool = new FloorPool(n, size, FLOOR_BASE);
    floorAlloc(pool, dma);
    const t1 = now();
    floorFree(pool, dma);
    return { alloc: t1 - t0, free: now() - t1 };
  }
  const pool = new CheckedFloorPool(n, size, FLOOR_BASE);
  checkedAlloc(pool, dma);
  const t1 = now();
  checkedFree(pool, dma);
  return { alloc: t1 - t0, free: now() - t1 };
}

/** One dmapool_test row on a floor: 100 iterations of allocate-all then free-all; ms. */
export function floorDmapoolTest(kind: FloorKind, size: number, blocks: number): number {
  const dma = new Float64Array(blocks);
  if (kind === 'JS floor') {
    const pool = new FloorPool(blocks, size, FLOOR_BASE);
    return time100(() => { floorAlloc(pool, dma); floorFree(pool, dma); });
  }
  const pool = new CheckedFloorPool(blocks, size, FLOOR_BASE);
  return time100(() => { checkedAlloc(pool, dma); checkedFree(pool, dma); });
}
