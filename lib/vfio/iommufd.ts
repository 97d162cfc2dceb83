/**
 * iommufd (Linux >= 6.6): one /dev/iommu descriptor, one IO address space (IOAS) in it, and
 * vfio-pci functions opened through their VFIO character devices (/dev/vfio/devices/vfioN),
 * bound to the iommufd (VFIO_DEVICE_BIND_IOMMUFD) and attached to the IOAS
 * (VFIO_DEVICE_ATTACH_IOMMUFD_PT). The kernel gives each attached device a paging domain that
 * follows the IOAS, so one IOMMU_IOAS_MAP per slab reaches every device of the context.
 *
 * IOVAs come from our allocator (IOMMU_IOAS_MAP_FIXED_IOVA) inside IOMMU_IOAS_IOVA_RANGES,
 * which reflects the reserved regions of the attached devices (e.g. the x86 MSI window): the
 * allocator is built when the first IOVA is needed, after the devices are attached.
 *
 * Pinned memory: iommufd charges it to the user's locked_vm against RLIMIT_MEMLOCK (per user,
 * not per process as type1 does) unless the process has CAP_IPC_LOCK.
 */
import { DmaPoolError, hex } from '../errors';
import { IovaAllocator, IovaRange } from '../iova';
import { native } from '../native';
import { HOST, SysRoot } from '../sysfs';
import { IommuContext, vfioCdevName } from './iommu';
import { VfioContainer, VfioPciDevice } from './vfio';

export interface IommufdOptions {
  sys?: SysRoot;
  /** Lowest IOVA to hand out (default 1 MiB: IOVA 0 stays unmapped so a NULL DMA faults). */
  iovaFloor?: number;
}

/** IOMMU_OPTION_RLIMIT_MODE values. */
export const IOMMUFD_ACCOUNTING = ['user', 'process'] as const;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const toNum = (v: bigint) => Number(v > MAX_SAFE ? MAX_SAFE : v);

export class IommufdContext implements IommuContext {
  readonly backend = 'iommufd' as const;
  readonly fd: number;
  readonly ioas: number;
  readonly devices: VfioPciDevice[] = [];
  /** iommufd device ids, parallel to `devices`. */
  readonly devIds: number[] = [];
  mappings = 0;
  iovaAlignment: number;
  private allocator: IovaAllocator | undefined;
  private closed = false;
  private readonly sys: SysRoot;

  constructor(private readonly opts: IommufdOptions = {}) {
    this.sys = opts.sys ?? HOST;
    const n = native();
    this.fd = n.open(this.sys.path('/dev/iommu'), n.constants.O_RDWR,
      'ENOENT: needs Linux >= 6.6 with CONFIG_IOMMUFD (modprobe iommufd); EACCES: give this user access to /dev/iommu or run as root');
    try {
      this.ioas = n.iommufdIoasAlloc(this.fd);
    } catch (e) {
      n.close(this.fd);
      throw e;
    }
    this.iovaAlignment = n.pageSize;
  }

  /** The usable IOVA ranges of the IOAS now (inclusive ends, clipped to 2^53 - 1). */
  ranges(): IovaRange[] {
    const r = native().iommufdIovaRanges(this.fd, this.ioas);
    const align = toNum(r.alignment);
    if (align > this.iovaAlignment) this.iovaAlignment = align;
    return r.ranges.filter((x) => x.start <= MAX_SAFE).map((x) => ({ start: toNum(x.start), end: toNum(x.last) }));
  }

  get iova(): IovaAllocator {
    this.checkOpen();
    if (!this.allocator) {
      const ranges = this.ranges();
      if (!ranges.length) throw new DmaPoolError('ENOSPC', `IOAS ${this.ioas} has no usable IOVA range`);
      this.allocator = new IovaAllocator(ranges, this.opts.iovaFloor ?? 0x100000);
    }
    return this.allocator;
  }

