/**
 * Loads the native shim (node-gyp or cmake-js build), hands it the library's error class and
 * types its surface. Every export validates its own arguments (a bad one is a DmaPoolError
 * EINVAL, never a crash) and accepts only the mappings and file descriptors the shim itself made.
 */
import bindings = require('bindings');
import { DmaPoolError } from './errors';

/** A mapping the shim made: `id` names it in every later call. */
export interface Mapping {
  id: number;
  /** The whole mapping as an ArrayBuffer (absent for read-only mappings). Internal use only. */
  buffer: ArrayBuffer;
  /** CPU virtual address of byte 0. */
  address: bigint;
}

export interface MappedMemory extends Mapping {
  hugetlb: boolean;
  locked: boolean;
}

export interface MapOptions {
  hugetlb?: boolean;
  thp?: boolean;
  populate?: boolean;
  /** 0 = don't lock, 1 = try (see `locked`), 2 = required (throws on failure). */
  lock?: 0 | 1 | 2;
}

export interface NativeConstants {
  O_RDONLY: number; O_WRONLY: number; O_RDWR: number; O_SYNC: number; O_NONBLOCK: number;
  PROT_READ: number; PROT_WRITE: number; MAP_SHARED: number; MAP_PRIVATE: number; MAP_POPULATE: number;
  MFD_CLOEXEC: number; MFD_ALLOW_SEALING: number; MFD_HUGETLB: number;
  F_SEAL_SHRINK: number; F_SEAL_GROW: number; F_SEAL_SEAL: number; F_SEAL_WRITE: number;
}

/** What releaseBuffer found: detached now; moved away by JS and still reachable; already gone. */
export type ReleaseResult = 'detached' | 'escaped' | 'gone';

export interface NativeAddon extends NativeIrq {
  pageSize: number;
  hugePageSize: number;
  constants: NativeConstants;
  setErrorClass(cls: typeof DmaPoolError): void;

  // ---- memory ----
  /**
   * Anonymous memory, aligned to `align` (0 or a power of two; at least a page), MADV_DONTFORK.
   * At most the largest ArrayBuffer this Node can wrap (4 GiB before Node 22).
   */
  mapAnonymous(size: number, align: number, opts: MapOptions): MappedMemory;
  /**
   * mmap of a descriptor the shim opened. Regular files must cover the range and be sealed
   * against shrinking (or live on sysfs). Read-only mappings, and mappings longer than the largest
   * ArrayBuffer (4 GiB before Node 22), come without `buffer` (MMIO through the id reaches them).
   */
  mmapFd(fd: number, size: number, offset: number, prot: number, flags: number, name?: string, hint?: string):
    { id: number; buffer?: ArrayBuffer; address: bigint };
  /** A new ArrayBuffer over exactly [offset, offset + length) of a writable mapping. */
  subBuffer(mapping: number, offset: number, length: number): { view: number; buffer: ArrayBuffer };
  /** Detaches a subBuffer; 'escaped' when JS had moved its memory to an ArrayBuffer we cannot reach. */
  releaseBuffer(view: number): ReleaseResult;
  /** True while an escaped view's memory is still reachable from JS (until the GC collects it). */
  bufferPending(view: number): boolean;
  /**
   * Detaches every ArrayBuffer over the mapping and unmaps it (escaped ones keep an inert
   * anonymous range until collected). False when already unmapped. EBUSY while DMA-mapped.
   */
  unmap(mapping: number): boolean;
  mappingInfo(mapping: number): { address: bigint; length: number; writable: boolean; views: number; held: boolean } | undefined;
  /** One fenced volatile access of `width` bytes at mapping[offset] (bounds-checked). */
  mmioRead(mapping: number, offset: number, width: 1 | 2 | 4 | 8): bigint;
  mmioWrite(mapping: number, offset: number, value: bigint | number, width: 1 | 2 | 4 | 8): void;
  /** dma_rmb(): later loads of DMA memory are not satisfied before earlier ones (arm64 dmb oshld). */
  dmaReadBarrier(): void;
  /**
   * Zeros over [offset, offset + length) of a writable mapping with non-temporal stores (x86-64;
   * memset elsewhere): for megabytes the CPU does not read next, such as a reused slab — half
   * memset's time, no cache lines evicted. A small range is cheaper as a TypedArray fill.
   */
  zeroRange(mapping: number, offset: number, length: number): void;

