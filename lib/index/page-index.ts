/**
 * How a pool finds a free block on alloc and the owning page of a DMA address on free.
 * All strategies share the PageTable; they differ in the free-block structure and lookup.
 */
import type { PageTable } from './pages';

/** Every page-index strategy, the default first: the one list the pool, the CLI, the bench and the tests use. */
export const INDEX_KINDS = ['rbtree', 'linear', 'stack', 'radix'] as const;
export type IndexKind = (typeof INDEX_KINDS)[number];

export interface PageIndex {
  readonly kind: IndexKind;
  /**
   * Whether a new page's blocks must be linked in pages.next from pages.freeHead[page] before
   * addPage() (linear, Linux's original per-page lists); false when the index hands a new page's
   * blocks out itself by a cursor (stack; rbtree and radix, AvailableListIndex), so
   * PageTable.add() skips the bpp stores per page.
   */
  readonly linksPages: boolean;
  /**
   * A page was added (its blocks linked in pages.next from pages.freeHead[page] when linksPages).
   * All-or-nothing: it either succeeds or throws (DmaPoolError: EINVAL for an overlapping or
   * misaligned page, ENOMEM when its arrays cannot grow) leaving the index as it was; the pool
   * then removes the page from the table and returns its chunk to the provider.
   */
  addPage(page: number): void;
  /** The page whose [dma, dma + allocation) contains `dma`, or -1. */
  findPage(dma: number): number;
  /** findPage(pages.probe): the pool's hot path, with no double argument to box (see PageTable.probe). */
  findProbe(): number;
  /** Takes a free block (global block id), or -1 when every page is full. */
  take(): number;
  /** The page of the block the last successful take() returned. */
  readonly takenPage: number;
  /** Returns an allocated block; `page` (its page, block / blocksPerPage) saves a division when the caller knows it. */
  put(block: number, page?: number): void;
  /** Throws when the index's own invariants or its agreement with the page table fail. */
  check(): void;
  /** Pages (or tree nodes) visited by lookups and scans: the work the strategy does. */
  readonly visits: number;
  /** Metadata bytes per page beyond the shared page table. */
  readonly bytesPerPage: number;
}

export type PageIndexFactory = (pages: PageTable) => PageIndex;

/**
 * findProbe() agrees with findPage() at every page's first and last byte and just past it (the
 * hot path's lookup and the reference one). Throws on the first disagreement; check() calls it.
 */
export function checkProbe(index: PageIndex, pages: PageTable): void {
  for (let p = 0; p < pages.count; p++) {
    for (const d of [pages.dma[p], pages.dma[p] + pages.allocation - 1, pages.dma[p] + pages.allocation]) {
      pages.probe = d;
      const got = index.findProbe();
      if (got !== index.findPage(d)) throw new Error(`${index.kind}: findProbe() finds page ${got} for ${d}, findPage() ${index.findPage(d)}`);
    }
  }
}
