import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { DmaPoolError, RbTree } from '../lib';
import { makeIndex } from '../lib/pool';
import { INDEX_KINDS } from '../lib/index/page-index';
import { cursorPage, PageTable } from '../lib/index/pages';
import { RbTreeIndex } from '../lib/index/rbtree-index';

describe('RbTree (struct-of-arrays red-black tree of DMA ranges)', () => {
  it('finds the range containing an address, and nothing in the gaps', () => {
    const t = new RbTree(4);
    const keys = [0x10000, 0x3000, 0x8000, 0x1000, 0x20000];
    keys.forEach((k, i) => t.insert(i, k, 0x1000));
    t.check();
    keys.forEach((k, i) => {
      assert.equal(t.find(k), i);
      assert.equal(t.find(k + 0xfff), i);
    });
    assert.equal(t.find(0x2000), -1);
    assert.equal(t.find(0x4000), -1);
    assert.equal(t.find(0), -1);
    assert.equal(t.find(0x21000), -1);
  });

  it('rejects an overlapping insert with EINVAL "DMA address overlap" and stays valid', () => {
    const t = new RbTree();
    t.insert(0, 0x1000, 0x1000);
    assert.throws(() => t.insert(1, 0x1800, 0x1000), (e: unknown) =>
      e instanceof DmaPoolError && e.code === 'EINVAL' && /overlap/.test(e.message));
    assert.throws(() => t.insert(1, 0x0800, 0x1000), /overlap/);
    t.insert(1, 0x2000, 0x1000); // adjacent is fine
    t.check();
    assert.equal(t.size, 2);
  });

  it('stays balanced under sorted inserts (height ≤ 2·log2(n+1))', () => {
    const t = new RbTree();
    const n = 100000;
    for (let i = 0; i < n; i++) t.insert(i, i * 4096, 4096);
    t.check();
    assert.ok(t.height() <= 2 * Math.log2(n + 1), `height ${t.height()}`);
  });

  it('erases nodes in any order, keeping every invariant', () => {
    const t = new RbTree();
    for (let i = 0; i < 1000; i++) t.insert(i, ((i * 7919) % 1000) * 0x1000, 0x1000);
    for (let i = 0; i < 1000; i += 2) { t.erase(i); }
    t.check();
    assert.equal(t.size, 500);
    for (let i = 0; i < 1000; i++) assert.equal(t.has(i), i % 2 === 1);
  });

  it('the invariant checker catches broken trees', () => {
    const make = () => { const t = new RbTree(); for (let i = 0; i < 15; i++) t.insert(i, i * 16, 16); return t; };
    let t = make();
    t.color[t.root] = 0; // red root
    assert.throws(() => t.check(), /root is red/);
    t = make();
    const r = t.root; const l = t.left[r];
    t.parent[l] = l; // bad parent link
    assert.throws(() => t.check(), /parent/);
    t = make();
    t.key[t.left[t.root]] = 1e9; // out of order
    assert.throws(() => t.check(), /out of order/);
    t = make();
    // a red node with a red child, or unequal black heights, whichever a recolour produces first
    for (let i = 0; i < 15; i++) t.color[i] = 0;
    t.color[t.root] = 1;
    assert.throws(() => t.check(), /red node|black heights/);
    t = make();
    const leaf = t.inorder().find((n) => t.left[n] === -1 && t.right[n] === -1 && t.color[n] === 1)
      ?? t.inorder().find((n) => t.left[n] === -1 && t.right[n] === -1)!;
    t.color[leaf] = t.color[leaf] ? 0 : 1; // flip one leaf: black heights differ
    assert.throws(() => t.check(), /black heights|red node/);
  });

  it('property: matches a sorted-array model under random insert/erase/find (fast-check)', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('ins' as const), slot: fc.integer({ min: 0, max: 499 }) }),
      fc.record({ t: fc.constant('del' as const), slot: fc.integer({ min: 0, max: 499 }) }),
      fc.record({ t: fc.constant('find' as const), addr: fc.integer({ min: -10, max: 500 * 64 + 10 }) }),
    );
    let ops = 0;
    fc.assert(fc.property(fc.array(op, { minLength: 100, maxLength: 400 }), (cmds) => {
      const t = new RbTree(8);
      const model = new Map<number, number>(); // slot -> id
      let nextId = 0;
      const slotOfId = new Map<number, number>();
      for (const c of cmds) {
        ops++;
        if (c.t === 'ins') {
          if (model.has(c.slot)) {
            assert.throws(() => t.insert(nextId, c.slot * 64, 64), /overlap/);
          } else {
            t.insert(nextId, c.slot * 64, 64);
            model.set(c.slot, nextId); slotOfId.set(nextId, c.slot); nextId++;
          }
        } else if (c.t === 'del') {
          const id = model.get(c.slot);
          if (id !== undefined) { t.erase(id); model.delete(c.slot); }
        } else {
          const slot = Math.floor(c.addr / 64);
          const want = c.addr >= 0 && model.has(slot) ? model.get(slot)! : -1;
          assert.equal(t.find(c.addr), want);
        }
      }
      t.check();
      assert.equal(t.size, model.size);
      const order = t.inorder().map((id) => slotOfId.get(id)!);
      assert.deepEqual(order, [...model.keys()].sort((a, b) => a - b));
    }), { numRuns: 300, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) });
    assert.ok(ops >= 30000, `ran ${ops} tree operations`);
  });
});

