/**
 * Safety issue: the public-API fuzzer — ≥ 10^6 random operations per run over several devices and
 * pools interleaved (alloc, zalloc, free, writes through views, destroy, close, bad addresses,
 * JS detach attempts; the bulk API allocMany/zallocMany/freeMany with hostile batches, dataView,
 * dmaToBigInt/dmaFromBigInt), against a model, with byte patterns checked for cross-pool corruption.
 * The engine and everything it checks: test/fuzz/api-fuzzer.ts.
 *
 *   DMAPOOL_FUZZ_SEED=<n>      replay a run (the seed is printed)
 *   DMAPOOL_FUZZ_API_OPS=<n>   operations (default 1 000 000)
 *   DMAPOOL_FUZZ_API_SKIP=a,b  operation kinds left out (bisecting a failure), e.g. detach-stream,detach-clone
 */
import assert from 'node:assert/strict';
import { DmaPool } from '../lib';
import { ApiFuzzer, formatApiFuzzResult as summary } from './fuzz/api-fuzzer';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

describe('public API fuzzer (devices × pools × views, against a model)', function () {
  this.timeout(1_200_000); // a hang guard: 1M ops take 100–230 s on a quiet 2-core host, 10 min when loaded

  it('≥ 10^6 random operations: every result as the model predicts, no byte of a live block changes, views confined and detached', async () => {
    const seed = envInt('DMAPOOL_FUZZ_SEED', (Date.now() ^ (process.pid << 16)) >>> 0);
    const ops = envInt('DMAPOOL_FUZZ_API_OPS', 1_000_000);
    console.log(`    API fuzzer seed ${seed} (DMAPOOL_FUZZ_SEED=${seed} replays), ${ops} ops`);
    const skip = (process.env.DMAPOOL_FUZZ_API_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (skip.length) console.log(`    skipping: ${skip.join(', ')}`);
    const fuzzer = new ApiFuzzer({ seed, ops, skip, log: (l) => console.log(`    ${l}`) });
    const r = await fuzzer.run();
    console.log(summary(r).split('\n').map((l) => `    ${l}`).join('\n'));
    assert.ok(r.ops >= ops, `ran ${r.ops} ops, want ≥ ${ops}`);
    if (ops >= 200000) {
      // a full run reaches every kind of operation (a weight set to 0 by mistake would show here)
      const missing = ['alloc', 'zalloc', 'free', 'write', 'view', 'double-free', 'view-free', 'bad-address', 'destroy',
        'destroy-busy', 'use-after-destroy', 'create', 'create-bad', 'close', 'close-busy', 'use-after-close', 'detach-stream',
        'detach-byob', 'detach-clone', 'detach-message', 'escape-write', 'escape-again', 'scribble', 'page-scribble',
        'allocMany', 'zallocMany', 'allocMany-bad', 'freeMany', 'freeMany-bad', 'dataView', 'dataView-bad', 'dma-bigint']
        .filter((k) => !skip.includes(k) && !r.opsByKind[k]);
      assert.deepEqual(missing, [], `operation kinds never run: ${missing.join(', ')}`);
      // and every form of freeMany() argument, good and hostile
      const forms = ['an array', 'a Float64Array', 'the allocMany() result', 'an array-like object',
        'a Proxy that answers differently after its first read', 'a Float64Array in a block of the batch']
        .map((f) => `freeMany via ${f}`)
        .concat(['a freed block', 'a block twice', 'inside a block', 'a non-number', 'NaN/±1/±∞/2^64', 'a bad address', 'a hole',
          'a Proxy, bad first answer', 'a throwing getter', 'not an array-like', 'a bad length',
          'a getter that frees a block of the batch'].map((f) => `freeMany-bad: ${f}`))
        .filter((f) => !skip.includes(f.startsWith('freeMany-bad') ? 'freeMany-bad' : 'freeMany') && !r.notes[f]);
      assert.deepEqual(forms, [], `freeMany() forms never run: ${forms.join(', ')}`);
    }
    assert.equal(r.violations, 0,
      `${r.violations} violations (seed ${seed}): ${Object.entries(r.violationsByKind).map(([k, n]) => `${k} × ${n}`).join(', ')}`);
  });

  it('the pattern checks are not vacuous: every byte changed behind the model\'s back is reported, once', async () => {
    const seed = envInt('DMAPOOL_FUZZ_SEED', 12345);
    const r = await new ApiFuzzer({ seed, ops: 30000, sabotageEvery: 300 }).run();
    const planted = r.notes['sabotage: planted corruptions'] ?? 0;
    assert.ok(planted >= 50, `only ${planted} corruptions planted`);
    assert.equal(r.notes['sabotage: planted corruptions detected'], planted, summary(r));
    assert.deepEqual(r.violationsByKind, { 'pattern-changed': planted }, summary(r));
  });

  it('the bulk and DataView checks are not vacuous: a freeMany that frees as it validates, a zallocMany that does not zero, a DataView one byte too long are each reported', async () => {
    const seed = envInt('DMAPOOL_FUZZ_SEED', 4242);
    const proto = DmaPool.prototype as unknown as Record<string, unknown>;
    const broken: [string, string, (orig: (...a: unknown[]) => unknown) => (this: DmaPool, ...a: unknown[]) => unknown][] = [
      // one free() per entry: a bad entry after good ones leaves those freed
      ['freeMany', 'error-changed-pool', () => function (this: DmaPool, addrs) {
        for (const d of Array.from(addrs as ArrayLike<number>)) this.free(d);
      }],
      ['zallocMany', 'zalloc-not-zero', () => function (this: DmaPool, n) { return this.allocMany(n as number); }],
      ['dataView', 'dataview-not-the-block', (orig) => function (this: DmaPool, dma) {
        const dv = orig.call(this, dma) as DataView;
        return new DataView(dv.buffer, dv.byteOffset, Math.min(dv.byteLength + 1, dv.buffer.byteLength - dv.byteOffset));
      }],
    ];
    for (const [name, kind, make] of broken) {
      const orig = proto[name] as (...a: unknown[]) => unknown;
      proto[name] = make(orig);
      let r;
      try {
        r = await new ApiFuzzer({ seed, ops: 10000 }).run();
      } finally {
        proto[name] = orig;
      }
      assert.ok((r.violationsByKind[kind] ?? 0) > 0, `a broken ${name}() was not reported as ${kind}:\n${summary(r)}`);
    }
  });
});
