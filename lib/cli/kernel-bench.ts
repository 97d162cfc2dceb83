/**
 * `dmapool bench --kernel`: Linux's own mm/dmapool.c (Debian's linux-source-6.1 and -6.12,
 * fetched and compiled at bench time by scripts/kernel-dmapool/build.sh into ~/.cache/dmapool,
 * never shipped) run through the same loops as ours, in the same bench run, with ratios
 * ours / Linux 6.12.
 *
 * Memory behind the kernel's dma_alloc_coherent() (runner --memory):
 *  - heap: glibc's heap, kept resident and prewarmed (aligned_alloc + memset, no syscalls): the
 *    cheap case, like a kernel page allocator recycling warm pages;
 *  - slab: fresh 2 MiB slabs mmapped and mlocked (populated) per pool and unmapped at destroy,
 *    which is what our `sim` provider pays in every run: like for like;
 *  - page: one fresh mmap(MAP_POPULATE) per dma_alloc_coherent() call (not run by default).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BENCH_SLAB_CACHE, BenchDevice, BenchResult, dmapoolTestRuns, FLOOR_BOUNDS, FLOOR_LABELS, type FloorResult, mergeRounds, seedBookkeeping, TimedResult, timing, Workload } from './bench';
import { FLOORS, type FloorKind } from './js-floor';

export const KERNEL_SERIES = ['6.1', '6.12'] as const;
export type KernelSeries = (typeof KERNEL_SERIES)[number];
export const KERNEL_MEMORIES = ['heap', 'slab', 'page'] as const;
export type KernelMemory = (typeof KERNEL_MEMORIES)[number];
/** The kernel the ratios are taken against. */
export const RATIO_KERNEL: KernelSeries = '6.12';

/** What build.sh printed for one series. */
export interface KernelBuild {
  series: string;
  version?: string;
  runner?: string;
  /** mm/dmapool_test.c was compiled in (6.12); else the runner's port of its loop is used. */
  dmapool_test?: boolean;
  error?: string;
}

/** One runner process's JSON (scripts/kernel-dmapool/runner.c). */
export interface KernelRunnerOutput {
  kernel: string;
  memory: KernelMemory;
  slab_size: number;
  n: number;
  size: number;
  reps: number;
  warmups: number;
  prewarm: boolean;
  pages: number;
  coherent_allocs_per_run: number;
  mmaps_per_run: number;
  munmaps_per_run: number;
  /** The chain pool's line of the kernel's own `pools` file after the alloc loop. */
  pools: string;
  results: { workload: string; runs_ms: number[] }[];
  dmapool_test_source: string;
  dmapool_test: { size: number; align: number; boundary: number; blocks: number; runs_us: number[] }[];
}

/** One kernel figure; `pages` counts dma_alloc_coherent calls of a seed run (0 for dmapool_test rows). */
export interface KernelResult extends TimedResult {
  kernel: string;
  /** Debian package version of linux-source-<kernel>. */
  version: string;
  memory: KernelMemory;
  mode: 'warm';
  align?: number;
  boundary?: number;
  /** dmapool_test rows: mm/dmapool_test.c itself, or the runner's port of its loop (6.1). */
  source?: string;
}

/** One runner process: what it measured on and with. */
export interface KernelRun {
  kernel: string;
  version: string;
  memory: KernelMemory;
  pages: number;
  mmaps_per_run: number;
  munmaps_per_run: number;
  pools: string;
  dmapool_test_source: string;
}

/** ours / Linux 6.12, warm medians; < 1 means ours is faster. */
export interface KernelRatio {
  strategy: string;
  workload: string;
  size: number;
  kernel: string;
  memory: KernelMemory;
  ours_ms: number;
  kernel_ms: number;
  ratio: number;
  /**
   * With several rounds: the same ratio round by round (that round's ours ÷ that round's kernel
   * figure), in round order — the spread the ratio of the merged medians hides.
   */
  round_ratios?: number[];
}

export interface KernelBench {
  builds: KernelBuild[];
  runs: KernelRun[];
  results: KernelResult[];
  ratios: KernelRatio[];
  /** One line per kernel that could not be built or run, saying why. */
  errors: string[];
}

