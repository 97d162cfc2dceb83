/**
 * Safety of the slab layer and of PCI handles: a double or foreign chunk free is a typed error
 * that never unmaps memory under a live chunk (property-tested against a model), slab sizes are
 * validated, and a closed PCI handle never touches a descriptor or a BAR again.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fc from 'fast-check';
import { SimProvider } from '../lib';
import { native } from '../lib/native';
import type { Chunk } from '../lib/provider';
import { SysfsPciDevice } from '../lib/vfio/sysfs-pci';
import { Fixture } from './fixtures';
import { code } from './helpers';


type Op =
  | { t: 'alloc'; size: number }
  | { t: 'free'; pick: number }
  | { t: 'double'; pick: number }
  | { t: 'foreign'; pick: number }
  | { t: 'dup'; pick: number };

const SIZES = [4096, 5000, 8192, 16384, 65536, 1 << 20, 2 << 20];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('alloc' as const), size: fc.constantFrom(...SIZES) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('double' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('foreign' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dup' as const), pick: fc.nat() }) },
);

describe('slab allocator safety (property test against a model)', () => {
  /** Every live chunk is mapped, holds its own signature, and no two live chunks overlap. */
  function checkInvariants(p: SimProvider, live: Map<Chunk, number>): void {
    const bySlab = new Map<number, [number, number][]>();
    for (const [c, sig] of live) {
      assert.ok(native().mappingInfo(c.slab.mapping), 'a live chunk\'s slab is mapped');
      assert.equal(c.slab.buffer.byteLength, c.slab.size, 'a live chunk\'s slab buffer is attached');
      const bytes = new Uint8Array(c.slab.buffer, c.offset, c.footprint);
      assert.equal(bytes[0], sig & 0xff);
      assert.equal(bytes[c.footprint - 1], (sig >> 8) & 0xff);
      const list = bySlab.get(c.slab.id) ?? [];
      list.push([c.offset, c.offset + c.footprint]);
      bySlab.set(c.slab.id, list);
    }
    for (const ranges of bySlab.values()) {
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] >= ranges[i - 1][1], 'live chunks overlap');
    }
    assert.equal(p.slabCount, bySlab.size, 'exactly the slabs holding live chunks are mapped');
  }

  it('never unmaps or reuses a live chunk, whatever is freed twice, forged or duplicated', () => {
    let ops = 0;
    fc.assert(fc.property(fc.array(opArb, { minLength: 50, maxLength: 300 }), (script) => {
      const p = new SimProvider({ lock: false });
      const live = new Map<Chunk, number>();
      const freed: Chunk[] = [];
      let sig = 1;
      try {
        for (const op of script) {
          ops++;
          const chunks = [...live.keys()];
          const pick = chunks.length ? chunks[(op as { pick?: number }).pick! % chunks.length] : undefined;
          switch (op.t) {
            case 'alloc': {
              const c = p.allocChunk(op.size);
              const bytes = new Uint8Array(c.slab.buffer, c.offset, c.footprint);
              assert.ok(bytes[0] === 0 && bytes[c.footprint >> 1] === 0 && bytes[c.footprint - 1] === 0, 'chunks come zeroed');
              const s = (sig++ % 0xfffe) + 1;
              bytes[0] = s & 0xff;
              bytes[c.footprint - 1] = (s >> 8) & 0xff;
              live.set(c, s);
              break;
            }
            case 'free':
              if (!pick) break;
              p.freeChunk(pick);
              live.delete(pick);
              freed.push(pick);
              break;
            case 'double': {
              const c = freed.length ? freed[op.pick % freed.length] : undefined;
              if (c) assert.throws(() => p.freeChunk(c), code('EINVAL'));
              break;
            }
            case 'foreign':
              if (pick) assert.throws(() => p.freeChunk({ ...pick }), code('EINVAL'));
              break;
            case 'dup':
              if (pick) assert.throws(() => p.freeChunks([pick, pick]), code('EINVAL'));
              break;
          }
          checkInvariants(p, live);
        }
        for (const c of live.keys()) p.freeChunk(c);
        assert.equal(p.slabCount, 0);
      } finally {
        p.close();
      }
    }), { numRuns: 40 });
    assert.ok(ops >= 2000, `ran ${ops} operations`);
  });

  it('a rejected batch changes nothing: a foreign chunk in freeChunks frees none of the others', () => {
    const p = new SimProvider({ lock: false });
    try {
      const a = p.allocChunk(4096), b = p.allocChunk(4096);
      assert.throws(() => p.freeChunks([a, { ...b }]), code('EINVAL'));
      assert.equal(p.slabCount, 1);
      p.freeChunks([a, b]); // both still live: accepted now
      assert.equal(p.slabCount, 0);
    } finally {
      p.close();
    }
  });

  it('validates slabSize: integer power of two ≥ the page size', () => {
    for (const slabSize of [4096.5, 3 * 4096, 2048, NaN, -4096, 2 ** 41, '4096' as unknown as number])
      assert.throws(() => new SimProvider({ slabSize }), code('EINVAL'), `slabSize ${String(slabSize)}`);
    new SimProvider({ slabSize: 1 << 16 }).close();
  });
});

