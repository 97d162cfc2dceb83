/**
 * The seed's "available" page list: pages that still have a free block, most recently
 * refilled first. alloc takes the head page's first free block; a page that fills up leaves
 * the list; a full page that gets a block back rejoins at the head. Lookup of the owning page
 * on free is left to subclasses (red-black tree, radix table).
 */
import { checkProbe, type IndexKind, type PageIndex } from './page-index';
import { asNoMem, checkPerPageFreeLists, Link, PageTable } from './pages';

export abstract class AvailableListIndex implements PageIndex {
  abstract readonly kind: IndexKind;
  /** Per-page free lists: a new page's blocks come linked (PageTable.add). */
  readonly linksPages = true;
  abstract readonly visits: number;
  abstract readonly bytesPerPage: number;
  abstract findPage(dma: number): number;
  abstract findProbe(): number;
  /** Registers the page's DMA range in the lookup structure; throws before changing it, or not at all. */
  protected abstract indexPage(page: number): void;
  /** Checks the lookup structure itself. */
  protected abstract checkLookup(): void;

  private availHead: number = Link.None;
  /** The page of the block take() returned last (the pool reads it instead of dividing). */
  takenPage: number = Link.None;
  private availNext: Int32Array = new Int32Array(16);
  private availPrev: Int32Array = new Int32Array(16);
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
    this.pushAvail(page);
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
    const b = pages.freeHead[p];
    const nb = pages.next[b];
    pages.freeHead[p] = nb;
    this.takenPage = p;
    if (nb === Link.None) {
      // the page is full: it leaves the available list (it is the head)
      const n = this.availNext[p];
      this.availHead = n;
      if (n !== Link.None) this.availPrev[n] = Link.None;
    }
    return b;
  }

  put(block: number, page?: number): void {
    const pages = this.pages;
    const p = page ?? (block / pages.blocksPerPage) | 0;
    const head = pages.freeHead[p];
    pages.next[block] = head;
    pages.freeHead[p] = block;
    if (head === Link.None) this.pushAvail(p); // was full: rejoin at the head
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
    checkPerPageFreeLists(pages);
    checkProbe(this, pages);
    const seen = new Uint8Array(pages.count);
    let prev = Link.None;
    for (let p = this.availHead; p !== Link.None; p = this.availNext[p]) {
      if (seen[p]) throw new Error(`available list revisits page ${p}`);
      seen[p] = 1;
      if (this.availPrev[p] !== prev) throw new Error(`available list: bad prev link at page ${p}`);
      if (pages.freeHead[p] === Link.None) throw new Error(`full page ${p} on the available list`);
      prev = p;
    }
    for (let p = 0; p < pages.count; p++)
      if (!seen[p] && pages.freeHead[p] !== Link.None) throw new Error(`page ${p} has free blocks but is not available`);
  }
}
