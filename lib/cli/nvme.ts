/**
 * `dmapool nvme identify|read|write|bench <bdf>`: the userspace NVMe driver (lib/drivers/nvme)
 * from the command line. Registered by lib/cli.ts through registerNvmeCommands().
 */
import { Command, CommanderError, Option } from 'commander';
import { bdfArg, int, intList, list, sizeList } from './args';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { formatNvmeBench, runNvmeBench, type Completion } from '../drivers/nvme/bench';
import { Nvme } from '../drivers/nvme/nvme';
import { hexDump } from '../pool';

const sizeArgs = sizeList(512, 64 << 20, '512 to 64M', '4k,128k');
const completions = list<Completion>(['poll', 'interrupt']);

/** Usage errors of the nvme subcommands: one line on stderr, exit 2 (as the other commands). */
function oneLineErrors(cmd: Command): void {
  const name = `dmapool nvme${cmd.name() === 'nvme' ? '' : ' ' + cmd.name()}`;
  cmd.configureOutput({
    outputError: (str) => process.stderr.write(`${name}: ${str.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see ${name} --help)\n`),
    writeErr: () => {},
  });
  cmd.exitOverride((err: CommanderError) => {
    if (err.exitCode === 0) process.exit(0);
    if (err.code === 'commander.help') process.stderr.write(`${name}: expected a command: identify, read, write, bench (see ${name} --help)\n`);
    process.exit(2);
  });
}