  openDevice(bdf: string): VfioPciDevice {
    this.checkOpen();
    VfioContainer.preflight(bdf, this.sys);
    const cdev = vfioCdevName(bdf, this.sys);
    if (!cdev)
      throw new DmaPoolError('ENODEV', `${bdf} has no VFIO cdev (/sys/bus/pci/devices/${bdf}/vfio-dev/vfioN)`,
        'needs CONFIG_VFIO_DEVICE_CDEV (Linux >= 6.6); or use the type1 container: { iommu: \'type1\' } / DMAPOOL_VFIO_IOMMU=type1');
    const n = native();
    const path = this.sys.path(`/dev/vfio/devices/${cdev}`);
    const fd = n.open(path, n.constants.O_RDWR,
      `EACCES/EPERM: give this user access to ${path} (udev rule) or run as root; EBUSY: the device is open elsewhere`);
    let dev: VfioPciDevice;
    try {
      let devId: number;
      try {
        devId = n.vfioDeviceBindIommufd(fd, this.fd,
          'EBUSY: the device or its IOMMU group is in use (another process, or a type1 container); ' +
          'EPERM: the IOMMU group is not viable (every device of the group must be bound to vfio-pci)');
      } catch (e) {
        // our struct is always valid: EINVAL is the kernel's "a cdev device is bound only once"
        if (e instanceof DmaPoolError && e.code === 'EINVAL')
          throw new DmaPoolError('EBUSY', `${bdf}: VFIO_DEVICE_BIND_IOMMUFD refused a second bind (EINVAL)`,
            'the device is already open (another process, or a Device not closed)');
        throw e;
      }
      n.vfioDeviceAttachPt(fd, this.ioas, 'EINVAL: the device cannot join this IO address space (an existing mapping is in its reserved range?)');
      dev = new VfioPciDevice(bdf, fd);
      this.devIds.push(devId);
    } catch (e) {
      n.close(fd); // closing the cdev unbinds it from the iommufd
      throw e;
    }
    this.devices.push(dev);
    // the new device's reserved regions shrink the usable ranges: rebuild while nothing is mapped
    if (this.mappings === 0) this.allocator = undefined;
    return dev;
  }

  mapDma(mapping: number, size: number, iova: number): void {
    this.checkOpen();
    if (iova % this.iovaAlignment)
      throw new DmaPoolError('EINVAL', `IOVA ${hex(iova)} is not aligned to the IOAS alignment ${hex(this.iovaAlignment)}`);
    native().iommufdMapDma(this.fd, this.ioas, mapping, 0, size, iova,
      'ENOMEM: RLIMIT_MEMLOCK too low (iommufd charges pinned pages to the user: ulimit -l, or CAP_IPC_LOCK); ' +
      'EEXIST/ENOSPC: IOVA in use or outside the usable ranges');
    this.mappings++;
  }

  unmapDma(iova: number, size: number): void {
    this.checkOpen();
    const done = native().iommufdUnmapDma(this.fd, this.ioas, iova, size);
    if (done !== size)
      throw new DmaPoolError('EIO', `IOMMU_IOAS_UNMAP of ${hex(iova)}+${hex(size)} unmapped ${done} bytes`);
    this.mappings--;
  }

  /** How pinned pages are charged (IOMMU_OPTION_RLIMIT_MODE of this iommufd). */
  accounting(): (typeof IOMMUFD_ACCOUNTING)[number] {
    const v = native().iommufdGetOption(this.fd, 0, 0);
    return IOMMUFD_ACCOUNTING[v] ?? 'user';
  }

  describe(): string {
    return `iommufd: /dev/iommu IOAS ${this.ioas}, VFIO cdev ${this.devices.map((d) => d.bdf).join(', ')}`;
  }

  private checkOpen(): void {
    if (this.closed) throw new DmaPoolError('EBADF', 'iommufd context is closed');
  }

  /** Closes the devices (unbinding them), then the iommufd (destroying the IOAS). Twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.devices) d.close();
    native().close(this.fd);
  }
}
