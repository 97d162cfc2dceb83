/** Loads the native shim (node-gyp or cmake-js build) and types its surface. */
import bindings = require('bindings');

export interface MappedMemory {
  buffer: ArrayBuffer;
  /** CPU virtual address of buffer[0]. */
  address: bigint;
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
  O_RDONLY: number; O_WRONLY: number; O_RDWR: number; O_SYNC: number;
  PROT_READ: number; PROT_WRITE: number; MAP_SHARED: number; MAP_PRIVATE: number;
  MAP_POPULATE: number; MAP_HUGETLB: number;
  MFD_CLOEXEC: number; MFD_ALLOW_SEALING: number; MFD_HUGETLB: number;
  F_ADD_SEALS: number; F_GET_SEALS: number; F_SEAL_SHRINK: number; F_SEAL_GROW: number; F_SEAL_SEAL: number;
}

export interface NativeAddon {
  pageSize: number;
  constants: NativeConstants;
  /** open(2) with O_CLOEXEC added. */
  open(path: string, flags: number, hint?: string): number;
  close(fd: number): void;
  /** ioctl(2) with a pointer to `arg`'s bytes, or an integer argument. Returns ioctl's result. */
  ioctl(fd: number, request: number, arg: Uint8Array | number, name: string, hint?: string): number;
  pread(fd: number, buf: Uint8Array, offset: number, name?: string, hint?: string): number;
  pwrite(fd: number, buf: Uint8Array, offset: number, name?: string, hint?: string): number;
  mmapFd(fd: number, size: number, offset: number, prot: number, flags: number, name?: string, hint?: string):
    { buffer: ArrayBuffer; address: bigint };
  memfdCreate(name: string, flags: number, hint?: string): number;
  ftruncate(fd: number, size: number): void;
  fcntl(fd: number, cmd: number, arg: number, name?: string): number;
  getrlimitMemlock(): { soft: number; hard: number };
  /** One volatile access of `width` bytes at buffer[offset], fenced. */
  mmioRead(buffer: ArrayBuffer, offset: number, width: 1 | 2 | 4 | 8): bigint;
  mmioWrite(buffer: ArrayBuffer, offset: number, value: bigint, width: 1 | 2 | 4 | 8): void;
  mapAnonymous(size: number, align: number, opts: MapOptions): MappedMemory;
  /** Detaches every view of `buffer`, then munmaps it. False when already unmapped. */
  unmap(buffer: ArrayBuffer): boolean;
  addressOf(buffer: ArrayBuffer): bigint;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    // DMAPOOL_ADDON names a specific build (CI uses it to test the cmake-js build).
    const explicit = process.env.DMAPOOL_ADDON;
    if (explicit) return (addon = require(explicit) as NativeAddon);
    addon = bindings({ bindings: 'dmapool.node', try: [
      ['module_root', 'build', 'Release', 'bindings'],
      ['module_root', 'build-cmake', 'Release', 'bindings'],
      ['module_root', 'build-cmake', 'bindings'],
      ['module_root', 'build', 'Debug', 'bindings'],
    ] }) as NativeAddon;
  }
  return addon;
}
