/**
 * Native calls are counted in one place — the wrapper native() returns — so the counters the
 * bench and the README publish cannot drift from what the providers really call.
 */
import assert from 'node:assert/strict';
import { native, nativeCallCount } from '../lib/native';
import { openDevice } from '../lib';

describe('native call counting', () => {
  it('every exported function of the addon is counted, one per call', () => {
    const n = native() as unknown as Record<string, unknown>;
    const fns = Object.keys(n).filter((k) => typeof n[k] === 'function');
    assert.ok(fns.length > 10, `only ${fns.length} native functions`);
    for (const k of fns) assert.equal((n[k] as { name: string }).name, 'countedNativeCall', `${k} is not wrapped`);
    const before = nativeCallCount();
    native().getrlimitMemlock();
    assert.throws(() => native().unmap(-1)); // a call that throws is still a call
    assert.equal(nativeCallCount(), before + 2);
  });

  it("a provider's nativeCalls is exactly the calls it made: map and unmap of every slab", () => {
    const dev = openDevice('sim');
    try {
      const before = nativeCallCount();
      const pool = dev.createPool('count', 4096);
      const addrs = Array.from({ length: 2000 }, () => pool.alloc()); // 2000 pages → 4 slabs of 2 MiB
      const mid = nativeCallCount();
      assert.equal(dev.provider.counters.nativeCalls, mid - before);
      assert.ok(dev.provider.counters.slabsMapped >= 4);
      for (const a of addrs) pool.free(a);
      pool.destroy();
      assert.equal(dev.provider.counters.nativeCalls, nativeCallCount() - before);
      assert.equal(dev.provider.counters.slabsUnmapped, dev.provider.counters.slabsMapped);
    } finally {
      dev.close();
    }
  });
});
