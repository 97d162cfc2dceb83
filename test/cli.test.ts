/**
 * doctor / bind / devices against fixture sysfs+procfs trees (the --root test option): every
 * failure mode prints its fix. The real runs (bind edu, doctor all ✓, unbind restores) are in
 * the VM test bed, guest A.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DmaPoolError } from '../lib';
import { runBench } from '../lib/cli/bench';
import { bind, unbind } from '../lib/cli/bind';
import { devices, doctor, DOCTOR_LEGEND, parseSize } from '../lib/cli/doctor';
import { Fixture } from './fixtures';
import { itIf, needs, RUNS_IN, STRATEGIES } from './helpers';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

function cli(args: string[], timeout = 60000) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout });
}

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
      'driver', /dmapool bind 0000:85:00.0 --driver vfio-pci --force/],
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
    } finally { fx.cleanup(); }
  });

  /** A box where udmabuf can work: the node exists, huge pages are free, pagemap is this process's own. */
  const udmabufBox = () => readyBox().file('/dev/udmabuf', '');

  itIf(needs.root(RUNS_IN.rootHost), 'udmabuf: all ✓ when the node exists and pagemap shows physical addresses (root)', () => {
    const fx = udmabufBox();
    try {
      const r = doctor({ sys: fx.sys });
      assert.equal(r.provider, 'udmabuf');
      assert.equal(check(r, 'udmabuf').status, 'ok');
      assert.equal(check(r, 'pagemap').status, 'ok', JSON.stringify(check(r, 'pagemap')));
      assert.ok(r.ok, JSON.stringify(r.checks.filter((c) => c.status === 'fail')));
    } finally { fx.cleanup(); }
  });

  it('udmabuf: an unprivileged user gets ✗ pagemap with the CAP_SYS_ADMIN fix (run as nobody when we are root)', () => {
    const fx = udmabufBox();
    try {
      const asRoot = process.getuid?.() === 0;
      if (asRoot) { // mkdtemp makes the root 0700: nobody must read the fixture and open the node read-write
        fs.chmodSync(fx.root, 0o755);
        fs.chmodSync(fx.sys.path('/dev/udmabuf'), 0o666);
      }
      const out = spawnSync(process.execPath, [CLI, 'doctor', '--provider', 'udmabuf', '--json', '--root', fx.root],
        { encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
      assert.equal(out.status, 1, out.stdout + out.stderr);
      const r = JSON.parse(out.stdout) as ReturnType<typeof doctor>;
      assert.equal(r.ok, false);
      assert.equal(check(r, 'udmabuf').status, 'ok', 'the node is there: only pagemap fails');
      const c = check(r, 'pagemap');
      assert.equal(c.status, 'fail');
      assert.match(c.title, /PFN 0: physical addresses are hidden/);
      assert.match(c.fix ?? '', /CAP_SYS_ADMIN/);
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
      assert.doesNotMatch(out, /NAME/, 'no pci.ids under the root: class names only');
      assert.equal(JSON.parse(execFileSync(process.execPath, [CLI, 'devices', '--json', '--root', fx.root], { encoding: 'utf8' })).length, 2);
    } finally { fx.cleanup(); }
  });

  it('--help works on every command, with the exit codes', () => {
    for (const c of ['bench', 'doctor', 'bind', 'unbind', 'devices']) {
      const out = cli([c, '--help']);
      assert.equal(out.status, 0, c);
      assert.match(out.stdout, new RegExp(`Usage: dmapool ${c}`));
    }
    assert.match(cli(['--help']).stdout, /Exit codes: 0 success, 1 failure .*, 2 usage error/);
  });

  it('bind names the group members that must follow, with --force where a kernel driver has them', () => {
    const fx = readyBox().pci({ bdf: '0000:85:00.1', cls: '0x010700', driver: 'mpt3sas', group: 30 })
      .pci({ bdf: '0000:85:00.2', driver: 'uio_pci_generic', group: 30 });
    try {
      const out = cli(['bind', '0000:85:00.0', '--root', fx.root]);
      assert.equal(out.status, 0, out.stderr);
      assert.match(out.stdout, /already bound to vfio-pci/);
      assert.match(out.stdout, /note: 0000:85:00.1 .* bound to mpt3sas; VFIO needs it too: dmapool bind 0000:85:00.1 --force {2}\(once nothing uses it\)\n/);
      assert.match(out.stdout, /note: 0000:85:00.2 .* bound to uio_pci_generic; VFIO needs it too: dmapool bind 0000:85:00.2\n/);
    } finally { fx.cleanup(); }
  });

});

