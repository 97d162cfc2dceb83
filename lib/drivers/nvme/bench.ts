/**
 * `dmapool nvme bench`: random-read IOPS and latency percentiles per completion mode, transfer
 * size and queue depth, and the share of each I/O spent in the PRP pools (list alloc + free).
 * Each I/O reads into its own coherent buffer (no copy), at a random size-aligned LBA.
 */
import { rng } from '../../rng';
import { Nvme, NvmeOptions } from './nvme';
import { prpListCount } from './prp';

export type Completion = 'poll' | 'interrupt';

export interface NvmeBenchOptions {
  seconds: number;
  qds: number[];
  sizes: number[];
  completions: Completion[];
  /** Byte offset of every data buffer inside its page (0: page aligned). */
  offset?: number;
  /** Open options (tests and the CLI pass the device spec's BDF through `spec`). */
  open?: NvmeOptions;
}

export interface NvmeBenchRow {
  completion: Completion;
  size: number;
  qd: number;
  ios: number;
  seconds: number;
  iops: number;
  mbps: number;
  /** Latency percentiles in µs. */
  p50: number; p90: number; p99: number; p999: number; max: number;
  /** PRP lists each I/O needs (0: PRP1/PRP2 only — no pool use, as in Linux). */
  listsPerIo: number;
  /** µs per I/O in dma_pool alloc (+ list building) and free: median over the I/Os. */
  poolUsPerIo: number;
  /** The mean of the same (preemption of the emulated CPU inflates it). */
  poolUsMean: number;
  /** poolUsPerIo / median latency. */
  poolShare: number;
  /** Set when this mode could not run (e.g. interrupts unavailable): why. */
  skipped?: string;
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export async function benchOne(spec: string, completion: Completion, size: number, qd: number, seconds: number, offset: number,
  open: NvmeOptions = {}): Promise<NvmeBenchRow> {
  const nvme = await Nvme.open(spec, { ...open, completion, accounting: true, queueDepth: Math.max(open.queueDepth ?? 64, qd + 1) });
  try {
    const bs = nvme.blockSize;
    const blocks = Math.max(1, Math.ceil(size / bs));
    const span = Math.floor(nvme.blocks / blocks);
    const bufs = Array.from({ length: qd }, () => nvme.allocBuffer(blocks * bs + offset));
    const rand = rng(0xbe7c4 + qd + size);
    const lat: number[] = [];
    let measuring = false, stop = false;
    const worker = async (buf: typeof bufs[0]) => {
      while (!stop) {
        const lba = Math.floor(rand() * span) * blocks;
        const t0 = performance.now();
        await nvme.readInto(lba, blocks, buf, offset);
        if (measuring) lat.push(performance.now() - t0);
      }
    };
    const runs = bufs.map(worker);
    await new Promise((r) => setTimeout(r, Math.min(500, seconds * 200)));
    nvme.poolTime.samples.length = 0;
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const pool = Float64Array.from(nvme.poolTime.samples).sort();
    stop = true;
    await Promise.all(runs);
    for (const b of bufs) b.free();
    const sorted = Float64Array.from(lat).sort();
    const us = (ms: number) => Math.round(ms * 1000 * 10) / 10;
    const poolMed = pct(pool, 0.5), poolMean = pool.reduce((s, x) => s + x, 0) / Math.max(1, pool.length);
    return {
      completion, size: blocks * bs, qd, ios: lat.length, seconds: elapsed, iops: Math.round(lat.length / elapsed),
      mbps: Math.round((lat.length * blocks * bs) / elapsed / 1e6 * 10) / 10,
      p50: us(pct(sorted, 0.5)), p90: us(pct(sorted, 0.9)), p99: us(pct(sorted, 0.99)), p999: us(pct(sorted, 0.999)), max: us(sorted[sorted.length - 1] ?? NaN),
      listsPerIo: prpListCount(4096 * 16 + offset, blocks * bs), poolUsPerIo: Math.round(poolMed * 1000 * 100) / 100,
      poolUsMean: Math.round(poolMean * 1000 * 100) / 100, poolShare: sorted.length ? poolMed / pct(sorted, 0.5) : NaN,
    };
  } finally {
    await nvme.close();
  }
}

export async function runNvmeBench(spec: string, o: NvmeBenchOptions, progress?: (label: string) => void): Promise<NvmeBenchRow[]> {
  const rows: NvmeBenchRow[] = [];
  for (const completion of o.completions) {
    for (const size of o.sizes) {
      for (const qd of o.qds) {
        progress?.(`${completion} ${size} B QD ${qd}`);
        try {
          rows.push(await benchOne(spec, completion, size, qd, o.seconds, o.offset ?? 0, o.open));
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (completion !== 'interrupt' || (code !== 'EOPNOTSUPP' && code !== 'ENOTSUP')) throw e;
          rows.push({ completion, size, qd, ios: 0, seconds: 0, iops: 0, mbps: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN,
            listsPerIo: 0, poolUsPerIo: NaN, poolUsMean: NaN, poolShare: NaN, skipped: (e as Error).message });
        }
      }
    }
  }
  return rows;
}

export function formatNvmeBench(rows: readonly NvmeBenchRow[]): string {
  const head = 'completion   size  QD     IOPS    MB/s    p50 µs    p90 µs    p99 µs  p99.9 µs  lists/IO  pool µs/IO (mean)  pool share';
  const lines = [head];
  for (const r of rows) {
    const size = r.size >= 1 << 20 ? `${r.size >> 20}M` : `${r.size >> 10}K`;
    if (r.skipped) { lines.push(`${r.completion.padEnd(10)} ${size.padStart(6)} ${String(r.qd).padStart(3)}  not measured: ${r.skipped}`); continue; }
    const f = (x: number, w = 9) => (Number.isFinite(x) ? x.toFixed(1) : '-').padStart(w);
    lines.push(`${r.completion.padEnd(10)} ${size.padStart(6)} ${String(r.qd).padStart(3)} ${String(r.iops).padStart(8)} ${f(r.mbps, 7)} ` +
      `${f(r.p50)} ${f(r.p90)} ${f(r.p99)} ${f(r.p999)} ${String(r.listsPerIo).padStart(9)} ${r.poolUsPerIo.toFixed(2).padStart(11)} ` +
      `${('(' + r.poolUsMean.toFixed(2) + ')').padStart(7)} ` +
      `${(r.poolShare * 100).toFixed(2).padStart(10)}%`);
  }
  return lines.join('\n');
}
