/**
 * Issue #9 (safety), pool side: debug reporters cannot re-enter a half-updated pool; page
 * table, index and provider stay in step when any step of adding a page fails; report names
 * cannot forge lines; createPool validates every option; every error leaves the pool unchanged.
 *
 * Failure injection goes through public seams only: a provider double (ChunkSource) that fails
 * on demand and counts live chunks, and DmaPool's PoolSeams (index factory, page-table factory).
 */
import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { DebugReport, Device, DmaPool, DmaPoolError, openDevice, PoolOptions } from '../lib';
import type { PageIndex } from '../lib/index/page-index';
import { PageArrays, PageTable } from '../lib/index/pages';
import { ChunkSource, INDEX_KINDS, makeIndex, PoolSeams, REPORTER_THREW_WARNING } from '../lib/pool';
import type { Chunk, ChunkView, Slab } from '../lib/provider';
import { escapePoolName, poolsReport } from '../lib/report';
import { code, STRATEGIES } from './helpers';


/** Lets queued microtasks (report delivery) and nextTicks (warning events) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

async function withSim(fn: (dev: Device) => Promise<void> | void): Promise<void> {
  const dev = openDevice('sim');
  try {
    await fn(dev);
  } finally {
    for (const p of [...dev.pools]) try { p.destroy(); } catch { /* busy */ }
    try { dev.close(); } catch { /* a failed test left blocks busy */ }
  }
}

/** Collects process warnings while `fn` runs (and settles). */
async function captureWarnings(fn: () => Promise<void>): Promise<(Error & { code?: string; detail?: string })[]> {
  const seen: (Error & { code?: string; detail?: string })[] = [];
  const h = (w: Error) => seen.push(w);
  process.on('warning', h);
  try {
    await fn();
    await settle();
  } finally {
    process.off('warning', h);
  }
  return seen;
}

/**
 * A debug pool whose next alloc() returns a free block a "device" wrote into. The corruption is
 * written through a view taken while the block was allocated (as a device would, by address).
 */
function corruptedPool(dev: Device, index: PoolOptions['index'], onDebugReport: (r: DebugReport) => void) {
  const pool = dev.createPool('dbg', 64, { index, debug: true, onDebugReport });
  const a = pool.alloc();
  const victim = pool.alloc();
  const stale = pool.view(victim);
  pool.free(victim);
  stale[5] = 0x00;
  return { pool, a, victim };
}

