import assert from 'node:assert/strict';
import { deviceSpecs, rng, shuffle, stressStrategies, withDevice } from './helpers';

/** The seed's mpt3sas chain pool: 373959 blocks of 128 bytes. */
const N = 373959;

for (const spec of deviceSpecs()) {
  describe(`stress: the seed's chain pool (${N} × 128 B) on ${spec}`, () => {
    for (const index of stressStrategies(spec)) {
      for (const legacyLayout of [false, true]) {
        const layout = legacyLayout ? 'legacy layout' : 'fixed layout';
        it(`${index}, ${layout}: create + ${N} × alloc + ${N} × free in allocation order + destroy`, () => withDevice(spec, (dev) => {
          const pool = dev.createPool('chain pool', 128, { index, legacyLayout });
          const dma = new Float64Array(N);
          for (let i = 0; i < N; i++) dma[i] = pool.alloc();
          const s = pool.stats;
          const pages = legacyLayout ? 12064 : 11687;
          assert.equal(s.inUse, N);
          assert.equal(s.pages, pages);
          assert.equal(s.blocks, legacyLayout ? 386048 : 373984);
          assert.equal(dev.poolsReport(), legacyLayout
            ? 'poolinfo - 0.1\nchain pool       373959 386048  128 12064\n'
            : 'poolinfo - 0.1\nchain pool       373959 373984  128 11687\n');
          // every block distinct
          const sorted = Float64Array.from(dma).sort();
          for (let i = 1; i < N; i++) assert.ok(sorted[i] >= sorted[i - 1] + 128);
          const visitsBefore = pool.index.visits;
          for (let i = 0; i < N; i++) pool.free(dma[i]);
          const freeVisits = pool.index.visits - visitsBefore;
          if (index === 'linear') {
            // the original scans newest-first: freeing oldest-first walks ~all remaining pages
            assert.ok(freeVisits > (N * pages) / 4, `linear free visited only ${freeVisits} pages`);
          } else {
            // the page found last, then its neighbours, are tried first: freeing in allocation
            // order never asks the index (random order does: see the next test)
            assert.equal(freeVisits, 0);
          }
          assert.equal(pool.stats.inUse, 0);
          pool.check();
          pool.destroy();
          assert.equal(dev.provider.slabCount, 0);
        }));
      }
      if (index !== 'linear') {
        it(`${index}: ${N} × alloc, then free in random order, refill, free in reverse order`, () => withDevice(spec, (dev) => {
          const pool = dev.createPool('chain pool', 128, { index });
          const dma = new Float64Array(N);
          for (let i = 0; i < N; i++) dma[i] = pool.alloc();
          shuffle(dma, rng(42));
          for (let i = 0; i < N; i++) pool.free(dma[i]);
          pool.check();
          const pages = pool.stats.pages;
          for (let i = 0; i < N; i++) dma[i] = pool.alloc();
          assert.equal(pool.stats.pages, pages, 'refilling must reuse the kept pages');
          for (let i = N - 1; i >= 0; i--) pool.free(dma[i]);
          pool.check();
          pool.destroy();
        }));
      }
    }
  });
}

describe('strategy-specific block order', () => {
  it('rbtree/radix: a full page that gets a block back is used first (available list head)', () => {
    for (const index of ['rbtree', 'radix'] as const) withDevice('sim', (dev) => {
      const pool = dev.createPool('avail', 1024, { index }); // 4 blocks per page
      const a = Array.from({ length: 10 }, () => pool.alloc()); // pages 0,1 full, page 2 half
      pool.free(a[1]); // page 0 rejoins at the head
      assert.equal(pool.alloc(), a[1]);
      assert.equal(pool.alloc(), a[9] + 1024); // then page 2 again
    });
  });
  it('linear: the newest page with a free block is used first (list head = newest)', () => withDevice('sim', (dev) => {
    const pool = dev.createPool('lin', 1024, { index: 'linear' });
    const a = Array.from({ length: 10 }, () => pool.alloc());
    pool.free(a[1]);
    assert.equal(pool.alloc(), a[9] + 1024);
    assert.equal(pool.alloc(), a[9] + 2048);
    assert.equal(pool.alloc(), a[1]);
  }));
  it('stack: freed blocks come back last-in first-out across pages', () => withDevice('sim', (dev) => {
    const pool = dev.createPool('lifo', 1024, { index: 'stack' });
    const a = Array.from({ length: 10 }, () => pool.alloc());
    pool.free(a[1]); pool.free(a[6]);
    assert.equal(pool.alloc(), a[6]);
    assert.equal(pool.alloc(), a[1]);
    assert.equal(pool.alloc(), a[9] + 1024);
  }));
});
