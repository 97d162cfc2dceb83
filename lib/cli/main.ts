#!/usr/bin/env node
/** The dmapool command line: bench (the seed's benchmark), and more (see --help). */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { bdfArg, int, isBdf, list, oneOf, q, size } from './args';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { BENCH_LIMITS, BenchOptions, benchKey, BenchResult, benchStrategy, checkBenchOptions, floorKey, formatTable, mergeRounds,
  plannedRuns, runBench, runFloor, runOnce, type FloorResult, SEED_N, SEED_SIZE, STRATEGIES, WORKLOADS, Workload } from './bench';
import { FLOORS, floorSeedRun } from './js-floor';
import type { IndexKind } from '../index/page-index';
import { openDevice } from '../open';
import { bind, BIND_DRIVERS, unbind } from './bind';
import { devices, doctor, DOCTOR_LEGEND, formatDevices, formatDoctor } from './doctor';
import { DmaPoolError } from '../errors';
import { isKernelOwned, pciInfo } from '../pci';
import { SysRoot } from '../sysfs';
import { registerNvmeCommands } from './nvme';
import { DEFAULT_NS, loadChartLibraries, runScaling, writeScaling } from './scaling';
import { buildKernelRunners, formatKernel, KERNEL_MEMORIES, KERNEL_SERIES, type KernelBench, KernelBenchOptions, kernelPlannedRuns,
  kernelRatios, mergeKernelRounds, runKernelBench, withRoundRatios } from './kernel-bench';

// ---- usage errors ----------------------------------------------------------------------------
// Every argument goes through one of the parsers of ./args (or deviceSpec below); each throws InvalidArgumentError saying
// what it expected and what it got, and reportUsageErrors turns that (and commander's own errors:
// unknown option or command, missing argument) into ONE line on stderr and exit 2. Failures of a
// command that parsed fine exit 1 (parseAsync's catch at the end of main).

/** An integer option of BenchOptions, in the range runBench accepts. */
const benchInt = (k: keyof typeof BENCH_LIMITS) => int(BENCH_LIMITS[k].min, BENCH_LIMITS[k].max);

const SPECS = 'auto, sim, udmabuf, vfio:<BDF>[,<BDF>…], uio:<BDF> or u-dma-buf:<name>';

/** A device spec as openDevice takes it, checked for its form here (whether it opens is not a usage question). */
function deviceSpec(v: string): string {
  const i = v.indexOf(':');
  const [kind, arg] = i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)];
  const ok = arg === undefined ? ['auto', 'sim', 'udmabuf'].includes(kind)
    : kind === 'vfio' ? arg.split(',').every(isBdf)
    : kind === 'uio' ? isBdf(arg)
    : kind === 'u-dma-buf' && /^[\w-][\w.-]*$/.test(arg);
  if (!ok) throw new InvalidArgumentError(`expected ${SPECS}, got ${q(v)}`);
  return v;
}

/**
 * The one line a commander error becomes: `dmapool bench: -n, --count: expected …, got 'abc'
 * (see dmapool bench --help)`. Commander's own wording is kept where it says enough.
 */
function usageLine(cmd: Command, message: string): string {
  const name = cmd.parent ? `dmapool ${cmd.name()}` : 'dmapool';
  let m = message.trim().replace(/^error: /, '');
  let x: RegExpExecArray | null;
  if ((x = /^option '([^']*)' argument .* is invalid\. ([\s\S]*)$/.exec(m))) m = `${x[1].replace(/\s*[<[].*$/, '')}: ${x[2]}`;
  else if ((x = /^command-argument value .* is invalid for argument '([^']*)'\. ([\s\S]*)$/.exec(m))) m = `<${x[1]}>: ${x[2]}`;
  else if ((x = /^option '([^']*)' argument missing$/.exec(m))) m = `${x[1].replace(/\s*[<[].*$/, '')}: value missing`;
  else if ((x = /^too many arguments.*Expected (\d+) arguments? but got (\d+)\.$/.exec(m))) m = `too many arguments: expected ${x[1]}, got ${x[2]}`;
  return `${name}: ${m.replace(/\s*\n\s*/g, ' ')} (see ${name} --help)`;
}

/**
 * Usage errors of `cmd` (parsers, unknown options and commands, missing arguments): one line on
 * stderr, exit 2. --help and --version exit 0. Commander's help-on-error (bare `dmapool`) is
 * replaced by one line too.
 */
function reportUsageErrors(cmd: Command): void {
  const root = cmd.parent ?? cmd;
  const commands = () => root.createHelp().visibleCommands(root).map((c) => c.name()).filter((n) => n !== 'help');
  cmd.configureOutput({
    outputError: (str) => process.stderr.write(usageLine(cmd, str) + '\n'),
    writeErr: () => {}, // only help-on-error is written here (outputError above writes directly)
  });
  cmd.exitOverride((err: CommanderError) => {
    if (err.exitCode === 0) process.exit(0);
    if (err.code === 'commander.help')
      process.stderr.write(`dmapool: expected a command: ${commands().join(', ')} (see dmapool --help)\n`);
    process.exit(2);
  });
}

