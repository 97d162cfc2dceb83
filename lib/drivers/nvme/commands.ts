/**
 * NVMe commands as bytes: the 64-byte submission queue entry, the 16-byte completion queue entry,
 * and the Identify data structures (NVMe base specification 1.4 / 2.0, NVM command set).
 */

/** Admin opcodes. */
export const ADMIN_DELETE_SQ = 0x00, ADMIN_CREATE_SQ = 0x01, ADMIN_DELETE_CQ = 0x04, ADMIN_CREATE_CQ = 0x05,
  ADMIN_IDENTIFY = 0x06, ADMIN_SET_FEATURES = 0x09, ADMIN_GET_FEATURES = 0x0a;
/** NVM I/O opcodes. */
export const NVM_FLUSH = 0x00, NVM_WRITE = 0x01, NVM_READ = 0x02;
/** Identify CNS values. */
export const CNS_NAMESPACE = 0x00, CNS_CONTROLLER = 0x01, CNS_ACTIVE_NSIDS = 0x02;
/** Feature identifiers. */
export const FEAT_NUM_QUEUES = 0x07;

export const SQE_SIZE = 64, CQE_SIZE = 16;

/** The fields of a submission queue entry this driver uses (PRP data pointer; no SGLs, no metadata). */
export interface Sqe {
  opcode: number;
  cid: number;
  nsid?: number;
  prp1?: number;
  prp2?: number;
  cdw10?: number; cdw11?: number; cdw12?: number; cdw13?: number; cdw14?: number; cdw15?: number;
}

const TWO32 = 2 ** 32;

/** Writes a 64-bit value given as a JS number (a DMA address, < 2^53) little-endian at `off`. */
export function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % TWO32, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
}

export function getU64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * TWO32;
}

/**
 * Encodes `c` into the 64 bytes at `off` of `dv`: dword 0 = opcode | FUSE 0 | PSDT 0 (PRPs) |
 * CID << 16, dword 1 = NSID, dwords 2–3 reserved, 4–5 MPTR (0), 6–9 PRP1/PRP2, 10–15 command specific.
 */
export function encodeSqe(dv: DataView, off: number, c: Sqe): void {
  dv.setUint32(off, ((c.opcode & 0xff) | ((c.cid & 0xffff) << 16)) >>> 0, true);
  dv.setUint32(off + 4, (c.nsid ?? 0) >>> 0, true);
  for (let i = 8; i < 24; i += 4) dv.setUint32(off + i, 0, true);
  setU64(dv, off + 24, c.prp1 ?? 0);
  setU64(dv, off + 32, c.prp2 ?? 0);
  dv.setUint32(off + 40, (c.cdw10 ?? 0) >>> 0, true);
  dv.setUint32(off + 44, (c.cdw11 ?? 0) >>> 0, true);
  dv.setUint32(off + 48, (c.cdw12 ?? 0) >>> 0, true);
  dv.setUint32(off + 52, (c.cdw13 ?? 0) >>> 0, true);
  dv.setUint32(off + 56, (c.cdw14 ?? 0) >>> 0, true);
  dv.setUint32(off + 60, (c.cdw15 ?? 0) >>> 0, true);
}

/** A READ or WRITE: SLBA in dwords 10–11, NLB (0's based) in dword 12. */
export function rwSqe(opcode: number, cid: number, nsid: number, lba: number, blocks: number, prp1: number, prp2: number): Sqe {
  return { opcode, cid, nsid, prp1, prp2, cdw10: lba % TWO32, cdw11: Math.floor(lba / TWO32), cdw12: (blocks - 1) & 0xffff };
}

/** A completion queue entry, decoded. */
export interface Cqe {
  /** Command specific result (dword 0). */
  result: number;
  /** SQ head pointer: how far the controller has consumed the submission queue. */
  sqHead: number;
  sqId: number;
  cid: number;
  phase: number;
  /** The 15-bit status field (0 = success). */
  status: number;
}

export function decodeCqe(dv: DataView, off: number): Cqe {
  const dw2 = dv.getUint32(off + 8, true), dw3 = dv.getUint32(off + 12, true);
  return { result: dv.getUint32(off, true), sqHead: dw2 & 0xffff, sqId: dw2 >>> 16, cid: dw3 & 0xffff, phase: (dw3 >>> 16) & 1, status: dw3 >>> 17 };
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return Buffer.from(b.subarray(from, to)).toString('latin1').replace(/\0/g, '').trim();
}

/** The Identify Controller fields a driver needs. */
export interface IdentifyController {
  vid: number; ssvid: number; serial: string; model: string; firmware: string;
  /** Maximum data transfer size as a power of two in units of CAP.MPSMIN pages (0 = no limit). */
  mdts: number;
  cntlid: number; version: string;
  /** Required/maximum SQ and CQ entry sizes (log2). */
  sqes: number; cqes: number;
  /** Number of namespaces. */
  nn: number;
  /** Volatile write cache present. */
  vwc: boolean;
  /** Optional NVM command support bits (ONCS). */
  oncs: number;
}

export function parseIdentifyController(b: Uint8Array): IdentifyController {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ver = dv.getUint32(80, true);
  return {
    vid: dv.getUint16(0, true), ssvid: dv.getUint16(2, true), serial: ascii(b, 4, 24), model: ascii(b, 24, 64),
    firmware: ascii(b, 64, 72), mdts: b[77], cntlid: dv.getUint16(78, true),
    version: ver ? `${ver >>> 16}.${(ver >> 8) & 0xff}.${ver & 0xff}` : 'unreported', sqes: b[512], cqes: b[513],
    nn: dv.getUint32(516, true), oncs: dv.getUint16(520, true), vwc: (b[525] & 1) === 1,
  };
}

/** The Identify Namespace fields a driver needs. */
export interface IdentifyNamespace {
  nsid: number;
  /** Namespace size in logical blocks. */
  blocks: number;
  capacity: number;
  used: number;
  /** Logical block size in bytes (the formatted LBA format's 2^LBADS). */
  blockSize: number;
  /** Metadata bytes per block of the formatted LBA format (this driver requires 0). */
  metadataSize: number;
  lbaFormat: number;
}

export function parseIdentifyNamespace(nsid: number, b: Uint8Array): IdentifyNamespace {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flbas = b[26] & 0xf;
  const lbaf = dv.getUint32(128 + 4 * flbas, true);
  return {
    nsid, blocks: getU64(dv, 0), capacity: getU64(dv, 8), used: getU64(dv, 16),
    blockSize: 2 ** ((lbaf >>> 16) & 0xff), metadataSize: lbaf & 0xffff, lbaFormat: flbas,
  };
}
