/**
 * Binding a PCI function to vfio-pci or uio_pci_generic the way driverctl does it:
 * driver_override + unbind + drivers_probe, remembering the previous driver so `unbind`
 * restores it. A function the kernel owns (any driver that does not hand it to userspace) is
 * taken only with `force`, and the refusal names what it serves: disks, mounts, swap, links.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DmaPoolError, fromErrno } from '../errors';
import { groupBlockers, isKernelOwned, normalizeBdf, PciDeviceInfo, pciDevicePath, pciInfo } from '../pci';
import { HOST, SysRoot } from '../sysfs';

export type BindDriver = 'vfio-pci' | 'uio_pci_generic';
export const BIND_DRIVERS: BindDriver[] = ['vfio-pci', 'uio_pci_generic'];

export interface BindOptions {
  sys?: SysRoot;
  /** Take the function from a kernel driver (it may hold the root disk or the only link). */
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

/** A driver name as sysfs spells it: no slash, no newline, no leading dot or dash. */
const DRIVER_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;

function stateFile(o: BindOptions, bdf: string): string {
  const sys = o.sys ?? HOST;
  return path.join(o.stateDir ?? sys.path('/run/dmapool'), `${bdf}.json`);
}

/** The remembered driver (null: it had none), or undefined when nothing is remembered. */
function readState(sf: string): string | null | undefined {
  let text: string;
  try {
    text = fs.readFileSync(sf, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromErrno(e, `reading ${sf}`);
  }
  const fix = `delete ${sf} and run dmapool unbind again to let the kernel pick the driver`;
  let previous: unknown;
  try {
    previous = (JSON.parse(text) as { previous?: unknown } | null)?.previous;
  } catch (e) {
    throw new DmaPoolError('EINVAL', `${sf} is not valid JSON`, { hint: fix, path: sf, cause: e });
  }
  if (previous !== null && (typeof previous !== 'string' || !DRIVER_NAME_RE.test(previous)))
    throw new DmaPoolError('EINVAL', `${sf} remembers ${JSON.stringify(previous)}, which is not a driver name`, { hint: fix, path: sf });
  return previous;
}

function forget(sf: string): void {
  try {
    fs.rmSync(sf);
  } catch (e) {
    throw fromErrno(e, `removing ${sf}`, 'run as root');
  }
}

function writeSys(sys: SysRoot, p: string, v: string): void {
  try {
    sys.write(p, v);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fromErrno(e, `writing '${v.trim()}' to ${p}`,
      code === 'EACCES' || code === 'EPERM' ? 'run as root' : 'see dmesg for the driver\'s reason');
  }
}

/** True when PCI driver `name` is registered, after loading its module when allowed. */
function driverLoaded(sys: SysRoot, name: string, o: BindOptions): boolean {
  const p = `/sys/bus/pci/drivers/${name}`;
  if (!sys.exists(p) && o.modprobe !== false) {
    try { execFileSync('modprobe', ['--', name], { stdio: 'ignore' }); } catch { /* reported by the caller */ }
  }
  return sys.exists(p);
}

function realpath(sys: SysRoot, p: string): string | undefined {
  try {
    return fs.realpathSync(sys.path(p));
  } catch {
    return undefined;
  }
}

/** Entries of /sys/class/<cls> whose device sits below `devReal` in the device tree. */
function classBelow(sys: SysRoot, cls: string, devReal: string): string[] {
  return sys.list(`/sys/class/${cls}`).filter((n) => realpath(sys, `/sys/class/${cls}/${n}`)?.startsWith(devReal + '/'));
}

/**
 * What the kernel uses the function for: its block devices (disks, partitions, and the dm/md
 * devices stacked on them, from `holders/`) with their mounts and swap, and its network
 * interfaces that are up. Found through /sys/class, so every layout counts (virtio's
 * `virtio0/block/vda`, NVMe's `nvme/nvme0/nvme0n1`, SCSI's `host0/…/block/sda`, `net/eth0`).
 */
export function kernelUsers(bdf: string, sys: SysRoot = HOST): string[] {
  const devReal = realpath(sys, pciDevicePath(bdf));
  if (!devReal) return [];
  const block = classBelow(sys, 'block', devReal);
  for (let i = 0; i < block.length; i++)
    for (const h of sys.list(`/sys/class/block/${block[i]}/holders`)) if (!block.includes(h)) block.push(h);
  // mounts match by device number (whatever the source is called: /dev/root, by-uuid) or by node
  const byNumber = new Map<string, string>();
  const byNode = new Map<string, string>();
  for (const b of block) {
    const num = sys.read(`/sys/class/block/${b}/dev`);
    if (num) byNumber.set(num, b);
    byNode.set(`/dev/${b}`, b);
    const dm = sys.read(`/sys/class/block/${b}/dm/name`);
    if (dm) byNode.set(`/dev/mapper/${dm}`, b);
  }
  const uses = new Map<string, string[]>(block.map((b) => [b, []]));
  for (const line of (sys.read('/proc/self/mountinfo') ?? '').split('\n')) {
    // id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6) continue;
    const b = byNumber.get(f[2]) ?? byNode.get(f[sep + 2]);
    if (b) uses.get(b)!.push(`mounted on ${f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))}`);
  }
  for (const line of (sys.read('/proc/swaps') ?? '').split('\n').slice(1)) {
    const b = byNode.get(line.split(/\s+/)[0]);
    if (b) uses.get(b)!.push('swap');
  }
  const up = (n: string) => sys.read(`/sys/class/net/${n}/operstate`) === 'up' ||
    (parseInt(sys.read(`/sys/class/net/${n}/flags`) ?? '0', 16) & 1) === 1; // IFF_UP
  return [
    ...block.map((b) => (uses.get(b)!.length ? `${b} (${uses.get(b)!.join(', ')})` : b)),
    ...classBelow(sys, 'net', devReal).filter(up).map((n) => `${n} (up)`),
  ];
}

/** EBUSY for a function its kernel driver owns, naming what depends on it. */
function kernelOwnedError(info: PciDeviceInfo, sys: SysRoot, command: string): DmaPoolError {
  const users = kernelUsers(info.bdf, sys);
  return new DmaPoolError('EBUSY', `${info.bdf} is bound to the kernel driver ${info.driver}` +
    (users.length ? `, in use by ${users.join(', ')}` : ' (no disk or network interface of it found, but it may have other kernel users)'),
    `once nothing uses it, add --force: ${command} --force`);
}

export function bind(bdfIn: string, driver: BindDriver, o: BindOptions = {}): BindResult {
  const sys = o.sys ?? HOST;
  const bdf = normalizeBdf(bdfIn);
  if (!BIND_DRIVERS.includes(driver)) throw new DmaPoolError('EINVAL', `driver must be one of ${BIND_DRIVERS.join(', ')}`);
  const info = pciInfo(bdf, sys);
  const mustFollow = info.iommuGroup === undefined ? [] : groupBlockers(info.iommuGroup, sys, bdf)
    .filter((m) => m.driver !== driver)
    .map((m) => ({ bdf: m.bdf, driver: m.driver! }));
  if (info.driver === driver) return { bdf, previous: info.driver, driver, changed: false, mustFollow };
  if (isKernelOwned(info, sys) && !o.force)
    throw kernelOwnedError(info, sys, `dmapool bind ${bdf}${driver === 'vfio-pci' ? '' : ` --driver ${driver}`}`);
  if (!driverLoaded(sys, driver, o)) throw new DmaPoolError('ENODEV', `driver ${driver} is not loaded`, `modprobe ${driver}`);
  // remember the driver we take the device from (only the first time: re-binding keeps the original)
  const sf = stateFile(o, bdf);
  if (!fs.existsSync(sf)) {
    try {
      fs.mkdirSync(path.dirname(sf), { recursive: true });
      fs.writeFileSync(sf, JSON.stringify({ bdf, previous: info.driver ?? null }) + '\n');
    } catch (e) {
      throw fromErrno(e, `remembering the previous driver in ${sf}`, 'run as root');
    }
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

/**
 * Restores the driver the device had before `bind` (or lets the kernel pick one when nothing is
 * remembered). The remembered name is validated before anything is written. A function already
 * on a kernel driver is left alone unless `force`.
 */
export function unbind(bdfIn: string, o: BindOptions = {}): BindResult {
  const sys = o.sys ?? HOST;
  const bdf = normalizeBdf(bdfIn);
  const info = pciInfo(bdf, sys);
  const sf = stateFile(o, bdf);
  const remembered = readState(sf);
  const previous = remembered ?? null;
  if (previous && !driverLoaded(sys, previous, o))
    throw new DmaPoolError('EINVAL', `${sf} remembers driver '${previous}', which is not a PCI driver here`,
      { hint: `modprobe ${previous} if it is a module; else delete ${sf} to let the kernel pick`, path: sf });
  if (isKernelOwned(info, sys)) {
    if (info.driver === previous) { // already given back
      forget(sf);
      return { bdf, previous: info.driver, driver: info.driver, changed: false, mustFollow: [] };
    }
    if (!o.force) throw kernelOwnedError(info, sys, `dmapool unbind ${bdf}`);
  }
  const dev = pciDevicePath(bdf);
  writeSys(sys, `${dev}/driver_override`, '\n');
  if (info.driver) writeSys(sys, `${dev}/driver/unbind`, bdf);
  if (previous) {
    writeSys(sys, `${dev}/driver_override`, previous);
    writeSys(sys, '/sys/bus/pci/drivers_probe', bdf);
    writeSys(sys, `${dev}/driver_override`, '\n');
  } else if (remembered === undefined) {
    writeSys(sys, '/sys/bus/pci/drivers_probe', bdf); // nothing remembered: let the kernel pick
  }
  const now = sys.linkName(`${dev}/driver`);
  if (previous && now !== previous)
    throw new DmaPoolError('ENODEV', `${bdf} did not return to ${previous} (now: ${now ?? 'no driver'})`, `modprobe ${previous}`);
  if (remembered !== undefined) forget(sf);
  return { bdf, ...(info.driver ? { previous: info.driver } : {}), ...(now ? { driver: now } : {}), changed: info.driver !== now, mustFollow: [] };
}
