/**
 * The seed's "available" page list: pages that still have a free block, most recently
 * refilled first. alloc takes the head page's first free block; a page that fills up leaves
 * the list; a full page that gets a block back rejoins at the head. Lookup of the owning page
 * on free is left to subclasses (red-black tree, radix table).
 */
import { DmaPoolError } from '../errors';
import { checkProbe, type IndexKind, type PageIndex } from './page-index';
import { asNoMem, checkPerPageFreeLists, cursorPage, Link, PageTable } from './pages';

export abstract class AvailableListIndex implements PageIndex {
  abstract readonly kind: IndexKind;
  /** A new page's blocks are handed out by the cursor (fresh … freshEnd), not linked first. */
  readonly linksPages = false;
  abstract readonly visits: number;
  abstract readonly bytesPerPage: number;
  abstract findPage(dma: number): number;
  abstract findProbe(): number;
  /** Registers the page's DMA range in the lookup structure; throws before changing it, or not at all. */
  protected abstract indexPage(page: number): void;
  /** Checks the lookup structure itself. */
  protected abstract checkLookup(): void;

  /** The page of the block take() returned last (the pool reads it instead of dividing). */
  takenPage: number = Link.None;
  /**
   * The available list: its first page (or Link.None) and each page's neighbours. Protected, not
   * private: a test subclass corrupts them, as a bug would, to show check() refuses the result.
   */
  protected availHead: number = Link.None;
  protected availNext: Int32Array = new Int32Array(16);
  protected availPrev: Int32Array = new Int32Array(16);
  /**
   * The cursor: blocks [fresh, freshEnd) of page `curPage`, never handed out yet — the tail of
   * that page's free list, after its linked part (freeHead). A page added when every page is full
   * (the pool's case) gets the cursor instead of having its blocks linked: Linux writes a free
   * list into every block of a new page (pool_initialise_page()), here a block gets a link only
   * when it is freed. The order is the linked list's: freed blocks first (pushed on freeHead),
   * then the untaken ones upwards. A page is available while its list or the cursor (when it is
   * the cursor's page) holds a block. The cursor's blocks' `next` entries are never Link.Allocated.
   */
  private curPage: number = Link.None;
  private fresh = 0;
  private freshEnd = 0;
  constructor(protected readonly pages: PageTable) {}

  addPage(page: number): void {
    // Everything that can fail comes first: growing the list's arrays (both allocated before
    // either is assigned), then the lookup entry (which checks before it changes anything).
    if (page >= this.availNext.length) {
      let cap = this.availNext.length * 2;
      while (cap <= page) cap *= 2;
      let n: Int32Array, p: Int32Array;
      try {
        n = new Int32Array(cap); p = new Int32Array(cap);
      } catch (e) {
        throw asNoMem(e, `${this.kind} available list growth to ${cap} pages`);
      }
      n.set(this.availNext); p.set(this.availPrev);
      this.availNext = n; this.availPrev = p;
    }
    this.indexPage(page);
    const pages = this.pages;
    if (this.fresh === this.freshEnd) {
      // the cursor is free (always, when the pool adds a page: every page is full): it hands the page out
      this.curPage = page;
      this.fresh = page * pages.blocksPerPage;
      this.freshEnd = this.fresh + pages.blocksPerPage;
      pages.freeHead[page] = Link.None;
    } else {
      // another page's blocks are still on the cursor (a caller adding pages ahead): link this one
      pages.linkPage(page);
    }
    this.pushAvail(page);
  }

  /** Whether page p's free blocks include the cursor's (p is the cursor's page and it is not used up). */
  private onCursor(p: number): boolean {
    return p === this.curPage && this.fresh < this.freshEnd;
  }

  private pushAvail(page: number): void {
    const head = this.availHead;
    this.availNext[page] = head;
    this.availPrev[page] = Link.None;
    if (head !== Link.None) this.availPrev[head] = page;
    this.availHead = page;
  }

  take(): number {
    const p = this.availHead;
    if (p === Link.None) return Link.None;
    const pages = this.pages;
    let b = pages.freeHead[p];
    if (b !== Link.None) {
      const nb = pages.next[b];
      // a block on a free list links on, or ends it; an allocated one means a corrupted list
      if (nb === Link.Allocated) throw new DmaPoolError('EIO', `${this.kind} index: allocated block ${b} on page ${p}'s free list`);
      pages.freeHead[p] = nb;
      if (nb === Link.None && !this.onCursor(p)) this.leaveHead(p);
    } else {
      // an available page with an empty list holds the cursor's blocks; anything else would hand
      // out a block twice, so it is refused rather than trusted
      if (!this.onCursor(p))
        throw new DmaPoolError('EIO', `${this.kind} index: available page ${p} has no free block`);
      b = this.fresh++;
      if (this.fresh === this.freshEnd) this.leaveHead(p);
    }
    this.takenPage = p;
    return b;
  }

  /** The head page p is full: it leaves the available list. */
  private leaveHead(p: number): void {
    const n = this.availNext[p];
    this.availHead = n;
    if (n !== Link.None) this.availPrev[n] = Link.None;
  }

  put(block: number, page?: number): void {
    const pages = this.pages;
    const p = page ?? (block / pages.blocksPerPage) | 0;
    const head = pages.freeHead[p];
    pages.next[block] = head;
    pages.freeHead[p] = block;
    if (head === Link.None && !this.onCursor(p)) this.pushAvail(p); // was full: rejoin at the head
  }

  /** Bytes per page of the available list's links. */
  protected static readonly listBytesPerPage = 8;

  check(): void {
    const pages = this.pages;
    this.checkLookup();
    for (let p = 0; p < pages.count; p++) {
      const d = pages.dma[p];
      if (this.findPage(d) !== p || this.findPage(d + pages.allocation - 1) !== p)
        throw new Error(`${this.kind}: lookup does not find page ${p} over its whole range`);
      if (this.findPage(d + pages.allocation) === p || this.findPage(d - 1) === p)
        throw new Error(`${this.kind}: lookup finds page ${p} outside its range`);
    }
    if (this.fresh !== this.freshEnd && cursorPage(pages, this.fresh, this.freshEnd) !== this.curPage)
      throw new Error(`cursor [${this.fresh}, ${this.freshEnd}) is not the tail of its page ${this.curPage}`);
    checkPerPageFreeLists(pages, this.fresh !== this.freshEnd ? { page: this.curPage, from: this.fresh, to: this.freshEnd } : undefined);
    checkProbe(this, pages);
    const seen = new Uint8Array(pages.count);
    let prev = Link.None;
    for (let p = this.availHead; p !== Link.None; p = this.availNext[p]) {
      if (!(p >= 0 && p < pages.count)) throw new Error(`available list reaches page ${p}, past the ${pages.count} pages`);
      if (seen[p]) throw new Error(`available list revisits page ${p}`);
      seen[p] = 1;
      if (this.availPrev[p] !== prev) throw new Error(`available list: bad prev link at page ${p}`);
      if (pages.freeHead[p] === Link.None && !this.onCursor(p)) throw new Error(`full page ${p} on the available list`);
      prev = p;
    }
    for (let p = 0; p < pages.count; p++)
      if (!seen[p] && (pages.freeHead[p] !== Link.None || this.onCursor(p))) throw new Error(`page ${p} has free blocks but is not available`);
  }
}
