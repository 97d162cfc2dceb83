/** Powers of two: the one place the library computes them (layout, page index, providers). */

/** True for 1, 2, 4, … (a positive integer with one bit set; exact above 2^31 too). */
export function isPow2(n: number): boolean {
  if (!Number.isSafeInteger(n) || n <= 0) return false;
  return n <= 0x40000000 ? (n & (n - 1)) === 0 : nextPow2(n) === n;
}

/** The smallest power of two ≥ n (1 for n ≤ 1). */
export function nextPow2(n: number): number {
  if (n <= 0x40000000) return n <= 1 ? 1 : 2 ** (32 - Math.clz32(Math.ceil(n) - 1));
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** The largest power of two ≤ n (n ≥ 1). */
export function prevPow2(n: number): number {
  if (n < 0x80000000) return n < 1 ? 0 : 2 ** (31 - Math.clz32(Math.floor(n)));
  let p = 0x80000000;
  while (p * 2 <= n) p *= 2;
  return p;
}