describe('debug reports are delivered only when the pool is consistent', () => {
  for (const index of STRATEGIES) {
    describe(`index ${index}`, () => {
      it('are never delivered inside an operation', () => withSim(async (dev) => {
        let inOp = false;
        const calls: boolean[] = [];
        const { pool, a, victim } = corruptedPool(dev, index, () => calls.push(inOp));
        inOp = true;
        const d = pool.alloc();
        inOp = false;
        assert.equal(d, victim);
        assert.deepEqual(calls, []);
        await settle();
        assert.deepEqual(calls, [false]);
        pool.free(a); pool.free(d);
      }));

      it('a throwing reporter: alloc still succeeds, nothing leaks, the exception becomes a process warning', () => withSim(async (dev) => {
        let pool!: DmaPool, a = 0, d = 0;
        const warnings = await captureWarnings(async () => {
          ({ pool, a } = corruptedPool(dev, index, () => { throw new Error('reporter boom'); }));
          d = pool.alloc(); // before: threw 'reporter boom' with the block counted as allocated
          assert.ok(pool.owns(d));
          assert.equal(pool.stats.inUse, 2);
        });
        const w = warnings.filter((x) => x.code === REPORTER_THREW_WARNING);
        assert.equal(w.length, 1);
        assert.equal(w[0].name, 'DmaPoolWarning');
        assert.match(w[0].message, /onDebugReport of pool dbg threw: Error: reporter boom/);
        assert.match(w[0].detail ?? '', /^dma_pool_alloc dbg, 0x[0-9a-f]+ \(corrupted\)\n00000000: a7/);
        pool.check();
        pool.free(a); pool.free(d);
        pool.destroy(); // before: EBUSY forever (the leaked count)
        assert.equal(dev.pools.length, 0);
      }));

      it('a reporter throwing an unprintable value does not crash the process', () => withSim(async (dev) => {
        let pool!: DmaPool, a = 0, d = 0;
        const warnings = await captureWarnings(async () => {
          ({ pool, a } = corruptedPool(dev, index, () => { throw { toString() { throw new Error('no'); } }; }));
          d = pool.alloc();
        });
        assert.equal(warnings.filter((x) => x.code === REPORTER_THREW_WARNING).length, 1);
        pool.free(a); pool.free(d);
      }));

      it('a reporter that frees the reported block cannot make alloc() hand out a free block', () => withSim(async (dev) => {
        let pool!: DmaPool;
        const r = corruptedPool(dev, index, (rep) => pool.free(rep.dma));
        pool = r.pool;
        const d = pool.alloc();
        assert.equal(d, r.victim);
        assert.ok(pool.owns(d), 'alloc() returned a block that is already free'); // before: failed here
        assert.equal(pool.stats.inUse, 2);
        const e = pool.alloc();
        assert.notEqual(e, d);
        pool.check();
        await settle(); // now the reporter frees d: an ordinary free of an allocated block
        assert.ok(!pool.owns(d));
        assert.equal(pool.stats.inUse, 2);
        pool.check();
        assert.throws(() => pool.free(d), code('EALREADY'));
        const again = pool.alloc();
        assert.equal(again, d);
        const live = [r.a, e, again];
        for (let i = 0; i < 100; i++) { const x = pool.alloc(); assert.ok(!live.includes(x), 'a block has two owners'); live.push(x); }
        pool.check();
        live.forEach((x) => pool.free(x));
      }));

      it('a reporter that allocates cannot recurse: thousands of corrupted blocks, one report each', () => withSim(async (dev) => {
        let pool!: DmaPool;
        const got: number[] = [];
        let reports = 0;
        pool = dev.createPool('dbg-alloc', 16, { index, debug: true, onDebugReport: () => { reports++; got.push(pool.alloc()); } });
        // a device scribbles over 40 pages of free blocks (10240 blocks of 16 B)
        const blocks = Array.from({ length: 40 * 256 }, () => pool.alloc());
        const views = blocks.map((b) => pool.view(b));
        blocks.forEach((b) => pool.free(b));
        views.forEach((v) => v.fill(0x55));
        const first = pool.alloc(); // before: each report allocated inside alloc → RangeError (stack overflow)
        await settle();
        // every corrupted block was reported once, by the alloc that handed it out, and the chain
        // stopped at the first clean block (a new page)
        assert.equal(reports, blocks.length);
        const all = [first, ...got];
        assert.equal(new Set(all).size, all.length, 'a block was handed out twice');
        assert.equal(pool.stats.inUse, all.length);
        assert.equal(pool.stats.pages, 41);
        pool.check();
        all.forEach((x) => pool.free(x));
      }));

      it('a reporter that destroys the pool runs after alloc has finished (no TypeError)', () => withSim(async (dev) => {
        let pool!: DmaPool;
        pool = dev.createPool('dbg-destroy', 64, { index, debug: true, onDebugReport: (r) => { pool.free(r.dma); pool.destroy(); } });
        const a = pool.alloc();
        const victim = pool.alloc();
        const stale = pool.view(victim);
        pool.free(a);
        pool.free(victim); // the victim is the next block handed out
        stale[0] = 1;
        const d = pool.alloc(); // before: TypeError from the destroyed pool's emptied page table
        assert.equal(d, victim);
        assert.ok(pool.owns(d));
        await settle();
        assert.ok(pool.isDestroyed);
        assert.equal(dev.pools.length, 0);
        assert.throws(() => pool.alloc(), code('EBADF'));
      }));

      it('a reporter whose destroy fails (EBUSY) leaves the pool usable; the EBUSY becomes a warning', () => withSim(async (dev) => {
        let pool!: DmaPool, a = 0, d = 0;
        const warnings = await captureWarnings(async () => {
          ({ pool, a } = corruptedPool(dev, index, () => pool.destroy()));
          d = pool.alloc();
        });
        const w = warnings.filter((x) => x.code === REPORTER_THREW_WARNING);
        assert.equal(w.length, 1);
        assert.match(w[0].message, /EBUSY/);
        assert.ok(!pool.isDestroyed);
        pool.check();
        pool.free(a); pool.free(d);
        pool.destroy();
      }));
    });
  }

  it('onDebugReport must be a function (checked at create)', () => withSim((dev) => {
    for (const bad of [42, 'warn', null, {}]) {
      assert.throws(() => dev.createPool('x', 64, { debug: true, onDebugReport: bad as never }), code('EINVAL', /onDebugReport must be a function/));
    }
    assert.equal(dev.pools.length, 0);
  }));
});

