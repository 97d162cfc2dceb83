import { openDevice, Device } from '../lib';
import type { IndexKind } from '../lib';

export const STRATEGIES: IndexKind[] = ['rbtree', 'linear', 'stack', 'radix'];

/**
 * Device specs the pool suite runs on: always 'sim', plus every real provider named in
 * DMAPOOL_TEST_DEVICES (comma-separated, e.g. "vfio:0000:00:03.0,udmabuf") — the VM test bed
 * sets it; on a real box set it yourself.
 */
export function deviceSpecs(): string[] {
  const extra = (process.env.DMAPOOL_TEST_DEVICES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return ['sim', ...extra.filter((s) => s !== 'sim')];
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

/** A small deterministic PRNG (mulberry32) for reproducible shuffles. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T extends { length: number; [i: number]: number }>(a: T, rand: () => number): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]; a[i] = a[j]; a[j] = t;
  }
  return a;
}
