/**
 * Native shim safety (#safety): one regression test per way the old shim could be made to crash
 * the process or touch memory it did not own, plus the ones the native fuzzer found in the
 * rewrite. Every case runs in a child process (this file, run with the case name: `node
 * dist/test/native-safety.test.js <case>`), so a regression fails one test with the child's
 * signal instead of killing mocha. A case passes when the child exits 0 without a signal after
 * checking that every bad call threw a DmaPoolError with the right code and left everything
 * else as it was.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DmaPoolError } from '../lib/errors';
import { addonPath, native, type NativeAddon } from '../lib/native';
import * as U from '../lib/vfio/uapi';
import { describeIf, freeHugePages, itIf, requirement, RUNS_IN, type Requirement } from './helpers';

// ---- helpers for the child side ----------------------------------------------------------------

/** `fn` must throw a DmaPoolError with `code` (anything else — a return, another error — fails). */
function expectErr(fn: () => unknown, code: string, what: string): DmaPoolError {
  let r: unknown;
  try {
    r = fn();
  } catch (e) {
    if (!(e instanceof DmaPoolError)) {
      throw new assert.AssertionError({ message: `${what}: threw ${(e as Error)?.constructor?.name}, not a DmaPoolError: ${String((e as Error)?.stack ?? e)}` });
    }
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return e;
  }
  throw new assert.AssertionError({ message: `${what}: returned ${String(r)} instead of throwing ${code}` });
}
const inval = (fn: () => unknown, what: string) => expectErr(fn, 'EINVAL', what);

/** Calls a native function with arguments its type does not allow. */
const loose = <T>(f: T) => f as unknown as (...a: unknown[]) => unknown;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-native-safety-'));
}

function sealedMemfd(n: NativeAddon, size: number, name = 'safety'): number {
  const c = n.constants;
  const fd = n.memfdCreate(name, c.MFD_ALLOW_SEALING);
  n.ftruncate(fd, size);
  n.addSeals(fd, c.F_SEAL_SHRINK);
  return fd;
}

/** The VmFlags of the VMA holding `addr` (from /proc/self/smaps). */
function vmFlags(addr: bigint): string[] {
  let inside = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) inside = BigInt('0x' + m[1]) <= addr && addr < BigInt('0x' + m[2]);
    else if (inside && line.startsWith('VmFlags:')) return line.slice(8).trim().split(/\s+/);
  }
  throw new assert.AssertionError({ message: `no VMA holds 0x${addr.toString(16)}` });
}

/** Whether [addr, addr + len) overlaps any mapping in /proc/self/maps. */
function mapped(addr: bigint, len: number): boolean {
  const end = addr + BigInt(len);
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    return !!m && BigInt('0x' + m[1]) < end && addr < BigInt('0x' + m[2]);
  });
}

const turn = () => new Promise((r) => setImmediate(r));
const gc = () => (globalThis as { gc?: () => void }).gc!();
const nodeMajor = Number(process.versions.node.split('.')[0]);

// ---- the cases (each runs in its own child process) ----------------------------------------------

