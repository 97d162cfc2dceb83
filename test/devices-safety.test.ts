/**
 * Safety (#9), against fixture sysfs/procfs trees only — nothing here touches this host's PCI
 * devices: a function the kernel owns is neither opened by `uio:` nor taken by `bind` without
 * --force (and the refusal names its disks, mounts, swap and links); `unbind` writes back only
 * a validated driver name; sysfs write failures keep their errno; `openDevice` never hands out
 * fake addresses unless asked, and rejects bad arguments with EINVAL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DmaPoolError, openDevice } from '../lib';
import { bind, kernelUsers, unbind } from '../lib/cli/bind';
import { doctor } from '../lib/cli/doctor';
import { checkUioDriver } from '../lib/pci';
import { SysRoot } from '../lib/sysfs';
import { Fixture } from './fixtures';
import { itIf, needs, RUNS_IN } from './helpers';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

const isErr = (code: string, re: RegExp, hintRe?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DmaPoolError, `not a DmaPoolError: ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
  if (hintRe) assert.match(e.hint ?? '', hintRe);
  return true;
};

/** The host's disk and network as a fixture: virtio functions on virtio-pci, plus a vsock one. */
function kernelBox(): Fixture {
  return new Fixture()
    .dir('/sys/bus/pci/drivers/vfio-pci').dir('/sys/bus/pci/drivers/uio_pci_generic')
    .file('/sys/bus/pci/drivers_probe', '')
    // 00:01.0 virtio-vsock: nothing in sysfs says what uses it
    .pci({ bdf: '0000:00:01.0', vendor: '1af4', device: '1053', cls: '0x078000', driver: 'virtio-pci' })
    // 00:02.0 virtio-blk: the root filesystem and swap
    .pci({ bdf: '0000:00:02.0', vendor: '1af4', device: '1042', cls: '0x010000', driver: 'virtio-pci' })
    .disk('0000:00:02.0', 'virtio1/block', 'vda', '254:0', ['vda1', 'vda2'])
    .mount('254:1', '/dev/vda1', '/').file('/proc/swaps', 'Filename\tType\tSize\tUsed\tPriority\n/dev/vda2 partition 1048572 0 -2\n')
    // 00:03.0 virtio-net: eth0 up
    .pci({ bdf: '0000:00:03.0', vendor: '1af4', device: '1041', cls: '0x020000', driver: 'virtio-pci' })
    .netif('0000:00:03.0', 'virtio2/net', 'eth0', 'up')
    // 00:04.0 NVMe: no block/ glue directory; /boot mounted as /dev/root (matched by device number)
    .pci({ bdf: '0000:00:04.0', cls: '0x010802', driver: 'nvme' })
    .disk('0000:00:04.0', 'nvme/nvme0', 'nvme0n1', '259:0', ['nvme0n1p1']).mount('259:1', '/dev/root', '/boot\\040efi', 'vfat')
    // 00:05.0 SAS HBA: sda1 under LVM, mounted through /dev/mapper; eth1 on another function is down
    .pci({ bdf: '0000:00:05.0', cls: '0x010700', driver: 'mpt3sas' })
    .disk('0000:00:05.0', 'host0/target0:0:0/0:0:0:0/block', 'sda', '8:0', ['sda1'])
    .file('/sys/devices/virtual/block/dm-0/dev', '253:0\n').file('/sys/devices/virtual/block/dm-0/dm/name', 'vg-home\n')
    .link('/sys/class/block/dm-0', '../../devices/virtual/block/dm-0')
    .dir('/sys/bus/pci/devices/0000:00:05.0/host0/target0:0:0/0:0:0:0/block/sda/sda1/holders/dm-0')
    .mount('0:44', '/dev/mapper/vg-home', '/home', 'btrfs')
    // 00:06.0 Ethernet with its link down; 00:07.0 unbound; 00:08.0 a vendor driver that registered uio0
    .pci({ bdf: '0000:00:06.0', cls: '0x020000', driver: 'ixgbe' }).netif('0000:00:06.0', 'net', 'eth1', 'down')
    .pci({ bdf: '0000:00:07.0' })
    .pci({ bdf: '0000:00:08.0', driver: 'acme_uio' }).dir('/sys/bus/pci/devices/0000:00:08.0/uio/uio0');
}

