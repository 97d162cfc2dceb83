import assert from 'node:assert/strict';
import { DmaPoolError, IovaAllocator, SimProvider } from '../lib';
import { native } from '../lib/native';
import { itIf, needs } from './helpers';

describe('IovaAllocator', () => {
  it('allocates aligned ranges inside the apertures and never hands out overlapping ones', () => {
    const a = new IovaAllocator([{ start: 0x1000, end: 0xfee00000 - 1 }, { start: 0xfef00000, end: 0xffffffff }], 0x100000);
    const x = a.alloc(2 << 20, 2 << 20);
    const y = a.alloc(2 << 20, 2 << 20);
    assert.equal(x, 0x200000);
    assert.equal(y, 0x400000);
    const z = a.alloc(0x1000, 0x1000);
    assert.equal(z, 0x100000); // fills the gap below the first aligned slab
  });
  it('skips the reserved hole between apertures', () => {
    const a = new IovaAllocator([{ start: 0, end: 0x2fffff }, { start: 0x800000, end: 0xffffff }]);
    assert.equal(a.alloc(2 << 20, 2 << 20), 0);
    assert.equal(a.alloc(2 << 20, 2 << 20), 0x800000); // 0x200000..0x3fffff does not fit
  });
  it('reuses freed ranges and coalesces neighbours', () => {
    const a = new IovaAllocator([{ start: 0, end: 0xffffff }]);
    const r = [0, 1, 2, 3].map(() => a.alloc(0x100000, 0x100000));
    a.release(r[1]); a.release(r[2]);
    assert.equal(a.alloc(0x200000, 0x100000), r[1]);
    a.release(r[1]); a.release(r[0]); a.release(r[3]);
    assert.deepEqual(a.freeRanges(), [{ start: 0, end: 0x1000000 }]);
    assert.equal(a.liveCount, 0);
  });
  it('throws ENOMEM when exhausted and EINVAL on a double release', () => {
    const a = new IovaAllocator([{ start: 0, end: 0x1fffff }]);
    const x = a.alloc(0x200000, 0x200000);
    assert.throws(() => a.alloc(0x1000, 0x1000), (e: unknown) => e instanceof DmaPoolError && e.code === 'ENOMEM');
    a.release(x);
    assert.throws(() => a.release(x), (e: unknown) => e instanceof DmaPoolError && e.code === 'EINVAL');
  });
  it('clips apertures above 2^53 so every IOVA is an exact JS number', () => {
    const a = new IovaAllocator([{ start: 2 ** 53 - 2 ** 21, end: 2 ** 64 - 1 }]);
    const x = a.alloc(0x100000, 0x100000);
    assert.ok(Number.isSafeInteger(x + 0x100000 - 1));
    assert.throws(() => a.alloc(0x200000, 0x100000), /exhausted/);
  });
});

describe('native shim: anonymous slabs', () => {
  it('maps aligned, populated memory as an external ArrayBuffer and detaches it on unmap', () => {
    const m = native().mapAnonymous(4 << 20, 2 << 20, { thp: true, populate: true, lock: 1 });
    assert.equal(m.address % BigInt(2 << 20), 0n);
    assert.equal(native().mappingInfo(m.id)?.address, m.address);
    const v = new Uint8Array(m.buffer);
    assert.equal(v.length, 4 << 20);
    assert.ok(v.every((b) => b === 0));
    v[123] = 7;
    assert.equal(native().unmap(m.id), true);
    assert.equal(v.length, 0);
    assert.equal(m.buffer.byteLength, 0);
    assert.equal(native().mappingInfo(m.id), undefined);
    assert.equal(native().unmap(m.id), false); // twice is harmless
  });
  it('throws errno-coded errors with syscall and a hint', () => {
    assert.throws(() => native().mapAnonymous(1000, 4096, {}), (e: unknown) => e instanceof DmaPoolError &&
      e.code === 'EINVAL' && e.syscall === 'mmap' && e.errno === 22 && /multiple of the page size/.test(e.hint ?? ''));
  });
  // with free huge pages the same call maps (native-safety 9b); here only the refusal is checked
  itIf(needs.noFreeHugePages(), 'MAP_HUGETLB without free huge pages fails in mmap with the nr_hugepages fix', () => {
    assert.throws(() => native().mapAnonymous(2 << 20, 2 << 20, { hugetlb: true }), (e: unknown) =>
      e instanceof DmaPoolError && e.syscall === 'mmap' && /nr_hugepages/.test(e.hint ?? ''));
  });
});

describe('SlabProvider carving (sim)', () => {
  it('returns chunks naturally aligned like dma_alloc_coherent, from 2 MiB slabs', () => {
    const p = new SimProvider();
    const sizes = [4096, 5000, 8192, 65536, 4096, 1 << 20];
    const chunks = sizes.map((s) => p.allocChunk(s));
    chunks.forEach((c, i) => {
      let want = 4096; while (want < sizes[i]) want *= 2;
      assert.equal(c.footprint, want);
      assert.equal(c.dma % want, 0, `chunk of ${sizes[i]} at ${c.dma} not aligned to ${want}`);
      assert.equal(c.offset % want, 0);
    });
    assert.ok(p.counters.slabsMapped <= sizes.length);
    assert.equal(p.counters.nativeCalls, p.counters.slabsMapped);
    chunks.forEach((c) => p.freeChunk(c));
    assert.equal(p.slabCount, 0);
    assert.equal(p.counters.slabsUnmapped, p.counters.slabsMapped);
    p.close(); p.close();
  });
  it('maps slabs per 2 MiB, not per page: 1024 pages of 4 KiB cost 2 slabs', () => {
    const p = new SimProvider();
    const chunks = Array.from({ length: 1024 }, () => p.allocChunk(4096));
    assert.equal(p.counters.slabsMapped, 2);
    assert.equal(p.counters.nativeCalls, 2);
    assert.equal(p.counters.bytesMapped, 4 << 20);
    new Uint8Array(chunks[3].slab.buffer, chunks[3].offset, 4096).fill(9);
    p.freeChunk(chunks[3]);
    const again = p.allocChunk(4096);
    assert.equal(again.dma, chunks[3].dma);
    assert.ok(new Uint8Array(again.slab.buffer, again.offset, 4096).every((b) => b === 0), 'reused chunk must be zeroed');
    p.close();
    assert.equal(chunks[0].slab.buffer.byteLength, 0, 'close detaches every slab');
  });
  it('a chunk bigger than a slab gets its own naturally aligned slab', () => {
    const p = new SimProvider({ slabSize: 1 << 21 });
    const c = p.allocChunk(3 << 20);
    assert.equal(c.footprint, 4 << 20);
    assert.equal(c.dma % (4 << 20), 0);
    p.freeChunk(c);
    assert.throws(() => p.freeChunk(c), (e: unknown) => e instanceof DmaPoolError && e.code === 'EINVAL');
    p.close();
    assert.throws(() => p.allocChunk(4096), (e: unknown) => e instanceof DmaPoolError && e.code === 'EBADF');
  });
  it('is labelled not device-visible', () => {
    const p = new SimProvider();
    assert.equal(p.deviceVisible, false);
    assert.match(p.description, /NOT device-visible/);
    p.close();
  });
});
