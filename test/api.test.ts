/**
 * The driver-facing API of issue 13: `using` (Symbol.dispose) on devices, pools and PCI handles
 * under the same safety rules as close()/destroy(); a DataView per block on the pool's own page
 * buffer; BigInt DMA addresses at the descriptor boundary; all-or-nothing bulk alloc/free; and
 * the exported types (checked at compile time).
 */
import assert from 'node:assert/strict';
import { ReadableStream, type ReadableByteStreamController } from 'node:stream/web';
import { DmaPool, DmaPoolError, dmaFromBigInt, dmaToBigInt, openDevice, SimProvider } from '../lib';
import type { BarMapping, DebugReport, Device, DeviceSpec, PciAccess, PoolOptions, ProviderKind } from '../lib';
import { native } from '../lib/native';
import type { ChunkSource } from '../lib/pool';
import type { Chunk } from '../lib/provider';
import { SysfsPciDevice } from '../lib/vfio/sysfs-pci';
import { Fixture } from './fixtures';
import { code } from './helpers';

/** What the `using` helper throws when a disposal fails after another error (Node 20 has no global SuppressedError). */
interface Suppressed { name: string; error: unknown; suppressed: unknown }

function isSuppressed(e: unknown): e is Suppressed {
  return e instanceof Error && e.name === 'SuppressedError' && 'error' in e && 'suppressed' in e;
}

/** Runs `fn` on a fresh sim device that is closed afterwards whatever `fn` left allocated. */
function withSim<T>(fn: (dev: Device) => T, opts?: Parameters<typeof openDevice>[1]): T {
  const dev = openDevice('sim', opts);
  let r: T;
  try {
    r = fn(dev);
  } catch (e) {
    try { cleanup(dev); } catch { /* the test's own failure is the one to report */ }
    throw e;
  }
  cleanup(dev); // a test that leaves blocks allocated fails here (EBUSY)
  return r;
}

/** Frees what tests left behind (through the public API) and closes the device. */
function cleanup(dev: Device): void {
  if (dev.isClosed) return;
  for (const p of [...dev.pools]) {
    try { p.destroy(); } catch { /* busy: reported by close() below */ }
  }
  dev.close();
}

