/**
 * Device-DMA proof: a real device (QEMU edu) copies through the pool's DMA addresses. Runs for
 * every device-visible spec in DMAPOOL_TEST_DEVICES when DMAPOOL_EDU names the edu device (the VM
 * test bed sets both); pending with the reason otherwise (test/helpers.ts describeIf). Pure CPU
 * code can never pass these.
 */
import assert from 'node:assert/strict';
import { Device, openDevice } from '../lib';
import { rng } from '../lib/rng';
import { Edu, EDU_BUF_SIZE } from './edu';
import { deviceSpecs, describeIf, envValue, needs } from './helpers';

const specs = deviceSpecs().filter((s) => s !== 'sim');

describeIf(needs.edu(), 'device DMA through pool addresses (QEMU edu)', function () {
  const edu = envValue('DMAPOOL_EDU');
  for (const spec of specs) {
    describe(spec, () => {
      let dev: Device;
      let regs: Device | undefined;
      let engine: Edu;
      before(() => {
        // the device doing the DMA: vfio/uio specs name it; for udmabuf the edu is driven via sysfs
        dev = openDevice(spec);
        if (dev.kind !== 'vfio' && dev.kind !== 'uio') regs = openDevice(`uio:${edu}`, { hugepages: false });
        engine = new Edu((regs ?? dev).pci());
      });
      after(() => {
        regs?.close();
        try { dev.close(); } catch { /* a failed test left blocks busy */ }
      });

      it('the device is alive and ours (id 0x010000ed, liveness inverts)', () => {
        assert.equal(engine.liveness(0x12345678), (~0x12345678) >>> 0);
      });

      for (const shape of [{ size: 128, align: 0, boundary: 0 }, { size: 96, align: 32, boundary: 1024 }]) {
        it(`copies block X → device → block Y for blocks across pages and slabs (size ${shape.size}, boundary ${shape.boundary || 'page'})`, () => {
          const pool = dev.createPool('edu', shape.size, { align: shape.align, boundary: shape.boundary });
          const g = pool.geometry;
          const perSlab = (2 << 20) / g.allocation * g.blocksPerPage;
          const n = Math.ceil(perSlab * 2.5); // three slabs
          const blocks = Float64Array.from({ length: n }, () => pool.alloc());
          const pick = new Set<number>();
          const bpp = g.blocksPerPage;
          for (const page of [0, 1, 511, 512, 513, Math.floor(n / bpp) - 1]) {
            pick.add(page * bpp); pick.add(page * bpp + bpp - 1); // first and last block of the page
            if (g.blocksPerWindow < bpp) { pick.add(page * bpp + g.blocksPerWindow - 1); pick.add(page * bpp + g.blocksPerWindow); } // around a boundary
          }
          const idx = [...pick].filter((i) => i < n);
          const rand = rng(5);
          assert.ok(idx.length >= 12);
          for (let k = 0; k < idx.length; k++) {
            const xi = idx[k], yi = idx[(k + 3) % idx.length];
            const x = blocks[xi], y = blocks[yi];
            const pattern = Uint8Array.from({ length: g.size }, () => (rand() * 256) | 0);
            pool.view(x).set(pattern);
            pool.view(y).fill(0);
            // the blocks next to Y must stay untouched (no overrun either side)
            const around = [yi - 1, yi + 1].filter((i) => i >= 0 && i < n && i !== xi).map((i) => blocks[i]);
            for (const a of around) pool.view(a).fill(0xcd);
            dev.sync('end');
            engine.toDevice(x, 64, g.size);
            engine.fromDevice(64, y, g.size);
            dev.sync('begin');
            assert.deepEqual(pool.view(y), pattern, `block ${y.toString(16)} did not receive block ${x.toString(16)}'s bytes`);
            for (const a of around) assert.ok(pool.view(a).every((b) => b === 0xcd), `DMA into ${y.toString(16)} overran`);
          }
          for (const d of blocks) pool.free(d);
          pool.destroy();
        });
      }

      it('one transfer covers a whole page: every block of page P arrives in page Q (contiguous in DMA space)', () => {
        const pool = dev.createPool('edu-page', 256);
        const blocks = Float64Array.from({ length: 16 * 8 }, () => pool.alloc()); // 8 full pages
        const rand = rng(9);
        const src = blocks.subarray(0, 16), dst = blocks.subarray(112, 128);
        for (const d of src) pool.view(d).set(Uint8Array.from({ length: 256 }, () => (rand() * 256) | 0));
        for (const d of dst) pool.view(d).fill(0xee);
        dev.sync('end');
        const count = EDU_BUF_SIZE - 1; // the whole page but its last byte (QEMU edu limit)
        engine.toDevice(src[0], 0, count);
        engine.fromDevice(0, dst[0], count);
        dev.sync('begin');
        for (let i = 0; i < 16; i++) {
          const want = pool.view(src[i]).slice();
          if (i === 15) want[255] = 0xee;
          assert.deepEqual(pool.view(dst[i]), want, `block ${i} of the page`);
        }
        for (const d of blocks) pool.free(d);
        pool.destroy();
      });

      if (spec.startsWith('vfio:')) {
        it('the IOMMU protects us: after destroy, DMA to the old addresses reads and writes nothing', () => {
          const live = dev.createPool('live', 4096);
          const keep = live.alloc();
          const probe = live.alloc();
          try {
            live.view(keep).fill(0x11);
            // a pool with its own slab (8 KiB chunks are carved from a different slab than 4 KiB ones)
            const gone = dev.createPool('gone', 8192);
            const old = gone.alloc();
            gone.view(old).fill(0x5a);
            gone.free(old);
            const unmappedBefore = dev.provider.counters.iommuUnmaps;
            gone.destroy();
            assert.equal(dev.provider.counters.iommuUnmaps, unmappedBefore + 1, 'destroy must unmap the slab from the IOMMU');
            // device buffer ← 0x33, then try to read the stale IOVA into it
            live.view(probe).fill(0x33);
            engine.toDevice(probe, 0, 2048);
            engine.toDevice(old, 0, 2048); // must fault in the IOMMU, not fetch the old 0x5a bytes
            live.view(probe).fill(0);
            engine.fromDevice(0, probe, 2048);
            assert.ok(!live.view(probe).subarray(0, 2048).includes(0x5a), 'device read freed memory through a stale IOVA');
            // and a write to the stale IOVA lands nowhere we can see
            engine.fromDevice(0, old, 2048);
            assert.ok(live.view(keep).every((b) => b === 0x11), 'a DMA to a stale IOVA changed live memory');
          } finally {
            live.free(keep); live.free(probe);
            live.destroy();
          }
        });
      }
    });
  }
});
