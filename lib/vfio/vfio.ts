/**
 * VFIO type1 IOMMU: a container, the IOMMU groups attached to it, and vfio-pci devices.
 * Every device whose group is attached to the same container sees the same IOVA mappings, so
 * one pool's memory is visible to all of them.
 */
import { DmaPoolError } from '../errors';
import { IovaAllocator } from '../iova';
import { native } from '../native';
import { PciDeviceInfo, groupBlockers, groupMembers, normalizeBdf, pciDevicePath, pciInfo } from '../pci';
import { HOST, SysRoot } from '../sysfs';
import { IrqInfo, IrqKind, Interrupts } from '../irq';
import { vfioEnableInterrupts, vfioIrqInfo } from './irq';
import type { IommuContext } from './iommu';
import { BarMapping, PciAccess } from './pci-access';
import * as u from './uapi';

export interface VfioOptions {
  sys?: SysRoot;
  /** Lowest IOVA to hand out (default 1 MiB: IOVA 0 stays unmapped so a NULL DMA faults). */
  iovaFloor?: number;
}

function hintBind(bdf: string): string {
  return `bind it to vfio-pci: dmapool bind ${bdf}  (or: echo vfio-pci > ${pciDevicePath(bdf)}/driver_override && ` +
    `echo ${bdf} > ${pciDevicePath(bdf)}/driver/unbind; echo ${bdf} > /sys/bus/pci/drivers_probe)`;
}

export class VfioGroup {
  constructor(readonly id: number, readonly fd: number) {}
}

export class VfioContainer implements IommuContext {
  readonly backend = 'type1' as const;
  readonly fd: number;
  readonly groups = new Map<number, VfioGroup>();
  readonly devices: VfioPciDevice[] = [];
  iommuType = 0;
  info: u.IommuInfo = { flags: 0, pageSizes: 0, iovaRanges: [], caps: [] };
  iova!: IovaAllocator;
  /** Live DMA mappings (bounded by dma_entry_limit, 65535 by default). */
  mappings = 0;
  private dmaLimit = Infinity;
  private closed = false;
  private readonly sys: SysRoot;

  constructor(private readonly opts: VfioOptions = {}) {
    this.sys = opts.sys ?? HOST;
    const n = native();
    this.fd = n.open(this.sys.path('/dev/vfio/vfio'), n.constants.O_RDWR,
      'load the VFIO modules: modprobe vfio-pci (and enable the IOMMU: intel_iommu=on / amd_iommu=on)');
    try {
      const api = n.ioctl(this.fd, u.VFIO_GET_API_VERSION, 0, 'VFIO_GET_API_VERSION');
      if (api !== u.VFIO_API_VERSION) throw new DmaPoolError('ENODEV', `unknown VFIO API version ${api}`);
      if (!n.ioctl(this.fd, u.VFIO_CHECK_EXTENSION, u.VFIO_TYPE1v2_IOMMU, 'VFIO_CHECK_EXTENSION'))
        throw new DmaPoolError('ENODEV', 'VFIO type1v2 IOMMU not supported by this kernel',
          'load vfio_iommu_type1 and enable the IOMMU (intel_iommu=on / amd_iommu=on)');
    } catch (e) {
      n.close(this.fd);
      throw e;
    }
  }

  /** Checks that every member of the group is bound to vfio-pci or to a driver that never DMAs. */
  static checkViable(group: number, sys: SysRoot = HOST): PciDeviceInfo[] {
    const members = groupMembers(group, sys);
    const offenders = groupBlockers(group, sys);
    if (offenders.length)
      throw new DmaPoolError('EBUSY',
        `IOMMU group ${group} is not viable: ${offenders.map((o) => `${o.bdf} is bound to ${o.driver}`).join(', ')}`,
        `every device of the group must be bound to vfio-pci or unbound: ${offenders.map((o) => `dmapool bind ${o.bdf}`).join('; ')}`);
    return members;
  }

