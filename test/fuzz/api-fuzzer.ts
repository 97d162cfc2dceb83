/**
 * The public-API fuzzer of the safety issue: random operations over several devices and pools
 * interleaved (alloc, zalloc, free, writes through views, destroy, close, bad addresses, detach
 * attempts) checked against a model, with a byte pattern in every live block so any write that
 * lands in the wrong place — another block, another pool, another device — is seen.
 *
 * Only the public API is used (openDevice, Device, DmaPool, DmaPoolError); the model predicts
 * every result from what it saw:
 *
 * - a page of a pool is learned from the first block alloc() returns on it: chunks are aligned
 *   to their footprint (next power of two ≥ max(allocation, PAGE_SIZE), README "Providers"), so
 *   page base = floor(dma / footprint) · footprint and the page covers [base, base + allocation);
 * - an address is then predicted: not a number → EINVAL; in no page → EFAULT; in a page but not
 *   at a block start of the layout → EINVAL; a block start → its state (live: ok, free: EALREADY).
 *
 * The bulk and DataView API goes through the same checks: each block allocMany()/zallocMany()
 * returns is recorded and verified exactly as an alloc() result (recordAlloc, finishAlloc — a new
 * page is clean but for the batch's own blocks on it), each block freeMany() frees as a free()
 * (recordFree); a hostile batch (one double, foreign, misaligned, repeated or non-number entry, a
 * hole, a Proxy or getter that answers differently on a second read, throws, or frees a block of
 * the batch while being read) must throw the predicted code with no block freed; dataView() reads
 * and writes (little-endian fields up to the block's edges) must agree with view() byte for byte,
 * and dmaToBigInt/dmaFromBigInt must round-trip every live address.
 *
 * A violation is any broken guarantee; it is counted by kind, the first few of each kind are kept
 * with the last operations that led to it, and the run goes on (so one run shows every kind).
 * DMAPOOL_FUZZ_SEED=<seed> DMAPOOL_FUZZ_API_OPS=<op number> replays up to a violation (the op
 * sequence depends only on the seed; DMA addresses may differ where the GC decides when a
 * quarantined page is reused, and with them which random addresses hit a block).
 */
import { ReadableStream } from 'node:stream/web';
import { MessageChannel } from 'node:worker_threads';
import type { ReadableByteStreamController } from 'node:stream/web';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Device, DmaPool, DmaPoolError, dmaFromBigInt, dmaToBigInt, openDevice } from '../../lib';
import type { IndexKind, PoolOptions } from '../../lib';
import { rng } from '../../lib/rng';

export interface ApiFuzzConfig {
  seed: number;
  /** Operations to run (each API call the fuzzer makes on purpose counts as one). */
  ops: number;
  /** Full sweep (every block of every pool of every device, pool.check(), device lists) period, in steps. */
  sweepEvery?: number;
  /** Random live blocks verified after every step. */
  samplePerOp?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Operation kinds not to run (e.g. ['detach-stream', 'detach-clone'] while bisecting a failure). */
  skip?: readonly string[];
  /**
   * Self-test of the checks: every `sabotageEvery` steps one byte of a random live block is
   * changed behind the model's back; each such block must then be reported as 'pattern-changed'
   * (notes count planted and detected ones).
   */
  sabotageEvery?: number;
}

export interface ViolationExample {
  kind: string;
  op: number;
  detail: string;
  /** The last operations before it, oldest first. */
  trail: string[];
}

export interface ApiFuzzResult {
  seed: number;
  ops: number;
  steps: number;
  elapsedMs: number;
  opsByKind: Record<string, number>;
  errorsByCode: Record<string, number>;
  violations: number;
  violationsByKind: Record<string, number>;
  examples: ViolationExample[];
  /** Observations that are not violations (how JS detach attempts behaved, quarantine, …). */
  notes: Record<string, number>;
}

/** The codes the public API may throw at a pool/device user (README "Errors"). */
const API_CODES = new Set(['EINVAL', 'EFAULT', 'EALREADY', 'EBADF', 'EBUSY', 'ENOMEM', 'ERANGE']);
const POISON_FREED = 0xa7;
const POISON_ALLOCATED = 0xa9;
const MAX_DEVICES = 4;
const MAX_POOLS_PER_DEVICE = 7;
const EXAMPLES_PER_KIND = 3;
const TRAIL = 24;

// ---------------------------------------------------------------------------------------------
// Byte patterns: block with id `id` holds T[o .. o + size) with its first 4 bytes replaced by
// the id (little endian); o = a hash of the id. Distinct live blocks have distinct ids.

const TABLE_SPAN = 1 << 16;

function patternOffset(id: number): number {
  return Math.imul(id, 0x9e3779b1) >>> 16;
}

// ---------------------------------------------------------------------------------------------
// The model.

interface Block {
  dma: number;
  id: number;
  /** The view obtained at alloc (or a later one): must stay attached while the pool lives. */
  view: Uint8Array;
  /** DMA address of the pool page the block is on. */
  page: number;
  pool: PoolM;
}

interface Shape {
  requested: number;
  opts: PoolOptions;
}

class PoolM {
  readonly size: number;
  readonly allocation: number;
  readonly footprint: number;
  readonly align: number;
  /** The boundary blocks must not cross (the allocation when none was given). */
  readonly boundary: number;
  readonly offsets: Set<number>;
  readonly blocksPerPage: number;
  readonly maxLive: number;
  readonly debug: boolean;
  readonly pages = new Set<number>();
  readonly live: Block[] = [];
  /** dma → index in `live`. */
  readonly pos = new Map<number, number>();
  /** Recently freed block addresses (some may be live again: check `pos`). */
  readonly freed: number[] = [];
  /** Debug pools: views of freed blocks, which must read 0xa7 until allocated again. */
  readonly poisoned = new Map<number, Uint8Array>();
  /** A sample of every view handed out: all must read byteLength 0 after destroy/close. */
  readonly kept: Uint8Array[] = [];
  /** A sample of the DataViews handed out: detached after destroy/close too. */
  readonly keptDv: DataView[] = [];
  /** The last allocMany() result and its blocks (freeMany() of it as it came, while all are live). */
  batch: { addrs: Float64Array; blocks: Block[] } | undefined;
  /**
   * Pages on which JS detached a view → the view clock just before: views of that page made up to
   * then may read byteLength 0 (they share the page's buffer); later ones must not.
   */
  readonly detachedPages = new Map<number, number>();
  /** Block addresses seen, for use-after-destroy. */
  readonly seen: number[] = [];
  mode: 'fill' | 'drain' | 'mixed' = 'mixed';
  destroyed = false;
  /** The model no longer knows this pool's state (after a violation that changed it). */
  tainted = false;

  constructor(readonly id: number, readonly dev: DevM, readonly pool: DmaPool, readonly shape: Shape, pageSize: number) {
    const o = shape.opts;
    this.align = o.align ? o.align : 1;
    // computed here from the create rules (README), not read back from the library
    this.size = Math.ceil(shape.requested / this.align) * this.align;
    this.allocation = Math.max(this.size, pageSize);
    let fp = 1;
    while (fp < this.allocation) fp *= 2;
    this.footprint = fp;
    this.boundary = o.boundary ? Math.min(o.boundary, this.allocation) : this.allocation;
    // the block starts of the layout: the library's geometry (the layout rules have their own tests)
    this.offsets = new Set(Array.from(pool.geometry.offsets));
    this.blocksPerPage = this.offsets.size;
    this.debug = o.debug === true;
    const maxPages = o.index === 'linear' ? 12 : 40;
    this.maxLive = Math.min(this.blocksPerPage * maxPages, 1500);
  }

  describe(): string {
    const o = this.shape.opts;
    return `pool#${this.id}(${this.pool.name}: size ${this.shape.requested}→${this.size}, align ${o.align ?? 0}, ` +
      `boundary ${o.boundary ?? 0}, ${o.index}, legacy ${!!o.legacyLayout}, debug ${!!o.debug}, dev#${this.dev.id})`;
  }
}

class DevM {
  /** Pools of the device, newest first (mirrors device.pools). */
  readonly pools: PoolM[] = [];
  /** PAGE_SIZE granule of a page of a live pool → that pool. */
  readonly granules = new Map<number, PoolM>();
  closed = false;
  constructor(readonly id: number, readonly dev: Device, readonly slabSize: number | undefined) {}
}

interface Escape {
  id: number;
  via: Via;
  pool: PoolM;
  page: number;
  /** The memory JS moved to a new ArrayBuffer: exactly the block's bytes (same offset/length as the view). */
  bytes: Uint8Array;
  /** The block it was taken from (while that allocation lives, writes through `bytes` are the block's). */
  block: Block;
  blockId: number;
  bornStep: number;
  scribbles: number;
}

/** A block an allocation call just returned, recorded in the model, before its contents are checked. */
interface NewBlock {
  b: Block;
  /** Its page offset. */
  off: number;
  /** The first block the model saw on its page. */
  fresh: boolean;
  /** view() of it worked (b.view is that view). */
  hasView: boolean;
}

type OpFn = () => void | Promise<void>;
/** How JS moved a view's memory away: ReadableStream enqueue, BYOB read, structuredClone / postMessage transfer. */
type Via = 'stream' | 'byob' | 'clone' | 'message';

function hex(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 && Number.isInteger(n) ? '0x' + n.toString(16)
    : typeof n === 'bigint' ? `${n}n` : typeof n === 'string' ? JSON.stringify(n) : String(n);
}

function errText(e: unknown): string {
  if (e instanceof DmaPoolError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** A garbage-collector handle when one can be had (for reclaiming quarantined pages), else undefined. */
function getGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = vm.runInNewContext('gc') as unknown;
    return typeof f === 'function' ? (f as () => void) : undefined;
  } catch {
    return undefined;
  }
}

export class ApiFuzzer {
  private readonly r: () => number;
  private readonly table: Uint8Array;
  private readonly sweepEvery: number;
  private readonly samplePerOp: number;
  private readonly log: (line: string) => void;
  private readonly gc = getGc();

  private devices: DevM[] = [];
  private closedDevices: DevM[] = [];
  /** Live, untainted pools of open devices (what ops pick from). */
  private active: PoolM[] = [];
  private graveyard: PoolM[] = [];
  private escapes: Escape[] = [];
  /** When each view was handed out (a clock counting views), to judge which a detach may have hit. */
  private readonly viewBorn = new WeakMap<Uint8Array, number>();
  private viewClock = 0;
  private errorChecks = 0;
  /** Blocks corrupted on purpose (sabotageEvery) and not yet reported. */
  private readonly sabotaged = new Set<Block>();

  private nextBlockId = 1;
  private nextPoolId = 1;
  private nextDevId = 1;
  private nextEscapeId = 1;
  private pageSize = 4096;

  private opCount = 0;
  private step = 0;
  private readonly opsByKind: Record<string, number> = {};
  private readonly errorsByCode: Record<string, number> = {};
  private readonly notes: Record<string, number> = {};
  private violationCount = 0;
  private readonly violationsByKind: Record<string, number> = {};
  private readonly examples: ViolationExample[] = [];
  private readonly trail: string[] = new Array<string>(TRAIL).fill('');
  private trailAt = 0;

  private readonly ops: { w: number; name: string; fn: OpFn }[];
  private readonly opTotal: number;

  constructor(private readonly cfg: ApiFuzzConfig) {
    this.r = rng(cfg.seed);
    this.sweepEvery = cfg.sweepEvery ?? 5000;
    this.samplePerOp = cfg.samplePerOp ?? 2;
    this.log = cfg.log ?? (() => {});
    this.table = new Uint8Array(TABLE_SPAN + 16384);
    for (let i = 0; i < this.table.length; i++) this.table[i] = (this.r() * 256) | 0;
    // weights per 10 000 steps (alloc and free 200 less than before the batch ops, which take and
    // return about as many blocks again: the CI time stays about what it was)
    this.ops = [
      { w: 2300, name: 'alloc', fn: () => this.opAlloc(false) },
      { w: 1000, name: 'zalloc', fn: () => this.opAlloc(true) },
      { w: 2700, name: 'free', fn: () => this.opFree() },
      { w: 700, name: 'write', fn: () => this.opWrite() },
      { w: 600, name: 'view', fn: () => this.opView() },
      { w: 300, name: 'double-free', fn: () => this.opDoubleFree() },
      { w: 150, name: 'view-free', fn: () => this.opViewFree() },
      { w: 1000, name: 'bad-address', fn: () => this.opBadAddress() },
      { w: 150, name: 'use-after-destroy', fn: () => this.opUseAfterDestroy() },
      { w: 60, name: 'use-after-close', fn: () => this.opUseAfterClose() },
      { w: 60, name: 'destroy-busy', fn: () => this.opDestroyBusy() },
      { w: 12, name: 'destroy', fn: () => this.opDestroy() },
      { w: 20, name: 'create', fn: () => this.opCreate() },
      { w: 30, name: 'create-bad', fn: () => this.opCreateBad() },
      { w: 20, name: 'close-busy', fn: () => this.opCloseBusy() },
      { w: 2, name: 'close', fn: () => this.opClose() },
      { w: 4, name: 'open', fn: () => this.opOpen() },
      { w: 15, name: 'detach-stream', fn: () => this.opDetachStream() },
      { w: 8, name: 'detach-byob', fn: () => this.opDetachByob() },
      { w: 4, name: 'detach-clone', fn: () => this.opDetachCopy('clone') },
      { w: 3, name: 'detach-message', fn: () => this.opDetachCopy('message') },
      { w: 40, name: 'escape-write', fn: () => this.opEscapeWrite() },
      { w: 8, name: 'escape-again', fn: () => this.opEscapeAgain() },
      { w: 8, name: 'scribble', fn: () => this.opScribble() },
      { w: 40, name: 'page-scribble', fn: () => this.opPageScribble() },
      { w: 100, name: 'mode', fn: () => this.opMode() },
      { w: 40, name: 'allocMany', fn: () => this.opAllocMany(false) },
      { w: 20, name: 'zallocMany', fn: () => this.opAllocMany(true) },
      { w: 15, name: 'allocMany-bad', fn: () => this.opAllocManyBad() },
      { w: 60, name: 'freeMany', fn: () => this.opFreeMany() },
      { w: 30, name: 'freeMany-bad', fn: () => this.opFreeManyBad() },
      { w: 50, name: 'dataView', fn: () => this.opDataView() },
      { w: 25, name: 'dataView-bad', fn: () => this.opDataViewBad() },
      { w: 15, name: 'dma-bigint', fn: () => this.opBigInt() },
    ];
    for (const o of this.ops) if (cfg.skip?.includes(o.name)) o.w = 0;
    this.opTotal = this.ops.reduce((s, o) => s + o.w, 0);
  }

