/** The sysfs `pools` file: "poolinfo - 0.1", then one line per pool, newest first. */
import type { PoolStats } from './pool';

export const POOLS_HEADER = 'poolinfo - 0.1';

/**
 * Characters a name may not print raw, so one pool is always exactly one line and no name can
 * forge lines, columns or terminal state: C0 controls (incl. \n, \r, ESC), DEL, C1 controls
 * (incl. NEL U+0085), the Unicode line/paragraph separators U+2028/U+2029, the bidi embedding,
 * override and isolate controls (U+202A–U+202E, U+2066–U+2069, which reorder what a terminal
 * shows), lone surrogates (not text; they would print as U+FFFD), and the backslash itself so
 * the escaping is unambiguous.
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A pool name as the report prints it: printable characters as they are; `\` as `\\`; every other
 * unsafe character (see UNSAFE) as `\xNN` below U+0100, else `\uNNNN` (lowercase hex), e.g.
 * "a\nb" → `a\x0ab`. The pool keeps its name unescaped (`pool.name`, `stats.name`).
 */
export function escapePoolName(name: string): string {
  return name.replace(UNSAFE, (c) => {
    if (c === '\\') return '\\\\';
    const n = c.charCodeAt(0);
    return n < 0x100 ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
  });
}

/** One line as the kernel prints it: "%-16s %4u %4u %4u %2u", the name escaped (escapePoolName). */
export function poolsLine(s: Pick<PoolStats, 'name' | 'inUse' | 'blocks' | 'size' | 'pages'>): string {
  return `${escapePoolName(String(s.name)).padEnd(16)} ${String(s.inUse).padStart(4)} ${String(s.blocks).padStart(4)} ` +
    `${String(s.size).padStart(4)} ${String(s.pages).padStart(2)}`;
}

export function poolsReport(pools: readonly Pick<PoolStats, 'name' | 'inUse' | 'blocks' | 'size' | 'pages'>[]): string {
  return [POOLS_HEADER, ...pools.map(poolsLine)].join('\n') + '\n';
}