// --- failure injection -----------------------------------------------------------------------

/** A provider double: plain ArrayBuffers at fake, naturally aligned DMA addresses. */
class ChunkDouble implements ChunkSource {
  readonly pageSize = 4096;
  readonly live = new Set<Chunk>();
  allocCalls = 0;
  /** The next n allocChunk calls throw ENOMEM. */
  failAllocs = 0;
  /** freeChunks throws (returning nothing) while set. */
  failFrees = false;
  /** The next chunk overlaps the previous one (a provider bug the tree/radix index refuses). */
  overlapNext = false;
  /** The next chunk is misaligned (radix refuses it). */
  misalignNext = false;
  private nextDma = 0x1_0000_0000;
  private lastDma = -1;
  private slabId = 1;

  allocChunk(bytes: number): Chunk {
    this.allocCalls++;
    if (this.failAllocs > 0) {
      this.failAllocs--;
      throw new DmaPoolError('ENOMEM', 'double: no more DMA memory');
    }
    let footprint = this.pageSize;
    while (footprint < bytes) footprint *= 2;
    let dma = this.nextDma;
    this.nextDma += footprint * 2; // leave gaps, so lookups between pages miss
    if (this.overlapNext && this.lastDma >= 0) { dma = this.lastDma; this.overlapNext = false; }
    else if (this.misalignNext) { dma += 512; this.misalignNext = false; }
    this.lastDma = dma;
    const buffer = new ArrayBuffer(footprint);
    const slab: Slab = { id: this.slabId++, buffer, dma, size: footprint, unit: footprint, unitDma: undefined, live: 1, mapping: 0, owners: [], priv: undefined, dirty: false, bytes: new Uint8Array(buffer) };
    const chunk: Chunk = { slab, offset: 0, dma, footprint };
    this.live.add(chunk);
    return chunk;
  }

  freeChunk(chunk: Chunk): void {
    this.freeChunks([chunk]);
  }

  freeChunks(chunks: readonly Chunk[]): void {
    if (this.failFrees) throw new DmaPoolError('EIO', 'double: unmap failed');
    for (const c of chunks) if (!this.live.has(c)) throw new DmaPoolError('EINVAL', 'double: chunk not live');
    for (const c of chunks) this.live.delete(c);
  }

  /** Views are the chunk's own buffer (each chunk has one); nothing escapes a double. */
  exposeChunk(chunk: Chunk): ChunkView {
    return { view: ++this.views, buffer: chunk.slab.buffer };
  }

  releaseViews(): number[] {
    return [];
  }

  private views = 0;
}

/** An index that delegates to a real one and throws once from addPage when armed. */
function armedIndex(kind: PageIndex['kind'], arm: { fail?: () => Error }) {
  return (pages: PageTable): PageIndex => {
    const real = makeIndex(kind, pages);
    return {
      get kind() { return real.kind; },
      get linksPages() { return real.linksPages; },
      get visits() { return real.visits; },
      get bytesPerPage() { return real.bytesPerPage; },
      get takenPage() { return real.takenPage; },
      addPage(p: number) {
        const f = arm.fail;
        if (f) { arm.fail = undefined; throw f(); }
        real.addPage(p);
      },
      findPage: (d: number) => real.findPage(d),
      findProbe: () => real.findProbe(),
      take: () => real.take(),
      put: (b: number) => real.put(b),
      check: () => real.check(),
    };
  };
}

/** A page table whose growth fails (as V8 does: RangeError) while armed. */
class FailingTable extends PageTable<Chunk> {
  failGrowth = false;
  protected override allocArrays(cap: number): PageArrays {
    if (this.failGrowth) throw new RangeError('Array buffer allocation failed');
    return super.allocArrays(cap);
  }
}

const snapshot = (pool: DmaPool) => JSON.stringify({ ...pool.stats, indexVisits: 0 });

function injected(index: PageIndex['kind'], seams: PoolSeams = {}, opts: PoolOptions = {}) {
  const provider = new ChunkDouble();
  const destroyed: DmaPool[] = [];
  const pool = new DmaPool('inj', 128, { index, ...opts }, provider, (p) => destroyed.push(p), seams);
  return { pool, provider, destroyed };
}

/**
 * Fills the pool's pages, runs `fail` (which must throw `c`), and checks: same stats, check()
 * passes, the provider holds exactly the pool's pages, and the pool still allocates, frees and
 * destroys with nothing leaked.
 */
