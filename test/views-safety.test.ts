/**
 * Views are confined to their own pool and its lifetime: a view's buffer is one page of its pool
 * (never the shared slab), it is detached at destroy even when other pools keep the slab mapped,
 * cloning copies no other pool's bytes, and a view JS detaches (a transfer) can affect nothing but
 * its own pool — its page is kept out of reuse until the moved-away buffer is collected.
 */
import assert from 'node:assert/strict';
import { ReadableStream } from 'node:stream/web';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { DmaPoolError, openDevice } from '../lib';
import type { Device } from '../lib';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Detaches `view`'s buffer the way a byte stream does and returns what the stream hands back. */
async function enqueueAndRead(view: Uint8Array): Promise<Uint8Array> {
  let ctrl!: import("node:stream/web").ReadableByteStreamController;
  const rs = new ReadableStream({ type: 'bytes', start(c) { ctrl = c; } });
  ctrl.enqueue(view);
  const r = await rs.getReader().read();
  return r.value as Uint8Array;
}

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

function withSim<T>(fn: (dev: Device) => T): T {
  const dev = openDevice('sim');
  try {
    return fn(dev);
  } finally {
    for (const p of dev.pools) { try { p.destroy(); } catch { /* busy: close below reports it */ } }
    dev.close();
  }
}

