/**
 * Scaling curves: ns per alloc and per free vs block count n (10^3 … 10^6, log steps) for every
 * strategy, written as CSV and as an SVG chart rendered headless by vega-lite + vega (log axes),
 * so O(pages) vs O(log pages) vs O(1) is visible at a glance.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { median, STRATEGIES } from './bench';
import type { Device } from '../device';
import { openDevice } from '../open';
import type { IndexKind } from '../index/page-index';

export interface ScalingPoint {
  strategy: IndexKind;
  op: 'alloc' | 'free';
  n: number;
  ns_per_op: number;
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
        out.push({ strategy, op: 'alloc', n, ns_per_op: median(a) });
        out.push({ strategy, op: 'free', n, ns_per_op: median(f) });
        tick?.(`${strategy} n=${n}`);
      }
    }
  } finally {
    dev.close();
  }
  return out;
}

export function toCsv(points: ScalingPoint[]): string {
  return 'strategy,op,n,ns_per_op\n' + points.map((p) => `${p.strategy},${p.op},${p.n},${p.ns_per_op.toFixed(1)}`).join('\n') + '\n';
}

/** The vega-lite spec of the chart: one panel per operation, log–log, a line per strategy. */
export function chartSpec(points: ScalingPoint[], title: string, provider = 'sim'): object {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: `ns per operation vs blocks in the pool (log–log); size 128, ${provider} provider` },
    data: { values: points },
    facet: { column: { field: 'op', type: 'nominal', title: null, sort: ['alloc', 'free'],
      header: { labelExpr: "datum.value == 'alloc' ? 'n × alloc (fresh pool)' : 'n × free'", labelFontSize: 13 } } },
    spec: {
      width: 360, height: 280,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'blocks (n)', axis: { format: '~s' } },
        y: { field: 'ns_per_op', type: 'quantitative', scale: { type: 'log' }, title: 'ns per operation' },
        color: { field: 'strategy', type: 'nominal', sort: [...STRATEGIES], title: 'index' },
        tooltip: [{ field: 'strategy' }, { field: 'n' }, { field: 'ns_per_op', format: '.1f' }],
      },
    },
    config: { background: 'white' },
  };
}

/** Renders the chart to SVG headless (vega's SVG renderer needs no canvas). */
export async function renderSvg(points: ScalingPoint[], title: string, provider = 'sim'): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vl.compile(chartSpec(points, title, provider) as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeScaling(points: ScalingPoint[], dir: string, title: string, provider = 'sim'): Promise<{ csv: string; svg: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, 'scaling.csv');
  const svg = path.join(dir, 'scaling.svg');
  fs.writeFileSync(csv, toCsv(points));
  fs.writeFileSync(svg, await renderSvg(points, title, provider));
  return { csv, svg };
}
