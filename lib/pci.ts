/** PCI devices as sysfs describes them: identity, driver, IOMMU group and its members. */
import { DmaPoolError } from './errors';
import { HOST, SysRoot } from './sysfs';

const BDF_RE = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;

/** '00:03.0' → '0000:00:03.0'. Throws EINVAL for anything that is not a PCI address. */
export function normalizeBdf(bdf: string): string {
  const m = typeof bdf === 'string' ? BDF_RE.exec(bdf.trim()) : null;
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
export const VFIO_SAFE_DRIVERS: ReadonlySet<string> = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

/**
 * The group-viability rule, the one place it is written (the vfio provider, bind and doctor use
 * it): the members of IOMMU group `group` — other than `except` — that keep the group from being
 * opened through VFIO, i.e. are bound to a driver outside VFIO_SAFE_DRIVERS.
 */
export function groupBlockers(group: number, sys: SysRoot = HOST, except?: string): PciDeviceInfo[] {
  return groupMembers(group, sys).filter((m) => m.bdf !== except && m.driver !== undefined && !VFIO_SAFE_DRIVERS.has(m.driver));
}

/**
 * The identity-domain rule, written once (the uio/udmabuf providers and doctor use it): the IOMMU
 * domain type that translates this device's DMA ('DMA', 'DMA-FQ', …), or undefined when its DMA
 * reaches physical addresses untranslated (no IOMMU group, or an 'identity' domain: iommu=pt).
 */
export function dmaTranslation(info: PciDeviceInfo, sys: SysRoot = HOST): string | undefined {
  if (info.iommuGroup === undefined) return undefined;
  const type = sys.read(`/sys/kernel/iommu_groups/${info.iommuGroup}/type`);
  return type && type !== 'identity' ? type : undefined;
}

/** Drivers that hand a PCI function to userspace through UIO (a `uio/uioN` child in sysfs). */
export const UIO_DRIVERS: ReadonlySet<string> = new Set(['uio_pci_generic', 'igb_uio']);

/**
 * Drivers that give a PCI function to userspace: the ones dmapool binds, takes devices from and
 * opens. Every other driver is a kernel driver whose users (disks, mounts, links) depend on it.
 */
export const USERSPACE_DRIVERS: ReadonlySet<string> = new Set(['vfio-pci', ...UIO_DRIVERS]);

/** The UIO devices (uioN) registered for the function, whatever its driver is called. */
export function uioDevices(bdf: string, sys: SysRoot = HOST): string[] {
  return sys.list(`${pciDevicePath(bdf)}/uio`).filter((n) => /^uio\d+$/.test(n));
}

/** True when the function's driver is a UIO driver: by name, or because it registered a UIO device. */
export function isUioDriver(info: PciDeviceInfo, sys: SysRoot = HOST): boolean {
  return info.driver !== undefined && (UIO_DRIVERS.has(info.driver) || uioDevices(info.bdf, sys).length > 0);
}

/** True when the function is bound to a kernel driver, not to one that hands it to userspace. */
export function isKernelOwned(info: PciDeviceInfo, sys: SysRoot = HOST): boolean {
  return info.driver !== undefined && !USERSPACE_DRIVERS.has(info.driver) && !isUioDriver(info, sys);
}

/**
 * Checks that `uio:` may use the function: it must be bound to a UIO driver (uio_pci_generic,
 * igb_uio, or any driver that registered a uioN device). Returns the driver's name; throws ENODEV
 * naming the current driver otherwise, with the bind command that fixes it.
 */
export function checkUioDriver(bdfIn: string, sys: SysRoot = HOST): string {
  const bdf = normalizeBdf(bdfIn);
  const info = pciInfo(bdf, sys);
  if (isUioDriver(info, sys)) return info.driver!;
  const kernel = isKernelOwned(info, sys);
  throw new DmaPoolError('ENODEV',
    `${bdf} is ${info.driver ? `bound to ${info.driver}` : 'bound to no driver'}, not to a UIO driver (${[...UIO_DRIVERS].join(', ')})` +
      (kernel ? ': the kernel owns it' : ''),
    `dmapool bind ${bdf} --driver uio_pci_generic${kernel ? ' --force  (once nothing uses it)' : ''}`);
}

/** Where distributions keep the PCI ID database (Debian/Ubuntu, Fedora/Arch, others), in lookup order. */
export const PCI_IDS_PATHS: readonly string[] = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids', '/usr/share/pci.ids'];

type PciIds = Map<string, { name: string; devices: Map<string, string> }>;
/** Per SysRoot: the parsed vendors and devices, or null when the root has no pci.ids. */
const pciIdsCache = new Map<string, PciIds | null>();

/**
 * The vendor and device lines of the first pci.ids under `sys`, parsed on first use and kept.
 * Subsystem lines (two tabs) and the device-class section at the end ("C xx") are skipped.
 */
function pciIds(sys: SysRoot): PciIds | null {
  const cached = pciIdsCache.get(sys.root);
  if (cached !== undefined) return cached;
  let text: string | undefined;
  for (const p of PCI_IDS_PATHS) if ((text = sys.read(p)) !== undefined) break;
  let ids: PciIds | null = null;
  if (text !== undefined) {
    ids = new Map();
    let vendor: { name: string; devices: Map<string, string> } | undefined;
    for (const raw of text.split('\n')) {
      if (raw.startsWith('C ')) break; // the class section follows every vendor
      if (raw === '' || raw[0] === '#' || raw.startsWith('\t\t')) continue;
      const m = /^(\t?)([0-9a-f]{4})\s+(.*\S)/i.exec(raw);
      if (!m) { if (raw[0] !== '\t') vendor = undefined; continue; }
      if (m[1] === '') ids.set(m[2].toLowerCase(), vendor = { name: m[3], devices: new Map() });
      else vendor?.devices.set(m[2].toLowerCase(), m[3]);
    }
  }
  pciIdsCache.set(sys.root, ids);
  return ids;
}

/**
 * Vendor and device names from the system's pci.ids (the file lspci reads), looked up through
 * `sys` so fixture trees can provide one; `{}` when there is none or the ids are not in it.
 */
export function pciIdsNames(vendor: string, device: string, sys: SysRoot = HOST): { vendorName?: string; deviceName?: string } {
  const v = pciIds(sys)?.get(vendor.toLowerCase());
  if (!v) return {};
  const d = v.devices.get(device.toLowerCase());
  return { vendorName: v.name, ...(d !== undefined ? { deviceName: d } : {}) };
}
