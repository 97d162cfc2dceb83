import assert from 'node:assert/strict';
import { DebugReport, openDevice, POOL_POISON_ALLOCATED, POOL_POISON_FREED } from '../lib';
import { code, deviceSpecs, fits, rng, shuffle, STRATEGIES, withDevice } from './helpers';


for (const spec of deviceSpecs()) {
  for (const index of STRATEGIES) {
    describe(`DmaPool on ${spec}, index ${index}`, () => {
      it('hands out blocks of a fresh page in ascending address order, page after page', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('order', 128, { index });
        const a = Array.from({ length: 64 }, () => pool.alloc());
        for (let i = 1; i < 32; i++) assert.equal(a[i], a[i - 1] + 128);
        for (let i = 33; i < 64; i++) assert.equal(a[i], a[i - 1] + 128);
        assert.equal(a[0] % 4096, 0);
        assert.equal(a[32] % 4096, 0);
        assert.equal(pool.stats.pages, 2);
        a.forEach((d) => pool.free(d));
        pool.destroy();
      }));

      it('reuses a freed block before touching new memory, and keeps pages until destroy', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('reuse', 256, { index });
        const a = Array.from({ length: 48 }, () => pool.alloc()); // 3 full pages of 16
        assert.equal(pool.stats.pages, 3);
        pool.free(a[5]);
        assert.equal(pool.alloc(), a[5]);
        assert.equal(pool.stats.pages, 3);
        a.forEach((d) => pool.free(d));
        assert.equal(pool.stats.pages, 3);
        assert.equal(pool.stats.inUse, 0);
        pool.destroy();
      }));

      it('honours align and boundary in absolute DMA addresses (68/32/4096 and 96/1024, 5000 B blocks)', () => withDevice(spec, (dev) => {
        for (const [size, align, boundary] of [[68, 32, 4096], [96, 32, 1024], [200, 8, 256], [5000, 0, 0], [4096, 4096, 0], [16, 16, 0]]) {
          if (!fits(dev, size)) continue; // 4 KiB-contiguous memory: covered by the contiguity test
          const pool = dev.createPool(`g${size}`, size, { index, align, boundary });
          const g = pool.geometry;
          const n = g.blocksPerPage * 5 + 3;
          const blocks = Array.from({ length: n }, () => pool.alloc());
          for (const d of blocks) {
            assert.equal(d % g.align, 0, `block ${d} not aligned to ${g.align}`);
            if ((g.boundary & (g.boundary - 1)) === 0)
              assert.equal(Math.floor(d / g.boundary), Math.floor((d + g.size - 1) / g.boundary), `block ${d} crosses ${g.boundary}`);
          }
          assert.equal(new Set(blocks).size, n);
          blocks.forEach((d) => pool.free(d));
          pool.destroy();
        }
      }));

      it('gives every block a private, writable view of exactly size bytes', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('views', 96, { index, align: 32 });
        const blocks = Array.from({ length: 200 }, () => pool.alloc());
        blocks.forEach((d, i) => { const v = pool.view(d); assert.equal(v.length, 96); v.fill(i & 0xff); });
        blocks.forEach((d, i) => assert.ok(pool.view(d).every((b) => b === (i & 0xff))));
        blocks.forEach((d) => pool.free(d));
        pool.destroy();
      }));

      it('zalloc zeroes the block even after a dirty free', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('z', 64, { index });
        const d = pool.alloc();
        pool.view(d).fill(0x5a);
        pool.free(d);
        const z = pool.zalloc();
        assert.equal(z, d);
        assert.ok(pool.view(z).every((b) => b === 0));
        pool.free(z);
        pool.destroy();
      }));

      it('reports stats and the sysfs pools text, newest pool first', () => withDevice(spec, (dev) => {
        const big = fits(dev, 41728); // 4 KiB-contiguous providers can't hold a 41728-byte block
        const a = dev.createPool('reply_free pool', big ? 41728 : 4000, { index });
        const b = dev.createPool('chain pool', 128, { index });
        const ab = a.alloc();
        const bb = Array.from({ length: 100 }, () => b.alloc());
        assert.deepEqual(
          { ...b.stats, indexVisits: 0, metadataBytesPerPage: 0 },
          { name: 'chain pool', inUse: 100, blocks: 128, size: 128, allocation: 4096, pages: 4, align: 1,
            boundary: 4096, blocksPerPage: 32, index, legacyLayout: false, debug: false, indexVisits: 0, metadataBytesPerPage: 0 });
        assert.equal(dev.poolsReport(),
          'poolinfo - 0.1\n' +
          'chain pool        100  128  128  4\n' +
          (big ? 'reply_free pool     1    1 41728  1\n' : 'reply_free pool     1    1 4000  1\n'));
        a.free(ab); bb.forEach((d) => b.free(d));
        b.destroy();
        assert.equal(dev.poolsReport(), big ? 'poolinfo - 0.1\nreply_free pool     0    1 41728  1\n'
          : 'poolinfo - 0.1\nreply_free pool     0    1 4000  1\n');
      }));

      it('truncates names to 31 code points, never splitting a surrogate pair', () => withDevice(spec, (dev) => {
        const p = dev.createPool('x'.repeat(40), 64, { index });
        assert.equal(p.name.length, 31);
        assert.equal(dev.createPool('😀'.repeat(40), 64, { index }).name, '😀'.repeat(31));
        assert.equal(dev.createPool('x'.repeat(30) + '😀z', 64, { index }).name, 'x'.repeat(30) + '😀');
        assert.equal(dev.createPool('x'.repeat(31) + '😀', 64, { index }).name, 'x'.repeat(31));
      }));

      it('rejects a double free, a foreign address and a mid-block address, leaving the pool unchanged', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('errs', 128, { index });
        const other = dev.createPool('other', 128, { index });
        const a = pool.alloc(), b = pool.alloc();
        const o = other.alloc();
        pool.free(a);
        const before = JSON.stringify(pool.stats);
        assert.throws(() => pool.free(a), code('EALREADY', /already free/));
        assert.throws(() => pool.free(o), code('EFAULT', /bad dma/));
        assert.throws(() => pool.free(b + 64), code('EINVAL', /not the start of a block/));
        assert.throws(() => pool.free(b + 0.5), code('EINVAL'));
        assert.throws(() => pool.free(0), code('EFAULT'));
        assert.throws(() => pool.free(-1), code('EFAULT'));
        assert.throws(() => pool.free(Number.NaN), code('EFAULT'));
        assert.throws(() => pool.free(BigInt(b) as unknown as number), code('EINVAL'));
        assert.throws(() => pool.view(a), code('EALREADY'));
        assert.equal(JSON.stringify({ ...pool.stats, indexVisits: 0 }), JSON.stringify({ ...JSON.parse(before), indexVisits: 0 }));
        pool.check();
        assert.equal(pool.alloc(), a); // the freed block is still the next one
        pool.free(a); pool.free(b); other.free(o);
      }));

      it('destroy with blocks in use throws EBUSY and keeps memory mapped and usable', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('busy', 512, { index });
        const d = pool.alloc();
        const v = pool.view(d);
        v[0] = 42;
        assert.throws(() => pool.destroy(), code('EBUSY', /dma_pool_destroy busy busy/));
        assert.throws(() => dev.close(), code('EBUSY', /busy \(1\)/));
        assert.equal(v.length, 512);
        assert.equal(v[0], 42);
        assert.equal(pool.isDestroyed, false);
        pool.free(d);
        pool.destroy();
        pool.destroy(); // twice is harmless
      }));

      it('use after destroy throws EBADF', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('gone', 64, { index });
        const d = pool.alloc();
        pool.free(d);
        pool.destroy();
        assert.throws(() => pool.alloc(), code('EBADF'));
        assert.throws(() => pool.free(d), code('EBADF'));
        assert.throws(() => pool.view(d), code('EBADF'));
        assert.equal(dev.pools.length, 0);
      }));

      it('detaches views when memory is unmapped: they read as length 0', () => {
        const dev = openDevice(spec);
        const pool = dev.createPool('detach', 128, { index });
        const blocks = Array.from({ length: 5000 }, () => pool.alloc());
        const views = blocks.map((d) => pool.view(d));
        blocks.forEach((d) => pool.free(d));
        pool.destroy();
        for (const v of views) assert.equal(v.length, 0);
        assert.equal(views[0][0], undefined);
        dev.close();
        dev.close(); // twice is harmless
        assert.throws(() => dev.createPool('late', 64), code('EBADF'));
      });

      it('ignores garbage a device writes into free blocks (no allocator state in DMA memory)', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('scribble', 128, { index, boundary: 1024 });
        const rand = rng(7);
        const live = new Set<number>();
        const scribble = () => {
          // overwrite every page entirely except the live blocks, as a runaway device would
          for (const page of pool.devicePages()) {
            const saved = new Map<number, Uint8Array>();
            for (const d of live) { const v = pool.view(d); saved.set(d, v.slice()); }
            for (let i = 0; i < page.length; i++) page[i] = (rand() * 256) | 0;
            for (const [d, s] of saved) pool.view(d).set(s);
          }
        };
        for (let round = 0; round < 30; round++) {
          for (let i = 0; i < 50; i++) { const d = pool.alloc(); assert.ok(!live.has(d)); live.add(d); pool.view(d).fill(round); }
          scribble();
          const arr = shuffle(Float64Array.from(live), rand);
          for (let i = 0; i < 25; i++) { pool.free(arr[i]); live.delete(arr[i]); }
          scribble();
          pool.check();
        }
        for (const d of live) pool.free(d);
        pool.check();
      }));

      it('debug mode poisons blocks (0xa7 free, 0xa9 allocated) and reports corruption after alloc', async () => {
        const dev = openDevice(spec);
        try {
          const reports: DebugReport[] = [];
          const pool = dev.createPool('dbg', 64, { index, debug: true, onDebugReport: (r) => reports.push(r) });
          const a = pool.alloc();
          assert.ok(pool.view(a).every((b) => b === POOL_POISON_ALLOCATED));
          const b = pool.alloc();
          pool.free(b);
          // the freed block and the untouched rest of the page hold the free poison
          const c = pool.alloc();
          assert.equal(c, b);
          assert.equal(reports.length, 0);
          pool.view(c).fill(1);
          pool.free(c);
          const [page] = pool.devicePages();
          assert.equal(page.length, 4096);
          assert.ok(page.subarray(c - a, c - a + 64).every((x) => x === POOL_POISON_FREED));
          page[c - a + 10] = 0x00; // a device writes into a free block
          const d = pool.alloc();
          assert.equal(d, c);
          assert.equal(reports.length, 0, 'reports are delivered after the operation, not inside it');
          await new Promise((r) => setImmediate(r));
          assert.equal(reports.length, 1);
          assert.match(reports[0].message, /^dma_pool_alloc dbg, 0x[0-9a-f]+ \(corrupted\)$/);
          assert.match(reports[0].dump, /^00000000: a7 a7 a7 a7 a7 a7 a7 a7 a7 a7 00 a7/);
          const z = pool.zalloc();
          assert.ok(pool.view(z).every((x) => x === 0));
          pool.free(a); pool.free(d); pool.free(z);
        } finally {
          for (const p of [...dev.pools]) try { p.destroy(); } catch { /* busy */ }
          try { dev.close(); } catch { /* a failed test left blocks busy */ }
        }
      });

      it('frees in any order (ascending, descending, random) and reuses every page', () => withDevice(spec, (dev) => {
        const pool = dev.createPool('orders', 100, { index, align: 4 });
        const n = 3000;
        let pages = -1;
        for (const order of ['asc', 'desc', 'random']) {
          const blocks = Float64Array.from({ length: n }, () => pool.alloc());
          if (pages < 0) pages = pool.stats.pages; // the first fill maps the pages ...
          else assert.equal(pool.stats.pages, pages, `refill after ${order === 'desc' ? 'an ascending' : 'a descending'} free maps no new page`);
          if (order === 'desc') blocks.reverse();
          if (order === 'random') shuffle(blocks, rng(3));
          for (const d of blocks) pool.free(d);
          assert.equal(pool.stats.inUse, 0, order);
          assert.equal(pool.stats.pages, pages, 'free keeps pages until destroy');
          pool.check();
        }
      }));

      if (index !== 'linear') {
        // the hinted page's neighbours are tried before the index: freeing in allocation order or
        // in reverse, only the first free may need a lookup (linear always asks its index)
        for (const [size, n] of [[4096, 64], [1024, 256], [128, 2048]] as const) {
          for (const order of ['allocation order', 'reverse']) {
            it(`frees ${n} × ${size} B in ${order} with at most one index lookup`, () => withDevice(spec, (dev) => {
              const pool = dev.createPool('walk', size, { index });
              const blocks = Float64Array.from({ length: n }, () => pool.alloc()); // page after page
              if (order === 'reverse') blocks.reverse();
              const v0 = pool.index.visits;
              assert.ok(pool.index.findPage(blocks[0]) >= 0);
              const one = pool.index.visits - v0; // what a lookup of the first block costs
              assert.ok(one > 0, 'the index counts its lookups');
              const v1 = pool.index.visits;
              for (const d of blocks) pool.free(d);
              assert.ok(pool.index.visits - v1 <= one, `${pool.index.visits - v1} visits; one lookup is ${one}`);
              pool.check();
              pool.destroy();
            }));
          }
        }
      }
    });
  }
}
