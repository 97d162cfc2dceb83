/**
 * The original dma_pool (Linux ≤ 5.x, before the seed): one page list, newest first.
 * alloc scans from the newest page for one with a free block (so each new page costs a
 * scan over every full page: O(pages²) over a fill); free scans for the page containing the
 * address (O(pages) per free). Kept faithful as the baseline every speed-up is measured against.
 */
import { checkProbe, type PageIndex } from './page-index';
import { checkPerPageFreeLists, Link, PageTable } from './pages';

export class LinearIndex implements PageIndex {
  readonly kind = 'linear' as const;
  /** Per-page free lists, as the original: a new page's blocks come linked (PageTable.add). */
  readonly linksPages = true;
  readonly bytesPerPage = 0; // the list order is the page-id order
  visits = 0;
  takenPage: number = Link.None;
  constructor(private readonly pages: PageTable) {}

  addPage(_page: number): void {}

  findProbe(): number {
    return this.findPage(this.pages.probe);
  }

  findPage(dma: number): number {
    const pages = this.pages, pd = pages.dma, alloc = pages.allocation;
    let v = 0;
    let found = -1;
    for (let p = pages.count - 1; p >= 0; p--) {
      v++;
      const d = pd[p];
      if (dma >= d && dma < d + alloc) { found = p; break; }
    }
    this.visits += v;
    return found;
  }

  take(): number {
    const pages = this.pages, head = pages.freeHead;
    let v = 0;
    for (let p = pages.count - 1; p >= 0; p--) {
      v++;
      const b = head[p];
      if (b !== Link.None) {
        head[p] = pages.next[b];
        this.takenPage = p;
        this.visits += v;
        return b;
      }
    }
    this.visits += v;
    return Link.None;
  }

  put(block: number, page?: number): void {
    const pages = this.pages;
    const p = page ?? (block / pages.blocksPerPage) | 0;
    pages.next[block] = pages.freeHead[p];
    pages.freeHead[p] = block;
  }

  check(): void {
    checkPerPageFreeLists(this.pages);
    checkProbe(this, this.pages);
  }
}
