/**
 * A userspace NVMe driver over dmapool: `const nvme = await Nvme.open('vfio:BDF')`,
 * `await nvme.write(lba, data)`, `const bytes = await nvme.read(lba, blocks)`, `await nvme.close()`.
 *
 * Memory, the way Linux's nvme driver takes it: the admin and I/O queue rings and the data
 * buffers are coherent DMA memory from the device's provider (dma_alloc_coherent); PRP lists come
 * from two dma_pool pools on the device, "prp list page" (4096-byte blocks) and "prp list 256"
 * (256-byte blocks), allocated when a command is submitted and freed when it completes, so
 * `device.poolsReport()` shows the same lines as the kernel's `pools` file for the same I/O.
 */
import { openDevice } from '../../open';
import type { Device } from '../../device';
import { DmaPoolError } from '../../errors';
import type { DmaPool } from '../../pool';
import type { PciAccess } from '../../vfio/pci-access';
import { DmaBuffer } from './buffer';
import {
  ADMIN_CREATE_CQ, ADMIN_CREATE_SQ, ADMIN_DELETE_CQ, ADMIN_DELETE_SQ, ADMIN_IDENTIFY, ADMIN_SET_FEATURES, CNS_ACTIVE_NSIDS,
  CNS_CONTROLLER, CNS_NAMESPACE, FEAT_NUM_QUEUES, IdentifyController, IdentifyNamespace, NVM_FLUSH, NVM_READ, NVM_WRITE,
  parseIdentifyController, parseIdentifyNamespace, rwSqe, Sqe,
} from './commands';
import { buildPrps, CTRL_PAGE, freePrps, PRP_PAGE_POOL, PRP_SMALL_POOL, PrpPools, Prps } from './prp';
import { Pending, QueuePair } from './queue';
import { Registers } from './registers';
import { NvmeError } from './status';

export interface NvmeOptions {
  /** Use this already opened device (vfio:) instead of opening `spec`; close() then leaves it open. */
  device?: Device;
  /** The controller's PCI address when the device has several functions (default: its first). */
  bdf?: string;
  /** Namespace to use (default: the first active one). */
  nsid?: number;
  /** I/O queue pairs (default 1). */
  queues?: number;
  /** Entries per I/O queue (default 64, at most CAP.MQES + 1); depth − 1 commands can be in flight per queue. */
  queueDepth?: number;
  /** Per-command timeout in ms (default 30000). A timed-out command is rejected with ETIMEDOUT. */
  timeoutMs?: number;
  /** Largest transfer of one command in bytes (default: the controller's MDTS, at most 4 MiB). Larger I/O is split. */
  maxTransfer?: number;
  /**
   * How completions are noticed: 'poll' (default) reaps the completion queues on every turn of the
   * event loop while commands are in flight (and on poll()); 'interrupt' waits on one MSI-X vector
   * per completion queue.
   */
  completion?: 'poll' | 'interrupt';
  /** Measure the time each I/O spends in the PRP pools (alloc + free); see `poolTime`. */
  accounting?: boolean;
}

/** Time spent in the PRP pools, for the share of an I/O that is pool work (`dmapool nvme bench`). */
export interface PoolTime {
  /** Commands that needed a PRP list. */
  listCommands: number;
  /** All commands with a data pointer. */
  commands: number;
  /** Milliseconds in dma_pool alloc (with PRP list building) and free. */
  allocMs: number;
  freeMs: number;
  /** Per command with a data pointer, in completion order: ms in the pools (alloc + list building + free; 0 without a list). */
  samples: number[];
}

/** The interrupt API of lib/irq.ts, as this driver uses it (MSI-X: one vector per completion queue). */
interface IrqVector { readonly index: number; wait(signal?: AbortSignal): Promise<number>; poll(): number }
interface IrqSet { readonly vectors: readonly IrqVector[]; close(): void }
interface IrqPci {
  irqInfo?(kind: 'msix'): { count: number; flags: number };
  enableInterrupts?(kind: 'msix', count?: number): IrqSet;
}

const ADMIN_DEPTH = 32;
const DEFAULT_DEPTH = 64;

