/**
 * VFIO: sysfs-level checks against fixtures (everywhere), and the IOMMU context/device API against a
 * real vfio-pci device when DMAPOOL_TEST_DEVICES has a vfio: spec (the VM test bed: guest A on the
 * type1 container, guest B on iommufd).
 */
import assert from 'node:assert/strict';
import { Device, DmaPoolError, openDevice } from '../lib';
import { checkMemlock } from '../lib/providers/memlock';
import { VfioProvider } from '../lib/providers/vfio';
import * as u from '../lib/vfio/uapi';
import { IommufdContext } from '../lib/vfio/iommufd';
import { VfioContainer } from '../lib/vfio/vfio';
import { Edu } from './edu';
import { Fixture } from './fixtures';
import { deviceSpecs, describeIf, envValue, itIf, needs, RUNS_IN } from './helpers';

/** The device's provider as the VFIO provider (a failed assertion, not a blind cast, when it is not). */
function vfioProvider(dev: Device): VfioProvider {
  const p = dev.provider;
  assert.ok(p instanceof VfioProvider, `${dev.kind} provider, expected vfio`);
  return p;
}

const isErr = (code: string, re: RegExp, hintRe?: RegExp) => (e: unknown) =>
  e instanceof DmaPoolError && e.code === code && re.test(e.message) && (!hintRe || hintRe.test(e.hint ?? ''));

describe('VFIO preflight (fixture sysfs)', () => {
  let fx: Fixture;
  before(() => {
    fx = new Fixture()
      .pci({ bdf: '0000:85:00.0', cls: '0x010700', driver: 'vfio-pci', group: 30 })
      .pci({ bdf: '0000:85:00.1', cls: '0x010700', driver: 'mpt3sas', group: 30 })
      .pci({ bdf: '0000:86:00.0', driver: 'mpt3sas', group: 31 })
      .pci({ bdf: '0000:87:00.0' })
      .pci({ bdf: '0000:88:00.0', driver: 'vfio-pci', group: 32 })
      .pci({ bdf: '0000:88:00.1', driver: 'pcieport', group: 32 })
      .pci({ bdf: '0000:88:00.2', group: 32 });
  });
  after(() => fx.cleanup());

  it('names the group members that make a group not viable', () => {
    assert.throws(() => VfioContainer.preflight('0000:85:00.0', fx.sys),
      isErr('EBUSY', /group 30 is not viable: 0000:85:00.1 is bound to mpt3sas/, /dmapool bind 0000:85:00.1/));
  });
  it('tells how to bind a device that is not on vfio-pci', () => {
    assert.throws(() => VfioContainer.preflight('0000:86:00.0', fx.sys),
      isErr('ENODEV', /bound to mpt3sas, not vfio-pci/, /dmapool bind 0000:86:00.0/));
  });
  it('explains a device without an IOMMU group (IOMMU off)', () => {
    assert.throws(() => VfioContainer.preflight('0000:87:00.0', fx.sys),
      isErr('ENODEV', /no IOMMU group/, /intel_iommu=on/));
  });
  it('accepts driverless and pcieport members, and short addresses', () => {
    assert.equal(VfioContainer.preflight('88:00.0', fx.sys), 32);
  });
  it('rejects a malformed address and a missing device', () => {
    assert.throws(() => openDevice('vfio:85:00', { sys: fx.sys }), isErr('EINVAL', /not a PCI address/));
    assert.throws(() => openDevice('vfio:0000:99:00.0', { sys: fx.sys }), isErr('ENODEV', /no PCI device/));
  });
  it('pre-checks RLIMIT_MEMLOCK and prints the exact ulimit that fixes it', () => {
    const noCap = new Fixture().file('/proc/self/status', 'Name:\tnode\nCapEff:\t0000000000000000\n');
    try {
      assert.throws(() => checkMemlock(2 ** 40, 2 << 20, 'vfio', noCap.sys),
        isErr('ENOMEM', /exceeds RLIMIT_MEMLOCK/, /ulimit -l 1073743872/));
      const withCap = new Fixture().file('/proc/self/status', 'CapEff:\t000001ffffffffff\n');
      checkMemlock(2 ** 40, 2 << 20, 'vfio', withCap.sys); // CAP_IPC_LOCK: no limit
      withCap.cleanup();
    } finally {
      noCap.cleanup();
    }
  });
});

const vfioSpecs = deviceSpecs().filter((s) => s.startsWith('vfio:'));

