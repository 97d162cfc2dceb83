/**
 * Scaling curves: ns per alloc and per free vs block count n (10^3 … 10^6, log steps) for every
 * strategy, written as CSV and as an SVG chart rendered headless by vega-lite + vega (log axes),
 * so O(pages) vs O(log pages) vs O(1) is visible at a glance. Each point is the median of its
 * rounds with the min–max of those rounds drawn as a band.
 *
 * vega and vega-lite are optional peer dependencies: a library user never installs or loads
 * them; `bench --scaling` loads them first (loadChartLibraries) and says how to install them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { median, STRATEGIES } from './bench';
import { DmaPoolError } from '../errors';
import type { Device } from '../device';
import { openDevice } from '../open';
import type { IndexKind } from '../index/page-index';

export interface ScalingPoint {
  strategy: IndexKind;
  op: 'alloc' | 'free';
  n: number;
  /** Median over the timed rounds. */
  ns_per_op: number;
  /** Fastest and slowest timed round (the chart's band). */
  ns_min: number;
  ns_max: number;
  /** Timed rounds behind the point. */
  runs: number;
}

export const DEFAULT_NS = [1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6];

/**
 * One round: a fresh pool (created untimed), then the timed n × alloc loop and the timed n × free
 * loop (destroy untimed), so fixed costs (mmap, munmap) do not hide the per-operation curve.
 */
function round(dev: Device, strategy: IndexKind, n: number, dma: Float64Array): [number, number] {
  const pool = dev.createPool('scaling', 128, { index: strategy });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) dma[i] = pool.alloc();
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) pool.free(dma[i]);
  const t2 = process.hrtime.bigint();
  pool.destroy();
  return [Number(t1 - t0) / n, Number(t2 - t1) / n];
}

export function runScaling(provider: string, strategies: readonly IndexKind[] = STRATEGIES, ns = DEFAULT_NS,
  reps = 5, tick?: (label: string) => void): ScalingPoint[] {
  const out: ScalingPoint[] = [];
  const dev = openDevice(provider);
  try {
    for (const strategy of strategies) {
      for (const n of ns) {
        const dma = new Float64Array(n);
        // linear's free loop is O(n · pages): at the large end one round is plenty
        const slow = strategy === 'linear' && n >= 1e5;
        const warm = slow ? 0 : Math.max(3, Math.min(30, Math.round(2e5 / n)));
        const r = slow ? 1 : reps;
        for (let i = 0; i < warm; i++) round(dev, strategy, n, dma);
        const a: number[] = [], f: number[] = [];
        for (let i = 0; i < r; i++) { const [x, y] = round(dev, strategy, n, dma); a.push(x); f.push(y); }
        out.push({ strategy, op: 'alloc', n, ns_per_op: median(a), ns_min: Math.min(...a), ns_max: Math.max(...a), runs: r });
        out.push({ strategy, op: 'free', n, ns_per_op: median(f), ns_min: Math.min(...f), ns_max: Math.max(...f), runs: r });
        tick?.(`${strategy} n=${n}`);
      }
    }
  } finally {
    dev.close();
  }
  return out;
}

export function toCsv(points: ScalingPoint[]): string {
  return 'strategy,op,n,ns_per_op,ns_min,ns_max,runs\n' + points.map((p) =>
    `${p.strategy},${p.op},${p.n},${p.ns_per_op.toFixed(1)},${p.ns_min.toFixed(1)},${p.ns_max.toFixed(1)},${p.runs}`).join('\n') + '\n';
}

/**
 * Points from a CSV written by toCsv; older CSVs without ns_min, ns_max and runs give NaN there
 * (the chart then draws no band).
 */
export function fromCsv(text: string): ScalingPoint[] {
  const [head, ...rows] = text.trim().split('\n');
  const cols = head!.split(',');
  const at = (r: string[], c: string) => { const i = cols.indexOf(c); return i < 0 ? NaN : Number(r[i]); };
  return rows.map((line) => {
    const r = line.split(',');
    return { strategy: r[cols.indexOf('strategy')] as IndexKind, op: r[cols.indexOf('op')] as 'alloc' | 'free', n: at(r, 'n'),
      ns_per_op: at(r, 'ns_per_op'), ns_min: at(r, 'ns_min'), ns_max: at(r, 'ns_max'), runs: at(r, 'runs') };
  });
}

const ORDER: string[] = [...STRATEGIES]; // legend order: the one strategy list
// per strategy (in ORDER), the same whichever subset is drawn
const COLORS = ['#d62728', '#1f77b4', '#ff7f0e', '#2ca02c'];
const DASHES = [[1, 0], [6, 3], [2, 2], [8, 2, 2, 2]];
const SHAPES = ['square', 'circle', 'triangle-up', 'diamond'];

/**
 * The vega-lite spec of the chart: one panel per operation, log–log; per strategy a line with its
 * own colour, dash and marker shape (rbtree and stack stay apart in grey print too) over a band
 * from the fastest to the slowest round; x ticks exactly at the measured n.
 */
