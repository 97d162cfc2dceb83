/**
 * Physical-memory providers. pagemap translation runs against fixture pagemap files everywhere;
 * as root, on real memory too, and the UIO provider runs for real against fixture sysfs trees
 * (real memory, real pagemap; only the PCI device and the u-dma-buf node are stand-ins). In the VM test bed (guest B) the UIO provider
 * also runs in 4 KiB mode against the real edu device.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DmaPoolError, openDevice } from '../lib';
import { native } from '../lib/native';
import { translate } from '../lib/providers/pagemap';
import { UDmaBufProvider } from '../lib/providers/u-dma-buf';
import { UioProvider } from '../lib/providers/uio';
import { Edu } from './edu';
import { Fixture } from './fixtures';
import { describeIf, envValue, needs, RUNS_IN } from './helpers';

/** A fixture /proc/self/pagemap whose entries for the pages at `address` are `entries` (sparse elsewhere). */
function pagemapFixture(address: bigint, entries: bigint[]): Fixture {
  const fx = new Fixture().file('/proc/self/pagemap', '');
  const buf = Buffer.alloc(entries.length * 8);
  entries.forEach((e, i) => buf.writeBigUInt64LE(e, i * 8));
  const fd = fs.openSync(fx.sys.path('/proc/self/pagemap'), 'r+');
  try { fs.writeSync(fd, buf, 0, buf.length, Number(address / 4096n) * 8); } finally { fs.closeSync(fd); }
  return fx;
}
const PRESENT = 1n << 63n;
const AT = 0x4000_0000n; // any page-aligned address: the fixture file decides what it maps to

describe('pagemap translation (fixture pagemap: the entries are ours, so every case is decided)', () => {
  it('reads present PFNs as physical addresses, one per unit, and accepts a contiguous run as one unit', () => {
    const fx = pagemapFixture(AT, Array.from({ length: 16 }, (_, i) => PRESENT | BigInt(0x12340 + i)));
    try {
      assert.deepEqual(Array.from(translate(AT, 16 * 4096, 4096, fx.sys)), Array.from({ length: 16 }, (_, i) => (0x12340 + i) * 4096));
      assert.deepEqual(Array.from(translate(AT, 16 * 4096, 16 * 4096, fx.sys)), [0x12340 * 4096]);
    } finally { fx.cleanup(); }
  });

  it('refuses to call a scattered region contiguous', () => {
    // pages 0..7 contiguous, page 8 elsewhere: fine per 4 KiB and per 32 KiB unit, not per 64 KiB
    const pfns = Array.from({ length: 16 }, (_, i) => BigInt(i === 8 ? 0x90000 : 0x12340 + i));
    const fx = pagemapFixture(AT, pfns.map((p) => PRESENT | p));
    try {
      assert.equal(translate(AT, 16 * 4096, 4096, fx.sys).length, 16);
      assert.throws(() => translate(AT, 16 * 4096, 16 * 4096, fx.sys), (e: unknown) => e instanceof DmaPoolError &&
        e.code === 'EFAULT' && /memory at 0x40008000 is not physically contiguous within its 65536-byte unit/.test(e.message));
      assert.throws(() => translate(AT, 16 * 4096, 8 * 4096, fx.sys), /0x40009000 is not physically contiguous within its 32768-byte unit/,
        'the second 32 KiB unit starts at the stray page: page 9 does not follow it');
    } finally { fx.cleanup(); }
  });

  it('says that PFN 0 means hidden physical addresses (no CAP_SYS_ADMIN), with the fix', () => {
    const fx = pagemapFixture(AT, [PRESENT]);
    try {
      assert.throws(() => translate(AT, 4096, 4096, fx.sys), (e: unknown) => e instanceof DmaPoolError && e.code === 'EFAULT' &&
        /PFN 0: physical addresses are hidden/.test(e.message) && /CAP_SYS_ADMIN/.test(e.hint ?? ''));
    } finally { fx.cleanup(); }
  });
});

describeIf(needs.root(), 'pagemap translation of real memory', () => {
  it('translates mlocked memory to present, page-aligned, distinct physical addresses in one read', () => {
    const m = native().mapAnonymous(64 * 4096, 4096, { populate: true, lock: 2 });
    try {
      const phys = translate(m.address, 64 * 4096, 4096);
      assert.equal(phys.length, 64);
      for (const p of phys) { assert.ok(p > 0); assert.equal(p % 4096, 0); }
      assert.equal(new Set(phys).size, 64);
    } finally {
      native().unmap(m.id);
    }
  });
});