/** Everything bind/unbind could write, to prove a refusal wrote nothing. */
function writes(fx: Fixture, bdf: string) {
  return {
    override: fx.sys.read(`/sys/bus/pci/devices/${bdf}/driver_override`),
    probe: fx.sys.read('/sys/bus/pci/drivers_probe'),
    unbind: fs.readdirSync(fx.sys.path('/sys/bus/pci/drivers')).filter((d) => fx.sys.exists(`/sys/bus/pci/drivers/${d}/unbind`)),
    state: fx.sys.list('/run/dmapool'),
  };
}

describe('uio: only a function on a UIO driver (checkUioDriver)', () => {
  let fx: Fixture;
  before(() => {
    fx = kernelBox().pci({ bdf: '0000:00:09.0', driver: 'uio_pci_generic' }).pci({ bdf: '0000:00:0a.0', driver: 'igb_uio' })
      .pci({ bdf: '0000:00:0b.0', driver: 'vfio-pci', group: 3 });
  });
  after(() => fx.cleanup());

  it('refuses the function of the host disk (virtio-pci), naming the driver, with bind --force', () => {
    assert.throws(() => checkUioDriver('0000:00:02.0', fx.sys),
      isErr('ENODEV', /0000:00:02.0 is bound to virtio-pci, not to a UIO driver/, /^dmapool bind 0000:00:02.0 --driver uio_pci_generic --force/));
  });
  it('refuses a function with no driver (bind without --force) and one on vfio-pci', () => {
    assert.throws(() => checkUioDriver('00:07.0', fx.sys),
      isErr('ENODEV', /bound to no driver/, /^dmapool bind 0000:00:07.0 --driver uio_pci_generic$/));
    assert.throws(() => checkUioDriver('0000:00:0b.0', fx.sys),
      isErr('ENODEV', /bound to vfio-pci/, /^dmapool bind 0000:00:0b.0 --driver uio_pci_generic$/));
  });
  it('accepts uio_pci_generic, igb_uio and any driver that registered a uio device', () => {
    assert.equal(checkUioDriver('0000:00:09.0', fx.sys), 'uio_pci_generic');
    assert.equal(checkUioDriver('00:0a.0', fx.sys), 'igb_uio');
    assert.equal(checkUioDriver('0000:00:08.0', fx.sys), 'acme_uio');
  });
  it('doctor --provider uio applies the same rule', () => {
    const drv = (bdf: string) => doctor({ bdf, provider: 'uio', sys: fx.sys, memlock: { soft: Infinity, hard: Infinity } })
      .checks.find((c) => c.id === 'driver')!;
    assert.equal(drv('0000:00:07.0').status, 'fail', 'no driver is not a UIO driver');
    assert.equal(drv('0000:00:07.0').fix, 'dmapool bind 0000:00:07.0 --driver uio_pci_generic');
    assert.equal(drv('0000:00:02.0').status, 'fail');
    assert.match(drv('0000:00:02.0').fix ?? '', /--driver uio_pci_generic --force/);
    assert.match(drv('0000:00:02.0').detail ?? '', /vda1 \(mounted on \/\)/);
    assert.equal(drv('0000:00:08.0').status, 'ok');
  });
});