const CASES: Record<string, () => void | Promise<void>> = {
  /** 1. MMIO outside the mapping (old: an ArrayBuffer plus `off + width` that wrapped; `% 0`: SIGFPE). */
  mmio() {
    const n = native();
    const c = n.constants;
    const len = 4096 * 4;
    const m = n.mapAnonymous(len, 4096, {});
    const bytes = new Uint8Array(m.buffer);
    const w = loose(n.mmioWrite);
    const r = loose(n.mmioRead);
    for (const [off, what] of [[-4, 'negative'], [len - 3, 'straddles the end'], [len, 'at the end'], [2 ** 53, '2^53'],
      [2 ** 53 - 4, '2^53 - 4'], [2 ** 64, '2^64'], [2 ** 32 + 4, '2^32 + 4'], [2, 'unaligned'], [0.5, 'fractional'],
      [NaN, 'NaN'], ['0', 'a string'], [0n, 'a BigInt']] as const) {
      inval(() => w(m.id, off, 1, 4), `mmioWrite at ${what}`);
      inval(() => r(m.id, off, 4), `mmioRead at ${what}`);
    }
    for (const width of [0, 3, 5, 16, -4, 4.5, NaN, Infinity, '4', 4n, undefined]) {
      inval(() => w(m.id, 0, 1, width), `mmioWrite width ${String(width)}`);
      inval(() => r(m.id, 0, width), `mmioRead width ${String(width)}`);
    }
    for (const [value, width] of [[256, 1], [0x10000, 2], [2 ** 32, 4], [2n ** 64n, 8], [-1, 4], [-1n, 8], [1.5, 4], [NaN, 4],
      [2 ** 53, 8], ['1', 4], [null, 4], [undefined, 4]] as const) {
      inval(() => w(m.id, 8, value, width), `value ${String(value)} in ${width} bytes`);
    }
    assert.ok(bytes.every((b) => b === 0), 'a refused access wrote memory');
    // in range it works and lands where it should
    n.mmioWrite(m.id, len - 4, 0xdeadbeef, 4);
    assert.equal(new DataView(m.buffer).getUint32(len - 4, true), 0xdeadbeef);
    assert.equal(n.mmioRead(m.id, len - 4, 4), 0xdeadbeefn);
    n.mmioWrite(m.id, len - 8, 0x0123456789abcdefn, 8);
    assert.equal(n.mmioRead(m.id, len - 8, 8), 0x0123456789abcdefn);
    n.mmioWrite(m.id, 0, 0xff, 1);
    assert.equal(bytes[0], 0xff);
    // the old API took the ArrayBuffer itself
    inval(() => r(m.buffer, 0, 4), 'an ArrayBuffer as the mapping');
    inval(() => w(new Uint8Array(m.buffer), 0, 1, 1), 'a TypedArray as the mapping');
    // mappings that are gone or never were
    const gone = n.mapAnonymous(4096, 4096, {});
    assert.equal(n.unmap(gone.id), true);
    expectErr(() => n.mmioRead(gone.id, 0, 4), 'EBADF', 'mmioRead of an unmapped mapping');
    expectErr(() => n.mmioWrite(gone.id, 0, 1, 4), 'EBADF', 'mmioWrite of an unmapped mapping');
    expectErr(() => n.mmioRead(999_999, 0, 4), 'EBADF', 'mmioRead of a mapping never made');
    expectErr(() => n.mmioWrite(999_999, 0, 1, 4), 'EBADF', 'mmioWrite of a mapping never made');
    for (const id of [0, -1, 2 ** 32 + m.id, m.id + 0.5, String(m.id), BigInt(m.id)]) {
      inval(() => r(id, 0, 4), `mmioRead of mapping ${String(id)}`);
    }
    // a read-only mapping: no ArrayBuffer, readable by mmioRead, never written
    const fd = sealedMemfd(n, 4 * 4096, 'ro');
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(0, 0xcafef00d, true);
    n.pwrite(fd, data, 4096);
    const ro = n.mmapFd(fd, 4 * 4096, 0, c.PROT_READ, c.MAP_SHARED);
    assert.equal(ro.buffer, undefined, 'a read-only mapping came back with a (writable) ArrayBuffer');
    assert.equal(n.mappingInfo(ro.id)?.writable, false);
    assert.equal(n.mmioRead(ro.id, 4096, 4), 0xcafef00dn);
    inval(() => n.mmioWrite(ro.id, 4096, 1, 4), 'mmioWrite to a read-only mapping');
    inval(() => n.subBuffer(ro.id, 0, 16), 'subBuffer of a read-only mapping');
    const back = new Uint8Array(8);
    n.pread(fd, back, 4096);
    assert.deepEqual(back, data);
    assert.equal(n.mmioRead(ro.id, 4096, 4), 0xcafef00dn);
  },

  /** 2. mapAnonymous with bad sizes, alignments and options (old: -4096 wrapped size + align: abort). */
  mapAnonymous() {
    const n = native();
    const f = loose(n.mapAnonymous);
    inval(() => f(-4096, 4096, {}), 'size -4096');
    for (const size of [0, 1, 100, 4095, 4097, 4096.5, -1, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 2 ** 64,
      2 ** 46 + 4096, '4096', 4096n, undefined, null, {}, [4096]]) {
      inval(() => f(size, 4096, {}), `size ${String(size)}`);
    }
    // larger than the largest ArrayBuffer Node makes (old: Node ran the finalizer, node-addon-api
    // freed its data again: "double free", abort). Node 22+ allows more: then it may just work.
    for (const size of [2 ** 32 + 4096, 2 ** 46]) {
      if (nodeMajor < 22) {
        inval(() => f(size, 4096, {}), `size ${size}`);
      } else {
        try {
          const big = n.mapAnonymous(size, 4096, {});
          assert.equal(big.buffer.byteLength, size);
          n.unmap(big.id);
        } catch (e) {
          assert.ok(e instanceof DmaPoolError && ['EINVAL', 'ENOMEM'].includes(e.code), String(e));
        }
      }
    }
    for (const align of [3, 3 * 4096, 4097, 6 * 4096, -1, 2 ** 31, 2 ** 53, 0.5, NaN, '4096', 4096n, null]) {
      inval(() => f(4096, align, {}), `align ${String(align)}`);
    }
    for (const opts of [null, 'x', 7, [], undefined, () => ({}), Symbol('o'), 1n]) {
      inval(() => f(4096, 4096, opts), `options ${String(opts)}`);
    }
    for (const opts of [{ lock: 7 }, { lock: -1 }, { lock: '1' }, { lock: 1.5 }, { lock: NaN }, { lock: null }, { lock: 1n },
      { hugetlb: 'yes' }, { thp: 1 }, { populate: null }]) {
      inval(() => f(4096, 4096, opts), `options ${JSON.stringify(opts, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    }
    // and the good ones still work
    const a = n.mapAnonymous(4 * 4096, 0, {});
    assert.equal(a.buffer.byteLength, 4 * 4096);
    const b = n.mapAnonymous(2 << 20, 2 << 20, { thp: true, populate: true });
    assert.equal(b.address % BigInt(2 << 20), 0n);
    assert.equal(n.unmap(a.id), true);
    assert.equal(n.unmap(b.id), true);
    // a file mapping longer than an ArrayBuffer (a big 64-bit BAR) comes without a buffer, writable
    // or not, and MMIO reaches all of it
    if (nodeMajor < 22) {
      const c = n.constants;
      const fd = sealedMemfd(n, 2 ** 32 + 8192, 'big');
      const rw = n.mmapFd(fd, 2 ** 32 + 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED);
      assert.equal(rw.buffer, undefined);
      n.mmioWrite(rw.id, 2 ** 32 + 4088, 0x1234n, 8);
      assert.equal(n.mmioRead(rw.id, 2 ** 32 + 4088, 8), 0x1234n);
      n.mmioWrite(rw.id, 2 ** 32 + 4088, 0n, 8);
      assert.equal(n.unmap(rw.id), true);
      const ro = n.mmapFd(fd, 2 ** 32 + 4096, 0, c.PROT_READ, c.MAP_SHARED);
      assert.equal(ro.buffer, undefined);
      assert.equal(n.mmioRead(ro.id, 2 ** 32 + 4088, 8), 0n);
      assert.equal(n.unmap(ro.id), true);
      n.close(fd);
    }
  },

  /** 3. unmap of anything that is not a live mapping id (old: munmapped any page-aligned ArrayBuffer). */
  unmap() {
    const n = native();
    const f = loose(n.unmap);
    const pattern = (i: number) => (i * 13 + 5) & 0xff;
    const keep = n.mapAnonymous(4 * 4096, 4096, {});
    const keepBytes = new Uint8Array(keep.buffer);
    keepBytes.forEach((_, i) => { keepBytes[i] = pattern(i); });
    const t = n.mapAnonymous(4 * 4096, 4096, {});
    new Uint8Array(t.buffer).fill(0x77);
    const plain = new ArrayBuffer(8192);
    const node = Buffer.allocUnsafeSlow(64 * 1024).buffer; // malloc'ed: contains page-aligned pages
    for (const v of [keep.buffer, t.buffer, plain, node, new Uint8Array(keep.buffer), -1, -keep.id, 0, 2 ** 32 + keep.id,
      2 ** 32 + t.id, keep.id + 0.5, String(keep.id), BigInt(keep.id), NaN, Infinity, null, undefined, {}, [keep.id], keep.address]) {
      inval(() => f(v), `unmap(${typeof v === 'object' && v ? v.constructor.name : String(v)})`);
    }
    const never = Math.max(keep.id, t.id) + 1000;
    assert.equal(n.unmap(never), false, 'an id never issued');
    assert.equal(n.unmap(2 ** 32 - 1), false, 'the largest id');
    // nothing was detached or unmapped by any of that
    assert.equal(keep.buffer.byteLength, 4 * 4096);
    assert.ok(keepBytes.every((b, i) => b === pattern(i)));
    assert.equal(t.buffer.byteLength, 4 * 4096);
    assert.ok(new Uint8Array(t.buffer).every((b) => b === 0x77));
    assert.equal(plain.byteLength, 8192);
    assert.equal(node.byteLength, 64 * 1024);
    // the real one, once
    assert.equal(n.unmap(t.id), true);
    assert.equal(t.buffer.byteLength, 0, 'unmap left the buffer attached');
    assert.equal(n.mappingInfo(t.id), undefined);
    assert.equal(n.unmap(t.id), false, 'an id already unmapped');
    inval(() => f(2 ** 32 + t.id), 'unmap(2^32 + an unmapped id)');
    // the unrelated mapping is untouched
    assert.equal(keep.buffer.byteLength, 4 * 4096);
    assert.ok(keepBytes.every((b, i) => b === pattern(i)));
    assert.equal(n.mappingInfo(keep.id)?.length, 4 * 4096);
    assert.equal(n.mmioRead(keep.id, 5, 1), BigInt(pattern(5)));
    assert.ok(mapped(keep.address, 4 * 4096));
  },

  /** 4. mmapFd beyond the end of a file, of files that can shrink, of fds the shim did not open (old: SIGBUS). */
  mmapFd() {
    const n = native();
    const c = n.constants;
    const RW = c.PROT_READ | c.PROT_WRITE;
    const dir = tmpDir();
    try {
      // mapping a range the file does not cover would SIGBUS on access: touch it if it maps
      const refuse = (code: string, what: string, fd: number, size: number, off: number, prot = c.PROT_READ, flags = c.MAP_SHARED) =>
        expectErr(() => { const m = n.mmapFd(fd, size, off, prot, flags); n.mmioRead(m.id, size - 8, 8); }, code, what);
      const memfd = sealedMemfd(n, 8192);
      for (const prot of [c.PROT_READ, RW]) {
        for (const flags of [c.MAP_SHARED, c.MAP_PRIVATE]) {
          refuse('EINVAL', '16 KiB of an 8 KiB memfd', memfd, 16384, 0, prot, flags);
          refuse('EINVAL', '8 KiB at 4 KiB of an 8 KiB memfd', memfd, 8192, 4096, prot, flags);
          refuse('EINVAL', '4 KiB at 8 KiB of an 8 KiB memfd', memfd, 4096, 8192, prot, flags);
          refuse('EINVAL', '4 KiB at 12 KiB of an 8 KiB memfd', memfd, 4096, 12288, prot, flags);
        }
      }
      const whole = n.mmapFd(memfd, 8192, 0, RW, c.MAP_SHARED);
      new Uint8Array(whole.buffer!)[8191] = 1;
      const tail = n.mmapFd(memfd, 4096, 4096, c.PROT_READ, c.MAP_SHARED);
      assert.equal(n.mmioRead(tail.id, 4095, 1), 1n);
      // a memfd that is not sealed against shrinking
      const unsealed = n.memfdCreate('unsealed', c.MFD_ALLOW_SEALING);
      n.ftruncate(unsealed, 16384);
      refuse('EINVAL', 'an unsealed memfd', unsealed, 4096, 0);
      refuse('EINVAL', 'an unsealed memfd, writable', unsealed, 4096, 0, RW);
      // a regular file can always shrink
      const file = path.join(dir, 'file');
      fs.writeFileSync(file, Buffer.alloc(16384, 1));
      const ffd = n.open(file, c.O_RDWR);
      refuse('EINVAL', 'a regular file', ffd, 4096, 0);
      refuse('EINVAL', 'a regular file, writable', ffd, 4096, 0, RW);
      refuse('EINVAL', 'a regular file, private', ffd, 4096, 0, c.PROT_READ, c.MAP_PRIVATE);
      refuse('EINVAL', '/proc/self/pagemap', n.open('/proc/self/pagemap', c.O_RDONLY), 4096, 0);
      // descriptors the shim did not open
      const nodeFd = fs.openSync(file, 'r+');
      for (const fd of [nodeFd, 0, 1, 2]) refuse('EBADF', `fd ${fd} (not opened by the shim)`, fd, 4096, 0);
      const closed = n.memfdCreate('closed', 0);
      n.close(closed);
      refuse('EBADF', 'a closed fd', closed, 4096, 0);
      fs.fstatSync(nodeFd);
      fs.closeSync(nodeFd);
      // /dev/zero shared at an offset: the kernel's shmem object is as long as the mapping but the
      // offset stays, so every page is past its end (found by the fuzzer: SIGBUS)
      const zero = n.open('/dev/zero', c.O_RDWR);
      refuse('EINVAL', '/dev/zero shared at 4 KiB', zero, 8192, 4096, RW);
      refuse('EINVAL', '/dev/zero shared at 2^46', zero, 8192, 2 ** 46, c.PROT_READ);
      const zs = n.mmapFd(zero, 8192, 0, RW, c.MAP_SHARED);
      new Uint8Array(zs.buffer!)[8191] = 3;
      const zp = n.mmapFd(zero, 8192, 4096, RW, c.MAP_PRIVATE);
      new Uint8Array(zp.buffer!)[8191] = 3;
      // not mappable at all
      refuse('ENODEV', 'a directory', n.open(dir, c.O_RDONLY), 4096, 0);
      refuse('ENODEV', '/dev/null', n.open('/dev/null', c.O_RDWR), 4096, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },

  /** 4b. mmapFd of a block device: it maps its page cache, and past its end (an unbound loop device has none) is SIGBUS. */
  mmapFdBlockDevice() {
    const n = native();
    const c = n.constants;
    const blk = openableBlockDevice();
    assert.ok(blk, 'the parent found an openable block device');
    expectErr(() => { const m = n.mmapFd(n.open(blk, c.O_RDONLY | c.O_NONBLOCK), 4096, 0, c.PROT_READ, c.MAP_SHARED); n.mmioRead(m.id, 4088, 8); },
      'ENODEV', `block device ${blk}`);
  },

  /** 5. close of descriptors the shim did not open (old: close((int)2^32 + fd) closed fd). */
  close() {
    const n = native();
    const c = n.constants;
    const f = loose(n.close);
    const dir = tmpDir();
    try {
      const fd = n.memfdCreate('close', 0);
      inval(() => f(2 ** 32 + fd), 'close(2^32 + fd)');
      for (const v of [-1, -fd, fd + 0.5, String(fd), BigInt(fd), NaN, null, undefined, {}, 2 ** 31]) {
        inval(() => f(v), `close(${String(v)})`);
      }
      n.ftruncate(fd, 4096); // still open
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, 'still open');
      const nodeFd = fs.openSync(file, 'r');
      expectErr(() => n.close(nodeFd), 'EBADF', 'close of an fd from fs.openSync');
      assert.equal(fs.fstatSync(nodeFd).size, 10);
      const buf = Buffer.alloc(10);
      assert.equal(fs.readSync(nodeFd, buf, 0, 10, 0), 10);
      for (const std of [0, 1, 2]) expectErr(() => n.close(std), 'EBADF', `close(${std})`);
      fs.fstatSync(1);
      fs.writeSync(1, ''); // stdout still open
      // double close
      n.close(fd);
      expectErr(() => n.close(fd), 'EBADF', 'double close');
      // a number the shim closed and Node reused
      const mine = n.memfdCreate('reuse', 0);
      n.close(mine);
      const reused = fs.openSync(file, 'r');
      expectErr(() => n.close(reused), 'EBADF', `close of fd ${reused}, reused by Node after the shim closed ${mine}`);
      fs.fstatSync(reused);
      fs.closeSync(reused);
      // a shim fd that JS closed behind the shim's back (fs.closeSync) and Node then reused
      for (const make of [() => n.open('/dev/null', c.O_RDWR), () => n.memfdCreate('behind', 0)]) {
        const behind = make();
        fs.closeSync(behind);
        const other = fs.openSync(file, 'r'); // takes the lowest free number: the same one
        assert.equal(other, behind, 'Node reuses the number');
        expectErr(() => n.pread(behind, new Uint8Array(4), 0), 'EBADF', 'pread on a number Node reused');
        expectErr(() => n.close(behind), 'EBADF', 'close of a number Node reused');
        assert.equal(fs.readSync(other, Buffer.alloc(10), 0, 10, 0), 10, 'Node\'s file is still open');
        fs.closeSync(other);
      }
      fs.fstatSync(nodeFd);
      fs.closeSync(nodeFd);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },

  /** 12. interrupt handles and VFIO_DEVICE_SET_IRQS: ids, closed handles, foreign fds, non-UIO/VFIO descriptors. */
  async irq() {
    const n = native();
    const c = n.constants;
    const L = (name: keyof NativeAddon) => loose(n[name]);
    const base = n.irqCount();
    const BAD_IDS = [0, -1, 0.5, NaN, 2 ** 32, 2 ** 53, '1', 1n, null, undefined, {}, []];
    for (const name of ['irqArm', 'irqDisarm', 'irqRead', 'irqClose'] as const) {
      for (const id of BAD_IDS) inval(() => L(name)(id), `${name}(${String(id)})`);
      expectErr(() => L(name)(999999), 'EBADF', `${name} of an id never issued`);
    }
    for (const cb of [undefined, null, 5, 'f', {}, Symbol('x')]) inval(() => L('irqCreate')(cb), `irqCreate(${String(cb)})`);
    const fired: number[] = [];
    const id = n.irqCreate((count) => fired.push(count));
    assert.equal(n.irqCount(), base + 1);
    for (const v of [0, -1, 2 ** 53, 0.5, NaN, 1n, '1', undefined]) inval(() => L('irqSignal')(id, v), `irqSignal count ${String(v)}`);
    for (const v of [1, 0, 'x', null, undefined]) inval(() => L('irqUioControl')(id, v), `irqUioControl(${String(v)})`);
    inval(() => n.irqUioControl(id, true), 'irqUioControl on an eventfd handle');
    assert.equal(n.irqRead(id), 0);
    n.irqSignal(id, 2);
    n.irqSignal(id, 2 ** 53 - 1 - 2);
    assert.equal(n.irqRead(id), 2 ** 53 - 1, 'the eventfd counter, read once');
    assert.equal(n.irqRead(id), 0);
    // an armed handle delivers once; arming twice is one poll
    n.irqArm(id); n.irqArm(id);
    n.irqSignal(id, 3);
    for (let i = 0; i < 5 && !fired.length; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(fired, [3]);
    n.irqClose(id);
    for (const name of ['irqArm', 'irqDisarm', 'irqRead', 'irqClose'] as const) expectErr(() => L(name)(id), 'EBADF', `${name} after close`);
    expectErr(() => n.irqSignal(id, 1), 'EBADF', 'irqSignal after close');
    assert.equal(n.irqCount(), base);

    // irqAdoptUio takes only a /dev/uioN descriptor the shim opened
    for (const fd of [0, 1, 2]) expectErr(() => n.irqAdoptUio(fd, 0, () => {}), 'EBADF', `irqAdoptUio of fd ${fd}`);
    const nul = n.open('/dev/null', c.O_RDWR);
    const mfd = n.memfdCreate('not-uio', 0);
    inval(() => n.irqAdoptUio(nul, 0, () => {}), 'irqAdoptUio of /dev/null');
    inval(() => n.irqAdoptUio(mfd, 0, () => {}), 'irqAdoptUio of a memfd');
    for (const v of [-1, 2 ** 32, 0.5]) inval(() => n.irqAdoptUio(nul, v, () => {}), `irqAdoptUio eventCount ${v}`);
    inval(() => L('irqAdoptUio')(nul, 0, 5), 'irqAdoptUio without a callback');
    n.close(mfd); // still the shim's: nothing was adopted
    // a pollable character device named uioN (root can make one: /dev/random's numbers): adopted,
    // then the registry no longer has it
    const dir = tmpDir();
    try {
      const fake = path.join(dir, 'uio7');
      let made = false;
      try { spawnSync('mknod', [fake, 'c', '1', '8']); made = fs.statSync(fake).isCharacterDevice(); } catch { /* not root */ }
      if (made) {
        const ufd = n.open(fake, c.O_RDWR);
        const uid = n.irqAdoptUio(ufd, 5, () => {});
        expectErr(() => n.close(ufd), 'EBADF', 'close of an adopted descriptor');
        expectErr(() => n.pread(ufd, new Uint8Array(4), 0), 'EBADF', 'pread of an adopted descriptor');
        inval(() => n.irqSignal(uid, 1), 'irqSignal on a UIO handle');
        const got = n.irqRead(uid); // 4 random bytes taken as a cumulative count: some delta
        assert.ok(Number.isInteger(got) && got >= 0 && got < 2 ** 32, `read ${got}`);
        n.irqUioControl(uid, true); // /dev/random takes the 4 bytes
        n.irqClose(uid);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    // vfioSetIrqs: only a VFIO device descriptor of the shim, only eventfd handle ids
    const T = n.irqConstants.VFIO_IRQ_SET_ACTION_TRIGGER, M = n.irqConstants.VFIO_IRQ_SET_ACTION_MASK, U2 = n.irqConstants.VFIO_IRQ_SET_ACTION_UNMASK;
    const e1 = n.irqCreate(() => {});
    const set = L('vfioSetIrqs');
    for (const fd of [0, 1, 2]) expectErr(() => set(fd, 1, T, 0, 1, [e1]), 'EBADF', `vfioSetIrqs on fd ${fd}`);
    inval(() => set(nul, 1, T, 0, 1, [e1]), 'vfioSetIrqs on /dev/null');
    inval(() => set(nul, 1, T, 0, 0), 'vfioSetIrqs DATA_NONE on /dev/null');
    for (const idx of [5, -1, 0.5, 2 ** 32, '1']) inval(() => set(nul, idx, T, 0, 1, [e1]), `index ${String(idx)}`);
    for (const act of [0, 1, 3, M | U2, M | T, 64, -1, 0.5]) inval(() => set(nul, 1, act, 0, 1), `action ${act}`);
    inval(() => set(nul, 1, T, 2048, 1, [e1]), 'start 2048');
    inval(() => set(nul, 2, T, 2000, 100), 'start + count > 2048');
    inval(() => set(nul, 1, T, 0, 2, [e1]), 'count != irqs.length');
    inval(() => set(nul, 1, U2, 0, 1, [e1]), 'eventfds for UNMASK');
    inval(() => set(nul, 0, U2, 0, 0), 'UNMASK of 0 vectors');
    for (const bad of [[-2], [0.5], ['1'], [0], [2 ** 32], 'x', {}, 5]) inval(() => set(nul, 1, T, 0, 1, bad), `irqs ${JSON.stringify(bad)}`);
    expectErr(() => set(nul, 1, T, 0, 1, [999999]), 'EBADF', 'an id never issued');
    // a number that is one of Node's own eventfds is not a handle id of ours
    const nodeEventfds = fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => {
      try { return fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[eventfd]'; } catch { return false; }
    });
    for (const fd of nodeEventfds.slice(0, 4)) {
      if (fd !== e1) expectErr(() => set(nul, 1, T, 0, 1, [fd]), 'EBADF', `Node's eventfd ${fd} as a handle id`);
    }
    n.irqClose(e1);
    expectErr(() => set(nul, 1, T, 0, 1, [e1]), 'EBADF', 'a closed handle');
    n.close(nul);
    expectErr(() => set(nul, 1, T, 0, 0), 'EBADF', 'a closed device fd');
    assert.equal(n.irqCount(), base);
  },

  /** 6. ioctl with short buffers, requests off the allow-list, pointer-sized integers (old: the kernel wrote past a JS buffer). */
  ioctl() {
    const n = native();
    const c = n.constants;
    const io = loose(n.ioctl);
    const IRQ_INFO = U.ioc(0, ';', 109, 0);
    const SET_IRQS = U.ioc(0, ';', 110, 0);
    const BUFFERED: [number, number, string][] = [[U.VFIO_GROUP_GET_STATUS, 8, 'GROUP_GET_STATUS'],
      [U.VFIO_GROUP_SET_CONTAINER, 4, 'GROUP_SET_CONTAINER'], [U.VFIO_DEVICE_GET_INFO, 16, 'DEVICE_GET_INFO'],
      [U.VFIO_DEVICE_GET_REGION_INFO, 32, 'DEVICE_GET_REGION_INFO'], [IRQ_INFO, 16, 'DEVICE_GET_IRQ_INFO'],
      [U.VFIO_IOMMU_GET_INFO, 16, 'IOMMU_GET_INFO'], [U.DMA_BUF_IOCTL_SYNC, 8, 'DMA_BUF_IOCTL_SYNC']];
    const fds = [n.open('/dev/null', c.O_RDWR), n.memfdCreate('ioctl', 0)];
    for (const fd of fds) {
      for (const [req, size, name] of BUFFERED) {
        for (const short of [0, 1, size - 1]) {
          const b = new Uint8Array(short).fill(0xaa);
          inval(() => io(fd, req, b), `${name} with ${short} of ${size} bytes`);
          assert.ok(b.every((x) => x === 0xaa));
        }
        inval(() => io(fd, req, new Uint8Array(65537)), `${name} with 64 KiB + 1`);
        inval(() => io(fd, req, size), `${name} with a number`);
        inval(() => io(fd, req, undefined), `${name} without a buffer`);
        inval(() => io(fd, req, new ArrayBuffer(size)), `${name} with an ArrayBuffer`);
        // the full size passes the checks and reaches the file, which does not know it
        const ok = new Uint8Array(size + 3).fill(0xaa);
        expectErr(() => io(fd, req, ok), 'ENOTTY', `${name} with ${size + 3} bytes`);
        assert.ok(ok.every((x) => x === 0xaa));
        // also from a SharedArrayBuffer (found by the fuzzer: a plain Error without a code)
        expectErr(() => io(fd, req, new Uint8Array(new SharedArrayBuffer(size))), 'ENOTTY', `${name} in a SharedArrayBuffer`);
        expectErr(() => io(fd, req, new DataView(new SharedArrayBuffer(size + 8), 8)), 'ENOTTY', `${name} in a shared DataView`);
      }
      // requests off the allow-list (their arguments carry pointers, or are not VFIO at all)
      for (const [req, arg, name] of [[U.VFIO_IOMMU_MAP_DMA, new Uint8Array(32), 'IOMMU_MAP_DMA'],
        [U.VFIO_IOMMU_UNMAP_DMA, new Uint8Array(24), 'IOMMU_UNMAP_DMA'], [U.VFIO_GROUP_GET_DEVICE_FD, new Uint8Array(16), 'GROUP_GET_DEVICE_FD'],
        [U.UDMABUF_CREATE, new Uint8Array(24), 'UDMABUF_CREATE'], [U.UDMABUF_CREATE_LIST, new Uint8Array(64), 'UDMABUF_CREATE_LIST'],
        // its payload names eventfds by number (Node's own, anything): only vfioSetIrqs makes it
        [SET_IRQS, new Uint8Array(24), 'DEVICE_SET_IRQS'],
        [0x541b, new Uint8Array(4), 'FIONREAD'], [0x5401, new Uint8Array(64), 'TCGETS'], [0, 0, '0'],
        [U.VFIO_GET_API_VERSION + 2 ** 32, undefined, '2^32 + GET_API_VERSION'], [-1, undefined, '-1'],
        [String(U.VFIO_GET_API_VERSION), undefined, 'a string'], [BigInt(U.VFIO_GET_API_VERSION), undefined, 'a BigInt']] as const) {
        inval(() => io(fd, req, arg), `request ${name}`);
      }
      // integer arguments stay below 4096 (a kernel that took one for a pointer must fault)
      for (const req of [U.VFIO_CHECK_EXTENSION, U.VFIO_SET_IOMMU]) {
        for (const v of [4096, 2 ** 31, 2 ** 53, -1, 0.5, NaN, 4096n, '1', new Uint8Array(8)]) {
          inval(() => io(fd, req, v), `integer argument ${String(v)}`);
        }
        expectErr(() => io(fd, req, 4095), 'ENOTTY', 'integer argument 4095');
        expectErr(() => io(fd, req, 0), 'ENOTTY', 'integer argument 0');
      }
      // requests without an argument take none
      for (const v of [1, new Uint8Array(8), 'x', 0.5]) inval(() => io(fd, U.VFIO_GET_API_VERSION, v), `GET_API_VERSION with ${String(v)}`);
      expectErr(() => io(fd, U.VFIO_GET_API_VERSION, undefined), 'ENOTTY', 'GET_API_VERSION');
    }
    // descriptors the shim did not open
    for (const fd of [0, 1, 2]) expectErr(() => n.ioctl(fd, U.VFIO_GET_API_VERSION, undefined), 'EBADF', `ioctl on fd ${fd}`);
  },

  /** 7. wrong argument types anywhere (old: abort on a failed napi conversion). */
  types() {
    const n = native();
    const c = n.constants;
    const L = <K extends keyof NativeAddon>(k: K) => loose(n[k]);
    inval(() => L('open')(-4, -4), 'open(-4, -4)');
    for (const args of [[], ['/dev/null'], ['/dev/null', -4], ['/dev/nu\0ll', c.O_RDONLY], ['/dev/null', 0o100 /* O_CREAT */],
      ['/dev/null', 0o1000 /* O_TRUNC */], ['/dev/null', 3], ['x'.repeat(5000), 0], ['/dev/null', 0, 5], [Buffer.from('/dev/null'), 0],
      ['/dev/null', '0'], ['/dev/null', 0.5], ['/dev/null', 2 ** 32], [{ toString: () => '/dev/null' }, 0]]) {
      inval(() => L('open')(...args), `open(${args.map(String).join(', ').slice(0, 60)})`);
    }
    inval(() => L('open')('y'.repeat(1 << 20), 0), 'open of a 1 MiB path');
    for (const args of [[], ['x'], [5, 0], ['a'.repeat(250), 0], ['x', 0x100], ['a\0', 0], ['x', -1], ['x', 0, {}]]) {
      inval(() => L('memfdCreate')(...args), `memfdCreate(${args.map(String).join(', ').slice(0, 60)})`);
    }
    const zero = n.open('/dev/zero', c.O_RDWR);
    const buf = new Uint8Array(16);
    for (const name of ['pread', 'pwrite'] as const) {
      for (const args of [[zero, [1, 2, 3], 0], [zero, new ArrayBuffer(4), 0], [zero, 'str', 0], [zero, buf, -1], [zero, buf, 2 ** 53],
        [zero, buf, 0.5], [zero, buf, 1n], [zero], [zero, buf], [zero, buf, 0, 5], [zero, null, 0], [zero, { length: 4 }, 0]]) {
        inval(() => L(name)(...args), `${name}(${args.map(String).join(', ').slice(0, 60)})`);
      }
      // any TypedArray or DataView, also over a SharedArrayBuffer (old: a plain Error, no code)
      assert.equal(L(name)(zero, new Uint8Array(new SharedArrayBuffer(16)), 0), 16);
      assert.equal(L(name)(zero, new DataView(new SharedArrayBuffer(32), 8), 0), 24);
      assert.equal(L(name)(zero, new Float64Array(3), 0), 24);
    }
    const memfd = n.memfdCreate('types', c.MFD_ALLOW_SEALING);
    for (const [name, args] of [['ftruncate', [memfd, -1]], ['ftruncate', [memfd, 2 ** 47]], ['ftruncate', [memfd, '1']],
      ['addSeals', [memfd, 64]], ['addSeals', [memfd, -1]], ['getSeals', ['x']], ['getSeals', []],
      ['vfioGroupGetDeviceFd', [zero, 5]], ['vfioGroupGetDeviceFd', [zero, 'a\0b']], ['vfioGroupGetDeviceFd', [zero, 'x'.repeat(65)]],
      ['udmabufCreate', [zero, memfd, -1, 4096]], ['udmabufCreate', [zero, memfd, 0, 0]], ['udmabufCreate', [zero, 'x', 0, 4096]],
      ['vfioUnmapDma', [zero, -1, 4096]], ['vfioUnmapDma', [zero, 0, 0]], ['subBuffer', ['1', 0, 1]], ['releaseBuffer', [null]],
      ['bufferPending', [{}]], ['mappingInfo', [NaN]], ['setErrorClass', [5]], ['setErrorClass', [{}]],
      ['mmapFd', [memfd, '4096', 0, c.PROT_READ, c.MAP_SHARED]], ['mmapFd', [memfd, 4096, 0, c.PROT_WRITE, c.MAP_SHARED]],
      ['mmapFd', [memfd, 4096, 0, c.PROT_READ, c.MAP_SHARED | 0x10 /* MAP_FIXED */]], ['mmapFd', [memfd, 4096, 1, c.PROT_READ, c.MAP_SHARED]],
    ] as [keyof NativeAddon, unknown[]][]) {
      inval(() => L(name)(...args), `${name}(${args.map(String).join(', ').slice(0, 60)})`);
    }
    // vfioMapDma: only page-aligned ranges inside an anonymous mapping of this shim, before any ioctl
    const m = n.mapAnonymous(4 * 4096, 4096, {});
    for (const args of [[zero, 'x', 0, 4096, 0], [zero, m.id, 0, 4096, -1], [zero, m.id, 1, 4096, 0], [zero, m.id, 0, 4095, 0],
      [zero, m.id, 0, 5 * 4096, 0], [zero, m.id, 4096, 4 * 4096, 0], [zero, m.id, 0, 4096, 2 ** 53], [zero, m.id, 0, 4096, 1]]) {
      inval(() => L('vfioMapDma')(...args), `vfioMapDma(${args.map(String).join(', ')})`);
    }
    expectErr(() => n.vfioMapDma(zero, 999_999, 0, 4096, 0), 'EBADF', 'vfioMapDma of a mapping never made');
    // every export, without arguments and with junk: EINVAL (getrlimitMemlock, irqCount and dmaReadBarrier take none)
    for (const [name, f] of Object.entries(n)) {
      if (typeof f !== 'function') continue;
      if (name === 'dmaReadBarrier') {
        assert.equal((f as (...a: unknown[]) => unknown)(Symbol('x'), {}), undefined);
        continue;
      }
      if (name === 'irqCount') {
        assert.ok(Number.isInteger((f as (...a: unknown[]) => number)(Symbol('x'))));
        continue;
      }
      if (name === 'getrlimitMemlock') {
        const r = (f as (...a: unknown[]) => { soft: number; hard: number })(Symbol('x'));
        assert.ok(r.soft >= 0 && r.hard >= r.soft);
        continue;
      }
      inval(() => (f as () => unknown)(), `${name}()`);
      inval(() => (f as (...a: unknown[]) => unknown)(Symbol('s'), {}, [], NaN, 1n, null), `${name}(junk)`);
    }
    // a raw instance with an error class that cannot be constructed still throws errno-coded errors
    const raw = { exports: {} as NativeAddon };
    process.dlopen(raw, addonPath());
    for (const cls of [() => ({}), function Throws() { throw new Error('boom'); }, Symbol]) {
      raw.exports.setErrorClass(cls as never);
      assert.throws(() => raw.exports.close(-1), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'EINVAL',
        `error class ${String(cls).slice(0, 30)}`);
    }
  },

  /** 8. subBuffer covers exactly its range; unmap/releaseBuffer detach; escaped buffers stay harmless. */
  async subBuffer() {
    const n = native();
    const len = 4 * 4096;
    const m = n.mapAnonymous(len, 4096, {});
    const whole = new Uint8Array(m.buffer);
    const s = n.subBuffer(m.id, 4096, 100);
    assert.equal(s.buffer.byteLength, 100);
    const sv = new Uint8Array(s.buffer);
    sv[0] = 0xab;
    sv[99] = 0xcd;
    assert.equal(whole[4096], 0xab);
    assert.equal(whole[4195], 0xcd);
    assert.equal(whole[4095], 0);
    assert.equal(whole[4196], 0);
    assert.equal(n.mmioRead(m.id, 4096, 1), 0xabn);
    const f = loose(n.subBuffer);
    for (const [off, l] of [[len, 1], [len - 1, 2], [2 ** 53 - 1, 2], [0, len + 1], [-1, 1], [0, 0], [1, 2 ** 53 - 1], [4096, 2 ** 53],
      [0.5, 1], [0, -1], [2 ** 32, 1], [NaN, 1], [0, '1']] as const) {
      inval(() => f(m.id, off, l), `subBuffer(${off}, ${l})`);
    }
    assert.equal(n.subBuffer(m.id, len - 1, 1).buffer.byteLength, 1);
    expectErr(() => n.subBuffer(999_999, 0, 1), 'EBADF', 'subBuffer of a mapping never made');

    // unmap detaches every buffer over the mapping
    const m2 = n.mapAnonymous(len, 4096, {});
    const a = n.subBuffer(m2.id, 0, 4096);
    const b = n.subBuffer(m2.id, 8192, 10);
    assert.equal(n.mappingInfo(m2.id)?.views, 3);
    assert.equal(n.unmap(m2.id), true);
    assert.deepEqual([a.buffer.byteLength, b.buffer.byteLength, m2.buffer.byteLength], [0, 0, 0]);
    assert.equal(n.releaseBuffer(a.view), 'gone');
    assert.equal(n.bufferPending(a.view), false);

    // releaseBuffer detaches exactly one
    const c1 = n.subBuffer(m.id, 0, 64);
    const c2 = n.subBuffer(m.id, 64, 64);
    assert.equal(n.releaseBuffer(c1.view), 'detached');
    assert.equal(c1.buffer.byteLength, 0);
    assert.equal(c2.buffer.byteLength, 64);
    assert.equal(m.buffer.byteLength, len);
    assert.equal(n.releaseBuffer(c1.view), 'gone');
    for (const v of [c2.view + 1000, 0, -1, 2 ** 32 + c2.view, 0.5, String(c2.view)]) {
      inval(() => loose(n.releaseBuffer)(v), `releaseBuffer(${String(v)})`);
    }
    assert.equal(c2.buffer.byteLength, 64);

    // structuredClone with a transfer list: Node 20 copies external buffers instead
    const sc = n.subBuffer(m.id, 8192, 64);
    new Uint8Array(sc.buffer).fill(1);
    let clone: ArrayBuffer | undefined;
    try { clone = structuredClone(sc.buffer, { transfer: [sc.buffer] }); } catch { /* refused: nothing moved */ }
    if (sc.buffer.byteLength === 64) {
      if (clone) {
        new Uint8Array(clone).fill(9);
        assert.equal(whole[8192], 1, 'a structuredClone copy shares the mapping');
      }
      assert.equal(n.releaseBuffer(sc.view), 'detached');
      console.log('      (structuredClone with transfer copies external buffers on this Node)');
    } else {
      assert.equal(n.releaseBuffer(sc.view), 'escaped');
      console.log('      (structuredClone with transfer moves external buffers on this Node)');
    }
    clone = undefined;

    // a byte stream really moves the memory to a new ArrayBuffer
    const other = n.mapAnonymous(len, 4096, {});
    const otherBytes = new Uint8Array(other.buffer).fill(0x3c);
    const m3 = n.mapAnonymous(len, 4096, {});
    const e = n.subBuffer(m3.id, 4096, 4096);
    let ctrl!: ReadableByteStreamController;
    let rs: ReadableStream<Uint8Array> | undefined = new ReadableStream({ type: 'bytes', start(ctl) { ctrl = ctl; } });
    ctrl.enqueue(new Uint8Array(e.buffer));
    assert.equal(e.buffer.byteLength, 0, 'enqueue did not detach our handle');
    const reader = rs.getReader();
    let value: Uint8Array | undefined = (await reader.read()).value;
    assert.equal(value?.byteLength, 4096);
    value![1] = 0x42;
    assert.equal(n.mmioRead(m3.id, 4097, 1), 0x42n, 'the escaped buffer is not the mapping');
    assert.equal(n.releaseBuffer(e.view), 'escaped');
    assert.equal(n.bufferPending(e.view), true);
    // unmap while it is alive: the range is held as inert memory, nothing else can land there
    assert.equal(n.unmap(m3.id), true);
    assert.equal(n.mappingInfo(m3.id)?.held, true);
    expectErr(() => n.mmioRead(m3.id, 0, 1), 'EBADF', 'mmioRead of a held mapping');
    expectErr(() => n.subBuffer(m3.id, 0, 1), 'EBADF', 'subBuffer of a held mapping');
    assert.equal(n.unmap(m3.id), false);
    assert.equal(value![1], 0, 'the escaped buffer still sees the unmapped pages');
    value!.fill(0x55);
    value![4095] = 1;
    assert.ok(otherBytes.every((x) => x === 0x3c), 'writing through an escaped buffer changed another mapping');
    assert.equal(n.mmioRead(other.id, 0, 8), 0x3c3c3c3c3c3c3c3cn);
    const fresh = Array.from({ length: 8 }, () => n.mapAnonymous(len, 4096, {}));
    for (const x of fresh) {
      assert.ok(x.address + BigInt(len) <= m3.address || x.address >= m3.address + BigInt(len), 'a new mapping reused a held range');
    }
    // while the escaped buffer is reachable, collections change nothing
    for (let i = 0; i < 5; i++) {
      gc();
      await turn();
    }
    assert.equal(n.bufferPending(e.view), true, 'pending ended while the escaped buffer is still reachable');
    assert.equal(n.mappingInfo(m3.id)?.held, true);
    assert.equal(value![4095], 1);
    // once the escaped buffer is collected, the range goes away
    value = undefined;
    reader.releaseLock();
    rs = undefined;
    for (let i = 0; i < 100 && (n.bufferPending(e.view) || n.mappingInfo(m3.id)); i++) {
      gc();
      await turn();
    }
    assert.equal(n.bufferPending(e.view), false, 'the escaped buffer was never collected');
    assert.equal(n.mappingInfo(m3.id), undefined, 'the held mapping outlived its escaped buffer');
    assert.equal(n.releaseBuffer(e.view), 'gone');
    assert.ok(otherBytes.every((x) => x === 0x3c));
  },

  /**
   * 8b. zeroRange writes zeros over exactly its range of a writable mapping — unaligned head and
   * tail included — and refuses ranges past the end (overflow-safe), read-only, unmapped and
   * never-made mappings before touching a byte.
   */
  zeroRange() {
    const n = native();
    const c = n.constants;
    const len = 4 * 4096;
    const m = n.mapAnonymous(len, 4096, {});
    const whole = new Uint8Array(m.buffer);
    for (const [off, l] of [[3, 1000], [0, len], [4096, 64], [17, 15], [len - 5, 5], [100, 0], [8191, 4098]]) {
      whole.fill(0xee);
      n.zeroRange(m.id, off, l);
      for (let i = 0; i < len; i++) {
        const inside = i >= off && i < off + l;
        if (whole[i] !== (inside ? 0 : 0xee)) assert.fail(`zeroRange(${off}, ${l}): byte ${i} is ${whole[i]}`);
      }
    }
    whole.fill(0xee);
    const f = loose(n.zeroRange);
    for (const [off, l] of [[len, 1], [len - 1, 2], [2 ** 53 - 1, 2], [0, len + 1], [-1, 1], [1, 2 ** 53 - 1], [4096, 2 ** 53],
      [0.5, 1], [0, -1], [2 ** 32, 1], [NaN, 1], [0, '1'], [1, 2 ** 64]] as const) {
      inval(() => f(m.id, off, l), `zeroRange(${off}, ${l})`);
    }
    for (const id of [0, -1, 2 ** 32 + m.id, m.id + 0.5, String(m.id), BigInt(m.id)]) inval(() => f(id, 0, 1), `zeroRange of mapping ${String(id)}`);
    assert.ok(whole.every((x) => x === 0xee), 'a refused zeroRange wrote');
    expectErr(() => n.zeroRange(999_999, 0, 1), 'EBADF', 'zeroRange of a mapping never made');
    // a read-only mapping is never written
    const fd = sealedMemfd(n, 4096, 'zro');
    n.pwrite(fd, new Uint8Array(16).fill(0x5a), 0);
    const ro = n.mmapFd(fd, 4096, 0, c.PROT_READ, c.MAP_SHARED);
    inval(() => n.zeroRange(ro.id, 0, 16), 'zeroRange of a read-only mapping');
    assert.equal(n.mmioRead(ro.id, 0, 8), 0x5a5a5a5a5a5a5a5an);
    // a shared writable memfd mapping: the zeros reach the file
    const rw = n.mmapFd(fd, 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED);
    n.zeroRange(rw.id, 4, 8);
    const back = new Uint8Array(16);
    n.pread(fd, back, 0);
    assert.deepEqual([...back], [0x5a, 0x5a, 0x5a, 0x5a, 0, 0, 0, 0, 0, 0, 0, 0, 0x5a, 0x5a, 0x5a, 0x5a]);
    // after unmap: EBADF, nothing touched
    n.unmap(m.id);
    expectErr(() => n.zeroRange(m.id, 0, 1), 'EBADF', 'zeroRange of an unmapped mapping');
  },

  /** 9. Every mapping the shim makes is MADV_DONTFORK (a child must never share DMA pages copy-on-write). */
  dontfork() {
    const n = native();
    const c = n.constants;
    const zero = n.open('/dev/zero', c.O_RDWR);
    const memfd = sealedMemfd(n, 4 * 4096);
    const maps: [string, bigint][] = [
      ['mapAnonymous', n.mapAnonymous(4 * 4096, 4096, {}).address],
      ['mapAnonymous 2 MiB-aligned THP', n.mapAnonymous(2 << 20, 2 << 20, { thp: true }).address],
      ['mapAnonymous populated, locked', n.mapAnonymous(8192, 4096, { populate: true, lock: 1 }).address],
      ['mmapFd memfd shared', n.mmapFd(memfd, 4 * 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED).address],
      ['mmapFd memfd read-only', n.mmapFd(memfd, 4096, 4096, c.PROT_READ, c.MAP_SHARED).address],
      ['mmapFd memfd private', n.mmapFd(memfd, 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE).address],
      ['mmapFd /dev/zero', n.mmapFd(zero, 8192, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED).address],
    ];
    for (const [what, addr] of maps) assert.ok(vmFlags(addr).includes('dc'), `${what}: VmFlags ${vmFlags(addr).join(' ')}`);
  },

  /** 9b. …also hugetlb mappings; and hugetlbfs files map whole huge pages only (found in review: unmap failed forever). */
  dontforkHugetlb() {
    const n = native();
    const c = n.constants;
    const hp = n.hugePageSize;
    const m = n.mapAnonymous(hp, 4096, { hugetlb: true, populate: true });
    const flags = vmFlags(m.address);
    assert.ok(flags.includes('ht'), `not hugetlb: ${flags.join(' ')}`);
    assert.ok(flags.includes('dc'), `hugetlb mapping without MADV_DONTFORK: ${flags.join(' ')}`);
    new Uint8Array(m.buffer)[hp - 1] = 1;
    assert.equal(n.unmap(m.id), true);
    const fd = n.memfdCreate('huge', c.MFD_HUGETLB | c.MFD_ALLOW_SEALING);
    n.ftruncate(fd, hp);
    n.addSeals(fd, c.F_SEAL_SHRINK);
    // shorter than a huge page: the kernel would map the whole page and munmap(4096) fail forever
    inval(() => n.mmapFd(fd, 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED), '4 KiB of a hugetlbfs file');
    inval(() => n.mmapFd(fd, hp - 4096, 0, c.PROT_READ, c.MAP_SHARED), 'a huge page less 4 KiB');
    const f = n.mmapFd(fd, hp, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED);
    assert.ok(vmFlags(f.address).includes('dc'), `hugetlbfs file mapping without MADV_DONTFORK: ${vmFlags(f.address).join(' ')}`);
    new Uint8Array(f.buffer!)[5] = 5;
    const s = n.subBuffer(f.id, 4096, 16);
    assert.equal(n.unmap(f.id), true);
    assert.equal(s.buffer.byteLength, 0);
    assert.equal(n.mappingInfo(f.id), undefined);
  },

  /**
   * JS that runs inside a call — option getters, setters on Object.prototype that see every
   * field the addon sets on its results and errors — and unmaps or closes what the call is using
   * (found in review: mappingInfo read a freed registry entry after such a setter unmapped it).
   */
  reentrancy() {
    const n = native();
    const c = n.constants;
    const proto = Object.prototype as Record<string, unknown>;
    /** Defines setters for `keys` on Object.prototype that keep the value, then run `hook` once. */
    const intercept = (keys: string[], hook: (value: unknown) => void) => {
      let busy = false;
      for (const k of keys) {
        Object.defineProperty(proto, k, Object.assign(Object.create(null) as PropertyDescriptor, {
          configurable: true,
          get() { return undefined; },
          set(this: object, v: unknown) {
            Object.defineProperty(this, k, Object.assign(Object.create(null) as PropertyDescriptor,
              { value: v, writable: true, enumerable: true, configurable: true }));
            if (busy) return;
            busy = true;
            hook(v);
          },
        }));
      }
      return () => { for (const k of keys) delete proto[k]; };
    };
    // mappingInfo while its mapping is unmapped (and the registry entry reused) under it
    const ms = [1, 2, 3, 4].map((k) => n.mapAnonymous(k * 4096, 4096, {}));
    const target = ms[1];
    let undo = intercept(['address'], () => {
      n.unmap(target.id);
      for (let i = 0; i < 20; i++) n.mapAnonymous(7 * 4096, 4096, {});
    });
    let info: ReturnType<typeof n.mappingInfo>;
    try { info = n.mappingInfo(target.id); } finally { undo(); }
    assert.equal(info?.length, 2 * 4096, 'mappingInfo read the registry after a setter unmapped the mapping');
    assert.equal(info?.address, target.address);
    assert.equal(n.mappingInfo(target.id), undefined);
    // option getters that unmap and close while mapAnonymous reads them
    const victim = n.mapAnonymous(4096, 4096, {});
    const fd = n.memfdCreate('reentrant', 0);
    const m = n.mapAnonymous(4096, 4096, { get thp() { n.unmap(victim.id); n.close(fd); return false; } } as never);
    assert.equal(m.buffer.byteLength, 4096);
    assert.equal(victim.buffer.byteLength, 0);
    expectErr(() => n.close(fd), 'EBADF', 'close of the fd a getter closed');
    // subBuffer whose view is released, and its mapping unmapped, while the result is filled
    const host = n.mapAnonymous(4 * 4096, 4096, {});
    undo = intercept(['view'], (v) => { assert.equal(n.releaseBuffer(v as number), 'detached'); assert.equal(n.unmap(host.id), true); });
    let sub: ReturnType<typeof n.subBuffer>;
    try { sub = n.subBuffer(host.id, 4096, 64); } finally { undo(); }
    assert.equal(sub.buffer.byteLength, 0, 'a buffer over an unmapped mapping is still attached');
    assert.equal(n.releaseBuffer(sub.view), 'gone');
    // errors whose details are filled while setters re-enter
    const memfd = sealedMemfd(n, 4096);
    const other = n.mapAnonymous(4096, 4096, {});
    undo = intercept(['hint', 'errno', 'syscall', 'path'], () => {
      try { n.close(-1); } catch { /* EINVAL */ }
      n.unmap(other.id);
    });
    try {
      expectErr(() => n.mmapFd(memfd, 16384, 0, c.PROT_READ, c.MAP_SHARED, '/the/memfd'), 'EINVAL', 'mmapFd beyond EOF under setters');
    } finally { undo(); }
    assert.equal(other.buffer.byteLength, 0);
  },

  /**
   * 12. iommufd and VFIO cdev calls (native/iommufd.cc): every plain argument is range-checked
   * first (EINVAL), then the mapping (EBADF when gone or never made, EINVAL when not anonymous
   * DMA memory), then what each descriptor is: a descriptor the shim did not open, one closed
   * (also behind its back), and one that is open but not /dev/iommu resp. not a VFIO device cdev
   * are all EBADF — no request number of these calls ever reaches another driver. A refused map
   * leaves the memory unmappable as before.
   */
  iommufd() {
    const n = native();
    const c = n.constants;
    const L = <K extends keyof NativeAddon>(k: K) => loose(n[k]);
    const notIommu = n.open('/dev/null', c.O_RDWR); // open, ours, but not /dev/iommu
    const memfd = sealedMemfd(n, 4 * 4096, 'iommufd');
    const m = n.mapAnonymous(4 * 4096, 4096, {});
    const file = n.mmapFd(memfd, 4 * 4096, 0, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED);
    const ro = n.mmapFd(memfd, 4096, 0, c.PROT_READ, c.MAP_SHARED);
    const gone = n.mapAnonymous(4096, 4096, {});
    n.unmap(gone.id);
    const fd = notIommu;
    // plain arguments: EINVAL whatever the descriptor
    for (const ioas of [0, -1, 2 ** 32, 1.5, NaN, '1', 1n, undefined, null]) {
      inval(() => L('iommufdIovaRanges')(fd, ioas), `iommufdIovaRanges ioasId ${String(ioas)}`);
      inval(() => L('iommufdMapDma')(fd, ioas, m.id, 0, 4096, 0x100000), `iommufdMapDma ioasId ${String(ioas)}`);
      inval(() => L('iommufdUnmapDma')(fd, ioas, 0x100000, 4096), `iommufdUnmapDma ioasId ${String(ioas)}`);
      inval(() => L('vfioDeviceAttachPt')(fd, ioas), `vfioDeviceAttachPt ptId ${String(ioas)}`);
    }
    for (const [args, what] of [
      [[fd, 1, 'x', 0, 4096, 0], 'a string mapping'], [[fd, 1, 0, 0, 4096, 0], 'mapping 0'], [[fd, 1, m.buffer, 0, 4096, 0], 'an ArrayBuffer'],
      [[fd, 1, m.id, -4096, 4096, 0], 'negative offset'], [[fd, 1, m.id, 1, 4096, 0], 'unaligned offset'],
      [[fd, 1, m.id, 0, 0, 0], 'size 0'], [[fd, 1, m.id, 0, 4095, 0], 'unaligned size'], [[fd, 1, m.id, 0, 5 * 4096, 0], 'past the end'],
      [[fd, 1, m.id, 4096, 4 * 4096, 0], 'offset + size past the end'], [[fd, 1, m.id, 2 ** 53 - 4096, 4096, 0], 'offset 2^53 - 4096'],
      [[fd, 1, m.id, 0, 4096, 1], 'unaligned iova'], [[fd, 1, m.id, 0, 4096, -4096], 'negative iova'],
      [[fd, 1, m.id, 0, 4096, 2 ** 53], 'iova 2^53'], [[fd, 1, m.id, 0, 4096, 2 ** 53 - 4096], 'iova + size = 2^53 (overflow)'],
      [[fd, 1, m.id, 0, 4096, 0, 5], 'a numeric hint'],
      [[fd, 1, file.id, 0, 4096, 0x100000], 'a file mapping (not DMA memory)'], [[fd, 1, ro.id, 0, 4096, 0x100000], 'a read-only mapping'],
    ] as [unknown[], string][]) {
      inval(() => L('iommufdMapDma')(...args), `iommufdMapDma: ${what}`);
    }
    for (const [args, what] of [[[fd, 1, -4096, 4096], 'negative iova'], [[fd, 1, 0, 0], 'size 0'], [[fd, 1, 0, 2 ** 53], 'size 2^53'],
      [[fd, 1, 2 ** 53 - 4096, 8192], 'iova + size past 2^53'], [[fd, 1, 0.5, 4096], 'fractional iova']] as [unknown[], string][]) {
      inval(() => L('iommufdUnmapDma')(...args), `iommufdUnmapDma: ${what}`);
    }
    for (const [opt, obj] of [[-1, 0], [2, 0], [0, -1], [0, 2 ** 32], ['0', 0]] as const)
      inval(() => L('iommufdGetOption')(fd, opt, obj), `iommufdGetOption(${opt}, ${obj})`);
    inval(() => L('vfioDeviceBindIommufd')(fd, fd, 7), 'vfioDeviceBindIommufd with a numeric hint');
    // mappings that are gone or never were: EBADF, before the descriptor is looked at
    expectErr(() => n.iommufdMapDma(fd, 1, gone.id, 0, 4096, 0x100000), 'EBADF', 'iommufdMapDma of an unmapped mapping');
    expectErr(() => n.iommufdMapDma(fd, 1, 999_999, 0, 4096, 0x100000), 'EBADF', 'iommufdMapDma of a mapping never made');
    // descriptors: not ours, ours but not /dev/iommu (or not a VFIO cdev), closed, closed behind our back
    const closed = n.open('/dev/null', c.O_RDWR);
    n.close(closed);
    const behind = n.open('/dev/zero', c.O_RDWR);
    fs.closeSync(behind);
    const stolen = fs.openSync('/dev/null', 'r'); // may reuse the number `behind` had
    try {
      for (const [bad, what] of [[0, 'stdin'], [1, 'stdout'], [2 ** 31 - 1, 'a number never opened'], [notIommu, '/dev/null (ours)'],
        [memfd, 'a memfd (ours)'], [closed, 'a closed fd'], [behind, 'an fd closed outside the shim']] as const) {
        expectErr(() => n.iommufdIoasAlloc(bad), 'EBADF', `iommufdIoasAlloc(${what})`);
        expectErr(() => n.iommufdIovaRanges(bad, 1), 'EBADF', `iommufdIovaRanges(${what})`);
        expectErr(() => n.iommufdMapDma(bad, 1, m.id, 0, 4096, 0x100000), 'EBADF', `iommufdMapDma(${what})`);
        expectErr(() => n.iommufdUnmapDma(bad, 1, 0x100000, 4096), 'EBADF', `iommufdUnmapDma(${what})`);
        expectErr(() => n.iommufdGetOption(bad, 0, 0), 'EBADF', `iommufdGetOption(${what})`);
        expectErr(() => n.vfioDeviceBindIommufd(bad, notIommu), 'EBADF', `vfioDeviceBindIommufd(device ${what})`);
        expectErr(() => n.vfioDeviceAttachPt(bad, 1), 'EBADF', `vfioDeviceAttachPt(${what})`);
        expectErr(() => n.vfioDeviceDetachPt(bad), 'EBADF', `vfioDeviceDetachPt(${what})`);
      }
      // a VFIO device fd would be needed first: with /dev/null as the device, the iommufd is never reached
      expectErr(() => n.vfioDeviceBindIommufd(notIommu, memfd), 'EBADF', 'vfioDeviceBindIommufd(/dev/null, memfd)');
      expectErr(() => n.vfioDeviceBindIommufd(notIommu, 1), 'EBADF', 'vfioDeviceBindIommufd(/dev/null, stdout)');
    } finally {
      fs.closeSync(stolen);
    }
    // nothing was recorded as DMA-mapped: the memory unmaps as usual
    assert.equal(n.unmap(m.id), true);
    assert.equal(n.unmap(file.id), true);
    n.close(notIommu);
    n.close(memfd);
  },

  /** A worker terminated in the middle of shim calls (found by the fuzzer: node-addon-api's std::terminate, an abort). */
  async workerTerminate() {
    const code = `
      const { native } = require(${JSON.stringify(require.resolve('../lib/native'))});
      const n = native();
      require('node:worker_threads').parentPort.postMessage('running');
      for (;;) {
        try { n.close(-1); } catch {}
        try { n.mmioRead(999999, 0, 4); } catch {}
        const m = n.mapAnonymous(4096, 4096, {});
        n.subBuffer(m.id, 0, 16);
        n.unmap(m.id);
      }`;
    for (let i = 0; i < 12; i++) {
      const w = new Worker(code, { eval: true });
      await new Promise((resolve) => w.once('message', resolve));
      await new Promise((r) => setTimeout(r, 5 + (i % 4) * 7));
      await w.terminate();
    }
  },
};

// ---- the parent side: one child per case ---------------------------------------------------------

interface Run { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function runCase(name: string): Run {
  const r = spawnSync(process.execPath, ['--expose-gc', __filename, name], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function itCase(title: string, name: keyof typeof CASES): void {
  it(title, function () {
    const r = runCase(name);
    if (r.stdout.trim()) console.log(r.stdout.trimEnd());
    assert.ok(r.status === 0 && r.signal === null,
      `case ${name}: child exited with status ${r.status}, signal ${r.signal}\n${r.stderr.slice(-4000)}`);
  });
}

/** The first block device under /dev that opens read-only (loop devices exist on most hosts; root opens them). */
function openableBlockDevice(): string | undefined {
  for (const d of fs.readdirSync('/dev')) {
    const p = `/dev/${d}`;
    try {
      if (!fs.statSync(p).isBlockDevice()) continue;
      fs.closeSync(fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
      return p;
    } catch { /* not a block device, or not openable here */ }
  }
  return undefined;
}

const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';

/** Two free 2 MiB huge pages, or the right to reserve them (checked without reserving anything). */
function hugePagesRequirement(): Requirement {
  let unmet: string | undefined;
  if (freeHugePages() < 2) {
    try { fs.accessSync(NR_HUGEPAGES, fs.constants.W_OK); } catch (e) {
      unmet = `no free huge pages and ${NR_HUGEPAGES} is not writable (${(e as Error).message})`;
    }
  }
  return requirement('two free 2 MiB huge pages (or root to reserve them)', RUNS_IN.rootHost, unmet);
}

/** Reserves a few huge pages when fewer than two are free; the returned function restores the count. */
function reserveHugePages(): () => void {
  if (freeHugePages() >= 2) return () => {};
  const before = fs.readFileSync(NR_HUGEPAGES, 'utf8').trim();
  const restore = () => { try { fs.writeFileSync(NR_HUGEPAGES, before); } catch { /* leave it */ } };
  fs.writeFileSync(NR_HUGEPAGES, String(Number(before) + 4));
  if (freeHugePages() < 2) {
    restore();
    throw new Error(`the kernel could not reserve 2 huge pages (${NR_HUGEPAGES} was ${before}): memory too fragmented?`);
  }
  return restore;
}

if (require.main === module) {
  // child: run one case
  const name = process.argv[2];
  const fn = CASES[name];
  if (!fn) {
    process.stderr.write(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}\n`);
    process.exit(2);
  }
  Promise.resolve().then(fn).then(
    () => process.exit(0),
    (e) => { process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`); process.exit(1); });
} else {
  describe('native shim safety: regressions of the old shim, each in a child process', function () {
    itCase('1. MMIO outside the mapping, bad widths and values, unknown and read-only mappings: EINVAL/EBADF', 'mmio');
    itCase('2. mapAnonymous with negative, huge, non-integer sizes, bad alignments and options: EINVAL', 'mapAnonymous');
    itCase('3. unmap of anything but a live mapping id returns false or throws EINVAL and unmaps nothing', 'unmap');
    itCase('4. mmapFd beyond EOF, of shrinkable files, /dev/zero at an offset, foreign fds: EINVAL/ENODEV/EBADF', 'mmapFd');
    const blk = openableBlockDevice();
    itIf(requirement('a block device this process can open (any under /dev; root opens the loop devices)', RUNS_IN.rootHost,
      !blk && 'none under /dev opens here'), '4b. mmapFd of a block device: ENODEV, never a mapping that SIGBUSes', function () {
      const r = runCase('mmapFdBlockDevice');
      assert.ok(r.status === 0 && r.signal === null, `child exited with status ${r.status}, signal ${r.signal}\n${r.stderr.slice(-4000)}`);
    });
    itCase('5. close of 2^32 + fd, of fds the shim did not open, double close: EINVAL/EBADF, nothing closed', 'close');
    itCase('6. ioctl with short buffers, unlisted requests, integer arguments ≥ 4096: EINVAL before any syscall', 'ioctl');
    itCase('7. wrong argument types anywhere: EINVAL, never an abort; SharedArrayBuffer views work', 'types');
    itCase('8. subBuffer covers its range; unmap/releaseBuffer detach; an escaped buffer outlives unmap harmlessly', 'subBuffer');
    itCase('8b. zeroRange zeroes exactly its range of a writable mapping; past-the-end, read-only and unmapped: EINVAL/EBADF, nothing written', 'zeroRange');
    itCase('9. every mapping the shim makes is MADV_DONTFORK', 'dontfork');
    describeIf(hugePagesRequirement(), 'hugetlb', function () {
      let restore = () => {};
      before(function () { restore = reserveHugePages(); });
      after(function () { restore(); });
      it('9b. hugetlb mappings are MADV_DONTFORK; hugetlbfs files map whole huge pages only', function () {
        const r = runCase('dontforkHugetlb');
        assert.ok(r.status === 0 && r.signal === null, `child exited with status ${r.status}, signal ${r.signal}\n${r.stderr.slice(-4000)}`);
      });
    });
    itCase('10. terminating a worker in the middle of shim calls does not abort the process', 'workerTerminate');
    itCase('11. JS run inside a call (option getters, Object.prototype setters) that unmaps or closes what it uses', 'reentrancy');
    itCase('12. interrupt handles and vfioSetIrqs: bad ids, closed handles, foreign and non-VFIO/UIO fds, Node\'s own eventfds: EINVAL/EBADF', 'irq');
    itCase('13. iommufd / VFIO cdev calls: bad arguments EINVAL, gone mappings and foreign, closed or non-iommufd descriptors EBADF', 'iommufd');
  });
}
