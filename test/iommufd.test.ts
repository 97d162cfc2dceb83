/**
 * iommufd against the real kernel (the VM test bed's guest B, Linux 6.12): the shim's calls on a
 * real /dev/iommu and VFIO cdev, and the vfio: provider on the iommufd path. Skips with the reason
 * where /dev/iommu or a vfio: device is missing. DMAPOOL_EXPECT_IOMMU=iommufd (guest B) turns a
 * provider that picked type1 into a failure instead of a silent fallback.
 */
import assert from 'node:assert/strict';
import { DmaPoolError, openDevice } from '../lib';
import { native } from '../lib/native';
import { VfioProvider } from '../lib/providers/vfio';
import { vfioCdevName } from '../lib/vfio/iommu';
import { IommufdContext } from '../lib/vfio/iommufd';
import { allOf, describeIf, deviceSpecs, needs, RUNS_IN } from './helpers';

const code = (c: string) => (e: unknown) => e instanceof DmaPoolError && e.code === c;
const spec = deviceSpecs().find((s) => s.startsWith('vfio:'));

const gate = allOf(needs.path('/dev/iommu', true, '/dev/iommu (iommufd)', RUNS_IN.guestB),
  needs.testDevice('a vfio-pci device (a vfio: spec)', RUNS_IN.guestB, (s) => s.startsWith('vfio:')));

describeIf(gate, 'iommufd (real /dev/iommu)', function () {
  const bdf = spec!.slice(5).split(',')[0];

  it('the provider takes the iommufd path (auto) and says so; type1 stays available when forced', () => {
    const dev = openDevice(spec);
    try {
      const p = dev.provider as VfioProvider;
      if (process.env.DMAPOOL_EXPECT_IOMMU === 'iommufd') assert.equal(p.container.backend, 'iommufd', p.description);
      assert.ok(p.container instanceof IommufdContext);
      assert.match(p.description, /iommufd: \/dev\/iommu IOAS \d+, VFIO cdev/);
      assert.match(p.description, /auto: \/dev\/iommu and the VFIO cdev exist → iommufd/);
    } finally {
      dev.close();
    }
    // the same device through the legacy container, in the same kernel
    const t1 = openDevice(spec, { iommu: 'type1' });
    try {
      assert.equal((t1.provider as VfioProvider).container.backend, 'type1');
      const pool = t1.createPool('t1', 256);
      const d = pool.alloc();
      pool.free(d);
    } finally {
      t1.close();
    }
  });

  it('shim calls on a real iommufd: ranges, fixed-IOVA map recorded as DMA-mapped (unmap EBUSY), EEXIST, ENOENT, unmap', () => {
    const n = native();
    const fd = n.open('/dev/iommu', n.constants.O_RDWR);
    const m = n.mapAnonymous(2 << 20, 2 << 20, { populate: true });
    try {
      const ioas = n.iommufdIoasAlloc(fd);
      assert.ok(ioas > 0);
      const r = n.iommufdIovaRanges(fd, ioas);
      assert.ok(r.ranges.length >= 1 && r.alignment >= 1n);
      assert.ok(r.ranges.every((x) => x.last >= x.start));
      expectCode(() => n.iommufdIovaRanges(fd, ioas + 1000), 'ENOENT');
      n.iommufdMapDma(fd, ioas, m.id, 0, 2 << 20, 0x40000000);
      assert.throws(() => n.unmap(m.id), code('EBUSY'), 'memory the IOMMU maps must not be unmapped');
      assert.throws(() => n.iommufdMapDma(fd, ioas, m.id, 0, 4096, 0x40000000), code('EEXIST'));
      assert.throws(() => n.iommufdUnmapDma(fd, ioas, 0x80000000, 4096), code('ENOENT'));
      assert.equal(n.iommufdUnmapDma(fd, ioas, 0x40000000, 2 << 20), 2 << 20);
      assert.equal(n.iommufdGetOption(fd, 0, 0), 0, 'default accounting: per user');
    } finally {
      n.close(fd);
      assert.equal(n.unmap(m.id), true, 'unmapped from the IOAS: the memory unmaps');
    }
    // closed: EBADF, nothing reaches the kernel
    assert.throws(() => n.iommufdIoasAlloc(fd), code('EBADF'));
  });

  it('closing the iommufd with a live mapping leaves the memory busy (leaked, never reused under a device)', () => {
    const n = native();
    const fd = n.open('/dev/iommu', n.constants.O_RDWR);
    const m = n.mapAnonymous(2 << 20, 2 << 20, { populate: true });
    const ioas = n.iommufdIoasAlloc(fd);
    n.iommufdMapDma(fd, ioas, m.id, 0, 2 << 20, 0x40000000);
    n.close(fd);
    assert.throws(() => n.unmap(m.id), code('EBUSY'));
  });

  it('a device cdev binds once: a second open of the same device is EBUSY with a hint', () => {
    assert.ok(vfioCdevName(bdf), 'the device has a cdev');
    const dev = openDevice(spec);
    try {
      assert.throws(() => openDevice(spec), (e: unknown) => e instanceof DmaPoolError && e.code === 'EBUSY' && /already open/.test(e.hint ?? ''));
      // the shim refuses a non-iommufd fd in the bind struct before the kernel sees it
      const n = native();
      const cdev = n.open(`/dev/vfio/devices/${vfioCdevName(bdf)}`, n.constants.O_RDWR);
      const notFd = n.open('/dev/null', n.constants.O_RDWR);
      try {
        assert.throws(() => n.vfioDeviceBindIommufd(cdev, notFd), code('EBADF'));
      } finally {
        n.close(notFd); n.close(cdev);
      }
    } finally {
      dev.close();
    }
  });
});

function expectCode(fn: () => unknown, c: string): void {
  assert.throws(fn, code(c));
}
