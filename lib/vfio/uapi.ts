/**
 * The VFIO, udmabuf and dma-buf userspace ABI (linux/vfio.h, linux/udmabuf.h, linux/dma-buf.h):
 * ioctl numbers, flags and little-endian struct encoders/decoders, kept in TypeScript. The native
 * shim passes through only requests whose structs hold no user pointers (and makes the others —
 * DMA map/unmap, GET_DEVICE_FD, UDMABUF_CREATE — itself, from mappings and fds it owns).
 */
import { DmaPoolError } from '../errors';

export function ioc(dir: number, type: string, nr: number, size: number): number {
  return ((dir << 30) >>> 0) + (size << 16) + (type.charCodeAt(0) << 8) + nr;
}
const IO = (type: string, nr: number) => ioc(0, type, nr, 0);
const IOW = (type: string, nr: number, size: number) => ioc(1, type, nr, size);

const VFIO = ';';
const VFIO_BASE = 100;
export const VFIO_GET_API_VERSION = IO(VFIO, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = IO(VFIO, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = IO(VFIO, VFIO_BASE + 2);
export const VFIO_GROUP_GET_STATUS = IO(VFIO, VFIO_BASE + 3);
export const VFIO_GROUP_SET_CONTAINER = IO(VFIO, VFIO_BASE + 4);
export const VFIO_GROUP_UNSET_CONTAINER = IO(VFIO, VFIO_BASE + 5);
export const VFIO_GROUP_GET_DEVICE_FD = IO(VFIO, VFIO_BASE + 6);
export const VFIO_DEVICE_GET_INFO = IO(VFIO, VFIO_BASE + 7);
export const VFIO_DEVICE_GET_REGION_INFO = IO(VFIO, VFIO_BASE + 8);
export const VFIO_DEVICE_RESET = IO(VFIO, VFIO_BASE + 11);
export const VFIO_IOMMU_GET_INFO = IO(VFIO, VFIO_BASE + 12);
export const VFIO_IOMMU_MAP_DMA = IO(VFIO, VFIO_BASE + 13);
export const VFIO_IOMMU_UNMAP_DMA = IO(VFIO, VFIO_BASE + 14);

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_GROUP_FLAGS_VIABLE = 1;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 2;
export const VFIO_DMA_MAP_FLAG_READ = 1;
export const VFIO_DMA_MAP_FLAG_WRITE = 2;
export const VFIO_IOMMU_INFO_PGSIZES = 1;
export const VFIO_IOMMU_INFO_CAPS = 2;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
export const VFIO_DEVICE_FLAGS_RESET = 1;
export const VFIO_DEVICE_FLAGS_PCI = 2;
export const VFIO_REGION_INFO_FLAG_READ = 1;
export const VFIO_REGION_INFO_FLAG_WRITE = 2;
export const VFIO_REGION_INFO_FLAG_MMAP = 4;
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

export const UDMABUF_CREATE_SIZE = 24;
export const UDMABUF_CREATE = IOW('u', 0x42, UDMABUF_CREATE_SIZE);
export const UDMABUF_CREATE_LIST = IOW('u', 0x43, 8);
export const UDMABUF_FLAGS_CLOEXEC = 1;
export const DMA_BUF_IOCTL_SYNC = IOW('b', 0, 8);
export const DMA_BUF_SYNC_READ = 1;
export const DMA_BUF_SYNC_WRITE = 2;
export const DMA_BUF_SYNC_RW = 3;
export const DMA_BUF_SYNC_START = 0;
export const DMA_BUF_SYNC_END = 4;

/** A zeroed struct of `size` bytes with argsz set, and a DataView over it. */
export function struct(size: number, argsz = size): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, argsz, true);
  return { bytes, view };
}

export function u64(view: DataView, off: number): number {
  const v = view.getBigUint64(off, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

export interface IommuInfo {
  flags: number;
  /** Bitmap of supported IOMMU page sizes. */
  pageSizes: number;
  /** Usable IOVA apertures (inclusive ends); empty when the kernel reports none. */
  iovaRanges: { start: number; end: number }[];
  /** Remaining DMA mappings allowed (vfio_iommu_type1 dma_entry_limit), when reported. */
  dmaAvail?: number;
  /** Capability ids found, in chain order. */
  caps: number[];
}

/**
 * Parses a vfio_iommu_type1_info buffer with its capability chain (each capability:
 * u16 id, u16 version, u32 next — offsets from the start of the info struct; 0 ends the chain).
 * Defends against loops and out-of-range offsets from a malformed buffer.
 */
export function parseIommuInfo(buf: Uint8Array): IommuInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 16) throw new DmaPoolError('EPROTO', `vfio_iommu_type1_info too short (${buf.byteLength} bytes)`);
  const flags = view.getUint32(4, true);
  const info: IommuInfo = {
    flags,
    pageSizes: flags & VFIO_IOMMU_INFO_PGSIZES ? u64(view, 8) : 0,
    iovaRanges: [],
    caps: [],
  };
  if (!(flags & VFIO_IOMMU_INFO_CAPS) || buf.byteLength < 24) return info;
  let off = view.getUint32(16, true);
  const seen = new Set<number>();
  while (off !== 0) {
    if (seen.has(off)) throw new DmaPoolError('EPROTO', `capability chain loops at offset ${off}`);
    seen.add(off);
    if (off < 24 || off + 8 > buf.byteLength) throw new DmaPoolError('EPROTO', `capability at offset ${off} outside the ${buf.byteLength}-byte buffer`);
    const id = view.getUint16(off, true);
    const next = view.getUint32(off + 4, true);
    info.caps.push(id);
    if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const n = view.getUint32(off + 8, true);
      if (off + 16 + n * 16 > buf.byteLength) throw new DmaPoolError('EPROTO', `IOVA range capability claims ${n} ranges past the buffer end`);
      for (let i = 0; i < n; i++) {
        const start = u64(view, off + 16 + i * 16);
        const end = u64(view, off + 24 + i * 16);
        info.iovaRanges.push({ start, end });
      }
    } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      if (off + 12 > buf.byteLength) throw new DmaPoolError('EPROTO', 'DMA_AVAIL capability truncated');
      info.dmaAvail = view.getUint32(off + 8, true);
    }
    off = next;
  }
  return info;
}

/** struct vfio_region_info (decoded) */
export interface RegionInfo {
  index: number;
  flags: number;
  size: number;
  offset: number;
}