/** A transfer of `blocks` blocks at `lba` from/to `buf` at `offset`, split at the controller's limit. */
interface Piece { lba: number; blocks: number; dma: number; bytes: number }

export class Nvme {
  /** Identify Controller. */
  controller!: IdentifyController;
  /** Identify Namespace of the namespace in use. */
  namespace!: IdentifyNamespace;
  /** The two PRP list pools, created on the device like the kernel's. */
  readonly prpPools: { page: DmaPool; small: DmaPool };
  /** Bytes per command at most (MDTS, or maxTransfer). */
  maxTransfer = 0;
  readonly poolTime: PoolTime = { listCommands: 0, commands: 0, allocMs: 0, freeMs: 0, samples: [] };
  readonly regs: Registers;
  readonly admin: QueuePair;
  readonly ioQueues: QueuePair[] = [];
  private readonly pools: PrpPools;
  private readonly timeoutMs: number;
  private readonly accounting: boolean;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private pollScheduled = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly bounce = new Map<number, DmaBuffer[]>();
  private readonly buffers = new Set<DmaBuffer>();
  private nextQueue = 0;
  /** Interrupt mode: the MSI-X vectors (vector 0: admin CQ, vector i: I/O CQ i). */
  private irqs: IrqSet | undefined;
  /** Per queue id: a wait loop on its vector is running (only while it has commands in flight). */
  private readonly irqLoops = new Set<number>();
  /** How completions are noticed. */
  readonly completion: 'poll' | 'interrupt';
  /** Interrupt mode: wake-ups of the per-queue wait loops (each followed by a reap). */
  irqWakeups = 0;

  /**
   * Opens the NVMe controller behind `spec` (e.g. 'vfio:0000:00:04.0'): resets and enables it,
   * identifies controller and namespace, and creates the I/O queue pairs.
   */
  static async open(spec: string, opts: NvmeOptions = {}): Promise<Nvme> {
    const own = opts.device === undefined;
    const device = opts.device ?? openDevice(spec);
    let nvme: Nvme | undefined;
    try {
      if (device.kind !== 'vfio')
        throw new DmaPoolError('ENODEV', `nvme needs a vfio: device (an IOMMU domain the controller DMAs into), got ${device.kind}`,
          'bind the controller to vfio-pci: dmapool bind <BDF> --driver vfio-pci');
      nvme = new Nvme(device, device.pci(opts.bdf), own, opts);
      await nvme.init(opts);
      return nvme;
    } catch (e) {
      if (nvme) nvme.closeSync();
      else if (own) device.close();
      throw e;
    }
  }

  private constructor(readonly device: Device, readonly pci: PciAccess, private readonly ownsDevice: boolean, opts: NvmeOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30000;
    this.accounting = opts.accounting === true;
    if (opts.completion !== undefined && opts.completion !== 'poll' && opts.completion !== 'interrupt')
      throw new DmaPoolError('EINVAL', `completion must be 'poll' or 'interrupt', got ${String(opts.completion)}`);
    this.completion = opts.completion ?? 'poll';
    const ipci = pci as unknown as IrqPci;
    if (this.completion === 'interrupt' && (typeof ipci.enableInterrupts !== 'function' || typeof ipci.irqInfo !== 'function'))
      throw new DmaPoolError('EOPNOTSUPP', 'interrupt-driven completion needs the interrupt support of lib/irq.ts, which this build lacks',
        "use completion: 'poll'");
    const cls = pci.configRead32(0x08) >>> 8;
    if (cls !== 0x010802)
      throw new DmaPoolError('ENODEV', `${pci.bdf} is not an NVMe controller (class 0x${cls.toString(16).padStart(6, '0')})`);
    pci.enableBusMaster();
    this.regs = new Registers(pci);
    const cap = this.regs.cap;
    if (!cap.nvmCommandSet) throw new DmaPoolError('EOPNOTSUPP', `${pci.bdf}: the controller does not support the NVM command set`);
    if (cap.pageMin > CTRL_PAGE || cap.pageMax < CTRL_PAGE)
      throw new DmaPoolError('EOPNOTSUPP', `${pci.bdf}: the controller does not support 4 KiB pages (MPS ${cap.pageMin}..${cap.pageMax})`);
    this.regs.disable();
    if (this.completion === 'interrupt') {
      const want = 1 + (opts.queues ?? 1);
      const have = ipci.irqInfo!('msix').count;
      if (have < want)
        throw new DmaPoolError('EOPNOTSUPP', `${pci.bdf}: ${have} MSI-X vectors, ${want} needed (admin + one per I/O queue)`, "use completion: 'poll'");
      this.irqs = ipci.enableInterrupts!('msix', want);
    }
    const page = device.createPool(PRP_PAGE_POOL, CTRL_PAGE, { align: CTRL_PAGE });
    const small = device.createPool(PRP_SMALL_POOL, 256, { align: 256 });
    this.prpPools = { page, small };
    this.pools = { page, small };
    this.admin = new QueuePair(this.regs, device.provider, 0, ADMIN_DEPTH);
    this.regs.enable(this.admin.sq.dma, this.admin.cq.dma, ADMIN_DEPTH);
    this.sweeper = setInterval(() => this.sweep(), 100);
    this.sweeper.unref();
  }

