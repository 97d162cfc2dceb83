/**
 * udmabuf's own limits (drivers/dma-buf/udmabuf.c module parameters, readable — and, as root,
 * writable — in /sys/module/udmabuf/parameters/, also when udmabuf is built in):
 *
 * - `size_limit_mb` (default 64): the largest dma-buf UDMABUF_CREATE makes, in MiB (the pages of
 *   all entries of one create count together). A larger request fails with EINVAL/ENOMEM.
 * - `list_limit` (default 1024): the most entries one UDMABUF_CREATE_LIST may carry.
 *
 * The one rule both the provider and `dmapool doctor` apply: every udmabuf slab is one dma-buf
 * of one memfd range (UDMABUF_CREATE, a list of exactly one entry, so list_limit >= 1 is all it
 * needs) of at most size_limit_mb MiB.
 */
import { DmaPoolError, hex } from '../errors';
import { HOST, SysRoot } from '../sysfs';

export const UDMABUF_PARAMS = '/sys/module/udmabuf/parameters';
export const UDMABUF_DEFAULT_SIZE_LIMIT_MB = 64;
export const UDMABUF_DEFAULT_LIST_LIMIT = 1024;
/** Entries per UDMABUF_CREATE that dmapool uses: one memfd range per dma-buf. */
export const UDMABUF_ENTRIES_PER_SLAB = 1;

export interface UdmabufLimits {
  /** Largest dma-buf in bytes (size_limit_mb × 1 MiB). */
  maxBytes: number;
  sizeLimitMb: number;
  listLimit: number;
  /** 'sysfs' when read from /sys/module/udmabuf/parameters, 'default' when absent (the kernel's defaults). */
  source: 'sysfs' | 'default';
}

function readInt(sys: SysRoot, name: string): number | undefined {
  const v = sys.read(`${UDMABUF_PARAMS}/${name}`);
  return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
}

export function udmabufLimits(sys: SysRoot = HOST): UdmabufLimits {
  const mb = readInt(sys, 'size_limit_mb');
  const list = readInt(sys, 'list_limit');
  const sizeLimitMb = mb ?? UDMABUF_DEFAULT_SIZE_LIMIT_MB;
  return {
    sizeLimitMb,
    listLimit: list ?? UDMABUF_DEFAULT_LIST_LIMIT,
    maxBytes: Math.max(0, sizeLimitMb) * 2 ** 20,
    source: mb !== undefined || list !== undefined ? 'sysfs' : 'default',
  };
}

/** Why a dma-buf of `bytes` (one entry) would be refused by these limits, or undefined if it fits. */
export function udmabufRefusal(bytes: number, l: UdmabufLimits): string | undefined {
  if (l.listLimit < UDMABUF_ENTRIES_PER_SLAB) return `list_limit is ${l.listLimit}: no UDMABUF_CREATE can succeed`;
  if (bytes > l.maxBytes) return `a ${hex(bytes)}-byte dma-buf exceeds size_limit_mb=${l.sizeLimitMb} (${hex(l.maxBytes)} bytes)`;
  return undefined;
}

/** Throws EINVAL (with the fix) when a dma-buf of `bytes` would exceed udmabuf's limits. */
export function checkUdmabufSize(bytes: number, l: UdmabufLimits): void {
  const why = udmabufRefusal(bytes, l);
  if (why)
    throw new DmaPoolError('EINVAL', `udmabuf: ${why}`,
      `raise it (root: echo ${Math.max(1, Math.ceil(bytes / 2 ** 20))} > ${UDMABUF_PARAMS}/size_limit_mb; list_limit >= 1) or use a smaller slabSize`);
}
