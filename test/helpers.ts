import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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

// ---- hardware gates --------------------------------------------------------------------------

/**
 * What a gated test needs and whether this machine has it. Build one with `requirement()` or a
 * ready-made one from `needs`, then declare the test with `describeIf` / `itIf`.
 */
export interface Requirement {
  /** What the test needs, in words: "a vfio-pci device (a vfio: spec in DMAPOOL_TEST_DEVICES)". */
  readonly needs: string;
  /** Where it runs for real: one of `RUNS_IN`, or words of your own. */
  readonly runsIn: string;
  /** Why it is not met on this machine; undefined when it is met. */
  readonly unmet: string | undefined;
}

/** Where gated tests run for real (the VM test bed: `npm run test:vm`, scripts/vm/guest-*.sh). */
export const RUNS_IN = {
  guestA: 'the VM test bed, guest A (q35 + intel-iommu; edu and NVMe on vfio-pci)',
  guestB: 'the VM test bed, guest B (Linux 6.12, intel-iommu with iommu=pt: udmabuf and edu #1 on uio_pci_generic; edu #2 and NVMe on vfio-pci through iommufd)',
  guests: 'the VM test bed, guests A and B (edu on vfio-pci in A; on uio_pci_generic and udmabuf in B)',
  root: 'the host suite run as root, and both VM guests',
  rootHost: 'the host suite run as root',
  kernelCache: 'the host, once `dmapool bench --kernel` has fetched the Linux sources into the cache',
  noUdmabuf: 'any host without /dev/udmabuf (the host suite; not the VM guests)',
} as const;

/** A requirement that holds when `unmet` is undefined (or false/''). */
export function requirement(needs: string, runsIn: string, unmet: string | undefined | false): Requirement {
  return { needs, runsIn, unmet: unmet || undefined };
}

/** All of `reqs` (the first unmet one names the reason). */
export function allOf(...reqs: Requirement[]): Requirement {
  const miss = reqs.find((r) => r.unmet !== undefined);
  return requirement(reqs.map((r) => r.needs).join(' and '), miss?.runsIn ?? reqs[0].runsIn, miss && `${miss.unmet}`);
}

/** The pending title mocha prints (once) for a requirement that is not met. */
export function skipReason(req: Requirement): string {
  return `skipped: needs ${req.needs} — ${req.unmet}; runs for real in ${req.runsIn}`;
}

/**
 * THE hardware gate: every test that needs something this machine may lack (a device, root, a
 * kernel module, a cached kernel build) is declared through `describeIf` / `itIf` — never with
 * `this.skip()`, an early `return`, or an `if (!env) …` of its own (test/hygiene.test.ts
 * enforces this).
 *
 * - Met (e.g. DMAPOOL_EDU is set): the tests are declared exactly as with describe/it. Nothing
 *   in them may skip: an unusable device must FAIL loudly, so a VM guest that sets the variable
 *   never passes by skipping.
 * - Not met: one pending test per gate (mocha prints it in cyan, and counts it as pending)
 *   titled "skipped: needs <what> — <why not here>; runs for real in <where>". No console.log.
 *
 * Add a hardware test like this (the lead converts tests written another way at merge):
 *
 *   const nvme = needs.env('DMAPOOL_NVME_BDF', 'an NVMe controller on vfio-pci', RUNS_IN.guestA);
 *   describeIf(nvme, 'NVMe admin queue through pool memory', () => {
 *     it('identifies the controller', () => { const bdf = envValue('DMAPOOL_NVME_BDF'); … });
 *   });
 *   itIf(needs.root(), 'reads PFNs from pagemap', () => { … });
 *
 * Read the device a met gate names with envValue() (test/hygiene.test.ts refuses
 * `process.env.DMAPOOL_…BDF` and friends outside this file), and add a RUNS_IN entry when the new
 * test runs somewhere not listed (e.g. a guest script that sets the new variable).
 *
 * Requirements are evaluated when the file is loaded (mocha's describe phase). A requirement that
 * can only be settled by doing something (reserving huge pages) is settled in a `before` hook that
 * throws when it fails: the gate names only what can be checked without side effects.
 */
