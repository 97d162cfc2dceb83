/**
 * The benchmark: the seed's mpt3sas workload (create + 373959 × alloc(128); 373959 × free +
 * destroy) and variations, for every page-index strategy on a provider, cold (a fresh process)
 * and warm (median after the JIT settled), plus the kernel's dmapool_test rows.
 */
import { execFileSync } from 'node:child_process';
import type { Device } from '../device';
import type { DmaPool } from '../pool';
import { DmaPoolError } from '../errors';
import { poolGeometry } from '../layout';
import { native } from '../native';
import { openDevice } from '../open';
import { INDEX_KINDS, type IndexKind } from '../index/page-index';
import { noCounters, type ProviderCounters } from '../provider';
import { rng, shuffle } from '../rng';
import { addressArray, FLOORS, fittingFloors, floorDmapoolTest, floorRandomFree, floorSeedRun, type FloorKind, type FloorSeedSample } from './js-floor';

export const SEED_N = 373959;
/** The shuffle seed of the random-order free (ours and the floors': the same order). */
export const RANDOM_FREE_SEED = 12345;
/** The seed's block size: mpt3sas's chain blocks. */
export const SEED_SIZE = 128;
/** The strategies the bench runs by default: every page index. */
export const STRATEGIES: readonly IndexKind[] = INDEX_KINDS;
export type Workload = 'seed-alloc' | 'seed-free' | 'free-reverse' | 'free-random' | 'churn' | 'dmapool_test';
export const WORKLOADS: Workload[] = ['seed-alloc', 'seed-free', 'free-reverse', 'free-random', 'churn'];

export interface RunSample {
  ms: number;
  /** Pages or tree nodes the index visited during the timed part. */
  visits: number;
  counters: ProviderCounters;
  pages: number;
}

/** The timing fields every bench figure shares (ours and the kernel's: stable JSON names). */
export interface TimedResult {
  workload: Workload | string;
  mode: 'cold' | 'warm';
  /** Blocks per run (dmapool_test: blocks per iteration). */
  n: number;
  size: number;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
  /** Pool pages of a run. */
  pages: number;
}

/**
 * How a warm run gets its device: `kept` — one device open across the runs, as a driver keeps
 * it, with its slab cache on (BENCH_SLAB_CACHE), so a pool after the first reuses mapped slabs;
 * `fresh` — a device opened and closed by every run, so every pool maps (and unmaps) its slabs.
 * Cold figures are always fresh (the first run of a fresh process).
 */
export type BenchDevice = 'kept' | 'fresh';

/** The slab cache of the bench's kept device: room for the seed pool's 46 MiB of slabs, and more. */
export const BENCH_SLAB_CACHE = 128 << 20;

export interface BenchResult extends TimedResult {
  strategy: IndexKind;
  provider: string;
  device: BenchDevice;
  /** Index work per timed run (median): page visits for linear, tree nodes for rbtree/stack. */
  visits: number;
  /** Provider activity per run: native calls, IOMMU maps/unmaps, slabs, bytes mapped. */
  counters: ProviderCounters;
  metadata_bytes_per_page: number;
  note?: string;
}

function diff(a: ProviderCounters, b: ProviderCounters): ProviderCounters {
  return {
    nativeCalls: b.nativeCalls - a.nativeCalls, iommuMaps: b.iommuMaps - a.iommuMaps,
    iommuUnmaps: b.iommuUnmaps - a.iommuUnmaps, slabsMapped: b.slabsMapped - a.slabsMapped,
    slabsUnmapped: b.slabsUnmapped - a.slabsUnmapped, slabsLeaked: b.slabsLeaked - a.slabsLeaked,
    bytesMapped: b.bytesMapped - a.bytesMapped, slabsReused: b.slabsReused - a.slabsReused, nativeMs: b.nativeMs - a.nativeMs,
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;


// The workloads' loops are functions of their own, as a driver's are: mpt3sas allocates its chain
// pool in _base_allocate_chain_dma_pool() and frees it in _base_release_memory_pools(), and the
// kernel runner calls one C function per loop. V8 then optimizes each loop as a small function
// (pool.alloc()/free() inlined into it) instead of one on-stack replacement of the whole run,
// whose inlining budget the other loops would share.
function allocLoop(pool: DmaPool, dma: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) dma[i] = pool.alloc();
}

function freeLoop(pool: DmaPool, dma: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) pool.free(dma[i]);
}

/** Churn: n random alloc-or-free operations (ops[i] < 0.5: alloc while below n) from `live` allocated; returns the live count. */
function churnLoop(pool: DmaPool, dma: Float64Array, ops: Float64Array, n: number, live: number): number {
  for (let i = 0; i < n; i++) {
    const r = ops[i];
    if (r < 0.5 && live < n) {
      dma[live++] = pool.alloc();
    } else if (live > 0) {
      const j = Math.floor(r * 2 * live) % live;
      pool.free(dma[j]);
      dma[j] = dma[--live];
    }
  }
  return live;
}

