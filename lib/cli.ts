#!/usr/bin/env node
/** The dmapool command line: bench (the seed's benchmark), and more (see --help). */
import { Command, InvalidArgumentError, Option } from 'commander';
import * as os from 'node:os';
import { SingleBar, Presets } from 'cli-progress';
import { BenchOptions, formatTable, plannedRuns, runBench, runOnce, SEED_N, STRATEGIES, WORKLOADS, Workload } from './bench';
import type { IndexKind } from './index/page-index';
import { openDevice } from './open';
import { bind, BIND_DRIVERS, unbind } from './bind';
import { devices, doctor, formatDevices, formatDoctor, parseSize } from './doctor';
import { DmaPoolError } from './errors';
import { SysRoot } from './sysfs';
import { DEFAULT_NS, runScaling, writeScaling } from './scaling';
import { buildKernelRunners, formatKernel, KERNEL_MEMORIES, KERNEL_SERIES, KernelBenchOptions, kernelPlannedRuns, kernelRatios,
  runKernelBench } from './kernel-bench';

function list<T extends string>(allowed: readonly T[]) {
  return (v: string): T[] => {
    const xs = v.split(',').map((s) => s.trim()) as T[];
    for (const x of xs) if (!allowed.includes(x)) throw new InvalidArgumentError(`'${x}' is not one of ${allowed.join(', ')}`);
    return xs;
  };
}

/** A non-negative integer argument (a usage error otherwise). */
function int(v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`'${v}' is not a non-negative integer`);
  return Number(v);
}

