import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { DmaPoolError } from '../lib';
import { deviceSpecs, fits, STRATEGIES, withDevice } from './helpers';

type Op =
  | { t: 'alloc'; zero: boolean }
  | { t: 'free'; pick: number }
  | { t: 'double'; pick: number }
  | { t: 'bad'; pick: number; delta: number }
  | { t: 'viewFree'; pick: number }
  | { t: 'check' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('alloc' as const), zero: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('double' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bad' as const), pick: fc.nat(), delta: fc.integer({ min: 1, max: 1 << 20 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('viewFree' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('check' as const) }) },
);

/** Everything the pool reports about itself except the work counter (a failed lookup still counts visits). */
const snapshot = (pool: { stats: object }) => JSON.stringify({ ...pool.stats, indexVisits: 0 });

const shapes = [
  { size: 128, align: 0, boundary: 0 },
  { size: 68, align: 32, boundary: 4096 },
  { size: 512, align: 0, boundary: 2048, legacyLayout: true },
  { size: 24, align: 8, boundary: 64 },
  { size: 5000, align: 0, boundary: 0 },
];

for (const spec of deviceSpecs()) {
  describe(`DmaPool vs a model (fast-check) on ${spec}`, () => {
    for (const index of STRATEGIES) {
      it(`${index}: ≥ 25000 random alloc/zalloc/free/double-free/bad-address operations agree with the model`, () => {
        let ops = 0;
        // shapes this provider can hold (4 KiB-contiguous memory can't hold the 5000-byte pool;
        // the contiguity test covers that refusal)
        const usable = withDevice(spec, (dev) => shapes.filter((s) => fits(dev, s.size)));
        fc.assert(fc.property(fc.constantFrom(...usable), fc.boolean(), fc.array(opArb, { minLength: 200, maxLength: 600 }), (shape, debug, cmds) =>
          withDevice(spec, (dev) => {
            const { size: requested, ...layout } = shape;
            const pool = dev.createPool('model', requested, { index, debug, ...layout });
            const size = pool.geometry.size;
            const live: number[] = [];
            const tags = new Map<number, number>();
            const freed: number[] = [];
            let tag = 1;
            // every error is a DmaPoolError with one of `codes`, and leaves the pool exactly as it was
            const expectErr = (fn: () => unknown, codes: string[]) => {
              const before = snapshot(pool);
              assert.throws(fn, (e: unknown) => e instanceof DmaPoolError && codes.includes(e.code));
              assert.equal(snapshot(pool), before);
            };
            for (const c of cmds) {
              ops++;
              if (c.t === 'alloc') {
                const d = c.zero ? pool.zalloc() : pool.alloc();
                assert.ok(!tags.has(d), 'alloc returned a live block');
                assert.equal(d % pool.geometry.align, 0);
                const v = pool.view(d);
                assert.equal(v.length, size);
                if (c.zero) assert.ok(v.every((b) => b === 0));
                // tag the whole block: overlapping blocks would clobber each other's tags
                v.fill(tag & 0xff); v[0] = tag & 0xff; v[size - 1] = (tag >> 8) & 0xff;
                tags.set(d, tag++); live.push(d);
              } else if (c.t === 'free' && live.length) {
                const i = c.pick % live.length;
                const d = live[i];
                const t = tags.get(d)!;
                const v = pool.view(d);
                assert.equal(v[0], t & 0xff, 'block contents changed while allocated');
                assert.equal(v[size - 1], (t >> 8) & 0xff, 'block contents changed while allocated');
                pool.free(d);
                live[i] = live[live.length - 1]; live.pop();
                tags.delete(d); freed.push(d);
              } else if (c.t === 'double' && freed.length) {
                const d = freed[c.pick % freed.length];
                if (!tags.has(d)) expectErr(() => pool.free(d), ['EALREADY']);
              } else if (c.t === 'bad') {
                const base = live.length ? live[c.pick % live.length] : 0x1000;
                const d = base + c.delta;
                if (!tags.has(d) && !freed.includes(d)) expectErr(() => pool.free(d), ['EINVAL', 'EFAULT', 'EALREADY']);
              } else if (c.t === 'viewFree' && freed.length) {
                const d = freed[c.pick % freed.length];
                if (!tags.has(d)) expectErr(() => pool.view(d), ['EALREADY']);
              } else if (c.t === 'check') {
                pool.check();
              }
              assert.equal(pool.stats.inUse, live.length);
            }
            pool.check();
            for (const d of live) pool.free(d);
            pool.check();
            assert.equal(pool.stats.inUse, 0);
          })), { numRuns: 100, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) });
        assert.ok(ops >= 25000, `ran only ${ops} operations`);
      });
    }
  });
}