  /**
   * Checks from sysfs alone that `bdf` can be opened through VFIO: it exists, the IOMMU gave it
   * a group, it is bound to vfio-pci, and its group is viable. Returns the group number.
   */
  static preflight(bdfIn: string, sys: SysRoot = HOST): number {
    const bdf = normalizeBdf(bdfIn);
    const info = pciInfo(bdf, sys);
    if (info.iommuGroup === undefined)
      throw new DmaPoolError('ENODEV', `${bdf} has no IOMMU group: the IOMMU is off`,
        'enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on) iommu=pt');
    if (info.driver !== 'vfio-pci')
      throw new DmaPoolError('ENODEV', `${bdf} is bound to ${info.driver ?? 'no driver'}, not vfio-pci`, hintBind(bdf));
    VfioContainer.checkViable(info.iommuGroup, sys);
    return info.iommuGroup;
  }

  /** Attaches the IOMMU group of `bdf` (once) and opens the device. */
  openDevice(bdf: string): VfioPciDevice {
    this.checkOpen();
    const group = this.attachGroup(VfioContainer.preflight(bdf, this.sys));
    const n = native();
    const fd = n.vfioGroupGetDeviceFd(group.fd, bdf, 'the device may already be open in another process');
    const dev = new VfioPciDevice(bdf, fd);
    this.devices.push(dev);
    return dev;
  }

  private attachGroup(id: number): VfioGroup {
    const have = this.groups.get(id);
    if (have) return have;
    const n = native();
    const path = this.sys.path(`/dev/vfio/${id}`);
    const fd = n.open(path, n.constants.O_RDWR,
      `EACCES/EPERM: give this user access (chown $USER ${path}, or a udev rule) or run as root; ` +
      `EBUSY: the group is already open (another process, or a Device not closed); ` +
      `ENOENT: no device of group ${id} is bound to vfio-pci`);
    try {
      const st = u.struct(8);
      n.ioctl(fd, u.VFIO_GROUP_GET_STATUS, st.bytes, 'VFIO_GROUP_GET_STATUS');
      const flags = st.view.getUint32(4, true);
      if (!(flags & u.VFIO_GROUP_FLAGS_VIABLE))
        throw new DmaPoolError('EBUSY', `IOMMU group ${id} is not viable`, 'bind every device of the group to vfio-pci');
      const c = new Uint8Array(4);
      new DataView(c.buffer).setInt32(0, this.fd, true);
      n.ioctl(fd, u.VFIO_GROUP_SET_CONTAINER, c, 'VFIO_GROUP_SET_CONTAINER');
    } catch (e) {
      n.close(fd);
      throw e;
    }
    const g = new VfioGroup(id, fd);
    this.groups.set(id, g);
    if (this.groups.size === 1) this.setIommu();
    return g;
  }

  private setIommu(): void {
    const n = native();
    n.ioctl(this.fd, u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU, 'VFIO_SET_IOMMU');
    this.iommuType = u.VFIO_TYPE1v2_IOMMU;
    this.info = this.getInfo();
    const ranges = this.info.iovaRanges.length ? this.info.iovaRanges : [{ start: 0, end: 2 ** 39 - 1 }];
    this.iova = new IovaAllocator(ranges, this.opts.iovaFloor ?? 0x100000);
    if (this.info.dmaAvail !== undefined) this.dmaLimit = this.info.dmaAvail;
  }

  /** VFIO_IOMMU_GET_INFO, growing the buffer to the argsz the kernel asks for (capability chain). */
  private getInfo(): u.IommuInfo {
    const n = native();
    let size = 24;
    for (let tries = 0; tries < 4; tries++) {
      const s = u.struct(size);
      n.ioctl(this.fd, u.VFIO_IOMMU_GET_INFO, s.bytes, 'VFIO_IOMMU_GET_INFO');
      const argsz = s.view.getUint32(0, true);
      if (argsz <= size) return u.parseIommuInfo(s.bytes);
      size = argsz;
    }
    throw new DmaPoolError('EOVERFLOW', 'VFIO_IOMMU_GET_INFO kept growing');
  }

  /** Maps the first `size` bytes of native mapping `mapping` at `iova` for device read and write. */
  mapDma(mapping: number, size: number, iova: number): void {
    this.checkOpen();
    if (this.mappings >= this.dmaLimit)
      throw new DmaPoolError('ENOMEM', `VFIO DMA mapping limit reached (${this.mappings} mappings)`,
        'raise /sys/module/vfio_iommu_type1/parameters/dma_entry_limit or use a larger slabSize');
    native().vfioMapDma(this.fd, mapping, 0, size, iova,
      'ENOSPC: dma_entry_limit reached (raise /sys/module/vfio_iommu_type1/parameters/dma_entry_limit); ' +
      'ENOMEM: RLIMIT_MEMLOCK too low (ulimit -l); EINVAL: IOVA outside the IOMMU aperture');
    this.mappings++;
  }

