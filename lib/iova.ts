/**
 * An IOVA (I/O virtual address) space allocator: hands out aligned ranges from a set of
 * usable apertures (VFIO reports them in VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) and reuses
 * freed ranges, coalescing neighbours. Ranges are kept as a sorted array of free extents;
 * allocations are per slab (≥ 2 MiB), so a linear first-fit over a handful of extents is cheap.
 */
import { DmaPoolError, hex } from './errors';

export interface IovaRange {
  start: number;
  /** Inclusive last address, as VFIO reports it. */
  end: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export class IovaAllocator {
  /** Free extents [start, end) sorted by start, non-overlapping, non-adjacent. */
  private free: { start: number; end: number }[] = [];
  private live = new Map<number, number>();

  /**
   * @param ranges usable apertures (inclusive ends). Addresses above 2^53 are clipped so
   *   every IOVA is an exact JS number; `floor` keeps low addresses unused (e.g. IOVA 0).
   */
  constructor(ranges: IovaRange[], floor = 0) {
    const sorted = [...ranges].sort((a, b) => a.start - b.start);
    for (const r of sorted) {
      const start = Math.max(r.start, floor);
      const end = Math.min(r.end, MAX_SAFE - 1) + 1;
      if (end > start) this.insertFree(start, end);
    }
  }

  /** Allocates `size` bytes aligned to `align` (a power of two). Throws ENOMEM when exhausted. */
  alloc(size: number, align: number): number {
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      const start = Math.ceil(f.start / align) * align;
      if (start + size > f.end) continue;
      // Split the extent around [start, start + size).
      const pieces: { start: number; end: number }[] = [];
      if (start > f.start) pieces.push({ start: f.start, end: start });
      if (start + size < f.end) pieces.push({ start: start + size, end: f.end });
      this.free.splice(i, 1, ...pieces);
      this.live.set(start, size);
      return start;
    }
    throw new DmaPoolError('ENOMEM', `IOVA space exhausted: no free ${hex(size)}-byte range aligned to ${hex(align)}`);
  }

  /** Returns a range given by alloc(). Throws EINVAL for anything else (incl. double free). */
  release(iova: number): void {
    const size = this.live.get(iova);
    if (size === undefined) throw new DmaPoolError('EINVAL', `IOVA ${hex(iova)} was not allocated here`);
    this.live.delete(iova);
    this.insertFree(iova, iova + size);
  }

  private insertFree(start: number, end: number): void {
    const f = this.free;
    let i = 0;
    while (i < f.length && f[i].start < start) i++;
    // merge with predecessor / successor when adjacent
    const prev = i > 0 ? f[i - 1] : undefined;
    const next = i < f.length ? f[i] : undefined;
    if ((prev && prev.end > start) || (next && end > next.start))
      throw new DmaPoolError('EINVAL', `IOVA range [${hex(start)}, ${hex(end)}) overlaps a free range`);
    if (prev && prev.end === start) {
      prev.end = end;
      if (next && next.start === end) { prev.end = next.end; f.splice(i, 1); }
    } else if (next && next.start === end) {
      next.start = start;
    } else {
      f.splice(i, 0, { start, end });
    }
  }

  /** Free extents, for tests and diagnostics. */
  freeRanges(): { start: number; end: number }[] {
    return this.free.map((r) => ({ ...r }));
  }

  get liveCount(): number {
    return this.live.size;
  }
}