export interface KernelBenchOptions {
  memories: KernelMemory[];
  workloads: Workload[];
  n: number;
  reps: number;
  warmups: number;
  /** Repetitions for 6.1 (its page-list walks make each free loop take seconds, like linear). */
  slowReps: number;
  dmapoolTest: boolean;
  tick?: (label: string) => void;
}

/** The build script, from the compiled dist/lib/cli (repo checkout, package) or lib/cli (ts sources). */
export function buildScript(): string | undefined {
  for (const p of [path.join(__dirname, '..', '..', '..', 'scripts', 'kernel-dmapool', 'build.sh'),
    path.join(__dirname, '..', '..', 'scripts', 'kernel-dmapool', 'build.sh')])
    if (fs.existsSync(p)) return p;
  return undefined;
}

export function cacheDir(): string {
  return process.env.DMAPOOL_CACHE || path.join(os.homedir(), '.cache', 'dmapool');
}

/** build.sh's stdout: one JSON object per line; other lines are ignored. */
export function parseBuildOutput(stdout: string): KernelBuild[] {
  const out: KernelBuild[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const j = JSON.parse(t) as KernelBuild;
      if (typeof j.series === 'string') out.push(j);
    } catch { /* not ours */ }
  }
  return out;
}

/**
 * Fetches (if needed) and builds the runners. `log` receives build.sh's progress lines (stderr);
 * never throws: a series that cannot be built comes back with `error`.
 */
export function buildKernelRunners(series: string[], opts: { log?: (line: string) => void; offline?: boolean } = {}): KernelBuild[] {
  const script = buildScript();
  if (!script) return series.map((s) => ({ series: s, error: 'scripts/kernel-dmapool/build.sh is not in this installation' }));
  const env = { ...process.env, ...(opts.offline ? { DMAPOOL_KERNEL_OFFLINE: '1' } : {}) };
  const r = spawnSync('bash', [script, ...series], { encoding: 'utf8', env, maxBuffer: 64 << 20, timeout: 30 * 60_000,
    stdio: ['ignore', 'pipe', 'pipe'] });
  if (opts.log) for (const l of (r.stderr ?? '').split('\n')) if (l.trim()) opts.log(l);
  const builds = parseBuildOutput(r.stdout ?? '');
  const why = r.error ? r.error.message : `build.sh exited with ${r.status ?? r.signal}`;
  return series.map((s) => builds.find((b) => b.series === s) ?? { series: s, error: why });
}

/** Parses one runner's JSON, checking the fields we use. */
export function parseRunnerOutput(json: string): KernelRunnerOutput {
  const j = JSON.parse(json) as KernelRunnerOutput;
  if (typeof j.kernel !== 'string' || !Array.isArray(j.results) || !Array.isArray(j.dmapool_test) ||
      !KERNEL_MEMORIES.includes(j.memory))
    throw new Error('kernel runner: unexpected output');
  for (const r of j.results)
    if (typeof r.workload !== 'string' || !Array.isArray(r.runs_ms) || !r.runs_ms.length || r.runs_ms.some((x) => typeof x !== 'number'))
      throw new Error(`kernel runner: bad result for ${r.workload}`);
  return j;
}


/** A runner's output as KernelResults (seed workloads, then dmapool_test rows). */
export function kernelResults(series: string, version: string, o: KernelRunnerOutput): KernelResult[] {
  const out: KernelResult[] = [];
  for (const r of o.results)
    out.push({ kernel: series, version, memory: o.memory, workload: r.workload, mode: 'warm', n: o.n, size: o.size,
      ...timing(r.runs_ms), pages: o.pages });
  for (const d of o.dmapool_test) {
    if (!d.runs_us.length) continue;
    out.push({ kernel: series, version, memory: o.memory, workload: 'dmapool_test', mode: 'warm', n: d.blocks, size: d.size,
      ...timing(d.runs_us.map((u) => u / 1000)), pages: 0, align: d.align, boundary: d.boundary, source: o.dmapool_test_source });
  }
  return out;
}

/** Our dmapool_test rows carry align/boundary in their note ("align 32 boundary 4096"). */
function noteAlign(r: BenchResult): { align?: number; boundary?: number } {
  const m = /align (\d+) boundary (\d+)/.exec(r.note ?? '');
  return m ? { align: Number(m[1]), boundary: Number(m[2]) } : {};
}

/**
 * The device variant of ours that is like for like with a kernel memory variant: warm heap
 * (memory the allocator had before) ↔ our kept device (slab cache: slabs mapped before); fresh
 * slabs or pages per pool ↔ our fresh device per run (every pool maps its slabs).
 */
