/**
 * `uio:<BDF>` — physical memory for a device without IOMMU translation (bound to
 * uio_pci_generic, or any device on a box without an IOMMU). Slabs are 2 MiB huge pages when
 * free ones exist (contiguous as a whole), else mlocked 4 KiB pages (contiguous per page, so a
 * pool allocation above 4 KiB needs huge pages). Physical addresses come from pagemap.
 */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { checkUioDriver, dmaTranslation, normalizeBdf, pciInfo } from '../pci';
import { MappedSlab, Slab } from '../provider';
import { SysRoot } from '../sysfs';
import { SysfsPciDevice } from '../vfio/sysfs-pci';
import { checkMemlock } from './memlock';
import { HUGE_2M, translate } from './pagemap';
import { PhysicalOptions, PhysicalProvider } from './physical';

/** Checks that a device's DMA is not translated by an IOMMU (else physical addresses are wrong for it). */
export function checkUntranslated(bdf: string, sys: SysRoot): void {
  const type = dmaTranslation(pciInfo(bdf, sys), sys);
  if (type)
    throw new DmaPoolError('ENODEV',
      `${bdf} is behind an IOMMU in a translated domain (${type}): physical addresses are not what it sees`,
      `use vfio:${bdf} instead, or boot with iommu=pt so the device is identity-mapped`);
}

export class UioProvider extends PhysicalProvider {
  readonly kind = 'uio' as const;
  readonly deviceVisible = true;
  readonly description: string;
  readonly pciDevice: SysfsPciDevice;
  private pinned = 0;

  constructor(bdf: string, opts: PhysicalOptions = {}) {
    super(opts);
    const sys = this.sys;
    const b = normalizeBdf(bdf);
    const drv = checkUioDriver(b, sys); // never a function a kernel driver owns
    checkUntranslated(b, sys);
    this.pciDevice = new SysfsPciDevice(b, sys);
    this.description = `uio: ${b} (driver ${drv}), physical addresses via pagemap, ` +
      (this.huge ? '2 MiB huge pages' : 'mlocked 4 KiB pages (allocations up to 4 KiB)');
  }

  protected mapSlab(size: number, align: number): MappedSlab {
    const n = native();
    if (!this.huge) checkMemlock(this.pinned, size, 'uio');
    const m = n.mapAnonymous(size, this.huge ? HUGE_2M : align, { hugetlb: this.huge, populate: true, lock: 2 });
    try {
      const unit = this.huge ? HUGE_2M : this.pageSize;
      const unitDma = translate(m.address, size, unit, this.sys);
      this.pinned += size;
      return { mapping: m.id, buffer: m.buffer, dma: unitDma[0], unit, unitDma };
    } catch (e) {
      n.unmap(m.id);
      throw e;
    }
  }

  protected unmapSlab(slab: Slab): void {
    native().unmap(slab.mapping);
    this.pinned -= slab.size;
  }

  /** Register access to the device (sysfs resourceN / config). */
  override device(bdf?: string): SysfsPciDevice {
    if (bdf !== undefined && normalizeBdf(bdf) !== this.pciDevice.bdf)
      throw new DmaPoolError('ENODEV', `${bdf} is not ${this.pciDevice.bdf}`);
    return this.pciDevice;
  }

  protected override closeProvider(): void {
    this.pciDevice.close();
  }
}