/** This package's version, from the package.json above this file (wherever the build put it). */
function packageVersion(): string {
  for (let d = __dirname; ; d = path.dirname(d)) {
    try {
      const p = JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'dmapool' && p.version) return p.version;
    } catch { /* not here */ }
    if (path.dirname(d) === d) return 'unknown';
  }
}

/**
 * Opens the bench's device. The default `auto` opts in to sim (the benchmark measures the
 * allocator, not the device), and the notice says so.
 */
function openBenchDevice(spec: string) {
  return openDevice(spec, spec === 'auto' ? { allowSim: true } : {});
}

export function main(argv: string[]): void {
  const program = new Command();
  program.name('dmapool').description('Linux-faithful dma_pool over real DMA-coherent memory (VFIO, UIO, udmabuf)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addHelpText('after', '\nExit codes: 0 success, 1 failure (doctor: something must be fixed), 2 usage error.');

  program.command('bench')
    .description("the seed's benchmark: create + 373959 × alloc(128), free + destroy, per page-index strategy")
    .option('-d, --device <spec>', "memory provider: auto (sim, with a notice, when no device works), sim, vfio:<BDF>, uio:<BDF>, udmabuf, u-dma-buf:<name>",
      deviceSpec, 'auto')
    .option('-s, --strategies <list>', 'comma-separated strategies', list(STRATEGIES), STRATEGIES)
    .option('-w, --workloads <list>', 'comma-separated workloads', list(WORKLOADS), WORKLOADS)
    .option('-r, --reps <n>', 'timed repetitions per strategy (≥ 1)', benchInt('reps'), 5)
    .option('--warmups <n>', 'untimed warm-up runs before the timed ones (the JIT needs ~8)', benchInt('warmups'), 8)
    .option('--linear-reps <n>', 'timed repetitions for linear (each free loop takes seconds; ≥ 1)', benchInt('linearReps'), 1)
    .option('-n, --count <n>', `blocks per run (1 to ${BENCH_LIMITS.n.max})`, benchInt('n'), SEED_N)
    .option('--no-cold', 'skip the cold (fresh process) figures')
    .option('--cold-reps <n>', 'fresh processes per cold figure (≥ 1)', benchInt('coldReps'), 3)
    .option('--no-dmapool-test', "skip the kernel's dmapool_test rows")
    .option('--json', 'print results as JSON (stable field names)')
    .option('--kernel [series]', "also run Linux's own mm/dmapool.c (Debian's linux-source, fetched and compiled into " +
      '~/.cache/dmapool, never shipped) through the same loops, with ratios ours / Linux 6.12 (series: 6.1,6.12)', list(KERNEL_SERIES))
    .option('--kernel-memory <list>', "memory behind the kernel's dma_alloc_coherent: heap (warm, resident glibc heap), " +
      'slab (fresh mmapped + mlocked slabs, like ours), page (one mmap per call)', list(KERNEL_MEMORIES), ['heap', 'slab'])
    .option('--rounds <n>', 'repeat everything n times, alternating ours and the kernel\'s runner; each figure is the median of its rounds',
      int(1, 1000), 1)
    .option('--scaling [dir]', 'instead: ns/op vs n (10^3…10^6) per strategy → scaling.csv + scaling.svg in dir (default bench-out)')
    .action(async (o) => {
      if (o.scaling) return scalingCommand(o);
      const dev = openBenchDevice(o.device);
      const provider = dev.spec;
      const deviceVisible = dev.deviceVisible;
      const notice = `provider: ${dev.provider.description}${dev.reason ? `\n${dev.reason}` : ''}`;
      dev.close();
      const opts: BenchOptions = {
        provider, strategies: o.strategies as IndexKind[], workloads: o.workloads as Workload[],
        reps: o.reps, warmups: o.warmups, linearReps: Math.min(o.linearReps, o.reps), cold: o.cold,
        coldReps: o.coldReps,
        dmapoolTest: o.dmapoolTest, n: o.count, cliPath: __filename, isolate: true,
      };
      const showProgress = !o.json && process.stderr.isTTY;
      let bar: SingleBar | undefined;
      if (!o.json) process.stderr.write(notice + '\n');
      // --kernel: fetch + build first (before any timing), run after ours
      const builds = o.kernel ? buildKernelRunners(o.kernel === true ? [...KERNEL_SERIES] : o.kernel,
        { log: o.json ? undefined : (l) => process.stderr.write(l + '\n') }) : undefined;
      const kopts: KernelBenchOptions = { memories: o.kernelMemory, workloads: opts.workloads, n: opts.n,
        reps: opts.reps, warmups: opts.warmups, slowReps: opts.linearReps, dmapoolTest: opts.dmapoolTest };
      const rounds: number = o.rounds;
      if (showProgress) {
        bar = new SingleBar({ format: 'bench [{bar}] {value}/{total} {label}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
        bar.start(rounds * (plannedRuns(opts) + (builds ? kernelPlannedRuns(builds, kopts) : 0)), 0, { label: '' });
        opts.tick = kopts.tick = (label) => bar!.increment({ label });
      }
      // round by round: ours (a process per strategy), the JS floors, then the kernel's runner
      const ours: BenchResult[][] = [], floors: FloorResult[][] = [], kernels: KernelBench[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(runBench(opts));
        floors.push(runFloor(opts));
        if (builds) kernels.push(runKernelBench(builds, kopts));
      }
      // one round merges to itself
      const results = mergeRounds(ours, benchKey);
      const floor = mergeRounds(floors, floorKey);
      const kernel = builds && mergeKernelRounds(kernels);
      if (kernel) {
        kernel.ratios = withRoundRatios(kernelRatios(results, kernel.results, undefined, floor),
          kernels.map((k, i) => kernelRatios(ours[i], k.results, undefined, floors[i])));
      }
      bar?.stop();
      if (o.json) {
        process.stdout.write(JSON.stringify({ machine: machineInfo(), provider, deviceVisible, rounds, results, floor, ...(kernel ? { kernel } : {}) }, null, 2) + '\n');
      } else {
        const m = machineInfo();
        process.stdout.write(`machine: ${m.cpu}, ${m.nproc} cores, Node ${m.node}, ${m.date}` +
          (rounds > 1 ? ` — ${rounds} rounds (ours, then the kernel's runner, alternating); each figure the median of its rounds' medians` : '') + '\n\n');
        process.stdout.write(formatTable(results, floor) + '\n');
        if (kernel) process.stdout.write('\n' + formatKernel(results, kernel) + '\n');
      }
    });

  // --root points every sysfs/procfs/devfs read at a fixture tree (tests only)
  const rootOpt = () => new Option('--root <dir>', 'read sysfs/procfs/devfs under this directory (tests)').hideHelp();

  program.command('doctor')
    .description('check this box for VFIO / UIO / udmabuf use, with the fix for every failure')
    .argument('[bdf]', 'the PCI device the driver will use (e.g. 0000:85:00.0)', bdfArg)
    .addOption(new Option('--provider <p>', 'provider to check: vfio, uio or udmabuf (default: vfio with a BDF, udmabuf without)')
      .argParser(oneOf(['vfio', 'uio', 'udmabuf'] as const)))
    .addOption(new Option('--memory <size>', 'DMA memory the driver will pin (RLIMIT_MEMLOCK, dma_entry_limit)')
      .argParser(size).default(64 * 2 ** 20, '64M'))
    .option('--json', 'print the checks as JSON')
    .addOption(rootOpt())
    .addHelpText('after', `\nStatus symbols: ${DOCTOR_LEGEND}\nExit codes: 0 the provider can work here, 1 something must be fixed, 2 usage error.`)
    .action((bdf: string | undefined, o) => {
      const r = doctor({ ...(bdf ? { bdf } : {}), ...(o.provider ? { provider: o.provider } : {}),
        memory: o.memory, ...(o.root ? { sys: new SysRoot(o.root) } : {}) });
      console.log(o.json ? JSON.stringify(r, null, 2) : formatDoctor(r));
      process.exitCode = r.ok ? 0 : 1;
    });

  program.command('devices')
    .description('PCI devices with class, vendor:device, driver and IOMMU group (like lspci -k plus groups)')
    .option('--json', 'print as JSON')
    .addOption(rootOpt())
    .action((o) => {
      const rows = devices(o.root ? new SysRoot(o.root) : undefined);
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatDevices(rows));
    });

  program.command('bind')
    .description('bind a PCI function to vfio-pci (or uio_pci_generic), remembering its driver')
    .argument('<bdf>', 'PCI address, e.g. 0000:85:00.0', bdfArg)
    .addOption(new Option('--driver <name>', `driver to bind: ${BIND_DRIVERS.join(' or ')}`).argParser(oneOf(BIND_DRIVERS)).default('vfio-pci'))
    .option('--force', 'take it from a kernel driver (once nothing uses it: disks, mounts, links)')
    .addOption(rootOpt())
    .action((bdf: string, o) => {
      const sys = o.root ? new SysRoot(o.root) : undefined;
      const r = bind(bdf, o.driver, { force: !!o.force, ...(sys ? { sys, modprobe: false } : {}) });
      console.log(r.changed ? `${r.bdf}: ${r.previous ?? 'no driver'} → ${r.driver}` : `${r.bdf}: already bound to ${r.driver}`);
      for (const m of r.mustFollow) {
        const force = isKernelOwned(pciInfo(m.bdf, sys), sys) ? ' --force  (once nothing uses it)' : '';
        console.log(`  note: ${m.bdf} in the same IOMMU group is bound to ${m.driver}; VFIO needs it too: dmapool bind ${m.bdf}${force}`);
      }
    });

  program.command('unbind')
    .description('give a PCI function back to the driver it had before `dmapool bind`')
    .argument('<bdf>', 'PCI address', bdfArg)
    .option('--force', 'unbind it even from a kernel driver dmapool did not bind it away from')
    .addOption(rootOpt())
    .action((bdf: string, o) => {
      const r = unbind(bdf, { force: !!o.force, ...(o.root ? { sys: new SysRoot(o.root), modprobe: false } : {}) });
      console.log(`${r.bdf}: ${r.previous ?? 'no driver'} → ${r.driver ?? 'no driver'}`);
    });

  async function scalingCommand(o: { device: string; strategies: IndexKind[]; scaling: string | true; json?: boolean }) {
    const chart = await loadChartLibraries();   // before measuring: a missing optional dependency fails fast
    const dev = openBenchDevice(o.device);
    const provider = dev.spec;
    if (!o.json) process.stderr.write(`provider: ${dev.provider.description}${dev.reason ? `\n${dev.reason}` : ''}\n`);
    dev.close();
    const dir = o.scaling === true ? 'bench-out' : o.scaling;
    let bar: SingleBar | undefined;
    if (!o.json && process.stderr.isTTY) {
      bar = new SingleBar({ format: 'scaling [{bar}] {value}/{total} {label}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
      bar.start(o.strategies.length * DEFAULT_NS.length, 0, { label: '' });
    }
    const points = runScaling(provider, o.strategies, DEFAULT_NS, 5, (label) => bar?.increment({ label }));
    bar?.stop();
    const m = machineInfo();
    const files = await writeScaling(points, dir, `dmapool page-index scaling — ${m.cpu}, ${m.nproc} cores, Node ${m.node}`, provider, chart);
    if (o.json) { process.stdout.write(JSON.stringify({ machine: m, provider, points }, null, 2) + '\n'); return; }
    console.log(`wrote ${files.csv} and ${files.svg}`);
    for (const s of o.strategies) {
      const row = (op: string) => points.filter((p) => p.strategy === s && p.op === op).map((p) => p.ns_per_op.toFixed(0).padStart(7)).join(' ');
      console.log(`${s.padEnd(7)} alloc ns/op: ${row('alloc')}\n${''.padEnd(7)} free  ns/op: ${row('free')}`);
    }
    console.log(`n: ${DEFAULT_NS.map((n) => String(n).padStart(7)).join(' ')}`);
  }

  // one strategy's figures in a process of its own (runBench with isolate): the options as JSON
  program.command('bench-strategy', { hidden: true })
    .argument('<options>')
    .action((json: string) => {
      const o = JSON.parse(json) as BenchOptions;
      checkBenchOptions(o);
      process.stdout.write(JSON.stringify(benchStrategy(o, o.strategies[0])) + '\n');
    });

  program.command('bench-child', { hidden: true })
    .requiredOption('--provider <spec>').requiredOption('--strategy <s>', '', oneOf(STRATEGIES))
    .requiredOption('--workload <w>', '', oneOf(WORKLOADS))
    .addOption(new Option('--n <n>').argParser(benchInt('n')).default(SEED_N))
    .action((o) => {
      process.stdout.write(JSON.stringify(runOnce(o.provider, o.strategy, o.workload, o.n)) + '\n');
    });

  // a JS floor's first seed run in this fresh process (runFloor's cold figures): { alloc, free } in ms
  program.command('bench-floor-child', { hidden: true })
    .requiredOption('--floor <f>', '', oneOf(FLOORS))
    .addOption(new Option('--n <n>').argParser(benchInt('n')).default(SEED_N))
    .action((o) => {
      process.stdout.write(JSON.stringify(floorSeedRun(o.floor, o.n, SEED_SIZE)) + '\n');
    });

  registerNvmeCommands(program); // dmapool nvme identify|read|write|bench
  for (const c of [program, ...program.commands]) reportUsageErrors(c);
  program.parseAsync(argv).catch((e: Error) => {
    console.error(`dmapool: ${e.message}`);
    if (e instanceof DmaPoolError && e.hint) console.error(`hint: ${e.hint}`);
    process.exit(1);
  });
}

export function machineInfo() {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', nproc: os.availableParallelism(), node: process.version,
    kernel: os.release(), date: new Date().toISOString().slice(0, 10) };
}

if (require.main === module) main(process.argv);