describeIf(needs.root(), 'uio provider (fixture device, real memory and pagemap)', function () {
  let fx: Fixture;
  before(function () {
    fx = new Fixture().pci({ bdf: '0000:00:04.0', driver: 'uio_pci_generic' })
      .file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '0\n')
      .link('/proc/self/pagemap', '/proc/self/pagemap');
  });
  after(() => fx?.cleanup());

  it('hands out 4 KiB-contiguous chunks with real physical addresses and refuses larger ones with a fix', () => {
    const p = new UioProvider('00:04.0', { sys: fx.sys });
    try {
      assert.equal(p.maxContiguous, 4096);
      assert.match(p.description, /mlocked 4 KiB pages/);
      const c = p.allocChunk(4096);
      assert.ok(c.dma > 0 && c.dma % 4096 === 0);
      assert.ok(c.slab.unitDma && c.slab.unitDma.length === 512);
      assert.throws(() => p.allocChunk(8192), (e: unknown) =>
        e instanceof DmaPoolError && e.code === 'EINVAL' && /nr_hugepages/.test(e.hint ?? ''));
      p.freeChunk(c);
    } finally {
      p.close();
    }
  });

  it('runs a pool whose block DMA addresses are the pages\' physical addresses', () => {
    const dev = openDevice('uio:0000:00:04.0', { sys: fx.sys });
    try {
      const pool = dev.createPool('phys', 512);
      const blocks = Array.from({ length: 40 }, () => pool.alloc());
      for (const d of blocks) {
        const cpu = pool.cpuAddress(d);
        const phys = translate(cpu - (cpu % 4096n), 4096, 4096)[0] + Number(cpu % 4096n);
        assert.equal(d, phys, 'block DMA address must equal the physical address of its bytes');
      }
      blocks.forEach((d) => pool.free(d));
    } finally {
      dev.close();
    }
  });
});

describe('uio provider refuses functions a kernel driver owns or an IOMMU translates (fixture)', () => {
  it('refuses a device behind a translating IOMMU (physical addresses would be wrong for it)', () => {
    const fx2 = new Fixture().pci({ bdf: '0000:00:05.0', driver: 'uio_pci_generic', group: 7 })
      .file('/sys/kernel/iommu_groups/7/type', 'DMA-FQ\n')
      .file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '0\n');
    try {
      assert.throws(() => new UioProvider('0000:00:05.0', { sys: fx2.sys }), (e: unknown) =>
        e instanceof DmaPoolError && e.code === 'ENODEV' && /vfio:0000:00:05.0/.test(e.hint ?? ''));
    } finally {
      fx2.cleanup();
    }
  });

  for (const driver of ['virtio-pci', 'nvme', 'vfio-pci', undefined]) {
    it(`${driver ?? 'no driver'}: ENODEV naming the driver, with the bind command as the fix`, () => {
      const fx = new Fixture().pci({ bdf: '0000:00:02.0', cls: '0x010000', ...(driver ? { driver } : {}) })
        .file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '0\n');
      try {
        assert.throws(() => openDevice('uio:0000:00:02.0', { sys: fx.sys }), (e: unknown) =>
          e instanceof DmaPoolError && e.code === 'ENODEV' && e.message.includes(driver ?? 'no driver') &&
          /dmapool bind 0000:00:02.0 --driver uio_pci_generic/.test(e.hint ?? ''));
      } finally {
        fx.cleanup();
      }
    });
  }
});