describe('dmapool command line: usage errors exit 2 with one line, failures exit 1', () => {
  let fx: Fixture;
  before(() => { fx = readyBox(); });
  after(() => fx.cleanup());

  // every command that reads the machine gets --root: a missed usage error must never reach the host's devices
  const ROOT = '<fixture root>'; // replaced by the fixture's directory when the case runs
  const cases: [string[], RegExp][] = [
    // numbers: integers in range
    [['bench', '-n', 'abc'], /^dmapool bench: -n, --count: expected an integer from 1 to \d+, got 'abc'/],
    [['bench', '-n', 'lots'], /-n, --count: expected an integer/],
    [['bench', '-n', '1.5'], /-n, --count: expected an integer from 1 .*got '1\.5'/],
    [['bench', '-n', '1e3'], /-n, --count: .*got '1e3'/],
    [['bench', '-n', '0x10'], /-n, --count: .*got '0x10'/],
    [['bench', '-n', '0'], /-n, --count: expected an integer from 1 .*got '0'/],
    [['bench', '-n', '9999999999999'], /-n, --count: expected an integer from 1 to 268435456, got '9999999999999'/],
    [['bench', '-r', '0'], /^dmapool bench: -r, --reps: expected an integer from 1 to \d+, got '0'/],
    [['bench', '--reps', '-1'], /-r, --reps: .*got '-1'/],
    [['bench', '--warmups', 'x'], /--warmups: expected an integer from 0 to \d+, got 'x'/],
    [['bench', '--linear-reps', '0'], /--linear-reps: expected an integer from 1 .*got '0'/],
    [['bench', '--cold-reps', '0'], /--cold-reps: expected an integer from 1 .*got '0'/],
    // lists
    [['bench', '-s', 'rbtre'], new RegExp(`^dmapool bench: -s, --strategies: expected a comma-separated list of ${STRATEGIES.join(', ')}, got 'rbtre'`)],
    [['bench', '-s', 'rbtree,,stack'], /-s, --strategies: .*got an empty item in 'rbtree,,stack'/],
    [['bench', '-s', ''], /-s, --strategies: .*got an empty item/],
    [['bench', '-w', 'seed'], /-w, --workloads: expected a comma-separated list of seed-alloc, .*got 'seed'/],
    [['bench', '--kernel', '5.10'], /--kernel: expected a comma-separated list of 6\.1, 6\.12, got '5\.10'/],
    [['bench', '--kernel-memory', 'swap'], /--kernel-memory: .*heap, slab, page, got 'swap'/],
    // device specs and BDFs
    [['bench', '-d', 'bogus'], /^dmapool bench: -d, --device: expected auto, sim, udmabuf, vfio:<BDF>.*, got 'bogus'/],
    [['bench', '-d', 'vfio:zz'], /-d, --device: .*got 'vfio:zz'/],
    [['bench', '-d', 'vfio:'], /-d, --device: .*got 'vfio:'/],
    [['bench', '-d', 'u-dma-buf:../x'], /-d, --device: .*got 'u-dma-buf:\.\.\/x'/],
    [['doctor', '85:00', '--root', ROOT], /^dmapool doctor: <bdf>: expected a PCI address DDDD:BB:DD\.F such as 0000:85:00\.0, got '85:00'/],
    [['bind', 'zz', '--root', ROOT], /^dmapool bind: <bdf>: expected a PCI address .*got 'zz'/],
    [['unbind', '0000:00:04.8', '--root', ROOT], /^dmapool unbind: <bdf>: expected a PCI address .*got '0000:00:04\.8'/],
    // sizes
    [['doctor', '--memory', '64Q', '--root', ROOT], /^dmapool doctor: --memory: expected a size such as 64M, 1G or 4096 \(bytes\), got '64Q'/],
    [['doctor', '--memory', 'lots', '--root', ROOT], /--memory: expected a size .*got 'lots'/],
    [['doctor', '--memory', '0', '--root', ROOT], /--memory: expected a size from 1 byte .*got '0'/],
    // names
    [['doctor', '--provider', 'dpdk', '--root', ROOT], /^dmapool doctor: --provider: expected one of vfio, uio, udmabuf, got 'dpdk'/],
    [['bind', '0000:00:04.0', '--driver', 'nvme', '--root', ROOT], /^dmapool bind: --driver: expected one of vfio-pci, uio_pci_generic, got 'nvme'/],
    // missing arguments and values, unknown options and commands, extra arguments
    [['bind', '--root', ROOT], /^dmapool bind: missing required argument 'bdf'/],
    [['unbind', '--root', ROOT], /^dmapool unbind: missing required argument 'bdf'/],
    [['bench', '-n'], /^dmapool bench: -n, --count: value missing/],
    [['doctor', '--root', ROOT, '--memory'], /^dmapool doctor: --memory: value missing/],
    [['bench', '--bogus'], /^dmapool bench: unknown option '--bogus'/],
    [['devices', '--jsno', '--root', ROOT], /^dmapool devices: unknown option '--jsno' \(Did you mean --json\?\)/],
    [['devices', 'extra', '--root', ROOT], /^dmapool devices: too many arguments: expected 0, got 1/],
    [['bogus'], /^dmapool: unknown command 'bogus'/],
    [['--bogus'], /^dmapool: unknown option '--bogus'/],
    [[], /^dmapool: expected a command: bench, doctor, devices, bind, unbind/],
  ];
  for (const [args, re] of cases) {
    it(`dmapool ${args.map((a) => (a || "''")).join(' ')}`, () => {
      const out = cli(args.map((a) => (a === ROOT ? fx.root : a)));
      assert.equal(out.status, 2, `exit ${out.status}: ${out.stdout}${out.stderr}`);
      assert.equal(out.stdout, '');
      const lines = out.stderr.split('\n');
      assert.deepEqual([lines.length, lines[1]], [2, ''], `one line on stderr, got:\n${out.stderr}`);
      assert.doesNotMatch(out.stderr, /\bat .*\.js:\d+/, 'no stack trace');
      assert.match(lines[0], re);
      assert.match(lines[0], /\(see dmapool( \w+)? --help\)$/);
    });
  }

  it('--version and -V print the version from package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const out = cli([flag]);
      assert.equal(out.status, 0);
      assert.equal(out.stdout, `${pkg.version}\n`);
    }
  });

  it('a command that parsed fine but fails exits 1, with its message (and hint), not a usage line', () => {
    const out = cli(['unbind', '0000:99:00.0', '--root', fx.root]);
    assert.equal(out.status, 1, out.stderr);
    assert.match(out.stderr, /^dmapool: ENODEV: no PCI device 0000:99:00.0\nhint: /);
  });

  it('runBench itself refuses bad counts with EINVAL (the TypeError `-r 0` used to hit)', () => {
    const o = { provider: 'sim', strategies: ['rbtree' as const], workloads: ['seed-alloc' as const], reps: 1, warmups: 0, linearReps: 1,
      cold: false, coldReps: 1, dmapoolTest: false, n: 100, cliPath: CLI };
    for (const [k, v] of [['reps', 0], ['n', Number.NaN], ['coldReps', 1.5], ['warmups', -1]] as const)
      assert.throws(() => runBench({ ...o, [k]: v }), (e: unknown) =>
        e instanceof DmaPoolError && e.code === 'EINVAL' && new RegExp(`bench: ${k} must be an integer`).test(e.message), k);
    assert.throws(() => runBench({ ...o, strategies: [] }), /strategies must be a non-empty list/);
    assert.equal(runBench(o).length, 2); // warm on a kept device and on a fresh one
  });

  it('runBench with isolate runs each strategy in a process of its own, with only that strategy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-isolate-'));
    try {
      // a stand-in CLI: records each call's arguments and its pid, answers with one figure
      const cli = path.join(dir, 'cli.js');
      fs.writeFileSync(cli, `require('fs').appendFileSync(${JSON.stringify(path.join(dir, 'calls'))}, ` +
        `JSON.stringify({ pid: process.pid, argv: process.argv.slice(2) }) + '\\n');
        process.stdout.write(JSON.stringify([{ strategy: JSON.parse(process.argv[3]).strategies[0] }]));`);
      const o = { provider: 'sim', strategies: ['rbtree' as const, 'stack' as const], workloads: ['seed-alloc' as const], reps: 1,
        warmups: 0, linearReps: 1, cold: false, coldReps: 1, dmapoolTest: false, n: 100, cliPath: cli, isolate: true };
      const ticks: string[] = [];
      const r = runBench({ ...o, tick: (l) => ticks.push(l) });
      assert.deepEqual(r.map((x) => x.strategy), ['rbtree', 'stack']);
      const calls = fs.readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { pid: number; argv: string[] });
      assert.equal(calls.length, 2);
      assert.notEqual(calls[0].pid, calls[1].pid);
      assert.notEqual(calls[0].pid, process.pid);
      for (const [i, s] of (['rbtree', 'stack'] as const).entries()) {
        assert.equal(calls[i].argv[0], 'bench-strategy');
        const sent = JSON.parse(calls[i].argv[1]) as Record<string, unknown>;
        assert.deepEqual(sent.strategies, [s]);
        assert.equal(sent.isolate, undefined, 'the child runs its strategy in-process');
      }
      assert.deepEqual(ticks, ['rbtree', 'stack']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dmapool doctor: text output', () => {
  it('shows the fix under every line that has one, – lines included, and ends with the legend', () => {
    const fx = readyBox();
    try {
      fs.rmSync(fx.sys.path('/sys/bus/pci/drivers/vfio-pci'), { recursive: true });
      const out = cli(['doctor', '--provider', 'udmabuf', '--root', fx.root]);
      const r = doctor({ provider: 'udmabuf', sys: fx.sys });
      assert.equal(check(r, 'vfio-modules').status, 'skip');
      assert.match(out.stdout, /\n– vfio-pci not loaded\n {4}fix: modprobe vfio-pci/);
      for (const c of r.checks.filter((x) => x.fix)) assert.ok(out.stdout.includes(`    fix: ${c.fix}\n`), `fix of ${c.id} (${c.status}) shown`);
      const last = out.stdout.trimEnd().split('\n').at(-1)!;
      assert.equal(last, `legend: ${DOCTOR_LEGEND}`);
      for (const mark of ['✓', '✗', '!', '–']) assert.match(DOCTOR_LEGEND, new RegExp(`${mark} \\w`));
      assert.match(cli(['doctor', '--help']).stdout, new RegExp(`Status symbols: ${DOCTOR_LEGEND.replace(/[()]/g, '\\$&')}`));
    } finally { fx.cleanup(); }
  });

  it('fixes that need bind --force say so, and only those', () => {
    const fx = readyBox().pci({ bdf: '0000:85:00.1', cls: '0x010700', driver: 'mpt3sas', group: 30 })
      .pci({ bdf: '0000:85:00.2', driver: 'uio_pci_generic', group: 30 });
    try {
      const out = cli(['doctor', '0000:85:00.0', '--root', fx.root]);
      assert.equal(out.status, 1);
      assert.match(out.stdout, /✗ IOMMU group 30: .*\n {4}.*\n {4}fix: dmapool bind 0000:85:00.1 --force && dmapool bind 0000:85:00.2 {2}\(--force: once nothing uses it\)\n/);
      fx.link('/sys/bus/pci/devices/0000:85:00.0/driver', '../../drivers/mpt3sas');
      fs.rmSync(fx.sys.path('/dev/vfio/30'));
      const r = doctor({ bdf: '0000:85:00.0', sys: fx.sys });
      assert.equal(check(r, 'driver').fix, 'dmapool bind 0000:85:00.0 --driver vfio-pci --force  (--force: once nothing uses it)');
      assert.equal(check(r, 'vfio-dev-access').fix, 'dmapool bind 0000:85:00.0 --force  (--force: once nothing uses it)');
      const uio = readyBox().pci({ bdf: '0000:00:04.0', cls: '0x020000', driver: 'e1000', group: 9 }).file('/sys/kernel/iommu_groups/9/type', 'DMA\n');
      try {
        assert.equal(check(doctor({ bdf: '0000:00:04.0', provider: 'uio', sys: uio.sys }), 'untranslated').fix,
          'use vfio:0000:00:04.0 (dmapool bind 0000:00:04.0 --force), or boot with iommu=pt  (--force: once nothing uses it)');
      } finally { uio.cleanup(); }
    } finally { fx.cleanup(); }
  });
});