  // ------------------------------------------------------------------ randomness, accounting

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  private pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }

  private count(kind: string): void {
    this.opCount++;
    this.opsByKind[kind] = (this.opsByKind[kind] ?? 0) + 1;
  }

  private note(what: string, n = 1): void {
    this.notes[what] = (this.notes[what] ?? 0) + n;
  }

  private trace(s: string): void {
    this.trail[this.trailAt] = `#${this.opCount} ${s}`;
    this.trailAt = (this.trailAt + 1) % TRAIL;
  }

  private violation(kind: string, detail: string): void {
    this.violationCount++;
    const n = (this.violationsByKind[kind] = (this.violationsByKind[kind] ?? 0) + 1);
    if (n <= EXAMPLES_PER_KIND) {
      const trail: string[] = [];
      for (let i = 0; i < TRAIL; i++) {
        const t = this.trail[(this.trailAt + i) % TRAIL];
        if (t) trail.push(t);
      }
      this.examples.push({ kind, op: this.opCount, detail, trail });
      if (n === 1) this.log(`VIOLATION ${kind} at op ${this.opCount} (seed ${this.cfg.seed}): ${detail}`);
    }
  }

  private countError(e: unknown): void {
    const code = e instanceof DmaPoolError ? e.code : `non-DmaPoolError ${(e as Error)?.name ?? typeof e}`;
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
  }

  // ------------------------------------------------------------------ patterns and views

  private writePattern(v: Uint8Array, id: number): void {
    const o = patternOffset(id);
    const n = v.length;
    v.set(this.table.subarray(o, o + n));
    for (let i = 0; i < 4 && i < n; i++) v[i] = (id >>> (8 * i)) & 0xff;
  }

  /** Index of the first byte of `v` that is not block `id`'s pattern, or -1. */
  private mismatch(v: Uint8Array, id: number): number {
    const o = patternOffset(id);
    const n = v.length;
    const t = this.table;
    for (let i = 0; i < 4 && i < n; i++) if (v[i] !== ((id >>> (8 * i)) & 0xff)) return i;
    for (let i = 4; i < n; i++) if (v[i] !== t[o + i]) return i;
    return -1;
  }

  private static allBytes(v: Uint8Array, b: number): number {
    for (let i = 0; i < v.length; i++) if (v[i] !== b) return i;
    return -1;
  }

  /** The guarantees of every view pool.view() hands out: exactly `size` bytes; its buffer only this pool page. */
  private checkView(pm: PoolM, dma: number, page: number, v: Uint8Array, what: string): boolean {
    if (v.length !== pm.size || v.byteLength !== pm.size) {
      this.violation('view-wrong-length', `${what}: view of ${hex(dma)} in ${pm.describe()} has ${v.length} bytes, want ${pm.size}`);
      return false;
    }
    const abLen = v.buffer.byteLength;
    // byte 0 of the buffer is at DMA dma - byteOffset: the buffer must lie inside [page, page + allocation)
    const start = dma - v.byteOffset - page;
    if (abLen > pm.allocation || start < 0 || start + abLen > pm.allocation) {
      this.violation('view-not-confined',
        `${what}: view of ${hex(dma)} in ${pm.describe()}: its ArrayBuffer has ${abLen} bytes (byteOffset ${v.byteOffset}), ` +
        `covering page offsets [${start}, ${start + abLen}) — more than this pool's page of ${pm.allocation} bytes`);
    }
    return true;
  }

  /** pool.view(dma) for a live block, checked; undefined (and a violation) when it fails. */
  private freshView(pm: PoolM, dma: number, page: number, what: string): Uint8Array | undefined {
    let v: Uint8Array;
    try {
      v = pm.pool.view(dma);
    } catch (e) {
      this.countError(e);
      this.violation(e instanceof DmaPoolError ? 'view-of-live-block-threw' : 'non-DmaPoolError',
        `${what}: view(${hex(dma)}) of a live block of ${pm.describe()} threw ${errText(e)}` +
        (pm.detachedPages.has(page) ? ' (JS had detached a view of this page)' : ''));
      return undefined;
    }
    if (!this.checkView(pm, dma, page, v, what)) return undefined;
    this.viewBorn.set(v, ++this.viewClock);
    this.keep(pm, v);
    return v;
  }

  private keep(pm: PoolM, v: Uint8Array): void {
    if (pm.kept.length < 48) pm.kept.push(v);
    else if (this.r() < 0.05) pm.kept[this.int(pm.kept.length)] = v;
  }

  /** Verifies a live block's bytes through its cached view (or a fresh one). */
  private verifyBlock(b: Block, fresh: boolean, what: string): void {
    const pm = b.pool;
    let v: Uint8Array | undefined = b.view;
    if (fresh || v.byteLength === 0) {
      const at = pm.detachedPages.get(b.page);
      if (!fresh && !(at !== undefined && (this.viewBorn.get(v) ?? 0) <= at))
        this.violation('view-detached-while-pool-alive',
          `${what}: the view of live block ${hex(b.dma)} of ${pm.describe()} reads byteLength 0, and JS detached nothing on ` +
          `its page since the view was made`);
      v = this.freshView(pm, b.dma, b.page, what);
      if (!v) return;
      if (!fresh) b.view = v;
    }
    const i = this.mismatch(v, b.id);
    if (i >= 0) {
      if (this.sabotaged.delete(b)) this.note('sabotage: planted corruptions detected');
      const o = patternOffset(b.id);
      const want = i < 4 ? (b.id >>> (8 * i)) & 0xff : this.table[o + i];
      this.violation('pattern-changed',
        `${what}: live block ${hex(b.dma)} (id ${b.id}) of ${pm.describe()}: byte ${i} is 0x${v[i].toString(16)}, ` +
        `want 0x${want.toString(16)} — something wrote into a live block`);
      // rewrite so the same damage is reported once
      b.id = this.nextBlockId++;
      this.writePattern(v, b.id);
    }
  }

  // ------------------------------------------------------------------ stats, model checks

  private snap(pool: DmaPool): string {
    try {
      const s = pool.stats;
      return `${s.name}|${s.inUse}|${s.blocks}|${s.size}|${s.allocation}|${s.pages}|${s.align}|${s.boundary}|` +
        `${s.blocksPerPage}|${s.index}|${s.legacyLayout}|${s.debug}|${s.metadataBytesPerPage}`;
    } catch (e) {
      return `stats threw ${errText(e)}`;
    }
  }

  private checkPool(pm: PoolM, what: string): void {
    try {
      pm.pool.check();
    } catch (e) {
      this.violation('pool-check-failed', `${what}: ${pm.describe()}: pool.check() threw ${errText(e)}`);
    }
  }

  private checkStats(pm: PoolM, what: string): void {
    const s = pm.pool.stats;
    if (s.inUse !== pm.live.length || s.pages !== pm.pages.size || s.size !== pm.size || s.allocation !== pm.allocation ||
        s.blocksPerPage !== pm.blocksPerPage || s.debug !== pm.debug || s.index !== (pm.shape.opts.index ?? 'rbtree'))
      this.violation('stats-mismatch',
        `${what}: ${pm.describe()}: stats inUse ${s.inUse} pages ${s.pages} size ${s.size} allocation ${s.allocation} ` +
        `blocksPerPage ${s.blocksPerPage}; model inUse ${pm.live.length} pages ${pm.pages.size} size ${pm.size} ` +
        `allocation ${pm.allocation} blocksPerPage ${pm.blocksPerPage}`);
  }

  /** device.pools is the model's list (newest first); poolsReport() has 1 + pools lines that match. */
  private checkDevice(dm: DevM, what: string): void {
    const list = dm.dev.pools;
    let same = list.length === dm.pools.length;
    for (let i = 0; same && i < list.length; i++) same = list[i] === dm.pools[i].pool;
    if (!same)
      this.violation('device-pools-mismatch',
        `${what}: dev#${dm.id}.pools is [${list.map((p) => p.name).join(', ')}], model [${dm.pools.map((p) => p.pool.name).join(', ')}]`);
    let text: string;
    try {
      text = dm.dev.poolsReport();
    } catch (e) {
      this.violation('pools-report-threw', `${what}: dev#${dm.id}.poolsReport() threw ${errText(e)}`);
      return;
    }
    const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
    if (lines.length !== 1 + dm.pools.length || lines[0] !== 'poolinfo - 0.1') {
      this.violation('pools-report-lines', `${what}: dev#${dm.id}.poolsReport() has ${lines.length} lines for ${dm.pools.length} pools:\n${text}`);
      return;
    }
    for (let i = 0; i < dm.pools.length; i++) {
      const pm = dm.pools[i];
      if (pm.tainted) continue;
      const s = pm.pool.stats;
      const want = `${pm.pool.name.padEnd(16)} ${String(pm.live.length).padStart(4)} ${String(s.blocks).padStart(4)} ` +
        `${String(pm.size).padStart(4)} ${String(pm.pages.size).padStart(2)}`;
      if (lines[1 + i] !== want)
        this.violation('pools-report-line', `${what}: dev#${dm.id} line ${1 + i} is ${JSON.stringify(lines[1 + i])}, want ${JSON.stringify(want)}`);
    }
  }

  /**
   * Runs `fn`, which must throw DmaPoolError `expected` and leave the pool as it was (stats
   * identical; pool.check() on a sample). Returns false when it did not throw.
   */
  private expectError(pm: PoolM | undefined, what: string, expected: string, fn: () => unknown): boolean {
    const before = pm ? this.snap(pm.pool) : '';
    let threw = false;
    try {
      fn();
    } catch (e) {
      threw = true;
      this.countError(e);
      if (!(e instanceof DmaPoolError))
        this.violation('non-DmaPoolError', `${what}: threw ${errText(e)} (want DmaPoolError ${expected})`);
      else if (e.code !== expected)
        this.violation('wrong-error-code', `${what}: threw ${errText(e)}, want ${expected}`);
      else if (!API_CODES.has(e.code))
        this.violation('unexpected-error-code', `${what}: ${errText(e)}`);
    }
    if (!threw) this.violation('missing-error', `${what}: returned normally, want ${expected}`);
    if (pm) {
      const after = this.snap(pm.pool);
      if (after !== before) this.violation('error-changed-pool', `${what}: stats ${before} → ${after}`);
      // every 32nd error also runs the pool's invariant checker (a counter, not the RNG: replays stay in step)
      if (!pm.destroyed && ++this.errorChecks % 32 === 0) this.checkPool(pm, what);
    }
    return threw;
  }

  private taint(pm: PoolM, why: string): void {
    if (pm.tainted) return;
    pm.tainted = true;
    this.note('pools tainted');
    const i = this.active.indexOf(pm);
    if (i >= 0) this.active.splice(i, 1);
    this.log(`pool#${pm.id} tainted (${why}); it is left alone from now on`);
  }

  // ------------------------------------------------------------------ predicting an address

  /** What free()/view() of `x` must do on a live pool: 'ok' (a live block) or the error code. */
  private predict(pm: PoolM, x: unknown): 'ok' | 'EINVAL' | 'EFAULT' | 'EALREADY' {
    if (typeof x !== 'number') return 'EINVAL';
    if (!(x >= 0) || !Number.isFinite(x)) return 'EFAULT';
    const base = Math.floor(x / pm.footprint) * pm.footprint;
    if (!pm.pages.has(base)) return 'EFAULT';
    const off = x - base;
    if (off >= pm.allocation) return 'EFAULT';
    if (!pm.offsets.has(off)) return 'EINVAL';
    return pm.pos.has(x) ? 'ok' : 'EALREADY';
  }

  private pageOf(pm: PoolM, dma: number): number {
    return Math.floor(dma / pm.footprint) * pm.footprint;
  }

  // ------------------------------------------------------------------ picking

  private pickPool(): PoolM | undefined {
    return this.active.length ? this.pick(this.active) : undefined;
  }

  private pickPoolWithBlocks(): PoolM | undefined {
    for (let t = 0; t < 8; t++) {
      const pm = this.pickPool();
      if (pm && pm.live.length) return pm;
    }
    return undefined;
  }

  private pickBlock(pm: PoolM): Block {
    return pm.live[this.int(pm.live.length)];
  }

  private openDevices(): DevM[] {
    return this.devices.filter((d) => !d.closed);
  }

  // ------------------------------------------------------------------ devices and pools

  private openDev(): DevM | undefined {
    const slabSize = this.pick([undefined, undefined, 1 << 16, 1 << 13, 4096, 1 << 21]);
    let dev: Device;
    try {
      dev = slabSize === undefined ? openDevice('sim') : openDevice('sim', { slabSize });
    } catch (e) {
      this.countError(e);
      this.violation('open-failed', `openDevice('sim', { slabSize: ${slabSize} }) threw ${errText(e)}`);
      return undefined;
    }
    const dm = new DevM(this.nextDevId++, dev, slabSize);
    this.pageSize = dev.provider.pageSize;
    this.devices.push(dm);
    this.trace(`open dev#${dm.id} slabSize ${slabSize ?? 'default'}`);
    if (dev.pools.length !== 0 || dev.isClosed) this.violation('new-device-state', `dev#${dm.id}: a new device has pools or is closed`);
    return dm;
  }

  private randomShape(): Shape {
    const r = this.r();
    const requested = r < 0.2 ? 1 + this.int(16) : r < 0.55 ? 17 + this.int(240) : r < 0.75 ? 257 + this.int(768)
      : r < 0.9 ? 1025 + this.int(3072) : 4097 + this.int(904);
    const align = this.r() < 0.5 ? 0 : 2 ** this.int(this.r() < 0.9 ? 8 : 13);
    const size = Math.ceil(requested / (align || 1)) * (align || 1);
    let boundary = 0;
    if (this.r() < 0.4) {
      let b = 1;
      while (b < size) b *= 2;
      boundary = b * 2 ** this.int(3);
    }
    const ir = this.r();
    const index: IndexKind = ir < 0.3 ? 'rbtree' : ir < 0.6 ? 'stack' : ir < 0.9 ? 'radix' : 'linear';
    const opts: PoolOptions = { index };
    if (align) opts.align = align;
    if (boundary) opts.boundary = boundary;
    if (this.r() < 0.2) opts.legacyLayout = true;
    if (this.r() < 0.25) opts.debug = true;
    return { requested, opts };
  }

  private createPool(dm: DevM): PoolM | undefined {
    const shape = this.randomShape();
    const id = this.nextPoolId++;
    const name = `f${id}-${shape.opts.index}`;
    const opts: PoolOptions = { ...shape.opts };
    if (opts.debug) {
      opts.onDebugReport = (rep) => this.violation('debug-corruption-report',
        `${rep.message}: a free block of debug pool ${name} changed while free (write into free memory)\n${rep.dump}`);
    }
    this.count('create');
    let pool: DmaPool;
    try {
      pool = dm.dev.createPool(name, shape.requested, opts);
    } catch (e) {
      this.countError(e);
      this.violation('create-failed', `dev#${dm.id}.createPool(${name}, ${shape.requested}, ${JSON.stringify(shape.opts)}) threw ${errText(e)}`);
      return undefined;
    }
    const pm = new PoolM(id, dm, pool, shape, this.pageSize);
    this.trace(`create ${pm.describe()}`);
    dm.pools.unshift(pm);
    this.active.push(pm);
    if (pool.stats.size !== pm.size || pool.stats.allocation !== pm.allocation)
      this.violation('create-geometry', `${pm.describe()}: stats size ${pool.stats.size} allocation ${pool.stats.allocation}`);
    this.checkDevice(dm, 'create');
    return pm;
  }

  /** A page seen for the first time: it must overlap no page of a live pool and no page JS still holds. */
  private newPage(pm: PoolM, base: number, what: string): void {
    pm.pages.add(base);
    const dm = pm.dev;
    for (let g = base; g < base + pm.allocation; g += this.pageSize) {
      const owner = dm.granules.get(g);
      if (owner && owner !== pm)
        this.violation('page-overlap', `${what}: new page ${hex(base)} of ${pm.describe()} overlaps a page of live ${owner.describe()}`);
      dm.granules.set(g, pm);
    }
    for (const esc of this.escapes) {
      if (esc.pool.dev !== dm || !esc.pool.destroyed) continue;
      if (base < esc.page + esc.pool.allocation && esc.page < base + pm.allocation)
        this.violation('escaped-page-reused',
          `${what}: new page ${hex(base)} of ${pm.describe()} reuses page ${hex(esc.page)} of destroyed ${esc.pool.describe()}, ` +
          `whose memory JS still holds in an ArrayBuffer (escape #${esc.id} via ${esc.via})`);
    }
  }

  // ------------------------------------------------------------------ block operations

  private doAlloc(pm: PoolM, zero: boolean): void {
    const kind = zero ? 'zalloc' : 'alloc';
    this.count(kind);
    const before = this.snap(pm.pool);
    let dma: number;
    try {
      dma = zero ? pm.pool.zalloc() : pm.pool.alloc();
    } catch (e) {
      this.allocFailed(pm, `${kind}()`, before, e);
      return;
    }
    this.trace(`${kind} pool#${pm.id} → ${hex(dma)}`);
    const what = `${kind}() → ${hex(dma)}`;
    const rec = this.recordAlloc(pm, dma, what, true);
    if (rec) this.finishAlloc(pm, [rec], zero, what);
  }

  /** An alloc-kind call on a live pool threw: always a violation; the pool must be as it was. */
  private allocFailed(pm: PoolM, call: string, before: string, e: unknown): void {
    this.countError(e);
    this.trace(`${call} pool#${pm.id} → ${errText(e)}`);
    this.violation(e instanceof DmaPoolError ? 'alloc-failed' : 'non-DmaPoolError',
      `${call} on ${pm.describe()} with ${pm.live.length} blocks in use threw ${errText(e)}` +
      (pm.detachedPages.size ? ` (JS detached views on ${pm.detachedPages.size} of its pages)` : ''));
    if (this.snap(pm.pool) !== before) {
      this.violation('error-changed-pool', `${call}: stats ${before} → ${this.snap(pm.pool)}`);
      this.taint(pm, 'a failed alloc changed it');
    }
  }

  /**
   * The "record/verify" half of an allocation (alloc, zalloc, and each block of allocMany/zallocMany):
   * `dma` is checked as an address of this pool (a block start, aligned, inside its boundary, not
   * live already, its page overlapping no other pool), gets a checked view and enters the model.
   * `single`: the pool's stats are checked now (a batch checks them once, after its last block).
   * Undefined when the pool had to be tainted.
   */
  private recordAlloc(pm: PoolM, dma: number, what: string, single: boolean): NewBlock | undefined {
    if (typeof dma !== 'number' || !Number.isSafeInteger(dma) || dma < 0) {
      this.violation('alloc-bad-address', `${what} on ${pm.describe()}: not a DMA address`);
      this.taint(pm, 'alloc returned a non-address');
      return undefined;
    }
    if (pm.pos.has(dma)) {
      this.violation('alloc-returned-live-block', `${what} on ${pm.describe()}: that block is already allocated`);
      this.taint(pm, 'alloc returned a live block');
      return undefined;
    }
    const page = this.pageOf(pm, dma);
    const off = dma - page;
    if (!pm.offsets.has(off)) this.violation('alloc-not-a-block-start', `${what} on ${pm.describe()}: page offset ${off} is no block start`);
    if (dma % pm.align !== 0) this.violation('alloc-misaligned', `${what} on ${pm.describe()}: not ${pm.align}-aligned`);
    // boundaries count from the page start (pages are aligned to a power of two ≥ any boundary given)
    if (off + pm.size > pm.allocation || Math.floor(off / pm.boundary) !== Math.floor((off + pm.size - 1) / pm.boundary))
      this.violation('alloc-crosses-boundary', `${what} on ${pm.describe()}: [${off}, ${off + pm.size}) of its page crosses a ${pm.boundary}-byte boundary`);
    const fresh = !pm.pages.has(page);
    if (fresh) this.newPage(pm, page, what);
    else if (pm.dev.granules.get(page) !== pm)
      this.violation('page-overlap', `${what}: page ${hex(page)} of ${pm.describe()} is registered to another pool`);
    if (single) {
      const s = pm.pool.stats;
      if (s.inUse !== pm.live.length + 1 || s.pages !== pm.pages.size)
        this.violation('stats-mismatch', `${what} on ${pm.describe()}: stats inUse ${s.inUse} pages ${s.pages}, model ${pm.live.length + 1} / ${pm.pages.size}`);
    }
    const v = this.freshView(pm, dma, page, what);
    const b: Block = { dma, id: this.nextBlockId++, view: v ?? new Uint8Array(0), page, pool: pm };
    pm.pos.set(dma, pm.live.length);
    pm.live.push(b);
    pm.poisoned.delete(dma);
    if (pm.seen.length < 64) pm.seen.push(dma);
    else if (this.r() < 0.1) pm.seen[this.int(64)] = dma;
    return { b, off, fresh, hasView: v !== undefined };
  }

  /**
   * The contents half of an allocation, once every block of the call is recorded: each page new
   * to the model is clean but for the blocks this call took on it, zalloc'd blocks are zero, a
   * debug pool's alloc'd blocks are 0xa9; then each block gets its pattern.
   */
  private finishAlloc(pm: PoolM, recs: readonly NewBlock[], zero: boolean, what: string): void {
    for (const r of recs) {
      if (!r.fresh || !r.hasView) continue;
      const offs = recs.length === 1 ? [r.off] : recs.filter((x) => x.b.page === r.b.page).map((x) => x.off);
      this.checkNewPage(pm, r.b.view, r.off, offs, zero, recs.length === 1 ? what : `${what} (block ${hex(r.b.dma)})`);
    }
    for (const r of recs) {
      if (!r.hasView) continue;
      const v = r.b.view;
      const w = recs.length === 1 ? what : `${what}: block ${hex(r.b.dma)}`;
      if (zero) {
        const i = ApiFuzzer.allBytes(v, 0);
        if (i >= 0) this.violation('zalloc-not-zero', `${w} on ${pm.describe()}: byte ${i} is 0x${v[i].toString(16)}`);
      } else if (pm.debug) {
        const i = ApiFuzzer.allBytes(v, POISON_ALLOCATED);
        if (i >= 0) this.violation('debug-alloc-not-poisoned', `${w} on ${pm.describe()}: byte ${i} is 0x${v[i].toString(16)}, want 0xa9`);
      }
    }
    for (const r of recs) if (r.hasView) this.writePattern(r.b.view, r.b.id);
  }

  /**
   * A page just taken from the provider holds nothing of its previous owner: dma_alloc_coherent()
   * memory is zeroed (a reused chunk — even one JS scribbled on while it was quarantined — too),
   * and a debug pool's new page is 0xa7 but for the blocks just allocated on it (`blocks`: their
   * page offsets). Seen through the view's buffer (of the block at page offset `off`), which is this page.
   */
  private checkNewPage(pm: PoolM, v: Uint8Array, off: number, blocks: readonly number[], zero: boolean, what: string): void {
    const start = off - v.byteOffset;
    const all = new Uint8Array(v.buffer);
    const fill = pm.debug ? POISON_FREED : 0;
    const block = zero ? 0 : pm.debug ? POISON_ALLOCATED : 0;
    const taken = new Uint8Array(pm.allocation);
    for (const o of blocks) taken.fill(1, o, o + pm.size);
    for (let i = 0; i < all.length; i++) {
      const o = start + i;
      const want = o >= 0 && o < pm.allocation && taken[o] ? block : fill;
      if (all[i] !== want) {
        this.violation('new-page-not-clean',
          `${what}: new page of ${pm.describe()}: byte ${o} is 0x${all[i].toString(16)}, want 0x${want.toString(16)} ` +
          '(memory of a previous owner?)');
        return;
      }
    }
  }

  /** Frees a live block of the model: the "perform" half (verify, free()), then recordFree(). */
  private doFree(pm: PoolM, b: Block, kind: string): boolean {
    this.count(kind);
    this.trace(`${kind} pool#${pm.id} ${hex(b.dma)}`);
    // every block is checked at least once: when it is freed
    this.verifyBlock(b, false, `${kind} ${hex(b.dma)}: before the free`);
    const before = this.snap(pm.pool);
    try {
      pm.pool.free(b.dma);
    } catch (e) {
      this.countError(e);
      this.violation(e instanceof DmaPoolError ? 'free-of-live-block-failed' : 'non-DmaPoolError',
        `free(${hex(b.dma)}) of a live block of ${pm.describe()} threw ${errText(e)}`);
      if (this.snap(pm.pool) !== before) {
        this.violation('error-changed-pool', `free: stats ${before} → ${this.snap(pm.pool)}`);
        this.taint(pm, 'a failed free changed it');
      }
      return false;
    }
    this.recordFree(pm, b, `free(${hex(b.dma)})`);
    if (pm.pool.stats.inUse !== pm.live.length)
      this.violation('stats-mismatch', `free(${hex(b.dma)}) on ${pm.describe()}: stats inUse ${pm.pool.stats.inUse}, model ${pm.live.length}`);
    return true;
  }

  /** The "record/verify" half of a free (free(), each block of freeMany()): out of the model; a debug pool's block reads 0xa7. */
  private recordFree(pm: PoolM, b: Block, what: string): void {
    const i = pm.pos.get(b.dma)!;
    const last = pm.live.pop()!;
    if (last !== b) {
      pm.live[i] = last;
      pm.pos.set(last.dma, i);
    }
    pm.pos.delete(b.dma);
    if (pm.freed.length < 64) pm.freed.push(b.dma);
    else pm.freed[this.int(64)] = b.dma;
    if (pm.debug && b.view.byteLength) {
      const j = ApiFuzzer.allBytes(b.view, POISON_FREED);
      if (j >= 0) this.violation('debug-free-not-poisoned', `${what} on ${pm.describe()}: byte ${j} is 0x${b.view[j].toString(16)}, want 0xa7`);
      if (pm.poisoned.size >= 128) pm.poisoned.delete(pm.poisoned.keys().next().value as number);
      pm.poisoned.set(b.dma, b.view);
    }
  }

  private opAlloc(zero: boolean): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    if (pm.live.length >= pm.maxLive || (pm.mode === 'drain' && pm.live.length > 0)) {
      this.doFree(pm, this.pickBlock(pm), 'free');
      return;
    }
    this.doAlloc(pm, zero);
  }

  private opFree(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    if (pm.live.length === 0 || (pm.mode === 'fill' && pm.live.length < pm.maxLive)) {
      this.doAlloc(pm, this.r() < 0.3);
      return;
    }
    this.doFree(pm, this.pickBlock(pm), 'free');
  }

  private opMode(): void {
    const pm = this.pickPool();
    if (!pm) return;
    pm.mode = this.pick(['fill', 'drain', 'mixed', 'mixed'] as const);
  }

  /** A new pattern written through a fresh view; the cached view of the same block must see it. */
  private opWrite(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return this.opAlloc(false);
    this.count('write');
    const b = this.pickBlock(pm);
    this.trace(`write pool#${pm.id} ${hex(b.dma)}`);
    this.verifyBlock(b, false, `write ${hex(b.dma)}: before the write`);
    const v = this.freshView(pm, b.dma, b.page, `write ${hex(b.dma)}`);
    if (!v) return;
    b.id = this.nextBlockId++;
    this.writePattern(v, b.id);
    this.verifyBlock(b, false, `write ${hex(b.dma)}: through the older view`);
    if (this.r() < 0.5) b.view = v;
  }

  /**
   * A view's whole ArrayBuffer is this pool's page: garbage written over every byte of it that is
   * not a live block (free blocks, gaps, the tail) must change no live block of any pool — this
   * one's included (a buffer shifted by any amount would hit one). Debug pools are left out:
   * writing into their free blocks is the corruption they report.
   */
  private opPageScribble(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm || pm.debug) return this.opWrite();
    this.count('page-scribble');
    const b = this.pickBlock(pm);
    this.trace(`page-scribble pool#${pm.id} page ${hex(b.page)} via ${hex(b.dma)}`);
    const v = this.freshView(pm, b.dma, b.page, `page-scribble ${hex(b.dma)}`);
    if (!v) return;
    const all = new Uint8Array(v.buffer);
    const start = b.dma - v.byteOffset - b.page; // page offset of the buffer's byte 0
    const keep = new Uint8Array(all.length);
    for (const x of pm.live) {
      if (x.page !== b.page) continue;
      const from = Math.max(0, x.dma - b.page - start);
      const to = Math.min(all.length, x.dma - b.page - start + pm.size);
      if (from < to) keep.fill(1, from, to);
    }
    const g = 1 + this.int(255);
    for (let i = 0; i < all.length; i++) if (!keep[i]) all[i] = g;
    this.sweepDevice(pm.dev, false, `after garbage over the free bytes of page ${hex(b.page)} of pool#${pm.id}`);
  }

  private opView(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return this.opAlloc(false);
    this.count('view');
    const b = this.pickBlock(pm);
    this.trace(`view pool#${pm.id} ${hex(b.dma)}`);
    this.verifyBlock(b, true, `view ${hex(b.dma)}`);
    if (!pm.pool.owns(b.dma)) this.violation('owns-wrong', `owns(${hex(b.dma)}) of a live block of ${pm.describe()} is false`);
  }

  private freedBlock(pm: PoolM): number | undefined {
    for (let t = 0; t < 4 && pm.freed.length; t++) {
      const d = this.pick(pm.freed);
      if (!pm.pos.has(d)) return d;
    }
    return undefined;
  }

  private opDoubleFree(): void {
    const pm = this.pickPool();
    const d = pm && this.freedBlock(pm);
    if (!pm || d === undefined) return this.opFree();
    this.count('double-free');
    this.trace(`double-free pool#${pm.id} ${hex(d)}`);
    if (!this.expectError(pm, `double free(${hex(d)}) on ${pm.describe()}`, 'EALREADY', () => pm.pool.free(d)))
      this.taint(pm, 'a double free succeeded');
  }

  private opViewFree(): void {
    const pm = this.pickPool();
    const d = pm && this.freedBlock(pm);
    if (!pm || d === undefined) return this.opView();
    this.count('view-free');
    this.trace(`view-free pool#${pm.id} ${hex(d)}`);
    this.expectError(pm, `view(${hex(d)}) of a free block of ${pm.describe()}`, 'EALREADY', () => pm.pool.view(d));
    if (pm.pool.owns(d)) this.violation('owns-wrong', `owns(${hex(d)}) of a free block of ${pm.describe()} is true`);
  }

  /** An address for pool `pm` that is most likely not one of its live blocks. */
  private badAddress(pm: PoolM): { x: unknown; how: string } {
    const k = this.int(10);
    const dm = pm.dev;
    switch (k) {
      case 0: { // a live block of another pool on the same device
        const others = dm.pools.filter((p) => p !== pm && !p.tainted && p.live.length);
        if (others.length) {
          const o = this.pick(others);
          return { x: this.pickBlock(o).dma, how: `a live block of pool#${o.id} (same device)` };
        }
        break;
      }
      case 1: { // a live block of a pool on another device (each sim device has its own IOVA space: may collide)
        const others = this.active.filter((p) => p.dev !== dm && p.live.length);
        if (others.length) {
          const o = this.pick(others);
          return { x: this.pickBlock(o).dma, how: `a live block of pool#${o.id} (dev#${o.dev.id})` };
        }
        break;
      }
      case 2: case 3: // inside a live block of this pool
        if (pm.live.length && pm.size > 1) {
          const b = this.pickBlock(pm);
          const d = 1 + this.int(pm.size - 1);
          return { x: b.dma + d, how: `inside live block ${hex(b.dma)} (+${d})` };
        }
        break;
      case 4: case 5: { // anywhere in or just past one of this pool's pages
        if (pm.pages.size) {
          const pages = [...pm.pages];
          const p = this.pick(pages);
          const d = this.int(pm.footprint + this.pageSize);
          return { x: p + d, how: `page ${hex(p)} + ${d}` };
        }
        break;
      }
      case 6: // not an integer
        if (pm.live.length) {
          const b = this.pickBlock(pm);
          return { x: b.dma + this.pick([0.5, 1e-9, -0.25]), how: `live block ${hex(b.dma)} + a fraction` };
        }
        break;
      case 7: { // an address of a destroyed pool
        const g = this.graveyard.filter((p) => p.seen.length);
        if (g.length) {
          const o = this.pick(g);
          return { x: this.pick(o.seen), how: `an old block of destroyed pool#${o.id}` };
        }
        break;
      }
      case 8: // not a number at all
        return { x: this.pick(['4096', undefined, null, {}, 4096n, true, [4096]] as unknown[]), how: 'not a number' };
      default:
        break;
    }
    const x = this.pick([0, -1, -4096, -0, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, Number.MAX_VALUE, 2 ** 32,
      Math.floor(this.r() * 2 ** 40), Math.floor(this.r() * 2 ** 48) * 4096, Number.MIN_VALUE]);
    return { x, how: 'a random number' };
  }

  private opBadAddress(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    this.count('bad-address');
    const { x, how } = this.badAddress(pm);
    const want = this.predict(pm, x);
    const useFree = this.r() < 0.5;
    this.trace(`bad-address pool#${pm.id} ${useFree ? 'free' : 'view'}(${hex(x)}) [${how}] want ${want}`);
    let owns: boolean;
    try {
      owns = pm.pool.owns(x as number);
    } catch (e) {
      this.countError(e);
      this.violation('owns-threw', `owns(${hex(x)}) on ${pm.describe()} threw ${errText(e)}`);
      owns = want === 'ok';
    }
    if (owns !== (want === 'ok')) this.violation('owns-wrong', `owns(${hex(x)}) [${how}] on ${pm.describe()} is ${owns}, model says ${want}`);
    if (want === 'ok') {
      // it happens to be one of this pool's live blocks: a view of it must show that block's bytes
      const b = pm.live[pm.pos.get(x as number)!];
      this.note('bad-address hit a live block');
      this.verifyBlock(b, true, `view(${hex(x)}) [${how}]`);
      return;
    }
    const what = `${useFree ? 'free' : 'view'}(${hex(x)}) [${how}] on ${pm.describe()}`;
    const threw = this.expectError(pm, what, want, () => (useFree ? pm.pool.free(x as number) : pm.pool.view(x as number)));
    if (!threw && useFree) this.taint(pm, 'free of a bad address succeeded');
  }

  // ------------------------------------------------------------------ the bulk and DataView API

  /** A batch size: mostly small, sometimes 0 or 1, now and then a few hundred (ring set-up). */
  private batchSize(): number {
    const r = this.r();
    return r < 0.05 ? 0 : r < 0.2 ? 1 : r < 0.9 ? 2 + this.int(8) : r < 0.98 ? 10 + this.int(40) : 50 + this.int(251);
  }

  /** k distinct live blocks of `pm`, in random order. */
  private pickBlocks(pm: PoolM, k: number): Block[] {
    const a = pm.live.slice();
    k = Math.min(k, a.length);
    for (let i = 0; i < k; i++) {
      const j = i + this.int(a.length - i);
      const t = a[i]; a[i] = a[j]; a[j] = t;
    }
    a.length = k;
    return a;
  }

  /**
   * allocMany(n) / zallocMany(n): a Float64Array of n addresses, each checked exactly as a single
   * alloc() result is (recordAlloc, finishAlloc); then the pool's stats. All or nothing: an error
   * (none is expected here) must leave the pool as it was.
   */
  private opAllocMany(zero: boolean): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    const room = pm.maxLive - pm.live.length;
    if (room <= 0 || (pm.mode === 'drain' && pm.live.length > 0)) return this.opFreeMany();
    const n = Math.min(this.batchSize(), room);
    const kind = zero ? 'zallocMany' : 'allocMany';
    this.count(kind);
    const call = `${kind}(${n})`;
    const before = this.snap(pm.pool);
    let out: Float64Array;
    try {
      out = zero ? pm.pool.zallocMany(n) : pm.pool.allocMany(n);
    } catch (e) {
      this.allocFailed(pm, call, before, e);
      return;
    }
    this.trace(`${call} pool#${pm.id} → ${out instanceof Float64Array && out.length ? `${hex(out[0])}…` : String(out)}`);
    if (!(out instanceof Float64Array) || out.length !== n) {
      this.violation('alloc-many-result', `${call} on ${pm.describe()} returned ${Object.prototype.toString.call(out)} of length ${(out as { length?: unknown })?.length}`);
      this.taint(pm, `${kind} returned something else`);
      return;
    }
    const recs: NewBlock[] = [];
    for (let i = 0; i < n; i++) {
      const rec = this.recordAlloc(pm, out[i], `${call}[${i}] → ${hex(out[i])}`, false);
      if (!rec) return; // tainted
      recs.push(rec);
    }
    this.checkStats(pm, call);
    this.finishAlloc(pm, recs, zero, `${call} on pool#${pm.id}`);
    if (n && this.r() < 0.5) pm.batch = { addrs: out, blocks: recs.map((r) => r.b) };
  }

  /** allocMany/zallocMany with a count that is no count: EINVAL (ENOMEM for a safe integer too big for any array), nothing changed. */
  private opAllocManyBad(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    this.count('allocMany-bad');
    const [n, code] = this.pick<[unknown, string]>([
      [-1, 'EINVAL'], [-0.5, 'EINVAL'], [1.5, 'EINVAL'], [NaN, 'EINVAL'], [Infinity, 'EINVAL'], [-Infinity, 'EINVAL'],
      [2 ** 53, 'EINVAL'], [1e300, 'EINVAL'], [Number.MIN_VALUE, 'EINVAL'], ['4', 'EINVAL'], [4n, 'EINVAL'], [undefined, 'EINVAL'],
      [null, 'EINVAL'], [{}, 'EINVAL'], [[4], 'EINVAL'], [true, 'EINVAL'], [{ valueOf: () => 4 }, 'EINVAL'],
      [2 ** 40, 'ENOMEM'], [2 ** 52, 'ENOMEM'],
    ]);
    const zero = this.r() < 0.5;
    const what = `${zero ? 'zallocMany' : 'allocMany'}(${hex(n)}) on ${pm.describe()}`;
    this.trace(`allocMany-bad pool#${pm.id} ${what}`);
    const threw = this.expectError(pm, what, code,
      () => (zero ? pm.pool.zallocMany(n as number) : pm.pool.allocMany(n as number)));
    if (!threw) this.taint(pm, 'a bad allocMany count succeeded');
  }

  /**
   * freeMany() of k live blocks (a plain array, a Float64Array, an allocMany() result, an
   * array-like object, a Proxy that answers differently on a second read): every one verified
   * before, all freed, each recorded as free() is (recordFree: debug poison), then the stats.
   */
  private opFreeMany(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return this.opAllocMany(false);
    if (pm.mode === 'fill' && pm.live.length < pm.maxLive) return this.opAllocMany(this.r() < 0.3);
    this.count('freeMany');
    const how = this.int(9);
    let blocks: Block[];
    let addrs: ArrayLike<number>;
    let form: string;
    let reads: Map<PropertyKey, number> | undefined;
    const b0 = pm.batch;
    pm.batch = undefined;
    const fromBatch = how <= 4 && b0 !== undefined && b0.blocks.every((b) => pm.live[pm.pos.get(b.dma) ?? -1] === b);
    blocks = fromBatch ? b0.blocks : this.pickBlocks(pm, Math.max(this.r() < 0.1 ? 0 : 1, this.batchSize()));
    // every block is checked at least once: when it is freed
    for (const b of blocks) this.verifyBlock(b, false, `freeMany of ${blocks.length}: before the free`);
    const list = blocks.map((b) => b.dma);
    // a Float64Array in the memory of a block of the batch (a ring of addresses in DMA memory)
    const holder = how === 8 ? blocks.find((b) => b.view.byteLength >= 8 * list.length && b.view.byteOffset % 8 === 0) : undefined;
    if (fromBatch) {
      addrs = b0.addrs;
      form = 'the allocMany() result';
    } else if (holder) {
      const f = new Float64Array(holder.view.buffer, holder.view.byteOffset, list.length);
      f.set(list);
      addrs = f;
      form = `a Float64Array in block ${hex(holder.dma)} of the batch`;
    } else if (how <= 2) {
      addrs = list;
      form = 'an array';
    } else if (how <= 4 || how === 8) {
      addrs = Float64Array.from(list);
      form = 'a Float64Array';
    } else if (how === 5) {
      const o: Record<string, number> = { length: list.length };
      list.forEach((d, i) => { o[i] = d; });
      addrs = o as unknown as ArrayLike<number>;
      form = 'an array-like object';
    } else {
      // the first read of each element (and of length) is the batch, later reads something else
      reads = new Map();
      const other = this.freedBlock(pm) ?? NaN;
      addrs = this.shifty(list, reads, (k) => (k === 'length' ? list.length + 3 : other));
      form = 'a Proxy that answers differently after its first read';
    }
    this.note(`freeMany via ${holder ? 'a Float64Array in a block of the batch' : form}`);
    const call = `freeMany(${form} of ${blocks.length})`;
    this.trace(`${call} pool#${pm.id} ${blocks.slice(0, 4).map((b) => hex(b.dma)).join(' ')}${blocks.length > 4 ? ' …' : ''}`);
    const before = this.snap(pm.pool);
    try {
      pm.pool.freeMany(addrs);
    } catch (e) {
      this.countError(e);
      this.violation(e instanceof DmaPoolError ? 'free-of-live-block-failed' : 'non-DmaPoolError',
        `${call} of live blocks of ${pm.describe()} threw ${errText(e)}`);
      if (this.snap(pm.pool) !== before) {
        this.violation('error-changed-pool', `${call}: stats ${before} → ${this.snap(pm.pool)}`);
        this.taint(pm, 'a failed freeMany changed it');
      }
      return;
    }
    if (reads) this.checkReadOnce(reads, blocks.length, `${call} on ${pm.describe()}`);
    for (const b of blocks) this.recordFree(pm, b, `${call}: ${hex(b.dma)}`);
    this.checkStats(pm, call);
  }

  /**
   * A Proxy over `list` whose every property read is counted in `reads`; the first read of
   * `length` and of each index answers from `list`, later reads answer `later(key)`.
   */
  private shifty(list: readonly unknown[], reads: Map<PropertyKey, number>, later: (k: string) => unknown): ArrayLike<number> {
    return new Proxy(list.slice(), {
      get: (t, k, rcv) => {
        const n = (reads.get(k) ?? 0) + 1;
        reads.set(k, n);
        if (n > 1 && typeof k === 'string' && (k === 'length' || /^\d+$/.test(k))) return later(k);
        return Reflect.get(t, k, rcv);
      },
    }) as unknown as ArrayLike<number>;
  }

  /** freeMany() reads its argument once: `length` and each index at most once. */
  private checkReadOnce(reads: Map<PropertyKey, number>, n: number, what: string): void {
    const again = [...reads].filter(([k, c]) => c > 1 && (k === 'length' || (typeof k === 'string' && /^\d+$/.test(k) && Number(k) < n)));
    if (again.length)
      this.violation('freeMany-read-twice', `${what}: read ${again.map(([k, c]) => `[${String(k)}] ${c}×`).join(', ')} (it must read each once)`);
  }

  /**
   * freeMany() with one bad entry among k live blocks (a double free, a foreign block, an address
   * inside a block, a repeat, NaN, a non-number, a hole, a Proxy whose first answer is bad, one
   * that throws), or a bad argument: the predicted DmaPoolError, and NO block freed — stats the
   * same, every block of the batch still allocated (view() works) with its bytes unchanged.
   */
  private opFreeManyBad(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    this.count('freeMany-bad');
    const blocks = this.pickBlocks(pm, Math.min(this.batchSize(), 64));
    const list: unknown[] = blocks.map((b) => b.dma);
    const at = this.int(list.length + 1);
    let bad: unknown;
    let how: string;
    let code: string;
    let arg: unknown;
    let reads: Map<PropertyKey, number> | undefined;
    const k = this.int(12);
    if (k === 11 && blocks.length) return this.freeManyReentrant(pm, blocks);
    const freed = this.freedBlock(pm);
    let label = 'a bad address';
    if (k === 0 && freed !== undefined) {
      bad = freed; how = label = 'a freed block'; code = 'EALREADY';
    } else if (k === 1 && blocks.length) {
      bad = this.pick(blocks).dma; how = label = 'a block twice'; code = 'EALREADY';
    } else if (k === 2 && blocks.length && pm.size > 1) {
      const b = this.pick(blocks);
      const d = 1 + this.int(pm.size - 1);
      bad = b.dma + d; how = `inside block ${hex(b.dma)} (+${d})`; code = this.predict(pm, bad);
      label = 'inside a block';
    } else if (k === 3) {
      bad = this.pick(['4096', undefined, null, {}, 4096n, true, [4096], Symbol('dma')] as unknown[]);
      how = label = 'a non-number'; code = 'EINVAL';
    } else if (k === 4) {
      bad = this.pick([NaN, -1, Infinity, -Infinity, 2 ** 64]); how = 'a number no page holds'; code = this.predict(pm, bad);
      label = 'NaN/±1/±∞/2^64';
    } else {
      const a = this.badAddress(pm);
      bad = a.x; how = a.how; code = this.predict(pm, bad);
    }
    if (code === 'ok') {
      // by chance a live block of this pool not in the batch: a bad entry it is not
      if (!blocks.some((b) => b.dma === bad)) { this.note('freeMany-bad: the bad entry was a live block'); return; }
      code = 'EALREADY';
    }
    list.splice(at, 0, bad);
    const form = this.int(6);
    if (k === 6) {
      // a hole where the bad entry would be
      const holey = list.slice();
      delete holey[at];
      arg = holey; how = label = 'a hole'; code = 'EINVAL';
    } else if (k === 7) {
      // first answers: the bad list; later reads: the good one (a check-then-use race)
      reads = new Map();
      const good = blocks.map((b) => b.dma);
      arg = this.shifty(list, reads, (key) => (key === 'length' ? good.length : good[Number(key)]));
      how += ', in a Proxy whose later answers are good';
      label = 'a Proxy, bad first answer';
    } else if (k === 8) {
      // a getter that throws at `at`
      const o: Record<string, unknown> = { length: list.length };
      list.forEach((d, i) => { if (i !== at) o[i] = d; });
      Object.defineProperty(o, at, { get() { throw new Error('getter says no'); } });
      arg = o; how = label = 'a throwing getter'; code = 'EINVAL';
    } else if (k === 9) {
      arg = this.pick([4096, '0x1000', null, undefined, 4096n, true, Symbol('x'), () => 0] as unknown[]);
      how = label = 'not an array-like'; code = 'EINVAL';
    } else if (k === 10) {
      const o: Record<string, unknown> = Object.fromEntries(list.map((d, i) => [String(i), d]));
      o.length = this.pick([-1, 1.5, NaN, '2', undefined, 2 ** 53, Infinity, 2 ** 40] as unknown[]);
      arg = o; how = `length ${hex(o.length)}`; code = 'EINVAL';
      label = 'a bad length';
    } else if (form < 2 && typeof bad === 'number') {
      arg = Float64Array.from(list as number[]);
    } else {
      arg = list;
    }
    const what = `freeMany(${list.length} entries: ${blocks.length} live blocks + ${how} at [${at}]) on ${pm.describe()}`;
    this.trace(`freeMany-bad pool#${pm.id} ${how} at [${at}] want ${code}`);
    this.note(`freeMany-bad: ${label}`);
    const threw = this.expectError(pm, what, code, () => pm.pool.freeMany(arg as ArrayLike<number>));
    if (reads) this.checkReadOnce(reads, list.length, what);
    if (!threw) {
      this.taint(pm, 'a bad freeMany succeeded');
      return;
    }
    // nothing freed: each block still allocated (a fresh view works) and holds its pattern
    for (const b of blocks) this.verifyBlock(b, true, `after the refused ${what}`);
  }

  /**
   * freeMany() of live blocks through a getter that, when read, frees one of them with free():
   * the batch is validated after it is read, so that block is free by then — EALREADY, and no
   * other block freed.
   */
  private freeManyReentrant(pm: PoolM, blocks: Block[]): void {
    const list = blocks.map((b) => b.dma);
    const victim = this.pick(blocks);
    const at = this.int(list.length);
    const what = `freeMany(${list.length} live blocks, reading [${at}] frees ${hex(victim.dma)}) on ${pm.describe()}`;
    this.trace(`freeMany-bad pool#${pm.id} getter at [${at}] frees ${hex(victim.dma)} want EALREADY`);
    this.note('freeMany-bad: a getter that frees a block of the batch');
    for (const b of blocks) this.verifyBlock(b, false, `${what}: before`);
    let freedByGetter = false;
    const o: Record<string, unknown> = { length: list.length };
    list.forEach((d, i) => { if (i !== at) o[i] = d; });
    Object.defineProperty(o, at, {
      get: () => {
        if (!freedByGetter) {
          pm.pool.free(victim.dma);
          freedByGetter = true;
          this.recordFree(pm, victim, `free(${hex(victim.dma)}) from a freeMany() getter`);
        }
        return list[at];
      },
    });
    // the pool changes (the getter's free): its stats are checked against the model instead
    this.expectError(undefined, what, 'EALREADY', () => pm.pool.freeMany(o as unknown as ArrayLike<number>));
    if (!freedByGetter) this.violation('freeMany-not-read', `${what}: the getter was never read`);
    this.checkStats(pm, `after ${what}`);
    for (const b of blocks) if (b !== victim) this.verifyBlock(b, true, `after the refused ${what}`);
  }

  /** Little-endian unsigned value of v[o .. o + w) (w ≤ 4) as a number. */
  private static le32(v: Uint8Array, o: number, w: number): number {
    let x = 0;
    for (let i = w - 1; i >= 0; i--) x = x * 256 + v[o + i];
    return x;
  }

  /** Little-endian value of v[o .. o + 8) as a BigInt. */
  private static le64(v: Uint8Array, o: number): bigint {
    return (BigInt(ApiFuzzer.le32(v, o + 4, 4)) << 32n) | BigInt(ApiFuzzer.le32(v, o, 4));
  }

  /**
   * dataView(dma) of a live block: exactly the block, on view()'s page buffer; it reads the
   * block's bytes (getUint8/16/32/BigUint64, little endian); a new pattern written through it in
   * fields of 1, 2, 4 and 8 bytes — the block's first and last fields included — is what view()
   * reads, byte for byte; accesses past either edge throw RangeError and change nothing.
   */
  private opDataView(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return this.opAlloc(false);
    this.count('dataView');
    const b = this.pickBlock(pm);
    const what = `dataView(${hex(b.dma)}) of ${pm.describe()}`;
    this.trace(`dataView pool#${pm.id} ${hex(b.dma)}`);
    this.verifyBlock(b, false, `${what}: before`);
    let dv: DataView;
    try {
      dv = pm.pool.dataView(b.dma);
    } catch (e) {
      this.countError(e);
      this.violation(e instanceof DmaPoolError ? 'view-of-live-block-threw' : 'non-DmaPoolError', `${what} of a live block threw ${errText(e)}`);
      return;
    }
    const v = this.freshView(pm, b.dma, b.page, what);
    if (!v) return;
    if (!(dv instanceof DataView) || dv.byteLength !== pm.size || dv.buffer !== v.buffer || dv.byteOffset !== v.byteOffset) {
      this.violation('dataview-not-the-block',
        `${what}: byteLength ${dv.byteLength} byteOffset ${dv.byteOffset} (buffer ${dv.buffer === v.buffer ? 'the same as' : 'not'} view()'s); ` +
        `view(): ${v.length} bytes at ${v.byteOffset}`);
      return;
    }
    if (pm.keptDv.length < 8) pm.keptDv.push(dv);
    else if (this.r() < 0.1) pm.keptDv[this.int(8)] = dv;
    const size = pm.size;
    // reads agree with view()
    for (let t = 0; t < 8; t++) {
      const w = this.pick([1, 2, 4, 8]);
      if (w > size) continue;
      const o = t === 0 ? 0 : t === 1 ? size - w : this.int(size - w + 1);
      const got = w === 1 ? dv.getUint8(o) : w === 2 ? dv.getUint16(o, true) : w === 4 ? dv.getUint32(o, true) : dv.getBigUint64(o, true);
      const want = w === 8 ? ApiFuzzer.le64(v, o) : ApiFuzzer.le32(v, o, w);
      if (got !== want) {
        this.violation('dataview-read-differs', `${what}: the ${w}-byte field at ${o} reads 0x${got.toString(16)}, view() bytes say 0x${want.toString(16)}`);
        return;
      }
    }
    // a new pattern written through the DataView in little-endian fields
    const id = this.nextBlockId++;
    const tmp = new Uint8Array(size);
    this.writePattern(tmp, id);
    let o = 0;
    while (o < size) {
      let w = this.pick([1, 2, 4, 8, 8]);
      while (o + w > size) w >>= 1;
      if (w === 1) dv.setUint8(o, tmp[o]);
      else if (w === 2) dv.setUint16(o, ApiFuzzer.le32(tmp, o, 2), true);
      else if (w === 4) dv.setUint32(o, ApiFuzzer.le32(tmp, o, 4), true);
      else dv.setBigUint64(o, ApiFuzzer.le64(tmp, o), true);
      o += w;
    }
    // the edges again, with the widest fields that fit: the first and the last bytes of the block
    if (size >= 4) dv.setUint32(0, id >>> 0, true);
    if (size >= 8) dv.setBigUint64(size - 8, ApiFuzzer.le64(tmp, size - 8), true);
    else if (size >= 4) dv.setUint32(size - 4, ApiFuzzer.le32(tmp, size - 4, 4), true);
    b.id = id;
    // past either edge: RangeError, nothing written
    const past: [string, () => unknown][] = [
      [`setUint8(${size})`, () => dv.setUint8(size, 0xee)],
      [`setUint32(${size - 3}, …)`, () => dv.setUint32(size - 3, 0xeeeeeeee, true)],
      [`setBigUint64(${size - 7}, …)`, () => dv.setBigUint64(size - 7, 0xeeeeeeeeeeeeeeeen, true)],
      ['setUint16(-1, …)', () => dv.setUint16(-1, 0xeeee, true)],
      [`getUint32(${size - 3})`, () => dv.getUint32(size - 3, true)],
      [`getBigUint64(${size})`, () => dv.getBigUint64(size, true)],
    ];
    const [pname, pfn] = this.pick(past);
    try {
      pfn();
      this.violation('dataview-past-edge', `${what}: ${pname} did not throw (the DataView reaches past the block)`);
    } catch (e) {
      if (!(e instanceof RangeError)) this.violation('dataview-past-edge', `${what}: ${pname} threw ${errText(e)}, want RangeError`);
    }
    // view() reads what the DataView wrote, byte for byte; the other blocks of the page are intact
    const i = this.mismatch(v, id);
    if (i >= 0) {
      this.violation('dataview-write-differs', `${what}: byte ${i} written through the DataView reads 0x${v[i].toString(16)} through view(), want 0x${tmp[i].toString(16)}`);
      this.writePattern(v, id);
    }
    this.verifyBlock(b, false, `${what}: after writes through it`);
    // the blocks right before and after it, where a write past an edge would land
    for (const d of [b.dma - pm.size, b.dma + pm.size]) {
      const x = pm.live[pm.pos.get(d) ?? -1];
      if (x) this.verifyBlock(x, false, `${what}: its neighbour ${hex(d)}, after writes`);
    }
  }

  /** dataView() of what is no live block of the pool: the error view() gives (the model's prediction), for both. */
  private opDataViewBad(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    this.count('dataView-bad');
    const freed = this.r() < 0.3 ? this.freedBlock(pm) : undefined;
    const { x, how } = freed !== undefined ? { x: freed as unknown, how: 'a freed block' } : this.badAddress(pm);
    const want = this.predict(pm, x);
    this.trace(`dataView-bad pool#${pm.id} dataView(${hex(x)}) [${how}] want ${want}`);
    if (want === 'ok') {
      this.note('dataView-bad hit a live block');
      return;
    }
    let viewCode = 'none';
    try {
      pm.pool.view(x as number);
    } catch (e) {
      viewCode = e instanceof DmaPoolError ? e.code : errText(e);
    }
    this.expectError(pm, `dataView(${hex(x)}) [${how}] on ${pm.describe()}`, want, () => pm.pool.dataView(x as number));
    if (viewCode !== want) this.violation('wrong-error-code', `view(${hex(x)}) [${how}] on ${pm.describe()}: ${viewCode}, want ${want}`);
  }

  /**
   * dmaToBigInt/dmaFromBigInt: every live address of a pool round-trips (also through a 64-bit
   * little-endian descriptor field written with setBigUint64 into a live block and read back, then
   * used: view() of it is that block); what is no address is refused (EINVAL, ERANGE ≥ 2^53).
   */
  private opBigInt(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    this.count('dma-bigint');
    this.trace(`dma-bigint pool#${pm.id} (${pm.live.length} live)`);
    for (const b of pm.live) {
      let big: bigint, back: number;
      try {
        big = dmaToBigInt(b.dma);
        back = dmaFromBigInt(big);
      } catch (e) {
        this.countError(e);
        this.violation('bigint-roundtrip', `dmaToBigInt/dmaFromBigInt of live block ${hex(b.dma)} threw ${errText(e)}`);
        return;
      }
      if (big !== BigInt(b.dma) || back !== b.dma)
        this.violation('bigint-roundtrip', `${hex(b.dma)} → ${big}n → ${hex(back)}`);
    }
    // through a descriptor field: block d's last 8 bytes hold block t's address
    if (pm.size >= 8 && pm.live.length >= 1) {
      const d = this.pickBlock(pm), t = this.pickBlock(pm);
      this.verifyBlock(d, false, 'dma-bigint: before the descriptor write');
      try {
        const dv = pm.pool.dataView(d.dma);
        const at = this.r() < 0.5 ? 0 : pm.size - 8;
        dv.setBigUint64(at, dmaToBigInt(t.dma), true);
        const got = dmaFromBigInt(dv.getBigUint64(at, true));
        if (got !== t.dma) this.violation('bigint-roundtrip', `descriptor field at ${at} of ${hex(d.dma)}: wrote ${hex(t.dma)}, read back ${hex(got)}`);
        else if (!pm.pool.owns(got)) this.violation('owns-wrong', `owns(${hex(got)}) read back from a descriptor is false`);
      } catch (e) {
        this.countError(e);
        this.violation('bigint-roundtrip', `descriptor write/read in ${hex(d.dma)} of ${pm.describe()} threw ${errText(e)}`);
      }
      d.id = this.nextBlockId++;
      if (d.view.byteLength) this.writePattern(d.view, d.id);
      else this.verifyBlock(d, false, 'dma-bigint'); // reports the detached cached view
    }
    const [x, code] = this.pick<[unknown, string]>([
      [-1, 'EINVAL'], [0.5, 'EINVAL'], [NaN, 'EINVAL'], [Infinity, 'EINVAL'], [2 ** 53, 'EINVAL'], [-0.25, 'EINVAL'],
      ['4096', 'EINVAL'], [4096n, 'EINVAL'], [undefined, 'EINVAL'], [null, 'EINVAL'], [{ valueOf: () => 4096 }, 'EINVAL'],
    ]);
    this.expectError(undefined, `dmaToBigInt(${hex(x)})`, code, () => dmaToBigInt(x as number));
    const [y, ycode] = this.pick<[unknown, string]>([
      [-1n, 'EINVAL'], [2n ** 53n, 'ERANGE'], [2n ** 64n, 'ERANGE'], [2n ** 64n - 1n, 'ERANGE'], [4096, 'EINVAL'], ['4096', 'EINVAL'],
      [undefined, 'EINVAL'], [Object(4096n), 'EINVAL'], [-(2n ** 63n), 'EINVAL'],
    ]);
    this.expectError(undefined, `dmaFromBigInt(${hex(y)})`, ycode, () => dmaFromBigInt(y as bigint));
    const edge = 2n ** 53n - 1n;
    try {
      if (dmaFromBigInt(edge) !== Number.MAX_SAFE_INTEGER || dmaFromBigInt(0n) !== 0 || dmaToBigInt(Number.MAX_SAFE_INTEGER) !== edge)
        this.violation('bigint-roundtrip', '0 or 2^53 - 1 does not round-trip');
    } catch (e) {
      this.violation('bigint-roundtrip', `0 or 2^53 - 1 threw ${errText(e)}`);
    }
  }

  // ------------------------------------------------------------------ destroy / close

  private opUseAfterDestroy(): void {
    if (!this.graveyard.length) return this.opBadAddress();
    const pm = this.pick(this.graveyard);
    this.count('use-after-destroy');
    const x = pm.seen.length ? this.pick(pm.seen) : 2 ** 32;
    const k = this.int(9);
    const name = ['alloc()', 'zalloc()', `free(${hex(x)})`, `view(${hex(x)})`, 'destroy() again', `dataView(${hex(x)})`,
      'allocMany(4)', 'zallocMany(0)', `freeMany([${hex(x)}])`][k];
    this.trace(`use-after-destroy pool#${pm.id} ${name}`);
    const what = `${name} on destroyed ${pm.describe()}`;
    if (k === 4) {
      try {
        pm.pool.destroy();
      } catch (e) {
        this.countError(e);
        this.violation('destroy-twice-threw', `${what} threw ${errText(e)}`);
      }
    } else {
      const p = pm.pool;
      this.expectError(pm, what, 'EBADF', () => [() => p.alloc(), () => p.zalloc(), () => p.free(x), () => p.view(x), undefined,
        () => p.dataView(x), () => p.allocMany(4), () => p.zallocMany(0), () => p.freeMany([x])][k]!());
    }
    if (!pm.pool.isDestroyed) this.violation('destroyed-flag', `${what}: isDestroyed is false`);
    this.checkDetached(pm, pm.kept, `${what}: a kept view`, 'destroy');
    this.checkDvDetached(pm, `${what}: a kept DataView`, 'destroy');
  }

  private opUseAfterClose(): void {
    if (!this.closedDevices.length) return this.opUseAfterDestroy();
    const dm = this.pick(this.closedDevices);
    this.count('use-after-close');
    const k = this.int(3);
    this.trace(`use-after-close dev#${dm.id} ${['createPool', 'close again', 'pool op'][k]}`);
    if (k === 0) {
      const before = dm.dev.pools.length;
      this.expectError(undefined, `createPool on closed dev#${dm.id}`, 'EBADF', () => dm.dev.createPool('late', 64));
      if (dm.dev.pools.length !== before) this.violation('closed-device-pools', `createPool on closed dev#${dm.id} listed a pool`);
    } else if (k === 1) {
      try {
        dm.dev.close();
      } catch (e) {
        this.countError(e);
        this.violation('close-twice-threw', `close() of closed dev#${dm.id} threw ${errText(e)}`);
      }
    } else if (dm.pools.length) {
      const pm = this.pick(dm.pools);
      this.expectError(pm, `alloc() on ${pm.describe()} of closed dev#${dm.id}`, 'EBADF', () => pm.pool.alloc());
    }
    if (!dm.dev.isClosed || dm.dev.pools.length !== 0)
      this.violation('closed-device-state', `dev#${dm.id}: isClosed ${dm.dev.isClosed}, ${dm.dev.pools.length} pools listed after close`);
  }

  /** Every view in `views` must read byteLength 0 (its memory was returned or unmapped). */
  private checkDetached(pm: PoolM, views: Iterable<Uint8Array>, what: string, after: 'destroy' | 'close'): void {
    let n = 0, attached = 0, bytes = 0;
    for (const v of views) {
      n++;
      if (v.byteLength !== 0 || v.buffer.byteLength !== 0) {
        attached++;
        bytes = v.buffer.byteLength;
      }
    }
    if (attached)
      this.violation(`view-not-detached-after-${after}`,
        `${what}: ${attached} of ${n} views of ${pm.describe()} still attached after ${after} (an ArrayBuffer of ${bytes} bytes` +
        `${after === 'destroy' ? '; other pools keep the slab mapped' : ''})`);
  }

  /** Every DataView kept of the pool is detached: its buffer has 0 bytes and any access throws TypeError. */
  private checkDvDetached(pm: PoolM, what: string, after: 'destroy' | 'close'): void {
    let attached = 0;
    for (const dv of pm.keptDv) {
      let ok = dv.buffer.byteLength === 0;
      if (ok) {
        try {
          dv.getUint8(0);
          ok = false;
        } catch (e) {
          ok = e instanceof TypeError;
        }
      }
      if (!ok) attached++;
    }
    if (attached)
      this.violation(`view-not-detached-after-${after}`, `${what}: ${attached} of ${pm.keptDv.length} DataViews of ${pm.describe()} still usable after ${after}`);
  }

  private opDestroyBusy(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return this.opFree();
    this.count('destroy-busy');
    this.trace(`destroy-busy pool#${pm.id} (${pm.live.length} in use)`);
    this.expectError(pm, `destroy() of ${pm.describe()} with ${pm.live.length} blocks in use`, 'EBUSY', () => pm.pool.destroy());
    if (pm.pool.isDestroyed) {
      this.violation('busy-destroy-destroyed', `${pm.describe()}: isDestroyed after a refused destroy`);
      this.taint(pm, 'destroyed while busy');
      return;
    }
    for (let i = 0; i < 8 && i < pm.live.length; i++) this.verifyBlock(this.pickBlock(pm), i % 2 === 1, 'after a busy destroy');
    this.checkDevice(pm.dev, 'destroy-busy');
  }

  /** Frees every block of the pool (each free an op), then destroys it; checks every view is detached. */
  private destroyPool(pm: PoolM, why: string): boolean {
    const blocks = pm.live.slice();
    for (let i = blocks.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = blocks[i]; blocks[i] = blocks[j]; blocks[j] = t;
    }
    for (const b of blocks) if (!this.doFree(pm, b, 'free (drain)')) return false;
    this.count('destroy');
    this.trace(`destroy pool#${pm.id} (${why})`);
    try {
      pm.pool.destroy();
    } catch (e) {
      this.countError(e);
      this.violation('destroy-failed', `destroy() of empty ${pm.describe()} threw ${errText(e)}`);
      return false;
    }
    pm.destroyed = true;
    const dm = pm.dev;
    dm.pools.splice(dm.pools.indexOf(pm), 1);
    const a = this.active.indexOf(pm);
    if (a >= 0) this.active.splice(a, 1);
    for (const p of pm.pages)
      for (let g = p; g < p + pm.allocation; g += this.pageSize) if (dm.granules.get(g) === pm) dm.granules.delete(g);
    if (!pm.pool.isDestroyed) this.violation('destroyed-flag', `${pm.describe()}: isDestroyed false after destroy()`);
    this.checkDetached(pm, [...pm.kept, ...blocks.map((b) => b.view), ...pm.poisoned.values()], `destroy (${why})`, 'destroy');
    this.checkDvDetached(pm, `destroy (${why})`, 'destroy');
    pm.poisoned.clear();
    pm.live.length = 0;
    pm.pos.clear();
    this.graveyard.push(pm);
    if (this.graveyard.length > 16) this.graveyard.shift();
    this.checkDevice(dm, 'destroy');
    return true;
  }

  private opDestroy(): void {
    const pm = this.pickPool();
    if (!pm) return this.opCreate();
    if (this.destroyPool(pm, 'random') && !pm.dev.closed) {
      // the freed chunks go back to the provider: every other pool of the device must be intact
      this.sweepDevice(pm.dev, false, 'after destroy');
      if (pm.dev.pools.length < 2) this.createPool(pm.dev);
    }
  }

  private opCreate(): void {
    const devs = this.openDevices().filter((d) => d.pools.length < MAX_POOLS_PER_DEVICE);
    if (!devs.length) return;
    this.createPool(this.pick(devs));
  }

  private opCreateBad(): void {
    const devs = this.openDevices();
    if (!devs.length) return;
    const dm = this.pick(devs);
    this.count('create-bad');
    const bad: [string, number, unknown][] = [
      ['b0', 0, {}], ['b1', -1, {}], ['b2', 1.5, {}], ['b3', NaN, {}], ['b4', 64, { align: 3 }], ['b5', 64, { align: -8 }],
      ['b6', 100, { boundary: 64 }], ['b7', 64, { boundary: 96 }], ['b8', 64, { index: 'btree' }], ['b9', 64, { debug: 'yes' }],
      ['b10', 64, { aling: 8 }], ['b11', 64, null], ['b12', 64, { legacyLayout: 1 }], ['b13', 2 ** 31, {}],
    ];
    const [name, size, opts] = this.pick(bad);
    this.trace(`create-bad dev#${dm.id} ${name}(${size}, ${JSON.stringify(opts)})`);
    const before = dm.dev.pools.slice();
    this.expectError(undefined, `createPool(${name}, ${size}, ${JSON.stringify(opts)})`, 'EINVAL',
      () => dm.dev.createPool(name, size, opts as PoolOptions));
    if (dm.dev.pools.length !== before.length) {
      this.violation('bad-create-listed', `createPool(${name}, ${size}, ${JSON.stringify(opts)}) failed but dev#${dm.id} lists a new pool`);
      return;
    }
    this.checkDevice(dm, 'create-bad');
  }

  private opCloseBusy(): void {
    const devs = this.openDevices().filter((d) => d.pools.some((p) => p.live.length && !p.tainted));
    if (!devs.length) return this.opFree();
    const dm = this.pick(devs);
    this.count('close-busy');
    this.trace(`close-busy dev#${dm.id}`);
    const before = dm.pools.map((p) => this.snap(p.pool)).join(';');
    this.expectError(undefined, `close() of dev#${dm.id} with blocks in use`, 'EBUSY', () => dm.dev.close());
    if (dm.dev.isClosed) {
      this.violation('busy-close-closed', `dev#${dm.id}: isClosed after a refused close`);
      return;
    }
    if (dm.pools.map((p) => this.snap(p.pool)).join(';') !== before)
      this.violation('error-changed-pool', `a refused close() changed pools of dev#${dm.id}`);
    for (const pm of dm.pools) {
      if (pm.tainted || pm.pool.isDestroyed) {
        if (pm.pool.isDestroyed) this.violation('busy-close-destroyed', `a refused close() destroyed ${pm.describe()}`);
        continue;
      }
      for (let i = 0; i < 3 && i < pm.live.length; i++) this.verifyBlock(this.pickBlock(pm), i === 2, 'after a busy close');
    }
    this.checkDevice(dm, 'close-busy');
  }

  /** Drains every pool of the device, closes it, checks every view is detached; true when closed. */
  private closeDevice(dm: DevM, why: string): boolean {
    if (dm.pools.some((p) => p.tainted)) {
      this.note('devices left open (tainted pool)');
      return false;
    }
    const views: [PoolM, Uint8Array[]][] = [];
    for (const pm of dm.pools.slice()) {
      const vs = [...pm.kept, ...pm.live.map((b) => b.view)];
      // half the pools are destroyed first, the others by close() itself
      if (this.r() < 0.5) {
        if (!this.destroyPool(pm, `before close of dev#${dm.id}`)) return false;
      } else {
        for (const b of pm.live.slice()) if (!this.doFree(pm, b, 'free (drain)')) return false;
      }
      views.push([pm, [...vs, ...pm.poisoned.values()]]);
    }
    this.count('close');
    this.trace(`close dev#${dm.id} (${why})`);
    const pools = dm.pools.slice();
    try {
      dm.dev.close();
    } catch (e) {
      this.countError(e);
      this.violation('close-failed', `close() of dev#${dm.id} with no blocks in use threw ${errText(e)}`);
      return false;
    }
    dm.closed = true;
    for (const pm of pools) {
      pm.destroyed = true;
      const a = this.active.indexOf(pm);
      if (a >= 0) this.active.splice(a, 1);
      if (!pm.pool.isDestroyed) this.violation('destroyed-flag', `${pm.describe()}: isDestroyed false after device close`);
      pm.live.length = 0;
      pm.pos.clear();
      pm.poisoned.clear();
      this.graveyard.push(pm);
      if (this.graveyard.length > 16) this.graveyard.shift();
    }
    for (const [pm, vs] of views) {
      this.checkDetached(pm, vs, `close dev#${dm.id}`, 'close');
      this.checkDvDetached(pm, `close dev#${dm.id}`, 'close');
    }
    dm.granules.clear();
    if (!dm.dev.isClosed || dm.dev.pools.length !== 0)
      this.violation('closed-device-state', `dev#${dm.id}: isClosed ${dm.dev.isClosed}, ${dm.dev.pools.length} pools listed after close`);
    this.devices.splice(this.devices.indexOf(dm), 1);
    this.closedDevices.push(dm);
    if (this.closedDevices.length > 6) this.closedDevices.shift();
    return true;
  }

  private opClose(): void {
    const devs = this.openDevices();
    if (!devs.length) return this.opOpen();
    const dm = this.pick(devs);
    if (this.closeDevice(dm, 'random')) {
      // a closed device's memory is gone: every other device must be intact
      for (const d of this.openDevices()) this.sweepDevice(d, false, `after close of dev#${dm.id}`);
    }
    if (this.openDevices().length < 2) this.opOpen();
  }

  private opOpen(): void {
    if (this.openDevices().length >= MAX_DEVICES) return this.opCreate();
    this.count('open');
    const dm = this.openDev();
    if (!dm) return;
    const n = 2 + this.int(3);
    for (let i = 0; i < n; i++) this.createPool(dm);
  }

  // ------------------------------------------------------------------ JS detach attempts

  /** Shared checks once JS moved a view's memory to `bytes` (a new ArrayBuffer). */
  private afterEscape(pm: PoolM, b: Block, bytes: Uint8Array, abLen: number, via: Via, at: number): void {
    const what = `detach via ${via} of ${hex(b.dma)} in ${pm.describe()}`;
    pm.detachedPages.set(b.page, Math.max(at, pm.detachedPages.get(b.page) ?? 0));
    if (bytes.length !== pm.size)
      this.violation('escaped-buffer-shape', `${what}: the escaped chunk has ${bytes.length} bytes, the view had ${pm.size}`);
    if (bytes.buffer.byteLength !== abLen || abLen > pm.allocation)
      this.violation('escaped-buffer-not-confined',
        `${what}: the escaped ArrayBuffer has ${bytes.buffer.byteLength} bytes (the view's had ${abLen}); a pool page is ${pm.allocation}`);
    if (this.mismatch(bytes, b.id) >= 0)
      this.violation('escaped-buffer-not-the-block', `${what}: the escaped bytes are not the block's pattern`);
    // the pool keeps working: view() of that block is a new working view with the same bytes
    this.verifyBlock(b, true, `${what}: view() after the detach`);
    const v2 = this.freshView(pm, b.dma, b.page, `${what}: view() after the detach`);
    if (v2) {
      b.view = v2;
      if (v2.buffer === bytes.buffer) this.violation('escaped-buffer-reused', `${what}: view() returned the escaped ArrayBuffer`);
      // both name the same memory: a write through the escaped bytes shows in the new view
      b.id = this.nextBlockId++;
      this.writePattern(bytes, b.id);
      if (this.mismatch(v2, b.id) >= 0) {
        this.note(`${via}: escaped bytes are a copy, not the block`);
        this.writePattern(v2, b.id);
      }
    }
    this.escapes.push({ id: this.nextEscapeId++, via, pool: pm, page: b.page, bytes, block: b, blockId: b.id, bornStep: this.step, scribbles: 0 });
    // no other pool is affected (their cached views must still be attached and hold their bytes)
    this.sweepDevice(pm.dev, false, `${what}: other pools`);
  }

  private async opDetachStream(): Promise<void> {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return;
    this.count('detach-stream');
    const b = this.pickBlock(pm);
    this.trace(`detach-stream pool#${pm.id} ${hex(b.dma)}`);
    const what = `ReadableStream enqueue of view(${hex(b.dma)}) of ${pm.describe()}`;
    const v = this.freshView(pm, b.dma, b.page, what);
    if (!v) return;
    const abLen = v.buffer.byteLength;
    const at = this.viewClock;
    let controller: ReadableByteStreamController | undefined;
    const rs = new ReadableStream({ type: 'bytes', start(c) { controller = c; } });
    try {
      controller!.enqueue(v as Uint8Array<ArrayBuffer>);
    } catch (e) {
      this.note(`stream: enqueue refused (${(e as Error)?.name})`);
      this.verifyBlock(b, true, `${what} refused`);
      return;
    }
    if (v.buffer.byteLength !== 0) this.note('stream: enqueue did not detach the view');
    else this.note('stream: enqueue detached the view');
    const { value } = await rs.getReader().read();
    if (!(value instanceof Uint8Array)) {
      this.violation('stream-chunk', `${what}: read() gave ${String(value)}`);
      return;
    }
    this.afterEscape(pm, b, value, abLen, 'stream', at);
  }

  /**
   * A BYOB read into a view: the stream detaches the view's buffer, writes into the memory it took
   * (here: a new pattern for the block) and hands it back in a new ArrayBuffer.
   */
  private async opDetachByob(): Promise<void> {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return;
    this.count('detach-byob');
    const b = this.pickBlock(pm);
    this.trace(`detach-byob pool#${pm.id} ${hex(b.dma)}`);
    const what = `BYOB read into view(${hex(b.dma)}) of ${pm.describe()}`;
    this.verifyBlock(b, false, `${what}: before the read`);
    const v = this.freshView(pm, b.dma, b.page, what);
    if (!v) return;
    const abLen = v.buffer.byteLength;
    const at = this.viewClock;
    const newId = this.nextBlockId++;
    const src = new Uint8Array(pm.size);
    this.writePattern(src, newId);
    const rs = new ReadableStream({
      type: 'bytes',
      pull(c) {
        const r = c.byobRequest!;
        const into = r.view!;
        new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(src.subarray(0, into.byteLength));
        r.respond(into.byteLength);
      },
    });
    const reader = rs.getReader({ mode: 'byob' });
    let value: Uint8Array | undefined;
    try {
      value = (await reader.read(v as Uint8Array<ArrayBuffer>)).value;
    } catch (e) {
      this.note(`byob: read refused (${(e as Error)?.name})`);
      this.verifyBlock(b, true, `${what} refused`);
      return;
    } finally {
      reader.releaseLock();
    }
    this.note(v.buffer.byteLength === 0 ? 'byob: read detached the view' : 'byob: read did not detach the view');
    if (!(value instanceof Uint8Array) || value.length !== pm.size) {
      this.violation('byob-chunk', `${what}: read() gave ${value instanceof Uint8Array ? `${value.length} bytes` : String(value)}`);
      this.verifyBlock(b, true, what);
      return;
    }
    // the stream wrote the new pattern into the memory it took from the view: the block's memory
    const now = this.freshView(pm, b.dma, b.page, `${what}: view() after the read`);
    if (now && this.mismatch(now, newId) < 0) b.id = newId;
    else if (now && this.mismatch(now, b.id) < 0) this.note('byob: read wrote into a copy, not the block');
    else if (now) this.violation('byob-wrote-elsewhere', `${what}: after the read the block holds neither its old bytes nor what the stream wrote`);
    if (this.mismatch(value, newId) >= 0) this.violation('byob-chunk', `${what}: the chunk read does not hold what the stream wrote`);
    if (v.buffer.byteLength !== 0) {
      this.verifyBlock(b, true, what);
      return;
    }
    this.afterEscape(pm, b, value, abLen, 'byob', at);
  }

  /**
   * structuredClone(buffer, { transfer }) or MessagePort.postMessage(buffer, [buffer]) of a view's
   * buffer. Node 20 may copy instead of transferring: both are handled (a copy must not alias).
   */
  private async opDetachCopy(via: 'clone' | 'message'): Promise<void> {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return;
    this.count(`detach-${via}`);
    const b = this.pickBlock(pm);
    this.trace(`detach-${via} pool#${pm.id} ${hex(b.dma)}`);
    const what = via === 'clone' ? `structuredClone(view(${hex(b.dma)}).buffer, { transfer }) of ${pm.describe()}`
      : `postMessage(view(${hex(b.dma)}).buffer, [buffer]) of ${pm.describe()}`;
    const v = this.freshView(pm, b.dma, b.page, what);
    if (!v) return;
    const abLen = v.buffer.byteLength;
    const off = v.byteOffset;
    const at = this.viewClock;
    let clone: ArrayBuffer;
    try {
      const buf = v.buffer as ArrayBuffer;
      if (via === 'clone') {
        clone = structuredClone(buf, { transfer: [buf] });
      } else {
        const mc = new MessageChannel();
        try {
          const got = new Promise<ArrayBuffer>((res) => mc.port2.once('message', res));
          mc.port1.postMessage(buf, [buf]);
          clone = await got;
        } finally {
          mc.port1.close();
        }
      }
    } catch (e) {
      this.note(`${via}: transfer refused (${(e as Error)?.name})`);
      this.verifyBlock(b, true, `${what} refused`);
      return;
    }
    if (v.buffer.byteLength === 0) {
      // a real transfer: the clone now owns the block's memory
      this.note(`${via}: transfer detached the view`);
      this.afterEscape(pm, b, new Uint8Array(clone, off, pm.size), abLen, via, at);
      return;
    }
    // a copy: the clone is ours alone; garbage in it must change nothing
    this.note(`${via}: transfer copied (view still attached)`);
    if (clone.byteLength !== abLen) this.violation(`${via}-length`, `${what}: the copy has ${clone.byteLength} bytes, the buffer ${abLen}`);
    if (this.mismatch(new Uint8Array(clone, off, pm.size), b.id) >= 0)
      this.violation(`${via}-content`, `${what}: the copy does not hold the block's bytes`);
    new Uint8Array(clone).fill(0x5a);
    this.verifyBlock(b, false, `${what}: after writing garbage into the copy`);
    this.sweepDevice(pm.dev, false, `${what}: after writing garbage into the copy`);
  }

  /** While the escaped block is still the same allocation of a live pool, its escaped bytes are the block. */
  private opEscapeWrite(): void {
    const live = this.escapes.filter((e) => !e.pool.destroyed && !e.pool.tainted && e.pool.pos.has(e.block.dma) &&
      e.pool.live[e.pool.pos.get(e.block.dma)!] === e.block && e.bytes.byteLength);
    if (!live.length) return this.opScribble();
    const esc = this.pick(live);
    this.count('escape-write');
    this.trace(`escape-write #${esc.id} pool#${esc.pool.id} ${hex(esc.block.dma)}`);
    const b = esc.block;
    if (this.mismatch(esc.bytes, b.id) >= 0) this.verifyBlock(b, true, `escape-write #${esc.id}: before the write`);
    b.id = this.nextBlockId++;
    this.writePattern(esc.bytes, b.id);
    const v = this.freshView(esc.pool, b.dma, b.page, `escape-write ${hex(b.dma)}`);
    if (v && this.mismatch(v, b.id) >= 0) {
      this.note(`${esc.via}: escaped bytes are a copy, not the block`);
      this.writePattern(v, b.id);
    }
    this.verifyBlock(b, false, 'escape-write');
  }

  /**
   * JS moves escaped memory on again (enqueue the escaped chunk into another stream): the
   * memory follows to a third ArrayBuffer, and the intermediate one may be collected — the page
   * must stay out of reuse as long as any of them is reachable.
   */
  private async opEscapeAgain(): Promise<void> {
    const held = this.escapes.filter((e) => e.bytes.byteLength);
    if (!held.length) return;
    const esc = this.pick(held);
    this.count('escape-again');
    this.trace(`escape-again #${esc.id} (pool#${esc.pool.id}${esc.pool.destroyed ? ', destroyed' : ''})`);
    let controller: ReadableByteStreamController | undefined;
    const rs = new ReadableStream({ type: 'bytes', start(c) { controller = c; } });
    const before = esc.bytes;
    try {
      controller!.enqueue(before as Uint8Array<ArrayBuffer>);
    } catch (e) {
      this.note(`escape-again: enqueue refused (${(e as Error)?.name})`);
      return;
    }
    const { value } = await rs.getReader().read();
    if (!(value instanceof Uint8Array) || value.length !== before.length && before.byteLength !== 0) {
      this.violation('stream-chunk', `escape-again #${esc.id}: read() gave ${String(value)}`);
      return;
    }
    if (before.byteLength !== 0) this.note('escape-again: the escaped chunk was not detached');
    esc.bytes = value;
    this.note('escape-again: memory moved to a third ArrayBuffer');
    // while the block is the same allocation of a live pool, the new chunk still is the block
    const pm = esc.pool;
    if (!pm.destroyed && !pm.tainted && pm.live[pm.pos.get(esc.block.dma) ?? -1] === esc.block &&
        this.mismatch(value, esc.block.id) >= 0)
      this.verifyBlock(esc.block, true, `escape-again #${esc.id}`);
  }

  /**
   * Garbage through an escaped ArrayBuffer whose pool is destroyed (or whose device is closed):
   * it must change no live block anywhere, and must not crash.
   */
  private opScribble(): void {
    const dead = this.escapes.filter((e) => e.pool.destroyed);
    if (!dead.length) return;
    const esc = this.pick(dead);
    this.count('scribble');
    const dm = esc.pool.dev;
    this.trace(`scribble #${esc.id} (${esc.via}, page ${hex(esc.page)} of destroyed pool#${esc.pool.id}${dm.closed ? ', device closed' : ''})`);
    const all = new Uint8Array(esc.bytes.buffer);
    if (all.length === 0) {
      this.note('scribble: escaped ArrayBuffer was detached');
    } else {
      const g = 1 + this.int(255);
      all.fill(g === POISON_FREED ? 0x5b : g);
      esc.scribbles++;
    }
    if (!dm.closed) this.sweepDevice(dm, false, `after garbage through escape #${esc.id}`);
    if (esc.scribbles % 4 === 0 || dm.closed)
      for (const d of this.openDevices()) if (d !== dm) this.sweepDevice(d, false, `after garbage through escape #${esc.id}`);
    // garbage that reached a free block of a debug pool is reported when that block is allocated
    // again (onDebugReport → 'debug-corruption-report'; delivered by a microtask, see run())
  }

  /** Lets JS drop escaped buffers (held long enough, or scribbled on) and collects them. */
  private dropEscapes(force: boolean): void {
    const before = this.escapes.length;
    this.escapes = this.escapes.filter((e) => !(force || this.step - e.bornStep > 30000 || e.scribbles >= 3 ||
      (!e.pool.destroyed && this.r() < 0.2)));
    if (this.gc && (before !== this.escapes.length || force || this.escapes.length)) {
      this.gc();
      this.note('gc runs');
    }
  }

  // ------------------------------------------------------------------ sweeps

  /** Changes one byte of a random live block behind the model's back (self-test of the checks). */
  private sabotage(): void {
    const pm = this.pickPoolWithBlocks();
    if (!pm) return;
    const b = this.pickBlock(pm);
    if (b.view.byteLength === 0 || this.sabotaged.has(b)) return;
    const i = this.int(b.view.length);
    b.view[i] ^= 1 + this.int(255);
    this.sabotaged.add(b);
    this.note('sabotage: planted corruptions');
    this.trace(`sabotage pool#${pm.id} ${hex(b.dma)} byte ${i}`);
  }

  private sampleCheck(): void {
    for (let i = 0; i < this.samplePerOp; i++) {
      const pm = this.pickPoolWithBlocks();
      if (!pm) return;
      this.verifyBlock(this.pickBlock(pm), false, 'sample');
    }
  }

  private sweepDevice(dm: DevM, fresh: boolean, what: string): void {
    for (const pm of dm.pools) {
      if (pm.tainted) continue;
      for (const b of pm.live) this.verifyBlock(b, fresh, what);
      for (const [d, v] of pm.poisoned) {
        if (pm.pos.has(d) || v.byteLength === 0) continue;
        const i = ApiFuzzer.allBytes(v, POISON_FREED);
        if (i >= 0) {
          this.violation('free-block-changed',
            `${what}: free block ${hex(d)} of debug ${pm.describe()}: byte ${i} is 0x${v[i].toString(16)}, want 0xa7 (a write into free memory)`);
          v.fill(POISON_FREED);
        }
      }
    }
  }

  private sweep(fresh: boolean): void {
    let live = 0, pages = 0;
    for (const pm of this.active) {
      live += pm.live.length;
      pages += pm.pages.size;
    }
    this.notes['peak live blocks (all pools)'] = Math.max(this.notes['peak live blocks (all pools)'] ?? 0, live);
    this.notes['peak pool pages (all pools)'] = Math.max(this.notes['peak pool pages (all pools)'] ?? 0, pages);
    for (const dm of this.openDevices()) {
      this.sweepDevice(dm, fresh, fresh ? 'full sweep (fresh views)' : 'full sweep');
      for (const pm of dm.pools) {
        if (pm.tainted) continue;
        this.checkPool(pm, 'full sweep');
        this.checkStats(pm, 'full sweep');
      }
      this.checkDevice(dm, 'full sweep');
    }
  }

  // ------------------------------------------------------------------ the run

  async run(): Promise<ApiFuzzResult> {
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) this.opOpen();
    let nextLog = 100000;
    while (this.opCount < this.cfg.ops) {
      this.step++;
      let x = this.r() * this.opTotal;
      let op = this.ops[this.ops.length - 1];
      for (const o of this.ops) {
        if (x < o.w) { op = o; break; }
        x -= o.w;
      }
      const p = op.fn();
      if (p) await p;
      if (this.cfg.sabotageEvery && this.step % this.cfg.sabotageEvery === 0) this.sabotage();
      this.sampleCheck();
      if (this.step % this.sweepEvery === 0) {
        this.sweep(this.step % (this.sweepEvery * 4) === 0);
        await new Promise<void>((res) => setImmediate(res)); // debug reports are delivered in a microtask
      }
      if (this.step % 20000 === 0) this.dropEscapes(false);
      if (this.opCount >= nextLog) {
        this.log(`  ${this.opCount} ops, ${((Date.now() - t0) / 1000).toFixed(1)} s, ${this.violationCount} violations, ` +
          `${this.active.length} pools on ${this.openDevices().length} devices, ${this.active.reduce((s, p) => s + p.live.length, 0)} live blocks`);
        nextLog += 100000;
      }
    }
    await this.teardown();
    return {
      seed: this.cfg.seed,
      ops: this.opCount,
      steps: this.step,
      elapsedMs: Date.now() - t0,
      opsByKind: this.opsByKind,
      errorsByCode: this.errorsByCode,
      violations: this.violationCount,
      violationsByKind: this.violationsByKind,
      examples: this.examples,
      notes: this.notes,
    };
  }

  /**
   * Pages kept out of reuse because JS held their memory come back once that memory is collected:
   * escaped buffers of destroyed pools are dropped, the GC runs, and a new page on each device
   * (allocChunk reclaims) must leave no page quarantined. Reported as a note when no GC handle exists.
   */
  private async checkReclaim(): Promise<void> {
    const quarantined = (dm: DevM) => dm.dev.provider.quarantined;
    let before = 0;
    for (const dm of this.openDevices()) before += quarantined(dm);
    this.notes['pages quarantined before the final GC'] = before;
    this.escapes = this.escapes.filter((e) => !(e.pool.destroyed && !e.pool.dev.closed));
    if (!this.gc) {
      this.note('no GC handle: reclaim of quarantined pages not checked');
      return;
    }
    for (let i = 0; i < 3; i++) {
      this.gc();
      await new Promise<void>((res) => setImmediate(res));
    }
    for (const dm of this.openDevices()) {
      if (!quarantined(dm)) continue;
      const pm = dm.pools.length < MAX_POOLS_PER_DEVICE + 1 ? this.createPool(dm) : undefined;
      if (!pm) continue;
      this.doAlloc(pm, false); // a new page: allocChunk reclaims what the GC collected
      const q = quarantined(dm);
      if (q) this.violation('quarantine-not-reclaimed',
        `dev#${dm.id}: ${q} pages still kept out of reuse after every escaped buffer of a destroyed pool was dropped and collected`);
    }
    let after = 0;
    for (const dm of this.openDevices()) after += quarantined(dm);
    this.notes['pages quarantined after the final GC'] = after;
  }

  /** Final sweep, then every device drained and closed; escaped buffers written after close; all collected. */
  private async teardown(): Promise<void> {
    this.sweep(true);
    await new Promise<void>((res) => setImmediate(res));
    await this.checkReclaim();
    for (const dm of this.openDevices()) {
      if (!this.closeDevice(dm, 'end of run')) continue;
      for (const d of this.openDevices()) this.sweepDevice(d, false, `after close of dev#${dm.id}`);
    }
    // every escaped buffer now names memory of a closed device: writing must not crash
    for (const e of this.escapes) {
      const all = new Uint8Array(e.bytes.buffer);
      all.fill(0xee);
      this.note('writes through escaped buffers after close');
    }
    this.dropEscapes(true);
    await new Promise<void>((res) => setImmediate(res));
    const left = this.devices.filter((d) => !d.closed);
    if (left.length) this.log(`${left.length} device(s) left open: a pool was tainted by an earlier violation`);
  }
}

