/**
 * `dmapool doctor`: checks everything a userspace driver needs on this box, each with the exact
 * command or config line that fixes it. Reads sysfs/procfs through a SysRoot so tests can run
 * every failure mode against fixture trees.
 */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { kernelUsers } from './bind';
import { dmaTranslation, groupBlockers, groupMembers, isKernelOwned, isUioDriver, normalizeBdf, PciDeviceInfo, pciIdsNames, pciInfo } from '../pci';
import { hasIpcLock, memlockFix } from '../providers/memlock';
import { hugepagesFix, translate } from '../providers/pagemap';
import { HOST, SysRoot } from '../sysfs';
import { REQUIRED_IOMMUFD, udmabufChecks, vfioPathChecks } from './doctor-paths';

export type CheckStatus = 'ok' | 'fail' | 'skip' | 'warn';

export interface Check {
  id: string;
  status: CheckStatus;
  title: string;
  detail?: string;
  /** The command or config line that fixes a failure. */
  fix?: string;
}

export type DoctorProvider = 'vfio' | 'uio' | 'udmabuf';

export interface DoctorOptions {
  bdf?: string;
  provider?: DoctorProvider;
  /** Pool memory the driver will pin, in bytes (RLIMIT_MEMLOCK and dma_entry_limit checks). */
  memory?: number;
  slabSize?: number;
  sys?: SysRoot;
  /** Overrides for tests: Node version, the memlock limit, uid. */
  nodeVersion?: string;
  memlock?: { soft: number; hard: number };
}

export interface DoctorReport {
  provider: DoctorProvider;
  bdf?: string;
  ok: boolean;
  checks: Check[];
}

