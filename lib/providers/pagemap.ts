/**
 * Physical addresses of our own memory from /proc/self/pagemap, one batched read per slab.
 * Used by the UIO and udmabuf providers (no IOMMU translation: the device sees physical
 * addresses). 4 KiB pages are physically contiguous only one page at a time; a 2 MiB huge page
 * is contiguous as a whole.
 */
import { DmaPoolError, hex } from '../errors';
import { native } from '../native';
import { HOST, SysRoot } from '../sysfs';

const PM_PRESENT = 1n << 63n;
const PM_PFN_MASK = (1n << 55n) - 1n;
export const HUGE_2M = 2 << 20;

/** How to reserve enough 2 MiB huge pages for `bytes` (at least 64): the one fix text, shared with doctor. */
export function hugepagesFix(bytes = 0): string {
  return `echo ${Math.max(64, Math.ceil(bytes / HUGE_2M))} > /proc/sys/vm/nr_hugepages`;
}

/**
 * Physical address of each `unit`-sized piece of [address, address + size). With unit > page
 * size, checks that every piece really is physically contiguous.
 */
export function translate(address: bigint, size: number, unit: number, sys: SysRoot = HOST): Float64Array {
  const n = native();
  const page = n.pageSize;
  const pages = size / page;
  const buf = new Uint8Array(pages * 8);
  const fd = n.open(sys.path('/proc/self/pagemap'), n.constants.O_RDONLY);
  try {
    n.pread(fd, buf, Number(address / BigInt(page)) * 8, '/proc/self/pagemap');
  } finally {
    n.close(fd);
  }
  const entries = new BigUint64Array(buf.buffer);
  const per = unit / page;
  const out = new Float64Array(size / unit);
  for (let i = 0; i < pages; i++) {
    const e = entries[i];
    if (!(e & PM_PRESENT))
      throw new DmaPoolError('EFAULT', `page ${hex(Number(address) + i * page)} is not present in memory`,
        'the memory must be populated and locked before translation');
    const pfn = e & PM_PFN_MASK;
    if (pfn === 0n)
      throw new DmaPoolError('EFAULT', '/proc/self/pagemap returned PFN 0: physical addresses are hidden',
        'reading PFNs needs CAP_SYS_ADMIN: run as root (or grant cap_sys_admin to node)');
    const phys = Number(pfn) * page;
    const u = Math.floor(i / per);
    if (i % per === 0) out[u] = phys;
    else if (phys !== out[u] + (i % per) * page)
      throw new DmaPoolError('EFAULT', `memory at ${hex(Number(address) + i * page)} is not physically contiguous within its ${unit}-byte unit`);
  }
  return out;
}

/** Free 2 MiB huge pages, from sysfs. */
export function freeHugepages(sys: SysRoot = HOST): number {
  return Number(sys.read('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages') ?? 0);
}