function table(rec: Record<string, number>): string {
  const keys = Object.keys(rec).sort((a, b) => rec[b] - rec[a] || a.localeCompare(b));
  if (!keys.length) return '    (none)';
  const w = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `    ${k.padEnd(w)}  ${rec[k]}`).join('\n');
}

/** The run's summary: ops per kind, errors per code, notes, violations with their trails and how to replay. */
export function formatApiFuzzResult(r: ApiFuzzResult): string {
  const lines = [
    `API fuzzer: seed ${r.seed}, ${r.ops} ops (${r.steps} steps) in ${(r.elapsedMs / 1000).toFixed(1)} s, ` +
      `${r.violations} violations`,
    '  ops per kind:', table(r.opsByKind),
    '  errors thrown per code:', table(r.errorsByCode),
    '  notes:', table(r.notes),
    `  violations: ${r.violations}`,
  ];
  if (r.violations) {
    lines.push(table(r.violationsByKind));
    lines.push(`  replay: DMAPOOL_FUZZ_SEED=${r.seed} DMAPOOL_FUZZ_API_OPS=<op number> ` +
      'npx mocha --no-config --timeout 600000 dist/test/fuzz-api.test.js');
    for (const ex of r.examples) {
      lines.push(`  - ${ex.kind} at op ${ex.op}: ${ex.detail}`);
      lines.push('      last operations:', ...ex.trail.map((t) => `        ${t}`));
    }
  }
  return lines.join('\n');
}