/** Which checks must pass for each provider to work. */
const REQUIRED: Record<DoctorProvider, string[]> = {
  vfio: ['node', 'iommu', 'vfio-modules', 'device', 'driver', 'group', 'vfio-path', 'vfio-dev-access', 'memlock', 'dma-entry-limit'],
  uio: ['node', 'device', 'driver', 'untranslated', 'pagemap', 'memlock'],
  udmabuf: ['node', 'udmabuf', 'pagemap', 'memlock'],
};

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new DmaPoolError('EINVAL', `bad size '${s}' (e.g. 64M, 1G, 4096)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

/** `dmapool bind` to vfio-pci, with `--force` when a kernel driver has the function now (bind refuses it without). */
function bindFix(info: PciDeviceInfo, sys: SysRoot): string {
  return `dmapool bind ${info.bdf}${isKernelOwned(info, sys) ? ' --force' : ''}`;
}

/** A fix, with what `--force` means appended once when it uses it. */
function forced(fix: string): string {
  return / --force\b/.test(fix) ? `${fix}  (--force: once nothing uses it)` : fix;
}

function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  for (const [u, v] of [['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= v && n % v === 0) return `${n / v}${u}`;
  return `${n}`;
}

export function doctor(o: DoctorOptions = {}): DoctorReport {
  const sys = o.sys ?? HOST;
  const provider: DoctorProvider = o.provider ?? (o.bdf ? 'vfio' : 'udmabuf');
  if (!Object.hasOwn(REQUIRED, provider))
    throw new DmaPoolError('EINVAL', `doctor: provider must be one of ${Object.keys(REQUIRED).join(', ')}, got '${provider}'`);
  const memory = o.memory ?? 64 * 2 ** 20;
  const slab = o.slabSize ?? 2 * 2 ** 20;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const bdf = o.bdf ? normalizeBdf(o.bdf) : undefined;

  // Node and the addon
  const ver = o.nodeVersion ?? process.versions.node;
  const [maj, min] = ver.split('.').map(Number);
  const nodeOk = maj > 20 || (maj === 20 && min >= 19);
  let ext = 'external ArrayBuffers work';
  let extOk = true;
  try {
    const m = native().mapAnonymous(native().pageSize, native().pageSize, {});
    const v = new Uint8Array(m.buffer);
    v[0] = 1;
    native().unmap(m.id);
    if (v.length !== 0) { extOk = false; ext = 'detaching an external ArrayBuffer left a live view'; }
  } catch (e) {
    extOk = false;
    ext = `native addon unusable: ${(e as Error).message}`;
  }
  add({ id: 'node', status: nodeOk && extOk ? 'ok' : 'fail', title: `Node ${ver}, ${ext}`,
    ...(nodeOk ? {} : { fix: 'install Node ≥ 20.19 (mocha 12 and this package need it)' }),
    ...(extOk ? {} : { fix: 'rebuild the addon: npm rebuild dmapool (Electron/sandboxed V8 forbid external buffers)' }) });

  // IOMMU
  const groups = sys.list('/sys/kernel/iommu_groups');
  const cmdline = sys.read('/proc/cmdline') ?? '';
  const iommuArgs = cmdline.split(/\s+/).filter((a) => /^(intel_iommu|amd_iommu|iommu)=/.test(a));
  add(groups.length
    ? { id: 'iommu', status: 'ok', title: `IOMMU enabled (${groups.length} groups${iommuArgs.length ? `; ${iommuArgs.join(' ')}` : ''})` }
    : { id: 'iommu', status: provider === 'vfio' ? 'fail' : 'skip', title: 'IOMMU enabled: no IOMMU groups',
        detail: iommuArgs.length ? `kernel command line has ${iommuArgs.join(' ')} but no groups: VT-d/AMD-Vi is off in the firmware` : 'the kernel command line has no intel_iommu=on / amd_iommu=on',
        fix: 'enable VT-d / AMD-Vi in the firmware, add "intel_iommu=on iommu=pt" (AMD: "amd_iommu=on iommu=pt") to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot' });

  // VFIO modules
  const vfioLoaded = sys.exists('/sys/bus/pci/drivers/vfio-pci') && sys.exists('/dev/vfio/vfio');
  add({ id: 'vfio-modules', status: vfioLoaded ? 'ok' : provider === 'vfio' ? 'fail' : 'skip',
    title: vfioLoaded ? 'vfio-pci loaded, /dev/vfio/vfio present' : 'vfio-pci not loaded',
    ...(vfioLoaded ? {} : { fix: 'modprobe vfio-pci  (persist: echo vfio-pci > /etc/modules-load.d/vfio.conf)' }) });

  // The device, its driver and its group
  let group: number | undefined;
  if (bdf) {
    let info;
    try {
      info = pciInfo(bdf, sys);
    } catch {
      add({ id: 'device', status: 'fail', title: `device ${bdf} not found`, fix: 'dmapool devices  (lists PCI addresses)' });
    }
    if (info) {
      const name = displayName(pciIdsNames(info.vendor, info.device, sys), info.device);
      add({ id: 'device', status: 'ok', title: `device ${bdf} [${info.vendor}:${info.device}] class ${info.classCode.toString(16).padStart(6, '0')}` +
        (name ? ` (${name})` : '') });
      const want = provider === 'vfio' ? 'vfio-pci' : 'uio_pci_generic';
      const okDrv = provider === 'vfio' ? info.driver === 'vfio-pci' : isUioDriver(info, sys);
      const kernel = isKernelOwned(info, sys);
      const users = kernel ? kernelUsers(bdf, sys) : [];
      add({ id: 'driver', status: okDrv ? 'ok' : 'fail', title: `driver: ${info.driver ?? 'none'}`,
        ...(okDrv ? {} : {
          ...(kernel ? { detail: `the kernel owns it${users.length ? `: in use by ${users.join(', ')}` : ''}; bind needs --force` } : {}),
          fix: forced(`dmapool bind ${bdf} --driver ${want}${kernel ? ' --force' : ''}`),
        }) });
      group = info.iommuGroup;
      if (provider === 'vfio') {
        if (group === undefined) {
          add({ id: 'group', status: 'fail', title: 'no IOMMU group', fix: 'enable the IOMMU (see above)' });
        } else {
          const members = groupMembers(group, sys);
          const bad = groupBlockers(group, sys, bdf);
          add({ id: 'group', status: bad.length ? 'fail' : 'ok',
            title: `IOMMU group ${group}: ${members.map((m) => `${m.bdf} (${m.driver ?? 'no driver'})`).join(', ')}`,
            ...(bad.length ? { detail: 'every device of a group must be bound to vfio-pci or unbound',
              fix: forced(bad.map((m) => bindFix(m, sys)).join(' && ')) } : {}) });
          const node = `/dev/vfio/${group}`;
          const exists = sys.exists(node);
          const access = exists && sys.accessible(node);
          add({ id: 'vfio-dev-access', status: access ? 'ok' : 'fail',
            title: exists ? `${node} ${access ? 'readable and writable' : 'not accessible to this user'}` : `${node} missing`,
            ...(access ? {} : { fix: exists ? `chown ${process.env.USER ?? '$USER'} ${node}  (persist with a udev rule: SUBSYSTEM=="vfio", OWNER="<user>")` : forced(bindFix(info, sys)) }) });
        }
      } else {
        const type = dmaTranslation(info, sys);
        const ok = !type;
        add({ id: 'untranslated', status: ok ? 'ok' : 'fail',
          title: ok ? 'DMA not translated by an IOMMU (physical addresses are what the device sees)' : `IOMMU translates this device's DMA (${type})`,
          ...(ok ? {} : { fix: forced(`use vfio:${bdf} (${bindFix(info, sys)}), or boot with iommu=pt`) }) });
      }
    }
  } else if (provider !== 'udmabuf') {
    add({ id: 'device', status: 'fail', title: 'no device given', fix: 'dmapool doctor <BDF>  (see dmapool devices)' });
  }

  // VFIO path (iommufd or type1) and its nodes
  const path = vfioPathChecks(bdf, provider, sys);
  checks.push(...path.checks);

  // RLIMIT_MEMLOCK
  const capLock = hasIpcLock(sys);
  const lim = o.memlock ?? native().getrlimitMemlock();
  const memOk = capLock || lim.soft >= memory;
  add({ id: 'memlock', status: memOk ? 'ok' : 'fail',
    title: capLock ? `RLIMIT_MEMLOCK does not apply (CAP_IPC_LOCK)` : `RLIMIT_MEMLOCK ${fmtBytes(lim.soft)} ${memOk ? '≥' : '<'} ${fmtBytes(memory)} needed`,
    ...(memOk ? {} : { fix: memlockFix(memory) }) });

  // dma_entry_limit
  const limitStr = sys.read('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit');
  const need = Math.ceil(memory / slab);
  if (limitStr === undefined) {
    add({ id: 'dma-entry-limit', status: vfioLoaded ? 'warn' : 'skip', title: 'dma_entry_limit: vfio_iommu_type1 not loaded' });
  } else {
    const limit = Number(limitStr);
    add({ id: 'dma-entry-limit', status: limit >= need ? 'ok' : path.backend === 'iommufd' ? 'skip' : 'fail',
      title: `dma_entry_limit ${limit} ${limit >= need ? '≥' : '<'} ${need} mappings (${fmtBytes(memory)} in ${fmtBytes(slab)} slabs)`,
      ...(limit >= need ? {} : { fix: `echo ${need} > /sys/module/vfio_iommu_type1/parameters/dma_entry_limit  (or a larger slabSize)` }) });
  }

  // huge pages
  for (const [dir, label] of [['hugepages-2048kB', '2 MiB'], ['hugepages-1048576kB', '1 GiB']] as const) {
    const free = sys.read(`/sys/kernel/mm/hugepages/${dir}/free_hugepages`);
    if (free === undefined) { add({ id: `hugepages-${label}`, status: 'skip', title: `${label} huge pages not supported` }); continue; }
    const n = Number(free);
    add({ id: `hugepages-${label}`, status: n > 0 ? 'ok' : 'warn', title: `${label} huge pages free: ${n}`,
      ...(n > 0 ? {} : { detail: 'optional for vfio; uio/udmabuf need them for allocations above 4 KiB',
        fix: label === '2 MiB' ? hugepagesFix(memory) : 'add hugepagesz=1G hugepages=N to the kernel command line' }) });
  }

  // udmabuf
  const udm = sys.exists('/dev/udmabuf');
  const udmAccess = udm && sys.accessible('/dev/udmabuf');
  add({ id: 'udmabuf', status: udmAccess ? 'ok' : provider === 'udmabuf' ? 'fail' : 'skip',
    title: udm ? `/dev/udmabuf ${udmAccess ? 'accessible' : 'not accessible to this user'}` : '/dev/udmabuf missing',
    ...(udmAccess ? {} : { fix: udm ? 'chmod/chown /dev/udmabuf or run as root' : 'modprobe udmabuf  (needs CONFIG_UDMABUF; Debian 12 stock kernels lack it)' }) });

  checks.push(...udmabufChecks(slab, provider, sys));

  // pagemap PFNs
  add(pagemapCheck(sys, provider));

  // u-dma-buf
  const udb = sys.list('/sys/class/u-dma-buf');
  add({ id: 'u-dma-buf', status: udb.length ? 'ok' : 'skip', title: udb.length ? `u-dma-buf devices: ${udb.join(', ')}` : 'no u-dma-buf devices (optional)' });

  const required = provider === 'vfio' && path.backend === 'iommufd' ? REQUIRED_IOMMUFD : REQUIRED[provider];
  const ok = required.every((id) => { const c = checks.find((x) => x.id === id); return c !== undefined && c.status === 'ok'; });
  return { provider, ...(bdf ? { bdf } : {}), ok, checks };
}

