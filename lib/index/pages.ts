/**
 * Per-page and per-block bookkeeping of one pool, in typed arrays outside DMA memory.
 * Block ids are global: page * blocksPerPage + index-in-page. `next` links blocks into
 * free lists (per page, or one pool-wide stack, depending on the index strategy).
 */
import { DmaPoolError } from '../errors';

/**
 * The non-id values of a link (`next`, `freeHead`, the indexes' page lists). A const enum: tsc
 * writes the literal into every use, so the hot paths compare with a constant instead of loading
 * a module export (a property load and a type check per comparison).
 */
export const enum Link {
  /** The end of a list: no block, no page. */
  None = -1,
  /**
   * The `next` value of an allocated block. A free block's link is a block id or None, so one
   * Int32 per block says both where a free block leads and whether a block is allocated: alloc
   * and free touch one per-block array, not two (Linux keeps neither: its links live inside the
   * free blocks themselves, in DMA memory).
   */
  Allocated = -2,
}

/** Block ids are Int32 (links, Link.None = -1): a pool holds at most this many blocks. */
export const MAX_BLOCKS = 0x7fffffff;

/**
 * A failure to allocate bookkeeping memory (V8 throws RangeError for typed arrays it cannot
 * allocate, Maps or arrays past their maximum size) as the typed ENOMEM; other errors unchanged.
 */
export function asNoMem(e: unknown, what: string): unknown {
  if (e instanceof RangeError)
    return new DmaPoolError('ENOMEM', `${what}: ${e.message}`, { hint: 'the pool has too many pages for this process', cause: e });
  return e;
}

/** The page table's arrays for one capacity (allocated together, assigned together). */
export interface PageArrays {
  dma: Float64Array;
  freeHead: Int32Array;
  next: Int32Array;
}

function newPageArrays(cap: number, bpp: number): PageArrays {
  return {
    dma: new Float64Array(cap), freeHead: new Int32Array(cap),
    next: new Int32Array(cap * bpp),
  };
}

/** What the page table keeps per page from the layer below: the memory behind it, by DMA address. */
export interface PageMemory {
  readonly dma: number;
}

/** C: the provider's record of a page's memory (the pool's Chunk); the index needs only its address. */
export class PageTable<C extends PageMemory = PageMemory> {
  readonly blocksPerPage: number;
  readonly allocation: number;
  count = 0;
  /** DMA address of each page. */
  dma: Float64Array;
  /** First free block of each page's free list (per-page strategies), or Link.None. */
  freeHead: Int32Array;
  /** Per block: its free-list link (a block id or Link.None) while free, Link.Allocated while allocated. */
  next: Int32Array;
  /** The provider chunk behind each page (CPU view + release). */
  chunks: C[] = [];
  /**
   * The DMA address a lookup is for (PageIndex.findProbe): the pool's free path hands the address
   * to the index through this field, not as an argument. A DMA address is a double (≥ 2^31), and a
   * double passed to a call V8 does not inline is boxed — a 16-byte heap object per lookup, ~6 MB
   * of garbage per 373959 random-order frees; a double field is updated in place. Initialized to
   * a non-integer so the field is a double from the start (no representation change later).
   */
  probe = 0.5;

  /** Most pages this table can hold (block ids must stay Int32). */
  readonly maxPages: number;

  constructor(blocksPerPage: number, allocation: number, capacity = 16, maxPages = Math.floor(MAX_BLOCKS / blocksPerPage)) {
    this.blocksPerPage = blocksPerPage;
    this.allocation = allocation;
    this.maxPages = maxPages;
    const a = newPageArrays(Math.min(capacity, maxPages), blocksPerPage);
    this.dma = a.dma;
    this.freeHead = a.freeHead;
    this.next = a.next;
  }

  get capacity(): number {
    return this.dma.length;
  }

  /**
   * Makes room for `pages` pages. Throws DmaPoolError ENOMEM (table unchanged) when they would
   * exceed maxPages or the arrays cannot be allocated.
   */
  reserve(pages: number): void {
    if (pages <= this.dma.length) return;
    if (pages > this.maxPages)
      throw new DmaPoolError('ENOMEM', `pool page table is full (${this.maxPages} pages: block ids are 31-bit)`,
        'use fewer blocks per pool, or more pools');
    // doubling while small; ×4 from 256 pages on, so a large pool copies its per-block arrays
    // fewer times (growing 16 → 16384 pages copies ~1.3× the final size instead of ~2×)
    const len = this.dma.length;
    const cap = Math.min(Math.max(len * (len >= 256 ? 4 : 2), pages), this.maxPages);
    let a: PageArrays;
    try {
      a = this.allocArrays(cap);
    } catch (e) {
      throw asNoMem(e, `pool page table growth to ${cap} pages`);
    }
    a.dma.set(this.dma);
    a.freeHead.set(this.freeHead);
    a.next.set(this.next);
    // nothing is assigned until every array exists: a failure above leaves the table as it was
    this.dma = a.dma;
    this.freeHead = a.freeHead;
    this.next = a.next;
  }