describeIf(needs.vfio(), 'VFIO container and device (real vfio-pci device)', function () {
  const spec = vfioSpecs[0];
  const bdf = spec.slice(5).split(',')[0];

  it('reads the usable IOVA ranges and places IOVAs inside them (type1: the IOMMU info capability chain; iommufd: IOMMU_IOAS_IOVA_RANGES)', () => {
    const dev = openDevice(spec);
    try {
      const p = vfioProvider(dev);
      const c = p.container;
      let ranges: { start: number; end: number }[];
      if (c instanceof VfioContainer) {
        const info = c.info;
        assert.ok(info.caps.includes(u.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), `caps ${info.caps}`);
        assert.ok(info.pageSizes & 0x1000, '4 KiB IOMMU pages');
        // DMA_AVAIL exists since Linux 5.10 (guest A runs 6.1): the container's mapping budget
        assert.ok(info.caps.includes(u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL), `caps ${info.caps}`);
        assert.ok(info.dmaAvail! > 1000, `dma_avail ${info.dmaAvail}`);
        ranges = info.iovaRanges;
      } else {
        assert.ok(c instanceof IommufdContext);
        ranges = c.ranges();
        // x86: the MSI window 0xfee00000-0xfeefffff is reserved for every attached device
        assert.ok(!ranges.some((r) => r.start <= 0xfee00000 && r.end >= 0xfee00000), `MSI window inside ${JSON.stringify(ranges)}`);
      }
      assert.ok(ranges.length >= 1);
      const pool = dev.createPool('iova', 4096);
      const blocks = Array.from({ length: 1100 }, () => pool.alloc()); // 3 slabs of 2 MiB
      for (const d of blocks)
        assert.ok(ranges.some((r) => d >= r.start && d + 4095 <= r.end), `IOVA ${d.toString(16)} outside the usable ranges`);
      assert.equal(p.counters.iommuMaps, 3, 'one IOMMU mapping per 2 MiB slab');
      assert.equal(c.mappings, 3);
      const first = blocks[0];
      blocks.forEach((d) => pool.free(d));
      pool.destroy();
      assert.equal(p.counters.iommuUnmaps, 3);
      assert.equal(c.mappings, 0);
      const again = dev.createPool('iova2', 4096);
      const d = again.alloc();
      assert.equal(d, first, 'freed IOVA ranges are reused');
      again.free(d);
    } finally {
      dev.close();
    }
  });

  it('maps BAR0, reads config space, sets bus mastering, and detaches the BAR at close', () => {
    const dev = openDevice(spec);
    const pci = dev.pci();
    assert.equal(pci.configRead16(0), 0x1234);
    assert.equal(pci.configRead16(2), 0x11e8);
    const bar = pci.mapBar(0);
    assert.equal(bar.byteLength, 1 << 20);
    const edu = new Edu(pci);
    assert.equal(pci.configRead16(4) & 0x4, 0x4, 'bus master enabled');
    assert.equal(edu.liveness(0xa5a5a5a5), 0x5a5a5a5a);
    const regs = new Uint32Array(bar);
    dev.close();
    assert.equal(regs.length, 0, 'BAR views are detached when the device closes');
    assert.equal(bar.byteLength, 0);
    dev.close(); // twice is harmless
  });

  it('VFIO_DEVICE_RESET works when the device offers a reset, and says so when not', () => {
    const dev = openDevice(spec);
    try {
      const pci = vfioProvider(dev).device();
      if (pci.flags & u.VFIO_DEVICE_FLAGS_RESET) {
        pci.reset();
        assert.equal(pci.configRead16(0), 0x1234);
      } else {
        assert.throws(() => pci.reset(), isErr('ENODEV', /no reset/));
      }
    } finally {
      dev.close();
    }
  });

  it('a second open of the same group fails with EBUSY and a hint', () => {
    const dev = openDevice(spec);
    try {
      assert.throws(() => openDevice(spec), isErr('EBUSY', /./, /already open/));
    } finally {
      dev.close();
    }
  });

  const bdf2 = needs.env('DMAPOOL_VFIO_BDF2', 'a second vfio-pci device in another IOMMU group', RUNS_IN.guestA);
  itIf(bdf2, 'several devices share one container: one mapping per slab serves all of them', () => {
    const second = envValue('DMAPOOL_VFIO_BDF2');
    const dev = openDevice(`vfio:${bdf},${second}`);
    try {
      const p = vfioProvider(dev);
      if (p.container instanceof VfioContainer) assert.equal(p.container.groups.size, 2);
      else {
        assert.ok(p.container instanceof IommufdContext);
        assert.equal(new Set(p.container.devIds).size, 2, 'both devices bound to the one iommufd');
      }
      assert.equal(p.devices.length, 2);
      const pool = dev.createPool('shared', 1024);
      const a = pool.alloc(), b = pool.alloc();
      pool.view(a).fill(0x77);
      const edu = new Edu(dev.pci(bdf));
      edu.toDevice(a, 0, 1024);
      edu.fromDevice(0, b, 1024);
      assert.ok(pool.view(b).every((x) => x === 0x77));
      assert.equal(p.counters.iommuMaps, 1, 'the mapping is per container / IOAS, not per device');
      assert.equal(dev.pci(second).configRead16(0), 0x1b36, 'the second device (QEMU NVMe) is reachable too');
      pool.free(a); pool.free(b);
    } finally {
      dev.close();
    }
  });
});
