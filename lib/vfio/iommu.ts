/**
 * The IOMMU behind `vfio:` — one interface, two kernel APIs (libvfn's src/iommu/ is the model:
 * a context owning an IO address space, with map/unmap and the usable IOVA ranges, and the
 * devices attached to it):
 *
 * - `type1`: the legacy VFIO container (/dev/vfio/vfio + /dev/vfio/<group>, VFIO_IOMMU_MAP_DMA);
 *   lib/vfio/type1.ts.
 * - `iommufd`: /dev/iommu with one IO address space (IOAS) and the devices' VFIO character
 *   devices (/dev/vfio/devices/vfioN) bound to it (Linux >= 6.6); lib/vfio/iommufd.ts.
 *
 * Either way every device of one context sees every mapping: one IOMMU mapping per slab serves
 * all of them. The choice is made once, here ({@link selectIommu}).
 */
import { DmaPoolError } from '../errors';
import { IovaAllocator } from '../iova';
import { pciDevicePath } from '../pci';
import { HOST, SysRoot } from '../sysfs';
import type { VfioPciDevice } from './vfio';

export type IommuBackend = 'type1' | 'iommufd';
/** `auto`: iommufd when /dev/iommu exists and every device has a VFIO cdev; type1 otherwise. */
export type IommuChoice = 'auto' | IommuBackend;
export const IOMMU_CHOICES: readonly IommuChoice[] = ['auto', 'iommufd', 'type1'];
/** Environment variable that forces the backend when no option does (auto | iommufd | type1). */
export const IOMMU_ENV = 'DMAPOOL_VFIO_IOMMU';

export interface IommuContext {
  readonly backend: IommuBackend;
  /** IOVAs handed out inside the IOMMU's usable ranges. */
  readonly iova: IovaAllocator;
  readonly devices: VfioPciDevice[];
  /** Live DMA mappings. */
  readonly mappings: number;
  /** Smallest IOVA alignment the kernel requires (bytes; at least a page). */
  readonly iovaAlignment: number;
  /** Opens a vfio-pci function and attaches it to this context. */
  openDevice(bdf: string): VfioPciDevice;
  /** Maps the first `size` bytes of native mapping `mapping` at `iova`, device read + write. */
  mapDma(mapping: number, size: number, iova: number): void;
  unmapDma(iova: number, size: number): void;
  /** One line: which kernel interface, which objects (for `provider.description`). */
  describe(): string;
  /** Closes the devices, then the context. Twice is harmless. */
  close(): void;
}

/** The VFIO cdev of a vfio-pci function (`vfioN` of /sys/bus/pci/devices/<bdf>/vfio-dev/), if any. */
export function vfioCdevName(bdf: string, sys: SysRoot = HOST): string | undefined {
  return sys.list(`${pciDevicePath(bdf)}/vfio-dev`).find((n) => /^vfio\d+$/.test(n));
}

export interface IommuSelection {
  backend: IommuBackend;
  /** Why (for descriptions, doctor and errors). */
  reason: string;
}

function parseChoice(v: unknown, from: string): IommuChoice {
  if (typeof v === 'string' && (IOMMU_CHOICES as readonly string[]).includes(v)) return v as IommuChoice;
  throw new DmaPoolError('EINVAL', `${from} must be one of ${IOMMU_CHOICES.join(', ')}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
}

/**
 * The one selection rule. The option wins over the environment variable; `auto` (the default)
 * takes iommufd when /dev/iommu exists and every device has a VFIO cdev, type1 otherwise. A
 * forced backend whose kernel interface is missing is ENODEV naming what is missing.
 */
export function selectIommu(bdfs: string[], option: IommuChoice | undefined, sys: SysRoot = HOST,
  env: NodeJS.ProcessEnv = process.env): IommuSelection {
  const fromEnv = env[IOMMU_ENV];
  const choice = option !== undefined ? parseChoice(option, 'option iommu')
    : fromEnv !== undefined && fromEnv !== '' ? parseChoice(fromEnv, IOMMU_ENV) : 'auto';
  const how = option !== undefined ? `iommu: '${choice}'` : fromEnv ? `${IOMMU_ENV}=${choice}` : 'auto';
  const iommuDev = sys.exists('/dev/iommu');
  const noCdev = bdfs.filter((b) => vfioCdevName(b, sys) === undefined);
  if (choice === 'type1') {
    if (!sys.exists('/dev/vfio/vfio'))
      throw new DmaPoolError('ENODEV', `${how}: /dev/vfio/vfio (the VFIO container) is missing`,
        'the kernel was built without CONFIG_VFIO_CONTAINER (or vfio is not loaded): use iommufd, or modprobe vfio-pci');
    return { backend: 'type1', reason: `${how}: VFIO type1 container` };
  }
  if (choice === 'iommufd') {
    if (!iommuDev)
      throw new DmaPoolError('ENODEV', `${how}: /dev/iommu is missing`,
        'needs Linux >= 6.6 with CONFIG_IOMMUFD (modprobe iommufd), or use type1');
    if (noCdev.length)
      throw new DmaPoolError('ENODEV', `${how}: no VFIO cdev for ${noCdev.join(', ')} (no vfio-dev/vfioN in sysfs)`,
        'needs CONFIG_VFIO_DEVICE_CDEV and the device bound to vfio-pci, or use type1');
    return { backend: 'iommufd', reason: `${how}: iommufd (/dev/iommu + VFIO cdev)` };
  }
  if (iommuDev && bdfs.length > 0 && noCdev.length === 0)
    return { backend: 'iommufd', reason: 'auto: /dev/iommu and the VFIO cdev exist → iommufd' };
  return {
    backend: 'type1',
    reason: !iommuDev ? 'auto: no /dev/iommu → VFIO type1 container'
      : `auto: /dev/iommu exists but ${noCdev.join(', ')} has no VFIO cdev → VFIO type1 container`,
  };
}
