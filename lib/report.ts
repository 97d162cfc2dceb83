/** The sysfs `pools` file: "poolinfo - 0.1", then one line per pool, newest first. */
import type { PoolStats } from './pool';

export const POOLS_HEADER = 'poolinfo - 0.1';

/** One line as the kernel prints it: "%-16s %4u %4u %4u %2u". */
export function poolsLine(s: Pick<PoolStats, 'name' | 'inUse' | 'blocks' | 'size' | 'pages'>): string {
  return `${s.name.padEnd(16)} ${String(s.inUse).padStart(4)} ${String(s.blocks).padStart(4)} ` +
    `${String(s.size).padStart(4)} ${String(s.pages).padStart(2)}`;
}

export function poolsReport(pools: readonly Pick<PoolStats, 'name' | 'inUse' | 'blocks' | 'size' | 'pages'>[]): string {
  return [POOLS_HEADER, ...pools.map(poolsLine)].join('\n') + '\n';
}