describe('views: confined to their pool', () => {
  it('a view\'s buffer is its pool page, never the slab other pools share', () => withSim((dev) => {
    const a = dev.createPool('A', 128);
    const b = dev.createPool('B', 128);
    const x = a.alloc(), y = b.alloc();
    assert.equal(dev.provider.slabCount, 1, 'both pools carve the same slab');
    const vx = a.view(x), vy = b.view(y);
    vy.fill(0xbb);
    assert.equal(vx.length, 128);
    assert.equal(vx.buffer.byteLength, a.stats.allocation, 'the buffer is one page of pool A');
    assert.ok(!new Uint8Array(vx.buffer).includes(0xbb), 'pool B\'s bytes are not reachable from A\'s view');
    const clone = structuredClone(vx);
    assert.ok(clone.buffer.byteLength <= a.stats.allocation, 'cloning copies at most one page of A');
    assert.ok(!new Uint8Array(clone.buffer).includes(0xbb));
    a.free(x); b.free(y);
  }));

  it('destroy() detaches every view of the pool while another pool keeps the slab mapped', () => withSim((dev) => {
    const a = dev.createPool('A', 256);
    const b = dev.createPool('B', 256);
    const xs = Array.from({ length: 40 }, () => a.alloc()); // several pages
    const y = b.alloc();
    const views = xs.map((d) => a.view(d));
    xs.forEach((d) => a.free(d));
    a.destroy();
    assert.equal(dev.provider.slabCount, 1, 'B keeps the slab mapped');
    for (const v of views) assert.equal(v.length, 0, 'a destroyed pool\'s views are detached');
    // the next pool gets A's memory: a stale view can no longer write into it
    const c = dev.createPool('C', 256);
    const z = c.alloc();
    c.view(z).fill(0x11);
    assert.throws(() => views[0].fill(0xee), TypeError); // V8 refuses to write through a detached view
    views[0][0] = 0xee; // element stores on a detached view are silent no-ops
    assert.ok(c.view(z).every((v) => v === 0x11));
    b.view(y).fill(0x22);
    c.free(z); b.free(y);
  }));

  it('a view detached by JS (stream enqueue) affects only its own page: both pools keep working', async () => {
    const dev = openDevice('sim');
    try {
      const a = dev.createPool('A', 512, { debug: true, onDebugReport: () => { /* fills are checked below */ } });
      const b = dev.createPool('B', 512);
      const x = a.zalloc(), x2 = a.alloc(), y = b.alloc();
      a.view(x).fill(0x5a);
      b.view(y).fill(0x66);
      const moved = await enqueueAndRead(a.view(x));
      assert.equal(moved.buffer.byteLength, a.stats.allocation, 'the moved buffer is still only A\'s page');
      // A keeps working: a fresh view of the same block, zalloc/free/debug fills, check()
      assert.deepEqual([...a.view(x).subarray(0, 4)], [0x5a, 0x5a, 0x5a, 0x5a]);
      const x3 = a.zalloc();
      assert.ok(a.view(x3).every((v) => v === 0));
      a.free(x2); a.free(x3);
      a.check();
      assert.equal(a.stats.inUse, 1);
      // B never noticed
      assert.ok(b.view(y).every((v) => v === 0x66));
      const y2 = b.zalloc();
      b.free(y2); b.check();
      a.free(x); b.free(y);
      dev.close(); // not EBUSY: nothing was leaked
      assert.equal(dev.isClosed, true);
    } finally {
      dev.close();
    }
  });

  it('a moved-away view keeps its page out of reuse until collected; then the page returns', async () => {
    const dev = openDevice('sim');
    let moved: Uint8Array | undefined;
    try {
      const a = dev.createPool('A', 4096);
      const b = dev.createPool('B', 4096); // keeps the slab mapped throughout
      const keep = b.alloc();
      const x = a.alloc();
      moved = await enqueueAndRead(a.view(x));
      a.free(x);
      a.destroy();
      assert.equal(dev.provider.quarantined, 1, 'A\'s page is quarantined, not reused');
      // another pool allocating many pages never gets A's page while the moved buffer lives
      const c = dev.createPool('C', 4096);
      const zs = Array.from({ length: 64 }, () => c.alloc());
      zs.forEach((z) => c.view(z).fill(0x33));
      moved.fill(0xff);
      for (const z of zs) assert.ok(c.view(z).every((v) => v === 0x33), 'C\'s blocks are untouched by A\'s moved buffer');
      zs.forEach((z) => c.free(z));
      c.destroy();
      moved = undefined;
      await collect();
      assert.equal(dev.provider.reclaim(), 1, 'collected: the page goes back to the provider');
      assert.equal(dev.provider.quarantined, 0);
      b.free(keep);
    } finally {
      dev.close();
    }
  });

  it('close() with a moved-away view alive: writing through it later neither crashes nor reaches new mappings', async () => {
    const dev = openDevice('sim');
    const a = dev.createPool('A', 128);
    const x = a.alloc();
    a.view(x).fill(1);
    const moved = await enqueueAndRead(a.view(x));
    a.free(x);
    dev.close();
    // new DMA memory elsewhere: must never be what `moved` points at
    const dev2 = openDevice('sim');
    try {
      const p = dev2.createPool('P', 128);
      const ys = Array.from({ length: 2000 }, () => p.alloc());
      ys.forEach((y) => p.view(y).fill(0x44));
      moved.fill(0x99); // inert memory: no crash, no effect
      for (const y of ys) assert.ok(p.view(y).every((v) => v === 0x44));
      ys.forEach((y) => p.free(y));
    } finally {
      dev2.close();
    }
  });

  it('detach cycles release their memory (no mapping or RSS growth across 200 devices)', async () => {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) {
      const dev = openDevice('sim');
      const a = dev.createPool('A', 2048);
      const x = a.alloc();
      let moved: Uint8Array | undefined = await enqueueAndRead(a.view(x));
      moved[0] = 1;
      a.free(x);
      dev.close();
      moved = undefined;
      if (i % 20 === 19) await collect();
    }
    await collect();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB over 200 detach cycles (each maps a 2 MiB slab)`);
  });

  it('errors are typed and leave the pool unchanged: view of a free block, of a destroyed pool', () => withSim((dev) => {
    const a = dev.createPool('A', 64);
    const x = a.alloc();
    a.free(x);
    assert.throws(() => a.view(x), (e: unknown) => e instanceof DmaPoolError && e.code === 'EALREADY');
    a.destroy();
    assert.throws(() => a.view(x), (e: unknown) => e instanceof DmaPoolError && e.code === 'EBADF');
  }));
});
