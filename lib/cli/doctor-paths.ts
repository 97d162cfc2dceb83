/**
 * `dmapool doctor` checks for the modern kernel paths (kept apart from lib/doctor.ts so the two
 * evolve independently): which VFIO path `vfio:` takes (iommufd or the type1 container, by the
 * one rule of lib/vfio/iommu.ts) with its nodes and how the kernel accounts pinned memory, and
 * udmabuf's module limits (lib/providers/udmabuf-limits.ts) and whether it takes huge-page
 * memfds.
 */
import type { Check, DoctorProvider } from './doctor';
import { native } from '../native';
import { hasIpcLock } from '../providers/memlock';
import { checkUdmabufSize, UDMABUF_PARAMS, udmabufLimits, udmabufRefusal } from '../providers/udmabuf-limits';
import { HOST, SysRoot } from '../sysfs';
import { IOMMUFD_ACCOUNTING } from '../vfio/iommufd';
import { IOMMU_ENV, IommuBackend, selectIommu, vfioCdevName } from '../vfio/iommu';

/** Checks the iommufd path needs, replacing the type1-only ones (group node, dma_entry_limit). */
export const REQUIRED_IOMMUFD = ['node', 'iommu', 'device', 'driver', 'group', 'vfio-path', 'iommufd', 'vfio-cdev', 'memlock'];

/** IOMMU_OPTION_RLIMIT_MODE of a fresh iommufd, when /dev/iommu can be opened here. */
function iommufdAccounting(sys: SysRoot): string | undefined {
  if (sys !== HOST && sys.root !== '/') return undefined; // fixture trees have no real /dev/iommu
  const n = native();
  let fd = -1;
  try {
    fd = n.open('/dev/iommu', n.constants.O_RDWR);
    return IOMMUFD_ACCOUNTING[n.iommufdGetOption(fd, 0, 0)];
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) n.close(fd);
  }
}

/** The VFIO path for `bdf` and its checks (vfio provider only; `skip` rows otherwise). */
export function vfioPathChecks(bdf: string | undefined, provider: DoctorProvider, sys: SysRoot = HOST): { checks: Check[]; backend?: IommuBackend } {
  const checks: Check[] = [];
  const vfio = provider === 'vfio';
  let backend: IommuBackend | undefined;
  if (bdf) {
    try {
      const s = selectIommu([bdf], undefined, sys);
      backend = s.backend;
      checks.push({ id: 'vfio-path', status: 'ok', title: `VFIO path: ${s.reason}` });
    } catch (e) {
      checks.push({ id: 'vfio-path', status: vfio ? 'fail' : 'skip', title: `VFIO path: ${(e as Error).message}`,
        fix: `${(e as { hint?: string }).hint ?? ''}; or unset ${IOMMU_ENV}`.replace(/^; /, '') });
    }
  }
  const onFd = backend === 'iommufd';
  const need = (ok: boolean) => (ok ? 'ok' : vfio && onFd ? 'fail' : 'skip') as Check['status'];
  // /dev/iommu
  const iommu = sys.exists('/dev/iommu');
  const iommuAccess = iommu && sys.accessible('/dev/iommu');
  checks.push({ id: 'iommufd', status: need(iommuAccess),
    title: iommu ? `/dev/iommu ${iommuAccess ? 'readable and writable' : 'not accessible to this user'}` : '/dev/iommu missing (iommufd: Linux >= 6.6, CONFIG_IOMMUFD)',
    ...(iommuAccess ? {} : { fix: iommu ? 'chown/chmod /dev/iommu (udev: KERNEL=="iommu", OWNER="<user>") or run as root'
      : 'modprobe iommufd (CONFIG_IOMMUFD); the type1 container works without it' }) });
  // the device's cdev
  if (bdf) {
    const cdev = vfioCdevName(bdf, sys);
    const node = cdev ? `/dev/vfio/devices/${cdev}` : undefined;
    const exists = node !== undefined && sys.exists(node);
    const access = exists && sys.accessible(node!);
    checks.push({ id: 'vfio-cdev', status: need(access),
      title: !cdev ? `no VFIO cdev for ${bdf} (CONFIG_VFIO_DEVICE_CDEV, device bound to vfio-pci)`
        : `${node} ${!exists ? 'missing (udev/devtmpfs)' : access ? 'readable and writable' : 'not accessible to this user'}`,
      ...(access ? {} : { fix: !cdev ? `dmapool bind ${bdf} (vfio-pci), on a kernel with CONFIG_VFIO_DEVICE_CDEV=y`
        : `chown ${process.env.USER ?? '$USER'} ${node}  (udev: SUBSYSTEM=="vfio-dev", OWNER="<user>")` }) });
  }
  // pinned-memory accounting
  if (vfio && backend) {
    const cap = hasIpcLock(sys);
    const mode = onFd ? iommufdAccounting(sys) : undefined;
    checks.push({ id: 'pin-accounting', status: 'ok',
      title: cap ? 'pinned DMA memory is not charged to RLIMIT_MEMLOCK (CAP_IPC_LOCK)'
        : onFd ? `iommufd charges pinned pages to ${mode === 'process' ? "this process's locked_vm" : "the user's locked_vm (all of this user's processes together)"} against RLIMIT_MEMLOCK` +
          (mode ? ` (IOMMU_OPTION_RLIMIT_MODE: ${mode})` : ' (iommufd default: per user)')
        : "type1 charges pinned pages to this process's locked_vm against RLIMIT_MEMLOCK" });
  }
  return { checks, ...(backend ? { backend } : {}) };
}

