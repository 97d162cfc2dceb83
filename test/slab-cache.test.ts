/** The provider's slab cache: bounded, off by default, zeroes reused memory, trim() and close() unmap it. */
import assert from 'node:assert/strict';
import { DmaPoolError, SimProvider } from '../lib';
import type { Chunk } from '../lib/provider';
import { openDevice } from '../lib/open';

const MiB = 1 << 20;
const code = (c: string) => (e: unknown) => e instanceof DmaPoolError && e.code === c;
const bytesOf = (c: Chunk) => new Uint8Array(c.slab.buffer, c.offset, c.footprint);

describe('slab cache', () => {
  it('is off by default: an emptied slab is unmapped', () => {
    const p = new SimProvider();
    assert.deepEqual(p.slabCache, { limit: 0, bytes: 0, slabs: 0 });
    p.freeChunk(p.allocChunk(4096));
    assert.equal(p.slabCount, 0);
    assert.equal(p.counters.slabsUnmapped, 1);
    p.close();
  });

  it('keeps emptied slabs mapped up to its limit and hands them out again, zeroed, without mapping', () => {
    const p = new SimProvider();
    p.setSlabCache(4 * MiB);
    const chunks = Array.from({ length: 1536 }, () => p.allocChunk(4096)); // 3 slabs of 2 MiB
    assert.equal(p.counters.slabsMapped, 3);
    for (const c of chunks) bytesOf(c).fill(0x5a);
    p.freeChunks(chunks);
    // two fit under the limit; the third is unmapped
    assert.deepEqual(p.slabCache, { limit: 4 * MiB, bytes: 4 * MiB, slabs: 2 });
    assert.equal(p.counters.slabsUnmapped, 1);
    assert.equal(p.slabCount, 2);
    const again = Array.from({ length: 1024 }, () => p.allocChunk(4096));
    assert.equal(p.counters.slabsMapped, 3, 'no new mapping while cached slabs fit');
    assert.equal(p.counters.slabsReused, 2);
    assert.equal(p.slabCache.bytes, 0);
    for (const c of again) assert.ok(bytesOf(c).every((b) => b === 0), `chunk at ${c.dma} not zeroed`);
    // the old chunk objects stay foreign although their memory is live again
    assert.throws(() => p.freeChunk(chunks[0]), code('EINVAL'));
    assert.equal(new Set(again.map((c) => c.dma)).size, 1024);
    p.freeChunks(again);
    p.close();
  });

  it('reuses a cached slab only for the same slab size (big chunks get their own)', () => {
    const p = new SimProvider({ slabSize: 2 * MiB });
    p.setSlabCache(16 * MiB);
    const big = p.allocChunk(4 * MiB);
    bytesOf(big).fill(1);
    p.freeChunk(big);
    assert.equal(p.slabCache.slabs, 1);
    const small = p.allocChunk(4096);
    assert.equal(p.counters.slabsMapped, 2, 'a 4 MiB cached slab is not carved into pages');
    const big2 = p.allocChunk(3 * MiB);
    assert.equal(big2.dma, big.dma);
    assert.equal(big2.dma % (4 * MiB), 0);
    assert.ok(bytesOf(big2).every((b) => b === 0));
    p.freeChunks([small, big2]);
    p.close();
  });

  it('hands cached slabs out lowest address first, so chunks ascend as from fresh slabs', () => {
    const p = new SimProvider();
    p.setSlabCache(8 * MiB);
    const first = Array.from({ length: 4 * 512 }, () => p.allocChunk(4096)); // 4 slabs
    // emptied highest first: the cache's most recent entry is the lowest slab, its oldest the highest
    p.freeChunks([...first].reverse());
    const again = Array.from({ length: 4 * 512 }, () => p.allocChunk(4096));
    assert.equal(p.counters.slabsMapped, 4);
    for (let i = 1; i < again.length; i++) assert.ok(again[i].dma > again[i - 1].dma, `chunk ${i} is below chunk ${i - 1}`);
    // and emptied lowest first (a pool's destroy order) as well
    p.freeChunks(again);
    const third = Array.from({ length: 4 * 512 }, () => p.allocChunk(4096));
    for (let i = 1; i < third.length; i++) assert.ok(third[i].dma > third[i - 1].dma, `chunk ${i} is below chunk ${i - 1}`);
    p.freeChunks(third);
    p.close();
  });

  it('trim() unmaps cached slabs (oldest first, down to keepBytes); lowering the limit trims', () => {
    const p = new SimProvider();
    p.setSlabCache(8 * MiB);
    const chunks = Array.from({ length: 4 * 512 }, () => p.allocChunk(4096));
    p.freeChunks(chunks);
    assert.equal(p.slabCache.slabs, 4);
    assert.equal(p.trim(4 * MiB), 4 * MiB);
    assert.deepEqual(p.slabCache, { limit: 8 * MiB, bytes: 4 * MiB, slabs: 2 });
    p.setSlabCache(2 * MiB);
    assert.deepEqual(p.slabCache, { limit: 2 * MiB, bytes: 2 * MiB, slabs: 1 });
    assert.equal(p.trim(), 2 * MiB);
    assert.equal(p.slabCount, 0);
    assert.equal(p.counters.slabsUnmapped, 4);
    assert.equal(p.trim(), 0);
    p.close();
  });

  it('close() unmaps cached slabs too (their buffers are detached)', () => {
    const p = new SimProvider();
    p.setSlabCache(2 * MiB);
    const c = p.allocChunk(4096);
    const buf = c.slab.buffer;
    p.freeChunk(c);
    assert.equal(p.slabCount, 1);
    p.close();
    assert.equal(buf.byteLength, 0);
    assert.equal(p.slabCount, 0);
    assert.throws(() => p.setSlabCache(MiB), code('EBADF'));
  });

  it('rejects a bad limit (EINVAL) and keeps the old one', () => {
    const p = new SimProvider();
    p.setSlabCache(MiB);
    for (const v of [-1, 1.5, NaN, Infinity, '1' as unknown as number, 2 ** 53])
      assert.throws(() => p.setSlabCache(v), code('EINVAL'), String(v));
    assert.throws(() => p.trim(-1), code('EINVAL'));
    assert.equal(p.slabCache.limit, MiB);
    p.close();
  });

  it('a pool on a kept device reuses the slabs of a destroyed pool, and its blocks read as zero', () => {
    const dev = openDevice('sim');
    try {
      dev.provider.setSlabCache(8 * MiB);
      const a = dev.createPool('a', 128);
      const blocks = Array.from({ length: 4096 }, () => a.alloc()); // 128 pages: one slab
      for (const d of blocks) a.view(d).fill(0xee);
      for (const d of blocks) a.free(d);
      a.destroy();
      const mapped = dev.provider.counters.slabsMapped;
      const b = dev.createPool('b', 128);
      const again = Array.from({ length: 4096 }, () => b.alloc());
      assert.equal(dev.provider.counters.slabsMapped, mapped);
      for (const d of again) assert.ok(b.view(d).every((x) => x === 0));
      for (const d of again) b.free(d);
      b.destroy();
    } finally {
      dev.close();
    }
  });
});