function expectAtomicFailure(pool: DmaPool, provider: ChunkDouble, live: number[], c: string, re: RegExp, fail: () => void) {
  const before = snapshot(pool);
  const chunksBefore = provider.live.size;
  assert.throws(fail, code(c, re));
  assert.equal(snapshot(pool), before, 'the failure changed the pool');
  pool.check();
  assert.equal(provider.live.size, chunksBefore, 'a chunk leaked');
  assert.equal(provider.live.size, pool.stats.pages);
  // still working: the page that failed gets added now
  const more = Array.from({ length: 40 }, () => pool.alloc());
  assert.equal(new Set([...live, ...more]).size, live.length + more.length);
  pool.check();
  assert.equal(provider.live.size, pool.stats.pages);
  [...live, ...more].forEach((d) => pool.free(d));
  pool.check();
  pool.destroy();
  assert.equal(provider.live.size, 0);
}

const fillPages = (pool: DmaPool, pages: number) => Array.from({ length: pages * pool.geometry.blocksPerPage }, () => pool.alloc());

describe('adding a page is all-or-nothing (failure injection)', () => {
  for (const index of STRATEGIES) {
    describe(`index ${index}`, () => {
      it('provider ENOMEM: pool unchanged', () => {
        const { pool, provider } = injected(index);
        const live = fillPages(pool, 3);
        provider.failAllocs = 1;
        expectAtomicFailure(pool, provider, live, 'ENOMEM', /no more DMA memory/, () => pool.alloc());
      });

      it('provider ENOMEM on the very first page: pool unchanged', () => {
        const { pool, provider } = injected(index);
        provider.failAllocs = 1;
        expectAtomicFailure(pool, provider, [], 'ENOMEM', /no more DMA memory/, () => pool.zalloc());
      });

      it('index addPage throws (RangeError → ENOMEM): page removed from the table, chunk returned', () => {
        const arm: { fail?: () => Error } = {};
        const { pool, provider } = injected(index, { makeIndex: armedIndex(index, arm) });
        const live = fillPages(pool, 2);
        arm.fail = () => new RangeError('Array buffer allocation failed');
        expectAtomicFailure(pool, provider, live, 'ENOMEM', /page index: Array buffer allocation failed/, () => pool.alloc());
      });

      it('index addPage throws a DmaPoolError: passed through unchanged, pool unchanged', () => {
        const arm: { fail?: () => Error } = {};
        const { pool, provider } = injected(index, { makeIndex: armedIndex(index, arm) });
        const live = fillPages(pool, 1);
        arm.fail = () => new DmaPoolError('EINVAL', 'index says no');
        expectAtomicFailure(pool, provider, live, 'EINVAL', /index says no/, () => pool.alloc());
      });

      if (index !== 'linear') {
        it('the real index refuses an overlapping page (EINVAL): table rolled back, chunk returned', () => {
          const { pool, provider } = injected(index);
          const live = fillPages(pool, 2);
          provider.overlapNext = true;
          expectAtomicFailure(pool, provider, live, 'EINVAL', /overlap/, () => pool.alloc());
        });
      }

      if (index === 'radix') {
        it('radix refuses a misaligned page (EINVAL): no entry, no empty leaf, chunk returned', () => {
          const { pool, provider } = injected(index);
          const live = fillPages(pool, 1);
          provider.misalignNext = true;
          expectAtomicFailure(pool, provider, live, 'EINVAL', /not aligned/, () => pool.alloc());
        });
      }

      it('page-table growth fails (RangeError): typed ENOMEM, no chunk taken', () => {
        let table!: FailingTable;
        const { pool, provider } = injected(index, { makePageTable: (bpp, a) => (table = new FailingTable(bpp, a)) });
        const live = fillPages(pool, 16); // the table's initial capacity
        table.failGrowth = true;
        const calls = provider.allocCalls;
        expectAtomicFailure(pool, provider, live, 'ENOMEM', /page table growth to 32 pages: Array buffer allocation failed/, () => {
          try { pool.alloc(); } finally {
            assert.equal(provider.allocCalls, calls, 'a chunk was taken before the table could hold it');
            table.failGrowth = false;
          }
        });
      });

      it('page table full (block ids are 31-bit): typed ENOMEM, no chunk taken', () => {
        const { pool, provider } = injected(index, { makePageTable: (bpp, a) => new PageTable(bpp, a, 2, 4) });
        const live = fillPages(pool, 4);
        const before = snapshot(pool);
        for (let i = 0; i < 3; i++) assert.throws(() => pool.alloc(), code('ENOMEM', /page table is full \(4 pages/));
        assert.equal(snapshot(pool), before);
        assert.equal(provider.live.size, 4);
        pool.check();
        pool.free(live[7]);
        assert.equal(pool.alloc(), live[7]);
        live.forEach((d) => pool.free(d));
        pool.destroy();
        assert.equal(provider.live.size, 0);
      });

      it('debug poisoning of a new page that cannot be written: EFAULT, chunk returned', () => {
        const { pool, provider } = injected(index, {}, { debug: true });
        const live = fillPages(pool, 1);
        const orig = provider.allocChunk.bind(provider);
        provider.allocChunk = (bytes) => {
          provider.allocChunk = orig;
          const c = orig(bytes);
          structuredClone(c.slab.buffer, { transfer: [c.slab.buffer] }); // detach it
          return c;
        };
        expectAtomicFailure(pool, provider, live, 'EFAULT', /not accessible/, () => pool.alloc());
      });

      it('destroy whose provider refuses the pages: throws, pool not destroyed and still usable', () => {
        const { pool, provider, destroyed } = injected(index);
        const live = fillPages(pool, 2);
        live.forEach((d) => pool.free(d));
        provider.failFrees = true;
        const before = snapshot(pool);
        assert.throws(() => pool.destroy(), code('EIO'));
        assert.equal(pool.isDestroyed, false); // before: marked destroyed with its pages still held
        assert.deepEqual(destroyed, []);
        assert.equal(snapshot(pool), before);
        pool.check();
        const d = pool.alloc(); // the pool still works
        assert.ok(live.includes(d));
        pool.free(d);
        provider.failFrees = false;
        pool.destroy();
        assert.deepEqual(destroyed, [pool]);
        assert.equal(provider.live.size, 0);
        assert.throws(() => pool.alloc(), code('EBADF'));
      });
    });
  }

  it('fast-check: random failures at every step never desynchronise pool, index and provider', () => {
    type Op = { t: 'alloc' | 'zalloc' } | { t: 'free'; pick: number } | { t: 'fail'; where: 'provider' | 'index' | 'table' | 'destroy' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ t: fc.constantFrom('alloc' as const, 'zalloc' as const) }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant('free' as const), pick: fc.nat() }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('fail' as const), where: fc.constantFrom('provider' as const, 'index' as const, 'table' as const, 'destroy' as const) }) },
    );
    fc.assert(fc.property(fc.constantFrom(...INDEX_KINDS), fc.boolean(), fc.array(opArb, { minLength: 50, maxLength: 300 }), (index, debug, ops) => {
      const arm: { fail?: () => Error } = {};
      let table!: FailingTable;
      const provider = new ChunkDouble();
      const pool = new DmaPool('prop', 1024, { index, debug }, provider, () => {}, {
        makeIndex: armedIndex(index, arm),
        makePageTable: (bpp, a) => (table = new FailingTable(bpp, a, 2)),
      });
      const live: number[] = [];
      for (const op of ops) {
        if (op.t === 'alloc' || op.t === 'zalloc') {
          const d = op.t === 'alloc' ? pool.alloc() : pool.zalloc();
          assert.ok(!live.includes(d));
          live.push(d);
        } else if (op.t === 'free') {
          if (live.length) { const i = op.pick % live.length; pool.free(live[i]); live[i] = live[live.length - 1]; live.pop(); }
        } else if (op.t !== 'fail') {
          throw new Error('unreachable');
        } else if (op.where === 'destroy') {
          provider.failFrees = true;
          assert.throws(() => pool.destroy(), (e: unknown) => e instanceof DmaPoolError && ['EBUSY', 'EIO'].includes(e.code));
          provider.failFrees = false;
        } else {
          // arm one failure; it fires only if the next alloc needs a page (or grows the table)
          if (op.where === 'provider') provider.failAllocs = 1;
          else if (op.where === 'index') arm.fail = () => new RangeError('injected');
          else table.failGrowth = true;
          const before = snapshot(pool);
          try {
            const d = pool.alloc();
            assert.ok(!live.includes(d));
            live.push(d);
          } catch (e) {
            assert.ok(e instanceof DmaPoolError && ['ENOMEM'].includes(e.code), `unexpected ${String(e)}`);
            assert.equal(snapshot(pool), before);
          }
          provider.failAllocs = 0; arm.fail = undefined; table.failGrowth = false;
        }
        assert.equal(pool.stats.inUse, live.length);
        assert.equal(provider.live.size, pool.stats.pages);
      }
      pool.check();
      live.forEach((d) => pool.free(d));
      pool.destroy();
      assert.equal(provider.live.size, 0);
    }), { numRuns: 200, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) });
  });
});

