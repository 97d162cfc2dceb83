/** The userspace NVMe driver: see nvme.ts for the walk-through. */
export { Nvme } from './nvme';
export type { NvmeOptions, PoolTime } from './nvme';
export { DmaBuffer } from './buffer';
export { NvmeError, decodeStatus, statusErrno } from './status';
export type { NvmeStatus } from './status';
export { buildPrps, freePrps, prpListCount, PRP_PAGE_POOL, PRP_SMALL_POOL, CTRL_PAGE } from './prp';
export type { Prps, PrpPools } from './prp';
export { encodeSqe, decodeCqe, parseIdentifyController, parseIdentifyNamespace } from './commands';
export type { Sqe, Cqe, IdentifyController, IdentifyNamespace } from './commands';
export { decodeCap } from './registers';
export type { Capabilities } from './registers';
