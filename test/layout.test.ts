import assert from 'node:assert/strict';
import { DmaPoolError, layoutBlocks, poolGeometry } from '../lib';

const PAGE = 4096;
const geo = (size: number, align = 0, boundary = 0, legacyLayout = false) =>
  poolGeometry(size, { align, boundary, legacyLayout }, PAGE);

function throwsEinval(fn: () => unknown, arg: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DmaPoolError);
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, new RegExp(arg));
    return true;
  });
}

describe('dma_pool_create rules (semantics note §create)', () => {
  it('1. align 0 means 1', () => {
    assert.equal(geo(3, 0).align, 1);
    assert.equal(geo(3, 0).size, 3);
  });
  it('1. align not a power of two fails with EINVAL naming align', () => {
    throwsEinval(() => geo(64, 24), 'align');
    throwsEinval(() => geo(64, 3), 'align');
    throwsEinval(() => geo(64, -8), 'align');
  });
  it('2. size 0 and size > INT_MAX fail with EINVAL naming size', () => {
    throwsEinval(() => geo(0), 'size');
    throwsEinval(() => geo(0x80000000), 'size');
    throwsEinval(() => geo(1.5), 'size');
    assert.equal(geo(0x7fffffff).size, 0x7fffffff);
  });
  it('3. small sizes are kept (metadata lives outside DMA memory) and reported as such', () => {
    assert.equal(geo(1).size, 1);
    assert.equal(geo(1).blocksPerPage, 4096);
  });
  it('4. size is rounded up to a multiple of align', () => {
    assert.equal(geo(68, 32).size, 96);
    assert.equal(geo(100, 64).size, 128);
    assert.equal(geo(128, 128).size, 128);
  });
  it('5. allocation = max(size, PAGE_SIZE), not rounded to pages', () => {
    assert.equal(geo(128).allocation, 4096);
    assert.equal(geo(5000).allocation, 5000);
    assert.equal(geo(4097).allocation, 4097);
  });
  it('6. boundary 0 means allocation; boundary < size or not a power of two fails', () => {
    assert.equal(geo(128).boundary, 4096);
    assert.equal(geo(5000).boundary, 5000);
    throwsEinval(() => geo(128, 0, 64), 'boundary');
    throwsEinval(() => geo(128, 0, 3000), 'boundary');
    throwsEinval(() => geo(96, 32, 64), 'boundary'); // 68 → 96 > 64
  });
  it('align/boundary: only undefined means "absent"; null, strings, symbols and objects fail with EINVAL (never a TypeError)', () => {
    for (const bad of [null, '16', Symbol('x'), {}, [16], 16n, Number.NaN, Infinity]) {
      throwsEinval(() => poolGeometry(64, { align: bad as never }, PAGE), 'align');
      throwsEinval(() => poolGeometry(64, { boundary: bad as never }, PAGE), 'boundary');
    }
    assert.equal(poolGeometry(64, { align: undefined, boundary: undefined }, PAGE).align, 1);
  });
  it('legacyLayout must be a boolean; size must be a number', () => {
    for (const bad of [1, 'true', null, {}]) throwsEinval(() => poolGeometry(64, { legacyLayout: bad as never }, PAGE), 'legacyLayout');
    for (const bad of ['64', null, undefined, Symbol('s'), 64n, { valueOf: () => 64 }]) throwsEinval(() => poolGeometry(bad as never, {}, PAGE), 'size');
  });
  it('7. boundary is capped at the allocation (Linux ≥ 6.4)', () => {
    assert.equal(geo(128, 0, 1 << 20).boundary, 4096);
    assert.equal(geo(8192, 0, 16384).boundary, 8192);
  });
  it('7. legacy layout keeps a boundary above the allocation, like Linux 6.1 (checked against its code: kernel-layout.test)', () => {
    // 6.1 never meets that boundary inside the page: no block is wasted before it
    assert.equal(geo(128, 0, 8192, true).boundary, 8192);
    assert.equal(geo(128, 0, 8192, true).blocksPerPage, 32); // page-sized boundary: 31
    assert.equal(geo(2048, 0, 8192, true).blocksPerPage, 2); // page-sized boundary: 1
    // 6.1 would also hand out blocks at 4080 (size 17) and 3000 (size 3000), past the page end: not here
    const g17 = geo(17, 0, 8192, true);
    assert.equal(g17.blocksPerPage, 240);
    assert.equal(g17.offsets[g17.offsets.length - 1], 4063);
    assert.deepEqual(Array.from(geo(3000, 0, 8192, true).offsets), [0]);
  });
});

describe('block layout (semantics note §layout)', () => {
  it('places blocks back to back when the size divides the page (size 128 → 32 blocks)', () => {
    const g = geo(128);
    assert.equal(g.blocksPerPage, 32);
    assert.deepEqual(Array.from(g.offsets.slice(0, 3)), [0, 128, 256]);
    assert.equal(g.offsets[31], 3968);
  });
  it('legacy layout wastes the last block before each boundary (size 128 → 31 blocks)', () => {
    const g = geo(128, 0, 0, true);
    assert.equal(g.blocksPerPage, 31);
    assert.equal(g.offsets[30], 3840);
    assert.equal(g.reportedBlocksPerPage, 32); // legacy totals formula: allocation / size
  });
  it('size 512, boundary 2048: legacy wastes 1536 and 3584, fixed uses them', () => {
    assert.deepEqual(Array.from(geo(512, 0, 2048, true).offsets), [0, 512, 1024, 2048, 2560, 3072]);
    assert.deepEqual(Array.from(geo(512, 0, 2048).offsets), [0, 512, 1024, 1536, 2048, 2560, 3072, 3584]);
  });
  it('size 68 / align 32 / boundary 4096 (dmapool_test row): 96-byte blocks, none crossing 4096', () => {
    const g = geo(68, 32, 4096);
    assert.equal(g.size, 96);
    assert.equal(g.blocksPerPage, 42);
    for (const o of g.offsets) {
      assert.equal(o % 32, 0);
      assert.equal(Math.floor(o / 4096), Math.floor((o + 96 - 1) / 4096));
    }
  });
  it('size 96 / boundary 1024 skips to each boundary: 10 blocks per 1 KiB window', () => {
    const g = geo(96, 32, 1024);
    assert.equal(g.blocksPerWindow, 10);
    assert.equal(g.blocksPerPage, 40);
    assert.deepEqual(Array.from(g.offsets.slice(9, 12)), [864, 1024, 1120]);
  });
  it('a block exactly the size of the boundary fits in both layouts', () => {
    assert.deepEqual(Array.from(layoutBlocks(4096, 4096, 4096, false)), [0]);
    assert.deepEqual(Array.from(layoutBlocks(4096, 4096, 4096, true)), [0]);
    assert.deepEqual(Array.from(layoutBlocks(2048, 2048, 4096, true)), [0, 2048]);
  });
  it('sizes above a page get one block per allocation', () => {
    const g = geo(5000);
    assert.equal(g.blocksPerPage, 1);
    assert.equal(g.allocation, 5000);
  });
  it('seed totals: 373959 blocks of 128 B fill 12064 legacy pages reported as 386048 blocks', () => {
    const g = geo(128, 0, 0, true);
    const pages = Math.ceil(373959 / g.blocksPerPage);
    assert.equal(pages, 12064);
    assert.equal(pages * g.reportedBlocksPerPage, 386048);
  });
});