describe('api: using / Symbol.dispose', () => {
  it('`using dev = openDevice("sim")` compiles and closes the device (pools destroyed, views detached) at block exit', () => {
    let seen!: Device;
    let pool!: DmaPool;
    let view!: Uint8Array;
    {
      using dev = openDevice('sim');
      seen = dev;
      pool = dev.createPool('using', 64);
      const dma = pool.alloc();
      view = pool.view(dma);
      view.fill(0x5a);
      pool.free(dma);
      assert.equal(dev.isClosed, false);
    }
    assert.equal(seen.isClosed, true, 'disposed at block exit');
    assert.equal(pool.isDestroyed, true, 'its pools were destroyed');
    assert.equal(view.length, 0, 'and their views detached');
    assert.throws(() => seen.createPool('late', 64), code('EBADF'));
    assert.equal(typeof seen[Symbol.dispose], 'function');
    seen[Symbol.dispose](); // twice is harmless, like close()
  });

  it('`using pool` destroys the pool at block exit; the device keeps working', () => withSim((dev) => {
    let pool!: DmaPool;
    {
      using p = dev.createPool('scoped', 128);
      pool = p;
      p.free(p.alloc());
      assert.deepEqual(dev.pools, [p]);
    }
    assert.equal(pool.isDestroyed, true);
    assert.deepEqual(dev.pools, [], 'the destroyed pool left the device');
    assert.throws(() => pool.alloc(), code('EBADF'));
    const other = dev.createPool('after', 128);
    other.free(other.alloc());
  }));

  it('a busy pool under `using` throws EBUSY and releases nothing (pool usable, memory mapped)', () => withSim((dev) => {
    let pool!: DmaPool;
    let dma = -1;
    let view!: Uint8Array;
    assert.throws(() => {
      using p = dev.createPool('busy', 64);
      pool = p;
      dma = p.alloc();
      view = p.view(dma);
      view.fill(0x77);
    }, code('EBUSY', /dma_pool_destroy busy busy \(1 blocks in use\)/));
    assert.equal(pool.isDestroyed, false);
    assert.equal(pool.stats.inUse, 1);
    assert.equal(pool.stats.pages, 1);
    assert.equal(view.length, 64, 'the view is still attached: nothing was unmapped');
    assert.ok(view.every((b) => b === 0x77));
    assert.ok(pool.owns(dma));
    assert.deepEqual(dev.pools, [pool], 'still listed on its device');
    pool.free(dma);
    pool[Symbol.dispose](); // now it goes
    assert.equal(pool.isDestroyed, true);
    assert.equal(view.length, 0);
  }));

  it('a busy pool whose block threw: SuppressedError with the EBUSY in `error` and the block\'s error in `suppressed`', () => withSim((dev) => {
    let pool!: DmaPool;
    let dma = -1;
    const boom = new Error('driver failed');
    let caught: unknown;
    try {
      using p = dev.createPool('busy2', 64);
      pool = p;
      dma = p.alloc();
      throw boom;
    } catch (e) {
      caught = e;
    }
    assert.ok(isSuppressed(caught), `expected a SuppressedError, got ${String(caught)}`);
    code('EBUSY', /dma_pool_destroy busy2 busy/)(caught.error);
    assert.equal(caught.suppressed, boom);
    assert.equal(pool.isDestroyed, false);
    assert.equal(pool.stats.inUse, 1);
    pool.free(dma);
  }));

  it('`using dev` + busy `using pool`: both EBUSY (device\'s in error, pool\'s in suppressed); the device stays open', () => {
    let dev!: Device;
    let pool!: DmaPool;
    let dma = -1;
    let caught: unknown;
    try {
      using d = openDevice('sim');
      dev = d;
      using p = d.createPool('ring', 256);
      pool = p;
      dma = p.zalloc();
    } catch (e) {
      caught = e;
    }
    try {
      assert.ok(isSuppressed(caught), `expected a SuppressedError, got ${String(caught)}`);
      code('EBUSY', /device sim: pools still in use: ring \(1\)/)(caught.error);
      code('EBUSY', /dma_pool_destroy ring busy/)(caught.suppressed);
      assert.equal(dev.isClosed, false, 'nothing released');
      assert.equal(pool.isDestroyed, false);
      assert.equal(pool.view(dma).length, 256);
      pool.free(dma);
    } finally {
      cleanup(dev);
    }
    assert.equal(dev.isClosed, true);
  });

  describe('PCI handles (fixture device, a sealed memfd as its BAR)', () => {
    const BAR = 1 << 20; // the fixture's resource file: 0xfea00000-0xfeafffff
    let fx: Fixture;
    let memfd = -1;
    before(() => {
      const n = native();
      memfd = n.memfdCreate('api-bar0', n.constants.MFD_ALLOW_SEALING);
      n.ftruncate(memfd, BAR);
      n.addSeals(memfd, n.constants.F_SEAL_SHRINK | n.constants.F_SEAL_GROW);
      fx = new Fixture().pci({ bdf: '0000:00:07.0', driver: 'uio_pci_generic' })
        .link('/sys/bus/pci/devices/0000:00:07.0/resource0', `/proc/${process.pid}/fd/${memfd}`);
    });
    after(() => { fx.cleanup(); native().close(memfd); });

    it('`using pci` closes the handle at block exit: BAR buffers detached, EBADF afterwards', () => {
      let handle!: PciAccess;
      let bar!: ArrayBuffer;
      {
        using pci: PciAccess = new SysfsPciDevice('0000:00:07.0', fx.sys);
        handle = pci;
        bar = pci.mapBar(0);
        assert.equal(bar.byteLength, BAR);
        pci.write32(0, 8, 0xcafef00d);
        assert.equal(pci.read32(0, 8), 0xcafef00d);
      }
      assert.equal(handle.isClosed, true);
      assert.equal(bar.byteLength, 0, 'the BAR buffer is detached');
      assert.throws(() => handle.read32(0, 8), code('EBADF'));
      assert.throws(() => handle.readConfig(0, 4), code('EBADF'));
      handle[Symbol.dispose](); // twice is harmless
    });
  });
});