/** udmabuf's limits against the slab size, and (where it can be tried) whether it takes huge-page memfds. */
export function udmabufChecks(slab: number, provider: DoctorProvider, sys: SysRoot = HOST): Check[] {
  const checks: Check[] = [];
  const udm = sys.exists('/dev/udmabuf');
  const l = udmabufLimits(sys);
  const why = udmabufRefusal(slab, l);
  const src = l.source === 'sysfs' ? UDMABUF_PARAMS : 'kernel defaults; udmabuf not loaded';
  checks.push({ id: 'udmabuf-limits', status: why ? (provider === 'udmabuf' && udm ? 'fail' : 'skip') : udm ? 'ok' : 'skip',
    title: `udmabuf limits: size_limit_mb=${l.sizeLimitMb} (one dma-buf per ${slab >> 10} KiB slab ${why ? 'does NOT fit' : 'fits'}), ` +
      `list_limit=${l.listLimit} (dmapool uses 1 entry per dma-buf) — ${src}`,
    ...(why ? { fix: `echo ${Math.ceil(slab / 2 ** 20)} > ${UDMABUF_PARAMS}/size_limit_mb  (or a smaller slabSize)` } : {}) });
  // huge-page memfds: try one 2 MiB dma-buf when a huge page is free (Linux >= 6.11 accepts them)
  if (udm && sys.accessible('/dev/udmabuf') && (sys === HOST || sys.root === '/')) {
    const free = Number(sys.read('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages') ?? 0);
    if (free > 0 && !udmabufRefusal(2 << 20, l)) {
      const n = native();
      const c = n.constants;
      let dev = -1, memfd = -1;
      let title: string, status: Check['status'] = 'ok';
      try {
        checkUdmabufSize(2 << 20, l);
        dev = n.open('/dev/udmabuf', c.O_RDWR);
        memfd = n.memfdCreate('doctor', c.MFD_ALLOW_SEALING | c.MFD_HUGETLB);
        n.ftruncate(memfd, 2 << 20);
        n.addSeals(memfd, c.F_SEAL_SHRINK);
        n.close(n.udmabufCreate(dev, memfd, 0, 2 << 20));
        title = 'udmabuf takes huge-page memfds: 2 MiB DMA-contiguous units (allocations up to 2 MiB)';
      } catch (e) {
        status = 'warn';
        title = `udmabuf rejects huge-page memfds (${(e as { code?: string }).code ?? (e as Error).message}): 4 KiB units, allocations up to 4 KiB`;
      } finally {
        if (memfd >= 0) n.close(memfd);
        if (dev >= 0) n.close(dev);
      }
      checks.push({ id: 'udmabuf-huge', status, title,
        ...(status === 'ok' ? {} : { detail: 'Linux < 6.11 takes only shmem memfds', fix: 'a kernel >= 6.11 for udmabuf, or uio:/vfio: with huge pages' }) });
    } else {
      checks.push({ id: 'udmabuf-huge', status: 'skip', title: 'udmabuf huge-page memfds: not tried (no free 2 MiB huge page)' });
    }
  }
  return checks;
}