  private async init(opts: NvmeOptions): Promise<void> {
    const id = this.allocBuffer(CTRL_PAGE);
    try {
      await this.adminCmd({ opcode: ADMIN_IDENTIFY, prp1: id.dma, cdw10: CNS_CONTROLLER }, 'IDENTIFY controller');
      this.controller = parseIdentifyController(id.bytes.slice());
      const mdts = this.controller.mdts ? CTRL_PAGE * 2 ** this.controller.mdts : Infinity;
      const want = opts.maxTransfer ?? 4 << 20;
      if (!Number.isSafeInteger(want) || want < CTRL_PAGE) throw new DmaPoolError('EINVAL', `maxTransfer must be an integer ≥ ${CTRL_PAGE}, got ${want}`);
      this.maxTransfer = Math.min(want, mdts);
      let nsid = opts.nsid;
      if (nsid === undefined) {
        id.bytes.fill(0);
        await this.adminCmd({ opcode: ADMIN_IDENTIFY, prp1: id.dma, cdw10: CNS_ACTIVE_NSIDS }, 'IDENTIFY active namespaces');
        nsid = id.view.getUint32(0, true);
        if (nsid === 0) throw new DmaPoolError('ENODEV', `${this.pci.bdf}: the controller has no active namespace`);
      }
      id.bytes.fill(0);
      await this.adminCmd({ opcode: ADMIN_IDENTIFY, nsid, prp1: id.dma, cdw10: CNS_NAMESPACE }, `IDENTIFY namespace ${nsid}`);
      this.namespace = parseIdentifyNamespace(nsid, id.bytes.slice());
      if (this.namespace.blocks === 0) throw new DmaPoolError('ENODEV', `${this.pci.bdf}: namespace ${nsid} is not active`);
      if (this.namespace.metadataSize !== 0)
        throw new DmaPoolError('EOPNOTSUPP', `namespace ${nsid} is formatted with ${this.namespace.metadataSize} metadata bytes per block`);
    } finally {
      id.free();
      this.buffers.delete(id);
    }
    const nq = opts.queues ?? 1;
    const depth = opts.queueDepth ?? DEFAULT_DEPTH;
    if (!Number.isInteger(nq) || nq < 1 || nq > 64) throw new DmaPoolError('EINVAL', `queues must be an integer from 1 to 64, got ${nq}`);
    if (!Number.isInteger(depth) || depth < 2 || depth > Math.min(this.regs.cap.maxQueueEntries, 4096))
      throw new DmaPoolError('EINVAL', `queueDepth must be an integer from 2 to ${Math.min(this.regs.cap.maxQueueEntries, 4096)}, got ${depth}`);
    const got = await this.adminCmd({ opcode: ADMIN_SET_FEATURES, cdw10: FEAT_NUM_QUEUES, cdw11: ((nq - 1) << 16) | (nq - 1) },
      'SET FEATURES number of queues');
    const granted = Math.min((got & 0xffff) + 1, (got >>> 16) + 1);
    if (granted < nq) throw new DmaPoolError('ENOSPC', `${this.pci.bdf}: the controller grants ${granted} I/O queue pairs, ${nq} asked`);
    for (let qid = 1; qid <= nq; qid++) {
      const q = new QueuePair(this.regs, this.device.provider, qid, depth);
      try {
        // physically contiguous (PC = 1); interrupts enabled (IEN) on MSI-X vector `qid` in interrupt mode,
        // off when polling the phase bit
        const ien = this.irqs ? (qid << 16) | 2 : 0;
        await this.adminCmd({ opcode: ADMIN_CREATE_CQ, prp1: q.cq.dma, cdw10: ((depth - 1) << 16) | qid, cdw11: ien | 1 }, `CREATE I/O CQ ${qid}`);
        await this.adminCmd({ opcode: ADMIN_CREATE_SQ, prp1: q.sq.dma, cdw10: ((depth - 1) << 16) | qid, cdw11: (qid << 16) | 1 },
          `CREATE I/O SQ ${qid}`);
      } catch (e) {
        this.ioQueues.push(q); // torn down by close with the rest
        throw e;
      }
      this.ioQueues.push(q);
    }
  }