  unmapDma(iova: number, size: number): void {
    this.checkOpen();
    native().vfioUnmapDma(this.fd, iova, size);
    this.mappings--;
  }

  get iovaAlignment(): number {
    return native().pageSize;
  }

  describe(): string {
    return `VFIO type1 container, IOMMU group ${[...this.groups.keys()].join(',')}`;
  }

  private checkOpen(): void {
    if (this.closed) throw new DmaPoolError('EBADF', 'VFIO container is closed');
  }

  /** Closes devices (unmapping their BARs), detaches groups, closes the container. Twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const n = native();
    for (const d of this.devices) d.close();
    for (const g of this.groups.values()) {
      try { n.ioctl(g.fd, u.VFIO_GROUP_UNSET_CONTAINER, 0, 'VFIO_GROUP_UNSET_CONTAINER'); } catch { /* closing anyway */ }
      n.close(g.fd);
    }
    this.groups.clear();
    n.close(this.fd);
  }
}

/** A vfio-pci device: regions, BAR mmap, config space, reset. */
export class VfioPciDevice extends PciAccess {
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;

  constructor(bdf: string, readonly fd: number) {
    super(bdf);
    const s = u.struct(24);
    native().ioctl(fd, u.VFIO_DEVICE_GET_INFO, s.bytes, 'VFIO_DEVICE_GET_INFO');
    this.flags = s.view.getUint32(4, true);
    this.numRegions = s.view.getUint32(8, true);
    this.numIrqs = s.view.getUint32(12, true);
  }

  regionInfo(index: number): u.RegionInfo {
    this.checkOpen();
    const s = u.struct(32);
    s.view.setUint32(8, index, true);
    native().ioctl(this.fd, u.VFIO_DEVICE_GET_REGION_INFO, s.bytes, `VFIO_DEVICE_GET_REGION_INFO ${index}`);
    return { index, flags: s.view.getUint32(4, true), size: u.u64(s.view, 16), offset: u.u64(s.view, 24) };
  }

  protected mapBarImpl(index: number): BarMapping {
    const r = this.regionInfo(index);
    if (r.size === 0) throw new DmaPoolError('ENODEV', `${this.bdf}: BAR${index} is not implemented`);
    if (!(r.flags & u.VFIO_REGION_INFO_FLAG_MMAP))
      throw new DmaPoolError('EINVAL', `${this.bdf}: BAR${index} cannot be mmapped (I/O port BAR?)`);
    const n = native();
    const m = n.mmapFd(this.fd, r.size, r.offset, n.constants.PROT_READ | n.constants.PROT_WRITE, n.constants.MAP_SHARED,
      `${this.bdf} BAR${index}`);
    return m;
  }

  private configOffset(): number {
    return this.regionInfo(u.VFIO_PCI_CONFIG_REGION_INDEX).offset;
  }

  protected readConfigImpl(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(length);
    native().pread(this.fd, b, this.configOffset() + offset, `${this.bdf} config`);
    return b;
  }

  protected writeConfigImpl(offset: number, bytes: Uint8Array): void {
    native().pwrite(this.fd, bytes, this.configOffset() + offset, `${this.bdf} config`);
  }

  /** VFIO_DEVICE_RESET (function-level or the reset the kernel has for this device). */
  reset(): void {
    this.checkOpen();
    if (!(this.flags & u.VFIO_DEVICE_FLAGS_RESET))
      throw new DmaPoolError('ENODEV', `${this.bdf} has no reset method VFIO can use`);
    native().ioctl(this.fd, u.VFIO_DEVICE_RESET, 0, 'VFIO_DEVICE_RESET');
  }

  protected override irqInfoImpl(kind: IrqKind): IrqInfo {
    return vfioIrqInfo(this.fd, kind);
  }

  protected override enableInterruptsImpl(kind: IrqKind, count: number | undefined, onClose: () => void): Interrupts {
    return vfioEnableInterrupts(this.bdf, this.fd, kind, count, onClose);
  }

  protected closeImpl(): void {
    native().close(this.fd);
  }
}