describe('api: pool.dataView(dma)', () => {
  it('is the block on the pool\'s own page buffer (the one view() uses, never a slab); little-endian writes land in the block', () => withSim((dev) => {
    const pool = dev.createPool('desc', 32, { align: 16 });
    const a = pool.zalloc();
    const b = pool.zalloc();
    const dv = pool.dataView(a);
    const v = pool.view(a);
    assert.equal(dv.byteLength, 32);
    assert.equal(dv.buffer, v.buffer, 'the same per-page buffer as view()');
    assert.equal(dv.byteOffset, v.byteOffset);
    assert.equal(dv.buffer.byteLength, pool.stats.allocation, 'exactly one page of this pool');
    dv.setUint32(0, 0xdeadbeef, true);
    dv.setUint16(4, 0x1234, true);
    dv.setBigUint64(8, dmaToBigInt(b), true);
    assert.deepEqual([...v.subarray(0, 6)], [0xef, 0xbe, 0xad, 0xde, 0x34, 0x12]);
    const lo = v[8] | (v[9] << 8) | (v[10] << 16) | (v[11] << 24);
    const hi = v[12] | (v[13] << 8) | (v[14] << 16) | (v[15] << 24);
    assert.equal((hi >>> 0) * 2 ** 32 + (lo >>> 0), b, 'the 64-bit field holds the next block\'s DMA address');
    assert.throws(() => dv.setUint8(32, 1), RangeError, 'confined to the block');
    assert.throws(() => dv.setUint32(30, 1, true), RangeError);
    assert.ok(pool.view(b).every((x) => x === 0), 'the neighbour is untouched');
    pool.free(a);
    pool.free(b);
  }));

  it('refuses what view() refuses: free block EALREADY, foreign EFAULT, not a block start EINVAL, destroyed EBADF', () => withSim((dev) => {
    const pool = dev.createPool('checks', 64);
    const other = dev.createPool('other', 64);
    const a = pool.alloc();
    const f = pool.alloc();
    pool.free(f);
    const foreign = other.alloc();
    assert.throws(() => pool.dataView(f), code('EALREADY', /dataView checks/));
    assert.throws(() => pool.dataView(foreign), code('EFAULT'));
    assert.throws(() => pool.dataView(a + 4), code('EINVAL', /not the start of a block/));
    assert.throws(() => pool.dataView('0' as unknown as number), code('EINVAL'));
    pool.free(a);
    other.free(foreign);
    pool.destroy();
    assert.throws(() => pool.dataView(a), code('EBADF'));
  }));

  it('is detached at destroy(): every access then throws', () => withSim((dev) => {
    const pool = dev.createPool('detach', 128);
    const keep = dev.createPool('keep', 128); // another pool keeps the slab mapped
    const k = keep.alloc();
    const dma = pool.alloc();
    const dv = pool.dataView(dma);
    dv.setUint32(0, 42, true);
    pool.free(dma);
    pool.destroy();
    assert.equal(dv.buffer.byteLength, 0, 'detached');
    assert.throws(() => dv.getUint32(0, true), TypeError);
    assert.throws(() => dv.setUint8(0, 1), TypeError);
    keep.dataView(k).setUint8(0, 9);
    assert.equal(keep.view(k)[0], 9, 'the other pool is unaffected');
    keep.free(k);
  }));

  it('is rebuilt after JS moves the page buffer away (a byte stream enqueue)', () => withSim((dev) => {
    const pool = dev.createPool('moved', 64);
    const dma = pool.alloc();
    const dv = pool.dataView(dma);
    let ctrl!: ReadableByteStreamController;
    new ReadableStream({ type: 'bytes', start(c) { ctrl = c; } });
    ctrl.enqueue(new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength));
    assert.equal(dv.buffer.byteLength, 0, 'detached by the transfer');
    const dv2 = pool.dataView(dma);
    assert.notEqual(dv2.buffer, dv.buffer, 'a new buffer for the page');
    dv2.setUint8(0, 3);
    assert.equal(pool.view(dma)[0], 3);
    pool.free(dma);
  }));
});

