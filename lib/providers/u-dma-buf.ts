/**
 * `u-dma-buf:<name>` — ikwzm's u-dma-buf module: one physically contiguous coherent buffer per
 * device node, allocated by the kernel at module load. Its physical address and size come from
 * /sys/class/u-dma-buf/<name>/; slabs are mmaps of /dev/<name> at offsets we carve (with the
 * IOVA allocator over [phys_addr, phys_addr + size)), so alignment holds in DMA addresses.
 */
import { DmaPoolError } from '../errors';
import { IovaAllocator } from '../iova';
import { prevPow2 } from '../pow2';
import { native } from '../native';
import { MappedSlab, Slab, SlabProvider, SlabProviderOptions, SyncDirection, SyncPhase } from '../provider';
import { HOST, SysRoot } from '../sysfs';

export interface UDmaBufOptions extends SlabProviderOptions {
  sys?: SysRoot;
}

export class UDmaBufProvider extends SlabProvider {
  readonly kind = 'u-dma-buf' as const;
  readonly deviceVisible = true;
  readonly description: string;
  readonly phys: number;
  readonly size: number;
  private readonly fd: number;
  private readonly arena: IovaAllocator;
  private readonly sys: SysRoot;
  private readonly cls: string;

  constructor(readonly name: string, opts: UDmaBufOptions = {}) {
    const sys = opts.sys ?? HOST;
    const cls = `/sys/class/u-dma-buf/${name}`;
    const phys = sys.read(`${cls}/phys_addr`);
    const size = sys.read(`${cls}/size`);
    if (phys === undefined || size === undefined)
      throw new DmaPoolError('ENODEV', `no u-dma-buf device ${name} (${cls} missing)`,
        `load the module: insmod u-dma-buf.ko udmabuf0=<bytes> (https://github.com/ikwzm/udmabuf)`);
    const bytes = parseInt(size, 0);
    const slabSize = Math.min(opts.slabSize ?? 2 << 20, prevPow2(bytes));
    super(native().pageSize, { slabSize });
    this.sys = sys;
    this.cls = cls;
    this.phys = parseInt(phys, 16);
    this.size = bytes;
    this.arena = new IovaAllocator([{ start: this.phys, end: this.phys + bytes - 1 }]);
    const n = native();
    this.fd = n.open(sys.path(`/dev/${name}`), n.constants.O_RDWR, `give this user access to /dev/${name} or run as root`);
    this.description = `u-dma-buf: /dev/${name}, ${bytes} bytes at physical ${phys}`;
  }

  protected mapSlab(size: number, align: number): MappedSlab {
    const dma = this.arena.alloc(size, Math.min(align, prevPow2(this.size)));
    const n = native();
    try {
      const m = n.mmapFd(this.fd, size, dma - this.phys, n.constants.PROT_READ | n.constants.PROT_WRITE,
        n.constants.MAP_SHARED, `/dev/${this.name}`);
      // the buffer lives for the module's lifetime: clear what a previous user left, as a slab
      // from the slab cache is cleared (non-temporal stores: the pool never reads its pages)
      if (!m.buffer) throw new DmaPoolError('EINVAL', `/dev/${this.name}: mapping is not writable`);
      n.zeroRange(m.id, 0, size);
      return { mapping: m.id, buffer: m.buffer, dma };
    } catch (e) {
      this.arena.release(dma);
      throw e;
    }
  }

  protected unmapSlab(slab: Slab): void {
    native().unmap(slab.mapping);
    this.arena.release(slab.dma);
  }

  /** u-dma-buf's manual cache sync: sync_for_cpu (begin) / sync_for_device (end) over the whole buffer. */
  override sync(phase: SyncPhase, dir: SyncDirection = 'rw'): void {
    const direction = dir === 'rw' ? 0 : dir === 'write' ? 1 : 2; // DMA_BIDIRECTIONAL, TO_DEVICE, FROM_DEVICE
    this.sys.write(`${this.cls}/sync_offset`, '0');
    this.sys.write(`${this.cls}/sync_size`, String(this.size));
    this.sys.write(`${this.cls}/sync_direction`, String(direction));
    this.sys.write(`${this.cls}/${phase === 'begin' ? 'sync_for_cpu' : 'sync_for_device'}`, '1');
  }

  protected override closeProvider(): void {
    native().close(this.fd);
  }
}
