/**
 * Binding a PCI function to vfio-pci or uio_pci_generic the way driverctl does it:
 * driver_override + unbind + drivers_probe, remembering the previous driver so `unbind`
 * restores it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DmaPoolError } from './errors';
import { groupMembers, normalizeBdf, pciDevicePath, pciInfo, VFIO_SAFE_DRIVERS } from './pci';
import { HOST, SysRoot } from './sysfs';

export type BindDriver = 'vfio-pci' | 'uio_pci_generic';
export const BIND_DRIVERS: BindDriver[] = ['vfio-pci', 'uio_pci_generic'];

export interface BindOptions {
  sys?: SysRoot;
  /** Bind storage and network devices too (they may hold the root disk or the only link). */
  force?: boolean;
  /** Where previous drivers are remembered (default /run/dmapool under the root). */
  stateDir?: string;
  /** Load the driver's module when it is missing (default true; tests turn it off). */
  modprobe?: boolean;
}

export interface BindResult {
  bdf: string;
  previous?: string;
  driver?: string;
  changed: boolean;
  /** Other members of the IOMMU group that must follow (bound to a driver VFIO does not allow). */
  mustFollow: { bdf: string; driver: string }[];
}

const CLASS_NAMES: Record<number, string> = { 0x01: 'storage', 0x02: 'network' };

function stateFile(o: BindOptions, bdf: string): string {
  const sys = o.sys ?? HOST;
  return path.join(o.stateDir ?? sys.path('/run/dmapool'), `${bdf}.json`);
}

function writeSys(sys: SysRoot, p: string, v: string): void {
  try {
    sys.write(p, v);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DmaPoolError('EINVAL', `writing '${v.trim()}' to ${p} failed: ${err.code ?? ''} ${err.message}`,
      err.code === 'EACCES' || err.code === 'EPERM' ? 'run as root' : 'see dmesg for the driver\'s reason');
  }
}

export function bind(bdfIn: string, driver: BindDriver, o: BindOptions = {}): BindResult {
  const sys = o.sys ?? HOST;
  const bdf = normalizeBdf(bdfIn);
  if (!BIND_DRIVERS.includes(driver)) throw new DmaPoolError('EINVAL', `driver must be one of ${BIND_DRIVERS.join(', ')}`);
  const info = pciInfo(bdf, sys);
  const cls = CLASS_NAMES[info.classCode >> 16];
  if (cls && !o.force && info.driver !== driver)
    throw new DmaPoolError('EBUSY', `${bdf} is a ${cls} device${info.driver ? ` bound to ${info.driver}` : ''}: ` +
      `taking it from the kernel may cut off a disk or the network`, `make sure nothing uses it, then add --force`);
  const mustFollow = info.iommuGroup === undefined ? [] : groupMembers(info.iommuGroup, sys)
    .filter((m) => m.bdf !== bdf && m.driver !== undefined && !VFIO_SAFE_DRIVERS.has(m.driver) && m.driver !== driver)
    .map((m) => ({ bdf: m.bdf, driver: m.driver! }));
  if (info.driver === driver) return { bdf, previous: info.driver, driver, changed: false, mustFollow };
  if (!sys.exists(`/sys/bus/pci/drivers/${driver}`)) {
    if (o.modprobe !== false) {
      try { execFileSync('modprobe', [driver], { stdio: 'ignore' }); } catch { /* reported below */ }
    }
    if (!sys.exists(`/sys/bus/pci/drivers/${driver}`))
      throw new DmaPoolError('ENODEV', `driver ${driver} is not loaded`, `modprobe ${driver}`);
  }
  // remember the driver we take the device from (only the first time: re-binding keeps the original)
  const sf = stateFile(o, bdf);
  if (!fs.existsSync(sf)) {
    fs.mkdirSync(path.dirname(sf), { recursive: true });
    fs.writeFileSync(sf, JSON.stringify({ bdf, previous: info.driver ?? null }) + '\n');
  }
  const dev = pciDevicePath(bdf);
  writeSys(sys, `${dev}/driver_override`, driver);
  if (info.driver) writeSys(sys, `${dev}/driver/unbind`, bdf);
  writeSys(sys, '/sys/bus/pci/drivers_probe', bdf);
  const now = sys.linkName(`${dev}/driver`);
  if (now !== driver)
    throw new DmaPoolError('ENODEV', `${bdf} did not bind to ${driver} (now: ${now ?? 'no driver'})`,
      driver === 'vfio-pci' ? 'is the IOMMU on? (dmesg | grep -i -e DMAR -e IOMMU)' : 'see dmesg');
  return { bdf, ...(info.driver ? { previous: info.driver } : {}), driver: now, changed: true, mustFollow };
}

/** Restores the driver the device had before `bind` (or leaves it unbound if it had none). */
export function unbind(bdfIn: string, o: BindOptions = {}): BindResult {
  const sys = o.sys ?? HOST;
  const bdf = normalizeBdf(bdfIn);
  const info = pciInfo(bdf, sys);
  const sf = stateFile(o, bdf);
  let previous: string | null = null;
  let remembered = false;
  if (fs.existsSync(sf)) {
    previous = (JSON.parse(fs.readFileSync(sf, 'utf8')) as { previous: string | null }).previous;
    remembered = true;
  }
  const dev = pciDevicePath(bdf);
  writeSys(sys, `${dev}/driver_override`, '\n');
  if (info.driver) writeSys(sys, `${dev}/driver/unbind`, bdf);
  if (previous) {
    writeSys(sys, `${dev}/driver_override`, previous);
    writeSys(sys, '/sys/bus/pci/drivers_probe', bdf);
    writeSys(sys, `${dev}/driver_override`, '\n');
  } else if (!remembered) {
    writeSys(sys, '/sys/bus/pci/drivers_probe', bdf); // nothing remembered: let the kernel pick
  }
  const now = sys.linkName(`${dev}/driver`);
  if (previous && now !== previous)
    throw new DmaPoolError('ENODEV', `${bdf} did not return to ${previous} (now: ${now ?? 'no driver'})`, `modprobe ${previous}`);
  if (remembered) fs.rmSync(sf);
  return { bdf, ...(info.driver ? { previous: info.driver } : {}), ...(now ? { driver: now } : {}), changed: info.driver !== now, mustFollow: [] };
}
