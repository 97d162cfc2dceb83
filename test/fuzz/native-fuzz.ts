/**
 * Native fuzz child (run by test/fuzz-native.test.ts, one process per run):
 *
 *   node [--expose-gc] dist/test/fuzz/native-fuzz.js <seed> <calls> <native|raw|worker>
 *
 * Makes `calls` seeded-random calls to EVERY export of the addon with hostile argument tuples —
 * wrong types, real-but-wrong handles (stdin/stdout, closed fds, unmapped mappings, view ids,
 * another instance's ids), boundary offsets around mapping sizes, random ioctl requests, odd,
 * detached and SharedArrayBuffer-backed TypedArrays, option objects with getters that call back
 * into the addon — and in between writes through every buffer it was handed (also after unmap,
 * and after moving them away through a byte stream). Every call must return or throw an Error
 * whose `code` is an errno name; through native() it must be a DmaPoolError. Prints one JSON
 * line (FuzzSummary) on stdout; a crash shows as a signal in the parent.
 *
 * Modes: `native` fuzzes native() and a second raw instance (process.dlopen); `raw` fuzzes
 * require(addonPath()) without setErrorClass; `worker` runs the native fuzz in a worker thread
 * while a second worker doing the same is terminated mid-call.
 *
 * It opens only /dev/null, /dev/zero, /proc/self/pagemap, files and the directory of its own
 * temp dir, and memfds (nothing that can block), populates or locks only small mappings, and
 * touches at most a few pages of large ones.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { DmaPoolError } from '../../lib/errors';
import { addonPath, native } from '../../lib/native';
import * as U from '../../lib/vfio/uapi';
import { rng } from '../../lib/rng';

export interface FuzzSummary {
  seed: number;
  mode: string;
  /** Function exports of the addon (every one is called). */
  exports: string[];
  calls: number;
  returned: number;
  threw: number;
  /** Errors thrown by the fuzzer's own getters inside option objects (passed through unchanged). */
  sentinel: number;
  codes: Record<string, number>;
  perExport: Record<string, number>;
  /** Calls per export that returned (the valid paths were reached too). */
  okPerExport: Record<string, number>;
  /** Calls whose error was not an Error with an errno code (or not a DmaPoolError via native()). */
  bad: string[];
  badCount: number;
  /** Buffers moved away from the shim by a byte stream (escaped views). */
  escapes: number;
  /** A mapping of an instance the fuzzer never calls, a JS buffer and a foreign fd: unchanged. */
  canaryOk: boolean;
  canaryDetail?: string;
  /** How the child ended: left everything live, cleaned up, or process.exit() with state live. */
  ending: string;
  ms: number;
  workerTerminated?: boolean;
}

type Fn = (...args: unknown[]) => unknown;
type Addon = Record<string, unknown> & { pageSize: number; hugePageSize: number; constants: Record<string, number> };

const MiB = 1 << 20;
const SMALL = MiB; // populate / lock / MAP_POPULATE only up to this size

class Sentinel extends Error {}


/** One addon instance under fuzz and what the fuzzer knows about its handles. */
class Target {
  liveFds: number[] = [];
  closedFds: number[] = [];
  memfdSize = new Map<number, number>();
  sealed = new Set<number>(); // memfds sealed against shrinking (what mmapFd maps)
  zeroFds = new Set<number>(); // /dev/zero
  maps = new Map<number, { size: number; writable: boolean }>();
  deadMaps: number[] = [];
  views: number[] = [];
  maxMap = 0;
  maxView = 0;
  irqs: number[] = [];
  /** The largest interrupt handle id this target's addon instance has handed out. */
  maxIrqId = 0;
  closedIrqs: number[] = [];
  constructor(readonly name: string, readonly addon: Addon, readonly strict: boolean) {}
  fn(name: string): Fn { return this.addon[name] as Fn; }
}

