/**
 * The VFIO type1 backend of {@link IommuContext}: the legacy container (/dev/vfio/vfio) with the
 * devices' IOMMU groups attached. The implementation is VfioContainer (lib/vfio/vfio.ts, where it
 * has always lived); this module is its name in the backend layout of lib/vfio/iommu.ts.
 */
export { VfioContainer as Type1Context, VfioOptions as Type1Options } from './vfio';