// --- report names ----------------------------------------------------------------------------

describe('pools report: names cannot forge lines', () => {
  it('escapes control characters, DEL, C1, separators, bidi controls, lone surrogates and backslash', () => {
    assert.equal(escapePoolName('plain name'), 'plain name');
    assert.equal(escapePoolName('a\nb'), 'a\\x0ab');
    assert.equal(escapePoolName('a\r\tb\x1b[2J'), 'a\\x0d\\x09b\\x1b[2J');
    assert.equal(escapePoolName('\x00\x7f\x85\x9f'), '\\x00\\x7f\\x85\\x9f');
    assert.equal(escapePoolName('x\u2028y\u2029z'), 'x\\u2028y\\u2029z');
    assert.equal(escapePoolName('\u202eevil\u2066'), '\\u202eevil\\u2066');
    assert.equal(escapePoolName('back\\slash'), 'back\\\\slash');
    assert.equal(escapePoolName('\ud800x\udc00'), '\\ud800x\\udc00');
    assert.equal(escapePoolName('😀 ok é ß 中'), '😀 ok é ß 中'); // printable non-ASCII is kept
  });

  it('a pool named with \\n, \\r and escape sequences is one line; pool.name keeps the name as given', () => withSim((dev) => {
    const names = ['chain pool\nforged pool        9999 9999 9999 99', 'cr\rover', '\x1b[2Jclear', 'nel\x85x', 'ls\u2028x'];
    const pools = names.map((n) => dev.createPool(n, 64));
    const text = dev.poolsReport();
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 1 + names.length); // before: 1 + names.length + 1 (the forged line)
    assert.equal(lines[0], 'poolinfo - 0.1');
    assert.ok(!/[\r\x1b\x85\u2028]/.test(text));
    // the oldest pool is the last line: its whole (truncated) name on one line, then the counters
    assert.equal(lines[names.length], `${escapePoolName(pools[0].name)}    0    0   64  0`);
    assert.ok(lines[names.length].startsWith('chain pool\\x0aforged pool        9    0'));
    assert.deepEqual(pools.map((p) => p.name), names.map((n) => [...n].slice(0, 31).join('')));
    assert.equal(pools[1].stats.name, 'cr\rover');
  }));

  it('fast-check: any names give exactly 1 + pools lines, names are ≤ 31 whole code points', () => {
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)), // includes lone surrogates
      fc.integer({ min: 0x10000, max: 0x10ffff }).map((n) => String.fromCodePoint(n)),
      fc.constantFrom('\n', '\r', '\x1b', '\\', '\u2028', '\x85', '\x7f'),
    );
    fc.assert(fc.property(fc.array(fc.string({ unit, maxLength: 60 }), { maxLength: 8 }), (names) => {
      const dev = openDevice('sim');
      try {
        const pools = names.map((n) => dev.createPool(n, 64));
        const lines = dev.poolsReport().split('\n');
        assert.equal(lines.length, 1 + names.length + 1);
        for (const [i, p] of pools.entries()) {
          const cps = [...names[i]];
          assert.equal(p.name, cps.slice(0, 31).join(''));
          assert.ok([...p.name].length <= 31);
          // truncation never creates a lone surrogate: the kept name is whole code points of the input
          assert.ok(names[i].startsWith(p.name));
          if (!/[\ud800-\udfff]/.test(names[i].replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')))
            assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(p.name));
        }
        // each line's name part contains no control or separator character
        for (const l of lines) assert.ok(!/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(l));
      } finally {
        dev.close();
      }
    }), { numRuns: 200 });
  });

  it('poolsReport() escapes whatever stats it is given', () => {
    assert.equal(poolsReport([{ name: 'a\nb', inUse: 1, blocks: 2, size: 3, pages: 4 }]),
      `poolinfo - 0.1\n${'a\\x0ab'.padEnd(16)}    1    2    3  4\n`);
  });
});