describe('PCI handles after close (fixture device, a sealed memfd as its BAR)', () => {
  const BAR = 1 << 20;
  let fx: Fixture;
  let memfd = -1;
  before(() => {
    const n = native();
    memfd = n.memfdCreate('bar0-fixture', n.constants.MFD_ALLOW_SEALING);
    n.ftruncate(memfd, BAR);
    n.addSeals(memfd, n.constants.F_SEAL_SHRINK | n.constants.F_SEAL_GROW);
    fx = new Fixture().pci({ bdf: '0000:00:06.0', driver: 'uio_pci_generic' })
      .link('/sys/bus/pci/devices/0000:00:06.0/resource0', `/proc/${process.pid}/fd/${memfd}`);
  });
  after(() => { fx.cleanup(); native().close(memfd); });

  it('bounds-checks MMIO against the BAR, overflow-safe', () => {
    const pci = new SysfsPciDevice('0000:00:06.0', fx.sys);
    try {
      pci.write32(0, BAR - 4, 0xdeadbeef);
      assert.equal(pci.read32(0, BAR - 4), 0xdeadbeef);
      pci.write64(0, BAR - 8, 0x0123456789abcdefn);
      assert.equal(pci.read64(0, BAR - 8), 0x0123456789abcdefn);
      for (const off of [-4, -8, BAR - 3, BAR, 2 ** 53, 2 ** 64, NaN, 1.5])
        assert.throws(() => pci.write32(0, off, 1), code('EINVAL'), `offset ${off}`);
      assert.throws(() => pci.read64(0, -8), code('EINVAL'));
      assert.throws(() => pci.write64(0, BAR - 4, 1n), code('EINVAL'));
      assert.throws(() => pci.write32(0, 2, 1), code('EINVAL')); // misaligned
      assert.throws(() => pci.mapBar(6), code('EINVAL'));
    } finally {
      pci.close();
    }
  });

  it('refuses every use after close with EBADF and never touches a reused descriptor', () => {
    const pci = new SysfsPciDevice('0000:00:06.0', fx.sys);
    const bar = pci.mapBar(0);
    assert.equal(bar.byteLength, BAR);
    pci.close();
    assert.equal(bar.byteLength, 0, 'the BAR buffer is detached at close');
    // the closed config fd's number is likely handed to the next open: it must stay untouched
    const victimPath = fx.sys.path('/victim');
    fs.writeFileSync(victimPath, Buffer.alloc(64, 0x11));
    const n = native();
    const fd = n.open(victimPath, n.constants.O_RDWR);
    try {
      assert.throws(() => pci.writeConfig(0, Uint8Array.of(0x99, 0x99)), code('EBADF'));
      assert.throws(() => pci.readConfig(0, 4), code('EBADF'));
      assert.throws(() => pci.read32(0, 0), code('EBADF'));
      assert.throws(() => pci.write32(0, 0, 1), code('EBADF'));
      assert.throws(() => pci.mapBar(0), code('EBADF'));
      assert.throws(() => pci.enableBusMaster(), code('EBADF'));
      assert.ok(fs.readFileSync(victimPath).every((b) => b === 0x11), 'the file that got the old fd number is unchanged');
      pci.close(); // twice is harmless
    } finally {
      n.close(fd);
    }
  });

  it('validates config ranges before any syscall', () => {
    const pci = new SysfsPciDevice('0000:00:06.0', fx.sys);
    try {
      assert.throws(() => pci.readConfig(-1, 4), code('EINVAL'));
      assert.throws(() => pci.readConfig(4094, 4), code('EINVAL'));
      assert.throws(() => pci.writeConfig(0, [1, 2] as unknown as Uint8Array), code('EINVAL'));
      assert.equal(pci.readConfig(0, 4).length, 4);
    } finally {
      pci.close();
    }
  });
});