  /** Logical block size in bytes. */
  get blockSize(): number {
    return this.namespace.blockSize;
  }

  /** Namespace size in blocks. */
  get blocks(): number {
    return this.namespace.blocks;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new DmaPoolError('EBADF', `nvme ${this.pci.bdf} is ${this.state}`);
  }

  /** `bytes` of zeroed coherent DMA memory for readInto/writeFrom (free it with buf.free(), or it is freed at close). */
  allocBuffer(bytes: number): DmaBuffer {
    this.checkOpen();
    const b = new DmaBuffer(this.device.provider, bytes);
    this.buffers.add(b);
    return b;
  }

  // ---- commands ------------------------------------------------------------------------------

  private adminCmd(c: Omit<Sqe, 'cid'>, what: string): Promise<number> {
    return this.exec(this.admin, c, what, undefined);
  }

  /**
   * Runs one command on `q`: waits for a free slot, builds the PRPs (from the pools) once it has
   * one, submits, and settles when the completion arrives (or rejects ETIMEDOUT).
   */
  private async exec(q: QueuePair, c: Omit<Sqe, 'cid'>, what: string, data: { dma: number; bytes: number } | undefined): Promise<number> {
    while (!q.hasSlot) {
      this.checkOpen();
      if (!this.irqs) this.kick();
      await q.waitSlot();
    }
    if (this.state === 'closed' || (this.state === 'closing' && q !== this.admin)) this.checkOpen();
    let prps: Prps | undefined;
    let allocMs = 0;
    if (data) {
      const t0 = this.accounting ? performance.now() : 0;
      prps = buildPrps(this.pools, data.dma, data.bytes);
      if (this.accounting) {
        this.poolTime.commands++;
        if (prps.lists.length) {
          allocMs = performance.now() - t0;
          this.poolTime.allocMs += allocMs;
          this.poolTime.listCommands++;
        } else this.poolTime.samples.push(0); // PRP1 [+ PRP2]: no pool call
      }
      c.prp1 = prps.prp1;
      c.prp2 = prps.prp2;
    }
    return new Promise<number>((resolve, reject) => {
      const p: Pending = { opcode: c.opcode, what, resolve, reject, deadline: Date.now() + this.timeoutMs };
      if (prps && prps.lists.length) {
        const held = prps;
        p.release = () => {
          if (!this.accounting) return freePrps(this.pools, held);
          const t0 = performance.now();
          freePrps(this.pools, held);
          const freeMs = performance.now() - t0;
          this.poolTime.freeMs += freeMs;
          this.poolTime.samples.push(allocMs + freeMs);
        };
      }
      q.submit(c, p);
      if (this.irqs) this.irqLoop(q);
      else this.kick();
    });
  }