function pagemapCheck(sys: SysRoot, provider: DoctorProvider): Check {
  const n = native();
  let m;
  try {
    m = n.mapAnonymous(n.pageSize, n.pageSize, { populate: true, lock: 1 });
    const phys = translate(m.address, n.pageSize, n.pageSize, sys);
    return { id: 'pagemap', status: 'ok', title: `pagemap gives physical addresses (e.g. 0x${phys[0].toString(16)})` };
  } catch (e) {
    const relevant = provider !== 'vfio';
    return { id: 'pagemap', status: relevant ? 'fail' : 'skip', title: `pagemap: ${(e as Error).message}`,
      fix: (e as DmaPoolError).hint ?? 'run as root (reading PFNs needs CAP_SYS_ADMIN)' };
  } finally {
    if (m) n.unmap(m.id);
  }
}

export const MARK: Readonly<Record<CheckStatus, string>> = { ok: '✓', fail: '✗', skip: '–', warn: '!' };

/** What each status symbol means: the last line of doctor's text output and of `doctor --help`. */
export const DOCTOR_LEGEND = `${MARK.ok} works   ${MARK.fail} fails: fix it (exit 1 when the provider needs it)   ` +
  `${MARK.warn} works, but the fix helps   ${MARK.skip} not needed by this provider, or optional (fix shown for other uses)`;

