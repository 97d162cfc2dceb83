/**
 * A device: a provider of coherent memory plus the DMA pools created on it (the userspace
 * counterpart of struct device's dma_pools list and its sysfs `pools` file).
 */
import { DmaPoolError } from './errors';
import { DmaPool, PoolOptions } from './pool';
import type { DeviceSpec } from './open';
import type { ProviderKind, SlabProvider, SyncDirection, SyncPhase } from './provider';
import { poolsReport } from './report';
import type { PciAccess } from './vfio/pci-access';

/**
 * Opened by openDevice(). Release it with close() — or declare it with `using`, which closes it
 * when the block exits (see `[Symbol.dispose]()`).
 */
export class Device {
  /** Pools of this device, newest first (as the kernel lists them). */
  private readonly poolList: DmaPool[] = [];
  private closed = false;

  /**
   * Use openDevice(); this wraps a provider the caller opened (and hands it over: close() closes it).
   */
  constructor(
    /** The spec it was opened with, e.g. 'sim' or 'vfio:0000:85:00.0' ('auto' resolves to the spec it chose). */
    readonly spec: DeviceSpec,
    /** The memory provider behind the device (its `description` says what backs the memory). */
    readonly provider: SlabProvider,
    /** Why this provider was chosen (for 'auto'); empty otherwise. */
    readonly reason = '',
  ) {}

  /** The provider kind: 'sim', 'vfio', 'uio', 'udmabuf' or 'u-dma-buf'. */
  get kind(): ProviderKind {
    return this.provider.kind;
  }

  /** True when a device really sees the pools' DMA addresses (never for 'sim'). */
  get deviceVisible(): boolean {
    return this.provider.deviceVisible;
  }

  /**
   * dma_pool_create(). Throws DmaPoolError('EINVAL') naming the bad argument (name not a string,
   * size or a create rule, options not undefined or a plain object, an unknown option, an option
   * of the wrong type); on any error nothing is created or listed.
   */
  createPool(name: string, size: number, opts?: PoolOptions): DmaPool {
    if (this.closed) throw new DmaPoolError('EBADF', `device ${this.spec} is closed`);
    const pool = new DmaPool(name, size, opts, this.provider, (p) => {
      const i = this.poolList.indexOf(p);
      if (i >= 0) this.poolList.splice(i, 1);
    });
    this.poolList.unshift(pool);
    return pool;
  }

  /** The live pools of this device, newest first (destroyed pools leave the list). */
  get pools(): readonly DmaPool[] {
    return this.poolList;
  }

  /**
   * Register access to the PCI function behind this device (vfio: the VFIO device fd; uio: sysfs):
   * BARs, config space, bus mastering, reset. ENODEV for providers without a device.
   */
  pci(bdf?: string): PciAccess {
    if (this.closed) throw new DmaPoolError('EBADF', `device ${this.spec} is closed`);
    if (!this.provider.device)
      throw new DmaPoolError('ENODEV', `${this.spec} has no PCI device (use vfio:<BDF> or uio:<BDF>)`);
    return this.provider.device(bdf);
  }

  /** Brackets CPU access for providers that need cache maintenance (udmabuf, u-dma-buf); no-op otherwise. */
  sync(phase: SyncPhase, dir: SyncDirection = 'rw'): void {
    if (this.closed) throw new DmaPoolError('EBADF', `device ${this.spec} is closed`);
    if ((phase !== 'begin' && phase !== 'end') || (dir !== 'read' && dir !== 'write' && dir !== 'rw'))
      throw new DmaPoolError('EINVAL', `sync(phase, dir): phase is 'begin' or 'end', dir 'read', 'write' or 'rw'`);
    this.provider.sync?.(phase, dir);
  }

  /** The text of /sys/devices/.../pools for this device. */
  poolsReport(): string {
    return poolsReport(this.poolList.map((p) => p.stats));
  }

  /**
   * Destroys every pool and releases the provider (IOMMU mappings, slabs; all views detached).
   * If a pool still has blocks in use, throws EBUSY and keeps everything mapped.
   * Closing twice is harmless.
   */
  close(): void {
    if (this.closed) return;
    const busy = this.poolList.filter((p) => p.stats.inUse > 0);
    if (busy.length)
      throw new DmaPoolError('EBUSY', `device ${this.spec}: pools still in use: ` +
        busy.map((p) => `${p.name} (${p.stats.inUse})`).join(', '), 'free their blocks first');
    for (const p of [...this.poolList]) p.destroy();
    this.provider.close();
    this.closed = true;
  }

  /**
   * `using dev = openDevice(…)`: close() when the block exits, under the same rules. If a pool
   * still has blocks in use it throws EBUSY and releases nothing — the device stays open and its
   * memory mapped (a device may still DMA into it), so free the blocks and call close() again;
   * nothing is released behind the caller's back. When the block itself threw, `using` reports
   * both: a SuppressedError whose `error` is this EBUSY and whose `suppressed` is the block's
   * error (likewise for several `using` resources that fail, innermost first).
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** True once close() succeeded. */
  get isClosed(): boolean {
    return this.closed;
  }
}
