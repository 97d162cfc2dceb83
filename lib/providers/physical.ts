/**
 * Base of the providers whose DMA addresses are physical addresses (uio, udmabuf): 2 MiB huge
 * pages when free ones exist (contiguous as a whole), else 4 KiB pages (contiguous one page at a
 * time, so pool allocations above 4 KiB need huge pages).
 */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { SlabProvider, SlabProviderOptions } from '../provider';
import { HOST, SysRoot } from '../sysfs';
import { freeHugepages, HUGE_2M, hugepagesFix } from './pagemap';

export interface PhysicalOptions extends SlabProviderOptions {
  sys?: SysRoot;
  /** Use huge pages: true = require, false = never, undefined = when free ones exist. */
  hugepages?: boolean;
}

export function useHugepages(want: boolean | undefined, sys: SysRoot): boolean {
  const free = freeHugepages(sys);
  if (want === true && free === 0)
    throw new DmaPoolError('ENOMEM', 'huge pages requested but none are free', hugepagesFix());
  return want ?? free > 0;
}

export abstract class PhysicalProvider extends SlabProvider {
  protected huge: boolean;
  protected readonly sys: SysRoot;

  constructor(opts: PhysicalOptions) {
    const sys = opts.sys ?? HOST;
    const huge = useHugepages(opts.hugepages, sys);
    super(native().pageSize, { slabSize: huge ? HUGE_2M : opts.slabSize ?? HUGE_2M });
    this.sys = sys;
    this.huge = huge;
  }

  override get maxContiguous(): number {
    return this.huge ? HUGE_2M : this.pageSize;
  }

  protected override contiguityHint(): string {
    return `reserve 2 MiB huge pages (${hugepagesFix()}) so slabs are physically contiguous`;
  }
}
