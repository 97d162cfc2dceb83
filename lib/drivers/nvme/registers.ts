/**
 * Controller registers (BAR0) and the reset / enable / shutdown sequences of NVMe base
 * specification §3.1 and §3.5. Every access is one fenced MMIO access through PciAccess
 * (read32/write32/read64/write64); doorbells are 32-bit writes.
 */
import { DmaPoolError } from '../../errors';
import type { PciAccess } from '../../vfio/pci-access';

export const REG_CAP = 0x00, REG_VS = 0x08, REG_INTMS = 0x0c, REG_INTMC = 0x10, REG_CC = 0x14, REG_CSTS = 0x1c,
  REG_AQA = 0x24, REG_ASQ = 0x28, REG_ACQ = 0x30, REG_DOORBELLS = 0x1000;

export const CC_EN = 1, CC_CSS_NVM = 0 << 4, CC_AMS_RR = 0 << 11, CC_SHN_NORMAL = 1 << 14, CC_SHN_MASK = 3 << 14,
  CC_IOSQES = 6 << 16, CC_IOCQES = 4 << 20;
export const CSTS_RDY = 1, CSTS_CFS = 2, CSTS_SHST_MASK = 3 << 2, CSTS_SHST_CMPLT = 2 << 2;

/** CAP, decoded. */
export interface Capabilities {
  /** Maximum queue entries supported (1's based: CAP.MQES + 1). */
  maxQueueEntries: number;
  /** Contiguous queues required. */
  cqr: boolean;
  /** Worst-case time for CSTS.RDY to change after CC.EN changes, in ms (CAP.TO × 500). */
  timeoutMs: number;
  /** Doorbell stride in bytes (4 << CAP.DSTRD). */
  doorbellStride: number;
  /** NVM command set supported (CAP.CSS bit 0). */
  nvmCommandSet: boolean;
  /** Memory page size minimum / maximum in bytes (2^(12 + MPSMIN/MPSMAX)). */
  pageMin: number;
  pageMax: number;
}

export function decodeCap(cap: bigint): Capabilities {
  const lo = Number(cap & 0xffffffffn), hi = Number(cap >> 32n);
  return {
    maxQueueEntries: (lo & 0xffff) + 1, cqr: ((lo >>> 16) & 1) === 1, timeoutMs: ((lo >>> 24) & 0xff) * 500,
    doorbellStride: 4 << (hi & 0xf), nvmCommandSet: ((hi >>> 5) & 1) === 1,
    pageMin: 2 ** (12 + ((hi >>> 16) & 0xf)), pageMax: 2 ** (12 + ((hi >>> 20) & 0xf)),
  };
}

/** The register block of one controller. */
export class Registers {
  readonly cap: Capabilities;
  readonly version: string;
  constructor(readonly pci: PciAccess) {
    this.cap = decodeCap(pci.read64(0, REG_CAP));
    const vs = pci.read32(0, REG_VS);
    this.version = `${vs >>> 16}.${(vs >> 8) & 0xff}.${vs & 0xff}`;
  }

  /** Byte offset of the SQ tail (or, `cq` true, the CQ head) doorbell of queue `qid`. */
  doorbell(qid: number, cq: boolean): number {
    return REG_DOORBELLS + (2 * qid + (cq ? 1 : 0)) * this.cap.doorbellStride;
  }

  cc(): number { return this.pci.read32(0, REG_CC); }
  csts(): number { return this.pci.read32(0, REG_CSTS); }

  /** Waits (bounded by CAP.TO) until `done(CSTS)`; throws ETIMEDOUT or EIO (fatal status) otherwise. */
  private waitCsts(what: string, done: (csts: number) => boolean, timeoutMs = Math.max(this.cap.timeoutMs, 500)): void {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.csts();
      if (s === 0xffffffff)
        throw new DmaPoolError('ENODEV', `${this.pci.bdf}: CSTS reads all ones while waiting for ${what}`, 'the device is gone or its BAR is not enabled');
      if (done(s)) return;
      if (Date.now() > deadline)
        throw new DmaPoolError('ETIMEDOUT', `${this.pci.bdf}: ${what} not reached within ${timeoutMs} ms (CSTS 0x${s.toString(16)})`);
    }
  }

  /** Controller reset: CC.EN = 0, then CSTS.RDY = 0 (the controller drops all queues). */
  disable(): void {
    const cc = this.cc();
    if (cc & CC_EN) this.pci.write32(0, REG_CC, cc & ~CC_EN);
    this.waitCsts('CSTS.RDY = 0 after CC.EN = 0', (s) => (s & CSTS_RDY) === 0);
  }

  /** Programs the admin queue and enables: CC.EN = 1 with 4 KiB pages, NVM command set, 64/16-byte entries. */
  enable(asq: number, acq: number, entries: number): void {
    this.pci.write32(0, REG_AQA, ((entries - 1) << 16) | (entries - 1));
    this.pci.write64(0, REG_ASQ, asq);
    this.pci.write64(0, REG_ACQ, acq);
    this.pci.write32(0, REG_CC, CC_EN | CC_CSS_NVM | CC_AMS_RR | CC_IOSQES | CC_IOCQES); // MPS 0 = 4 KiB
    this.waitCsts('CSTS.RDY = 1 after CC.EN = 1', (s) => {
      if (s & CSTS_CFS) throw new DmaPoolError('EIO', `${this.pci.bdf}: controller fatal status while enabling (CSTS 0x${s.toString(16)})`);
      return (s & CSTS_RDY) === 1;
    });
  }

  /** Orderly shutdown: CC.SHN = normal, then CSTS.SHST = complete (bounded by `timeoutMs`). */
  shutdown(timeoutMs: number): void {
    this.pci.write32(0, REG_CC, (this.cc() & ~CC_SHN_MASK) | CC_SHN_NORMAL);
    this.waitCsts('CSTS.SHST = shutdown complete after CC.SHN = normal', (s) => (s & CSTS_SHST_MASK) === CSTS_SHST_CMPLT, timeoutMs);
  }
}
