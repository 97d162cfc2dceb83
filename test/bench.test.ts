/** The benchmark's plumbing (not its speed: speed is shown by `npm run bench`, never asserted in tests). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BenchResult, benchStrategy, coldWarm, dmapoolTest, DMAPOOL_TEST_ROWS, floorColdWarm, floorKey, type FloorResult, formatTable, mergeRounds, openKeptDevice,
  runFloor, runOnce, seedBookkeeping, STRATEGIES } from '../lib/cli/bench';
import { CheckedFloorPool, fittingFloors, FLOOR_PAGE, FloorPool, FLOORS, floorSpan, PagedFloorPool } from '../lib/cli/js-floor';
import { runScaling, writeScaling } from '../lib/cli/scaling';
import { DmaPool, openDevice } from '../lib';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

describe('bench', () => {
  it('--json prints every workload per strategy and mode with the stable field names', () => {
    const out = execFileSync(process.execPath, [CLI, 'bench', '--device', 'sim', '--json', '-n', '20000', '--reps', '2',
      '--warmups', '0', '--linear-reps', '1', '--no-dmapool-test'], { encoding: 'utf8' });
    const j = JSON.parse(out) as { provider: string; results: Record<string, unknown>[] };
    assert.equal(j.provider, 'sim');
    const keys = ['strategy', 'provider', 'workload', 'mode', 'n', 'size', 'median_ms', 'min_ms', 'max_ms', 'runs'];
    for (const r of j.results) for (const k of keys) assert.ok(k in r, `missing ${k}`);
    const combos = new Set(j.results.map((r) => `${r.strategy}/${r.workload}/${r.mode}`));
    for (const s of STRATEGIES)
      for (const w of ['seed-alloc', 'seed-free', 'free-reverse', 'free-random', 'churn'])
        for (const m of ['cold', 'warm']) assert.ok(combos.has(`${s}/${w}/${m}`), `${s}/${w}/${m}`);
    const warm = j.results.find((r) => r.strategy === 'rbtree' && r.workload === 'seed-alloc' && r.mode === 'warm')!;
    assert.equal(warm.runs, 2);
    assert.ok((warm.min_ms as number) <= (warm.median_ms as number) && (warm.median_ms as number) <= (warm.max_ms as number));
    // the bookkeeping per page, measured once per strategy after its timed runs, is on every seed-workload figure
    for (const s of STRATEGIES) {
      const meta = new Set(j.results.filter((r) => r.strategy === s).map((r) => r.metadata_bytes_per_page));
      assert.equal(meta.size, 1, `${s}: ${[...meta].join(', ')}`);
      assert.ok((meta.values().next().value as number) > 100, `${s}: ${[...meta].join(', ')} B per page`);
    }
  });

  it('the JS floors are working block stacks (rulers that do the work they claim), one figure per floor and dmapool_test row', () => {
    for (const [Pool, size] of [[FloorPool, 16], [CheckedFloorPool, 16], [FloorPool, 96], [CheckedFloorPool, 96]] as const) {
      const f = new Pool(64, size, 2 ** 32);
      const got = Array.from({ length: 64 }, () => f.alloc());
      assert.equal(new Set(got).size, 64);
      assert.ok(got.every((d) => d >= 2 ** 32 && d < 2 ** 32 + 64 * size && (d - 2 ** 32) % size === 0), `${Pool.name} ${size}`);
      for (const d of got.slice(0, 10)) f.free(d);
      assert.deepEqual(Array.from({ length: 10 }, () => f.alloc()).sort(), got.slice(0, 10).sort(), 'freed blocks come back');
    }
    // the paged floor's blocks sit in 4 KiB pages laid out as dma_pool_create() lays out a page
    // (⌊4096 / size⌋ blocks from its start), the pages scattered over a window of twice their slots
    for (const size of [16, 96, 128, 4096]) {
      const bpp = Math.floor(FLOOR_PAGE / size);
      const n = bpp * 40;
      const f = new PagedFloorPool(n, size, 2 ** 32);
      const got = Array.from({ length: n }, () => f.alloc());
      assert.equal(new Set(got).size, n);
      const pages = Array.from(f.pageDma);
      assert.equal(pages.length, 40);
      assert.ok(pages.every((d) => d >= 2 ** 32 && d < 2 ** 32 + 80 * FLOOR_PAGE && d % FLOOR_PAGE === 0));
      assert.equal(new Set(pages).size, 40);
      assert.ok(pages.some((d, i) => i > 0 && d !== pages[i - 1] + FLOOR_PAGE), 'pages scattered, not one range');
      assert.ok(got.every((d) => pages.includes(d - ((d - 2 ** 32) % FLOOR_PAGE)) && ((d - 2 ** 32) % FLOOR_PAGE) % size === 0 &&
        ((d - 2 ** 32) % FLOOR_PAGE) + size <= FLOOR_PAGE), `paged ${size}`);
      for (const d of got.slice(0, 10)) f.free(d);
      assert.deepEqual(Array.from({ length: 10 }, () => f.alloc()).sort(), got.slice(0, 10).sort(), 'freed blocks come back');
      // refuses what a safe pool refuses: a slot of the window without a page, past the window, not a block, twice
      const hole = Array.from({ length: 80 }, (_, i) => 2 ** 32 + i * FLOOR_PAGE).find((d) => !pages.includes(d))!;
      assert.throws(() => f.free(hole), /not this pool/);
      assert.throws(() => f.free(2 ** 32 + 80 * FLOOR_PAGE), /not this pool/);
      assert.throws(() => f.free(2 ** 32 - size), /not this pool/);
      assert.throws(() => f.free(NaN), /not this pool/);
      assert.throws(() => f.free(got[0] + 0.5), /not a block start/);
      if (size > 1 && size < FLOOR_PAGE) assert.throws(() => f.free(got[0] + 1), /not a block start/);
      if (bpp * size < FLOOR_PAGE) assert.throws(() => f.free(pages[0] + bpp * size), /not a block start/); // past the last block
      f.free(got[0]);
      assert.throws(() => f.free(got[0]), /already free/);
    }
    // a count that is not a multiple of the blocks per page (96-byte blocks: 42 per page, the last
    // 64 bytes of each page unused): the last page is whole, the window exactly floorSpan()
    const odd = new PagedFloorPool(100, 96, 2 ** 32);
    const oddGot = Array.from({ length: 126 }, () => odd.alloc());
    assert.equal(new Set(oddGot).size, 126);
    assert.throws(() => odd.alloc(), /no free block/);
    assert.equal(floorSpan('paged floor', 100, 96), 6 * FLOOR_PAGE);
    assert.throws(() => odd.free(2 ** 32 + floorSpan('paged floor', 100, 96)), /not this pool/);
    for (const d of oddGot) odd.free(d);
    // pools of no blocks hand out nothing
    for (const Pool of [CheckedFloorPool, PagedFloorPool]) assert.throws(() => new Pool(0, 128, 2 ** 32).alloc(), /no free block/);
    const full = new PagedFloorPool(2, 4096, 2 ** 32);
    full.alloc(); full.alloc();
    assert.throws(() => full.alloc(), /no free block/);
    assert.throws(() => new PagedFloorPool(1, 8192, 2 ** 32), /size 8192/);
    // the checked floor refuses what a safe pool refuses, and runs out instead of handing out garbage
    const c = new CheckedFloorPool(4, 16, 2 ** 32);
    const a = [c.alloc(), c.alloc()];
    assert.throws(() => c.free(a[0] + 8), /not a block start/);
    assert.throws(() => c.free(2 ** 32 + 64), /not this pool/);
    assert.throws(() => c.free(2 ** 32 - 16), /not this pool/);
    assert.throws(() => c.free(NaN), /not this pool/);
    c.free(a[0]);
    assert.throws(() => c.free(a[0]), /already free/);
    c.alloc(); c.alloc(); c.alloc();
    assert.throws(() => c.alloc(), /no free block/);
    const rows = runFloor({ reps: 1, warmups: 0, dmapoolTest: true, cold: true, coldReps: 1, workloads: ['churn'], n: 1, cliPath: CLI });
    assert.deepEqual(rows.map((r) => [r.floor, r.size, r.n]),
      FLOORS.flatMap((fl) => DMAPOOL_TEST_ROWS.map(([size, , , blocks]) => [fl, size, blocks])));
    assert.ok(rows.every((r) => r.median_ms > 0 && r.runs === 1));
  });

  it('the JS floors\' seed pair: cold from fresh processes (bench-floor-child), warm in this process, cold ÷ warm beside ours', () => {
    // a fresh process's first run, as JSON; a floor that is none is a usage error
    const child = JSON.parse(execFileSync(process.execPath, [CLI, 'bench-floor-child', '--floor', 'checked floor', '--n', '5000'],
      { encoding: 'utf8' })) as { alloc: number; free: number };
    assert.deepEqual(Object.keys(child), ['alloc', 'free']);
    assert.ok(child.alloc > 0 && child.free > 0);
    assert.throws(() => execFileSync(process.execPath, [CLI, 'bench-floor-child', '--floor', 'rbtree'], { stdio: 'pipe' }),
      (e: { status: number }) => e.status === 2);
    const rows = runFloor({ reps: 3, warmups: 1, dmapoolTest: false, cold: true, coldReps: 2, workloads: ['seed-free'], n: 4000, cliPath: CLI });
    assert.deepEqual(rows.map((r) => [r.floor, r.workload, r.mode, r.n, r.size, r.runs]),
      FLOORS.flatMap((f) => [['cold', 2], ['warm', 3]].flatMap(([m, runs]) => ['seed-alloc', 'seed-free'].map((w) => [f, w, m, 4000, 128, runs]))));
    assert.ok(rows.every((r) => r.min_ms > 0 && r.min_ms <= r.median_ms && r.median_ms <= r.max_ms));
    // the cold figures are what the child process printed (a stand-in CLI that prints fixed times)
    const stub = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'floor-child-')), 'cli.js');
    fs.writeFileSync(stub, "if (process.argv[2] !== 'bench-floor-child') process.exit(9); console.log(JSON.stringify({ alloc: 111, free: 222 }));\n");
    try {
      const stubbed = runFloor({ reps: 1, warmups: 0, dmapoolTest: false, cold: true, coldReps: 2, workloads: ['seed-alloc'], n: 4000, cliPath: stub });
      for (const f of FLOORS) {
        const get = (w: string, m: string) => stubbed.find((r) => r.floor === f && r.workload === w && r.mode === m)!.median_ms;
        assert.deepEqual([get('seed-alloc', 'cold'), get('seed-free', 'cold')], [111, 222]);
        assert.ok(get('seed-alloc', 'warm') < 111, 'warm runs are this process\'s own');
      }
    } finally {
      fs.rmSync(path.dirname(stub), { recursive: true, force: true });
    }
    // the random-order free, warm, with it among the workloads (cold or not)
    const random = runFloor({ reps: 2, warmups: 0, dmapoolTest: false, cold: false, coldReps: 1, workloads: ['free-random'], n: 4000, cliPath: CLI });
    assert.deepEqual(random.map((r) => [r.floor, r.workload, r.mode, r.n, r.size, r.runs]), FLOORS.map((f) => [f, 'free-random', 'warm', 4000, 128, 2]));
    // a count past a floor's 32-bit offsets: that floor is left out (never run into wrong blocks)
    assert.equal(floorSpan('checked floor', 2 ** 24, 128), 2 ** 31);
    assert.equal(floorSpan('paged floor', 2 ** 23, 128), 2 ** 31);
    assert.deepEqual(fittingFloors(2 ** 23 - 32, 128), FLOORS);
    assert.deepEqual(fittingFloors(2 ** 23 - 31, 128), ['JS floor', 'checked floor']);
    assert.deepEqual(fittingFloors(2 ** 24 - 1, 128), ['JS floor', 'checked floor']);
    assert.deepEqual(fittingFloors(2 ** 24, 128), []);
    assert.deepEqual(runFloor({ reps: 1, warmups: 0, dmapoolTest: false, cold: true, coldReps: 1, workloads: ['seed-alloc', 'free-random'],
      n: 2 ** 24, cliPath: CLI }), []);
    for (const [Pool, n] of [[FloorPool, 2 ** 24], [CheckedFloorPool, 2 ** 24], [PagedFloorPool, 2 ** 23]] as const)
      assert.throws(() => new Pool(n, 128, 2 ** 32), /past the 2\^31 its integer arithmetic covers/);
    // no cold figures, or no seed workload: no seed pair
    assert.deepEqual(runFloor({ reps: 1, warmups: 0, dmapoolTest: false, cold: false, coldReps: 1, workloads: ['seed-alloc'], n: 4000, cliPath: CLI }), []);
    assert.deepEqual(runFloor({ reps: 1, warmups: 0, dmapoolTest: false, cold: true, coldReps: 1, workloads: ['churn'], n: 4000, cliPath: CLI }), []);
    // the floor's cold ÷ warm, printed under ours (never as a dmapool_test line)
    const f = (mode: 'cold' | 'warm', workload: string, ms: number, floor: FloorResult['floor'] = 'JS floor'): FloorResult =>
      ({ floor, workload, mode, n: 10, size: 128, median_ms: ms, min_ms: ms, max_ms: ms, runs: 1, pages: 0 });
    const fl = [f('cold', 'seed-alloc', 9), f('warm', 'seed-alloc', 3), f('warm', 'seed-free', 2), f('cold', 'seed-alloc', 8, 'checked floor')];
    assert.deepEqual(floorColdWarm(fl), [{ floor: 'JS floor', workload: 'seed-alloc', cold_over_warm: 3, cold_ms: 9, warm_ms: 3 }]);
    const zero = { nativeCalls: 0, iommuMaps: 0, iommuUnmaps: 0, slabsMapped: 0, slabsUnmapped: 0, slabsLeaked: 0, bytesMapped: 0, slabsReused: 0, nativeMs: 0 };
    const res = (mode: 'cold' | 'warm', ms: number): BenchResult => ({ strategy: 'stack', provider: 'sim', device: 'fresh',
      workload: 'seed-alloc', mode, n: 10, size: 128, median_ms: ms, min_ms: ms, max_ms: ms, runs: 1, pages: 1, visits: 0,
      counters: zero, metadata_bytes_per_page: 0 });
    const text = formatTable([res('cold', 40), res('warm', 20)], fl);
    assert.match(text, /stack\s+seed-alloc\s+2\.00/);
    assert.match(text, /JS floor\s+seed-alloc\s+3\.00\s+\(cold 9\.00 ms, warm 3\.00 ms: \+6\.00 ms\)/);
    assert.doesNotMatch(text, /dmapool_test: size/);
  });

  it('provider counters grow with slabs, not with pages or blocks', () => {
    const r = runOnce('sim', 'rbtree', 'seed-alloc', 100000);
    const a = r['seed-alloc']!;
    const slabs = Math.ceil(a.pages / 512);
    assert.equal(a.counters.slabsMapped, slabs);
    assert.equal(a.counters.nativeCalls, slabs);
    assert.equal(r['seed-free']!.counters.slabsUnmapped, slabs);
    // the native calls' time is counted (mapping populates and locks memory: never free)
    assert.ok(a.counters.nativeMs > 0 && a.counters.nativeMs < 60_000, `nativeMs ${a.counters.nativeMs}`);
    // a kept device with the slab cache maps nothing after the first pool: its only native calls
    // zero the reused slabs, one call per slab (never per page or block)
    const dev = openKeptDevice('sim');
    try {
      runOnce('sim', 'rbtree', 'seed-alloc', 20000, 128, dev);
      const again = runOnce('sim', 'rbtree', 'seed-alloc', 20000, 128, dev)['seed-alloc']!;
      assert.equal(again.counters.slabsMapped, 0);
      assert.equal(again.counters.slabsReused, Math.ceil(again.pages / 512));
      assert.equal(again.counters.nativeCalls, again.counters.slabsReused);
    } finally {
      dev.close();
    }
  });

  it('rounds: each figure is the median of its rounds\' medians, with the extreme min and max and the runs summed', () => {
    // pages stands for every field beside the timing (counters, visits): it comes from the median round
    const t = (size: number, med: number, min: number, max: number, pages = 0) => ({ floor: 'JS floor' as const,
      workload: 'dmapool_test', mode: 'warm' as const, n: 8, size, median_ms: med, min_ms: min, max_ms: max, runs: 3, pages });
    const merged = mergeRounds([[t(16, 5, 4, 6, 1), t(64, 9, 8, 10, 1)], [t(16, 7, 6, 9, 2), t(64, 1, 1, 1, 2)], [t(16, 6, 3, 7, 3)]], floorKey);
    assert.deepEqual(merged.map((r) => [r.size, r.median_ms, r.min_ms, r.max_ms, r.runs, r.pages]),
      [[16, 6, 3, 9, 9, 3], [64, 5, 1, 10, 6, 2]]);
    // the two floors are figures of their own
    assert.equal(mergeRounds([[t(16, 5, 4, 6), { ...t(16, 7, 6, 8), floor: 'checked floor' as const }]], floorKey).length, 2);
    // through the CLI: --rounds 2 doubles every figure's runs and says so
    const j = JSON.parse(execFileSync(process.execPath, [CLI, 'bench', '--device', 'sim', '--json', '-n', '3000', '--reps', '2',
      '--warmups', '0', '--strategies', 'stack', '--workloads', 'seed-alloc', '--no-cold', '--no-dmapool-test', '--rounds', '2'],
    { encoding: 'utf8' })) as { rounds: number; results: { device: string; runs: number }[] };
    assert.equal(j.rounds, 2);
    assert.deepEqual(j.results.map((r) => [r.device, r.runs]), [['kept', 4], ['fresh', 4]]);
  });

  it('cold / warm: cold median over the fresh-device and kept warm medians, and JS-only with native time taken out', () => {
    const zero = { nativeCalls: 0, iommuMaps: 0, iommuUnmaps: 0, slabsMapped: 0, slabsUnmapped: 0, slabsLeaked: 0, bytesMapped: 0, slabsReused: 0 };
    const res = (mode: 'cold' | 'warm', device: 'kept' | 'fresh', ms: number, nativeMs: number): BenchResult => ({
      strategy: 'rbtree', provider: 'sim', device, workload: 'seed-alloc', mode, n: 10, size: 128, median_ms: ms, min_ms: ms,
      max_ms: ms, runs: 1, pages: 1, visits: 0, counters: { ...zero, nativeMs }, metadata_bytes_per_page: 0 });
    const cw = coldWarm([res('cold', 'fresh', 60, 20), res('warm', 'fresh', 20, 10), res('warm', 'kept', 12, 0)]);
    assert.deepEqual(cw, [{ strategy: 'rbtree', workload: 'seed-alloc', cold_over_fresh: 3, cold_over_kept: 5, js_cold_over_fresh: 4 }]);
    assert.match(formatTable([res('cold', 'fresh', 60, 20), res('warm', 'fresh', 20, 10)]), /rbtree\s+seed-alloc\s+3\.00\s+\(— vs kept; JS 4\.00\)/);
  });

  it('linear visits O(pages²) pages over a fill; rbtree O(pages · log pages)', () => {
    const lin = runOnce('sim', 'linear', 'seed-alloc', 32 * 1000)['seed-alloc']!;
    const rb = runOnce('sim', 'rbtree', 'seed-alloc', 32 * 1000)['seed-alloc']!;
    assert.equal(lin.pages, 1000);
    assert.ok(lin.visits >= (1000 * 999) / 2, `linear visited ${lin.visits}`);
    assert.ok(rb.visits <= 1000 * 2 * Math.log2(1001), `rbtree visited ${rb.visits}`);
  });

  it('each dmapool_test row carries its own pool\'s bookkeeping per page; the seed workloads the seed pool\'s', () => {
    const r = benchStrategy({ provider: 'sim', strategies: ['stack'], workloads: ['seed-alloc', 'seed-free'], reps: 1, warmups: 0,
      linearReps: 1, cold: false, coldReps: 1, dmapoolTest: true, n: 2000, cliPath: CLI }, 'stack');
    const dev = openDevice('sim');
    try {
      // the figure of a pool of that layout holding that many blocks, measured here on its own
      const expected = (size: number, blocks: number, layout: { align?: number; boundary?: number }): number => {
        const pool = dev.createPool('e', size, { index: 'stack', ...layout });
        const d = Array.from({ length: blocks }, () => pool.alloc());
        const b = pool.stats.metadataBytesPerPage;
        d.forEach((x) => pool.free(x));
        pool.destroy();
        return b;
      };
      const rows = r.filter((x) => x.workload === 'dmapool_test');
      assert.equal(rows.length, DMAPOOL_TEST_ROWS.length);
      for (const [size, align, boundary, blocks] of DMAPOOL_TEST_ROWS) {
        const row = rows.find((x) => x.note === `align ${align} boundary ${boundary}` && x.n === blocks)!;
        assert.equal(row.metadata_bytes_per_page, expected(size, blocks, { align, boundary }), `row ${size}`);
      }
      const seed = expected(128, 2000, {});
      for (const x of r.filter((y) => y.workload !== 'dmapool_test')) assert.equal(x.metadata_bytes_per_page, seed, x.workload);
      // one block per page (the 4096-byte row) costs a page far less bookkeeping than 32 do
      assert.ok(rows.find((x) => x.n === 1024)!.metadata_bytes_per_page < seed);
      // what the text output prints per strategy: the seed pool's, whichever figure comes last
      assert.deepEqual(seedBookkeeping([...rows, ...r]), [['stack', seed]]);
    } finally {
      dev.close();
    }
  });

  it('dmapool_test runs a kernel row (100 × alloc-all/free-all)', () => {
    // watch every alloc and free through the public prototype: the row's shape, 100 rounds of all blocks
    const proto = DmaPool.prototype;
    const { alloc, free } = proto;
    const pools = new Set<string>();
    let allocs = 0, frees = 0, live = 0, peak = 0, rounds = 0, last: 'alloc' | 'free' = 'free';
    proto.alloc = function (this: DmaPool): number {
      const d = alloc.call(this);
      pools.add(`${this.name} size ${this.geometry.size} align ${this.geometry.align} boundary ${this.geometry.boundary} ${this.stats.index}`);
      allocs++; live++; peak = Math.max(peak, live); last = 'alloc';
      return d;
    };
    proto.free = function (this: DmaPool, d: number): void {
      free.call(this, d);
      if (last === 'alloc') { assert.equal(live, 256, 'a round frees only after allocating every block'); rounds++; }
      frees++; live--; last = 'free';
    };
    let us: number;
    try {
      us = dmapoolTest('sim', 'stack', [68, 32, 4096, 256]);
    } finally {
      proto.alloc = alloc; proto.free = free;
    }
    assert.deepEqual([...pools], ['dmapool_test size 96 align 32 boundary 4096 stack']);
    assert.deepEqual([allocs, frees, rounds, peak, live], [100 * 256, 100 * 256, 100, 256, 0]);
    assert.ok(Number.isFinite(us) && us > 0, `elapsed ${us} µs`);
  });

  it('scaling writes a CSV and an SVG chart rendered by vega-lite', async () => {
    const pts = runScaling('sim', ['linear', 'radix'], [1000, 3000], 1);
    assert.equal(pts.length, 2 * 2 * 2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-scaling-'));
    try {
      const f = await writeScaling(pts, dir, 'test');
      const csv = fs.readFileSync(f.csv, 'utf8').trim().split('\n');
      assert.equal(csv[0], 'strategy,op,n,ns_per_op,ns_min,ns_max,runs');
      assert.equal(csv.length, 9);
      const svg = fs.readFileSync(f.svg, 'utf8');
      assert.match(svg, /^<svg /);
      for (const s of ['linear', 'radix', 'blocks (n)', 'ns per operation']) assert.ok(svg.includes(s), s);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