describe('bind: a kernel-owned function needs --force and the refusal names its users', () => {
  let fx: Fixture;
  beforeEach(() => { fx = kernelBox(); });
  afterEach(() => fx.cleanup());
  const opts = () => ({ sys: fx.sys, modprobe: false, stateDir: fx.sys.path('/run/dmapool') });

  it('finds disks, partitions, mounts, swap, stacked dm devices and links that are up, in every sysfs layout', () => {
    assert.deepEqual(kernelUsers('0000:00:02.0', fx.sys), ['vda', 'vda1 (mounted on /)', 'vda2 (swap)']);
    assert.deepEqual(kernelUsers('0000:00:03.0', fx.sys), ['eth0 (up)']);
    assert.deepEqual(kernelUsers('0000:00:04.0', fx.sys), ['nvme0n1', 'nvme0n1p1 (mounted on /boot efi)']);
    assert.deepEqual(kernelUsers('0000:00:05.0', fx.sys), ['sda', 'sda1', 'dm-0 (mounted on /home)']);
    assert.deepEqual(kernelUsers('0000:00:06.0', fx.sys), [], 'a link that is down is no user');
    assert.deepEqual(kernelUsers('0000:00:01.0', fx.sys), []);
  });

  const refused: [string, string, RegExp][] = [
    ['virtio-vsock (no class guard applies)', '0000:00:01.0', /bound to the kernel driver virtio-pci \(no disk or network interface/],
    ['the host disk', '0000:00:02.0', /bound to the kernel driver virtio-pci, in use by vda, vda1 \(mounted on \/\), vda2 \(swap\)/],
    ['the host network', '0000:00:03.0', /in use by eth0 \(up\)/],
    ['an NVMe drive', '0000:00:04.0', /nvme, in use by nvme0n1, nvme0n1p1 \(mounted on \/boot efi\)/],
    ['a SAS HBA under LVM', '0000:00:05.0', /mpt3sas, in use by sda, sda1, dm-0 \(mounted on \/home\)/],
  ];
  for (const [what, bdf, re] of refused) {
    it(`refuses ${what} with EBUSY and writes nothing`, () => {
      const before = writes(fx, bdf);
      assert.throws(() => bind(bdf, 'vfio-pci', opts()), isErr('EBUSY', re, new RegExp(`--force: dmapool bind ${bdf} --force$`)));
      assert.throws(() => bind(bdf, 'uio_pci_generic', opts()), isErr('EBUSY', re, /dmapool bind \S+ --driver uio_pci_generic --force$/));
      assert.deepEqual(writes(fx, bdf), before);
    });
  }

  it('takes it with --force (the fixture kernel then leaves it unbound)', () => {
    assert.throws(() => bind('0000:00:01.0', 'vfio-pci', { ...opts(), force: true }), isErr('ENODEV', /did not bind to vfio-pci/));
    assert.equal(fx.sys.read('/sys/bus/pci/devices/0000:00:01.0/driver_override'), 'vfio-pci');
    assert.equal(fx.sys.read('/sys/bus/pci/drivers/virtio-pci/unbind'), '0000:00:01.0');
  });

  it('binds a function with no driver, or on a driver that hands it to userspace, without --force', () => {
    for (const bdf of ['0000:00:07.0', '0000:00:08.0']) {
      assert.throws(() => bind(bdf, 'vfio-pci', opts()), isErr('ENODEV', /did not bind to vfio-pci/), bdf);
      assert.equal(fx.sys.read(`/sys/bus/pci/devices/${bdf}/driver_override`), 'vfio-pci');
    }
  });

  it('the command line prints the users and the --force hint, exit 1', () => {
    const out = spawnSync(process.execPath, [CLI, 'bind', '0000:00:02.0', '--root', fx.root], { encoding: 'utf8' });
    assert.equal(out.status, 1);
    assert.match(out.stderr, /^dmapool: EBUSY: 0000:00:02.0 is bound to the kernel driver virtio-pci, in use by vda/);
    assert.match(out.stderr, /\nhint: once nothing uses it, add --force: dmapool bind 0000:00:02.0 --force\n$/);
    const forced = spawnSync(process.execPath, [CLI, 'bind', '0000:00:01.0', '--force', '--root', fx.root], { encoding: 'utf8' });
    assert.match(forced.stderr, /did not bind to vfio-pci/);
  });
});

describe('unbind: writes back only a validated driver name', () => {
  let fx: Fixture;
  const bdf = '0000:00:0c.0';
  const stateDir = () => fx.sys.path('/run/dmapool');
  beforeEach(() => {
    fx = kernelBox().pci({ bdf, driver: 'vfio-pci', group: 12 });
  });
  afterEach(() => fx.cleanup());
  const remember = (content: string) => fx.file(`/run/dmapool/${bdf}.json`, content);

  const bad: [string, string, RegExp][] = [
    ['a newline and a path', JSON.stringify({ bdf, previous: 'virtio-pci\n0000:00:02.0' }), /not a driver name/],
    ['a relative path', JSON.stringify({ bdf, previous: '../../../devices' }), /not a driver name/],
    ['"..", which exists as a directory', JSON.stringify({ bdf, previous: '..' }), /not a driver name/],
    ['a number', JSON.stringify({ bdf, previous: 42 }), /not a driver name/],
    ['a driver this kernel does not have', JSON.stringify({ bdf, previous: 'nosuchdrv' }), /'nosuchdrv', which is not a PCI driver here/],
    ['broken JSON', '{"bdf": "0000:00:0c.0", "prev', /is not valid JSON/],
  ];
  for (const [what, content, re] of bad) {
    it(`refuses ${what} with EINVAL and writes nothing`, () => {
      remember(content);
      const before = writes(fx, bdf);
      assert.throws(() => unbind(bdf, { sys: fx.sys, modprobe: false, stateDir: stateDir() }), isErr('EINVAL', re));
      assert.deepEqual(writes(fx, bdf), before);
    });
  }

  it('restores a remembered driver that exists', () => {
    remember(JSON.stringify({ bdf, previous: 'uio_pci_generic' }));
    // the fixture kernel does not rebind: the restore is reported, after the right writes
    assert.throws(() => unbind(bdf, { sys: fx.sys, modprobe: false, stateDir: stateDir() }), isErr('ENODEV', /did not return to uio_pci_generic/));
    assert.equal(fx.sys.read('/sys/bus/pci/drivers/vfio-pci/unbind'), bdf);
    assert.equal(fx.sys.read('/sys/bus/pci/drivers_probe'), bdf);
  });

  it('leaves a function on a kernel driver alone unless --force', () => {
    const before = writes(fx, '0000:00:02.0');
    assert.throws(() => unbind('0000:00:02.0', { sys: fx.sys, modprobe: false, stateDir: stateDir() }),
      isErr('EBUSY', /virtio-pci, in use by vda/, /dmapool unbind 0000:00:02.0 --force$/));
    assert.deepEqual(writes(fx, '0000:00:02.0'), before);
    // already given back to the driver it had: nothing to do but forget it
    fx.file('/run/dmapool/0000:00:02.0.json', JSON.stringify({ bdf: '0000:00:02.0', previous: 'virtio-pci' }));
    const r = unbind('0000:00:02.0', { sys: fx.sys, modprobe: false, stateDir: stateDir() });
    assert.deepEqual([r.changed, r.driver], [false, 'virtio-pci']);
    assert.deepEqual(writes(fx, '0000:00:02.0'), before);
  });
});

describe('bind / unbind keep the errno of a failed sysfs write', () => {
  let fx: Fixture;
  beforeEach(() => { fx = kernelBox(); });
  afterEach(() => fx.cleanup());

  it('EISDIR stays EISDIR (not EINVAL), with syscall and path', () => {
    fs.rmSync(fx.sys.path('/sys/bus/pci/devices/0000:00:07.0/driver_override'));
    fx.dir('/sys/bus/pci/devices/0000:00:07.0/driver_override');
    assert.throws(() => bind('0000:00:07.0', 'vfio-pci', { sys: fx.sys, modprobe: false, stateDir: fx.sys.path('/run/dmapool') }), (e: unknown) =>
      isErr('EISDIR', /writing 'vfio-pci' to \/sys\/bus\/pci\/devices\/0000:00:07.0\/driver_override/)(e) &&
      (e as DmaPoolError).syscall === 'open' && /driver_override$/.test((e as DmaPoolError).path ?? ''));
  });

  it('ENOENT stays ENOENT (a driver that vanished under the function)', () => {
    fx.pci({ bdf: '0000:00:0d.0' }).link('/sys/bus/pci/devices/0000:00:0d.0/driver', '../../drivers/gone');
    const stateDir = fx.sys.path('/run/dmapool');
    assert.throws(() => bind('0000:00:0d.0', 'vfio-pci', { sys: fx.sys, modprobe: false, stateDir, force: true }), (e: unknown) =>
      isErr('ENOENT', /writing '0000:00:0d.0' to .*driver\/unbind/)(e));
  });
});

describe('openDevice: real addresses or an error, never silent sim', () => {
  let saved: string | undefined;
  let fx: Fixture;
  beforeEach(() => {
    saved = process.env.DMAPOOL_DEVICE;
    delete process.env.DMAPOOL_DEVICE;
    fx = new Fixture().file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '0\n');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.DMAPOOL_DEVICE; else process.env.DMAPOOL_DEVICE = saved;
    fx.cleanup();
  });

  it('auto with no device-visible provider throws ENODEV pointing to dmapool doctor', () => {
    assert.throws(() => openDevice('auto', { sys: fx.sys }),
      isErr('ENODEV', /no device-visible memory: DMAPOOL_DEVICE is unset and \/dev\/udmabuf is missing/, /dmapool doctor.*DMAPOOL_DEVICE/));
  });

  const noUdmabuf = needs.path('/dev/udmabuf', false, 'a machine without /dev/udmabuf', RUNS_IN.noUdmabuf);
  itIf(noUdmabuf, 'openDevice() with no arguments is auto: ENODEV on this host (no /dev/udmabuf)', () => {
    assert.throws(() => openDevice(), isErr('ENODEV', /no device-visible memory/));
  });

  it('a provider that is present but fails throws its own error, no fallback', () => {
    fx.dir('/dev/udmabuf'); // exists, but open(O_RDWR) fails
    assert.throws(() => openDevice('auto', { sys: fx.sys }), isErr('EISDIR', /udmabuf/));
  });

  it('sim only on request: allowSim says it is NOT device-visible, and why', () => {
    const d = openDevice('auto', { sys: fx.sys, allowSim: true });
    try {
      assert.equal(d.kind, 'sim');
      assert.equal(d.deviceVisible, false);
      assert.match(d.reason, /allowSim.*no \/dev\/udmabuf; using sim \(fake IOVAs, NOT device-visible\)/);
    } finally { d.close(); }
    fx.dir('/dev/udmabuf');
    const f = openDevice('auto', { sys: fx.sys, allowSim: true });
    try {
      assert.match(f.reason, /\/dev\/udmabuf present but unusable \(EISDIR.*\); using sim \(fake IOVAs, NOT device-visible\)/);
    } finally { f.close(); }
    process.env.DMAPOOL_DEVICE = 'sim';
    const e = openDevice('auto', { sys: fx.sys });
    try {
      assert.match(e.reason, /DMAPOOL_DEVICE=sim → sim \(fake IOVAs, NOT device-visible\)/);
    } finally { e.close(); }
  });

  itIf(noUdmabuf, 'dmapool bench still runs on auto: it opts in to sim and says so', () => {
    const env = { ...process.env };
    delete env.DMAPOOL_DEVICE;
    const out = spawnSync(process.execPath, [CLI, 'bench', '-n', '2000', '--reps', '1', '--warmups', '0', '--no-cold',
      '--no-dmapool-test', '-s', 'rbtree', '-w', 'seed-alloc'], { encoding: 'utf8', env });
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stderr, /provider: sim: .*NOT device-visible\nauto \(allowSim\): .*NOT device-visible/);
    const json = spawnSync(process.execPath, [CLI, 'bench', '--json', '-n', '2000', '--reps', '1', '--warmups', '0', '--no-cold',
      '--no-dmapool-test', '-s', 'rbtree', '-w', 'seed-alloc'], { encoding: 'utf8', env });
    const j = JSON.parse(json.stdout) as { provider: string; deviceVisible: boolean };
    assert.deepEqual([j.provider, j.deviceVisible], ['sim', false]);
  });
});