// --- createPool argument validation ----------------------------------------------------------

describe('createPool validates every argument (EINVAL naming it; nothing created)', () => {
  const bad: [string, () => [unknown, unknown, unknown], RegExp][] = [
    ['options null', () => ['x', 128, null], /options must be an object/],
    ['options a number', () => ['x', 128, 42], /options must be an object/],
    ['options a string', () => ['x', 128, 'align=8'], /options must be an object/],
    ['options an array', () => ['x', 128, [8]], /options must be an object/],
    ['options a class instance', () => ['x', 128, new (class Opts { align = 8; })()], /plain object/],
    ['options inheriting from an object', () => ['x', 128, Object.create({ align: 8 })], /plain object/],
    ['unknown option (typo)', () => ['x', 128, { aling: 16 }], /unknown option "aling"/],
    ['unknown option size', () => ['x', 128, { size: 128 }], /unknown option "size"/],
    ['debug a number', () => ['x', 128, { debug: 1 }], /debug must be a boolean, got 1/],
    ['debug a string', () => ['x', 128, { debug: 'yes' }], /debug must be a boolean/],
    ['debug null', () => ['x', 128, { debug: null }], /debug must be a boolean, got null/],
    ['legacyLayout a string', () => ['x', 128, { legacyLayout: 'true' }], /legacyLayout must be a boolean/],
    ['index unknown', () => ['x', 128, { index: 'RBTREE' }], new RegExp(`index must be one of ${INDEX_KINDS.join(', ')}; got "RBTREE"`)],
    ['index null', () => ['x', 128, { index: null }], /index must be one of/],
    ['onDebugReport a number', () => ['x', 128, { onDebugReport: 42 }], /onDebugReport must be a function, got 42/],
    ['align a string', () => ['x', 128, { align: '16' }], /align must be an integer/],
    ['align null', () => ['x', 128, { align: null }], /align must be an integer/],
    ['align a symbol', () => ['x', 128, { align: Symbol('a') }], /align must be an integer.*got a symbol/],
    ['align NaN', () => ['x', 128, { align: Number.NaN }], /align must be an integer/],
    ['align 1.5', () => ['x', 128, { align: 1.5 }], /align must be an integer/],
    ['align not a power of two', () => ['x', 128, { align: 24 }], /align must be a power of two/],
    ['boundary an object', () => ['x', 128, { boundary: { valueOf: () => 4096 } }], /boundary must be an integer/],
    ['boundary -1', () => ['x', 128, { boundary: -1 }], /boundary must be an integer/],
    ['name a number', () => [42, 128, {}], /name must be a string, got 42/],
    ['name undefined', () => [undefined, 128, {}], /name must be a string/],
    ['name a symbol', () => [Symbol('n'), 128, {}], /name must be a string, got a symbol/],
    ['size a string', () => ['x', '128', {}], /size must be an integer.*got "128"/],
    ['size a bigint', () => ['x', 128n, {}], /size must be an integer.*got 128n/],
    ['size a symbol', () => ['x', Symbol('s'), {}], /size must be an integer.*got a symbol/],
    ['size null', () => ['x', null, {}], /size must be an integer/],
    ['size 0', () => ['x', 0, {}], /size must be an integer/],
    ['an option getter that throws', () => ['x', 128, { get align(): number { throw new Error('getter'); } }], /options could not be read/],
    ['a Proxy whose getPrototypeOf trap throws', () => ['x', 128, new Proxy({}, { getPrototypeOf() { throw new Error('trap'); } })], /options could not be read/],
    ['a Proxy whose ownKeys trap throws', () => ['x', 128, new Proxy({}, { ownKeys() { throw new Error('trap'); } })], /options could not be read/],
  ];
  for (const [what, args, re] of bad) {
    it(what, () => withSim((dev) => {
      const [name, size, opts] = args();
      const mapped = dev.provider.counters.slabsMapped;
      assert.throws(() => dev.createPool(name as string, size as number, opts as PoolOptions), code('EINVAL', re));
      assert.equal(dev.pools.length, 0);
      assert.equal(dev.poolsReport(), 'poolinfo - 0.1\n');
      assert.equal(dev.provider.counters.slabsMapped, mapped);
    }));
  }

  it('a typo gets a suggestion in the hint', () => withSim((dev) => {
    assert.throws(() => dev.createPool('x', 128, { aling: 16 } as PoolOptions), (e: unknown) =>
      e instanceof DmaPoolError && e.code === 'EINVAL' && /did you mean align\?/.test(e.hint ?? ''));
  }));

  it('accepts undefined options, {}, explicit undefined values and null-prototype objects', () => withSim((dev) => {
    dev.createPool('a', 128);
    dev.createPool('b', 128, undefined);
    dev.createPool('c', 128, {});
    dev.createPool('d', 128, { align: undefined, boundary: undefined, index: undefined, debug: undefined, legacyLayout: undefined, onDebugReport: undefined });
    const np = Object.assign(Object.create(null) as PoolOptions, { align: 16, index: 'radix' as const });
    const e = dev.createPool('e', 100, np);
    assert.equal(e.geometry.size, 112);
    assert.equal(e.stats.index, 'radix');
    assert.equal(dev.pools.length, 5);
  }));

  it('reads each option once: changing the caller\'s object later changes nothing', () => withSim((dev) => {
    let reads = 0;
    const opts = { get align() { reads++; return reads === 1 ? 16 : 3; }, debug: false };
    const pool = dev.createPool('snap', 100, opts);
    assert.equal(reads, 1);
    assert.equal(pool.geometry.align, 16);
    (opts as { debug: boolean }).debug = true;
    assert.equal(pool.debug, false);
  }));
});

