/**
 * Native fuzzer (#safety): child processes make seeded-random calls with hostile arguments to
 * every export of the addon (test/fuzz/native-fuzz.ts). Each child must exit cleanly — a crash
 * is a signal here, not a dead mocha — and every error the addon threw must carry an errno code
 * (and be a DmaPoolError when the addon was loaded through native()).
 *
 *   DMAPOOL_FUZZ_SEED=<n>           replay a run (the seed is printed)
 *   DMAPOOL_FUZZ_NATIVE_CALLS=<n>   total calls over all children (default 200000)
 *   DMAPOOL_FUZZ_TRACE=1            children log every call to stderr before making it
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FuzzSummary } from './fuzz/native-fuzz';

const SCRIPT = path.join(__dirname, 'fuzz', 'native-fuzz.js');

interface Child {
  mode: 'native' | 'raw' | 'worker';
  gc: boolean;
}
// native() plus a second raw instance, the raw addon alone, and the native fuzz in a worker
// thread while another worker is terminated mid-call; with and without an exposed GC (escaped
// buffers are collected, or live on until exit).
const CHILDREN: Child[] = [
  { mode: 'native', gc: true }, { mode: 'raw', gc: true }, { mode: 'native', gc: false },
  { mode: 'worker', gc: true }, { mode: 'native', gc: true }, { mode: 'raw', gc: false },
];

interface Outcome {
  child: Child;
  seed: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  summary?: FuzzSummary;
  ms: number;
}

function runChild(child: Child, seed: number, calls: number, tmp: string): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const args = [...(child.gc ? ['--expose-gc'] : []), SCRIPT, String(seed), String(calls), child.mode];
    const p = spawn(process.execPath, args, { cwd: tmp, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    // keep the tail only: DMAPOOL_FUZZ_TRACE writes a line per call
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-20000); });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600_000); // a hang guard, not a time limit: loaded 2-core machines need minutes
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      let summary: FuzzSummary | undefined;
      const last = stdout.trim().split('\n').pop();
      try { summary = last ? JSON.parse(last) as FuzzSummary : undefined; } catch { /* reported below */ }
      resolve({ child, seed, status, signal, stdout, stderr, summary, ms: Date.now() - t0 });
    });
  });
}

async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

describe('native fuzz: hostile calls to every export of the addon', function () {
  it('never crashes, and every error is an errno-coded DmaPoolError', async function () {
    this.timeout(1_200_000); // six children share 2 cores: minutes when quiet, 10 when loaded (each child has its own hang guard)
    const seed = process.env.DMAPOOL_FUZZ_SEED !== undefined ? Number(process.env.DMAPOOL_FUZZ_SEED) >>> 0
      : (Date.now() ^ (process.pid << 16)) >>> 0;
    const total = Number(process.env.DMAPOOL_FUZZ_NATIVE_CALLS ?? 200_000);
    assert.ok(Number.isFinite(total) && total > 0, 'DMAPOOL_FUZZ_NATIVE_CALLS must be a positive number');
    const per = Math.ceil(total / CHILDREN.length);
    console.log(`      native fuzz seed ${seed} (replay: DMAPOOL_FUZZ_SEED=${seed}), ${CHILDREN.length} children × ${per} calls`);

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-native-fuzz-'));
    const t0 = Date.now();
    let outcomes: Outcome[];
    try {
      outcomes = await pool(CHILDREN.map((c, i) => () => runChild(c, (seed + i) >>> 0, per, tmp)),
        Math.max(1, Math.min(os.cpus().length, 4)));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const ms = Date.now() - t0;

    const failures: string[] = [];
    let calls = 0;
    const codes: Record<string, number> = {};
    const perExport: Record<string, number> = {};
    const exportsSeen = new Set<string>();
    for (const o of outcomes) {
      const what = `child ${o.child.mode}${o.child.gc ? ' --expose-gc' : ''} seed ${o.seed}`;
      const replay = `replay: DMAPOOL_FUZZ_TRACE=1 node ${o.child.gc ? '--expose-gc ' : ''}${SCRIPT} ${o.seed} ${per} ${o.child.mode}`;
      if (o.status !== 0 || o.signal !== null) {
        failures.push(`${what}: status ${o.status} signal ${o.signal} (${replay})\n${o.stderr.slice(-3000)}`);
        continue;
      }
      const s = o.summary;
      if (!s) { failures.push(`${what}: no summary on stdout (${replay})\n${o.stdout.slice(-2000)}\n${o.stderr.slice(-2000)}`); continue; }
      calls += s.calls;
      for (const [k, v] of Object.entries(s.codes)) codes[k] = (codes[k] ?? 0) + v;
      for (const [k, v] of Object.entries(s.perExport)) perExport[k] = (perExport[k] ?? 0) + v;
      s.exports.forEach((e) => exportsSeen.add(e));
      if (s.calls < per) failures.push(`${what}: only ${s.calls} of ${per} calls`);
      if (s.badCount) failures.push(`${what}: ${s.badCount} errors without an errno code or not a DmaPoolError (${replay}):\n  ${s.bad.join('\n  ')}`);
      if (!s.canaryOk) failures.push(`${what}: memory or a descriptor the fuzz never named changed: ${s.canaryDetail} (${replay})`);
      for (const e of s.exports) if (!s.perExport[e]) failures.push(`${what}: export ${e} was never called`);
    }
    console.log(`      ${calls} calls in ${ms} ms; ` +
      Object.entries(codes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', '));
    assert.deepEqual(failures, []);
    assert.ok(calls >= total, `${calls} of ${total} calls`);
    assert.ok(exportsSeen.size >= 20, `only ${exportsSeen.size} exports`);
    for (const code of Object.keys(codes)) assert.match(code, /^E[A-Z0-9]+$/);
  });
});
