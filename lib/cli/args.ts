/**
 * The command line's argument parsers, shared by every command (main.ts, nvme.ts). Each throws
 * commander's InvalidArgumentError saying what it expected and what it got; the commands turn
 * that into one line on stderr and exit 2.
 */
import { InvalidArgumentError } from 'commander';
import { normalizeBdf } from '../pci';
import { parseSize } from './doctor';

/** A value as it is quoted in a usage error: single quotes, control characters escaped (one line). */
export function q(v: string): string {
  return `'${v.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
}

/** An integer from min to max, in decimal digits ('1e3', '0x10', '1.0', '' are not). */
export function int(min: number, max: number) {
  return (v: string): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${q(v)}`);
    return n;
  };
}

/** A comma-separated list of integers from min to max (duplicates dropped). */
export function intList(min: number, max: number) {
  const one = int(min, max);
  return (v: string): number[] => [...new Set(v.split(',').map((s) => one(s.trim())))];
}

/** A comma-separated list of allowed names (duplicates dropped, no empty items). */
export function list<T extends string>(allowed: readonly T[]) {
  return (v: string): T[] => {
    const xs = v.split(',').map((s) => s.trim());
    const bad = xs.find((x) => !allowed.includes(x as T));
    if (bad !== undefined)
      throw new InvalidArgumentError(`expected a comma-separated list of ${allowed.join(', ')}, got ${bad === '' ? `an empty item in ${q(v)}` : q(bad)}`);
    return [...new Set(xs)] as T[];
  };
}

/** One of the allowed names. */
export function oneOf<T extends string>(allowed: readonly T[]) {
  return (v: string): T => {
    if (!allowed.includes(v as T)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got ${q(v)}`);
    return v as T;
  };
}

/** A size such as 64M, 1G or 4096 (bytes), at least one byte. */
export function size(v: string): number {
  let n: number;
  try {
    n = parseSize(v);
  } catch {
    throw new InvalidArgumentError(`expected a size such as 64M, 1G or 4096 (bytes), got ${q(v)}`);
  }
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a size from 1 byte to 8P, got ${q(v)}`);
  return n;
}

/** A comma-separated list of sizes (4k,128k) from min to max bytes; `example` shows the form in the error. */
export function sizeList(min: number, max: number, range: string, example: string) {
  return (v: string): number[] => v.split(',').map((s) => {
    let n = NaN;
    try { n = parseSize(s); } catch { /* below */ }
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected sizes from ${range} such as ${example}, got ${q(s)}`);
    return n;
  });
}

export function isBdf(v: string): boolean {
  try { normalizeBdf(v); return true; } catch { return false; }
}

/** A PCI address (returned in its full form, 0000:85:00.0). */
export function bdfArg(v: string): string {
  if (!isBdf(v)) throw new InvalidArgumentError(`expected a PCI address DDDD:BB:DD.F such as 0000:85:00.0, got ${q(v)}`);
  return normalizeBdf(v);
}
