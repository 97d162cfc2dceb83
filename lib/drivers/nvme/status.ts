/**
 * NVMe completion status → a typed error. The 15-bit status field of a completion (CQE dword 3,
 * bits 31:17) is decoded into its type (SCT), code (SC), More and Do Not Retry bits and a name
 * from the NVMe base and NVM command set specifications; the errno-style `code` is the one Linux
 * gives the same status (drivers/nvme/host/core.c nvme_error_status() → blk_status_to_errno()).
 */
import { DmaPoolError } from '../../errors';

/** Status code types (SCT). */
export const SCT_GENERIC = 0, SCT_COMMAND_SPECIFIC = 1, SCT_MEDIA = 2, SCT_PATH = 3, SCT_VENDOR = 7;

const GENERIC: Record<number, string> = {
  0x00: 'Successful Completion', 0x01: 'Invalid Command Opcode', 0x02: 'Invalid Field in Command',
  0x03: 'Command ID Conflict', 0x04: 'Data Transfer Error', 0x05: 'Commands Aborted due to Power Loss Notification',
  0x06: 'Internal Error', 0x07: 'Command Abort Requested', 0x08: 'Command Aborted due to SQ Deletion',
  0x09: 'Command Aborted due to Failed Fused Command', 0x0a: 'Command Aborted due to Missing Fused Command',
  0x0b: 'Invalid Namespace or Format', 0x0c: 'Command Sequence Error', 0x0d: 'Invalid SGL Segment Descriptor',
  0x0e: 'Invalid Number of SGL Descriptors', 0x0f: 'Data SGL Length Invalid', 0x10: 'Metadata SGL Length Invalid',
  0x11: 'SGL Descriptor Type Invalid', 0x12: 'Invalid Use of Controller Memory Buffer', 0x13: 'PRP Offset Invalid',
  0x14: 'Atomic Write Unit Exceeded', 0x15: 'Operation Denied', 0x16: 'SGL Offset Invalid',
  0x18: 'Host Identifier Inconsistent Format', 0x19: 'Keep Alive Timer Expired', 0x1a: 'Keep Alive Timeout Invalid',
  0x1b: 'Command Aborted due to Preempt and Abort', 0x1c: 'Sanitize Failed', 0x1d: 'Sanitize In Progress',
  0x1e: 'SGL Data Block Granularity Invalid', 0x1f: 'Command Not Supported for Queue in CMB',
  0x20: 'Namespace is Write Protected', 0x21: 'Command Interrupted', 0x22: 'Transient Transport Error',
  0x80: 'LBA Out of Range', 0x81: 'Capacity Exceeded', 0x82: 'Namespace Not Ready', 0x83: 'Reservation Conflict',
  0x84: 'Format In Progress',
};
const COMMAND_SPECIFIC: Record<number, string> = {
  0x00: 'Completion Queue Invalid', 0x01: 'Invalid Queue Identifier', 0x02: 'Invalid Queue Size',
  0x03: 'Abort Command Limit Exceeded', 0x05: 'Asynchronous Event Request Limit Exceeded',
  0x06: 'Invalid Firmware Slot', 0x07: 'Invalid Firmware Image', 0x08: 'Invalid Interrupt Vector',
  0x09: 'Invalid Log Page', 0x0a: 'Invalid Format', 0x0b: 'Firmware Activation Requires Conventional Reset',
  0x0c: 'Invalid Queue Deletion', 0x0d: 'Feature Identifier Not Saveable', 0x0e: 'Feature Not Changeable',
  0x0f: 'Feature Not Namespace Specific', 0x10: 'Firmware Activation Requires NVM Subsystem Reset',
  0x11: 'Firmware Activation Requires Controller Level Reset', 0x12: 'Firmware Activation Requires Maximum Time Violation',
  0x13: 'Firmware Activation Prohibited', 0x14: 'Overlapping Range', 0x15: 'Namespace Insufficient Capacity',
  0x16: 'Namespace Identifier Unavailable', 0x18: 'Namespace Already Attached', 0x19: 'Namespace Is Private',
  0x1a: 'Namespace Not Attached', 0x1b: 'Thin Provisioning Not Supported', 0x1c: 'Controller List Invalid',
  0x80: 'Conflicting Attributes', 0x81: 'Invalid Protection Information', 0x82: 'Attempted Write to Read Only Range',
};
const MEDIA: Record<number, string> = {
  0x80: 'Write Fault', 0x81: 'Unrecovered Read Error', 0x82: 'End-to-end Guard Check Error',
  0x83: 'End-to-end Application Tag Check Error', 0x84: 'End-to-end Reference Tag Check Error',
  0x85: 'Compare Failure', 0x86: 'Access Denied', 0x87: 'Deallocated or Unwritten Logical Block',
};
const PATH: Record<number, string> = {
  0x00: 'Internal Path Error', 0x01: 'Asymmetric Access Persistent Loss', 0x02: 'Asymmetric Access Inaccessible',
  0x03: 'Asymmetric Access Transition', 0x60: 'Controller Pathing Error', 0x61: 'Host Pathing Error',
  0x71: 'Command Aborted By Host',
};
const SCT_NAMES = ['Generic Command Status', 'Command Specific Status', 'Media and Data Integrity Errors', 'Path Related Status'];

