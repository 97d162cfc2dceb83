/**
 * A two-level radix table from DMA address to owning page, the way SPDK's mem_map translates
 * addresses: O(1) for any address layout. Pool pages sit in naturally aligned chunks of
 * `unit` = nextPow2(allocation) bytes, so each unit holds at most one page start; the unit
 * number's high bits select a leaf (created on demand), the low bits an entry in it.
 */
import { DmaPoolError, hex } from '../errors';
import { nextPow2 } from '../pow2';
import { AvailableListIndex } from './available';
import { asNoMem, type PageTable } from './pages';

const LEAF_BITS = 12;
const LEAF_SIZE = 1 << LEAF_BITS;
const INV_LEAF_SIZE = 1 / LEAF_SIZE;
/** Leaves reachable through a plain array (leaf ids from the first leaf's on): no Map lookup when frees alternate between leaves. */
const DENSE = 64;
/**
 * The leaf of every id in the dense window that has none: all zeros (no page), shared and never
 * written. A lookup then reads a slot whether or not its leaf exists — one array load, no branch
 * on which leaf the last lookup used (random-order frees alternate between leaves).
 */
const NO_LEAF = new Int32Array(LEAF_SIZE);

export class RadixIndex extends AvailableListIndex {
  readonly kind = 'radix' as const;
  visits = 0;
  private readonly unit: number;
  /** leaf id (unit >> LEAF_BITS) → entries holding page + 1 (0 = none). */
  private readonly leaves = new Map<number, Int32Array>();
  /** dense[id - denseBase]: the same leaves as `leaves`, for the first DENSE leaf ids from denseBase (NO_LEAF where none). */
  private readonly dense: Int32Array[] = new Array<Int32Array>(DENSE).fill(NO_LEAF);
  /** The first leaf's id (-1 before any): slabs come from ascending IOVAs, so later leaves follow it. */
  private denseBase = -1;
  /** 1 / unit: exact, unit being a power of two. */
  private readonly invUnit: number;
  /** The unit is larger than a page (allocation not a power of two): a lookup checks the page's end. */
  private readonly unitPastPage: boolean;

  constructor(pages: PageTable) {
    super(pages);
    this.unit = nextPow2(pages.allocation);
    this.invUnit = 1 / this.unit;
    this.unitPastPage = this.unit !== pages.allocation;
  }

  get bytesPerPage(): number {
    // leaves are 16 KiB each, shared by up to LEAF_SIZE pages of a dense range
    const perPage = this.pages.count ? (this.leaves.size * LEAF_SIZE * 4) / this.pages.count : 0;
    return perPage + AvailableListIndex.listBytesPerPage;
  }

  /** The leaf of `id` (never NO_LEAF), made when `create`; else undefined when it has none. */
  private leaf(id: number, create: boolean): Int32Array | undefined {
    let l = this.leaves.get(id);
    if (l === undefined && create) {
      l = new Int32Array(LEAF_SIZE);
      if (this.denseBase < 0) this.denseBase = id;
      this.leaves.set(id, l);
      const d = id - this.denseBase;
      if (d >= 0 && d < DENSE) this.dense[d] = l;
    }
    return l;
  }

  protected indexPage(page: number): void {
    const dma = this.pages.dma[page];
    const u = Math.floor(dma / this.unit);
    if (u * this.unit !== dma)
      throw new DmaPoolError('EINVAL', `page at ${hex(dma)} is not aligned to ${hex(this.unit)}`);
    const id = Math.floor(u / LEAF_SIZE);
    const slot = u % LEAF_SIZE;
    // check before creating a leaf, so a refused page leaves no empty leaf behind
    const existing = this.leaf(id, false);
    if (existing !== undefined && existing[slot] !== 0) throw new DmaPoolError('EINVAL', `DMA address overlap at ${hex(dma)}`);
    let leaf = existing;
    if (leaf === undefined) {
      try {
        leaf = this.leaf(id, true)!;
      } catch (e) {
        throw asNoMem(e, 'radix leaf');
      }
    }
    leaf[slot] = page + 1;
  }

  findProbe(): number {
    return this.findPage(this.pages.probe);
  }

  findPage(dma: number): number {
    this.visits++;
    if (!(dma >= 0)) return -1;
    // multiplications by exact powers of two and a subtraction: no float division or fmod
    const u = Math.floor(dma * this.invUnit);
    const id = Math.floor(u * INV_LEAF_SIZE);
    const d = id - this.denseBase;
    // the dense window answers without a branch on which leaf (NO_LEAF reads 0: no page); ids
    // outside it (addresses far from the first page's) go to the map
    const leaf = this.denseBase >= 0 && d >= 0 && d < DENSE ? this.dense[d] : this.leaves.get(id);
    if (leaf === undefined) return -1;
    const p = leaf[u - id * LEAF_SIZE] - 1;
    // the unit may extend past the page (allocation not a power of two); when the page fills its
    // unit, the unit is the page's range and the check (a load that waits for this one) is skipped
    if (p < 0 || (this.unitPastPage && dma - this.pages.dma[p] >= this.pages.allocation)) return -1;
    return p;
  }

  protected checkLookup(): void {
    let entries = 0;
    for (const leaf of this.leaves.values()) for (const e of leaf) if (e !== 0) entries++;
    if (entries !== this.pages.count) throw new Error(`radix has ${entries} entries, pool has ${this.pages.count} pages`);
  }
}
