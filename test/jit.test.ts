import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { STRATEGIES } from './helpers';

/**
 * A child process with V8's test natives: it optimizes two loops over pool.alloc() and
 * pool.free() (inlined into them, as a driver's loops get them), destroys every pool, runs full
 * GCs, and prints whether the loops are still optimized. Before the shape keepers (pool.ts) the
 * GC threw the loops' code away: it embeds the hidden classes of the pool's objects, which die
 * with the last pool.
 */
const CHILD = `
const { openDevice } = require(process.argv[1]);
const kind = process.argv[2];
const N = 100000;
const dma = new Float64Array(N);
function allocAll(pool) { for (let i = 0; i < N; i++) dma[i] = pool.alloc(); }
function freeAll(pool) { for (let i = 0; i < N; i++) pool.free(dma[i]); }
const dev = openDevice('sim');
const cycle = () => { const p = dev.createPool('jit', 128, { index: kind }); allocAll(p); freeAll(p); p.destroy(); };
const TURBOFAN = 1 << 6; // V8's OptimizationStatus::kTurboFanned
const optimized = () => [%GetOptimizationStatus(allocAll), %GetOptimizationStatus(freeAll)].every((s) => (s & TURBOFAN) !== 0);
// the first pools' feedback settles (the first destroy generalizes field constness: a deoptimization of its own)
for (let i = 0; i < 3; i++) cycle();
let before = false;
for (let tries = 0; !before && tries < 5; tries++) {
  %PrepareFunctionForOptimization(allocAll); %PrepareFunctionForOptimization(freeAll);
  cycle();
  %OptimizeFunctionOnNextCall(allocAll); %OptimizeFunctionOnNextCall(freeAll);
  cycle();
  before = optimized();
}
// no pool is alive now (the device is: a driver keeps it open between pools)
gc(); gc();
console.log(JSON.stringify({ before, after: optimized() }));
`;

describe('optimized alloc/free code survives a full GC with no pool alive (shape keepers)', () => {
  for (const index of STRATEGIES) {
    it(`${index}: the loops stay optimized across the GC`, () => {
      const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '-e', CHILD,
        path.resolve(__dirname, '../lib'), index], { encoding: 'utf8' });
      const r = JSON.parse(out) as { before: boolean; after: boolean };
      assert.equal(r.before, true, 'V8 did not keep the loops optimized even before the GC');
      assert.equal(r.after, true, 'the full GC deoptimized the loops: the pool objects\' hidden classes died');
    });
  }
});