/**
 * One run of a workload: returns the timed samples. 'seed' runs produce both seed-alloc and
 * seed-free from the same pool, like the seed's modprobe/rmmod pair. With `kept`, the run uses
 * that open device (and leaves it open); otherwise it opens a device and closes it after.
 */
export function runOnce(provider: string, strategy: IndexKind, workload: Workload, n = SEED_N, size = SEED_SIZE, kept?: Device):
  Partial<Record<Workload, RunSample>> {
  const dev = kept ?? openDevice(provider);
  const pc = dev.provider.counters;
  let ok = false;
  try {
    // the caller's array of addresses exists before the clock starts, as the kernel runner's does
    // (allocating 3 MB inside the timed part measured its page faults and GC, not the pool)
    const dma = addressArray(n);
    const c0 = { ...pc };
    const t0 = now();
    const pool = dev.createPool('chain pool', size, { index: strategy });
    allocLoop(pool, dma, n);
    const t1 = now();
    const c1 = { ...pc };
    const v1 = pool.index.visits;
    const pages = pool.stats.pages;
    const out: Partial<Record<Workload, RunSample>> = {};
    if (workload === 'seed-alloc' || workload === 'seed-free') {
      out['seed-alloc'] = { ms: t1 - t0, visits: v1, counters: diff(c0, c1), pages };
      freeLoop(pool, dma, n);
      pool.destroy();
      const t2 = now();
      out['seed-free'] = { ms: t2 - t1, visits: pool.index.visits - v1, counters: diff(c1, pc), pages };
    } else if (workload === 'free-reverse' || workload === 'free-random') {
      if (workload === 'free-reverse') dma.reverse(); else shuffle(dma, rng(RANDOM_FREE_SEED));
      const c2 = { ...pc };
      const t2 = now();
      freeLoop(pool, dma, n);
      pool.destroy();
      const t3 = now();
      out[workload] = { ms: t3 - t2, visits: pool.index.visits - v1, counters: diff(c2, pc), pages };
    } else if (workload === 'churn') {
      // steady state at 50% occupancy: n random alloc-or-free operations
      shuffle(dma, rng(777));
      const half = Math.floor(n / 2);
      for (let i = half; i < n; i++) pool.free(dma[i]); // free a random half (untimed)
      let live = half;
      // the operation sequence is drawn before timing so the PRNG is not measured
      const ops = new Float64Array(n);
      const rand = rng(99991);
      for (let i = 0; i < n; i++) ops[i] = rand();
      const c2 = { ...pc };
      const t2 = now();
      live = churnLoop(pool, dma, ops, n, live);
      const t3 = now();
      const res = { ms: t3 - t2, visits: pool.index.visits - v1, counters: diff(c2, pc), pages: pool.stats.pages };
      for (let i = 0; i < live; i++) pool.free(dma[i]);
      pool.destroy();
      out.churn = res;
    }
    ok = true;
    return out;
  } finally {
    // after a failure the pool may still hold blocks; don't let EBUSY hide the real error
    if (kept) { /* the caller's */ } else if (ok) dev.close(); else try { dev.close(); } catch { /* reported by the original error */ }
  }
}

/** A device kept open across runs, as a driver keeps it: slab cache on (BENCH_SLAB_CACHE). */
export function openKeptDevice(provider: string): Device {
  const dev = openDevice(provider);
  dev.provider.setSlabCache(BENCH_SLAB_CACHE);
  return dev;
}

/** The kernel's lib/dmapool_test.c parameter rows: size, align, boundary, blocks. */
export const DMAPOOL_TEST_ROWS: [number, number, number, number][] = [
  [16, 16, 0, 8192], [64, 64, 0, 8192], [256, 256, 0, 8192],
  [1024, 1024, 0, 2048], [4096, 4096, 0, 1024], [68, 32, 4096, 8192],
];

/**
 * dmapool_test: 100 iterations of allocate-all then free-all; returns µs as the kernel prints.
 * With `kept`, the pool is made on that open device (left open); otherwise on a fresh one.
 */
