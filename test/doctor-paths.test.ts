/**
 * dmapool doctor on the modern paths (fixture trees): which VFIO path vfio: takes (iommufd or the
 * type1 container) with the nodes each needs and how pinned memory is accounted; udmabuf's
 * module limits against the slab size. The real runs are in the VM test bed (guest B: iommufd,
 * udmabuf on 6.12; guest A: type1).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { doctor } from '../lib/cli/doctor';
import { IOMMU_ENV } from '../lib/vfio/iommu';
import { Fixture } from './fixtures';

const BDF = '0000:85:00.0';

/** VFIO-ready on both paths: IOMMU on, vfio-pci loaded, the group node, /dev/iommu and the device's cdev. */
function box(): Fixture {
  return new Fixture()
    .file('/proc/cmdline', 'intel_iommu=on iommu=pt\n')
    .file('/proc/self/status', 'CapEff:\t0000000000000000\n')
    .dir('/sys/bus/pci/drivers/vfio-pci').file('/dev/vfio/vfio', '')
    .pci({ bdf: BDF, driver: 'vfio-pci', group: 30 })
    .file('/dev/vfio/30', '')
    .file('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '65535\n')
    .file('/dev/iommu', '')
    .file(`/sys/bus/pci/devices/${BDF}/vfio-dev/vfio0/dev`, '237:0\n')
    .file('/dev/vfio/devices/vfio0', '');
}

const check = (r: ReturnType<typeof doctor>, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id}: ${r.checks.map((x) => x.id).join(', ')}`);
  return c;
};
const run = (fx: Fixture, memory = 64 << 20) => doctor({ bdf: BDF, sys: fx.sys, memory, memlock: { soft: 1 << 30, hard: 1 << 30 } });

describe('dmapool doctor: VFIO path and udmabuf limits (fixture trees)', () => {
  let saved: string | undefined;
  beforeEach(() => { saved = process.env[IOMMU_ENV]; delete process.env[IOMMU_ENV]; });
  afterEach(() => { if (saved === undefined) delete process.env[IOMMU_ENV]; else process.env[IOMMU_ENV] = saved; });

  it('iommufd path: /dev/iommu and the cdev are required, the group node and dma_entry_limit are not; accounting is per user', () => {
    const fx = box();
    try {
      fs.rmSync(fx.sys.path('/dev/vfio/30'));
      fx.file('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '1\n');
      const r = run(fx);
      assert.match(check(r, 'vfio-path').title, /iommufd/);
      assert.equal(check(r, 'iommufd').status, 'ok');
      assert.match(check(r, 'vfio-cdev').title, /\/dev\/vfio\/devices\/vfio0 readable and writable/);
      assert.equal(check(r, 'dma-entry-limit').status, 'skip', 'type1-only');
      assert.match(check(r, 'pin-accounting').title, /iommufd charges pinned pages to the user's locked_vm/);
      assert.ok(r.ok, JSON.stringify(r.checks.filter((c) => c.status === 'fail')));
    } finally { fx.cleanup(); }
  });

  it('iommufd path without the cdev node: ✗ with the fix, and not ok', () => {
    const fx = box();
    try {
      fs.rmSync(fx.sys.path('/dev/vfio/devices/vfio0'));
      const r = run(fx);
      assert.equal(check(r, 'vfio-cdev').status, 'fail');
      assert.match(check(r, 'vfio-cdev').title, /missing/);
      assert.equal(r.ok, false);
    } finally { fx.cleanup(); }
  });

  it('type1 path (no /dev/iommu, or forced): the group node is required, iommufd rows are skipped, accounting is per process', () => {
    const fx = box();
    try {
      fs.rmSync(fx.sys.path('/dev/iommu'));
      let r = run(fx);
      assert.match(check(r, 'vfio-path').title, /no \/dev\/iommu → VFIO type1 container/);
      assert.equal(check(r, 'iommufd').status, 'skip');
      assert.match(check(r, 'pin-accounting').title, /type1 charges pinned pages to this process's locked_vm/);
      assert.ok(r.ok);
      fx.file('/dev/iommu', '');
      process.env[IOMMU_ENV] = 'type1';
      fs.rmSync(fx.sys.path('/dev/vfio/30'));
      r = run(fx);
      assert.match(check(r, 'vfio-path').title, /DMAPOOL_VFIO_IOMMU=type1/);
      assert.equal(check(r, 'vfio-dev-access').status, 'fail', 'type1 needs /dev/vfio/<group>');
      assert.equal(r.ok, false);
    } finally { fx.cleanup(); }
  });

  it('a forced path that cannot work is ✗ with the reason', () => {
    const fx = box();
    try {
      fs.rmSync(fx.sys.path('/dev/iommu'));
      process.env[IOMMU_ENV] = 'iommufd';
      const r = run(fx);
      assert.equal(check(r, 'vfio-path').status, 'fail');
      assert.match(check(r, 'vfio-path').title, /\/dev\/iommu is missing/);
      assert.equal(r.ok, false);
    } finally { fx.cleanup(); }
  });

  it('udmabuf: size_limit_mb below the slab is ✗ with the echo that fixes it; list_limit is reported', () => {
    const fx = box().file('/dev/udmabuf', '')
      .file('/sys/module/udmabuf/parameters/size_limit_mb', '1\n').file('/sys/module/udmabuf/parameters/list_limit', '1024\n');
    try {
      let c = check(doctor({ sys: fx.sys, provider: 'udmabuf' }), 'udmabuf-limits');
      assert.equal(c.status, 'fail');
      assert.match(c.title, /size_limit_mb=1 .*does NOT fit.*list_limit=1024/);
      assert.match(c.fix ?? '', /echo 2 > \/sys\/module\/udmabuf\/parameters\/size_limit_mb/);
      fx.file('/sys/module/udmabuf/parameters/size_limit_mb', '64\n');
      c = check(doctor({ sys: fx.sys, provider: 'udmabuf' }), 'udmabuf-limits');
      assert.equal(c.status, 'ok');
      assert.match(c.title, /size_limit_mb=64 \(one dma-buf per 2048 KiB slab fits\)/);
    } finally { fx.cleanup(); }
  });
});