export function describeIf(req: Requirement, title: string, body: (this: Mocha.Suite) => void): Mocha.Suite {
  if (req.unmet === undefined) return describe(title, body);
  return describe(title, () => { it(skipReason(req)); });
}

/** `it` behind a gate (see describeIf): pending with its reason when `req` is not met. */
export function itIf(req: Requirement, title: string, fn: Mocha.Func | Mocha.AsyncFunc): Mocha.Test {
  if (req.unmet === undefined) return it(title, fn);
  return it(`${title} [${skipReason(req)}]`);
}

/** Free 2 MiB huge pages, from /proc/meminfo. */
export function freeHugePages(): number {
  return Number(/HugePages_Free:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

const testDevices = (): string[] => deviceSpecs().filter((s) => s !== 'sim');

/** Ready-made requirements. */
export const needs = {
  /** An environment variable the VM test bed sets (the value names the device). */
  env(name: string, what: string, runsIn: string): Requirement {
    return requirement(`${what} (${name})`, runsIn, !process.env[name] && `${name} is not set`);
  },
  /** Real-device specs of `kinds` in DMAPOOL_TEST_DEVICES (see deviceSpecs). */
  testDevice(what: string, runsIn: string, match: (spec: string) => boolean): Requirement {
    return requirement(`${what} in DMAPOOL_TEST_DEVICES`, runsIn,
      !testDevices().some(match) && `DMAPOOL_TEST_DEVICES is ${process.env.DMAPOOL_TEST_DEVICES ? `'${process.env.DMAPOOL_TEST_DEVICES}'` : 'not set'}`);
  },
  /** A vfio-pci device: a vfio: spec in DMAPOOL_TEST_DEVICES. */
  vfio(): Requirement {
    return needs.testDevice('a vfio-pci device (a vfio: spec)', RUNS_IN.guestA, (s) => s.startsWith('vfio:'));
  },
  /** The QEMU edu device (DMAPOOL_EDU = its BDF) and a device-visible provider to DMA through. */
  edu(): Requirement {
    return allOf(needs.env('DMAPOOL_EDU', 'the QEMU edu device', RUNS_IN.guests),
      needs.testDevice('a device-visible provider', RUNS_IN.guests, () => true));
  },
  /** CAP_SYS_ADMIN: /proc/self/pagemap shows page frame numbers only to it. */
  root(runsIn: string = RUNS_IN.root): Requirement {
    const uid = process.getuid?.();
    return requirement('root (pagemap shows physical page numbers only with CAP_SYS_ADMIN)', runsIn,
      uid !== 0 && `running as uid ${uid}`);
  },
  /** No free 2 MiB huge pages right now (so a MAP_HUGETLB refusal can be checked). */
  noFreeHugePages(): Requirement {
    const free = freeHugePages();
    return requirement('no free 2 MiB huge pages', 'the host suite while /proc/sys/vm/nr_hugepages is 0 (not the VM guests: they reserve 64)',
      free > 0 && `${free} huge pages are free here`);
  },
  /** The host run: the VM guests set DMAPOOL_TEST_SIM=0 and leave host-side checks (e.g. child processes) to it. */
  hostRun(what: string): Requirement {
    return requirement(what, 'the host suite', process.env.DMAPOOL_TEST_SIM === '0' && 'DMAPOOL_TEST_SIM=0: the VM guests leave these checks to the host run');
  },
  /** A path that must (or, with `present` false, must not) exist on this machine. */
  path(p: string, present: boolean, what: string, runsIn: string): Requirement {
    const there = fs.existsSync(p);
    return requirement(what, runsIn, there !== present && (there ? `${p} exists here` : `${p} is missing`));
  },
};

/** The value of an environment variable a met `needs.env` gate checked (throws if unset: a gate bug). */
export function envValue(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: declare the test behind needs.env('${name}', …)`);
  return v;
}
