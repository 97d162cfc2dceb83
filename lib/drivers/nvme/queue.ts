/**
 * A submission/completion queue pair: both rings in coherent DMA memory, the SQ tail and CQ head
 * doorbells, command identifiers, and completion by the CQ phase bit. The controller writes a
 * completion entry with the phase bit inverted on each pass over the ring, so an entry is new
 * exactly when its phase equals the phase the host expects; the host flips its expectation when
 * its head wraps. Completion is reaped by reap(), called by the driver's poller or interrupt loop.
 */
import type { SlabProvider } from '../../provider';
import type { Registers } from './registers';
import { DmaBuffer } from './buffer';
import { CQE_SIZE, encodeSqe, Sqe, SQE_SIZE } from './commands';
import { NvmeError } from './status';
import { dmaReadBarrier } from '../../pool';

/** A command in flight. */
export interface Pending {
  opcode: number;
  /** What the command is, for error messages ("READ lba 8 × 16"). */
  what: string;
  resolve(result: number): void;
  reject(e: Error): void;
  /** Called once the command's slot is retired (its completion arrived, or the controller is gone): frees its PRP lists. */
  release?(): void;
  /** ms since the epoch after which the command times out. */
  deadline: number;
  /** Set once the caller was told ETIMEDOUT: the slot stays reserved until the completion arrives. */
  timedOut?: boolean;
}

export class QueuePair {
  readonly sq: DmaBuffer;
  readonly cq: DmaBuffer;
  private sqTail = 0;
  /** The controller's SQ head as last reported in a completion (SQHD). */
  private sqHead = 0;
  private cqHead = 0;
  private phase = 1;
  private readonly sqDoorbell: number;
  private readonly cqDoorbell: number;
  /** Free command identifiers (a stack); at most depth − 1 commands are in flight (a full SQ keeps one slot empty). */
  private readonly freeCids: Uint16Array;
  private nFree: number;
  private readonly pending: (Pending | undefined)[];
  /** Submissions waiting for a free slot (queue full), in order. */
  private readonly waiting: (() => void)[] = [];
  /** Completions reaped over the queue's life. */
  completions = 0;

  constructor(readonly regs: Registers, provider: SlabProvider, readonly qid: number, readonly depth: number) {
    this.sq = new DmaBuffer(provider, depth * SQE_SIZE);
    try {
      this.cq = new DmaBuffer(provider, depth * CQE_SIZE);
    } catch (e) {
      this.sq.free();
      throw e;
    }
    this.sqDoorbell = regs.doorbell(qid, false);
    this.cqDoorbell = regs.doorbell(qid, true);
    this.freeCids = new Uint16Array(depth - 1);
    for (let i = 0; i < depth - 1; i++) this.freeCids[i] = depth - 2 - i; // pop gives 0, 1, 2, …
    this.nFree = depth - 1;
    this.pending = new Array(depth - 1).fill(undefined);
  }

  /** The SQ head the controller last reported (CQE SQHD): entries before it were consumed. */
  get controllerSqHead(): number {
    return this.sqHead;
  }

  /** Commands in flight (timed-out ones included until their completion arrives). */
  get inFlight(): number {
    return this.depth - 1 - this.nFree;
  }

  /** Resolves when a slot is retired (or the queue is abandoned); callers re-check hasSlot. */
  waitSlot(): Promise<void> {
    return new Promise<void>((res) => this.waiting.push(res));
  }

  /** True when submit() can run now. */
  get hasSlot(): boolean {
    return this.nFree > 0;
  }

  /**
   * Writes the command into the SQ at the tail and rings the tail doorbell. The caller took a slot
   * (hasSlot, or awaited slot()). Returns the command identifier used.
   */
  submit(c: Omit<Sqe, 'cid'>, p: Pending): number {
    const cid = this.freeCids[--this.nFree];
    this.pending[cid] = p;
    (c as Sqe).cid = cid;
    encodeSqe(this.sq.view, this.sqTail * SQE_SIZE, c as Sqe);
    this.sqTail = this.sqTail + 1 === this.depth ? 0 : this.sqTail + 1;
    this.regs.pci.write32(0, this.sqDoorbell, this.sqTail);
    return cid;
  }

  /** Consumes every new completion, settles its command, rings the CQ head doorbell once. */
  reap(): number {
    const dv = this.cq.view;
    let n = 0;
    for (;;) {
      const off = this.cqHead * CQE_SIZE;
      const dw3 = dv.getUint32(off + 12, true);
      if (((dw3 >>> 16) & 1) !== this.phase) break;
      dmaReadBarrier(); // the entry's other fields only after its phase bit (dma_rmb, as Linux's nvme_cqe_pending)
      const result = dv.getUint32(off, true);
      this.sqHead = dv.getUint16(off + 8, true);
      const cid = dw3 & 0xffff, status = dw3 >>> 17;
      if (++this.cqHead === this.depth) { this.cqHead = 0; this.phase ^= 1; }
      n++;
      this.complete(cid, status, result);
    }
    if (n) {
      this.regs.pci.write32(0, this.cqDoorbell, this.cqHead);
      this.completions += n;
    }
    return n;
  }

  private complete(cid: number, status: number, result: number): void {
    const p = cid < this.pending.length ? this.pending[cid] : undefined;
    if (!p) {
      process.emitWarning(`nvme queue ${this.qid}: completion for cid ${cid}, which is not in flight (ignored)`,
        { type: 'DmaPoolWarning', code: 'DMAPOOL_NVME_STRAY_CQE' });
      return;
    }
    this.retire(cid, p);
    if (p.timedOut) return;
    if (status === 0) p.resolve(result);
    else p.reject(NvmeError.fromStatus(status, p.opcode, this.qid, cid, p.what));
  }

  private retire(cid: number, p: Pending): void {
    this.pending[cid] = undefined;
    this.freeCids[this.nFree++] = cid;
    try { p.release?.(); } finally {
      const w = this.waiting.shift();
      if (w) w();
    }
  }

  /** Rejects (ETIMEDOUT) commands past their deadline; their slots and PRP lists stay held until their completion. */
  expire(now: number): void {
    for (let cid = 0; cid < this.pending.length; cid++) {
      const p = this.pending[cid];
      if (!p || p.timedOut || p.deadline > now) continue;
      p.timedOut = true;
      p.reject(new NvmeError('ETIMEDOUT', `${p.what} (opcode 0x${p.opcode.toString(16).padStart(2, '0')}, queue ${this.qid}, cid ${cid}) ` +
        `did not complete in time`, undefined, p.opcode, this.qid, cid,
        'its PRP lists and buffer stay reserved until it completes or the controller is disabled (close)'));
    }
  }

  /**
   * After the controller is disabled (it no longer touches queue or data memory): fails what is
   * still in flight with `code` and releases every slot and PRP list.
   */
  abandon(code: string, why: string): void {
    for (let cid = 0; cid < this.pending.length; cid++) {
      const p = this.pending[cid];
      if (!p) continue;
      this.retire(cid, p);
      if (!p.timedOut) p.reject(new NvmeError(code, `${p.what}: ${why}`, undefined, p.opcode, this.qid, cid));
    }
    for (const w of this.waiting.splice(0)) w();
  }

  /** Frees both rings (the controller must no longer use them). */
  free(): void {
    this.sq.free();
    this.cq.free();
  }
}