describe('openDevice validates its arguments (DmaPoolError EINVAL, never TypeError)', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['a number as spec', () => openDevice(42 as never), /spec must be a string, got number/],
    ['null as spec', () => openDevice(null as never), /spec must be a string, got null/],
    ['an unknown spec', () => openDevice('simm'), /unknown device spec 'simm'/],
    ['null options', () => openDevice('sim', null as never), /options must be an object, got null/],
    ['an array of options', () => openDevice('sim', [] as never), /options must be an object, got an array/],
    ['a string as options', () => openDevice('sim', 'lock' as never), /options must be an object, got string/],
    ['a misspelt option', () => openDevice('sim', { aling: 16 } as never), /unknown option 'aling'/],
    ['a pool option given to the device', () => openDevice('sim', { boundary: 4096 } as never), /unknown option 'boundary'/],
    ['slabSize as a string', () => openDevice('sim', { slabSize: '2M' } as never), /option slabSize must be a positive integer, got '2M'/],
    ['slabSize 0', () => openDevice('sim', { slabSize: 0 }), /option slabSize must be a positive integer, got 0/],
    ['lock as a number', () => openDevice('sim', { lock: 1 } as never), /option lock must be a boolean, got 1/],
    ['iovaBase negative', () => openDevice('sim', { iovaBase: -4096 }), /option iovaBase must be a non-negative integer/],
    ['hugepages as a string', () => openDevice('udmabuf', { hugepages: 'yes' } as never), /option hugepages must be a boolean/],
    ['sys as a string', () => openDevice('udmabuf', { sys: '/' } as never), /option sys must be a SysRoot/],
    ['allowSim as a string', () => openDevice('auto', { allowSim: 'true' } as never), /option allowSim must be a boolean/],
    ['an unknown iommu backend', () => openDevice('vfio:0000:00:03.0', { iommu: 'iommu' } as never), /option iommu must be one of 'auto', 'iommufd', 'type1', got 'iommu'/],
  ];
  for (const [what, call, re] of bad) it(`rejects ${what}`, () => assert.throws(call, isErr('EINVAL', re)));

  it('names the known options in the hint, and accepts them', () => {
    assert.throws(() => openDevice('sim', { aling: 16 } as never),
      isErr('EINVAL', /aling/, /slabSize, lock, iovaBase, iovaFloor, hugepages, allowSim, sys, iommu/));
    const d = openDevice('sim', { slabSize: 1 << 21, lock: false, iovaBase: 2 ** 33, sys: new SysRoot('/'), hugepages: undefined });
    try {
      assert.equal(d.pools.length, 0);
    } finally { d.close(); }
  });
});