export function registerNvmeCommands(program: Command): void {
  const nvme = program.command('nvme').description('the userspace NVMe driver over vfio: identify, read, write, bench');

  nvme.command('identify')
    .description('reset and enable the controller, print Identify Controller and Namespace, shut it down')
    .argument('<bdf>', 'the NVMe controller, bound to vfio-pci', bdfArg)
    .option('--json', 'print as JSON')
    .action(async (bdf: string, o) => {
      await using n = await Nvme.open(`vfio:${bdf}`);
      if (o.json) { console.log(JSON.stringify({ controller: n.controller, namespace: n.namespace, maxTransfer: n.maxTransfer,
        cap: n.regs.cap, version: n.regs.version }, null, 2)); return; }
      const c = n.controller, ns = n.namespace, cap = n.regs.cap;
      console.log(`${bdf}: ${c.model}\n  serial ${c.serial}, firmware ${c.firmware}, vendor 0x${c.vid.toString(16)}, NVMe ${n.regs.version}` +
        `\n  CAP: ${cap.maxQueueEntries} queue entries max, doorbell stride ${cap.doorbellStride}, pages ${cap.pageMin}..${cap.pageMax}, ` +
        `ready timeout ${cap.timeoutMs} ms\n  MDTS ${c.mdts ? `${c.mdts} (${4096 * 2 ** c.mdts} bytes)` : 'unlimited'}, ${c.nn} namespace(s), ` +
        `volatile write cache: ${c.vwc ? 'yes' : 'no'}\n  namespace ${ns.nsid}: ${ns.blocks} blocks × ${ns.blockSize} bytes ` +
        `(${(ns.blocks * ns.blockSize / 2 ** 20).toFixed(1)} MiB), LBA format ${ns.lbaFormat}`);
    });

  nvme.command('read')
    .description('read blocks: raw to --out, else a hex dump')
    .argument('<bdf>', 'the NVMe controller, bound to vfio-pci', bdfArg)
    .argument('<lba>', 'first logical block', int(0, Number.MAX_SAFE_INTEGER))
    .argument('[blocks]', 'how many blocks (default 1)', int(1, 1 << 20))
    .option('-o, --out <file>', 'write the bytes to this file')
    .action(async (bdf: string, lba: number, blocks: number | undefined, o) => {
      await using n = await Nvme.open(`vfio:${bdf}`);
      const data = await n.read(lba, blocks ?? 1);
      if (o.out) { fs.writeFileSync(o.out, data); console.log(`read ${data.length} bytes from block ${lba} to ${o.out}`); }
      else process.stdout.write(hexDump(data));
    });

  nvme.command('write')
    .description('write blocks from --in (padded with zeros to whole blocks) or a --fill byte')
    .argument('<bdf>', 'the NVMe controller, bound to vfio-pci', bdfArg)
    .argument('<lba>', 'first logical block', int(0, Number.MAX_SAFE_INTEGER))
    .option('-i, --in <file>', 'the bytes to write')
    .addOption(new Option('--fill <byte>', 'write this byte value instead').argParser(int(0, 255)))
    .addOption(new Option('--blocks <n>', 'blocks to write with --fill (default 1)').argParser(int(1, 1 << 20)))
    .option('--flush', 'FLUSH after writing')
    .action(async (bdf: string, lba: number, o) => {
      if ((o.in === undefined) === (o.fill === undefined)) {
        process.stderr.write('dmapool nvme write: give exactly one of --in <file> and --fill <byte> (see dmapool nvme write --help)\n');
        process.exit(2);
      }
      await using n = await Nvme.open(`vfio:${bdf}`);
      const bs = n.blockSize;
      let data: Uint8Array;
      if (o.in !== undefined) {
        const src = fs.readFileSync(o.in);
        data = new Uint8Array(Math.max(bs, Math.ceil(src.length / bs) * bs));
        data.set(src);
      } else data = new Uint8Array((o.blocks ?? 1) * bs).fill(o.fill);
      await n.write(lba, data);
      if (o.flush) await n.flush();
      console.log(`wrote ${data.length} bytes (${data.length / bs} blocks) at block ${lba}${o.flush ? ', flushed' : ''}`);
    });

  nvme.command('bench')
    .description('random-read IOPS and latency percentiles per completion mode, size and queue depth; pool share of each I/O')
    .argument('<bdf>', 'the NVMe controller, bound to vfio-pci', bdfArg)
    .addOption(new Option('--seconds <n>', 'measured seconds per point').argParser(int(1, 3600)).default(3))
    .addOption(new Option('--qd <list>', 'queue depths').argParser(intList(1, 1023)).default([1, 32], '1,32'))
    .addOption(new Option('--sizes <list>', 'transfer sizes').argParser(sizeArgs).default([4096, 128 << 10], '4k,128k'))
    .addOption(new Option('--completion <list>', 'completion modes').argParser(completions).default(['interrupt', 'poll'], 'interrupt,poll'))
    .addOption(new Option('--offset <bytes>', 'byte offset of each buffer in its page (multiple of 4)').argParser(int(0, 4092)).default(0))
    .option('--json', 'print as JSON')
    .action(async (bdf: string, o) => {
      if (o.offset % 4) { process.stderr.write('dmapool nvme bench: --offset: expected a multiple of 4\n'); process.exit(2); }
      let desc = '';
      { await using n = await Nvme.open(`vfio:${bdf}`); desc = n.describe(); }
      const rows = await runNvmeBench(`vfio:${bdf}`, { seconds: o.seconds, qds: o.qd, sizes: o.sizes, completions: o.completion, offset: o.offset },
        (l) => { if (!o.json) process.stderr.write(`  ${l}…\n`); });
      const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPUs, Linux ${os.release()}, Node ${process.version}`;
      const emulated = /QEMU/i.test(desc) ? 'EMULATED controller (QEMU NVMe model): figures show the driver and pool costs, not a disk' : '';
      if (o.json) { console.log(JSON.stringify({ controller: desc, machine, emulated: !!emulated, rows }, null, 2)); return; }
      console.log(`dmapool nvme bench — ${desc}\n${machine}${emulated ? `\n${emulated}` : ''}\nrandom reads, ${o.seconds} s per point, buffer offset ${o.offset}\n`);
      console.log(formatNvmeBench(rows));
      console.log('\npool µs/IO: median per I/O of dma_pool alloc (with list building) + free, mean in brackets; pool share: that median / ' +
        'the median latency; lists/IO 0 means PRP1 [+ PRP2] only: no pool call, as in Linux');
    });

  for (const c of [nvme, ...nvme.commands]) oneLineErrors(c);
}