export function dmapoolTest(provider: string, strategy: IndexKind, row: [number, number, number, number], kept?: Device): number {
  const [size, align, boundary, blocks] = row;
  const dev = kept ?? openDevice(provider);
  try {
    const pool = dev.createPool('dmapool_test', size, { index: strategy, align, boundary });
    const dma = new Float64Array(blocks);
    const t0 = now();
    for (let it = 0; it < 100; it++) {
      // mm/dmapool_test.c's dmapool_test_alloc(): one loop allocating all, one freeing all
      allocLoop(pool, dma, blocks);
      freeLoop(pool, dma, blocks);
    }
    const us = (now() - t0) * 1000;
    pool.destroy();
    return us;
  } finally {
    if (!kept) dev.close();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A figure's timing fields from its runs (ms): the one place ours, the floor's and the kernel's are summarized. */
export function timing(ms: number[]): Pick<TimedResult, 'median_ms' | 'min_ms' | 'max_ms' | 'runs'> {
  return { median_ms: median(ms), min_ms: Math.min(...ms), max_ms: Math.max(...ms), runs: ms.length };
}

/** Timed and untimed runs of each dmapool_test row (ours, the floor's, the kernel runner's --dt-reps). */
export function dmapoolTestRuns(o: Pick<BenchOptions, 'reps' | 'warmups'>): { reps: number; warmups: number } {
  return { reps: Math.max(1, Math.min(o.reps, 5)), warmups: Math.min(o.warmups, DMAPOOL_TEST_WARMUPS) };
}

export interface BenchOptions {
  provider: string;
  strategies: IndexKind[];
  workloads: Workload[];
  reps: number;
  warmups: number;
  /** Repetitions for linear (its free loop takes seconds). */
  linearReps: number;
  cold: boolean;
  /** Fresh processes per cold figure (median reported). */
  coldReps: number;
  dmapoolTest: boolean;
  n: number;
  /** Called after each run, for progress. */
  tick?: (label: string) => void;
  /** Path of the CLI, for cold child processes. */
  cliPath: string;
  /** Each strategy in a child process of its own (the CLI's default); else all in this process. */
  isolate?: boolean;
}

/**
 * The integer ranges of BenchOptions' counts: runBench checks them, and the CLI turns each into a
 * usage error (exit 2) before anything runs. Every range is inclusive.
 */
export const BENCH_LIMITS = {
  reps: { min: 1, max: 1_000_000 },
  warmups: { min: 0, max: 1_000_000 },
  linearReps: { min: 1, max: 1_000_000 },
  coldReps: { min: 1, max: 1_000_000 },
  /** Blocks per run: past 2^28 the address array alone is 2 GiB. */
  n: { min: 1, max: 2 ** 28 },
} as const satisfies Record<string, { min: number; max: number }>;

/** Checks what runBench is given (DmaPoolError EINVAL, never a TypeError half-way through a run). */
export function checkBenchOptions(o: BenchOptions): void {
  for (const [k, { min, max }] of Object.entries(BENCH_LIMITS)) {
    const v = (o as unknown as Record<string, unknown>)[k];
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max)
      throw new DmaPoolError('EINVAL', `bench: ${k} must be an integer from ${min} to ${max}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  }
  const lists: [string, readonly string[], unknown][] = [['strategies', STRATEGIES, o.strategies], ['workloads', WORKLOADS, o.workloads]];
  for (const [k, allowed, v] of lists)
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => !allowed.includes(x as string)))
      throw new DmaPoolError('EINVAL', `bench: ${k} must be a non-empty list of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
}

/** Whether a figure carries the seed pool's bookkeeping per page (a dmapool_test row carries its own layout's). */
const hasSeedBookkeeping = (r: BenchResult): boolean => r.workload !== 'dmapool_test';

/** Each strategy's bookkeeping bytes per page of the seed pool (size 128), in the results' order. */
export function seedBookkeeping(results: readonly BenchResult[]): [IndexKind, number][] {
  return [...new Map(results.filter(hasSeedBookkeeping).map((r) => [r.strategy, r.metadata_bytes_per_page])).entries()];
}

/** A figure from its runs; metadata_bytes_per_page is filled in by benchStrategy once every run is done. */
function summarize(strategy: IndexKind, provider: string, workload: string, mode: 'cold' | 'warm', device: BenchDevice,
  n: number, samples: RunSample[], note?: string): BenchResult {
  const ms = samples.map((s) => s.ms);
  const mid = [...samples].sort((a, b) => a.ms - b.ms)[samples.length >> 1]; // the median run's pages and counters
  return {
    strategy, provider, device, workload, mode, n, size: SEED_SIZE,
    ...timing(ms),
    visits: median(samples.map((s) => s.visits)), pages: mid.pages, counters: mid.counters,
    metadata_bytes_per_page: 0, ...(note ? { note } : {}),
  };
}

/**
 * Bookkeeping bytes per page of a `strategy` pool of `size`-byte blocks (align, boundary) holding
 * `blocks` of them, made on the open device `dev` after the timed runs that use it (no device of
 * its own whose open and close would come first in the process) and destroyed.
 */
function metadataBytes(dev: Device, strategy: IndexKind, blocks: number, size = SEED_SIZE,
  layout: { align?: number; boundary?: number } = {}): number {
  const pool = dev.createPool('m', size, { index: strategy, ...layout });
  const dma = new Float64Array(blocks);
  for (let i = 0; i < dma.length; i++) dma[i] = pool.alloc();
  const b = pool.stats.metadataBytesPerPage;
  for (const d of dma) pool.free(d);
  pool.destroy();
  return b;
}

export function runBench(o: BenchOptions): BenchResult[] {
  checkBenchOptions(o);
  const results: BenchResult[] = [];
  for (const strategy of o.strategies) {
    if (!o.isolate) {
      results.push(...benchStrategy(o, strategy));
      continue;
    }
    // a process per strategy, as a driver runs one: no strategy's JIT feedback (a call site made
    // polymorphic by another page index) slows the next one's figures
    const { tick: _tick, isolate: _isolate, ...child } = o;
    const json = execFileSync(process.execPath, [o.cliPath, 'bench-strategy', JSON.stringify({ ...child, strategies: [strategy] })],
      { encoding: 'utf8', maxBuffer: 64 << 20 });
    results.push(...(JSON.parse(json) as BenchResult[]));
    o.tick?.(`${strategy}`);
  }
  return results;
}

/** One strategy's figures (cold children, warm runs, dmapool_test rows), in this process. */
export function benchStrategy(o: BenchOptions, strategy: IndexKind): BenchResult[] {
  checkBenchOptions(o);
  const results: BenchResult[] = [];
  /** Bookkeeping bytes per page, measured once on the first kept device after its timed runs. */
  let meta: number | undefined;
  {
    const reps = strategy === 'linear' ? o.linearReps : o.reps;
    const warmups = strategy === 'linear' ? 1 : o.warmups;
    const note = strategy === 'linear' && reps < o.reps ? `${reps} runs (linear is O(pages) per free)` : undefined;
    const groups = new Map<Workload, Workload[]>();
    for (const w of o.workloads) {
      const key = w === 'seed-free' ? 'seed-alloc' : w;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(w);
    }
    for (const [runKind, outs] of groups) {
      if (o.cold) {
        // each cold sample is the first run in its own fresh process; the median of a few tames
        // page-cache and scheduler noise
        const cold = new Map<Workload, RunSample[]>(outs.map((w) => [w, []]));
        const coldReps = strategy === 'linear' ? Math.min(o.coldReps, o.linearReps) : o.coldReps;
        for (let i = 0; i < coldReps; i++) {
          const json = execFileSync(process.execPath, [o.cliPath, 'bench-child', '--provider', o.provider,
            '--strategy', strategy, '--workload', runKind, '--n', String(o.n)], { encoding: 'utf8' });
          const sample = JSON.parse(json) as Partial<Record<Workload, RunSample>>;
          for (const w of outs) cold.get(w)!.push(sample[w]!);
          o.tick?.(`${strategy} ${runKind} cold`);
        }
        for (const w of outs) results.push(summarize(strategy, o.provider, w, 'cold', 'fresh', o.n, cold.get(w)!));
      }
      // warm, device kept open (a driver's view): warm-ups tier the JIT up and fill the slab cache
      const dev = openKeptDevice(o.provider);
      try {
        for (let i = 0; i < warmups; i++) { runOnce(o.provider, strategy, runKind, o.n, SEED_SIZE, dev); o.tick?.(`${strategy} ${runKind} warm-up`); }
        const samples = new Map<Workload, RunSample[]>(outs.map((w) => [w, []]));
        for (let i = 0; i < reps; i++) {
          const r = runOnce(o.provider, strategy, runKind, o.n, SEED_SIZE, dev);
          for (const w of outs) samples.get(w)!.push(r[w]!);
          o.tick?.(`${strategy} ${runKind}`);
        }
        for (const w of outs) results.push(summarize(strategy, o.provider, w, 'warm', 'kept', o.n, samples.get(w)!, note));
        meta ??= metadataBytes(dev, strategy, Math.min(o.n, 32 * 512));
      } finally {
        dev.close();
      }
      // warm, a fresh device per run (every pool maps its slabs): the seed pair only, JIT already warm
      if (runKind === 'seed-alloc' && strategy !== 'linear') {
        const fresh = new Map<Workload, RunSample[]>(outs.map((w) => [w, []]));
        for (let i = 0; i < reps; i++) {
          const r = runOnce(o.provider, strategy, runKind, o.n);
          for (const w of outs) fresh.get(w)!.push(r[w]!);
          o.tick?.(`${strategy} ${runKind} fresh device`);
        }
        for (const w of outs) results.push(summarize(strategy, o.provider, w, 'warm', 'fresh', o.n, fresh.get(w)!, note));
      }
    }
    if (o.dmapoolTest) {
      // one kept device; each row is warmed up (JIT) before its timed runs, as the seed loops are
      const dev = openKeptDevice(o.provider);
      try {
        for (const row of DMAPOOL_TEST_ROWS) {
          const us: number[] = [];
          const { reps: n, warmups: w } = strategy === 'linear' ? { reps: 1, warmups: 0 } : dmapoolTestRuns(o);
          for (let i = 0; i < w; i++) dmapoolTest(o.provider, strategy, row, dev);
          for (let i = 0; i < n; i++) us.push(dmapoolTest(o.provider, strategy, row, dev));
          const ms = us.map((u) => u / 1000);
          results.push({
            strategy, provider: o.provider, device: 'kept', workload: 'dmapool_test', mode: 'warm', n: row[3], size: row[0],
            ...timing(ms), visits: 0, pages: 0,
            counters: noCounters(),
            metadata_bytes_per_page: metadataBytes(dev, strategy, row[3], row[0], { align: row[1], boundary: row[2] }), note: `align ${row[1]} boundary ${row[2]}`,
          });
          o.tick?.(`${strategy} dmapool_test ${row[0]}`);
        }
      } finally {
        dev.close();
      }
    }
  }
  for (const r of results) if (hasSeedBookkeeping(r)) r.metadata_bytes_per_page = meta ?? 0;
  return results;
}

/** One line per floor: what the ruler is (js-floor.ts says why). */
export const FLOOR_LABELS: Record<FloorKind, string> = {
  'JS floor': 'bare Int32Array block stack, integer address arithmetic, no checks',
  'checked floor': 'the same stack, each free checked (in the pool, a block start, allocated)',
  'paged floor': 'the checked stack over 4 KiB pages scattered in DMA space, each free finding its page in one flat table',
};

/** What each floor bounds (the ratio table's legend). */
export const FLOOR_BOUNDS: Record<FloorKind, string> = {
  'JS floor': 'what this V8 spends per call before any pool work: no JS pool\'s ratio goes below it',
  'checked floor': 'what a pool that refuses bad frees spends at least: no safe JS pool\'s ratio goes below it',
  'paged floor': 'what a safe pool whose pages are not one range spends at least (the cheapest page lookup): ours, per workload, cannot go below it',
};

/** A floor's dmapool_test figure (see js-floor.ts): which ruler measured it. */
export interface FloorResult extends TimedResult {
  floor: FloorKind;
}

/** Whether the floors run the seed pair: cold figures asked for and a seed workload among the workloads. */
function floorSeedWanted(o: Pick<BenchOptions, 'cold' | 'workloads'>): boolean {
  return o.cold && o.workloads.some((w) => w === 'seed-alloc' || w === 'seed-free');
}

/** Whether the floors run the random-order free (warm): when ours does. */
function floorRandomWanted(o: Pick<BenchOptions, 'workloads'>): boolean {
  return o.workloads.includes('free-random');
}

/**
 * The JS floors' figures (see js-floor.ts), measured like ours, in this process after ours:
 * - dmapool_test rows (with o.dmapoolTest): each warmed up, then the median of its timed runs;
 *   blocks have the size dma_pool_create() gives the row (poolGeometry: rounded up to the alignment);
 * - the seed pair (with cold figures and a seed workload): cold, the first run in each of coldReps
 *   fresh processes (bench-floor-child), and warm, after warm-ups in this process — the floor
 *   under any JavaScript pool's cold ÷ warm: what the JIT's tier-up costs a pool that does
 *   almost nothing per call;
 * - the random-order free (with it among the workloads), warm: the seed pool's addresses shuffled
 *   as ours are — with the paged floor, the least a pool with pages spends on it.
 */
export function runFloor(o: Pick<BenchOptions, 'reps' | 'warmups' | 'tick' | 'dmapoolTest' | 'cold' | 'coldReps' | 'workloads' | 'n' | 'cliPath'>):
  FloorResult[] {
  const out: FloorResult[] = [];
  if (o.dmapoolTest) {
    const { reps: n, warmups: w } = dmapoolTestRuns(o);
    for (const floor of FLOORS) {
      for (const [size, align, boundary, blocks] of DMAPOOL_TEST_ROWS) {
        const blockSize = poolGeometry(size, { align, boundary }, native().pageSize).size;
        for (let i = 0; i < w; i++) floorDmapoolTest(floor, blockSize, blocks);
        const ms: number[] = [];
        for (let i = 0; i < n; i++) ms.push(floorDmapoolTest(floor, blockSize, blocks));
        out.push({ floor, workload: 'dmapool_test', mode: 'warm', n: blocks, size, ...timing(ms), pages: 0 });
        o.tick?.(`${floor} dmapool_test ${size}`);
      }
    }
  }
  // a count past a floor's integer arithmetic (FLOOR_MAX_SPAN) leaves that floor's seed figures out
  const fits = fittingFloors(o.n, SEED_SIZE);
  if (floorSeedWanted(o)) {
    for (const floor of fits) {
      const cold: FloorSeedSample[] = [];
      for (let i = 0; i < o.coldReps; i++) {
        cold.push(JSON.parse(execFileSync(process.execPath, [o.cliPath, 'bench-floor-child', '--floor', floor, '--n', String(o.n)],
          { encoding: 'utf8' })) as FloorSeedSample);
        o.tick?.(`${floor} seed cold`);
      }
      for (let i = 0; i < o.warmups; i++) floorSeedRun(floor, o.n, SEED_SIZE);
      const warm: FloorSeedSample[] = [];
      for (let i = 0; i < o.reps; i++) warm.push(floorSeedRun(floor, o.n, SEED_SIZE));
      o.tick?.(`${floor} seed warm`);
      for (const [mode, samples] of [['cold', cold], ['warm', warm]] as const)
        for (const workload of ['seed-alloc', 'seed-free'] as const)
          out.push({ floor, workload, mode, n: o.n, size: SEED_SIZE,
            ...timing(samples.map((x) => (workload === 'seed-alloc' ? x.alloc : x.free))), pages: 0 });
    }
  }
  if (floorRandomWanted(o)) {
    for (const floor of fits) {
      for (let i = 0; i < o.warmups; i++) floorRandomFree(floor, o.n, SEED_SIZE, RANDOM_FREE_SEED);
      const ms: number[] = [];
      for (let i = 0; i < o.reps; i++) ms.push(floorRandomFree(floor, o.n, SEED_SIZE, RANDOM_FREE_SEED));
      out.push({ floor, workload: 'free-random', mode: 'warm', n: o.n, size: SEED_SIZE, ...timing(ms), pages: 0 });
      o.tick?.(`${floor} free-random`);
    }
  }
  return out;
}

/**
 * Untimed runs of each dmapool_test row before its timed ones (JIT tier-up of that row's paths).
 * Four: a fresh pool's 16-byte row measured 48–124, 45–107, 33–53 ms in its first three runs and
 * 14–28 ms from the fourth on (Node 20, stack) — with two, the third run was a timed one.
 */
export const DMAPOOL_TEST_WARMUPS = 4;

export interface ColdWarm {
  strategy: IndexKind;
  workload: string;
  cold_over_fresh: number;
  cold_over_kept?: number;
  /**
   * The same with the provider's native time (mapping, unmapping) taken out of both: the
   * JavaScript's own cold/warm, apart from what the kernel's page allocator costs a fresh process.
   */
  js_cold_over_fresh: number;
}

/** Cold median ÷ warm median per strategy and seed workload: against the fresh-device warm figure (same memory) and the kept one. */
export function coldWarm(results: BenchResult[]): ColdWarm[] {
  const out: ColdWarm[] = [];
  for (const c of results) {
    if (c.mode !== 'cold') continue;
    const find = (d: BenchDevice) => results.find((r) => r.mode === 'warm' && r.device === d && r.strategy === c.strategy && r.workload === c.workload);
    const fresh = find('fresh'), kept = find('kept');
    if (!fresh) continue;
    const js = (r: BenchResult) => Math.max(r.median_ms - (r.counters.nativeMs ?? 0), 1e-6);
    out.push({ strategy: c.strategy, workload: c.workload, cold_over_fresh: c.median_ms / fresh.median_ms,
      ...(kept ? { cold_over_kept: c.median_ms / kept.median_ms } : {}), js_cold_over_fresh: js(c) / js(fresh) });
  }
  return out;
}

/** A JS floor's cold ÷ warm on a seed workload (see runFloor), with both medians. */
export interface FloorColdWarm {
  floor: FloorKind;
  workload: string;
  cold_over_warm: number;
  cold_ms: number;
  warm_ms: number;
}

/** Each floor's seed cold median ÷ its warm median (the floor under coldWarm's ratios). */
export function floorColdWarm(floor: FloorResult[]): FloorColdWarm[] {
  const out: FloorColdWarm[] = [];
  for (const c of floor) {
    if (c.mode !== 'cold') continue;
    const w = floor.find((r) => r.mode === 'warm' && r.floor === c.floor && r.workload === c.workload && r.n === c.n && r.size === c.size);
    if (w) out.push({ floor: c.floor, workload: c.workload, cold_over_warm: c.median_ms / w.median_ms, cold_ms: c.median_ms, warm_ms: w.median_ms });
  }
  return out;
}

/**
 * Several rounds of the same figures as one: per figure (same `key`), the median of the rounds'
 * medians, the lowest min and highest max, the runs summed; the rest (pages, counters, visits)
 * from the median round — the round whose median is the merged one (the lower of the middle two
 * for an even count) — so a figure's time and its counters (nativeMs, which the cold/warm JS
 * ratio subtracts) always come from the same runs. Rounds alternate ours and the kernel's
 * runner, so a slow spell of the machine (another process, memory bandwidth, frequency) lands on
 * both sides instead of on one side's whole figure.
 */
export function mergeRounds<T extends TimedResult>(rounds: readonly (readonly T[])[], key: (r: T) => string): T[] {
  const groups = new Map<string, T[]>();
  for (const round of rounds)
    for (const r of round) {
      const k = key(r);
      const g = groups.get(k);
      if (g) g.push(r); else groups.set(k, [r]);
    }
  return [...groups.values()].map((g) => {
    const mid = [...g].sort((a, b) => a.median_ms - b.median_ms)[(g.length - 1) >> 1];
    return { ...mid, median_ms: median(g.map((r) => r.median_ms)),
      min_ms: Math.min(...g.map((r) => r.min_ms)), max_ms: Math.max(...g.map((r) => r.max_ms)),
      runs: g.reduce((n, r) => n + r.runs, 0) };
  });
}

/** What tells our figures apart (mergeRounds' key for BenchResults). */
export const benchKey = (r: BenchResult) => [r.strategy, r.workload, r.mode, r.device, r.n, r.size, r.note ?? ''].join('|');
/** What tells the JS floors' figures apart. */
export const floorKey = (r: FloorResult) => [r.floor, r.workload, r.mode, r.n, r.size].join('|');

/** Runs expected by runBench and runFloor, for a progress bar's total. */
export function plannedRuns(o: BenchOptions): number {
  let total = 0;
  const groups = new Set(o.workloads.map((w) => (w === 'seed-free' ? 'seed-alloc' : w)));
  if (o.isolate) total += o.strategies.length; // one tick per strategy's child process
  else for (const s of o.strategies) {
    const reps = s === 'linear' ? o.linearReps + 1 : o.reps + o.warmups;
    total += groups.size * (reps + (o.cold ? (s === 'linear' ? Math.min(o.coldReps, o.linearReps) : o.coldReps) : 0));
    if (s !== 'linear' && groups.has('seed-alloc')) total += o.reps; // the fresh-device seed runs
    if (o.dmapoolTest) total += DMAPOOL_TEST_ROWS.length;
  }
  if (o.dmapoolTest) total += FLOORS.length * DMAPOOL_TEST_ROWS.length; // the JS floors' rows
  const fits = fittingFloors(o.n, SEED_SIZE).length;
  if (floorSeedWanted(o)) total += fits * (o.coldReps + 1); // their cold children, one tick for their warm runs
  if (floorRandomWanted(o)) total += fits; // their random-order frees
  return total;
}

const SEED_KERNEL = { alloc: { linear: 350, rbtree: 18 }, free: { linear: 8901, rbtree: 19 } };

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

/** The human table: one block per workload and mode, speed-up over linear, seed ratios beside. */
export function formatTable(results: BenchResult[], floor: FloorResult[] = []): string {
  const lines: string[] = [];
  const keys = [...new Set(results.filter((r) => r.workload !== 'dmapool_test').map((r) => `${r.workload}|${r.mode}|${r.device}`))];
  for (const key of keys) {
    const [workload, mode, device] = key.split('|');
    const rows = results.filter((r) => r.workload === workload && r.mode === mode && r.device === device);
    const base = rows.find((r) => r.strategy === 'linear');
    const title = workload === 'seed-alloc' ? `dma_pool_create() + dma_pool_alloc() loop, size = 128, count = ${rows[0].n}`
      : workload === 'seed-free' ? `dma_pool_free() loop + dma_pool_destroy(), size = 128, count = ${rows[0].n}`
      : workload === 'free-reverse' ? `free in reverse allocation order + destroy, count = ${rows[0].n}`
      : workload === 'free-random' ? `free in random order + destroy, count = ${rows[0].n}`
      : `churn: ${rows[0].n} random alloc/free at 50% occupancy`;
    const how = mode === 'cold' ? ' (median of first runs in fresh processes, min–max)'
      : device === 'kept' ? ' (median of runs after warm-up, min–max; one device kept open, slab cache on: pools after the first reuse mapped slabs)'
      : ' (median of runs after warm-up, min–max; a fresh device per run: every pool maps and unmaps its slabs)';
    lines.push(`${title} — ${mode}${how}`);
    for (const r of rows) {
      const speed = base ? `${(base.median_ms / r.median_ms).toFixed(0).padStart(5)}x` : '';
      const range = r.runs > 1 ? `  [${fmt(r.min_ms)}–${fmt(r.max_ms)}]` : '';
      const seedRef = (workload === 'seed-alloc' || workload === 'seed-free') && (r.strategy === 'linear' || r.strategy === 'rbtree')
        ? `  (seed kernel: ${SEED_KERNEL[workload === 'seed-alloc' ? 'alloc' : 'free'][r.strategy]} ms)` : '';
      const visits = `  visits ${r.visits.toLocaleString('en-US')}`;
      lines.push(`  ${r.strategy.padEnd(7)} ${fmt(r.median_ms).padStart(8)} ms ${speed}${range}${visits}${seedRef}${r.note && mode === 'warm' ? `  — ${r.note}` : ''}`);
    }
    if (base && (workload === 'seed-alloc' || workload === 'seed-free')) {
      const rb = rows.find((r) => r.strategy === 'rbtree');
      if (rb) {
        const ours = base.median_ms / rb.median_ms;
        const seed = workload === 'seed-alloc' ? 350 / 18 : 8901 / 19;
        lines.push(`  linear/rbtree: ${ours.toFixed(0)}x here vs ${seed.toFixed(0)}x in the seed`);
      }
    }
    const c = rows[0].counters;
    lines.push(`  provider per run: ${c.nativeCalls} native calls, ${c.iommuMaps} IOMMU maps, ${c.iommuUnmaps} unmaps, ` +
      `${c.slabsMapped} slabs mapped, ${c.slabsReused} reused from the slab cache, ${c.slabsUnmapped} unmapped, ` +
      `${(c.bytesMapped / 2 ** 20).toFixed(0)} MiB mapped, ${c.nativeMs.toFixed(1)} ms in native calls; ${rows[0].pages} pages`);
    lines.push('');
  }
  const cw = coldWarm(results);
  if (cw.length) {
    lines.push('cold / warm (cold: first run of a fresh process, fresh device; ÷ warm on a fresh device, like for like — and ÷ warm on the kept device;' +
      ' JS: both without their native calls\' time, i.e. the JIT\'s share apart from the kernel\'s page work)');
    for (const r of cw)
      lines.push(`  ${r.strategy.padEnd(7)} ${r.workload.padEnd(11)} ${r.cold_over_fresh.toFixed(2).padStart(6)}  ` +
        `(${r.cold_over_kept === undefined ? '—' : r.cold_over_kept.toFixed(2)} vs kept; JS ${r.js_cold_over_fresh.toFixed(2)})`);
    const fcw = floorColdWarm(floor);
    if (fcw.length) {
      lines.push('  the JS floors, the same seed loops on the rulers (first run of a fresh process ÷ warm): the JIT\'s tier-up and ' +
        'their own arrays\' first touches, no slabs mapped — the least a JavaScript pool of each kind pays in its first run over its warm one');
      for (const r of fcw)
        lines.push(`  ${r.floor.padEnd(13)} ${r.workload.padEnd(11)} ${r.cold_over_warm.toFixed(2).padStart(6)}  ` +
          `(cold ${fmt(r.cold_ms)} ms, warm ${fmt(r.warm_ms)} ms: +${fmt(r.cold_ms - r.warm_ms)} ms)`);
    }
    lines.push('');
  }
  const dt = results.filter((r) => r.workload === 'dmapool_test');
  if (dt.length) {
    lines.push('dmapool_test (kernel lib/dmapool_test.c): 100 iterations of alloc-all then free-all');
    for (const r of dt) {
      lines.push(`  dmapool_test: size:${String(r.size).padEnd(4)} ${r.note?.replace('align ', 'align:').replace('boundary ', 'boundary:')} ` +
        `blocks:${String(r.n).padEnd(4)} time:${Math.round(r.median_ms * 1000)}  (${r.strategy})`);
    }
    for (const f of floor.filter((x) => x.workload === 'dmapool_test'))
      lines.push(`  dmapool_test: size:${String(f.size).padEnd(4)} blocks:${String(f.n).padEnd(4)} time:${Math.round(f.median_ms * 1000)}  ` +
        `(${f.floor}: ${FLOOR_LABELS[f.floor]})`);
    lines.push('');
  }
  lines.push('metadata per 4 KiB page (size 128): ' + seedBookkeeping(results).map(([s, b]) => `${s} ${b.toFixed(0)} B`).join(', '));
  return lines.join('\n');
}