export function oursDeviceFor(memory: KernelMemory): BenchDevice {
  return memory === 'heap' ? 'kept' : 'fresh';
}

/**
 * ours / Linux `kernel` for every warm figure of ours that the kernel has too, per memory variant
 * (like for like: oursDeviceFor); and the JS floors' warm figures (dmapool_test rows, the seed pair)
 * ÷ the kernel's on warm heap (strategy: the floor's name, FLOORS).
 */
export function kernelRatios(ours: BenchResult[], kernels: KernelResult[], kernel: string = RATIO_KERNEL,
  floor: FloorResult[] = []): KernelRatio[] {
  const out: KernelRatio[] = [];
  for (const k of kernels) {
    if (k.kernel !== kernel) continue;
    if (k.memory === 'heap') {
      // the floors' warm figures of the same workload, size and count (dmapool_test rows; the seed pair with cold figures on)
      for (const f of floor.filter((x) => x.mode === 'warm' && x.workload === k.workload && x.size === k.size && x.n === k.n))
        out.push({ strategy: f.floor, workload: k.workload, size: k.size, kernel, memory: k.memory,
          ours_ms: f.median_ms, kernel_ms: k.median_ms, ratio: f.median_ms / k.median_ms });
    }
    for (const r of ours) {
      if (r.mode !== 'warm' || r.workload !== k.workload || (r.device ?? 'kept') !== oursDeviceFor(k.memory)) continue;
      if (k.workload === 'dmapool_test') {
        const a = noteAlign(r);
        if (r.size !== k.size || r.n !== k.n || (a.align !== undefined && a.align !== k.align) ||
            (a.boundary !== undefined && a.boundary !== k.boundary)) continue;
      } else if (r.n !== k.n || r.size !== k.size) continue;
      out.push({ strategy: r.strategy, workload: r.workload, size: r.size, kernel, memory: k.memory,
        ours_ms: r.median_ms, kernel_ms: k.median_ms, ratio: r.median_ms / k.median_ms });
    }
  }
  return out;
}

/** What tells ratios apart (the same figure in every round). */
const ratioKey = (r: KernelRatio) => [r.strategy, r.workload, r.size, r.kernel, r.memory].join('|');

/**
 * The ratios of the merged rounds (`merged`), each with the ratios of the same figure in every
 * round (`rounds`, in round order) when there are several. A round runs ours and then the
 * kernel's runner, so a round's ratio sets figures measured minutes apart against each other.
 */
export function withRoundRatios(merged: readonly KernelRatio[], rounds: readonly (readonly KernelRatio[])[]): KernelRatio[] {
  if (rounds.length < 2) return [...merged];
  const per = new Map<string, number[]>();
  for (const round of rounds)
    for (const r of round) {
      const k = ratioKey(r);
      const list = per.get(k);
      if (list) list.push(r.ratio); else per.set(k, [r.ratio]);
    }
  return merged.map((r) => {
    const list = per.get(ratioKey(r));
    return list && list.length > 1 ? { ...r, round_ratios: list } : { ...r };
  });
}

/** The seed pair's rows, where the issue's bars are: their per-round spread is printed under the ratio table. */
const SPREAD_WORKLOADS: readonly string[] = ['seed-alloc', 'seed-free'];

/** One ratio's rounds: "min–max (k of n ≤ 1.00)". */
function spread(rr: readonly number[]): string {
  const met = rr.filter((x) => x <= 1).length;
  return `${Math.min(...rr).toFixed(2)}–${Math.max(...rr).toFixed(2)} (${met} of ${rr.length} ≤ 1.00)`;
}

/** What tells the kernel's figures apart (mergeRounds' key for KernelResults). */
export const kernelKey = (r: KernelResult) => [r.kernel, r.memory, r.workload, r.n, r.size, r.align ?? '', r.boundary ?? ''].join('|');

/** Several rounds of runKernelBench as one: results merged (mergeRounds), runs of the first round, every distinct error. */
export function mergeKernelRounds(rounds: readonly KernelBench[]): KernelBench {
  return { builds: rounds[0].builds, runs: rounds[0].runs, results: mergeRounds(rounds.map((r) => r.results), kernelKey),
    ratios: [], errors: [...new Set(rounds.flatMap((r) => r.errors))] };
}

