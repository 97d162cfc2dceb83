/**
 * udmabuf on a modern kernel (the VM test bed's guest B, Linux 6.12): huge-page memfds accepted,
 * so slabs are DMA-contiguous in 2 MiB units and pools with blocks above 4 KiB work — proven by
 * the QEMU edu device copying across a 4 KiB page boundary inside such blocks — and udmabuf's own
 * module limits (size_limit_mb, list_limit) are read from sysfs and never exceeded. Skips with
 * the reason where /dev/udmabuf (or root, or the edu device) is missing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DmaPoolError, openDevice } from '../lib';
import type { Device } from '../lib';
import { native } from '../lib/native';
import { UdmabufProvider, udmabufAvailable } from '../lib/providers/udmabuf';
import { UDMABUF_PARAMS, udmabufLimits } from '../lib/providers/udmabuf-limits';
import { rng } from '../lib/rng';
import { Edu, EDU_BUF_SIZE } from './edu';
import { Fixture } from './fixtures';
import { allOf, describeIf, envValue, itIf, needs, requirement, RUNS_IN } from './helpers';

const isErr = (code: string, re: RegExp) => (e: unknown) => e instanceof DmaPoolError && e.code === code && re.test(e.message);

describe('udmabuf limits rule (fixture sysfs)', () => {
  it('reads size_limit_mb and list_limit, falls back to the kernel defaults, and refuses what exceeds them', () => {
    const fx = new Fixture().file(`${UDMABUF_PARAMS}/size_limit_mb`, '3\n').file(`${UDMABUF_PARAMS}/list_limit`, '16\n');
    const none = new Fixture();
    try {
      assert.deepEqual(udmabufLimits(fx.sys), { sizeLimitMb: 3, listLimit: 16, maxBytes: 3 << 20, source: 'sysfs' });
      assert.deepEqual(udmabufLimits(none.sys), { sizeLimitMb: 64, listLimit: 1024, maxBytes: 64 << 20, source: 'default' });
      // a /dev/udmabuf that is not a device: the limits are checked before anything is opened
      fx.file('/dev/udmabuf', '');
      assert.throws(() => openDevice('udmabuf', { sys: fx.sys, slabSize: 4 << 20, hugepages: false }),
        isErr('EINVAL', /exceeds size_limit_mb=3/));
      fx.file(`${UDMABUF_PARAMS}/size_limit_mb`, '1\n');
      assert.throws(() => openDevice('udmabuf', { sys: fx.sys, hugepages: true }), isErr('EINVAL', /0x200000-byte dma-buf exceeds size_limit_mb=1/));
      fx.file(`${UDMABUF_PARAMS}/list_limit`, '0\n');
      assert.throws(() => openDevice('udmabuf', { sys: fx.sys, hugepages: false }), isErr('EINVAL', /list_limit is 0/));
    } finally {
      fx.cleanup(); none.cleanup();
    }
  });
});

const sizeLimitParam = `${UDMABUF_PARAMS}/size_limit_mb`;
let paramWritable = false;
try { fs.accessSync(sizeLimitParam, fs.constants.W_OK); paramWritable = true; } catch { /* unmet below */ }