describe('api: BigInt DMA addresses (dmaToBigInt / dmaFromBigInt)', () => {
  it('equal the number addresses, up to the top of the 2^53 range', () => withSim((dev) => {
    const pool = dev.createPool('big', 64);
    const addrs = [...pool.allocMany(70)]; // spans pages
    for (const dma of addrs) {
      const big = dmaToBigInt(dma);
      assert.equal(typeof big, 'bigint');
      assert.equal(big, BigInt(dma));
      assert.equal(Number(big), dma);
      assert.equal(dmaFromBigInt(big), dma);
      assert.ok(dma >= 2 ** 52, 'sim at iovaBase 2^52: addresses need all 53 bits');
    }
    // the descriptor round trip: write as u64, read back, free by the read-back address
    const ring = dev.createPool('ring', 16);
    const d = ring.zalloc();
    const dv = ring.dataView(d);
    dv.setBigUint64(0, dmaToBigInt(addrs[69]), true);
    const back = dmaFromBigInt(dv.getBigUint64(0, true));
    assert.equal(back, addrs[69]);
    pool.free(back);
    pool.freeMany(addrs.slice(0, 69));
    ring.free(d);
  }, { iovaBase: 2 ** 52 }));

  it('refuse what cannot be a DMA address', () => {
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '4096', 4096n])
      assert.throws(() => dmaToBigInt(bad as number), code('EINVAL', /dmaToBigInt/), String(bad));
    assert.throws(() => dmaFromBigInt(2n ** 53n), code('ERANGE', /not below 2\^53/));
    assert.throws(() => dmaFromBigInt(2n ** 64n - 1n), code('ERANGE'));
    assert.throws(() => dmaFromBigInt(-1n), code('EINVAL'));
    assert.throws(() => dmaFromBigInt(4096 as unknown as bigint), code('EINVAL'));
    assert.equal(dmaFromBigInt(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
    assert.equal(dmaToBigInt(0), 0n);
  });
});

/** A ChunkSource over a real SimProvider that refuses (ENOMEM) after `budget` chunks. */
class BudgetSource implements ChunkSource {
  readonly sim = new SimProvider();
  readonly pageSize = this.sim.pageSize;
  live = 0;
  constructor(public budget: number) {}
  allocChunk(bytes: number): Chunk {
    if (this.live >= this.budget) throw new DmaPoolError('ENOMEM', 'budget: no more DMA memory');
    const c = this.sim.allocChunk(bytes);
    this.live++;
    return c;
  }
  freeChunk(c: Chunk): void { this.sim.freeChunk(c); this.live--; }
  freeChunks(cs: readonly Chunk[], escaped?: ReadonlyMap<Chunk, readonly number[]>): void {
    this.sim.freeChunks(cs, escaped);
    this.live -= cs.length;
  }
  exposeChunk(c: Chunk, offset: number, length: number) { return this.sim.exposeChunk(c, offset, length); }
  releaseViews(views: readonly number[]): number[] { return this.sim.releaseViews(views); }
}

function budgetPool(budget: number, opts: PoolOptions = {}) {
  const src = new BudgetSource(budget);
  const pool = new DmaPool('bulk', 128, opts, src, () => { /* no device list */ });
  return { pool, src, close: () => { pool.destroy(); src.sim.close(); } };
}