describe('page indexes: the hot path lookup (findProbe) and the reference one (findPage)', () => {
  for (const kind of INDEX_KINDS) {
    it(`${kind}: findProbe() reads the address from pages.probe and agrees with findPage(); check() catches a disagreement`, () => {
      const pages = new PageTable(32, 4096);
      const index = makeIndex(kind, pages);
      for (const dma of [2 ** 32 + 3 * 4096, 2 ** 32, 2 ** 40]) index.addPage(pages.add({ dma }));
      for (let p = 0; p < pages.count; p++) {
        pages.probe = pages.dma[p] + 100;
        assert.equal(index.findProbe(), p);
      }
      pages.probe = 2 ** 32 + 4096; // between pages
      assert.equal(index.findProbe(), -1);
      index.check();
      const real = index.findProbe.bind(index);
      index.findProbe = () => (real() + 1) % pages.count;
      assert.throws(() => index.check(), /findProbe\(\) finds page/);
    });
  }
});

/** What a page index's model answers: the block take() gives, after pages are added and blocks put back. */
interface IndexModel {
  addPage(page: number): void;
  take(): number;
  put(block: number): void;
}

/**
 * Property: an index with a cursor (linksPages false) takes and puts exactly as `newModel`'s
 * linked design does, pages added when take() finds nothing (the pool's case) or ahead (a caller
 * adding a page while blocks are still free); check() holds after every step.
 */