  /**
   * A raw command (passthrough, like the kernel's NVME_IOCTL_IO_CMD / ADMIN_CMD): the caller
   * supplies the whole entry, data pointer included, and owns the memory it names — which must lie
   * in this device's IOMMU domain, the only memory the controller can reach. Resolves with
   * completion dword 0; rejects with NvmeError.
   */
  passthru(c: Omit<Sqe, 'cid'>, opts: { admin?: boolean; queue?: number } = {}): Promise<number> {
    this.checkOpen();
    const q = opts.admin ? this.admin : this.ioQueues[opts.queue ?? 0];
    if (!q) throw new DmaPoolError('EINVAL', `no I/O queue ${opts.queue}`);
    return this.exec(q, { ...c }, `passthru opcode 0x${c.opcode.toString(16)}`, undefined);
  }

  private pickQueue(): QueuePair {
    const qs = this.ioQueues;
    if (qs.length === 1) return qs[0];
    let best = qs[this.nextQueue++ % qs.length];
    for (const q of qs) if (q.inFlight < best.inFlight) best = q;
    return best;
  }

  private checkRange(lba: number, blocks: number, op: string): void {
    if (!Number.isSafeInteger(lba) || lba < 0 || !Number.isSafeInteger(blocks) || blocks < 1 || lba + blocks > this.blocks)
      throw new DmaPoolError('EINVAL', `${op}: blocks [${lba}, ${lba}+${blocks}) are outside namespace ${this.namespace.nsid} (${this.blocks} blocks)`);
  }

  private checkBuffer(buf: DmaBuffer, offset: number, bytes: number, op: string): void {
    if (!(buf instanceof DmaBuffer) || buf.isFreed || !this.buffers.has(buf))
      throw new DmaPoolError('EINVAL', `${op}: the buffer is not a live DmaBuffer of this controller (allocBuffer())`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + bytes > buf.size)
      throw new DmaPoolError('EINVAL', `${op}: offset ${offset} must be a multiple of 4 and [offset, offset+${bytes}) inside the ${buf.size}-byte buffer`);
  }

  /** Splits at maxTransfer bytes and pages (keeping whole blocks) and runs the pieces concurrently; rejects with the first error once all settled. */
  private async rw(opcode: number, lba: number, blocks: number, buf: DmaBuffer, offset: number): Promise<void> {
    const bs = this.blockSize;
    const pieces: Piece[] = [];
    for (let done = 0; done < blocks;) {
      // at most maxTransfer bytes AND at most maxTransfer / 4 KiB pages: a piece that starts inside a
      // page gives up that offset (QEMU's model fails a command spanning more than 1024 pages)
      const dma = buf.dma + offset + done * bs;
      const n = Math.min(Math.max(1, Math.floor((this.maxTransfer - (dma % CTRL_PAGE)) / bs)), blocks - done);
      pieces.push({ lba: lba + done, blocks: n, dma, bytes: n * bs });
      done += n;
    }
    const name = opcode === NVM_READ ? 'READ' : 'WRITE';
    const nsid = this.namespace.nsid;
    const runs = pieces.map((p) => this.exec(this.pickQueue(), rwSqe(opcode, 0, nsid, p.lba, p.blocks, 0, 0),
      `${name} lba ${p.lba} × ${p.blocks}`, p));
    if (runs.length === 1) { await runs[0]; return; }
    const settled = await Promise.allSettled(runs);
    const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;
  }

  /** Reads `blocks` blocks at `lba` into `buf` at byte `offset` (a multiple of 4; any page offset). */
  async readInto(lba: number, blocks: number, buf: DmaBuffer, offset = 0): Promise<void> {
    this.checkOpen();
    this.checkRange(lba, blocks, 'readInto');
    this.checkBuffer(buf, offset, blocks * this.blockSize, 'readInto');
    await this.rw(NVM_READ, lba, blocks, buf, offset);
  }

  /** Writes `blocks` blocks at `lba` from `buf` at byte `offset` (a multiple of 4; any page offset). */
  async writeFrom(lba: number, blocks: number, buf: DmaBuffer, offset = 0): Promise<void> {
    this.checkOpen();
    this.checkRange(lba, blocks, 'writeFrom');
    this.checkBuffer(buf, offset, blocks * this.blockSize, 'writeFrom');
    await this.rw(NVM_WRITE, lba, blocks, buf, offset);
  }

