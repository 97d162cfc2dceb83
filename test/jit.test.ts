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
const [kind, size, opts] = [process.argv[2], Number(process.argv[3]), JSON.parse(process.argv[4])];
const N = kind === 'linear' ? 20000 : 100000; // linear is O(pages) per free
const dma = new Float64Array(N);
function allocAll(pool) { for (let i = 0; i < N; i++) dma[i] = pool.alloc(); }
function freeAll(pool) { for (let i = 0; i < N; i++) pool.free(dma[i]); }
const dev = openDevice('sim');
const cycle = () => { const p = dev.createPool('jit', size, { index: kind, ...opts }); allocAll(p); freeAll(p); p.destroy(); };
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
const after = optimized();
cycle(); // the next pool meets the same shapes: nothing to deoptimize
console.log(JSON.stringify({ before, after, next: optimized() }));
`;

describe('optimized alloc/free code survives a full GC with no pool alive (shape keepers)', () => {
  // a power-of-two size (shift arithmetic), one that is not (block index by division: an
  // integral double unless resolve() makes it an int32) and a boundary inside the page (blockIndex)
  const shapes: [number, Record<string, number>][] = [[128, {}], [100, {}], [128, { boundary: 1024 }]];
  for (const index of STRATEGIES) {
    for (const [size, opts] of shapes) {
      it(`${index}, size ${size} ${JSON.stringify(opts)}: the loops stay optimized across the GC and the next pool`, () => {
        const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '-e', CHILD,
          path.resolve(__dirname, '../lib'), index, String(size), JSON.stringify(opts)], { encoding: 'utf8' });
        const r = JSON.parse(out) as { before: boolean; after: boolean; next: boolean };
        assert.equal(r.before, true, 'V8 did not keep the loops optimized even before the GC');
        assert.equal(r.after, true, 'the full GC deoptimized the loops: the pool objects\' hidden classes died');
        assert.equal(r.next, true, 'the next pool deoptimized the loops: it came with new hidden classes');
      });
    }
  }
});