function agreesWithModel(kind: 'stack' | 'rbtree' | 'radix', newModel: (bpp: number) => IndexModel): void {
  const op = fc.oneof(
    fc.record({ t: fc.constant('take' as const) }),
    fc.record({ t: fc.constant('put' as const), pick: fc.nat() }),
    fc.record({ t: fc.constant('ahead' as const) }),
    fc.record({ t: fc.constant('refused' as const) }),
  );
  let steps = 0, refused = 0;
  // allocation 5000: radix's 8192-byte unit extends past the page, so its lookups check the page's end
  fc.assert(fc.property(fc.constantFrom(1, 3, 32), fc.constantFrom(4096, 5000), fc.array(op, { minLength: 1, maxLength: 300, size: 'max' }), (bpp, allocation, ops) => {
    const pages = new PageTable(bpp, allocation);
    const index = makeIndex(kind, pages);
    assert.equal(index.linksPages, false);
    const model = newModel(bpp);
    const taken: number[] = [];
    const addPage = () => {
      index.addPage(pages.add({ dma: 2 ** 32 + pages.count * 8192 }, index.linksPages));
      model.addPage(pages.count - 1);
    };
    for (const o of ops) {
      if (o.t === 'take') {
        let b = index.take();
        let m = model.take();
        if (b === -1) {
          assert.equal(m, -1, 'the index ran out before the model');
          addPage(); // the pool's case: a page is added when take() finds nothing
          b = index.take();
          m = model.take();
        }
        assert.equal(b, m);
        assert.equal(index.takenPage, Math.floor(b / bpp));
        pages.next[b] = -2; // Link.Allocated, as the pool marks it
        taken.push(b);
      } else if (o.t === 'put' && taken.length) {
        const b = taken.splice(o.pick % taken.length, 1)[0];
        if (o.pick % 2) index.put(b, Math.floor(b / bpp)); else index.put(b); // with the page, or found by division
        model.put(b);
      } else if (o.t === 'ahead') {
        addPage(); // a caller adding a page while blocks are still free
      } else if (o.t === 'refused' && pages.count) {
        // a page over the last one's range: the index refuses it and must change nothing (the
        // pool then takes the page back out of the table) — with the cursor busy or not
        const p = pages.add({ dma: pages.dma[pages.count - 1] }, index.linksPages);
        assert.throws(() => index.addPage(p), (e: unknown) => e instanceof DmaPoolError && e.code === 'EINVAL');
        pages.removeLast();
        refused++;
      }
      index.check();
      steps++;
    }
  }), { numRuns: 200, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) });
  assert.ok(steps >= 10000 && refused >= 1000, `ran ${steps} steps, ${refused} refused pages`);
}

/**
 * A page the pool adds costs no link stores (its blocks' links are never written while the cursor
 * hands them out), and check() catches a cursor block marked allocated (`allocated`) and one that
 * is also on a list (`listed`). Leaves block 0 free and the index consistent again.
 */
function cursorChecks(kind: 'stack' | 'rbtree', allocated: RegExp, listed: RegExp): { pages: PageTable; index: ReturnType<typeof makeIndex> } {
  const pages = new PageTable(32, 4096);
  const index = makeIndex(kind, pages);
  index.addPage(pages.add({ dma: 2 ** 32 }, index.linksPages));
  assert.equal(index.take(), 0);
  pages.next[0] = -2;
  // blocks 1…31 are handed out by the cursor: their links were never written
  assert.deepEqual(Array.from(pages.next.subarray(1, 32)), new Array(31).fill(0));
  assert.equal(pages.freeHead[0], -1);
  index.check();
  pages.next[5] = -2; // a cursor block marked allocated
  assert.throws(() => index.check(), allocated);
  pages.next[5] = 0;
  index.put(0, 0);
  pages.next[0] = 3; // block 0's list now reaches block 3, which the cursor also holds
  pages.next[3] = -1;
  assert.throws(() => index.check(), listed);
  pages.next[0] = -1;
  index.check();
  return { pages, index };
}

describe('cursorPage: a cursor range is the non-empty tail of one existing page', () => {
  it('names the page of a tail range and refuses every other range', () => {
    const pages = new PageTable(32, 4096);
    pages.add({ dma: 2 ** 32 }, false);
    pages.add({ dma: 2 ** 32 + 8192 }, false);
    assert.equal(cursorPage(pages, 0, 32), 0);
    assert.equal(cursorPage(pages, 33, 64), 1);
    assert.equal(cursorPage(pages, 63, 64), 1);
    for (const [from, to] of [[33, 63], [32, 32], [40, 39], [-1, 32], [30, 64], [64, 96], [Number.NaN, 32]])
      assert.throws(() => cursorPage(pages, from, to), /is not the tail of one page/, `[${from}, ${to})`);
  });
});

