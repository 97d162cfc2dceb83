/**
 * `vfio:<BDF>[,<BDF>…]` — VFIO with an IOMMU: the type1v2 container or iommufd (lib/vfio/iommu.ts
 * picks one: option `iommu`, else DMAPOOL_VFIO_IOMMU, else iommufd when /dev/iommu and the
 * devices' VFIO cdevs exist). Slabs are anonymous memory mapped into the IOMMU at IOVAs we choose
 * (inside the reported usable ranges), one mapping per slab. Every listed device shares the
 * container / IO address space, so pool memory is visible to all of them.
 */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { normalizeBdf } from '../pci';
import { SlabProvider, Slab, SlabProviderOptions, MappedSlab } from '../provider';
import { SysRoot } from '../sysfs';
import { IommuChoice, IommuContext, selectIommu } from '../vfio/iommu';
import { IommufdContext } from '../vfio/iommufd';
import { VfioContainer, VfioPciDevice } from '../vfio/vfio';
import { checkMemlock } from './memlock';

export interface VfioProviderOptions extends SlabProviderOptions {
  sys?: SysRoot;
  iovaFloor?: number;
  /**
   * Which kernel interface: 'auto' (default: iommufd when /dev/iommu and every device's VFIO
   * cdev exist, else type1), 'iommufd' or 'type1'. Unset: $DMAPOOL_VFIO_IOMMU, else auto.
   */
  iommu?: IommuChoice;
}

export class VfioProvider extends SlabProvider {
  readonly kind = 'vfio' as const;
  readonly deviceVisible = true;
  readonly description: string;
  /** The IOMMU context: a VfioContainer (type1) or an IommufdContext. */
  readonly container: IommuContext;
  readonly devices: VfioPciDevice[] = [];
  private pinned = 0;

  constructor(bdfs: string[], opts: VfioProviderOptions = {}) {
    super(native().pageSize, opts);
    const norm = bdfs.map(normalizeBdf);
    for (const b of norm) VfioContainer.preflight(b, opts.sys); // clear sysfs-level errors first
    const sel = selectIommu(norm, opts.iommu, opts.sys);
    const copts = { ...(opts.sys ? { sys: opts.sys } : {}), ...(opts.iovaFloor !== undefined ? { iovaFloor: opts.iovaFloor } : {}) };
    this.container = sel.backend === 'iommufd' ? new IommufdContext(copts) : new VfioContainer(copts);
    try {
      for (const b of bdfs) this.devices.push(this.container.openDevice(normalizeBdf(b)));
    } catch (e) {
      this.container.close();
      throw e;
    }
    this.description = `vfio: ${this.devices.map((d) => d.bdf).join(', ')} (${this.container.describe()}; ${sel.reason}), ` +
      `IOVAs in the device's IOMMU domain, ${this.slabSize >> 20} MiB per IOMMU mapping`;
  }

  protected mapSlab(size: number, align: number): MappedSlab {
    checkMemlock(this.pinned, size, 'vfio');
    const n = native();
    const mem = n.mapAnonymous(size, align, { thp: true, populate: true, lock: 0 });
    let iova = -1;
    try {
      iova = this.container.iova.alloc(size, Math.max(align, this.container.iovaAlignment));
      this.container.mapDma(mem.id, size, iova);
    } catch (e) {
      if (iova >= 0) this.container.iova.release(iova);
      n.unmap(mem.id);
      throw e;
    }
    this.counters.iommuMaps++;
    this.pinned += size;
    return { mapping: mem.id, buffer: mem.buffer, dma: iova };
  }

  protected unmapSlab(slab: Slab): void {
    // the IOMMU mapping goes first: the device must lose access before the memory is freed
    this.container.unmapDma(slab.dma, slab.size);
    this.counters.iommuUnmaps++;
    native().unmap(slab.mapping);
    this.container.iova.release(slab.dma);
    this.pinned -= slab.size;
  }

  protected override closeProvider(): void {
    this.container.close();
  }

  override device(bdf?: string): VfioPciDevice {
    if (bdf === undefined) return this.devices[0];
    const want = normalizeBdf(bdf);
    const d = this.devices.find((x) => x.bdf === want);
    if (!d) throw new DmaPoolError('ENODEV', `${want} is not attached to this provider`);
    return d;
  }
}