// --- remaining throw paths leave the pool unchanged -----------------------------------------

describe('a page whose chunk is larger than the page (allocation not a power of two)', () => {
  for (const index of STRATEGIES) {
    it(`${index}: an address past the page's end but inside its chunk belongs to no page (EFAULT)`, () => withSim((dev) => {
      // size 5000: one block per 5000-byte page, each page in an 8192-byte chunk (radix's unit):
      // the 3192 bytes after the page are the chunk's, never a block's
      const pool = dev.createPool('odd', 5000, { index });
      const a = pool.alloc();
      const b = pool.alloc();
      const before = snapshot(pool);
      for (const d of [a + 5000, a + 6000, a + 8191, b + 5000])
        assert.throws(() => pool.free(d), code('EFAULT', /bad dma/), `${index}: ${d - a} past the first page`);
      assert.equal(snapshot(pool), before);
      pool.check(); // check() also asks the index for each page's end and one past it
      pool.free(b);
      pool.free(a);
    }));
  }
});

describe('every other error leaves the pool unchanged', () => {
  for (const index of STRATEGIES) {
    it(`${index}: free/view/owns of non-numbers, out-of-range and foreign addresses`, () => withSim((dev) => {
      const pool = dev.createPool('errs', 128, { index });
      const a = pool.alloc(), b = pool.alloc();
      pool.free(a);
      const before = snapshot(pool);
      for (const v of ['0x100000000', undefined, null, {}, Symbol('d'), 10n, [b]]) {
        assert.throws(() => pool.free(v as number), code('EINVAL', /must be a number/));
        assert.throws(() => pool.view(v as number), code('EINVAL', /must be a number/));
        assert.equal(pool.owns(v as number), false);
      }
      for (const v of [Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE, -0.5, b + 4096 * 1000])
        assert.throws(() => pool.free(v), code('EFAULT', /bad dma/));
      assert.throws(() => pool.free(b + 1), code('EINVAL', /not the start of a block/));
      assert.throws(() => pool.view(b + 127), code('EINVAL', /not the start of a block/));
      // the page's last byte is a block's end; one past it is the next page's (none here): no page
      assert.throws(() => pool.free(a - (a % 4096) + 4096), code('EFAULT', /bad dma/));
      assert.throws(() => pool.view(a), code('EALREADY', /block is free/));
      assert.throws(() => pool.free(a), code('EALREADY', /already free/));
      assert.equal(snapshot(pool), before);
      pool.check();
      assert.equal(pool.alloc(), a);
      pool.free(a); pool.free(b);
    }));

    it(`${index}: zalloc / debug alloc / debug free on memory that is gone: EFAULT, block not lost`, () => {
      for (const debug of [false, true]) {
        const { pool, provider } = injected(index, {}, { debug });
        const live = fillPages(pool, 1);
        // the page's memory becomes inaccessible (its buffer detached) while blocks are allocated
        const chunk = [...provider.live][0];
        pool.free(live[3]);
        structuredClone(chunk.slab.buffer, { transfer: [chunk.slab.buffer] });
        const before = snapshot(pool);
        assert.throws(() => pool.zalloc(), code('EFAULT', /not accessible/));
        assert.equal(snapshot(pool), before);
        pool.check();
        if (debug) {
          assert.throws(() => pool.alloc(), code('EFAULT'));
          assert.throws(() => pool.free(live[0]), code('EFAULT'));
          assert.equal(snapshot(pool), before);
          assert.ok(pool.owns(live[0]));
          pool.check();
        } else {
          assert.equal(pool.alloc(), live[3]); // plain alloc touches no memory
          pool.free(live[3]);
        }
      }
    });
  }
});