describe('api: allocMany / freeMany (all or nothing)', () => {
  it('allocMany(n) gives the n addresses n alloc() calls would, as a Float64Array', () => {
    const a = openDevice('sim');
    const b = openDevice('sim');
    try {
      const pa = a.createPool('x', 96, { align: 32 });
      const pb = b.createPool('x', 96, { align: 32 });
      const many = pa.allocMany(300);
      assert.ok(many instanceof Float64Array);
      assert.equal(many.length, 300);
      const one = Array.from({ length: 300 }, () => pb.alloc());
      assert.deepEqual([...many], one, 'same order as alloc() (both sims start at the same IOVA)');
      assert.equal(new Set(many).size, 300);
      assert.equal(pa.stats.inUse, 300);
      assert.deepEqual(pa.stats, { ...pb.stats, indexVisits: pa.stats.indexVisits });
      pa.check();
      assert.equal(pa.allocMany(0).length, 0);
      const z = pa.zallocMany(5);
      for (const d of z) assert.ok(pa.view(d).every((x) => x === 0), 'zallocMany zeroes');
      pa.freeMany(z);
      pa.freeMany(many);
      pb.freeMany(one); // a plain array works too
      assert.equal(pa.stats.inUse, 0);
      assert.equal(pb.stats.inUse, 0);
      pa.check();
    } finally {
      cleanup(a);
      cleanup(b);
    }
  });

  it('allocMany: ENOMEM having allocated none (the blocks it took are freed again)', () => {
    const { pool, src, close } = budgetPool(2); // 2 pages of 32 blocks
    const before = pool.alloc();
    assert.throws(() => pool.allocMany(100), code('ENOMEM', /budget/));
    assert.equal(pool.stats.inUse, 1, 'only the block taken before');
    assert.equal(pool.stats.pages, 2, 'pages it added stay with the pool, as pages do until destroy');
    assert.equal(src.live, 2);
    pool.check();
    // the pool is exactly usable: 63 more blocks fit, the 64th needs a third page
    const rest = pool.allocMany(63);
    assert.equal(new Set([before, ...rest]).size, 64);
    assert.throws(() => pool.alloc(), code('ENOMEM'));
    pool.freeMany([before, ...rest]);
    close();
    assert.equal(src.live, 0);
  });

  it('allocMany rollback in debug mode re-poisons: no false corruption reports afterwards', async () => {
    const reports: DebugReport[] = [];
    const { pool, close } = budgetPool(1, { debug: true, onDebugReport: (r) => reports.push(r) });
    assert.throws(() => pool.allocMany(33), code('ENOMEM'));
    assert.equal(pool.stats.inUse, 0);
    const all = pool.allocMany(32);
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(reports, [], 'rolled-back blocks were poisoned as free');
    pool.freeMany(all);
    close();
  });

  it('allocMany: bad counts are EINVAL and a destroyed pool EBADF, nothing allocated', () => withSim((dev) => {
    const pool = dev.createPool('counts', 64);
    for (const n of [-1, 1.5, NaN, Infinity, 2 ** 53, '3', 3n])
      assert.throws(() => pool.allocMany(n as number), code('EINVAL', /count must be a non-negative safe integer/), String(n));
    assert.equal(pool.stats.inUse, 0);
    assert.equal(pool.stats.pages, 0);
    pool.destroy();
    assert.throws(() => pool.allocMany(1), code('EBADF'));
    assert.throws(() => pool.freeMany([]), code('EBADF'));
  }));

  describe('freeMany validates the whole batch first and frees none on error', () => {
    function setup(dev: Device) {
      const pool = dev.createPool('batch', 64);
      const other = dev.createPool('other', 64);
      const blocks = pool.allocMany(80); // three pages
      const freed = pool.alloc();
      pool.free(freed);
      const foreign = other.alloc();
      const expect = (bad: number[], c: string, re: RegExp) => {
        const stats = JSON.stringify({ ...pool.stats, indexVisits: 0 });
        assert.throws(() => pool.freeMany(bad), code(c, re));
        assert.equal(JSON.stringify({ ...pool.stats, indexVisits: 0 }), stats, 'pool unchanged');
        for (const d of blocks) assert.ok(pool.owns(d), 'every block still allocated');
        pool.check();
      };
      return { pool, other, blocks, freed, foreign, expect };
    }

    it('a duplicate inside the batch: EALREADY', () => withSim((dev) => {
      const { pool, other, blocks, foreign, expect } = setup(dev);
      expect([blocks[0], blocks[1], blocks[40], blocks[1]], 'EALREADY', /is in the batch twice/);
      expect([...blocks, blocks[79]], 'EALREADY', /is in the batch twice/);
      pool.freeMany(blocks);
      other.free(foreign);
    }));

    it('a foreign address (another pool\'s block) anywhere in the batch: EFAULT', () => withSim((dev) => {
      const { pool, other, blocks, foreign, expect } = setup(dev);
      expect([blocks[0], blocks[1], foreign], 'EFAULT', /bad dma/);
      expect([foreign, ...blocks], 'EFAULT', /bad dma/);
      expect([...blocks.subarray(0, 50), 12345, ...blocks.subarray(50)], 'EFAULT', /bad dma/);
      pool.freeMany(blocks);
      other.free(foreign);
    }));

    it('an already free block: EALREADY; not a block start or not a number: EINVAL', () => withSim((dev) => {
      const { pool, other, blocks, freed, foreign, expect } = setup(dev);
      other.free(foreign);
      expect([blocks[0], freed], 'EALREADY', /already free/);
      expect([blocks[0], blocks[2] + 1], 'EINVAL', /not the start of a block/);
      expect([blocks[0], NaN], 'EFAULT', /bad dma/);
      expect([blocks[0], '4096' as unknown as number], 'EINVAL', /address \[1\] must be a number/);
      for (const bad of [null, undefined, 42, 'abc', { length: -1 }, { length: 1.5 }])
        assert.throws(() => pool.freeMany(bad as unknown as number[]), code('EINVAL', /freeMany batch/), String(bad));
      const hostile = { length: 2, 0: blocks[0], get 1(): number { throw new Error('getter'); } };
      expect(hostile as unknown as number[], 'EINVAL', /could not be read: Error: getter/);
      pool.freeMany(blocks);
      assert.equal(pool.stats.inUse, 0);
      pool.freeMany([]); // an empty batch is fine
    }));

    it('reads each address once: a getter cannot swap an address after validation', () => withSim((dev) => {
      const pool = dev.createPool('once', 64);
      const [a, b] = pool.allocMany(2);
      let reads = 0;
      const tricky = { length: 1, get 0() { return reads++ === 0 ? a : b; } };
      pool.freeMany(tricky);
      assert.equal(reads, 1);
      assert.equal(pool.owns(a), false);
      assert.equal(pool.owns(b), true);
      pool.free(b);
    }));

    it('frees exactly the batch (debug pool: poisoned as free, no reports later)', async () => {
      const reports: DebugReport[] = [];
      const dev = openDevice('sim');
      try {
        const pool = dev.createPool('dbg', 64, { debug: true, onDebugReport: (r) => reports.push(r) });
        const all = pool.allocMany(100);
        const half = all.filter((_, i) => i % 2 === 0);
        pool.freeMany(half);
        assert.equal(pool.stats.inUse, 50);
        for (let i = 0; i < 100; i++) assert.equal(pool.owns(all[i]), i % 2 === 1);
        pool.check();
        const again = pool.allocMany(50);
        assert.deepEqual(new Set(again), new Set(half), 'the freed blocks are reused');
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(reports, []);
        pool.freeMany(all);
        assert.equal(pool.stats.inUse, 0);
      } finally {
        cleanup(dev);
      }
    });
  });
});