  /** Allocates zeroed arrays for `cap` pages (a seam: tests override it to fail). */
  protected allocArrays(cap: number): PageArrays {
    return newPageArrays(cap, this.blocksPerPage);
  }

  /**
   * Adds a page over `chunk`. With `link` (the default, and what per-page free lists need) its
   * blocks are linked in ascending order from freeHead (first block first, the last one's link
   * Link.None); without, freeHead is Link.None and the blocks' links are left as they are (an
   * index that hands new blocks out by a cursor: PageIndex.linksPages). Returns the page id.
   * Call reserve(count + 1) first when growth must not fail half-way (the pool does); otherwise
   * this grows the table itself.
   */
  add(chunk: C, link = true): number {
    if (this.count === this.dma.length) this.reserve(this.count + 1);
    this.chunks.push(chunk);
    const p = this.count++;
    this.dma[p] = chunk.dma;
    if (link) this.linkPage(p);
    else this.freeHead[p] = Link.None;
    return p;
  }

  /** Links page p's blocks in ascending order from freeHead[p] (the last one's link Link.None). */
  linkPage(p: number): void {
    const bpp = this.blocksPerPage;
    const base = p * bpp;
    const next = this.next;
    const last = base + bpp - 1;
    for (let b = base; b < last; b++) next[b] = b + 1;
    next[last] = Link.None;
    this.freeHead[p] = base;
  }

  /**
   * Undoes the last add() (its index entry failed); returns the page's chunk. The page's `next`
   * entries are left as they are: no block of it was ever handed out, so none is Link.Allocated —
   * which a cursor relies on when the id is used again (its untaken blocks are never linked).
   */
  removeLast(): C {
    const p = --this.count;
    this.freeHead[p] = Link.None;
    this.dma[p] = 0;
    return this.chunks.pop()!;
  }

  /** Bytes of bookkeeping per page (DMA address, free-list head, one Int32 per block: link or Link.Allocated). */
  get bytesPerPage(): number {
    return 8 + 4 + this.blocksPerPage * 4;
  }

  /** Allocated blocks of page `p`, counted from the links (checks only: nothing keeps a per-page count). */
  allocatedIn(p: number): number {
    let n = 0;
    for (let b = p * this.blocksPerPage, end = b + this.blocksPerPage; b < end; b++) if (this.next[b] === Link.Allocated) n++;
    return n;
  }
}

/**
 * The page whose last blocks [from, to) are — a cursor's range (the indexes that hand a new page
 * out by a cursor: stack, AvailableListIndex) is never empty and ends at its page's last block —
 * or throws, for their check()s.
 */
export function cursorPage(pages: PageTable, from: number, to: number): number {
  const bpp = pages.blocksPerPage;
  const p = Math.floor(from / bpp);
  if (!(from >= 0 && from < to && to === (p + 1) * bpp && p < pages.count))
    throw new Error(`cursor [${from}, ${to}) is not the tail of one page`);
  return p;
}

/** Blocks [from, to) of `page`: free, handed out by a cursor, on no list (see AvailableListIndex). */
export interface CursorRange {
  page: number;
  from: number;
  to: number;
}

/**
 * Every page's free list holds exactly its free blocks, each once, and no allocated block; the
 * cursor's blocks, when given, count as free blocks of their page and are on no list.
 */
export function checkPerPageFreeLists(pages: PageTable, cursor?: CursorRange): void {
  const bpp = pages.blocksPerPage;
  for (let p = 0; p < pages.count; p++) {
    let n = 0;
    const onCursor = cursor !== undefined && cursor.page === p;
    for (let b = pages.freeHead[p]; b !== Link.None; b = pages.next[b]) {
      if (((b / bpp) | 0) !== p) throw new Error(`page ${p}: free list reaches block ${b} of another page`);
      if (pages.next[b] === Link.Allocated) throw new Error(`page ${p}: allocated block ${b} on the free list`);
      if (onCursor && b >= cursor.from && b < cursor.to) throw new Error(`page ${p}: cursor block ${b} is also on the free list`);
      if (++n > bpp) throw new Error(`page ${p}: free list longer than the page (cycle)`);
    }
    if (onCursor) {
      for (let b = cursor.from; b < cursor.to; b++) {
        if (pages.next[b] === Link.Allocated) throw new Error(`page ${p}: cursor block ${b} is allocated`);
        n++;
      }
    }
    const used = pages.allocatedIn(p);
    if (n + used !== bpp)
      throw new Error(`page ${p}: ${n} free + ${used} allocated != ${bpp} blocks`);
  }
}
