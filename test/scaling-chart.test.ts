/**
 * The scaling chart (bench --scaling): its optional chart libraries, its ticks, markers, dashes
 * and min–max bands. Timing values are not asserted (speed is shown by `npm run bench`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DmaPoolError } from '../lib/errors';
import { chartSpec, fromCsv, loadChartLibraries, renderSvg, runScaling, toCsv, type ScalingPoint } from '../lib/cli/scaling';
import { STRATEGIES } from '../lib/cli/bench';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

/** An ESM resolve hook that makes vega and vega-lite unresolvable, as in a library user's install. */
function hideChartLibraries(dir: string): string {
  const hook = path.join(dir, 'hide-hook.mjs');
  fs.writeFileSync(hook, `export async function resolve(spec, ctx, next) {
  if (spec === 'vega' || spec === 'vega-lite') {
    const e = new Error("Cannot find package '" + spec + "'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e;
  }
  return next(spec, ctx);
}\n`);
  const reg = path.join(dir, 'hide.mjs');
  fs.writeFileSync(reg, `import { register } from 'node:module';\nregister(${JSON.stringify('file://' + hook)});\n`);
  return reg;
}

describe('scaling chart', () => {
  it('vega and vega-lite are optional: absent, loadChartLibraries is ENOENT with the one install line', async () => {
    const missing = async (name: string) => { throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' }); };
    await assert.rejects(loadChartLibraries(missing), (e: unknown) => {
      assert.ok(e instanceof DmaPoolError);
      assert.equal(e.code, 'ENOENT');
      assert.match(e.message, /vega and vega-lite/);
      assert.equal(e.hint, 'npm install vega@^6 vega-lite@^6');
      return true;
    });
    // any other failure is passed through, not disguised as "not installed"
    const broken = async () => { throw new SyntaxError('bad module'); };
    await assert.rejects(loadChartLibraries(broken), SyntaxError);
    const libs = await loadChartLibraries();
    assert.equal(typeof libs.vl.compile, 'function');
    assert.equal(typeof libs.vega.View, 'function');
  });

  it('bench --scaling without the chart libraries exits 1 before measuring, with the install hint', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-nochart-'));
    try {
      const out = path.join(dir, 'out');
      const r = spawnSync(process.execPath, ['--import', hideChartLibraries(dir), CLI, 'bench', '--device', 'sim', '--scaling', out],
        { encoding: 'utf8', timeout: 60000 });
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.deepEqual(lines, [
        'dmapool: ENOENT: bench --scaling draws its chart with vega and vega-lite, which are not installed (optional: the library does not need them)',
        'hint: npm install vega@^6 vega-lite@^6']);
      assert.equal(fs.existsSync(out), false, 'nothing measured or written');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('points carry the min–max of their rounds, and the CSV has them', () => {
    const pts = runScaling('sim', ['rbtree'], [1000, 3000], 3);
    assert.equal(pts.length, 4);
    for (const p of pts) {
      assert.equal(p.runs, 3);
      assert.ok(p.ns_min <= p.ns_per_op && p.ns_per_op <= p.ns_max, JSON.stringify(p));
    }
  });

  it('fromCsv reads what toCsv wrote, and an older CSV without spread (no band then)', async () => {
    const pts = runScaling('sim', ['stack'], [1000], 2);
    const back = fromCsv(toCsv(pts));
    assert.equal(back.length, pts.length);
    for (const [i, p] of pts.entries()) {
      assert.equal(back[i]!.strategy, p.strategy);
      assert.equal(back[i]!.runs, 2);
      assert.equal(back[i]!.ns_min, Number(p.ns_min.toFixed(1)));
    }
    const old = fromCsv('strategy,op,n,ns_per_op\nrbtree,alloc,1000,30.5\nrbtree,free,1000,40.0\n');
    assert.deepEqual(old.map((p) => [p.strategy, p.op, p.n, p.ns_per_op]), [['rbtree', 'alloc', 1000, 30.5], ['rbtree', 'free', 1000, 40]]);
    assert.ok(Number.isNaN(old[0]!.ns_min) && Number.isNaN(old[0]!.runs));
    const svg = await renderSvg(old, 'old csv');
    assert.ok(!svg.includes('aria-roledescription="area mark" d="M'), 'no band without spread');
    assert.ok(svg.includes('records no per-round spread'));
  });

  it('the chart: x ticks exactly at the measured n, a dash and a marker per strategy, a min–max band', async () => {
    const pts: ScalingPoint[] = [];
    for (const [i, strategy] of (['linear', 'rbtree', 'stack', 'radix'] as const).entries())
      for (const n of [1000, 3000, 10000, 30000])
        for (const op of ['alloc', 'free'] as const)
          pts.push({ strategy, op, n, ns_per_op: 100 + 10 * i, ns_min: 90 + 10 * i, ns_max: 130 + 10 * i, runs: 5 });
    const spec = chartSpec(pts, 't') as { spec: { encoding: { x: { axis: { values: number[] } } }; layer: { mark: { type: string }; encoding: Record<string, { field?: string; scale?: { range: unknown[] } }> }[] } };
    assert.deepEqual(spec.spec.encoding.x.axis.values, [1000, 3000, 10000, 30000]);
    const [band, line, point] = spec.spec.layer;
    assert.equal(band!.mark.type, 'area');
    assert.equal(band!.encoding.y!.field, 'ns_min');
    assert.equal(band!.encoding.y2!.field, 'ns_max');
    const dashes = line!.encoding.strokeDash!.scale!.range.map((d) => JSON.stringify(d));
    const shapes = point!.encoding.shape!.scale!.range;
    assert.equal(new Set(dashes).size, 4, 'four distinct dashes');
    assert.equal(new Set(shapes).size, 4, 'four distinct markers');
    // a subset keeps each strategy's own marker and dash
    const sub = chartSpec(pts.filter((p) => p.strategy === 'rbtree' || p.strategy === 'radix'), 't') as typeof spec;
    const subShape: { domain: string[]; range: string[] } = Object(sub.spec.layer[2]!.encoding.shape!.scale);
    const at = (k: string) => shapes[STRATEGIES.indexOf(k as (typeof STRATEGIES)[number])];
    assert.deepEqual(subShape, { domain: ['rbtree', 'radix'], range: [at('rbtree'), at('radix')] });

    const svg = await renderSvg(pts, 'ticks');
    const labels = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    for (const t of ['1k', '3k', '10k', '30k']) assert.ok(labels.includes(t), `tick ${t} in ${labels.join(' ')}`);
    for (const t of ['2k', '20k', '5k']) assert.ok(!labels.includes(t), `no tick ${t} where there is no data`);
    // the bands are drawn: one filled area path per strategy and panel
    assert.equal((svg.match(/aria-roledescription="area mark" d="[^"]+" fill="#[0-9a-f]{6}" opacity="0.18"/g) ?? []).length, 8, "a min–max band per strategy and panel");
  });
});