// --- exported types: compile-time checks -------------------------------------------------------

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

describe('api: exported types', () => {
  it('DeviceSpec, ProviderKind, PciAccess, BarMapping are exported and precise', () => {
    const specs: DeviceSpec[] = ['sim', 'auto', 'udmabuf', 'vfio:0000:85:00.0', 'vfio:0000:85:00.0,0000:85:00.1',
      'uio:0000:85:00.0', 'u-dma-buf:udmabuf0'];
    // @ts-expect-error a typo is not a DeviceSpec
    const typo: DeviceSpec = 'vifo:0000:85:00.0';
    // @ts-expect-error a bare kind needs its argument
    const bare: DeviceSpec = 'uio';
    void typo; void bare;
    const kindIsUnion: Equal<Device['kind'], ProviderKind> = true;
    const kinds: Equal<ProviderKind, 'sim' | 'vfio' | 'uio' | 'udmabuf' | 'u-dma-buf'> = true;
    const specIsTyped: Equal<Device['spec'], DeviceSpec> = true;
    const pciIsExported: Equal<ReturnType<Device['pci']>, PciAccess> = true;
    const barId: Equal<BarMapping['id'], number> = true;
    const many: Equal<ReturnType<DmaPool['allocMany']>, Float64Array> = true;
    const disposables: Disposable[] = [];
    assert.ok(kindIsUnion && kinds && specIsTyped && pciIsExported && barId && many);
    withSim((dev) => {
      const k: ProviderKind = dev.kind;
      assert.equal(k, 'sim');
      const s: DeviceSpec = dev.spec;
      assert.equal(s, 'sim');
      const pool = dev.createPool('types', 64);
      disposables.push(dev, pool); // Device and DmaPool are Disposable
      assert.throws(() => dev.pci(), code('ENODEV'));
    });
    assert.equal(specs.length, 7);
    assert.equal(disposables.length, 2);
  });
});
