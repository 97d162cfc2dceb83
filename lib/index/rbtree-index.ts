/**
 * The seed's strategy ("dmapool: improve scalability of dma_pool_alloc/free"): the available
 * page list plus a red-black tree of pages keyed by page DMA address, so free finds the owning
 * page in O(log pages) from the DMA address alone (no virt_to_page()).
 */
import { RbTree } from './rbtree';
import { AvailableListIndex } from './available';

export class RbTreeIndex extends AvailableListIndex {
  readonly kind = 'rbtree' as const;
  readonly tree = new RbTree();

  get visits(): number {
    return this.tree.visits;
  }

  get bytesPerPage(): number {
    return RbTree.bytesPerNode + AvailableListIndex.listBytesPerPage;
  }

  protected indexPage(page: number): void {
    this.tree.insert(page, this.pages.dma[page], this.pages.allocation);
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

  protected checkLookup(): void {
    this.tree.check();
    if (this.tree.size !== this.pages.count)
      throw new Error(`rbtree has ${this.tree.size} pages, pool has ${this.pages.count}`);
  }
}
