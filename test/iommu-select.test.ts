/**
 * The vfio: IOMMU backend selection rule (lib/vfio/iommu.ts) on fixture sysfs/devfs trees: auto
 * takes iommufd exactly when /dev/iommu exists and every device has a VFIO cdev
 * (/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN); the option beats DMAPOOL_VFIO_IOMMU; a forced
 * backend without its kernel interface is ENODEV naming what is missing. The backends themselves
 * run against real devices in the VM test bed (type1 in guest A, iommufd in guest B).
 */
import assert from 'node:assert/strict';
import { DmaPoolError, openDevice } from '../lib';
import { IOMMU_ENV, selectIommu, vfioCdevName } from '../lib/vfio/iommu';
import { Fixture } from './fixtures';

const isErr = (code: string, re: RegExp, hintRe?: RegExp) => (e: unknown) =>
  e instanceof DmaPoolError && e.code === code && re.test(e.message) && (!hintRe || hintRe.test(e.hint ?? ''));

const A = '0000:00:03.0', B = '0000:00:04.0';

/** A tree with two vfio-pci functions; `cdevs` of them have a VFIO cdev; /dev/iommu and /dev/vfio/vfio optional. */
function tree(o: { iommu: boolean; container: boolean; cdevs: string[] }): Fixture {
  const fx = new Fixture().pci({ bdf: A, driver: 'vfio-pci', group: 5 }).pci({ bdf: B, driver: 'vfio-pci', group: 6 });
  o.cdevs.forEach((b, i) => fx.file(`/sys/bus/pci/devices/${b}/vfio-dev/vfio${i}/dev`, `237:${i}\n`));
  if (o.iommu) fx.file('/dev/iommu', '');
  if (o.container) fx.file('/dev/vfio/vfio', '');
  return fx;
}

describe('vfio: IOMMU backend selection (fixture trees)', () => {
  const fixtures: Fixture[] = [];
  const mk = (o: Parameters<typeof tree>[0]) => { const f = tree(o); fixtures.push(f); return f; };
  after(() => fixtures.forEach((f) => f.cleanup()));
  const noEnv = {};

  it('finds the cdev name in sysfs (and none where there is none)', () => {
    const fx = mk({ iommu: true, container: true, cdevs: [A] });
    assert.equal(vfioCdevName(A, fx.sys), 'vfio0');
    assert.equal(vfioCdevName(B, fx.sys), undefined);
  });

  it('auto: iommufd when /dev/iommu exists and every device has a cdev', () => {
    const fx = mk({ iommu: true, container: true, cdevs: [A, B] });
    assert.equal(selectIommu([A, B], undefined, fx.sys, noEnv).backend, 'iommufd');
    assert.equal(selectIommu([A], 'auto', fx.sys, noEnv).backend, 'iommufd');
  });

  it('auto: type1 when one device lacks a cdev, or /dev/iommu is missing — and says why', () => {
    const partial = mk({ iommu: true, container: true, cdevs: [A] });
    const s = selectIommu([A, B], undefined, partial.sys, noEnv);
    assert.deepEqual([s.backend, /0000:00:04.0 has no VFIO cdev/.test(s.reason)], ['type1', true]);
    const old = mk({ iommu: false, container: true, cdevs: [] });
    const t = selectIommu([A], undefined, old.sys, noEnv);
    assert.deepEqual([t.backend, /no \/dev\/iommu/.test(t.reason)], ['type1', true]);
    // a cdev without /dev/iommu (iommufd not loaded) is still type1
    const noFd = mk({ iommu: false, container: true, cdevs: [A] });
    assert.equal(selectIommu([A], undefined, noFd.sys, noEnv).backend, 'type1');
  });

  it('the option forces either way; the environment variable too; the option wins over it', () => {
    const fx = mk({ iommu: true, container: true, cdevs: [A, B] });
    assert.equal(selectIommu([A], 'type1', fx.sys, noEnv).backend, 'type1');
    assert.equal(selectIommu([A], undefined, fx.sys, { [IOMMU_ENV]: 'type1' }).backend, 'type1');
    assert.match(selectIommu([A], undefined, fx.sys, { [IOMMU_ENV]: 'type1' }).reason, /DMAPOOL_VFIO_IOMMU=type1/);
    assert.equal(selectIommu([A], 'iommufd', fx.sys, { [IOMMU_ENV]: 'type1' }).backend, 'iommufd');
    assert.equal(selectIommu([A], 'auto', fx.sys, { [IOMMU_ENV]: 'type1' }).backend, 'iommufd', "option 'auto' beats the variable");
    assert.equal(selectIommu([A], undefined, fx.sys, { [IOMMU_ENV]: '' }).backend, 'iommufd', 'an empty variable is unset');
  });

  it('a forced backend whose interface is missing is ENODEV naming what is missing', () => {
    const noIommu = mk({ iommu: false, container: true, cdevs: [A] });
    assert.throws(() => selectIommu([A], 'iommufd', noIommu.sys, noEnv), isErr('ENODEV', /\/dev\/iommu is missing/, /CONFIG_IOMMUFD/));
    const noCdev = mk({ iommu: true, container: true, cdevs: [A] });
    assert.throws(() => selectIommu([A, B], undefined, noCdev.sys, { [IOMMU_ENV]: 'iommufd' }),
      isErr('ENODEV', /DMAPOOL_VFIO_IOMMU=iommufd: no VFIO cdev for 0000:00:04.0/, /CONFIG_VFIO_DEVICE_CDEV/));
    const noContainer = mk({ iommu: true, container: false, cdevs: [A] });
    assert.throws(() => selectIommu([A], 'type1', noContainer.sys, noEnv), isErr('ENODEV', /\/dev\/vfio\/vfio .* is missing/, /CONFIG_VFIO_CONTAINER/));
  });

  it('a bad value in the variable or the option is EINVAL', () => {
    const fx = mk({ iommu: true, container: true, cdevs: [A] });
    assert.throws(() => selectIommu([A], undefined, fx.sys, { [IOMMU_ENV]: 'iommufd2' }), isErr('EINVAL', /DMAPOOL_VFIO_IOMMU must be one of auto, iommufd, type1, got 'iommufd2'/));
    assert.throws(() => selectIommu([A], 'x' as never, fx.sys, noEnv), isErr('EINVAL', /option iommu must be one of/));
  });

  it('openDevice takes the option and reaches the selection (the backend then opens the real node)', () => {
    const fx = mk({ iommu: false, container: true, cdevs: [A] });
    // forced iommufd on a tree without /dev/iommu: the selection's ENODEV, before any device node is opened
    assert.throws(() => openDevice(`vfio:${A}`, { sys: fx.sys, iommu: 'iommufd' }), isErr('ENODEV', /iommu: 'iommufd': \/dev\/iommu is missing/));
  });
});