/** Runner invocations planned (for a progress bar). */
export function kernelPlannedRuns(builds: KernelBuild[], o: KernelBenchOptions): number {
  return builds.filter((b) => b.runner).length * o.memories.length;
}

/** Runs every built kernel in every memory variant; failures become `errors` lines. */
export function runKernelBench(builds: KernelBuild[], o: KernelBenchOptions): KernelBench {
  const kb: KernelBench = { builds, runs: [], results: [], ratios: [], errors: [] };
  for (const b of builds) if (b.error || !b.runner) kb.errors.push(`Linux ${b.series} mm/dmapool.c not measured: ${b.error ?? 'no runner'}`);
  const workloads = o.workloads.filter((w) => w !== 'dmapool_test');
  for (const b of builds) {
    if (!b.runner || !b.version) continue;
    const slow = b.series === '6.1';
    for (const memory of o.memories) {
      const args = ['--memory', memory, '--n', String(o.n), '--size', '128',
        '--reps', String(Math.max(1, slow ? o.slowReps : o.reps)), '--warmups', String(slow ? 0 : o.warmups)];
      if (workloads.length) args.push('--workloads', workloads.join(','));
      if (o.dmapoolTest) args.push('--dmapool-test', '--dt-reps', String(slow ? 1 : dmapoolTestRuns(o).reps));
      if (!workloads.length && !o.dmapoolTest) continue;
      try {
        const json = execFileSync(b.runner, args, { encoding: 'utf8', maxBuffer: 16 << 20, timeout: 30 * 60_000,
          stdio: ['ignore', 'pipe', 'pipe'] });
        const r = parseRunnerOutput(json);
        kb.runs.push({ kernel: b.series, version: b.version, memory, pages: r.pages, mmaps_per_run: r.mmaps_per_run,
          munmaps_per_run: r.munmaps_per_run, pools: r.pools, dmapool_test_source: r.dmapool_test_source });
        kb.results.push(...kernelResults(b.series, b.version, r));
      } catch (e) {
        const err = e as Error & { stderr?: string };
        const why = (err.stderr ?? '').trim().split('\n').pop() || err.message.split('\n')[0];
        kb.errors.push(`Linux ${b.series} mm/dmapool.c (${memory} memory) not measured: ${why}`);
      }
      o.tick?.(`Linux ${b.series} ${memory}`);
    }
  }
  return kb;
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

const TITLES: Record<string, string> = {
  'seed-alloc': 'create + alloc loop', 'seed-free': 'free loop + destroy', 'free-reverse': 'free reverse + destroy',
  'free-random': 'free random + destroy', churn: 'churn 50%',
};

export const MEMORY_NOTES: Record<KernelMemory, string> = {
  heap: "glibc heap kept resident and prewarmed; dma_alloc_coherent = aligned_alloc + memset, no syscalls (warm memory: the kernel's cheap case)",
  slab: 'fresh 2 MiB slabs mmapped + mlocked (populated, THP) per pool, unmapped at destroy: what our sim provider pays every run (like for like)',
  page: 'one fresh mmap(MAP_POPULATE) per dma_alloc_coherent call, munmap at destroy',
};

/**
 * The kernel's bookkeeping per pool page, from its struct definitions (x86-64): `header` bytes of
 * kmalloc'ed struct dma_page outside DMA memory (its kmalloc size class), and `link` bytes
 * inside every free block — in the DMA memory a device can write.
 *   6.1:  struct dma_page { list_head page_list; void *vaddr; dma_addr_t dma; unsigned in_use, offset; }
 *         = 40 B → kmalloc-64; the free list is an `unsigned int` offset in each free block (4 B).
 *   6.12: struct dma_page { list_head page_list; void *vaddr; dma_addr_t dma; } = 32 B → kmalloc-32;
 *         struct dma_block { dma_block *next_block; dma_addr_t dma; } in each free block (16 B).
 */
export const KERNEL_BOOKKEEPING: Record<string, { header: number; kmalloc: number; link: number }> = {
  '6.1': { header: 40, kmalloc: 64, link: 4 },
  '6.12': { header: 32, kmalloc: 32, link: 16 },
};

/** Bookkeeping per 4 KiB page of the seed pool (size 128: 32 blocks), ours beside the kernel's. */
export function formatBookkeeping(ours: BenchResult[], kernels: string[], blocksPerPage = 32): string[] {
  const lines = [`  bookkeeping per 4 KiB page, size 128 (${blocksPerPage} blocks):`];
  for (const k of kernels) {
    const b = KERNEL_BOOKKEEPING[k];
    if (!b) continue;
    lines.push(`    Linux ${k}: ${b.kmalloc} B outside DMA memory (struct dma_page, ${b.header} B in kmalloc-${b.kmalloc}) + ` +
      `${b.link} B inside each free block (${b.link * blocksPerPage} B of the page's DMA memory when all are free; a device can overwrite them)`);
  }
  const meta = seedBookkeeping(ours);
  if (meta.length)
    lines.push(`    ours: ${meta.map(([st, v]) => `${st} ${v.toFixed(0)} B`).join(', ')} — all outside DMA memory (typed arrays), 0 B inside blocks`);
  return lines;
}

/** The human section printed after our table. */
export function formatKernel(ours: BenchResult[], kb: KernelBench): string {
  const lines: string[] = [];
  for (const e of kb.errors) lines.push(e);
  if (!kb.results.length) return lines.join('\n');
  const cols = [...new Set(kb.results.map((r) => `${r.kernel}|${r.memory}`))];
  const label = (c: string) => { const [k, m] = c.split('|'); return `${k} ${m}`; };
  const versions = [...new Map(kb.results.map((r) => [r.kernel, r.version])).entries()].map(([k, v]) => `${k}: linux-source-${k} ${v}`);
  lines.push(`Linux's own mm/dmapool.c, compiled in userspace, same loops in the same run — warm medians in ms (${versions.join(', ')})`);
  const mems = [...new Set(kb.results.map((r) => r.memory))];
  for (const m of mems) lines.push(`  ${m}: ${MEMORY_NOTES[m]}`);
  const prov = ours[0]?.provider ?? 'sim';
  lines.push(`  ours, kept device (${prov}): one device open across runs, slab cache on (up to ${BENCH_SLAB_CACHE >> 20} MiB): ` +
    'pools after the first reuse mapped slabs, each zeroed (non-temporal stores) when taken from the cache — compared with "heap"');
  lines.push(`  ours, fresh device (${prov}): a device opened per run; every pool maps (populate + mlock) and unmaps its slabs — ` +
    'compared with "slab" and "page"');
  const w = 24;
  lines.push(`  ${'workload'.padEnd(w)}${cols.map((c) => label(c).padStart(13)).join('')}`);
  const rowKeys = [...new Set(kb.results.map((r) => r.workload === 'dmapool_test' ? `dmapool_test|${r.size}|${r.align}|${r.boundary}|${r.n}` : r.workload))];
  for (const key of rowKeys) {
    const [wl, size, align, boundary, n] = key.split('|');
    const match = (r: KernelResult) => r.workload === wl && (wl !== 'dmapool_test' || (String(r.size) === size &&
      String(r.align) === align && String(r.boundary) === boundary && String(r.n) === n));
    const name = wl === 'dmapool_test' ? `dmapool_test ${size}/${align}/${boundary}` : TITLES[wl] ?? wl;
    lines.push(`  ${name.padEnd(w)}${cols.map((c) => {
      const r = kb.results.find((x) => `${x.kernel}|${x.memory}` === c && match(x));
      return (r ? fmt(r.median_ms) : '—').padStart(13);
    }).join('')}`);
  }
  for (const r of kb.runs)
    lines.push(`  Linux ${r.kernel} ${r.memory}: ${r.pages} pages per seed run, ${r.mmaps_per_run} mmaps; pools: ${r.pools.replace(/\s+/g, ' ')}` +
      (r.dmapool_test_source ? `; dmapool_test from ${r.dmapool_test_source}` : ''));
  // what the memory costs, measured: the like-for-like variant minus the warm one
  for (const k of [...new Set(kb.results.map((r) => r.kernel))]) {
    const cost = ['seed-alloc', 'seed-free'].map((wl) => {
      const h = kb.results.find((r) => r.kernel === k && r.memory === 'heap' && r.workload === wl);
      const sl = kb.results.find((r) => r.kernel === k && r.memory === 'slab' && r.workload === wl);
      if (!h || !sl) return undefined;
      const d = sl.median_ms - h.median_ms;
      return `${TITLES[wl]} ${d >= 0 ? '+' : '−'}${fmt(Math.abs(d))} ms`;
    }).filter(Boolean);
    if (cost.length) lines.push(`  Linux ${k}: fresh slabs instead of warm heap cost ${cost.join(', ')}`);
  }
  lines.push(...formatBookkeeping(ours, [...new Set(kb.results.map((r) => r.kernel))]));
  if (kb.ratios.length) {
    lines.push('');
    // our strategies first, then the floors (the rulers), each in a column of its own
    const present = new Set(kb.ratios.map((r) => r.strategy));
    const strategies = [...[...present].filter((st) => !FLOORS.includes(st as FloorKind)), ...FLOORS.filter((f) => present.has(f))];
    lines.push(`ours / Linux ${RATIO_KERNEL} (our warm median ÷ its warm median; ≤ 1.00: ours at least as fast; ` +
      'vs heap: our kept device; vs slab/page: our fresh device)');
    for (const f of FLOORS.filter((x) => strategies.includes(x)))
      lines.push(`  ${f}: ${FLOOR_LABELS[f]} (lib/cli/js-floor.ts), the same loops — ${FLOOR_BOUNDS[f]}`);
    const colW = (st: string) => Math.max(9, st.length + 2); // a floor's name is wider than a strategy's
    lines.push(`  ${'workload'.padEnd(w)}${'vs memory'.padEnd(10)}${strategies.map((st) => st.padStart(colW(st))).join('')}`);
    const rowMems = [...new Set(kb.ratios.map((r) => r.memory))];
    const keys = [...new Set(kb.ratios.map((r) => `${r.workload}|${r.size}`))].flatMap((k) => rowMems.map((m) => `${k}|${m}`));
    for (const key of keys) {
      const [wl, size, m] = key.split('|');
      if (!kb.ratios.some((x) => x.workload === wl && String(x.size) === size && x.memory === m)) continue;
      const name = wl === 'dmapool_test' ? `dmapool_test ${size}` : TITLES[wl] ?? wl;
      lines.push(`  ${name.padEnd(w)}${m.padEnd(10)}${strategies.map((st) => {
        const r = kb.ratios.find((x) => x.workload === wl && String(x.size) === size && x.strategy === st && x.memory === m);
        return (r ? r.ratio.toFixed(2) : '—').padStart(colW(st));
      }).join('')}`);
    }
    // the issue's bar for radix: its random-order free against 6.12's in-order free
    for (const m of rowMems) {
      const radix = ours.find((r) => r.strategy === 'radix' && r.workload === 'free-random' && r.mode === 'warm' &&
        (r.device ?? 'kept') === oursDeviceFor(m));
      const k = kb.results.find((r) => r.kernel === RATIO_KERNEL && r.memory === m && r.workload === 'seed-free');
      if (radix && k) lines.push(`  radix free random / Linux ${RATIO_KERNEL} free in order (${m}): ${(radix.median_ms / k.median_ms).toFixed(2)}`);
      // the same bar for the floors (their ratios are against the kernel's heap figures only)
      if (k)
        for (const f of kb.ratios.filter((r) => FLOORS.includes(r.strategy as FloorKind) && r.workload === 'free-random' && r.memory === m))
          lines.push(`  ${f.strategy} free random / Linux ${RATIO_KERNEL} free in order (${m}): ${(f.ours_ms / k.median_ms).toFixed(2)}`);
    }
    // the seed pair round by round: how far a median's verdict would move in another round
    const spreadRows = kb.ratios.filter((r) => r.round_ratios && SPREAD_WORKLOADS.includes(r.workload) &&
      !FLOORS.includes(r.strategy as FloorKind));
    if (spreadRows.length) {
      lines.push(`  round by round (each round's ours ÷ that round's Linux ${RATIO_KERNEL}; lowest–highest, rounds at or under 1.00):`);
      for (const m of rowMems)
        for (const wl of SPREAD_WORKLOADS) {
          const row = spreadRows.filter((r) => r.memory === m && r.workload === wl);
          if (row.length)
            lines.push(`    ${`${TITLES[wl]} (${m})`.padEnd(w + 8)}${row.map((r) => `${r.strategy} ${spread(r.round_ratios!)}`).join(', ')}`);
        }
    }
  }
  return lines.join('\n');
}