/** The status field of a completion, decoded. */
export interface NvmeStatus {
  /** The raw 15-bit field (CQE dword 3 bits 31:17, i.e. without the phase bit). */
  raw: number;
  /** Status Code Type. */
  sct: number;
  /** Status Code. */
  sc: number;
  /** Command Retry Delay index. */
  crd: number;
  /** More: a log page has more information. */
  more: boolean;
  /** Do Not Retry: the same command would fail again. */
  dnr: boolean;
  /** The specification's name of the status, e.g. 'LBA Out of Range'. */
  name: string;
}

/** Decodes the 15-bit status field (dword 3 >>> 17). */
export function decodeStatus(raw: number): NvmeStatus {
  const sc = raw & 0xff, sct = (raw >> 8) & 0x7, crd = (raw >> 11) & 0x3;
  const table = sct === SCT_GENERIC ? GENERIC : sct === SCT_COMMAND_SPECIFIC ? COMMAND_SPECIFIC : sct === SCT_MEDIA ? MEDIA
    : sct === SCT_PATH ? PATH : undefined;
  const name = table?.[sc] ?? (sct === SCT_VENDOR ? `Vendor Specific status 0x${hex2(sc)}`
    : `${SCT_NAMES[sct] ?? `Status Code Type ${sct}`} 0x${hex2(sc)}`);
  return { raw: raw & 0x7fff, sct, sc, crd, more: ((raw >> 13) & 1) === 1, dnr: ((raw >> 14) & 1) === 1, name };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * The errno Linux returns for this status (nvme_error_status → blk_status_to_errno): EOPNOTSUPP
 * for invalid opcode/field/namespace, ENOSPC for capacity exceeded, EREMOTEIO for LBA out of
 * range, ENODATA for media errors and read-only ranges, EILSEQ for protection-information errors,
 * EBADE for a reservation conflict, ENOLINK for a host pathing error, EIO otherwise.
 */
export function statusErrno(s: Pick<NvmeStatus, 'sct' | 'sc'>): string {
  const v = (s.sct << 8) | s.sc;
  switch (v) {
    case 0x000: return 'OK';
    case 0x081: return 'ENOSPC';
    case 0x080: return 'EREMOTEIO';
    case 0x001: case 0x002: case 0x00b: case 0x180: return 'EOPNOTSUPP';
    case 0x280: case 0x281: case 0x287: case 0x286: case 0x182: case 0x285: return 'ENODATA';
    case 0x282: case 0x283: case 0x284: case 0x181: return 'EILSEQ';
    case 0x083: return 'EBADE';
    case 0x361: return 'ENOLINK';
    default: return 'EIO';
  }
}

/**
 * A command that completed with an error status (or timed out: code ETIMEDOUT, `status`
 * undefined). A DmaPoolError, so `code` is errno-style and callers switch on it as anywhere in
 * the library; `status` has the decoded NVMe status, `opcode`/`qid`/`cid` say which command.
 */
export class NvmeError extends DmaPoolError {
  constructor(
    code: string, message: string,
    /** The decoded completion status (absent for a timeout or a controller failure). */
    readonly status: NvmeStatus | undefined,
    /** The command's opcode and queue, and its command identifier. */
    readonly opcode: number, readonly qid: number, readonly cid: number,
    hint?: string,
  ) {
    super(code, message, hint);
    this.name = 'NvmeError';
  }

  /** The error for a completion with non-zero status. */
  static fromStatus(raw: number, opcode: number, qid: number, cid: number, what: string): NvmeError {
    const s = decodeStatus(raw);
    const where = `${what} (opcode 0x${hex2(opcode)}, queue ${qid}, cid ${cid})`;
    return new NvmeError(statusErrno(s), `${where} failed: ${s.name} (SCT ${s.sct}, SC 0x${hex2(s.sc)}${s.dnr ? ', DNR' : ''}${s.more ? ', M' : ''})`,
      s, opcode, qid, cid, s.dnr ? 'the controller says retrying will not help (DNR)' : undefined);
  }
}