  /** Reads `blocks` blocks at `lba` into a new Uint8Array (through a reused coherent bounce buffer). */
  async read(lba: number, blocks: number): Promise<Uint8Array> {
    this.checkOpen();
    this.checkRange(lba, blocks, 'read');
    const bytes = blocks * this.blockSize;
    const b = this.takeBounce(bytes);
    try {
      await this.rw(NVM_READ, lba, blocks, b, 0);
      return b.bytes.slice(0, bytes);
    } finally {
      this.giveBounce(b);
    }
  }

  /** Writes `data` (a whole number of blocks) at `lba`. */
  async write(lba: number, data: Uint8Array): Promise<void> {
    this.checkOpen();
    if (!(data instanceof Uint8Array) || data.length === 0 || data.length % this.blockSize !== 0)
      throw new DmaPoolError('EINVAL', `write: data must be a Uint8Array of a whole number of ${this.blockSize}-byte blocks`);
    const blocks = data.length / this.blockSize;
    this.checkRange(lba, blocks, 'write');
    const b = this.takeBounce(data.length);
    try {
      b.bytes.set(data);
      await this.rw(NVM_WRITE, lba, blocks, b, 0);
    } finally {
      this.giveBounce(b);
    }
  }

  /** FLUSH: the controller commits its volatile write cache to media. */
  async flush(): Promise<void> {
    this.checkOpen();
    await this.exec(this.ioQueues[0], { opcode: NVM_FLUSH, nsid: this.namespace.nsid }, 'FLUSH', undefined);
  }

  private takeBounce(bytes: number): DmaBuffer {
    const cls = Math.max(CTRL_PAGE, 2 ** Math.ceil(Math.log2(bytes)));
    const list = this.bounce.get(cls);
    const b = list?.pop();
    if (b) return b;
    return this.allocBuffer(cls);
  }

  private giveBounce(b: DmaBuffer): void {
    if (b.isFreed) return;
    if (this.state !== 'open') { b.free(); this.buffers.delete(b); return; }
    let list = this.bounce.get(b.size);
    if (!list) this.bounce.set(b.size, (list = []));
    list.push(b);
  }

  // ---- completion ----------------------------------------------------------------------------

  /** Reaps every queue's completions now (a busy-polling caller may call it); returns how many. */
  poll(): number {
    if (this.state === 'closed') return 0;
    let n = this.admin.reap();
    for (const q of this.ioQueues) n += q.reap();
    return n;
  }

  private inFlight(): number {
    let n = this.admin.inFlight;
    for (const q of this.ioQueues) n += q.inFlight;
    return n;
  }

  /** Polling mode: while commands are in flight, reap on every turn of the event loop. */
  private kick(): void {
    if (this.pollScheduled || this.state === 'closed') return;
    this.pollScheduled = true;
    setImmediate(this.pollTick);
  }

  private readonly pollTick = (): void => {
    this.pollScheduled = false;
    this.poll();
    if (this.inFlight() > 0) this.kick();
  };

  /**
   * Interrupt mode: while `q` has commands in flight, wait on its MSI-X vector (an eventfd the
   * kernel signals, watched by a libuv poll handle — no thread), then reap. The loop ends when the
   * queue is idle, so an idle driver keeps no handle active. Each completion the controller posts
   * raises the vector again, so nothing posted after a reap is missed.
   */
  private irqLoop(q: QueuePair): void {
    if (this.irqLoops.has(q.qid) || !this.irqs) return;
    const v = this.irqs.vectors[q.qid];
    this.irqLoops.add(q.qid);
    const run = async () => {
      try {
        while (!this.isClosed && q.inFlight > 0) {
          await v.wait();
          if (this.isClosed) break;
          this.irqWakeups++;
          q.reap();
        }
      } catch (e) {
        if (!this.isClosed) process.emitWarning(`nvme ${this.pci.bdf}: interrupt wait on queue ${q.qid} failed: ${(e as Error).message}`,
          { type: 'DmaPoolWarning', code: 'DMAPOOL_NVME_IRQ' });
      } finally {
        this.irqLoops.delete(q.qid);
      }
      if (!this.isClosed && q.inFlight > 0) this.irqLoop(q); // a command came in as the loop ended
    };
    void run();
  }

