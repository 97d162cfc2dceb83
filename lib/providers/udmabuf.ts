/**
 * `udmabuf` — mainline /dev/udmabuf: each slab is a sealed memfd (huge pages when free) turned
 * into a dma-buf with UDMABUF_CREATE. The dma-buf fd is kept for the slab's lifetime: it pins the
 * pages, so their physical addresses (from pagemap) stay valid. DMA_BUF_IOCTL_SYNC brackets CPU
 * access (a no-op on cache-coherent x86, required elsewhere).
 */
import { native } from '../native';
import { MappedSlab, Slab, SyncDirection, SyncPhase } from '../provider';
import { HOST, SysRoot } from '../sysfs';
import * as u from '../vfio/uapi';
import { HUGE_2M, translate } from './pagemap';
import { PhysicalOptions, PhysicalProvider } from './physical';
import { checkUdmabufSize, udmabufLimits, UdmabufLimits } from './udmabuf-limits';

interface UdmabufSlab { memfd: number; dmabuf: number }

type CreatedSlab = MappedSlab & { priv: UdmabufSlab };

export function udmabufAvailable(sys: SysRoot = HOST): boolean {
  return sys.exists('/dev/udmabuf');
}

export class UdmabufProvider extends PhysicalProvider {
  readonly kind = 'udmabuf' as const;
  readonly deviceVisible = true;
  readonly description: string;
  private readonly devFd: number;
  /** True when huge pages were free but this kernel's udmabuf rejected a huge-page memfd. */
  hugeUnsupported = false;

  /** Probes once whether UDMABUF_CREATE takes a huge-page memfd. */
  private hugeMemfdWorks(): boolean {
    try {
      const s = this.createSlab(HUGE_2M, true);
      this.destroySlab(s.mapping, s.priv);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'EINVAL') return false;
      throw e;
    }
  }

  /** Slabs whose DMA_BUF_IOCTL_SYNC worked (dma-bufs without begin/end_cpu_access reject it). */
  syncSupported = true;

  /** udmabuf's module limits, read when the provider opened: no slab ever exceeds them. */
  readonly limits: UdmabufLimits;

  /**
   * Fits the options to udmabuf's size limit before the slab size is fixed: an explicit slabSize
   * above it is EINVAL; a limit below 2 MiB rules out huge pages and caps the 4 KiB-page slab.
   */
  private static fit(opts: PhysicalOptions): PhysicalOptions {
    const limits = udmabufLimits(opts.sys ?? HOST);
    if (opts.slabSize !== undefined) checkUdmabufSize(opts.slabSize, limits);
    if (limits.maxBytes >= HUGE_2M) return opts;
    if (opts.hugepages === true) checkUdmabufSize(HUGE_2M, limits);
    checkUdmabufSize(4096, limits);
    const cap = 2 ** Math.floor(Math.log2(limits.maxBytes));
    return { ...opts, hugepages: false, slabSize: Math.min(opts.slabSize ?? cap, cap) };
  }

  constructor(opts: PhysicalOptions = {}) {
    super(UdmabufProvider.fit(opts));
    const sys = this.sys;
    this.limits = udmabufLimits(sys);
    const n = native();
    this.devFd = n.open(sys.path('/dev/udmabuf'), n.constants.O_RDWR,
      'needs CONFIG_UDMABUF (modprobe udmabuf) and access to /dev/udmabuf (root, or a udev rule)');
    if (this.huge && opts.hugepages === undefined && !this.hugeMemfdWorks()) {
      // udmabuf accepts huge-page memfds only on newer kernels (Linux 6.1 wants shmem): use 4 KiB pages
      this.huge = false;
      this.hugeUnsupported = true;
    }
    this.description = `udmabuf: memfd-backed dma-bufs, physical addresses via pagemap, ` +
      (this.huge ? '2 MiB huge pages (DMA-contiguous 2 MiB units)' : '4 KiB pages (allocations up to 4 KiB)') +
      (this.hugeUnsupported ? ' — this kernel\'s udmabuf rejects huge-page memfds' : '') +
      `; ${this.slabSize >> 10} KiB per dma-buf (size_limit_mb=${this.limits.sizeLimitMb}, list_limit=${this.limits.listLimit})`;
  }

  protected override contiguityHint(): string {
    return this.hugeUnsupported
      ? 'this kernel\'s udmabuf takes only 4 KiB shmem pages: use vfio: or uio: with huge pages for larger allocations'
      : super.contiguityHint();
  }

  protected mapSlab(size: number, _align: number): MappedSlab {
    return this.createSlab(size, this.huge);
  }

  private createSlab(size: number, huge: boolean): CreatedSlab {
    checkUdmabufSize(size, this.limits ?? udmabufLimits(this.sys)); // (the probe runs before limits is set)
    const n = native();
    const c = n.constants;
    const memfd = n.memfdCreate('dmapool', c.MFD_CLOEXEC | c.MFD_ALLOW_SEALING | (huge ? c.MFD_HUGETLB : 0));
    let dmabuf = -1;
    let mapping = 0;
    try {
      n.ftruncate(memfd, size);
      n.addSeals(memfd, c.F_SEAL_SHRINK);
      dmabuf = n.udmabufCreate(this.devFd, memfd, 0, size,
        'the memfd must be sealed against shrinking and page-aligned; huge-page memfds need Linux ≥ 5.16');
      const m = n.mmapFd(memfd, size, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED | c.MAP_POPULATE, 'memfd');
      mapping = m.id;
      const unit = huge ? HUGE_2M : this.pageSize;
      const unitDma = translate(m.address, size, unit, this.sys);
      return { mapping, buffer: m.buffer!, dma: unitDma[0], unit, unitDma, priv: { memfd, dmabuf } };
    } catch (e) {
      if (mapping) n.unmap(mapping);
      if (dmabuf >= 0) n.close(dmabuf);
      n.close(memfd);
      throw e;
    }
  }

  protected unmapSlab(slab: Slab): void {
    this.destroySlab(slab.mapping, slab.priv as UdmabufSlab);
  }

  private destroySlab(mapping: number, p: UdmabufSlab): void {
    const n = native();
    n.unmap(mapping);
    n.close(p.dmabuf);
    n.close(p.memfd);
  }

  /**
   * Brackets CPU access to DMA memory: `begin` before the CPU reads what a device wrote (or writes
   * what it will read), `end` after. Applies to every slab.
   */
  override sync(phase: SyncPhase, dir: SyncDirection = 'rw'): void {
    if (!this.syncSupported) return;
    const flags = (phase === 'end' ? u.DMA_BUF_SYNC_END : u.DMA_BUF_SYNC_START) |
      (dir === 'read' ? u.DMA_BUF_SYNC_READ : dir === 'write' ? u.DMA_BUF_SYNC_WRITE : u.DMA_BUF_SYNC_RW);
    const arg = new Uint8Array(8);
    new DataView(arg.buffer).setBigUint64(0, BigInt(flags), true);
    for (const slab of this.liveSlabs()) {
      try {
        native().ioctl((slab.priv as UdmabufSlab).dmabuf, u.DMA_BUF_IOCTL_SYNC, arg, 'DMA_BUF_IOCTL_SYNC');
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOTTY' || (e as { code?: string }).code === 'EINVAL') {
          this.syncSupported = false;
          return;
        }
        throw e;
      }
    }
  }

  protected override closeProvider(): void {
    native().close(this.devFd);
  }
}