  // ---- descriptors ----
  /** open(2) with O_CLOEXEC added; flags: an access mode, optionally O_SYNC / O_NONBLOCK. */
  open(path: string, flags: number, hint?: string): number;
  /** Closes a descriptor the shim opened (EBADF for any other number). */
  close(fd: number): void;
  /** ioctl(2) for the requests the shim passes through (no user pointers inside their arguments). */
  ioctl(fd: number, request: number, arg: ArrayBufferView | number | undefined, name?: string, hint?: string): number;
  pread(fd: number, buf: ArrayBufferView, offset: number, name?: string, hint?: string): number;
  pwrite(fd: number, buf: ArrayBufferView, offset: number, name?: string, hint?: string): number;
  memfdCreate(name: string, flags: number, hint?: string): number;
  ftruncate(fd: number, size: number): void;
  addSeals(fd: number, seals: number): void;
  getSeals(fd: number): number;
  getrlimitMemlock(): { soft: number; hard: number };
  vfioGroupGetDeviceFd(groupFd: number, bdf: string, hint?: string): number;
  udmabufCreate(devFd: number, memfd: number, offset: number, size: number, hint?: string): number;
  /** VFIO_IOMMU_MAP_DMA of part of an anonymous mapping the shim made (read + write). */
  vfioMapDma(containerFd: number, mapping: number, offset: number, size: number, iova: number, hint?: string): void;
  vfioUnmapDma(containerFd: number, iova: number, size: number): number;

  // ---- iommufd + VFIO device cdev (native/iommufd.cc; EBADF unless the fd is the shim's own
  // /dev/iommu, resp. /dev/vfio/devices/vfioN) ----
  /** IOMMU_IOAS_ALLOC: a new IO address space; returns its object id. */
  iommufdIoasAlloc(iommufd: number): number;
  /** IOMMU_IOAS_IOVA_RANGES (retried with the count the kernel reports on EMSGSIZE). */
  iommufdIovaRanges(iommufd: number, ioasId: number): { ranges: { start: bigint; last: bigint }[]; alignment: bigint };
  /** IOMMU_IOAS_MAP (fixed IOVA, read + write) of part of an anonymous mapping the shim made. */
  iommufdMapDma(iommufd: number, ioasId: number, mapping: number, offset: number, size: number, iova: number, hint?: string): void;
  /** IOMMU_IOAS_UNMAP; returns the bytes unmapped. */
  iommufdUnmapDma(iommufd: number, ioasId: number, iova: number, size: number): number;
  /** IOMMU_OPTION get (0 = RLIMIT_MODE: 0 per-user, 1 per-process accounting; 1 = HUGE_PAGES). */
  iommufdGetOption(iommufd: number, optionId: number, objectId: number): number;
  /** VFIO_DEVICE_BIND_IOMMUFD; returns the iommufd device id. */
  vfioDeviceBindIommufd(deviceFd: number, iommufd: number, hint?: string): number;
  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS or HWPT; returns the pt id the device is attached to. */
  vfioDeviceAttachPt(deviceFd: number, ptId: number, hint?: string): number;
  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  vfioDeviceDetachPt(deviceFd: number): void;
}

/** VFIO interrupt constants (linux/vfio.h), from the addon's build headers. */
export interface IrqConstants {
  VFIO_PCI_INTX_IRQ_INDEX: number; VFIO_PCI_MSI_IRQ_INDEX: number; VFIO_PCI_MSIX_IRQ_INDEX: number;
  VFIO_IRQ_SET_ACTION_MASK: number; VFIO_IRQ_SET_ACTION_UNMASK: number; VFIO_IRQ_SET_ACTION_TRIGGER: number;
  VFIO_IRQ_INFO_EVENTFD: number; VFIO_IRQ_INFO_MASKABLE: number; VFIO_IRQ_INFO_AUTOMASKED: number; VFIO_IRQ_INFO_NORESIZE: number;
}

