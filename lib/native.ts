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

export interface NativeAddon {
  pageSize: number;
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
