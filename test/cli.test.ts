/**
 * doctor / bind / devices against fixture sysfs+procfs trees (the --root test option): every
 * failure mode prints its fix. The real runs (bind edu, doctor all ✓, unbind restores) are in
 * the VM test bed, guest A.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DmaPoolError } from '../lib';
import { bind, unbind } from '../lib/bind';
import { devices, doctor, parseSize } from '../lib/doctor';
import { Fixture } from './fixtures';

const CLI = path.join(__dirname, '..', 'lib', 'cli.js');

/** A box that is ready for VFIO: IOMMU on, vfio-pci loaded, the HBA bound, limits fine. */
function readyBox(): Fixture {
  return new Fixture()
    .file('/proc/cmdline', 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt\n')
    .file('/proc/self/status', 'CapEff:\t000001ffffffffff\n')
    .link('/proc/self/pagemap', '/proc/self/pagemap')
    .dir('/sys/bus/pci/drivers/vfio-pci').file('/dev/vfio/vfio', '')
    .pci({ bdf: '0000:85:00.0', vendor: '1000', device: '0097', cls: '0x010700', driver: 'vfio-pci', group: 30 })
    .pci({ bdf: '0000:80:07.0', vendor: '8086', device: '2f07', cls: '0x060400', driver: 'pcieport', group: 30 })
    .file('/dev/vfio/30', '')
    .file('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '65535\n')
    .file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '64\n')
    .file('/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages', '0\n');
}

function check(r: ReturnType<typeof doctor>, id: string) {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id}`);
  return c;
}

describe('dmapool doctor (fixture trees)', () => {
  it('all ✓ on a ready box: exit 0', () => {
    const fx = readyBox();
    try {
      const r = doctor({ bdf: '85:00.0', sys: fx.sys });
      assert.ok(r.ok, JSON.stringify(r.checks.filter((c) => c.status === 'fail')));
      assert.match(check(r, 'group').title, /0000:80:07.0 \(pcieport\)/);
      const out = spawnSync(process.execPath, [CLI, 'doctor', '0000:85:00.0', '--root', fx.root], { encoding: 'utf8' });
      assert.equal(out.status, 0, out.stdout + out.stderr);
      assert.match(out.stdout, /✓ IOMMU enabled \(1 groups; intel_iommu=on iommu=pt\)/);
      assert.match(out.stdout, /vfio can work here/);
      const json = JSON.parse(execFileSync(process.execPath, [CLI, 'doctor', '0000:85:00.0', '--json', '--root', fx.root], { encoding: 'utf8' }));
      assert.equal(json.ok, true);
    } finally { fx.cleanup(); }
  });

  const failures: [string, (fx: Fixture) => void, string, RegExp][] = [
    ['IOMMU off', (fx) => { fs.rmSync(fx.sys.path('/sys/kernel/iommu_groups'), { recursive: true }); fx.file('/proc/cmdline', 'quiet\n'); },
      'iommu', /intel_iommu=on iommu=pt.*update-grub/],
    ['vfio-pci not loaded', (fx) => fs.rmSync(fx.sys.path('/sys/bus/pci/drivers/vfio-pci'), { recursive: true }),
      'vfio-modules', /modprobe vfio-pci/],
    ['device on its kernel driver', (fx) => fx.link('/sys/bus/pci/devices/0000:85:00.0/driver', '../../drivers/mpt3sas'),
      'driver', /dmapool bind 0000:85:00.0 --driver vfio-pci/],
    ['group not viable', (fx) => fx.pci({ bdf: '0000:85:00.1', cls: '0x010700', driver: 'mpt3sas', group: 30 }),
      'group', /dmapool bind 0000:85:00.1/],
    ['/dev/vfio/N missing', (fx) => fs.rmSync(fx.sys.path('/dev/vfio/30')), 'vfio-dev-access', /dmapool bind/],
    ['RLIMIT_MEMLOCK too low', (fx) => fx.file('/proc/self/status', 'CapEff:\t0000000000000000\n'),
      'memlock', /ulimit -l 1048576/],
    ['dma_entry_limit too low', (fx) => fx.file('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '100\n'),
      'dma-entry-limit', /echo 512 > \/sys\/module\/vfio_iommu_type1\/parameters\/dma_entry_limit/],
    ['device missing', (fx) => fs.rmSync(fx.sys.path('/sys/bus/pci/devices/0000:85:00.0'), { recursive: true }),
      'device', /dmapool devices/],
  ];
  for (const [name, breakIt, id, fixRe] of failures) {
    it(`${name}: ✗ with its fix, exit 1`, () => {
      const fx = readyBox();
      try {
        breakIt(fx);
        const r = doctor({ bdf: '0000:85:00.0', sys: fx.sys, memory: parseSize('1G'), memlock: { soft: 8 << 20, hard: 8 << 20 } });
        const c = check(r, id);
        assert.equal(c.status, 'fail', JSON.stringify(c));
        assert.match(c.fix ?? '', fixRe);
        assert.equal(r.ok, false);
        const out = spawnSync(process.execPath, [CLI, 'doctor', '0000:85:00.0', '--memory', '1G', '--root', fx.root], { encoding: 'utf8' });
        assert.equal(out.status, 1);
        assert.match(out.stdout, /✗/);
        assert.match(out.stdout, /fix: /);
      } finally { fx.cleanup(); }
    });
  }

  it('udmabuf: missing node and no huge pages are reported with their fixes', () => {
    const fx = readyBox().file('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', '0\n');
    try {
      const r = doctor({ sys: fx.sys });
      assert.equal(r.provider, 'udmabuf');
      assert.equal(check(r, 'udmabuf').status, 'fail');
      assert.match(check(r, 'udmabuf').fix ?? '', /modprobe udmabuf/);
      assert.equal(check(r, 'hugepages-2 MiB').status, 'warn');
      assert.match(check(r, 'hugepages-2 MiB').fix ?? '', /nr_hugepages/);
      assert.equal(r.ok, false);
      fx.file('/dev/udmabuf', '');
      assert.equal(doctor({ sys: fx.sys }).ok, process.getuid?.() === 0, 'udmabuf works when the node exists and pagemap is readable');
    } finally { fx.cleanup(); }
  });

  it('uio: a device behind a translating IOMMU is refused with the vfio alternative', () => {
    const fx = readyBox().pci({ bdf: '0000:00:04.0', driver: 'uio_pci_generic', group: 9 }).file('/sys/kernel/iommu_groups/9/type', 'DMA\n');
    try {
      const r = doctor({ bdf: '0000:00:04.0', provider: 'uio', sys: fx.sys });
      assert.equal(check(r, 'untranslated').status, 'fail');
      assert.match(check(r, 'untranslated').fix ?? '', /vfio:0000:00:04.0/);
    } finally { fx.cleanup(); }
  });

  it('pagemap: the fix is the error\'s hint field, not text parsed out of the message', () => {
    const fx = new Fixture().file('/proc/self/pagemap', '');
    try {
      fs.truncateSync(fx.sys.path('/proc/self/pagemap'), 2 ** 40); // sparse: every entry reads "not present"
      const c = check(doctor({ sys: fx.sys, provider: 'udmabuf' }), 'pagemap');
      assert.equal(c.status, 'fail');
      assert.match(c.title, /^pagemap: EFAULT: page 0x[0-9a-f]+ is not present in memory$/);
      assert.equal(c.fix, 'the memory must be populated and locked before translation');
    } finally { fx.cleanup(); }
  });

  it('rejects an unknown provider with EINVAL (not a TypeError)', () => {
    assert.throws(() => doctor({ provider: 'dpdk' as never }), (e: unknown) =>
      e instanceof DmaPoolError && e.code === 'EINVAL' && /provider must be one of vfio, uio, udmabuf, got 'dpdk'/.test(e.message));
  });

  it('parses sizes', () => {
    assert.equal(parseSize('64M'), 64 << 20);
    assert.equal(parseSize('1G'), 2 ** 30);
    assert.equal(parseSize('4096'), 4096);
    assert.throws(() => parseSize('lots'), /bad size/);
  });
});

describe('dmapool bind / unbind / devices (fixture trees)', () => {
  it('refuses a function on a kernel driver without --force; the command line prints the hint', () => {
    const fx = readyBox().pci({ bdf: '0000:03:00.0', cls: '0x020000', driver: 'ixgbe', group: 40 }).dir('/sys/bus/pci/drivers/vfio-pci');
    try {
      assert.throws(() => bind('0000:03:00.0', 'vfio-pci', { sys: fx.sys, modprobe: false }), (e: unknown) =>
        e instanceof DmaPoolError && e.code === 'EBUSY' && /bound to the kernel driver ixgbe/.test(e.message) && /--force/.test(e.hint ?? ''));
      const out = spawnSync(process.execPath, [CLI, 'bind', '0000:03:00.0', '--root', fx.root], { encoding: 'utf8' });
      assert.equal(out.status, 1);
      assert.doesNotMatch(out.stderr.split('\n')[0], /--force/, 'the hint is not part of the message');
      assert.match(out.stderr, /\nhint: once nothing uses it, add --force: dmapool bind 0000:03:00.0 --force\n/);
    } finally { fx.cleanup(); }
  });

  it('names the module to load when the driver is missing', () => {
    const fx = readyBox().pci({ bdf: '0000:00:04.0' });
    try {
      assert.throws(() => bind('0000:00:04.0', 'uio_pci_generic', { sys: fx.sys, modprobe: false }), (e: unknown) =>
        e instanceof DmaPoolError && e.code === 'ENODEV' && /modprobe uio_pci_generic/.test(e.hint ?? ''));
    } finally { fx.cleanup(); }
  });

  it('writes driver_override, unbinds, probes — and reports when the kernel did not bind', () => {
    const fx = readyBox().pci({ bdf: '0000:00:04.0', driver: 'uio_pci_generic', group: 5 })
      .file('/sys/bus/pci/drivers/uio_pci_generic/unbind', '').file('/sys/bus/pci/drivers_probe', '');
    try {
      const stateDir = fx.sys.path('/run/dmapool');
      assert.throws(() => bind('0000:00:04.0', 'vfio-pci', { sys: fx.sys, modprobe: false, stateDir }), /did not bind to vfio-pci/);
      assert.equal(fx.sys.read('/sys/bus/pci/devices/0000:00:04.0/driver_override'), 'vfio-pci');
      assert.equal(fx.sys.read('/sys/bus/pci/drivers/uio_pci_generic/unbind'), '0000:00:04.0');
      assert.equal(fx.sys.read('/sys/bus/pci/drivers_probe'), '0000:00:04.0');
      assert.deepEqual(JSON.parse(fs.readFileSync(`${stateDir}/0000:00:04.0.json`, 'utf8')), { bdf: '0000:00:04.0', previous: 'uio_pci_generic' });
      // unbind restores from the remembered driver (the fixture kernel keeps the link where it was)
      const r = unbind('0000:00:04.0', { sys: fx.sys, stateDir });
      assert.equal(r.driver, 'uio_pci_generic');
      assert.equal(fs.existsSync(`${stateDir}/0000:00:04.0.json`), false);
    } finally { fx.cleanup(); }
  });

  it('lists devices with class names, ids, drivers and groups', () => {
    const fx = readyBox();
    try {
      const rows = devices(fx.sys);
      assert.deepEqual(rows.find((r) => r.bdf === '0000:85:00.0'),
        { bdf: '0000:85:00.0', class: 'SAS', vendor: '1000', device: '0097', driver: 'vfio-pci', iommuGroup: 30 });
      const out = execFileSync(process.execPath, [CLI, 'devices', '--root', fx.root], { encoding: 'utf8' });
      assert.match(out, /0000:80:07.0\s+PCI bridge\s+8086:2f07\s+pcieport\s+30\n/);
      assert.equal(JSON.parse(execFileSync(process.execPath, [CLI, 'devices', '--json', '--root', fx.root], { encoding: 'utf8' })).length, 2);
    } finally { fx.cleanup(); }
  });

  it('--help works on every command; usage errors exit 2', () => {
    for (const c of ['bench', 'doctor', 'bind', 'unbind', 'devices']) {
      const out = spawnSync(process.execPath, [CLI, c, '--help'], { encoding: 'utf8' });
      assert.equal(out.status, 0, c);
      assert.match(out.stdout, new RegExp(`Usage: dmapool ${c}`));
    }
    assert.equal(spawnSync(process.execPath, [CLI, 'bogus'], { encoding: 'utf8' }).status, 2);
    assert.equal(spawnSync(process.execPath, [CLI, 'bind', '0000:00:04.0', '--driver', 'nvme'], { encoding: 'utf8' }).status, 2);
    // bad option values are usage errors too, not failures of the command
    for (const args of [['bench', '-s', 'rbtre'], ['bench', '-n', 'lots'], ['bench', '--reps', '-1'], ['doctor', '--memory', 'lots']]) {
      const out = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
      assert.equal(out.status, 2, `${args.join(' ')}: ${out.stderr}`);
      assert.match(out.stderr, /is invalid/);
    }
  });
});
