/**
 * dma_pool_create() argument rules and the block layout inside one pool page,
 * exactly as Linux's mm/dmapool.c (see README "Differences from the kernel").
 */
import { DmaPoolError } from './errors';
import { isPow2 } from './pow2';

export const INT_MAX = 0x7fffffff;

export interface LayoutOptions {
  /** Block alignment in bytes (power of two); 0 means 1. */
  align?: number;
  /** Blocks never cross a multiple of this (power of two, ≥ size); 0 means the allocation size. */
  boundary?: number;
  /** Reproduce the pre-6.4 layout (last block before each boundary wasted) and its totals formula. */
  legacyLayout?: boolean;
}

export interface PoolGeometry {
  /** Block size after rounding up to `align`. */
  readonly size: number;
  readonly align: number;
  /**
   * The pool's boundary: clamped to the allocation (Linux ≥ 6.4); with `legacyLayout`, as given,
   * like Linux 6.1, whose layout then never meets a boundary inside the page.
   */
  readonly boundary: number;
  /** The in-page layout window: min(boundary, allocation). Every window is laid out alike. */
  readonly window: number;
  /** Bytes of coherent memory per pool page: max(size, PAGE_SIZE). */
  readonly allocation: number;
  readonly legacyLayout: boolean;
  /** Offsets of the blocks in one page, ascending. Same for every page. */
  readonly offsets: Int32Array;
  readonly blocksPerPage: number;
  /** Blocks per boundary window (every window of a page is laid out alike). */
  readonly blocksPerWindow: number;
  /** Blocks per page as the kernel's `pools` file counts them (legacy: allocation / size). */
  readonly reportedBlocksPerPage: number;
}

/**
 * A value for an error message, never throwing: numbers and strings as such (strings quoted and
 * cut to 40 characters), anything else by its type (a Symbol or an object whose toString
 * throws must not turn an EINVAL into a TypeError).
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'number': case 'boolean': case 'undefined': return String(v);
    case 'bigint': return `${v}n`;
    case 'string': return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
    case 'function': return 'a function';
    case 'symbol': return 'a symbol';
    default: return v === null ? 'null' : Array.isArray(v) ? 'an array' : 'an object';
  }
}

function checkInt(name: string, v: unknown, max = INT_MAX): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new DmaPoolError('EINVAL', `${name} must be an integer in [0, ${max}], got ${describeValue(v)}`);
  return v;
}

/** Lays out blocks in one page; `legacy` uses the pre-fix `>=` test. */
export function layoutBlocks(size: number, boundary: number, allocation: number, legacy: boolean): Int32Array {
  const out: number[] = [];
  if (legacy) {
    // Linux <= 6.3 pool_initialise_page(): each visited offset is a block; the link to the
    // next one jumps to the boundary when the block after it would reach the boundary. 6.1 hands
    // out every visited offset below the allocation — with a boundary above the allocation also
    // one whose block runs past the end of the page (size 17, boundary 8192: a block at 4080).
    // That is a kernel bug: such a block is never laid out here.
    let offset = 0;
    let nextBoundary = boundary;
    do {
      if (offset + size <= allocation) out.push(offset);
      let next = offset + size;
      if (next + size >= nextBoundary) {
        next = nextBoundary;
        nextBoundary += boundary;
      }
      offset = next;
    } while (offset < allocation);
  } else {
    // Linux >= 6.4 / the seed's "fix boundary comparison": a block may end exactly on a boundary.
    let offset = 0;
    let nextBoundary = boundary;
    while (offset + size <= allocation) {
      if (offset + size > nextBoundary) {
        offset = nextBoundary;
        nextBoundary += boundary;
        continue;
      }
      out.push(offset);
      offset += size;
    }
  }
  return Int32Array.from(out);
}

/** Applies dma_pool_create()'s rules; throws DmaPoolError('EINVAL') naming the bad argument. */
export function poolGeometry(requestedSize: number, opts: LayoutOptions, pageSize: number): PoolGeometry {
  // only undefined means "absent": null or another type is an error, not a default
  let align = checkInt('align', opts.align === undefined ? 0 : opts.align);
  let boundary = checkInt('boundary', opts.boundary === undefined ? 0 : opts.boundary);
  const legacy: unknown = opts.legacyLayout === undefined ? false : opts.legacyLayout;
  if (typeof legacy !== 'boolean')
    throw new DmaPoolError('EINVAL', `legacyLayout must be a boolean, got ${describeValue(legacy)}`);
  if (align === 0) align = 1;
  else if (!isPow2(align)) throw new DmaPoolError('EINVAL', `align must be a power of two, got ${align}`);
  if (typeof requestedSize !== 'number' || !Number.isInteger(requestedSize) || requestedSize <= 0 || requestedSize > INT_MAX)
    throw new DmaPoolError('EINVAL', `size must be an integer in [1, ${INT_MAX}], got ${describeValue(requestedSize)}`);
  // The kernel raises tiny sizes to fit its in-block free-list links (16 B since 6.4, 4 B before).
  // Our free lists live outside DMA memory, so the requested size is kept (README: differences).
  const size = Math.ceil(requestedSize / align) * align;
  if (size > INT_MAX) throw new DmaPoolError('EINVAL', `size ${requestedSize} aligned to ${align} exceeds INT_MAX`);
  const allocation = Math.max(size, pageSize);
  if (boundary === 0) boundary = allocation;
  else if (boundary < size || !isPow2(boundary))
    throw new DmaPoolError('EINVAL',
      `boundary must be a power of two >= the aligned size ${size}, got ${boundary}`);
  // Linux ≥ 6.4 clamps the boundary to the allocation. Linux 6.1 does not: with a boundary above
  // the allocation its layout loop meets no boundary inside the page (size 128, boundary 8192:
  // 32 blocks, not the 31 of a page-sized boundary).
  if (!legacy) boundary = Math.min(boundary, allocation);
  const window = Math.min(boundary, allocation);
  const offsets = layoutBlocks(size, boundary, allocation, legacy);
  const windows = allocation / window; // allocation is always a multiple of the window
  return {
    size, align, boundary, window, allocation, legacyLayout: legacy, offsets,
    blocksPerPage: offsets.length,
    blocksPerWindow: offsets.length / windows,
    reportedBlocksPerPage: legacy ? Math.floor(allocation / size) : offsets.length,
  };
}

/** Index of the block starting at `offset` within a page, or -1 when no block starts there. */
export function blockIndex(g: PoolGeometry, offset: number): number {
  const window = Math.floor(offset / g.window);
  const within = offset - window * g.window;
  const k = within / g.size;
  if (k !== Math.floor(k) || k >= g.blocksPerWindow) return -1;
  const idx = window * g.blocksPerWindow + k;
  return idx < g.blocksPerPage && g.offsets[idx] === offset ? idx : -1;
}