/**
 * Called from the event loop once per irqArm: `count` interrupts arrived (≥ 1), or the wait
 * failed (`error` is an errno name, count 0).
 */
export type IrqCallback = (count: number, error?: string) => void;

export interface NativeIrq {
  irqConstants: IrqConstants;
  /** A new non-blocking eventfd owned by an interrupt handle; returns the handle id. */
  irqCreate(cb: IrqCallback): number;
  /** Moves a /dev/uioN descriptor the shim opened into a new handle (close() no longer takes it). */
  irqAdoptUio(fd: number, eventCount: number, cb: IrqCallback): number;
  /** Starts waiting: a uv_poll on the descriptor, active (keeping the loop alive) until it fires once. */
  irqArm(irq: number): void;
  /** Stops waiting. */
  irqDisarm(irq: number): void;
  /** Non-blocking read: interrupts since the last read, 0 when none. */
  irqRead(irq: number): number;
  /** Adds `count` to an eventfd handle (a software-raised interrupt). */
  irqSignal(irq: number, count: number): void;
  /** UIO: writes 1 (enable) or 0 (disable) to /dev/uioN (ENOSYS when the driver has no irqcontrol). */
  irqUioControl(irq: number, enable: boolean): void;
  /** Stops waiting and closes the descriptor; EBADF when not open. */
  irqClose(irq: number): void;
  /** Interrupt handles open in this environment. */
  irqCount(): number;
  /**
   * VFIO_DEVICE_SET_IRQS on a VFIO device descriptor the shim opened. Without `irqs`: DATA_NONE
   * over [start, start+count) (TRIGGER + count 0 disables the index). With `irqs` (TRIGGER only):
   * DATA_EVENTFD, an eventfd handle id or -1 (detach) per vector.
   */
  vfioSetIrqs(deviceFd: number, index: number, action: number, start: number, count: number, irqs?: readonly number[]): void;
}

let addon: NativeAddon | undefined;

/** Path of the addon that native() loads (for tests that exercise it in child processes). */
export function addonPath(): string {
  const explicit = process.env.DMAPOOL_ADDON;
  if (explicit) return explicit;
  return bindings({ bindings: 'dmapool.node', path: true, try: TRY } as never) as unknown as string;
}

const TRY = [
  ['module_root', 'build', 'Release', 'bindings'],
  ['module_root', 'build-cmake', 'Release', 'bindings'],
  ['module_root', 'build-cmake', 'bindings'],
  ['module_root', 'build', 'Debug', 'bindings'],
];

let calls = 0;

/**
 * Calls made into the native shim by this thread so far. Counted here, once, by the wrapper
 * native() returns around every exported function — never by hand at the call sites, so a new
 * call cannot go uncounted. Providers attribute calls to themselves by difference.
 */
export function nativeCallCount(): number {
  return calls;
}

/** The addon with every exported function wrapped to count its calls; values copied as they are. */
function counting(a: NativeAddon): NativeAddon {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) {
    if (typeof v !== 'function') { out[k] = v; continue; }
    const fn = v as (...args: unknown[]) => unknown;
    out[k] = function countedNativeCall(...args: unknown[]): unknown {
      calls++;
      return fn.apply(a, args);
    };
  }
  return Object.freeze(out) as unknown as NativeAddon;
}

export function native(): NativeAddon {
  if (!addon) {
    // DMAPOOL_ADDON names a specific build (CI uses it to test the cmake-js build).
    const explicit = process.env.DMAPOOL_ADDON;
    const a = (explicit ? require(explicit) : bindings({ bindings: 'dmapool.node', try: TRY })) as NativeAddon;
    a.setErrorClass(DmaPoolError);
    addon = counting(a);
  }
  return addon;
}
