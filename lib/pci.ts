/** PCI devices as sysfs describes them: identity, driver, IOMMU group and its members. */
import { DmaPoolError } from './errors';
import { HOST, SysRoot } from './sysfs';

const BDF_RE = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;

/** '00:03.0' → '0000:00:03.0'. Throws EINVAL for anything that is not a PCI address. */
export function normalizeBdf(bdf: string): string {
  const m = BDF_RE.exec(bdf.trim());
  if (!m) throw new DmaPoolError('EINVAL', `'${bdf}' is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:85:00.0)`);
  return `${(m[1] ?? '0000').toLowerCase()}:${m[2].toLowerCase()}:${m[3].toLowerCase()}.${m[4]}`;
}

export interface PciDeviceInfo {
  bdf: string;
  vendor: string;
  device: string;
  /** 24-bit class code, e.g. 0x010700 (SAS). */
  classCode: number;
  driver?: string;
  iommuGroup?: number;
}

export function pciDevicePath(bdf: string): string {
  return `/sys/bus/pci/devices/${bdf}`;
}

export function pciInfo(bdf: string, sys: SysRoot = HOST): PciDeviceInfo {
  const p = pciDevicePath(bdf);
  if (!sys.exists(p)) throw new DmaPoolError('ENODEV', `no PCI device ${bdf}`, 'check the address with `dmapool devices` or lspci -D');
  const hex4 = (s?: string) => (s ?? '').replace(/^0x/, '');
  const group = sys.linkName(`${p}/iommu_group`);
  return {
    bdf,
    vendor: hex4(sys.read(`${p}/vendor`)),
    device: hex4(sys.read(`${p}/device`)),
    classCode: parseInt(sys.read(`${p}/class`) ?? '0', 16),
    ...(sys.linkName(`${p}/driver`) ? { driver: sys.linkName(`${p}/driver`) } : {}),
    ...(group !== undefined ? { iommuGroup: Number(group) } : {}),
  };
}

/** Every device of an IOMMU group. */
export function groupMembers(group: number, sys: SysRoot = HOST): PciDeviceInfo[] {
  return sys.list(`/sys/kernel/iommu_groups/${group}/devices`).map((b) => pciInfo(b, sys));
}

/**
 * Drivers VFIO tolerates on the other members of a group: vfio-pci itself, none, and the
 * kernel's allow-list of drivers that never do DMA on their own (pci-stub, pcieport).
 */
export const VFIO_SAFE_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

export function listPciDevices(sys: SysRoot = HOST): PciDeviceInfo[] {
  return sys.list('/sys/bus/pci/devices').map((b) => pciInfo(b, sys));
}