  private sweep(): void {
    const now = Date.now();
    this.admin.expire(now);
    for (const q of this.ioQueues) q.expire(now);
  }

  // ---- teardown ------------------------------------------------------------------------------

  /**
   * Orderly teardown: waits (bounded by the command timeout) for commands in flight, deletes the
   * I/O queues, shuts the controller down (CC.SHN, CSTS.SHST), disables it (CC.EN = 0: it no longer
   * touches host memory), clears bus mastering, then frees queues, buffers and PRP pools and — when
   * Nvme.open opened it — closes the device. Commands still in flight are rejected (EIO). Twice is harmless.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      this.state = 'closing';
      const deadline = Date.now() + this.timeoutMs;
      while (this.inFlight() > 0 && Date.now() < deadline) {
        this.poll();
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    this.closeSync();
  }

  /** close() without waiting on the event loop (in-flight commands are given a bounded busy poll). */
  closeSync(): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    const busyWait = (ms: number, done: () => boolean): boolean => {
      const end = Date.now() + ms;
      while (!done()) { this.poll(); if (Date.now() > end) return false; }
      return true;
    };
    const ioIdle = () => this.ioQueues.every((q) => q.inFlight === 0);
    const errors: unknown[] = [];
    const step = (f: () => void) => { try { f(); } catch (e) { errors.push(e); } };
    let alive = true;
    step(() => {
      busyWait(this.timeoutMs, ioIdle);
      // delete I/O queues, SQs before their CQs (the admin queue keeps working meanwhile)
      for (const q of [...this.ioQueues].reverse()) {
        for (const [op, name] of [[ADMIN_DELETE_SQ, 'SQ'], [ADMIN_DELETE_CQ, 'CQ']] as const) {
          if (!alive || !this.admin.hasSlot) { alive = false; break; }
          let done = false;
          this.admin.submit({ opcode: op, cdw10: q.qid }, {
            opcode: op, what: `DELETE I/O ${name} ${q.qid}`, deadline: Date.now() + this.timeoutMs,
            resolve: () => { done = true; }, reject: () => { done = true; },
          });
          if (!busyWait(Math.min(this.timeoutMs, 5000), () => done)) alive = false;
        }
      }
    });
    step(() => this.regs.shutdown(Math.max(this.regs.cap.timeoutMs, 5000)));
    step(() => this.regs.disable());
    step(() => this.pci.disableBusMaster());
    if (this.irqs) { const irqs = this.irqs; this.irqs = undefined; step(() => irqs.close()); }
    // The controller is disabled: nothing in flight can touch memory any more.
    this.state = 'closed';
    clearInterval(this.sweeper);
    for (const q of [this.admin, ...this.ioQueues]) step(() => q.abandon('EIO', 'the controller was closed before the command completed'));
    for (const b of this.buffers) step(() => b.free());
    this.buffers.clear();
    this.bounce.clear();
    for (const q of [this.admin, ...this.ioQueues]) step(() => q.free());
    step(() => this.prpPools.small.destroy());
    step(() => this.prpPools.page.destroy());
    if (this.ownsDevice) step(() => this.device.close());
    if (errors.length) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** One line: the controller, namespace and queues. */
  describe(): string {
    const c = this.controller, ns = this.namespace;
    return `${this.pci.bdf}: ${c.model} (serial ${c.serial}, firmware ${c.firmware}, NVMe ${c.version}), namespace ${ns.nsid}: ` +
      `${ns.blocks} × ${ns.blockSize} bytes, ${this.ioQueues.length} I/O queue(s) of ${this.ioQueues[0]?.depth ?? 0}, ` +
      `max transfer ${this.maxTransfer} bytes`;
  }
}

export { NvmeError };
