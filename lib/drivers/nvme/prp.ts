/**
 * PRP (Physical Region Page) data pointers, built the way Linux's nvme driver builds them
 * (drivers/nvme/host/pci.c, nvme_pci_setup_prps): PRP1 is the first byte of the transfer (any
 * dword offset); if the transfer ends within the next controller page, PRP2 is that page; else
 * PRP2 points at a PRP list of page addresses. A list of at most 256/8 = 32 entries comes from the
 * "prp list 256" pool (256-byte blocks), a longer one from the "prp list page" pool (4096-byte
 * blocks); a full list page's last entry points to the next list page (the chain), so a page
 * carries 511 data entries and the chain pointer.
 */
import type { DmaPool } from '../../pool';
import { setU64 } from './commands';

/** The controller page size this driver uses (CC.MPS = 0). */
export const CTRL_PAGE = 4096;
/** Entries per list page (NVME_CTRL_PAGE_SIZE >> 3). */
export const PRPS_PER_PAGE = CTRL_PAGE / 8;
/** The largest list the small pool serves (256 / 8 entries). */
export const SMALL_PRPS = 256 / 8;

/** The two pools, as the kernel names them (dma_pool_create in nvme_setup_prp_pools). */
export const PRP_PAGE_POOL = 'prp list page', PRP_SMALL_POOL = 'prp list 256';

/** What a PRP builder needs from a pool (a DmaPool; tests may pass doubles). */
export type PrpPool = Pick<DmaPool, 'alloc' | 'free' | 'dataView'>;

export interface PrpPools {
  /** 4096-byte blocks, 4096-aligned. */
  page: PrpPool;
  /** 256-byte blocks, 256-aligned. */
  small: PrpPool;
}

/** The data pointer of one command, and the list blocks it holds until it completes. */
export interface Prps {
  prp1: number;
  prp2: number;
  /** DMA addresses of the list blocks, first list first (empty when no list is needed). */
  lists: number[];
  /** True when the one list came from the small pool. */
  small: boolean;
}

/** How many PRP entries follow PRP1 for `length` bytes starting at DMA address `dma`. */
export function prpEntriesAfterFirst(dma: number, length: number): number {
  const rest = length - (CTRL_PAGE - (dma % CTRL_PAGE));
  return rest <= 0 ? 0 : Math.ceil(rest / CTRL_PAGE);
}

/** How many list blocks a transfer needs: 0 (PRP1 or PRP1+PRP2), 1, or a chain. */
export function prpListCount(dma: number, length: number): number {
  const n = prpEntriesAfterFirst(dma, length);
  if (n <= 1) return 0;
  // each page but the last carries PRPS_PER_PAGE - 1 entries plus the chain pointer
  return n <= PRPS_PER_PAGE ? 1 : 1 + Math.ceil((n - PRPS_PER_PAGE) / (PRPS_PER_PAGE - 1));
}

/**
 * Builds the data pointer for `length` bytes (> 0) of DMA-contiguous memory at `dma` (dword
 * aligned). All or nothing: if a list allocation fails, the lists taken so far are freed and the
 * error is rethrown.
 */
export function buildPrps(pools: PrpPools, dma: number, length: number): Prps {
  if (!(length > 0) || dma % 4 !== 0) throw new RangeError(`PRP transfer of ${length} bytes at ${dma}: dword-aligned, non-empty`);
  const first = CTRL_PAGE - (dma % CTRL_PAGE);
  let rest = length - first;
  if (rest <= 0) return { prp1: dma, prp2: 0, lists: [], small: false };
  let addr = dma + first; // page aligned from here on
  if (rest <= CTRL_PAGE) return { prp1: dma, prp2: addr, lists: [], small: false };
  const nprps = Math.ceil(rest / CTRL_PAGE);
  const small = nprps <= SMALL_PRPS;
  const pool = small ? pools.small : pools.page;
  const lists: number[] = [];
  try {
    let list = pool.alloc();
    lists.push(list);
    let dv = pool.dataView(list);
    let i = 0;
    for (;;) {
      if (i === PRPS_PER_PAGE) {
        // chain: the last entry of the full page moves to the new page, and points to it
        const next = pool.alloc();
        lists.push(next);
        const ndv = pool.dataView(next);
        setU64(ndv, 0, addr - CTRL_PAGE); // the entry that was in slot 511 (written just before)
        setU64(dv, (i - 1) * 8, next);
        list = next; dv = ndv; i = 1;
      }
      setU64(dv, i * 8, addr);
      i++;
      rest -= CTRL_PAGE;
      if (rest <= 0) break;
      addr += CTRL_PAGE;
    }
    return { prp1: dma, prp2: lists[0], lists, small };
  } catch (e) {
    for (const l of lists) pool.free(l);
    throw e;
  }
}

/** Returns a command's list blocks to their pool (nvme_free_prps). */
export function freePrps(pools: PrpPools, p: Prps): void {
  if (p.lists.length === 0) return;
  const pool = p.small ? pools.small : pools.page;
  for (let i = 0; i < p.lists.length; i++) pool.free(p.lists[i]);
}
