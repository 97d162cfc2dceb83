import assert from 'node:assert/strict';
import { DmaPoolError, openDevice, Device } from '../lib';
import type { IndexKind } from '../lib';
import { nextPow2 } from '../lib/pow2';
import { INDEX_KINDS } from '../lib/index/page-index';

export const STRATEGIES: readonly IndexKind[] = INDEX_KINDS;

/**
 * Device specs the pool suite runs on: always 'sim', plus every real provider named in
 * DMAPOOL_TEST_DEVICES (comma-separated, e.g. "vfio:0000:00:03.0,udmabuf") — the VM test bed
 * sets it; on a real box set it yourself. DMAPOOL_TEST_SIM=0 leaves 'sim' out (the VM guests:
 * the host run already covers it).
 */
export function deviceSpecs(): string[] {
  const extra = (process.env.DMAPOOL_TEST_DEVICES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const sim = process.env.DMAPOOL_TEST_SIM === '0' && extra.length ? [] : ['sim'];
  return [...sim, ...extra.filter((s) => s !== 'sim')];
}

/**
 * Strategies the stress loops run on `spec`: all on 'sim'; on real memory all but `linear`, whose
 * index code is the same on every provider (the sim run covers it) and which takes minutes per
 * loop under emulation.
 */
export function stressStrategies(spec: string): readonly IndexKind[] {
  return spec === 'sim' ? STRATEGIES : STRATEGIES.filter((s) => s !== 'linear');
}

export function withDevice<T>(spec: string, fn: (dev: Device) => T): T {
  const dev = openDevice(spec);
  try {
    return fn(dev);
  } finally {
    for (const p of dev.pools) {
      // free whatever a failed test left behind so close() can run
      try { p.destroy(); } catch { /* busy: leave it to close() below */ }
    }
    try { dev.close(); } catch { /* a test that leaves blocks busy asserts that itself */ }
  }
}

export { rng, shuffle } from '../lib/rng';

/** An assert.throws matcher: a DmaPoolError with `code` (and a message matching `re`). */
export function code(c: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DmaPoolError, `expected DmaPoolError, got ${String(e)}`);
    assert.equal(e.code, c);
    if (re) assert.match(e.message, re);
    return true;
  };
}

/** Whether a pool of `size`-byte blocks fits this provider's DMA-contiguous unit (4 KiB pagemap memory can't hold 8 KiB pages). */
export function fits(dev: Device, size: number): boolean {
  return nextPow2(Math.max(size, dev.provider.pageSize)) <= dev.provider.maxContiguous;
}
