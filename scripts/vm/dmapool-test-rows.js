#!/usr/bin/env node
// Guest B: the kernel's own mm/dmapool_test.c (built in: it ran at boot and printed
// "dmapool test: size:… align:… blocks:… time:<µs>" rows to the kernel log) beside dmapool's
// dmapool_test workload (lib/cli/bench.ts dmapoolTest: the same 100 iterations of allocate-all then
// free-all, the same size/align/boundary/blocks rows) measured in the same guest, in the same
// run, on the same emulated CPU.
//
//   node scripts/vm/dmapool-test-rows.js KERNEL_LOG OUT_JSON [provider] [strategies] [reps]
//
// Prints a Markdown table; writes both sets of rows to OUT_JSON. Exit 1 when the kernel log has
// no dmapool_test rows (the kernel was built without CONFIG_DMAPOOL_TEST=y, or the log was lost).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { DMAPOOL_TEST_ROWS, dmapoolTest, median } = require(path.join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'bench.js'));

const [logFile, outFile, provider = 'udmabuf', strategyList = 'rbtree,stack,radix', repsArg = '3'] = process.argv.slice(2);
if (!logFile || !outFile) {
  process.stderr.write('usage: dmapool-test-rows.js KERNEL_LOG OUT_JSON [provider] [strategies] [reps]\n');
  process.exit(2);
}
const kernel = [];
for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
  const m = /dmapool test: size:(\d+)\s+align:(\d+)\s+blocks:(\d+)\s+time:(\d+)/.exec(line);
  if (m) kernel.push({ size: +m[1], align: +m[2], blocks: +m[3], us: +m[4] });
}
if (kernel.length === 0) {
  process.stderr.write(`no "dmapool test:" rows in ${logFile}: is CONFIG_DMAPOOL_TEST=y?\n`);
  process.exit(1);
}
const strategies = strategyList.split(',');
const reps = Math.max(1, Number(repsArg) | 0);
const ours = [];
for (const row of DMAPOOL_TEST_ROWS) {
  const [size, align, boundary, blocks] = row;
  for (const strategy of strategies) {
    dmapoolTest(provider, strategy, row); // one untimed run: the JIT settles
    const us = [];
    for (let i = 0; i < reps; i++) us.push(dmapoolTest(provider, strategy, row));
    ours.push({ size, align, boundary, blocks, strategy, provider, us: Math.round(median(us)), runs: us.map(Math.round) });
  }
}
const uname = fs.readFileSync('/proc/version', 'utf8').trim();
const cpu = (/model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8')) || [])[1] || 'unknown';
fs.writeFileSync(outFile, JSON.stringify({ kernel: uname, cpu, provider, reps, kernelRows: kernel, ours }, null, 2) + '\n');
const head = `| size | align | boundary | blocks | kernel dma_pool (µs) | ${strategies.map((s) => `dmapool ${s} (µs)`).join(' | ')} |`;
const lines = [`${uname}`, `CPU: ${cpu} (QEMU TCG, emulated; the same guest and run for both)`, `ours: provider ${provider}, median of ${reps} after one warm-up`, '', head,
  `|${'---|'.repeat(5 + strategies.length)}`];
for (const k of kernel) {
  const row = DMAPOOL_TEST_ROWS.find((r) => r[0] === k.size && r[1] === k.align);
  const boundary = row ? row[2] : 0;
  const cells = strategies.map((s) => {
    const o = ours.find((x) => x.size === k.size && x.align === k.align && x.strategy === s);
    return o ? `${o.us} (×${(o.us / k.us).toFixed(1)})` : '-';
  });
  lines.push(`| ${k.size} | ${k.align} | ${boundary} | ${k.blocks} | ${k.us} | ${cells.join(' | ')} |`);
}
process.stdout.write(lines.join('\n') + '\n');