describe('u-dma-buf provider (fixture: a sealed memfd stands in for /dev/udmabuf0)', () => {
  let fx: Fixture;
  let memfd = -1;
  const SIZE = 8 << 20;
  before(() => {
    // the shim maps only files that cannot shrink under the mapping: a memfd sealed like the real buffer
    const n = native();
    memfd = n.memfdCreate('udmabuf0-fixture', n.constants.MFD_ALLOW_SEALING);
    n.ftruncate(memfd, SIZE);
    n.addSeals(memfd, n.constants.F_SEAL_SHRINK | n.constants.F_SEAL_GROW);
    fx = new Fixture()
      .file('/sys/class/u-dma-buf/udmabuf0/phys_addr', '0x0000000080000000\n')
      .file('/sys/class/u-dma-buf/udmabuf0/size', `${SIZE}\n`)
      .file('/sys/class/u-dma-buf/udmabuf0/sync_offset', '0').file('/sys/class/u-dma-buf/udmabuf0/sync_size', '0')
      .file('/sys/class/u-dma-buf/udmabuf0/sync_direction', '0')
      .file('/sys/class/u-dma-buf/udmabuf0/sync_for_cpu', '0').file('/sys/class/u-dma-buf/udmabuf0/sync_for_device', '0')
      .link('/dev/udmabuf0', `/proc/${process.pid}/fd/${memfd}`);
  });
  after(() => { fx.cleanup(); native().close(memfd); });

  it('carves slabs at offsets of the buffer: DMA = phys_addr + offset, same bytes through the node', () => {
    const dev = openDevice('u-dma-buf:udmabuf0', { sys: fx.sys });
    try {
      const pool = dev.createPool('udb', 256);
      const a = pool.alloc();
      assert.ok(a >= 0x80000000 && a < 0x80000000 + SIZE);
      pool.view(a).fill(0x42);
      const fd = fs.openSync(fx.sys.path('/dev/udmabuf0'), 'r');
      const b = Buffer.alloc(256);
      fs.readSync(fd, b, 0, 256, a - 0x80000000);
      fs.closeSync(fd);
      assert.ok(b.every((x) => x === 0x42), 'the block is the buffer at offset dma - phys_addr');
      dev.sync('begin', 'read');
      assert.equal(fx.sys.read('/sys/class/u-dma-buf/udmabuf0/sync_direction'), '2');
      assert.equal(fx.sys.read('/sys/class/u-dma-buf/udmabuf0/sync_size'), String(SIZE));
      assert.equal(fx.sys.read('/sys/class/u-dma-buf/udmabuf0/sync_for_cpu'), '1');
      pool.free(a);
    } finally {
      dev.close();
    }
  });

  it('clears what a previous user left in the buffer before handing a chunk out', () => {
    const n = native();
    const junk = new Uint8Array(2 << 20).fill(0x5a);
    for (let off = 0; off < SIZE; off += junk.length) n.pwrite(memfd, junk, off);
    const p = new UDmaBufProvider('udmabuf0', { sys: fx.sys });
    try {
      const c = p.allocChunk(4096);
      const fd = fs.openSync(fx.sys.path('/dev/udmabuf0'), 'r');
      const b = Buffer.alloc(c.slab.size);
      fs.readSync(fd, b, 0, b.length, c.dma - 0x80000000 - c.offset); // the whole slab the chunk came from
      fs.closeSync(fd);
      assert.ok(b.every((x) => x === 0), 'the slab still holds the previous user\'s bytes');
      p.freeChunk(c);
    } finally {
      p.close();
    }
  });

  it('runs out with ENOMEM when the reserved buffer is full', () => {
    const p = new UDmaBufProvider('udmabuf0', { sys: fx.sys });
    try {
      const chunks = Array.from({ length: 4 }, () => p.allocChunk(2 << 20));
      assert.throws(() => p.allocChunk(2 << 20), (e: unknown) => e instanceof DmaPoolError && e.code === 'ENOMEM');
      chunks.forEach((c) => p.freeChunk(c));
    } finally {
      p.close();
    }
  });

  it('names the missing module when the device does not exist', () => {
    assert.throws(() => openDevice('u-dma-buf:nope', { sys: fx.sys }), (e: unknown) =>
      e instanceof DmaPoolError && e.code === 'ENODEV' && /u-dma-buf/.test(e.hint ?? ''));
  });
});

describeIf(needs.env('DMAPOOL_UIO_BDF', 'the edu device on uio_pci_generic', RUNS_IN.guestB),
  'physical memory with a real device (guest B: edu on uio_pci_generic, no IOMMU)', function () {
  it('4 KiB mode: the device copies between blocks on different physical pages', () => {
    const dev = openDevice(`uio:${envValue('DMAPOOL_UIO_BDF')}`, { hugepages: false });
    try {
      const edu = new Edu(dev.pci());
      const pool = dev.createPool('uio4k', 1024);
      const blocks = Array.from({ length: 64 }, () => pool.alloc()); // 16 pages, each its own physical page
      for (let i = 0; i < blocks.length; i += 7) {
        const x = blocks[i], y = blocks[(i + 33) % blocks.length];
        pool.view(x).forEach((_, k, v) => { v[k] = (k * 13 + i) & 0xff; });
        pool.view(y).fill(0);
        edu.toDevice(x, 0, 1024);
        edu.fromDevice(0, y, 1024);
        assert.deepEqual(pool.view(y), pool.view(x));
      }
      assert.throws(() => dev.createPool('big', 8192).alloc(), /contiguous only per 4096 bytes/);
      blocks.forEach((d) => pool.free(d));
    } finally {
      dev.close();
    }
  });
});

describeIf(needs.testDevice('udmabuf', RUNS_IN.guestB, (s) => s === 'udmabuf'), 'udmabuf on a real kernel (guest B)', () => {
  it('says whether huge-page memfds work and keeps a dma-buf per slab', () => {
    const dev = openDevice('udmabuf');
    try {
      assert.match(dev.provider.description, /2 MiB huge pages|this kernel's udmabuf rejects huge-page memfds/,
        'the description must say which way huge-page memfds went');
      const pool = dev.createPool('u', 2048);
      const d = pool.alloc();
      assert.equal(dev.provider.slabCount, 1);
      assert.ok(dev.provider.counters.nativeCalls >= 7);
      dev.sync('end'); dev.sync('begin');
      pool.free(d);
      console.log(`      udmabuf: ${dev.provider.description}`);
    } finally {
      dev.close();
    }
  });
});