describe('dmapool devices: names from pci.ids', () => {
  const PCI_IDS = [
    '#\tList of PCI ID\'s (fixture)',
    '',
    '1000  Broadcom / LSI',
    '\t0097  SAS3008 PCI-Express Fusion-MPT SAS-3',
    '\t\t1000 30e0  SAS9300-8i',
    '8086  Intel Corporation',
    '\t2f07  Xeon E7 v3/Xeon E5 v3/Core i7 PCI Express Root Port 2',
    '# List of known device classes, subclasses and programming interfaces',
    'C 01  Mass storage controller',
    '\t07  Serial Attached SCSI controller',
    '',
  ].join('\n');

  it('shows vendor and device names from /usr/share/misc/pci.ids under the root', () => {
    const fx = readyBox().pciIds(PCI_IDS).pci({ bdf: '0000:00:1f.0', vendor: '8086', device: 'ffff', cls: '0x060100' })
      .pci({ bdf: '0000:00:04.0' });
    try {
      const rows = devices(fx.sys);
      assert.deepEqual(rows.find((r) => r.bdf === '0000:85:00.0'), { bdf: '0000:85:00.0', class: 'SAS', vendor: '1000', device: '0097',
        driver: 'vfio-pci', iommuGroup: 30, vendorName: 'Broadcom / LSI', deviceName: 'SAS3008 PCI-Express Fusion-MPT SAS-3' });
      assert.deepEqual(rows.find((r) => r.bdf === '0000:00:1f.0'), { bdf: '0000:00:1f.0', class: 'ISA bridge', vendor: '8086', device: 'ffff',
        driver: null, iommuGroup: null, vendorName: 'Intel Corporation' });
      const out = cli(['devices', '--root', fx.root]);
      assert.equal(out.status, 0, out.stderr);
      const lines = out.stdout.split('\n');
      assert.match(lines[0], /^BDF +CLASS +ID +DRIVER +IOMMU GROUP  NAME$/);
      assert.equal(lines[0].indexOf('NAME'), lines.find((l) => l.startsWith('0000:85:00.0'))!.indexOf('Broadcom'), 'NAME column aligned');
      assert.match(out.stdout, /\n0000:85:00.0\s+SAS\s+1000:0097\s+vfio-pci\s+30\s+Broadcom \/ LSI SAS3008 PCI-Express Fusion-MPT SAS-3\n/);
      assert.match(out.stdout, /\n0000:80:07.0\s+PCI bridge\s+8086:2f07\s+pcieport\s+30\s+Intel Corporation Xeon E7 v3\/Xeon E5 v3\/Core i7 PCI Express Root Port 2\n/);
      assert.match(out.stdout, /\n0000:00:1f.0\s+ISA bridge\s+8086:ffff\s+-\s+-\s+Intel Corporation device ffff\n/);
      assert.match(out.stdout, /\n0000:00:04.0\s+unclassified device\s+1234:11e8\s+-\s+-\s+-\n/, 'a vendor pci.ids does not know');
      assert.doesNotMatch(out.stdout, /SAS9300|Mass storage/, 'subsystem and class lines are not device names');
      assert.match(cli(['doctor', '0000:85:00.0', '--root', fx.root]).stdout, /✓ device 0000:85:00.0 \[1000:0097\] class 010700 \(Broadcom \/ LSI SAS3008/);
    } finally { fx.cleanup(); }
  });

  it('finds pci.ids in /usr/share/hwdata too; without one, class names only', () => {
    const fx = readyBox().pciIds(PCI_IDS, '/usr/share/hwdata/pci.ids');
    const bare = readyBox();
    try {
      assert.equal(devices(fx.sys).find((r) => r.bdf === '0000:85:00.0')!.vendorName, 'Broadcom / LSI');
      const rows = devices(bare.sys);
      assert.ok(rows.every((r) => !('vendorName' in r) && !('deviceName' in r)));
      const out = cli(['devices', '--root', bare.root]).stdout;
      assert.match(out, /^BDF +CLASS +ID +DRIVER +IOMMU GROUP\n/);
      assert.match(out, /\n0000:85:00.0\s+SAS\s+1000:0097\s+vfio-pci\s+30\n/);
    } finally { fx.cleanup(); bare.cleanup(); }
  });
});
