/**
 * The JS floor: a ruler for the benchmark, not a pool. It is the least any JavaScript dma_pool
 * can spend per call on this V8 — one pool-wide LIFO of block ids in an Int32Array, each address
 * computed from a base, no pages, no page lookup and no check of the caller's address (its free
 * trusts the address, as Linux 6.12's does). Run through dmapool_test's loops in the same
 * process as ours, it splits a ratio to Linux into the language's own cost per call (floor ÷
 * Linux) and what our pool adds on top of it (ours ÷ floor): validation, per-page lists, metadata
 * outside DMA memory.
 */
/** A bare block stack over `blocks` blocks of `size` bytes from DMA address `base`. */
export class FloorPool {
  private readonly next: Int32Array;
  private head = 0;

  constructor(blocks: number, private readonly size: number, private readonly base: number) {
    this.next = new Int32Array(blocks);
    for (let b = 0; b < blocks; b++) this.next[b] = b + 1 < blocks ? b + 1 : -1;
  }

  /** Pops a block (the caller never takes more than `blocks`: no check, as no check is the point). */
  alloc(): number {
    const b = this.head;
    this.head = this.next[b];
    return this.base + b * this.size;
  }

  /** Pushes the block at `dma` back, trusting it. */
  free(dma: number): void {
    const b = (dma - this.base) / this.size;
    this.next[b] = this.head;
    this.head = b;
  }
}

// dmapool_test's inner loops, as functions of their own (as ours are): separate from ours, so the
// floor's JIT feedback never mixes with the pool's
function floorAlloc(pool: FloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) dma[i] = pool.alloc();
}

function floorFree(pool: FloorPool, dma: Float64Array): void {
  for (let i = 0; i < dma.length; i++) pool.free(dma[i]);
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** One dmapool_test row on the floor: 100 iterations of allocate-all then free-all; ms. */
export function floorDmapoolTest(size: number, blocks: number): number {
  const pool = new FloorPool(blocks, size, 2 ** 32); // above 2^31, like real DMA addresses: doubles, not small integers
  const dma = new Float64Array(blocks);
  const t0 = now();
  for (let it = 0; it < 100; it++) {
    floorAlloc(pool, dma);
    floorFree(pool, dma);
  }
  return now() - t0;
}
