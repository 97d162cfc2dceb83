/**
 * Linux ≥ 6.4 ("dmapool: link blocks across pages", Keith Busch): one pool-wide LIFO of free
 * blocks, so alloc and free are O(1) pushes and pops with no per-page free lists. The kernel
 * trusts the caller's vaddr and looks up no page on free outside debug mode; this library
 * validates every free (double free, foreign or misaligned address) in every mode, so the
 * stack strategy finds the owning page with the same red-black tree the seed uses.
 */
import { isPow2 } from '../pow2';
import { RbTree } from './rbtree';
import { checkProbe, type PageIndex } from './page-index';
import { cursorPage, Link, PageTable } from './pages';

export class StackIndex implements PageIndex {
  readonly kind = 'stack' as const;
  /** A new page's blocks are handed out by a cursor (fresh … freshEnd), not linked first. */
  readonly linksPages = false;
  readonly tree = new RbTree();
  private head: number = Link.None;
  /**
   * The newest page's blocks not yet handed out: [fresh, freshEnd), taken upwards once the stack
   * is empty — the bottom of the stack, in the order a linked chain spliced on at addPage() would
   * give (frees after it are pushed above it). A page thus costs no link stores when it is added:
   * Linux writes its free list into every block of a new page (pool_initialise_page()); here a
   * block gets a link only when it is freed. Their `next` entries are never Link.Allocated.
   */
  private fresh = 0;
  private freshEnd = 0;
  takenPage: number = Link.None;
  /** log2(blocksPerPage) when it is a power of two (a shift finds a block's page), else -1 (a division). */
  private readonly bppShift: number;
  constructor(private readonly pages: PageTable) {
    const bpp = pages.blocksPerPage;
    this.bppShift = isPow2(bpp) ? Math.log2(bpp) : -1;
  }

  get visits(): number {
    return this.tree.visits;
  }

  get bytesPerPage(): number {
    return RbTree.bytesPerNode;
  }

  addPage(page: number): void {
    const pages = this.pages;
    this.tree.insert(page, pages.dma[page], pages.allocation);
    const bpp = pages.blocksPerPage;
    if (this.head === Link.None && this.fresh === this.freshEnd) {
      // the pool's case (a page is added when take() found nothing): the cursor hands it out
      this.fresh = page * bpp;
      this.freshEnd = this.fresh + bpp;
    } else {
      // blocks still free (a caller adding pages ahead): the page's blocks, linked in ascending
      // order, go on top of the stack, as a chain spliced on at once always did
      pages.linkPage(page);
      pages.next[page * bpp + bpp - 1] = this.head;
      this.head = page * bpp;
    }
    pages.freeHead[page] = Link.None; // per-page lists are unused by this strategy
  }

  findProbe(): number {
    // the tree directly, not through findPage(): one call level less between the field and the
    // descent, where the address would be boxed if V8 stopped inlining (through findPage it
    // measured 6 MB of boxed addresses per 373959 random-order frees)
    return this.tree.find(this.pages.probe);
  }

  findPage(dma: number): number {
    return this.tree.find(dma);
  }

  take(): number {
    let b = this.head;
    const pages = this.pages;
    if (b !== Link.None) this.head = pages.next[b];
    else if (this.fresh < this.freshEnd) b = this.fresh++;
    else return Link.None;
    const shift = this.bppShift;
    this.takenPage = shift >= 0 ? b >> shift : (b / pages.blocksPerPage) | 0;
    return b;
  }

  put(block: number): void {
    this.pages.next[block] = this.head;
    this.head = block;
  }

  check(): void {
    const pages = this.pages;
    this.tree.check();
    checkProbe(this, pages);
    if (this.tree.size !== pages.count) throw new Error(`tree has ${this.tree.size} pages, pool has ${pages.count}`);
    const total = pages.count * pages.blocksPerPage;
    const seen = new Uint8Array(total);
    const freePerPage = new Int32Array(pages.count);
    let n = 0;
    for (let b = this.head; b !== Link.None; b = pages.next[b]) {
      if (b < 0 || b >= total) throw new Error(`block stack reaches invalid block ${b}`);
      if (seen[b]) throw new Error(`block stack revisits block ${b}`);
      if (pages.next[b] === Link.Allocated) throw new Error(`allocated block ${b} on the block stack`);
      seen[b] = 1;
      freePerPage[(b / pages.blocksPerPage) | 0]++;
      n++;
    }
    // the cursor's blocks: the tail of one page, free, on no list
    if (this.fresh !== this.freshEnd) {
      const p = cursorPage(pages, this.fresh, this.freshEnd);
      for (let b = this.fresh; b < this.freshEnd; b++) {
        if (seen[b]) throw new Error(`fresh block ${b} is also on the block stack`);
        if (pages.next[b] === Link.Allocated) throw new Error(`fresh block ${b} is allocated`);
        seen[b] = 1;
        freePerPage[p]++;
        n++;
      }
    }
    for (let p = 0; p < pages.count; p++) {
      const used = pages.allocatedIn(p);
      if (freePerPage[p] + used !== pages.blocksPerPage)
        throw new Error(`page ${p}: ${freePerPage[p]} free + ${used} allocated != ${pages.blocksPerPage}`);
    }
    if (n > total) throw new Error('block stack longer than the pool');
  }
}