export async function fuzz(seed: number, calls: number, mode: string): Promise<FuzzSummary> {
  const t0 = Date.now();
  // DMAPOOL_FUZZ_TRACE=1: every call on stderr before it is made (the last line names a crash)
  const trace = process.env.DMAPOOL_FUZZ_TRACE === '1';
  const R = rng(seed);
  const int = (n: number) => Math.floor(R() * n);
  const chance = (p: number) => R() < p;
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-fuzz-'));
  const tmpFile = path.join(tmp, 'file');
  fs.writeFileSync(tmpFile, Buffer.alloc(64 * 1024, 0x5a));
  const foreignFile = path.join(tmp, 'foreign');
  const foreignBytes = Buffer.from('foreign descriptor: the shim must never touch it\n');
  fs.writeFileSync(foreignFile, foreignBytes);
  const foreignFd = fs.openSync(foreignFile, 'r+');

  // ---- instances --------------------------------------------------------------------------
  const targets: Target[] = [];
  if (mode === 'raw') {
    // the addon exactly as require() gives it, before anything handed it DmaPoolError
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    targets.push(new Target('raw', require(addonPath()) as Addon, false));
  } else {
    targets.push(new Target('native', native() as unknown as Addon, true));
    const m = { exports: {} as Addon };
    process.dlopen(m, addonPath());
    targets.push(new Target('raw2', m.exports, false));
  }
  // a canary instance the fuzzer never calls: its mapping must keep its bytes
  const canaryMod = { exports: {} as Addon };
  process.dlopen(canaryMod, addonPath());
  const canary = canaryMod.exports;
  const canaryMap = (canary.mapAnonymous as Fn)(64 * 1024, 4096, {}) as { id: number; buffer: ArrayBuffer };
  const pattern = (i: number) => (i * 31 + 7) & 0xff;
  new Uint8Array(canaryMap.buffer).forEach((_, i, a) => { a[i] = pattern(i); });
  const jsCanary = new Uint8Array(256 * 1024).map((_, i) => pattern(i + 1));

  const A = targets[0].addon;
  const C = A.constants;
  const pg = A.pageSize;
  const exportNames = Object.keys(A).filter((k) => typeof A[k] === 'function').sort();

  // ---- bookkeeping --------------------------------------------------------------------------
  const s: FuzzSummary = {
    seed, mode, exports: exportNames, calls: 0, returned: 0, threw: 0, sentinel: 0, codes: {}, perExport: {}, okPerExport: {},
    bad: [], badCount: 0, escapes: 0, canaryOk: false, ending: '', ms: 0,
  };
  const buffers: ArrayBuffer[] = []; // every ArrayBuffer the shim handed out (some detached by now)
  const escaped: Uint8Array[] = []; // memory moved away from the shim's handles by a byte stream
  const streams: ReadableStreamDefaultReader<Uint8Array>[] = []; // escaped chunks still queued
  const origin = new WeakMap<ArrayBufferLike, string>(); // for the trace: which call made a buffer
  const keepBuffer = (b: unknown, from = '') => {
    if (!(b instanceof ArrayBuffer)) return;
    if (trace) origin.set(b, from);
    buffers.push(b);
    if (buffers.length > 120) buffers.splice(int(buffers.length), 1);
  };

  const describe = (v: unknown): string => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (typeof v === 'symbol' || typeof v === 'function') return String(v).slice(0, 30);
    if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
    if (ArrayBuffer.isView(v)) {
      let n: number | string;
      try { n = v.byteLength; } catch { n = 'detached'; } // a detached DataView throws
      return `${v.constructor.name}(${n})`;
    }
    if (v && typeof v === 'object') return Array.isArray(v) ? `[${v.length}]` : '{…}';
    return String(v);
  };

  /**
   * Calls t.name(...args) (sometimes as a constructor or with a strange `this`) and checks the
   * outcome; `ok` is false when it threw.
   */
  function call(t: Target, name: string, args: unknown[]): { ok: boolean; r?: unknown } {
    s.calls++;
    s.perExport[name] = (s.perExport[name] ?? 0) + 1;
    if (trace) fs.writeSync(2, `${s.calls} ${t.name}.${name}(${args.map(describe).join(', ')})\n`);
    const f = t.fn(name);
    try {
      const r = chance(0.02) ? Reflect.construct(f as never, args)
        : chance(0.02) ? Reflect.apply(f, pick([null, 42, {}, t.addon]), args)
          : f(...args);
      s.returned++;
      s.okPerExport[name] = (s.okPerExport[name] ?? 0) + 1;
      return { ok: true, r };
    } catch (e) {
      s.threw++;
      if (e instanceof Sentinel) { s.sentinel++; return { ok: false }; }
      const code = (e as { code?: unknown } | null)?.code;
      const ok = e instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) &&
        (!t.strict || e instanceof DmaPoolError);
      if (typeof code === 'string') s.codes[code] = (s.codes[code] ?? 0) + 1;
      if (!ok) {
        s.badCount++;
        if (s.bad.length < 20) {
          s.bad.push(`${t.name}.${name}(${args.map(describe).join(', ')}) threw ` +
            `${(e as Error)?.constructor?.name} code=${String(code)}: ${String((e as Error)?.message ?? e)}`);
        }
      }
      return { ok: false };
    }
  }

  // ---- values ----------------------------------------------------------------------------------
  const NUMS = [0, -0, 1, -1, 0.5, 1.5, -1.5, 2, 3, 7, 8, 255, 256, 4095, 4096, 4097, 65535, 65536,
    2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 46, 2 ** 46 + 4096, 2 ** 53 - 1,
    2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e300, Number.MIN_VALUE, Number.EPSILON, NaN, Infinity, -Infinity,
    Number.MAX_VALUE];
  const BIGS = [0n, 1n, -1n, 8n, 4096n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 63n)];
  const STRS = ['', '0', '1', '4096', '/dev/null', 'a\0b', 'x'.repeat(5000), '\ud800', '1e3', 'EINVAL', 'null'];

  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
  function detachedView(): ArrayBufferView {
    const ab = new ArrayBuffer(64);
    const v = pick([() => new Uint8Array(ab, 3, 5), () => new DataView(ab, 8), () => new Uint32Array(ab)])();
    structuredClone(ab, { transfer: [ab] }); // a plain ArrayBuffer really is transferred: `ab` is detached
    return v;
  }
  function typed(): ArrayBufferView {
    const n = pick([0, 1, 3, 4, 7, 8, 15, 16, 17, 20, 23, 24, 31, 32, 33, 63, 64, 4095, 4096, 4097, 65535, 65536, 65537]);
    switch (int(14)) {
      case 0: return new Uint8Array(n);
      case 1: return new Uint16Array(n >> 1);
      case 2: return new Int32Array(n >> 2);
      case 3: return new Float64Array(n >> 3);
      case 4: return new BigUint64Array(n >> 3);
      case 5: return new DataView(new ArrayBuffer(n + 5), int(5));
      case 6: return Buffer.alloc(n);
      case 7: return new Uint8Array(n + 9).subarray(1 + int(7), 1 + int(7) + n);
      case 8: return detachedView();
      case 9: return chance(0.5) ? new Uint8Array(new SharedArrayBuffer(n + 1), 1) : new DataView(new SharedArrayBuffer(n + 8), 8);
      case 10: {
        // a view of memory the shim handed out (maybe detached, maybe an escaped copy of the range)
        const b = buffers.length ? pick(buffers) : new ArrayBuffer(8);
        if (b.byteLength === 0) return detachedView(); // detached: cannot even make a view of it
        const off = int(b.byteLength);
        return new Uint8Array(b, off, Math.min(b.byteLength - off, n));
      }
      case 11: return escaped.length ? pick(escaped) : new Uint8Array(n);
      case 12: return new Uint8Array(new Resizable(n, { maxByteLength: n + 64 })); // length-tracking
      default: return new Uint8Array(pick([8, 16, 20, 24, 32, 64, 128]));
    }
  }

  const tgtOther = (t: Target) => targets.find((x) => x !== t) ?? t;
  function hostile(t: Target): unknown {
    switch (int(16)) {
      case 0: return undefined;
      case 1: return null;
      case 2: return chance(0.5);
      case 3: return pick(STRS);
      case 4: case 5: return pick(NUMS);
      case 6: return pick(BIGS);
      case 7: return pick([{}, [], [4096], { valueOf: () => 4096 }, { toString: () => '4096' }, Object.create(null),
        new Date(0), /x/, Symbol('s'), () => 4096, new Proxy({}, {}), new Map(), Promise.resolve(1)]);
      case 8: case 9: return typed();
      case 10: return pick([new ArrayBuffer(int(9000)), new SharedArrayBuffer(16), buffers.length ? pick(buffers) : new ArrayBuffer(0)]);
      case 11: return fdArg(tgtOther(t));
      case 12: return mapArg(tgtOther(t));
      case 13: return viewArg(t);
      case 14: return pick([0, 1, 2, foreignFd]);
      default: return pick(NUMS) * (chance(0.5) ? 1 : -1);
    }
  }

  function fdArg(t: Target): unknown {
    const r = R();
    if (r < 0.6 && t.liveFds.length) return pick(t.liveFds);
    if (r < 0.7 && t.closedFds.length) return pick(t.closedFds);
    if (r < 0.8) return pick([0, 1, 2, foreignFd, ...tgtOther(t).liveFds]);
    if (r < 0.85 && t.liveFds.length) return pick(t.liveFds) + pick([2 ** 32, -(2 ** 32), 0.5, 2 ** 31]);
    if (r < 0.9 && t.liveFds.length) return -pick(t.liveFds);
    return hostile(t);
  }
  function liveMapIds(t: Target) { return [...t.maps.keys()]; }
  function mapArg(t: Target): unknown {
    const r = R();
    const live = liveMapIds(t);
    if (r < 0.65 && live.length) return pick(live);
    if (r < 0.75 && t.deadMaps.length) return pick(t.deadMaps);
    if (r < 0.8 && t.views.length) return pick(t.views);
    if (r < 0.85) return t.maxMap + 1 + int(4);
    if (r < 0.9 && live.length) return pick(live) + pick([2 ** 32, -(2 ** 32), 0.5, 2 ** 53]);
    if (r < 0.93 && buffers.length) return pick(buffers); // what the old shim took
    return hostile(t);
  }
  function viewArg(t: Target): unknown {
    const r = R();
    if (r < 0.7 && t.views.length) return pick(t.views);
    if (r < 0.8) return t.maxView + 1 + int(4);
    if (r < 0.85) return pick(liveMapIds(t).concat([1]));
    if (r < 0.9 && t.views.length) return pick(t.views) + 2 ** 32;
    return hostile(t);
  }
  function sizeOf(t: Target, id: unknown): number {
    return (typeof id === 'number' && t.maps.get(id)?.size) || pick([pg, 4 * pg, 16 * pg]);
  }
  /** An offset near the interesting edges of a `size`-byte mapping for accesses of `w` bytes. */
  function around(size: number, w: number): unknown {
    const c = [0, w, size - w, size - w + 1, size - w - 1, size - 1, size, size + 1, size + w, -w, -1,
      2 ** 53 - 1, 2 ** 53 - w, 2 ** 32 + size - w, 2 ** 64, (size >> 1) & ~7, int(Math.max(1, size)),
      int(Math.max(1, size)) & ~7, 0.5, NaN, -0];
    if (chance(0.4)) return w * int(Math.max(1, Math.floor(size / w))); // aligned, inside
    return chance(0.9) ? pick(c) : hostile(targets[0]);
  }
  function length(size: number, off: unknown): unknown {
    const o = typeof off === 'number' && Number.isFinite(off) ? off : 0;
    return pick([1, 2, 7, 8, 16, 4096, size - o, size - o + 1, size - o - 1, size, 2, 2 ** 53 - 1, 2 ** 32, 0, -1, 0.5,
      2 ** 32 + 1, size + 1]);
  }

  /** A call made from inside another one (a getter the addon runs while it reads its options). */
  const again = (t: Target, name: string, a: unknown[]) => learn(t, name, a, call(t, name, a));

  /**
   * Runs `run` (one call) while setters on Object.prototype intercept every property the addon
   * sets on the objects it returns or throws: each setter keeps the value but first calls back
   * into the addon — unmapping the mapping, closing the fd, releasing the view the call is about.
   */
  const PROTO_KEYS = ['id', 'buffer', 'address', 'view', 'length', 'writable', 'views', 'held', 'hugetlb', 'locked',
    'soft', 'hard', 'hint', 'errno', 'syscall', 'path'];
  function withProtoSetters<T>(a: unknown[], run: () => T): T {
    let busy = false;
    const proto = Object.prototype as Record<string, unknown>;
    for (const k of PROTO_KEYS) {
      // descriptors without a prototype: they must not inherit the accessors defined here
      Object.defineProperty(proto, k, Object.assign(Object.create(null) as PropertyDescriptor, {
        configurable: true,
        get() { return undefined; },
        set(this: object, v: unknown) {
          Object.defineProperty(this, k, Object.assign(Object.create(null) as PropertyDescriptor,
            { value: v, writable: true, enumerable: true, configurable: true }));
          if (busy) return;
          busy = true;
          try {
            const o = pick(targets);
            const first = typeof a[0] === 'number' ? a[0] : undefined;
            switch (int(5)) {
              case 0: again(o, 'unmap', [first ?? mapArg(o)]); break;
              case 1: again(o, 'releaseBuffer', [first ?? viewArg(o)]); break;
              case 2: again(o, 'close', [first ?? fdArg(o)]); break;
              case 3: again(o, 'unmap', [mapArg(o)]); break;
              default: again(o, 'mappingInfo', [first ?? mapArg(o)]); break;
            }
          } finally {
            busy = false;
          }
        },
      }));
    }
    try {
      return run();
    } finally {
      for (const k of PROTO_KEYS) delete proto[k];
    }
  }

  /** Options for mapAnonymous; populate/lock only when the size is small (a real mapping). */
  function opts(t: Target, small: boolean): unknown {
    switch (int(12)) {
      case 0: return {};
      case 1: return { thp: chance(0.5), populate: small && chance(0.5) };
      case 2: return { hugetlb: chance(0.5), populate: small && chance(0.3) };
      case 3: return { lock: small ? pick([0, 1, 2]) : 0 };
      case 4: return { lock: pick([7, -1, 1.5, NaN, '1', null, 3, 1n, true]) };
      case 5: return { hugetlb: pick(['yes', 1, null, 0]) as unknown };
      case 6: return pick([null, undefined, 'x', 7, [], [{}], () => ({}), Symbol('o'), 4096n]);
      case 7: {
        // getters that call back into the addon while it reads its options
        const other = pick(targets);
        return {
          get thp() { const ids = liveMapIds(other); if (ids.length) again(other, 'unmap', [pick(ids)]); return false; },
          get populate() { again(other, 'subBuffer', [mapArg(other), 0, 8]); return false; },
          get lock() { again(other, 'close', [fdArg(other)]); return 0; },
        };
      }
      case 8: return { get hugetlb() { throw new Sentinel('getter'); } };
      case 9: return new Proxy({}, { get: (_o, k) => (k === 'lock' && small ? 1 : k === 'thp' ? true : undefined) });
      case 10: return Object.assign(Object.create({ populate: small }), { thp: true });
      default: return { thp: true, populate: small, lock: small ? 1 : 0, extra: 1 };
    }
  }

  const ALLOWED_IOCTLS = [U.VFIO_GET_API_VERSION, U.VFIO_CHECK_EXTENSION, U.VFIO_SET_IOMMU, U.VFIO_GROUP_GET_STATUS,
    U.VFIO_GROUP_SET_CONTAINER, U.VFIO_GROUP_UNSET_CONTAINER, U.VFIO_DEVICE_GET_INFO, U.VFIO_DEVICE_GET_REGION_INFO,
    U.ioc(0, ';', 109, 0) /* GET_IRQ_INFO */, U.ioc(0, ';', 110, 0) /* SET_IRQS */, U.VFIO_DEVICE_RESET,
    U.VFIO_IOMMU_GET_INFO, U.DMA_BUF_IOCTL_SYNC];
  const OTHER_IOCTLS = [U.VFIO_IOMMU_MAP_DMA, U.VFIO_IOMMU_UNMAP_DMA, U.VFIO_GROUP_GET_DEVICE_FD, U.UDMABUF_CREATE,
    U.UDMABUF_CREATE_LIST, 0x541b /* FIONREAD */, 0x5401 /* TCGETS */, 0x5421 /* FIONBIO */, 0x40086602 /* FS_IOC_SETFLAGS */,
    0xc0185879 /* FIDEDUPERANGE-ish */, 0];
  function request(): unknown {
    const r = R();
    if (r < 0.55) return pick(ALLOWED_IOCTLS);
    if (r < 0.7) return pick(ALLOWED_IOCTLS) + pick([1, -1, 2 ** 32, 0x10000, 0x40000000]);
    if (r < 0.85) return pick(OTHER_IOCTLS);
    if (r < 0.95) return int(2 ** 32);
    return hostile(targets[0]);
  }

  const PATHS = () => ['/dev/null', '/dev/zero', tmpFile, tmp, '/proc/self/pagemap', path.join(tmp, 'missing'), '',
    'a\0b', 'x'.repeat(5000), 'relative-missing'];

  // ---- generators: one argument tuple per export ------------------------------------------------
  const gen: Record<string, (t: Target) => unknown[]> = {
    mapAnonymous: (t) => {
      const size = chance(0.8) ? pg * (1 + int(16)) : pick([0, 1, pg - 1, pg + 1, 2 * MiB, 2 ** 32 - pg, 2 ** 32,
        2 ** 32 + pg, 2 ** 46, 2 ** 46 + pg, 2 ** 53, -pg, -4096, ...NUMS]);
      const align = pick([0, pg, 2 * pg, 2 * MiB, 2 ** 30, 2 ** 31, 3, 3 * pg, -1, 1, MiB, 0.5, NaN]);
      return [size, align, opts(t, size <= SMALL)];
    },
    mmapFd: (t) => {
      const sealed = [...t.sealed].filter((fd) => (t.memfdSize.get(fd) ?? 0) > 0);
      if (chance(0.45) && (sealed.length || t.zeroFds.size)) {
        // a mapping that can succeed: a sealed memfd inside its size, or /dev/zero
        const zero = !sealed.length || chance(0.2);
        const fd = zero ? pick([...t.zeroFds]) : pick(sealed);
        const total = zero ? 64 * pg : t.memfdSize.get(fd)!;
        const pages = Math.max(1, Math.floor(total / pg));
        const off = zero ? (chance(0.8) ? 0 : pg * int(4)) : pg * int(pages);
        const size = chance(0.8) ? Math.max(1, Math.min(total - off, pg * (1 + int(4)))) : total - off + pick([0, 1, pg]);
        return [fd, size, off, pick([C.PROT_READ, C.PROT_READ | C.PROT_WRITE, C.PROT_READ | C.PROT_WRITE]),
          pick([C.MAP_SHARED, C.MAP_PRIVATE, C.MAP_SHARED | C.MAP_POPULATE])];
      }
      const fd = fdArg(t);
      const known = typeof fd === 'number' ? t.memfdSize.get(fd) : undefined;
      const size = known !== undefined && chance(0.7)
        ? pick([known, known - pg, known + pg, pg, known * 2, 1, known - 1].filter((x) => x !== 0))
        : pick([pg, 2 * pg, 16 * pg, 1, 0, 2 ** 32, 2 ** 32 + pg, 2 ** 46, -pg, 2 ** 53, 0.5, NaN]);
      const off = pick([0, 0, 0, pg, 2 * pg, 1, -pg, 2 ** 46, 2 ** 53, known ?? 0, 0.5]);
      const prot = pick([C.PROT_READ, C.PROT_READ | C.PROT_WRITE, C.PROT_READ | C.PROT_WRITE, 0, C.PROT_WRITE, 7, 0xff, 256, -1]);
      const flags = pick([C.MAP_SHARED, C.MAP_SHARED, C.MAP_PRIVATE, C.MAP_SHARED | C.MAP_POPULATE,
        C.MAP_SHARED | C.MAP_PRIVATE, 0, 0x20 /* MAP_ANONYMOUS */, 0x10 /* MAP_FIXED */, int(2 ** 31)]);
      return [fd, size, off, prot, flags, ...(chance(0.5) ? [pick(['memfd', 'x', '', 5, null])] : []),
        ...(chance(0.3) ? [pick(['hint', 5])] : [])];
    },
    subBuffer: (t) => {
      const id = mapArg(t);
      const size = sizeOf(t, id);
      const off = around(size, 1);
      return [id, off, length(size, off)];
    },
    zeroRange: (t) => {
      const id = mapArg(t);
      const size = sizeOf(t, id);
      const off = around(size, 1);
      return [id, off, length(size, off)];
    },
    releaseBuffer: (t) => [viewArg(t)],
    bufferPending: (t) => [viewArg(t)],
    unmap: (t) => [mapArg(t)],
    mappingInfo: (t) => [mapArg(t)],
    mmioRead: (t) => {
      const id = mapArg(t);
      const w = pick([1, 2, 4, 8, 8, 4, 0, 3, 16, -1, 1.5, NaN, 8n, '4']);
      return [id, around(sizeOf(t, id), typeof w === 'number' && w > 0 ? w : 4), w];
    },
    mmioWrite: (t) => {
      const id = mapArg(t);
      const w = pick([1, 2, 4, 8, 8, 4, 0, 3, 16, -1, 1.5, NaN, 8n, '4']);
      const v = pick([0, 1, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, 0n, 255n, 256n,
        2n ** 64n - 1n, 2n ** 64n, -1n, 1.5, NaN, '1', null]);
      return [id, around(sizeOf(t, id), typeof w === 'number' && w > 0 ? w : 4), v, w];
    },
    open: () => [pick(PATHS()), pick([C.O_RDONLY, C.O_WRONLY, C.O_RDWR, C.O_RDWR, C.O_RDWR | C.O_SYNC,
      C.O_RDONLY | C.O_NONBLOCK, 3, 0o100 /* O_CREAT */, 0o1000 /* O_TRUNC */, 0o200000 /* O_DIRECTORY */, -1, 2 ** 31, 0.5]),
    ...(chance(0.3) ? [pick(['hint', 7, null, 'h'.repeat(5000)])] : [])],
    close: (t) => [fdArg(t)],
    ioctl: (t) => {
      const req = request();
      const arg = pick([() => typed(), () => typed(), () => pick([0, 1, 4095, 4096, 2 ** 31, -1, 0.5, NaN]), () => undefined,
        () => new Uint8Array(pick([4, 7, 8, 15, 16, 19, 20, 31, 32, 64, 65536, 65537])), () => hostile(t)])();
      return [fdArg(t), req, arg, ...(chance(0.3) ? [pick(['name', 5, null]), pick(['hint', {}, undefined])] : [])];
    },
    pread: (t) => [fdArg(t), typed(), pick([0, 0, 1, 4096, 2 ** 32, 2 ** 44, 2 ** 46, 2 ** 53 - 1, 2 ** 53, -1, 0.5, NaN, 8n]),
      ...(chance(0.3) ? [pick(['name', 5]), pick(['hint', null])] : [])],
    pwrite: (t) => [fdArg(t), typed(), pick([0, 0, 1, 4096, 2 ** 32, 2 ** 44, 2 ** 46, 2 ** 53 - 1, 2 ** 53, -1, 0.5, NaN, 8n]),
      ...(chance(0.3) ? [pick(['name', 5]), pick(['hint', null])] : [])],
    memfdCreate: () => [pick(['fuzz', '', 'x'.repeat(249), 'x'.repeat(250), 'a\0b', 5, null]),
      pick([0, C.MFD_ALLOW_SEALING, C.MFD_ALLOW_SEALING, C.MFD_HUGETLB, C.MFD_CLOEXEC, C.MFD_ALLOW_SEALING | C.MFD_HUGETLB,
        8 /* MFD_NOEXEC_SEAL */, 16, -1, 2 ** 31, 0.5]),
      ...(chance(0.3) ? [pick(['hint', 5])] : [])],
    ftruncate: (t) => [fdArg(t), pick([0, pg, 2 * pg, 4 * pg, 16 * pg, 2 * MiB, 2 ** 32, 2 ** 46, 2 ** 46 + 1, -1, 0.5, 2 ** 53, NaN])],
    addSeals: (t) => [fdArg(t), pick([C.F_SEAL_SHRINK, C.F_SEAL_SHRINK, C.F_SEAL_GROW, C.F_SEAL_WRITE, C.F_SEAL_SEAL, 15, 16, 0, -1, 0.5])],
    getSeals: (t) => [fdArg(t)],
    getrlimitMemlock: (t) => (chance(0.7) ? [] : [hostile(t)]),
    vfioGroupGetDeviceFd: (t) => [fdArg(t), pick(['0000:00:03.0', '', 'x'.repeat(65), 'a\0b', 5, null]),
      ...(chance(0.3) ? [pick(['hint', 5])] : [])],
    udmabufCreate: (t) => [fdArg(t), fdArg(t), pick([0, pg, -1, 2 ** 53, 0.5]), pick([pg, 1, 0, 2 ** 53, -pg]),
      ...(chance(0.3) ? [pick(['hint', 5])] : [])],
    vfioMapDma: (t) => {
      const id = mapArg(t);
      const size = sizeOf(t, id);
      return [fdArg(t), id, pick([0, pg, size, size - pg, -pg, 1, 2 ** 53]), pick([pg, size, size + pg, 0, 1, 2 ** 53 - 1]),
        pick([0, pg, 2 ** 32, 2 ** 53 - pg, 2 ** 53, -pg, 1]), ...(chance(0.3) ? [pick(['hint', 5])] : [])];
    },
    vfioUnmapDma: (t) => [fdArg(t), pick([0, pg, 2 ** 53, -1, 0.5]), pick([pg, 0, 2 ** 53 - 1, 2 ** 64, -pg])],
    // iommufd / VFIO cdev (native/iommufd.cc): no /dev/iommu here, so every descriptor must be refused
    // (EBADF) and every bad number caught first (EINVAL) — never a crash or a stray ioctl
    iommufdIoasAlloc: (t) => [fdArg(t)],
    iommufdIovaRanges: (t) => [fdArg(t), pick([1, 0, -1, 2 ** 32, 0.5, 2 ** 53])],
    iommufdMapDma: (t) => {
      const id = mapArg(t);
      const size = sizeOf(t, id);
      return [fdArg(t), pick([1, 0, 2 ** 32 - 1, 2 ** 32, -1]), id, pick([0, pg, size, size - pg, -pg, 1, 2 ** 53]),
        pick([pg, size, size + pg, 0, 1, 2 ** 53 - 1]), pick([0, pg, 2 ** 32, 2 ** 53 - pg, 2 ** 53, -pg, 1]),
        ...(chance(0.3) ? [pick(['hint', 5])] : [])];
    },
    iommufdUnmapDma: (t) => [fdArg(t), pick([1, 0, 2 ** 32]), pick([0, pg, 2 ** 53, -1, 0.5, 2 ** 53 - pg]),
      pick([pg, 0, 2 ** 53 - 1, 2 ** 64, -pg, 2 * pg])],
    iommufdGetOption: (t) => [fdArg(t), pick([0, 1, 2, -1, 0.5]), pick([0, 1, 2 ** 32, -1])],
    vfioDeviceBindIommufd: (t) => [fdArg(t), fdArg(t), ...(chance(0.3) ? [pick(['hint', 5])] : [])],
    vfioDeviceAttachPt: (t) => [fdArg(t), pick([1, 0, 2 ** 32, -1, 0.5]), ...(chance(0.3) ? [pick(['hint', 5])] : [])],
    vfioDeviceDetachPt: (t) => [fdArg(t)],
    setErrorClass: (t) => (t.strict && chance(0.3) ? [DmaPoolError]
      : [pick([5, 'DmaPoolError', null, undefined, {}, [], Symbol('c'), 1n, new Error('x')])]),
  };
  /** An interrupt handle argument: live, closed, another instance's, or hostile. */
  function irqArg(t: Target): unknown {
    const r = R();
    if (r < 0.6 && t.irqs.length) return pick(t.irqs);
    if (r < 0.75 && t.closedIrqs.length) return pick(t.closedIrqs);
    if (r < 0.85) { const o = pick(targets); if (o.irqs.length) return pick(o.irqs); }
    return pick([0, -1, 1, 2 ** 32, 2 ** 53, 0.5, NaN, '1', 1n, null, undefined, () => hostile(t)].map((v) => (typeof v === 'function' ? v() : v)));
  }
  /** Callbacks for interrupt handles: they run from the loop and call back into the addon. */
  function irqCallback(t: Target): unknown {
    return pick([
      () => {},
      () => {
        // re-entrancy from the loop: close itself or another handle, re-arm, signal another
        try {
          const o = pick(targets);
          const id = o.irqs.length ? pick(o.irqs) : 0;
          const op = pick(['irqClose', 'irqArm', 'irqSignal', 'irqRead']);
          learn(o, op, [id, 1], call(o, op, [id, 1]));
        } catch { /* the callback must not throw into the addon */ }
      },
      5, null, undefined, {}, 'f',
    ]);
  }
  gen.irqCreate = (t) => [irqCallback(t)];
  gen.irqAdoptUio = (t) => [fdArg(t), pick([0, 1, 2 ** 32 - 1, 2 ** 32, -1, 0.5]), irqCallback(t)];
  gen.irqArm = (t) => [irqArg(t)];
  gen.irqDisarm = (t) => [irqArg(t)];
  gen.irqRead = (t) => [irqArg(t)];
  gen.irqClose = (t) => [irqArg(t)];
  gen.irqCount = () => [];
  gen.irqSignal = (t) => [irqArg(t), pick([1, 1, 3, 0, -1, 2 ** 53 - 1, 2 ** 53, 0.5, NaN, 1n, '1'])];
  gen.irqUioControl = (t) => [irqArg(t), pick([true, false, 1, 0, 'x', null])];
  gen.vfioSetIrqs = (t) => {
    const ids = () => Array.from({ length: int(4) }, () => (chance(0.8) ? irqArg(t) : -1));
    const irqs = pick([undefined, undefined, ids(), [-1], [-2], [0.5], 'x', {}, new Array(3000).fill(-1), [2 ** 32]]);
    return [fdArg(t), pick([0, 1, 2, 3, 4, 5, -1, 0.5, 2 ** 32]), pick([8, 16, 32, 32, 0, 24, 1, -1]),
      pick([0, 0, 1, 2047, 2048, -1, 0.5]), Array.isArray(irqs) && chance(0.7) ? irqs.length : pick([0, 1, 2, 2048, 2049, -1]), irqs];
  };
  const generic = (t: Target) => Array.from({ length: int(6) }, () => hostile(t));

  /** Keeps the fuzz inside the machine: nothing large is populated, locked or pre-faulted. */
  function defuse(name: string, a: unknown[]): void {
    const big = (v: unknown) => !(typeof v === 'number' && v <= SMALL);
    if (name === 'mapAnonymous' && big(a[0]) && a[2] !== null && typeof a[2] === 'object') a[2] = pick([{}, { thp: true }, { hugetlb: true }]);
    if (name === 'mmapFd' && big(a[1]) && typeof a[4] === 'number' && Number.isInteger(a[4])) a[4] = (a[4] as number) & ~C.MAP_POPULATE;
    // the shim maps up to 64 TiB (a read-only /dev/zero or memfd mapping costs only address space),
    // but two of those would leave V8 none: keep files and file mappings at most 16 GiB
    const HUGE = 2 ** 34;
    if ((name === 'mmapFd' || name === 'ftruncate') && typeof a[1] === 'number' && a[1] > HUGE && a[1] <= 2 ** 46 &&
        Number.isInteger(a[1])) a[1] = HUGE + (chance(0.5) ? pg : 0);
    // a callable that is not DmaPoolError would make every later error of native() a TypeError
    if (name === 'setErrorClass' && typeof a[0] === 'function' && a[0] !== DmaPoolError) a[0] = 5;
  }

  /** Learns new handles from a call's result (and forgets closed/unmapped ones). */
  function learn(t: Target, name: string, a: unknown[], res: { ok: boolean; r?: unknown }): void {
    if (!res.ok) return;
    const r = res.r;
    if ((name === 'open' || name === 'memfdCreate' || name === 'vfioGroupGetDeviceFd' || name === 'udmabufCreate') && typeof r === 'number') {
      t.liveFds.push(r);
      t.closedFds = t.closedFds.filter((x) => x !== r);
      t.memfdSize.delete(r);
      t.sealed.delete(r);
      t.zeroFds.delete(r);
      if (name === 'memfdCreate') t.memfdSize.set(r, 0);
      if (name === 'open' && a[0] === '/dev/zero') t.zeroFds.add(r);
    } else if ((name === 'irqCreate' || name === 'irqAdoptUio') && typeof r === 'number') {
      t.irqs.push(r);
      t.maxIrqId = Math.max(t.maxIrqId, r);
      if (name === 'irqAdoptUio') t.liveFds = t.liveFds.filter((x) => x !== a[0]); // the handle owns it now
    } else if (name === 'irqClose' && typeof a[0] === 'number' && t.irqs.includes(a[0])) {
      t.irqs = t.irqs.filter((x) => x !== a[0]);
      t.closedIrqs.push(a[0]);
      if (t.closedIrqs.length > 20) t.closedIrqs.shift();
    } else if (name === 'close' && typeof a[0] === 'number' && t.liveFds.includes(a[0])) {
      t.liveFds = t.liveFds.filter((x) => x !== a[0]);
      t.memfdSize.delete(a[0]);
      t.sealed.delete(a[0]);
      t.zeroFds.delete(a[0]);
      t.closedFds.push(a[0]);
      if (t.closedFds.length > 20) t.closedFds.shift();
    } else if (name === 'ftruncate' && typeof a[0] === 'number' && t.memfdSize.has(a[0])) {
      // sealed against shrinking, a smaller size failed; the size grew otherwise
      t.memfdSize.set(a[0], a[1] as number);
    } else if (name === 'addSeals' && typeof a[0] === 'number' && typeof a[1] === 'number' && (a[1] & C.F_SEAL_SHRINK)) {
      if (t.memfdSize.has(a[0])) t.sealed.add(a[0]);
    } else if ((name === 'mapAnonymous' || name === 'mmapFd') && r && typeof r === 'object' && 'id' in r) {
      const m = r as { id: number; buffer?: ArrayBuffer };
      t.maps.set(m.id, { size: name === 'mapAnonymous' ? a[0] as number : a[1] as number, writable: !!m.buffer });
      t.maxMap = Math.max(t.maxMap, m.id);
      t.maxView = Math.max(t.maxView, m.id); // ids are counters: a view id at least this large exists
      keepBuffer(m.buffer, `${t.name}.${name}(${a.map(describe).join(', ')}) = ${m.id}`);
    } else if (name === 'subBuffer' && r && typeof r === 'object' && 'view' in r) {
      const v = r as { view: number; buffer: ArrayBuffer };
      t.views.push(v.view);
      if (t.views.length > 200) t.views.shift();
      t.maxView = Math.max(t.maxView, v.view);
      keepBuffer(v.buffer, `${t.name}.${name}(${a.map(describe).join(', ')}) = view ${v.view}`);
    } else if (name === 'unmap' && r === true && typeof a[0] === 'number') {
      t.maps.delete(a[0]);
      t.deadMaps.push(a[0]);
      if (t.deadMaps.length > 20) t.deadMaps.shift();
    }
  }

  // ---- non-call steps ---------------------------------------------------------------------------
  /** Writes and reads a few bytes of a buffer the shim handed out (detached: no-op; after unmap of an escaped range: inert memory). */
  function touch(): void {
    const pool: ArrayBufferLike[] = [...buffers.slice(-40), ...escaped.map((e) => e.buffer)];
    if (!pool.length) return;
    const b = pick(pool);
    if (b.byteLength === 0) return; // detached
    const u = new Uint8Array(b);
    for (let i = 0; i < 4; i++) {
      const o = pick([0, u.length - 1, int(Math.min(u.length, 64 * 1024))]);
      if (trace) fs.writeSync(2, `touch ${o} of ${u.length} from ${origin.get(b) ?? 'escaped'}\n`);
      u[o] = (u[o] + 1) & 0xff;
    }
  }
  /** Moves a shim buffer into a byte stream: our handle is detached, the memory lives on in a new ArrayBuffer. */
  async function escape(): Promise<void> {
    const live = buffers.filter((b) => b.byteLength > 0);
    if (!live.length) return;
    const b = pick(live);
    let ctrl!: ReadableByteStreamController;
    const rs = new ReadableStream({ type: 'bytes', start(c) { ctrl = c; } });
    try {
      ctrl.enqueue(new Uint8Array(b, 0, Math.min(b.byteLength, pick([1, 64, 4096, b.byteLength]))));
    } catch {
      return; // this Node refuses to transfer it: nothing escaped
    }
    s.escapes++;
    const reader = rs.getReader();
    if (chance(0.5)) {
      const { value } = await reader.read();
      if (value) escaped.push(value);
      if (escaped.length > 16) escaped.splice(int(escaped.length), 1);
    } else {
      streams.push(reader); // still queued inside the stream
      if (streams.length > 8) streams.splice(int(streams.length), 1);
    }
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  async function collect(): Promise<void> {
    if (chance(0.5)) escaped.splice(0, int(escaped.length + 1));
    if (chance(0.5)) streams.splice(0, int(streams.length + 1));
    gc?.();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
  /** A sealed memfd (what mmapFd accepts), made through the fuzzed calls themselves. */
  function sealedMemfd(t: Target): void {
    const res = call(t, 'memfdCreate', ['fuzz-sealed', C.MFD_ALLOW_SEALING]);
    learn(t, 'memfdCreate', [], res);
    const fd = res.r;
    if (typeof fd !== 'number') return;
    const size = pick([pg, 4 * pg, 16 * pg, 2 * MiB]);
    learn(t, 'ftruncate', [fd, size], call(t, 'ftruncate', [fd, size]));
    const seals = C.F_SEAL_SHRINK | (chance(0.2) ? C.F_SEAL_GROW : 0);
    learn(t, 'addSeals', [fd, seals], call(t, 'addSeals', [fd, seals]));
  }

  // ---- main loop --------------------------------------------------------------------------------
  const WEIGHTS: Record<string, number> = {
    mapAnonymous: 6, mmapFd: 7, subBuffer: 8, zeroRange: 3, releaseBuffer: 5, bufferPending: 3, unmap: 3, mappingInfo: 3,
    mmioRead: 8, mmioWrite: 8, open: 3, close: 2, ioctl: 8, pread: 5, pwrite: 5, memfdCreate: 2, ftruncate: 3,
    addSeals: 3, getSeals: 2, getrlimitMemlock: 1, vfioGroupGetDeviceFd: 2, udmabufCreate: 2, vfioMapDma: 3,
    vfioUnmapDma: 2, setErrorClass: 1, irqCreate: 2, irqAdoptUio: 1, irqArm: 3, irqDisarm: 2, irqRead: 3, irqSignal: 3,
    irqUioControl: 1, irqClose: 2, irqCount: 1, vfioSetIrqs: 3, iommufdIoasAlloc: 1, iommufdIovaRanges: 1, iommufdMapDma: 3, iommufdUnmapDma: 2,
    iommufdGetOption: 1, vfioDeviceBindIommufd: 2, vfioDeviceAttachPt: 1, vfioDeviceDetachPt: 1,
  };
  const wheel: string[] = [];
  for (const n of exportNames) for (let i = 0; i < (WEIGHTS[n] ?? 2); i++) wheel.push(n);

  for (const t of targets) {
    for (const p of ['/dev/null', '/dev/zero', tmpFile]) learn(t, 'open', [p], call(t, 'open', [p, C.O_RDWR]));
    learn(t, 'open', [], call(t, 'open', ['/proc/self/pagemap', C.O_RDONLY]));
    sealedMemfd(t);
  }

  let i = 0;
  while (s.calls < calls) {
    const t = targets.length > 1 && chance(0.25) ? targets[1] : targets[0];
    // the first rounds call every export once, in order
    const name = i < exportNames.length * targets.length ? exportNames[i % exportNames.length] : pick(wheel);
    i++;
    const step = R();
    const first = i <= exportNames.length * targets.length;
    if (!first && step < 0.05) { touch(); continue; }
    if (!first && step < 0.06) { await escape(); continue; }
    if (!first && step < 0.062) { await collect(); continue; }
    if (!first && (step < 0.07 || (t.liveFds.length < 3 && step < 0.2))) { sealedMemfd(t); continue; }
    let fname = name;
    // keep the handle pools bounded: too many fds or mappings → release some instead
    if (t.liveFds.length > 40 && ['open', 'memfdCreate', 'vfioGroupGetDeviceFd', 'udmabufCreate'].includes(name)) fname = 'close';
    if (t.maps.size > 40 && ['mapAnonymous', 'mmapFd'].includes(name)) fname = 'unmap';
    if (t.irqs.length > 30 && name === 'irqCreate') fname = 'irqClose';
    const a = (gen[fname] ?? generic)(t);
    // mutate: a hostile value in one position, a missing or an extra argument
    if (chance(0.12) && a.length) a[int(a.length)] = hostile(t);
    if (chance(0.04)) a.length = int(a.length + 1);
    if (chance(0.04)) a.push(hostile(t));
    if (fname === 'close' && t.liveFds.length > 40) a[0] = pick(t.liveFds);
    if (fname === 'unmap' && t.maps.size > 40) a[0] = pick(liveMapIds(t));
    if (fname === 'irqClose' && t.irqs.length > 30) a[0] = pick(t.irqs);
    defuse(fname, a);
    if (!first && chance(0.015)) learn(t, fname, a, withProtoSetters(a, () => call(t, fname, a)));
    else learn(t, fname, a, call(t, fname, a));
  }

  // ---- canaries and ending ----------------------------------------------------------------------
  const problems: string[] = [];
  const cb = new Uint8Array(canaryMap.buffer);
  if (cb.length !== 64 * 1024) problems.push(`canary mapping buffer has length ${cb.length}`);
  else if (!cb.every((v, k) => v === pattern(k))) problems.push('canary mapping bytes changed');
  if (!jsCanary.every((v, k) => v === pattern(k + 1))) problems.push('JS canary bytes changed');
  try {
    fs.fstatSync(foreignFd);
    const now = Buffer.alloc(foreignBytes.length + 8);
    const n = fs.readSync(foreignFd, now, 0, now.length, 0);
    if (!now.subarray(0, n).equals(foreignBytes)) problems.push('foreign file content changed');
  } catch (e) {
    problems.push(`foreign fd: ${(e as Error).message}`);
  }
  s.canaryOk = problems.length === 0;
  if (problems.length) s.canaryDetail = problems.join('; ');

  /**
   * Applies `op` to every interrupt handle id the target's addon instance may have handed out —
   * not only the ones the model tracks (a handle made inside a hostile getter or a callback is
   * never learned): one left armed keeps the loop, and so the child, alive by design.
   */
  function sweepIrqs(t: Target, op: 'irqDisarm' | 'irqClose'): void {
    for (let id = 1; id <= t.maxIrqId + 4096; id++) { try { (t.fn(op))(id); } catch { /* not open */ } }
  }

  const ending = pick(['live', 'cleanup', 'exit']);
  s.ending = ending;
  // an armed interrupt handle keeps the loop alive (by design): 'live' leaves the handles open
  // but idle, so the process ends and the environment teardown closes them
  if (ending === 'live') {
    // every id the target's addon instance ever handed out, not only the ones the model tracks:
    // a handle armed through an id the model lost would keep the loop (and the child) alive
    for (const t of targets) sweepIrqs(t, 'irqDisarm');
  }
  if (ending === 'cleanup') {
    for (const t of targets) {
      for (const id of liveMapIds(t)) { try { (t.fn('unmap'))(id); } catch { /* DMA-busy or already gone */ } }
      for (const fd of t.liveFds) { try { (t.fn('close'))(fd); } catch { /* closed through a getter */ } }
      sweepIrqs(t, 'irqClose');
    }
    escaped.length = 0;
    streams.length = 0;
    await collect();
  }
  fs.closeSync(foreignFd);
  fs.rmSync(tmp, { recursive: true, force: true });
  s.ms = Date.now() - t0;
  return s;
}

function print(s: FuzzSummary): void {
  fs.writeSync(1, JSON.stringify(s) + '\n');
}

async function main(): Promise<void> {
  const [seedArg, callsArg, mode = 'native'] = process.argv.slice(2);
  const seed = Number(seedArg) >>> 0;
  const calls = Number(callsArg ?? 10000);
  if (mode === 'worker') {
    // one worker runs to completion; another one is terminated while it hammers the addon
    const run = (n: number) => new Worker(__filename, { workerData: { fuzzWorker: true, seed: (seed + n) >>> 0, calls } });
    const victim = run(1);
    const done = new Promise<FuzzSummary>((resolve, reject) => {
      const w = run(0);
      w.on('message', resolve);
      w.on('error', reject);
      w.on('exit', (c) => { if (c !== 0) reject(new Error(`fuzz worker exited with ${c}`)); });
    });
    const victimExit = new Promise<number>((resolve) => victim.on('exit', resolve));
    victim.on('error', () => { /* terminated */ });
    await new Promise((r) => setTimeout(r, 150));
    await victim.terminate();
    await victimExit;
    const s = await done;
    s.mode = 'worker';
    s.workerTerminated = true;
    print(s);
    return;
  }
  const s = await fuzz(seed, calls, mode);
  print(s);
  if (s.ending === 'exit') process.exit(0);
  // The child must end on its own now. If something still keeps its loop alive a minute later,
  // say what (instead of hanging until the harness kills it) and fail.
  setTimeout(() => {
    const active = Reflect.get(process, '_getActiveHandles') as (() => object[]) | undefined;
    const handles = (active ? active.call(process) : []).map((h) => h.constructor?.name ?? typeof h);
    process.stderr.write(`native fuzz child still alive 60 s after its summary: ${native().irqCount()} interrupt handles open; active handles: ${handles.join(', ')}\n`);
    process.exit(5);
  }, 60_000).unref();
}

if (!isMainThread && (workerData as { fuzzWorker?: boolean } | null)?.fuzzWorker) {
  const d = workerData as { seed: number; calls: number };
  void fuzz(d.seed, d.calls, 'native').then((s) => {
    parentPort!.postMessage(s);
    if (s.ending === 'exit') process.exit(0); // ends this worker with its state live, like the child's process.exit()
  });
} else if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`native fuzz failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(3);
  });
}