export function chartSpec(points: ScalingPoint[], title: string, provider = 'sim'): object {
  const ns = [...new Set(points.map((p) => p.n))].sort((a, b) => a - b);
  const strategy = { field: 'strategy', type: 'nominal', sort: ORDER, title: 'index' };
  const shown = ORDER.map((k, i) => [k, i] as const).filter(([k]) => points.some((p) => p.strategy === k));
  const scale = (range: unknown[]) => ({ domain: shown.map(([k]) => k), range: shown.map(([, i]) => range[i]) });
  const color = { ...strategy, scale: scale(COLORS) };
  const rounds = [...new Set(points.map((p) => p.runs).filter(Number.isFinite))].sort((a, b) => a - b);
  const spread = points.some((p) => Number.isFinite(p.ns_min) && Number.isFinite(p.ns_max));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: [
      `ns per operation vs blocks in the pool (log–log); size 128, ${provider} provider`,
      spread ? `line: median of ${rounds.at(-1)} timed rounds per point${rounds.length > 1 ? ` (${rounds.slice(0, -1).join(', ')} where a round is slow)` : ''}; band: fastest–slowest round`
        : 'line: median per point (this data set records no per-round spread)'] },
    data: { values: points },
    facet: { column: { field: 'op', type: 'nominal', title: null, sort: ['alloc', 'free'],
      header: { labelExpr: "datum.value == 'alloc' ? 'n × alloc (fresh pool)' : 'n × free'", labelFontSize: 13 } } },
    spec: {
      width: 360, height: 280,
      encoding: {
        x: { field: 'n', type: 'quantitative', scale: { type: 'log', domain: [ns[0], ns[ns.length - 1]], nice: false },
          title: 'blocks (n)', axis: { values: ns, format: '~s', grid: true } },
      },
      layer: [
        // the band's colour comes from the data (scale: null), so the one legend shows line + marker
        { mark: { type: 'area', opacity: 0.18 }, transform: [{ filter: 'isFinite(datum.ns_min) && isFinite(datum.ns_max)' },
          { calculate: `${JSON.stringify(Object.fromEntries(ORDER.map((k, i) => [k, COLORS[i]])))}[datum.strategy]`, as: 'band_color' }],
          encoding: { fill: { field: 'band_color', type: 'nominal', scale: null }, detail: { field: 'strategy' },
            y: { field: 'ns_min', type: 'quantitative', scale: { type: 'log' }, title: 'ns per operation', axis: { format: '~s' } },
            y2: { field: 'ns_max' } } },
        { mark: { type: 'line', strokeWidth: 1.8 },
          encoding: { color, y: { field: 'ns_per_op', type: 'quantitative', title: 'ns per operation' },
            strokeDash: { ...strategy, scale: scale(DASHES) } } },
        { mark: { type: 'point', filled: true, size: 45, opacity: 1 },
          encoding: { color, y: { field: 'ns_per_op', type: 'quantitative', title: 'ns per operation' },
            shape: { ...strategy, scale: scale(SHAPES) },
            tooltip: [{ field: 'strategy' }, { field: 'n' }, { field: 'ns_per_op', format: '.1f' },
              { field: 'ns_min', format: '.1f' }, { field: 'ns_max', format: '.1f' }, { field: 'runs' }] } },
      ],
    },
    config: { background: 'white', legend: { symbolStrokeWidth: 1.8 } },
  };
}

type ChartLibraries = { vl: typeof import('vega-lite'); vega: typeof import('vega') };

/**
 * Loads vega-lite and vega (optional peer dependencies; only the chart needs them). Absent, a
 * DmaPoolError ENOENT whose hint is the one install line. `load` is the seam tests replace.
 */
export async function loadChartLibraries(load: (name: string) => Promise<unknown> = (name) => import(name)): Promise<ChartLibraries> {
  try {
    const vl = await load('vega-lite') as ChartLibraries['vl'];
    const vega = await load('vega') as ChartLibraries['vega'];
    return { vl, vega };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
    throw new DmaPoolError('ENOENT', 'bench --scaling draws its chart with vega and vega-lite, which are not installed (optional: the library does not need them)',
      { hint: 'npm install vega@^6 vega-lite@^6', cause: e });
  }
}

/** Renders the chart to SVG headless (vega's SVG renderer needs no canvas). */
export async function renderSvg(points: ScalingPoint[], title: string, provider = 'sim', libs?: ChartLibraries): Promise<string> {
  const { vl, vega } = libs ?? await loadChartLibraries();
  const compiled = vl.compile(chartSpec(points, title, provider) as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeScaling(points: ScalingPoint[], dir: string, title: string, provider = 'sim', libs?: ChartLibraries): Promise<{ csv: string; svg: string }> {
  const svgText = await renderSvg(points, title, provider, libs);
  fs.mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, 'scaling.csv');
  const svg = path.join(dir, 'scaling.svg');
  fs.writeFileSync(csv, toCsv(points));
  fs.writeFileSync(svg, svgText);
  return { csv, svg };
}