/** A size argument such as 64M (a usage error otherwise). */
function size(v: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
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
    .showHelpAfterError()
    // usage errors exit 2 (commander has printed them); --help exits 0
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

  program.command('bench')
    .description("the seed's benchmark: create + 373959 × alloc(128), free + destroy, per page-index strategy")
    .option('-d, --device <spec>', "memory provider: auto (sim, with a notice, when no device works), sim, vfio:<BDF>, uio:<BDF>, udmabuf, u-dma-buf:<name>", 'auto')
    .option('-s, --strategies <list>', 'comma-separated strategies', list(STRATEGIES), STRATEGIES)
    .option('-w, --workloads <list>', 'comma-separated workloads', list(WORKLOADS), WORKLOADS)
    .option('-r, --reps <n>', 'timed repetitions per strategy', int, 5)
    .option('--warmups <n>', 'untimed warm-up runs before the timed ones (the JIT needs ~8)', int, 8)
    .option('--linear-reps <n>', 'timed repetitions for linear (each free loop takes seconds)', int, 1)
    .option('-n, --count <n>', 'blocks per run', int, SEED_N)
    .option('--no-cold', 'skip the cold (fresh process) figures')
    .option('--cold-reps <n>', 'fresh processes per cold figure', int, 3)
    .option('--no-dmapool-test', "skip the kernel's dmapool_test rows")
    .option('--json', 'print results as JSON (stable field names)')
    .option('--kernel [series]', "also run Linux's own mm/dmapool.c (Debian's linux-source, fetched and compiled into " +
      '~/.cache/dmapool, never shipped) through the same loops, with ratios ours / Linux 6.12 (series: 6.1,6.12)', list(KERNEL_SERIES))
    .option('--kernel-memory <list>', "memory behind the kernel's dma_alloc_coherent: heap (warm, resident glibc heap), " +
      'slab (fresh mmapped + mlocked slabs, like ours), page (one mmap per call)', list(KERNEL_MEMORIES), ['heap', 'slab'])
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
        coldReps: Math.max(1, o.coldReps),
        dmapoolTest: o.dmapoolTest, n: o.count, cliPath: __filename,
      };
      const showProgress = !o.json && process.stderr.isTTY;
      let bar: SingleBar | undefined;
      if (!o.json) process.stderr.write(notice + '\n');
      // --kernel: fetch + build first (before any timing), run after ours
      const builds = o.kernel ? buildKernelRunners(o.kernel === true ? [...KERNEL_SERIES] : o.kernel,
        { log: o.json ? undefined : (l) => process.stderr.write(l + '\n') }) : undefined;
      const kopts: KernelBenchOptions = { memories: o.kernelMemory, workloads: opts.workloads, n: opts.n,
        reps: opts.reps, warmups: opts.warmups, slowReps: opts.linearReps, dmapoolTest: opts.dmapoolTest };
      if (showProgress) {
        bar = new SingleBar({ format: 'bench [{bar}] {value}/{total} {label}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
        bar.start(plannedRuns(opts) + (builds ? kernelPlannedRuns(builds, kopts) : 0), 0, { label: '' });
        opts.tick = kopts.tick = (label) => bar!.increment({ label });
      }
      const results = runBench(opts);
      const kernel = builds && runKernelBench(builds, kopts);
      if (kernel) kernel.ratios = kernelRatios(results, kernel.results);
      bar?.stop();
      if (o.json) {
        process.stdout.write(JSON.stringify({ machine: machineInfo(), provider, deviceVisible, results, ...(kernel ? { kernel } : {}) }, null, 2) + '\n');
      } else {
        const m = machineInfo();
        process.stdout.write(`machine: ${m.cpu}, ${m.nproc} cores, Node ${m.node}, ${m.date}\n\n`);
        process.stdout.write(formatTable(results) + '\n');
        if (kernel) process.stdout.write('\n' + formatKernel(results, kernel) + '\n');
      }
    });

  // --root points every sysfs/procfs/devfs read at a fixture tree (tests only)
  const rootOpt = () => new Option('--root <dir>', 'read sysfs/procfs/devfs under this directory (tests)').hideHelp();

  program.command('doctor')
    .description('check this box for VFIO / UIO / udmabuf use, with the fix for every failure')
    .argument('[bdf]', 'the PCI device the driver will use (e.g. 0000:85:00.0)')
    .addOption(new Option('--provider <p>', 'provider to check (default: vfio with a BDF, udmabuf without)').choices(['vfio', 'uio', 'udmabuf']))
    .addOption(new Option('--memory <size>', 'DMA memory the driver will pin (RLIMIT_MEMLOCK, dma_entry_limit)')
      .argParser(size).default(64 * 2 ** 20, '64M'))
    .option('--json', 'print the checks as JSON')
    .addOption(rootOpt())
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
    .argument('<bdf>', 'PCI address, e.g. 0000:85:00.0')
    .addOption(new Option('--driver <name>', 'driver to bind').choices(BIND_DRIVERS).default('vfio-pci'))
    .option('--force', 'take it from a kernel driver (once nothing uses it: disks, mounts, links)')
    .addOption(rootOpt())
    .action((bdf: string, o) => {
      const r = bind(bdf, o.driver, { force: !!o.force, ...(o.root ? { sys: new SysRoot(o.root), modprobe: false } : {}) });
      console.log(r.changed ? `${r.bdf}: ${r.previous ?? 'no driver'} → ${r.driver}` : `${r.bdf}: already bound to ${r.driver}`);
      for (const m of r.mustFollow)
        console.log(`  note: ${m.bdf} in the same IOMMU group is bound to ${m.driver}; VFIO needs it too: dmapool bind ${m.bdf}`);
    });

  program.command('unbind')
    .description('give a PCI function back to the driver it had before `dmapool bind`')
    .argument('<bdf>', 'PCI address')
    .option('--force', 'unbind it even from a kernel driver dmapool did not bind it away from')
    .addOption(rootOpt())
    .action((bdf: string, o) => {
      const r = unbind(bdf, { force: !!o.force, ...(o.root ? { sys: new SysRoot(o.root), modprobe: false } : {}) });
      console.log(`${r.bdf}: ${r.previous ?? 'no driver'} → ${r.driver ?? 'no driver'}`);
    });

  async function scalingCommand(o: { device: string; strategies: IndexKind[]; scaling: string | true; json?: boolean }) {
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
    const files = await writeScaling(points, dir, `dmapool page-index scaling — ${m.cpu}, ${m.nproc} cores, Node ${m.node}`, provider);
    if (o.json) { process.stdout.write(JSON.stringify({ machine: m, provider, points }, null, 2) + '\n'); return; }
    console.log(`wrote ${files.csv} and ${files.svg}`);
    for (const s of o.strategies) {
      const row = (op: string) => points.filter((p) => p.strategy === s && p.op === op).map((p) => p.ns_per_op.toFixed(0).padStart(7)).join(' ');
      console.log(`${s.padEnd(7)} alloc ns/op: ${row('alloc')}\n${''.padEnd(7)} free  ns/op: ${row('free')}`);
    }
    console.log(`n: ${DEFAULT_NS.map((n) => String(n).padStart(7)).join(' ')}`);
  }

  program.command('bench-child', { hidden: true })
    .requiredOption('--provider <spec>').requiredOption('--strategy <s>').requiredOption('--workload <w>')
    .addOption(new Option('--n <n>').argParser(int).default(SEED_N))
    .action((o) => {
      process.stdout.write(JSON.stringify(runOnce(o.provider, o.strategy, o.workload, o.n)) + '\n');
    });

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