describeIf(requirement('/dev/udmabuf', RUNS_IN.guestB, !udmabufAvailable() && '/dev/udmabuf is missing or not accessible'),
  'udmabuf on a modern kernel (real /dev/udmabuf)', function () {

  it('the limits the provider uses are the module parameters in sysfs', () => {
    const l = udmabufLimits();
    const dev = openDevice('udmabuf');
    try {
      const p = dev.provider as UdmabufProvider;
      assert.deepEqual(p.limits, l);
      if (fs.existsSync(UDMABUF_PARAMS)) {
        assert.equal(l.source, 'sysfs');
        assert.equal(l.sizeLimitMb, Number(fs.readFileSync(`${UDMABUF_PARAMS}/size_limit_mb`, 'utf8')));
        assert.equal(l.listLimit, Number(fs.readFileSync(`${UDMABUF_PARAMS}/list_limit`, 'utf8')));
      }
      assert.ok(p.slabSize <= l.maxBytes);
      assert.match(p.description, new RegExp(`size_limit_mb=${l.sizeLimitMb}, list_limit=${l.listLimit}`));
    } finally {
      dev.close();
    }
  });

  const hugeGate = allOf(needs.env('DMAPOOL_EXPECT_UDMABUF_HUGE', 'a kernel that takes hugetlb memfds (Linux >= 6.11)', RUNS_IN.guestB),
    needs.env('DMAPOOL_EDU', 'the QEMU edu device on uio_pci_generic', RUNS_IN.guestB));
  itIf(hugeGate, 'huge-page memfds are accepted: 2 MiB DMA-contiguous units; a device copies across 4 KiB pages inside 16 KiB blocks', function () {
    const dev = openDevice('udmabuf');
    const regs: Device | undefined = openDevice(`uio:${envValue('DMAPOOL_EDU')}`, { hugepages: false });
    try {
      const p = dev.provider as UdmabufProvider;
      assert.equal(p.hugeUnsupported, false, p.description);
      assert.equal(p.maxContiguous, 2 << 20, p.description);
      assert.match(p.description, /2 MiB huge pages/);
      const pool = dev.createPool('big', 16384);
      const blocks = Float64Array.from({ length: 300 }, () => pool.alloc()); // > 2 slabs of 2 MiB
      assert.ok(p.slabCount >= 3);
      for (const d of blocks) assert.equal(d % 16384, 0, 'naturally aligned');
      // the units are 2 MiB: a 2 MiB slab's blocks are at consecutive DMA addresses
      const bySlab = Math.floor((2 << 20) / 16384);
      for (let i = 1; i < bySlab; i++) assert.equal(blocks[i] - blocks[0], i * 16384, `block ${i} of the first slab`);
      {
        const engine = new Edu(regs.pci());
        const rand = rng(3);
        for (const [xi, yi] of [[0, 7], [bySlab - 1, bySlab + 3], [299, 1]]) {
          const x = blocks[xi], y = blocks[yi];
          const vx = pool.view(x), vy = pool.view(y);
          vx.set(Uint8Array.from({ length: 16384 }, () => (rand() * 256) | 0));
          vy.fill(0);
          dev.sync('end');
          // EDU_BUF_SIZE - 1 bytes from offset 6144: they span the 4 KiB page boundary at 8192
          const n = EDU_BUF_SIZE - 1;
          engine.toDevice(x + 6144, 0, n);
          engine.fromDevice(0, y + 6144, n);
          dev.sync('begin');
          assert.deepEqual(vy.subarray(6144, 6144 + n), vx.subarray(6144, 6144 + n), `block ${xi} → ${yi} across the page boundary`);
          assert.ok(vy.subarray(0, 6144).every((b) => b === 0) && vy.subarray(6144 + n).every((b) => b === 0), 'no stray bytes');
        }
      }
      for (const d of blocks) pool.free(d);
      pool.destroy();
    } finally {
      regs?.close();
      dev.close();
    }
  });

  const writable = requirement(`a writable ${sizeLimitParam} (root)`, RUNS_IN.guestB, !paramWritable && `${sizeLimitParam} is not writable here`);
  itIf(writable, 'the kernel refuses what the rule refuses: size_limit_mb=1 → a 2 MiB UDMABUF_CREATE fails, and the provider uses 1 MiB 4 KiB-page slabs', function () {
    const param = sizeLimitParam;
    const before = fs.readFileSync(param, 'utf8').trim();
    fs.writeFileSync(param, '1');
    try {
      const n = native();
      const c = n.constants;
      const dev = n.open('/dev/udmabuf', c.O_RDWR);
      const memfd = n.memfdCreate('limit', c.MFD_ALLOW_SEALING);
      try {
        n.ftruncate(memfd, 2 << 20);
        n.addSeals(memfd, c.F_SEAL_SHRINK);
        assert.throws(() => n.udmabufCreate(dev, memfd, 0, 2 << 20), (e: unknown) => e instanceof DmaPoolError && /^E/.test(e.code),
          'the kernel took a 2 MiB dma-buf over size_limit_mb=1');
        n.close(n.udmabufCreate(dev, memfd, 0, 1 << 20)); // exactly the limit works
      } finally {
        n.close(memfd); n.close(dev);
      }
      assert.throws(() => openDevice('udmabuf', { slabSize: 2 << 20, hugepages: false }), isErr('EINVAL', /exceeds size_limit_mb=1/));
      const d = openDevice('udmabuf');
      try {
        const p = d.provider as UdmabufProvider;
        assert.equal(p.slabSize, 1 << 20);
        assert.equal(p.maxContiguous, 4096);
        const pool = d.createPool('small', 512);
        const blocks = Array.from({ length: 4096 }, () => pool.alloc()); // 2 MiB of blocks: two 1 MiB dma-bufs
        assert.equal(p.slabCount, 2);
        blocks.forEach((b) => pool.free(b));
        pool.destroy();
      } finally {
        d.close();
      }
    } finally {
      fs.writeFileSync(param, before);
    }
  });
});