describe('stack index: a new page handed out by a cursor, in the order a linked chain would give', () => {
  /**
   * The design before the cursor, as a model: addPage() links the page's blocks in ascending order
   * and splices the chain on top of the stack; take() pops; put() pushes.
   */
  class ChainModel implements IndexModel {
    stack: number[] = [];
    constructor(private readonly bpp: number) {}
    addPage(page: number): void {
      for (let b = page * this.bpp + this.bpp - 1; b >= page * this.bpp; b--) this.stack.push(b);
    }
    take(): number {
      return this.stack.length ? this.stack.pop()! : -1;
    }
    put(b: number): void {
      this.stack.push(b);
    }
  }

  it('property: takes and puts agree with the linked-chain model, pages added when empty or ahead (fast-check)', () => {
    agreesWithModel('stack', (bpp) => new ChainModel(bpp));
  });

  it('a page added by the pool costs no link stores; check() catches a broken cursor range', () => {
    cursorChecks('stack', /fresh block 5 is allocated/, /fresh block 3 is also on the block stack/);
  });
});

describe('available-list indexes (rbtree, radix): a new page handed out by a cursor, in the order linked per-page lists give', () => {
  /**
   * The seed's design before the cursor, as a model: addPage() links the page's blocks in
   * ascending order and puts the page at the head of the available list; take() takes the head
   * page's first free block (a page left with none leaves the list); put() pushes the block on its
   * page's list, and a page that was full rejoins at the head.
   */
  class AvailModel implements IndexModel {
    lists: number[][] = [];
    avail: number[] = [];
    constructor(private readonly bpp: number) {}
    addPage(page: number): void {
      this.lists[page] = Array.from({ length: this.bpp }, (_, i) => page * this.bpp + i);
      this.avail.unshift(page);
    }
    take(): number {
      if (!this.avail.length) return -1;
      const p = this.avail[0];
      const b = this.lists[p].shift()!;
      if (!this.lists[p].length) this.avail.shift();
      return b;
    }
    put(b: number): void {
      const p = Math.floor(b / this.bpp);
      if (!this.lists[p].length) this.avail.unshift(p);
      this.lists[p].unshift(b);
    }
  }

  for (const kind of ['rbtree', 'radix'] as const) {
    it(`${kind}, property: takes and puts agree with the linked-list model, pages added when full or ahead (fast-check)`, () => {
      agreesWithModel(kind, (bpp) => new AvailModel(bpp));
    });
  }

  it('a page added by the pool costs no link stores; check() and take() catch a broken cursor or list', () => {
    const { pages, index } = cursorChecks('rbtree', /cursor block 5 is allocated/, /cursor block 3 is also on the free list/);
    // a page added ahead (the cursor still busy) is linked; emptying its list behind the index's
    // back leaves an available page with no block: take() refuses it instead of inventing one
    index.addPage(pages.add({ dma: 2 ** 32 + 8192 }, index.linksPages));
    assert.equal(pages.freeHead[1], 32);
    pages.freeHead[1] = -1;
    assert.throws(() => index.take(), (e: unknown) => e instanceof DmaPoolError && e.code === 'EIO');
  });

  it('check() refuses an available list that reaches past the pages, and take() an allocated block on a list', () => {
    /** An rbtree index whose available list a test can overwrite, as a corrupting bug would. */
    class Corruptible extends RbTreeIndex {
      /** The list becomes page p alone, its links consistent: only p's id is wrong. */
      listOnly(p: number): void {
        this.availHead = p;
        this.availNext[p] = -1;
        this.availPrev[p] = -1;
      }
    }
    const pages = new PageTable(32, 4096);
    const index = new Corruptible(pages);
    index.addPage(pages.add({ dma: 2 ** 32 }, index.linksPages));
    for (let i = 0; i < 32; i++) pages.next[index.take()] = -2; // page 0 full: the list is empty
    index.check();
    // the head corrupted to a slot past the last page: its freeHead reads 0 (a zeroed array), not
    // "none", so without the range check it passes as a page with a free block…
    index.listOnly(7);
    assert.throws(() => index.check(), /available list reaches page 7, past the 1 pages/);
    // …and take() would hand out block 0 again: its link says allocated, so it refuses
    assert.throws(() => index.take(), (e: unknown) => e instanceof DmaPoolError && e.code === 'EIO');
  });
});