export function formatDoctor(r: DoctorReport): string {
  const lines = [`dmapool doctor: provider ${r.provider}${r.bdf ? ` for ${r.bdf}` : ''}`];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]} ${c.title}`);
    if (c.detail && c.status !== 'ok') lines.push(`    ${c.detail}`);
    if (c.fix) lines.push(`    fix: ${c.fix}`);
  }
  lines.push(r.ok ? `${r.provider} can work here.` : `${r.provider} cannot work here yet: fix the ✗ lines above.`);
  lines.push(`legend: ${DOCTOR_LEGEND}`);
  return lines.join('\n');
}

/** PCI class names for `dmapool devices` (base class, and a few subclasses users look for). */
const CLASS: Record<number, string> = {
  0x00: 'unclassified', 0x01: 'storage', 0x02: 'network', 0x03: 'display', 0x04: 'multimedia', 0x05: 'memory',
  0x06: 'bridge', 0x07: 'communication', 0x08: 'system', 0x09: 'input', 0x0c: 'serial bus', 0x12: 'accelerator',
};
const SUBCLASS: Record<number, string> = {
  0x0100: 'SCSI storage', 0x0104: 'RAID', 0x0106: 'SATA', 0x0107: 'SAS', 0x0108: 'NVMe', 0x0200: 'Ethernet',
  0x0300: 'VGA', 0x0600: 'host bridge', 0x0601: 'ISA bridge', 0x0604: 'PCI bridge', 0x00ff: 'unclassified device',
};

export function className(classCode: number): string {
  return SUBCLASS[classCode >> 8] ?? CLASS[classCode >> 16] ?? `class ${(classCode >> 8).toString(16).padStart(4, '0')}`;
}

export interface DeviceRow {
  bdf: string; class: string; vendor: string; device: string; driver: string | null; iommuGroup: number | null;
  /** From the system's pci.ids, when it has one that knows the vendor (and the device). */
  vendorName?: string;
  deviceName?: string;
}

/** "Vendor Device" as lspci prints it (from pci.ids), or undefined when pci.ids does not know the vendor. */
function displayName(n: { vendorName?: string; deviceName?: string }, device: string): string | undefined {
  return n.vendorName === undefined ? undefined : `${n.vendorName} ${n.deviceName ?? `device ${device}`}`;
}

export function devices(sys: SysRoot = HOST): DeviceRow[] {
  return sys.list('/sys/bus/pci/devices').map((b) => {
    const i = pciInfo(b, sys);
    return { bdf: b, class: className(i.classCode), vendor: i.vendor, device: i.device, driver: i.driver ?? null, iommuGroup: i.iommuGroup ?? null,
      ...pciIdsNames(i.vendor, i.device, sys) };
  });
}

/** The table: class names always; a NAME column (vendor and device, from pci.ids) when pci.ids knows any. */
export function formatDevices(rows: DeviceRow[]): string {
  const names = rows.some((r) => r.vendorName !== undefined);
  const out = [`BDF           CLASS                 ID         DRIVER            IOMMU GROUP${names ? '  NAME' : ''}`];
  for (const r of rows) {
    const line = `${r.bdf}  ${r.class.padEnd(20)}  ${r.vendor}:${r.device}  ${(r.driver ?? '-').padEnd(16)}  ${r.iommuGroup ?? '-'}`;
    out.push(names ? `${line.padEnd(76)}  ${displayName(r, r.device) ?? '-'}` : line);
  }
  return out.join('\n');
}

