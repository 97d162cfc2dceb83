/**
 * The NVMe driver. On the host (sim): PRP list building against real dmapool pools, status
 * decoding, SQE/CQE encoding, CAP decoding, and the queue pair's phase-bit reaping and timeouts
 * against a scripted controller. In the VM test bed (guest A: QEMU's NVMe on vfio-pci, bdf in
 * DMAPOOL_VFIO_BDF2): the driver against the real controller model.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DmaPoolError, openDevice, poolsLine, POOLS_HEADER } from '../lib';
import type { Device, DmaPool } from '../lib';
import {
  buildPrps, CTRL_PAGE, decodeCap, decodeCqe, decodeStatus, encodeSqe, freePrps, Nvme, NvmeError, prpListCount, PRP_PAGE_POOL,
  PRP_SMALL_POOL, statusErrno,
} from '../lib/drivers/nvme';
import { getU64, NVM_READ, NVM_WRITE, parseIdentifyNamespace, rwSqe } from '../lib/drivers/nvme/commands';
import { QueuePair } from '../lib/drivers/nvme/queue';
import type { Registers } from '../lib/drivers/nvme/registers';
import { VfioProvider as VfioProviderClass } from '../lib/providers/vfio';
import type { VfioProvider } from '../lib/providers/vfio';
import { rng } from '../lib/rng';
import { compareImage, Manifest, pattern, replay } from './nvme-image';
import { describeIf, envValue, itIf, needs, RUNS_IN } from './helpers';

const isErr = (code: string, re?: RegExp) => (e: unknown) => e instanceof DmaPoolError && e.code === code && (!re || re.test(e.message));

/** Walks a PRP data pointer the way the controller does; returns the address of every page. */
function walkPrps(pool: { page: DmaPool; small: DmaPool }, prp1: number, prp2: number, length: number): number[] {
  const out = [prp1];
  let rest = length - (CTRL_PAGE - (prp1 % CTRL_PAGE));
  if (rest <= 0) return out;
  if (rest <= CTRL_PAGE) { out.push(prp2); return out; }
  let list = prp2;
  for (;;) {
    const p = pool.small.owns(list) ? pool.small : pool.page;
    const dv = p.dataView(list);
    const n = (p === pool.small ? 256 : CTRL_PAGE) / 8;
    for (let i = 0; i < n; i++) {
      const e = getU64(dv, i * 8);
      if (i === n - 1 && rest > CTRL_PAGE) { list = e; break; }
      out.push(e);
      rest -= CTRL_PAGE;
      if (rest <= 0) return out;
    }
  }
}

describe('NVMe driver: PRP lists from the pools (sim)', () => {
  let dev: Device;
  let pools: { page: DmaPool; small: DmaPool };
  before(() => {
    dev = openDevice('sim');
    pools = { page: dev.createPool(PRP_PAGE_POOL, 4096, { align: 4096 }), small: dev.createPool(PRP_SMALL_POOL, 256, { align: 256 }) };
  });
  after(() => dev.close());

  // a DMA-contiguous "data buffer": any base works for building; use a page-aligned one far from the pools
  const base = 0x40000000;
  const cases: [string, number, number, number, 'none' | 'small' | 'page'][] = [
    ['one block, PRP1 only', 0, 512, 0, 'none'],
    ['4 KiB aligned, PRP1 only', 0, 4096, 0, 'none'],
    ['512 bytes across a page boundary, PRP1 + PRP2', 3840, 512, 0, 'none'],
    ['8 KiB aligned, PRP1 + PRP2', 0, 8192, 0, 'none'],
    ['8 KiB at offset 400: a 2-entry list, small pool', 400, 8192, 1, 'small'],
    ['132 KiB: 32 entries, the largest small list', 0, 132 << 10, 1, 'small'],
    ['136 KiB: 33 entries, page pool', 0, 136 << 10, 1, 'page'],
    ['2 MiB aligned: 511 entries, one page', 0, 2 << 20, 1, 'page'],
    ['2 MiB + 4 KiB aligned: 512 entries, exactly one full page', 0, (2 << 20) + 4096, 1, 'page'],
    ['2 MiB + 4 KiB at offset 4: 513 entries, a chain of two', 4, (2 << 20) + 4096, 2, 'page'],
    ['2 MiB + 12 KiB aligned: 514 entries, a chain of two', 0, (2 << 20) + 12288, 2, 'page'],
    ['4 MiB at offset 2048: 1024 entries, a chain of three', 2048, 4 << 20, 3, 'page'],
  ];
  for (const [name, off, len, lists, kind] of cases) {
    it(name, () => {
      const dma = base + off;
      assert.equal(prpListCount(dma, len), lists);
      const p = buildPrps(pools, dma, len);
      assert.equal(p.lists.length, lists);
      if (lists) assert.equal(p.small, kind === 'small');
      assert.equal(pools.small.stats.inUse, kind === 'small' ? 1 : 0);
      assert.equal(pools.page.stats.inUse, kind === 'page' ? lists : 0);
      const pages = walkPrps(pools, p.prp1, p.prp2, len);
      const want = [dma];
      for (let a = dma - (dma % CTRL_PAGE) + CTRL_PAGE; a < dma + len; a += CTRL_PAGE) want.push(a);
      assert.deepEqual(pages, want);
      freePrps(pools, p);
      assert.equal(pools.small.stats.inUse + pools.page.stats.inUse, 0);
    });
  }

  it('is all or nothing: a list allocation that fails mid-chain returns the lists taken', () => {
    let n = 0;
    const failing = { ...pools, page: { alloc: () => { if (++n === 3) throw new DmaPoolError('ENOMEM', 'no more'); return pools.page.alloc(); },
      free: (d: number) => pools.page.free(d), dataView: (d: number) => pools.page.dataView(d) } };
    let built;
    assert.throws(() => { built = buildPrps(failing, base + 2048, 4 << 20); }, isErr('ENOMEM'));
    if (built) freePrps(pools, built);
    assert.equal(pools.page.stats.inUse, 0);
  });

  it('pools report like the kernel: 256-byte blocks 16 to a page, 4096-byte blocks one to a page', () => {
    const held = [];
    for (let i = 0; i < 17; i++) held.push(buildPrps(pools, base, 64 << 10)); // 15 entries: small
    for (let i = 0; i < 3; i++) held.push(buildPrps(pools, base, 1 << 20)); // 255 entries: page
    const s = pools.small.stats, p = pools.page.stats;
    assert.equal(poolsLine(s), `${'prp list 256'.padEnd(16)}   17   32  256  2`);
    assert.ok(p.inUse === 3 && p.size === 4096 && p.blocks === p.pages, poolsLine(p));
    for (const h of held) freePrps(pools, h);
  });
});

describe('NVMe driver: status, commands, registers', () => {
  it('decodes status fields and maps them to errno codes the way Linux does', () => {
    const lbaRange = decodeStatus((1 << 14) | (0 << 8) | 0x80);
    assert.deepEqual([lbaRange.sct, lbaRange.sc, lbaRange.dnr, lbaRange.name], [0, 0x80, true, 'LBA Out of Range']);
    assert.equal(statusErrno(lbaRange), 'EREMOTEIO');
    assert.equal(statusErrno(decodeStatus(0x02)), 'EOPNOTSUPP');
    assert.equal(statusErrno(decodeStatus(0x04)), 'EIO');
    assert.equal(decodeStatus(0x04).name, 'Data Transfer Error');
    assert.equal(statusErrno(decodeStatus((2 << 8) | 0x81)), 'ENODATA');
    assert.equal(decodeStatus((2 << 8) | 0x81).name, 'Unrecovered Read Error');
    assert.equal(decodeStatus((1 << 8) | 0x01).name, 'Invalid Queue Identifier');
    assert.equal(decodeStatus((7 << 8) | 0xc3).name, 'Vendor Specific status 0xc3');
    const more = decodeStatus((1 << 13) | (3 << 11) | 0x06);
    assert.deepEqual([more.more, more.crd, more.dnr], [true, 3, false]);
    const e = NvmeError.fromStatus((1 << 14) | 0x80, NVM_READ, 1, 7, 'READ lba 9 × 1');
    assert.ok(e instanceof DmaPoolError && e instanceof NvmeError);
    assert.equal(e.code, 'EREMOTEIO');
    assert.match(e.message, /READ lba 9 × 1 \(opcode 0x02, queue 1, cid 7\) failed: LBA Out of Range \(SCT 0, SC 0x80, DNR\)/);
    assert.equal(e.status?.sc, 0x80);
  });

  it('encodes a READ/WRITE entry: opcode, CID, NSID, PRPs, 64-bit SLBA, 0-based NLB', () => {
    const dv = new DataView(new ArrayBuffer(128));
    new Uint8Array(dv.buffer).fill(0xee);
    const lba = 2 ** 40 + 5;
    encodeSqe(dv, 64, rwSqe(NVM_WRITE, 0xbeef, 1, lba, 256, 0x1_2345_6000 + 8, 0x7_0000_1000));
    const b = new Uint8Array(dv.buffer, 64, 64);
    assert.deepEqual([...b.subarray(0, 8)], [0x01, 0, 0xef, 0xbe, 1, 0, 0, 0]);
    assert.ok(b.subarray(8, 24).every((x) => x === 0), 'reserved and MPTR are zero');
    assert.equal(getU64(dv, 64 + 24), 0x1_2345_6008);
    assert.equal(getU64(dv, 64 + 32), 0x7_0000_1000);
    assert.equal(dv.getUint32(64 + 40, true), 5);
    assert.equal(dv.getUint32(64 + 44, true), 256);
    assert.equal(dv.getUint32(64 + 48, true), 255);
    assert.ok(new Uint8Array(dv.buffer, 0, 64).every((x) => x === 0xee), 'the entry before is untouched');
  });

  it('decodes a completion entry and CAP', () => {
    const dv = new DataView(new ArrayBuffer(16));
    dv.setUint32(0, 0xdeadbeef, true);
    dv.setUint32(8, (3 << 16) | 17, true);
    dv.setUint32(12, (((1 << 14) | 0x80) << 17 | (1 << 16) | 42) >>> 0, true);
    assert.deepEqual(decodeCqe(dv, 0), { result: 0xdeadbeef, sqHead: 17, sqId: 3, cid: 42, phase: 1, status: (1 << 14) | 0x80 });
    // QEMU 7.2: MQES 0x7ff, CQR, TO 0xf, DSTRD 0, CSS NVM, MPSMIN 0, MPSMAX 4
    const cap = decodeCap((0x4n << 52n) | (0x20n << 32n) | (0xfn << 24n) | (1n << 16n) | 0x7ffn);
    assert.deepEqual(cap, { maxQueueEntries: 2048, cqr: true, timeoutMs: 7500, doorbellStride: 4, nvmCommandSet: true, pageMin: 4096, pageMax: 65536 });
    assert.equal(decodeCap(2n << 32n).doorbellStride, 16);
  });

  it('parses Identify Namespace: size and the formatted LBA format', () => {
    const b = new Uint8Array(4096);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 131072, true);
    b[26] = 1; // FLBAS: format 1
    dv.setUint32(128, 9 << 16, true);
    dv.setUint32(132, 12 << 16, true);
    const ns = parseIdentifyNamespace(1, b);
    assert.deepEqual([ns.blocks, ns.blockSize, ns.metadataSize, ns.lbaFormat], [131072, 4096, 0, 1]);
  });
});

/** A scripted controller for QueuePair: records doorbell writes; the test posts completions. */
function fakeRegs(writes: [number, number][]): Registers {
  const pci = { write32: (_bar: number, off: number, v: number) => { writes.push([off, v]); } };
  return { pci, doorbell: (qid: number, cq: boolean) => 0x1000 + (2 * qid + (cq ? 1 : 0)) * 4 } as unknown as Registers;
}

describe('NVMe driver: queue pair against a scripted controller (sim memory)', () => {
  it('rings the SQ doorbell per command, reaps by phase bit across wraps, rings the CQ head once per batch', async () => {
    const dev = openDevice('sim');
    const writes: [number, number][] = [];
    const q = new QueuePair(fakeRegs(writes), dev.provider, 1, 4);
    try {
      const done: number[] = [];
      const post = (slot: number, cid: number, phase: number, status = 0) => {
        q.cq.view.setUint32(slot * 16, 100 + cid, true);
        q.cq.view.setUint32(slot * 16 + 12, ((status << 17) | (phase << 16) | cid) >>> 0, true);
      };
      const submit = () => new Promise<number>((resolve, reject) => q.submit({ opcode: 2 }, { opcode: 2, what: 't', resolve, reject, deadline: Infinity }));
      for (let round = 0; round < 3; round++) {
        const ps = [submit(), submit(), submit()];
        assert.equal(q.hasSlot, false, 'depth 4 holds 3 commands');
        assert.equal(q.inFlight, 3);
        const cids = [0, 1, 2].map((i) => q.sq.view.getUint16(((round * 3 + i) % 4) * 64 + 2, true));
        assert.equal(q.reap(), 0, 'nothing new yet');
        // the controller completes in reverse order; phase flips after each pass over the 4-entry ring
        for (let i = 0; i < 3; i++) {
          const slot = (round * 3 + i) % 4;
          post(slot, cids[2 - i], Math.floor((round * 3 + i) / 4) % 2 === 0 ? 1 : 0);
        }
        const before = writes.length;
        assert.equal(q.reap(), 3);
        assert.deepEqual(writes.slice(before), [[0x1000 + 3 * 4, (round * 3 + 3) % 4]], 'one CQ head doorbell write');
        done.push(...(await Promise.all(ps)));
        assert.deepEqual(done.slice(-3), cids.map((c) => 100 + c));
      }
      const sqBells = writes.filter(([o]) => o === 0x1000 + 2 * 4).map(([, v]) => v);
      assert.deepEqual(sqBells, [1, 2, 3, 0, 1, 2, 3, 0, 1]);
    } finally {
      q.free();
      dev.close();
    }
  });

  it('a timed-out command is rejected ETIMEDOUT but keeps its slot and PRP lists until its completion arrives', async () => {
    const dev = openDevice('sim');
    const q = new QueuePair(fakeRegs([]), dev.provider, 1, 4);
    try {
      let released = 0;
      const p = new Promise<number>((resolve, reject) => q.submit({ opcode: 2 }, { opcode: 2, what: 'READ lba 0 × 1', resolve, reject,
        release: () => { released++; }, deadline: Date.now() - 1 }));
      q.expire(Date.now());
      await assert.rejects(p, (e: unknown) => e instanceof NvmeError && e.code === 'ETIMEDOUT' && /READ lba 0 × 1/.test(e.message));
      assert.equal(q.inFlight, 1, 'the slot stays reserved: the device may still DMA');
      assert.equal(released, 0);
      q.cq.view.setUint32(12, (1 << 16) | 0, true); // the late completion, cid 0, phase 1
      assert.equal(q.reap(), 1);
      assert.equal(q.inFlight, 0);
      assert.equal(released, 1);
    } finally {
      q.free();
      dev.close();
    }
  });

  it('an error completion rejects with the decoded status and still releases the lists', async () => {
    const dev = openDevice('sim');
    const q = new QueuePair(fakeRegs([]), dev.provider, 2, 8);
    try {
      let released = 0;
      const p = new Promise<number>((resolve, reject) => q.submit({ opcode: 1 }, { opcode: 1, what: 'WRITE lba 1 × 1', resolve, reject,
        release: () => { released++; }, deadline: Infinity }));
      q.cq.view.setUint32(12, ((((2 << 8) | 0x80) << 17) | (1 << 16)) >>> 0, true);
      q.reap();
      await assert.rejects(p, (e: unknown) => e instanceof NvmeError && e.code === 'ENODATA' && e.status?.name === 'Write Fault' && e.qid === 2);
      assert.equal(released, 1);
    } finally {
      q.free();
      dev.close();
    }
  });

  it('Nvme.open refuses providers without an IOMMU domain', async () => {
    await assert.rejects(Nvme.open('sim'), isErr('ENODEV', /needs a vfio: device/));
  });
});

describe('NVMe image check (run.sh, after guest A)', () => {
  it('replays the write manifest in order and finds a single differing byte', () => {
    const m: Manifest = { blockSize: 512, blocks: 64, writes: [{ lba: 2, blocks: 8, seed: 5 }, { lba: 6, blocks: 2, seed: 6 }, { lba: 63, blocks: 1, seed: 7 }] };
    const img = replay(m);
    assert.ok(img.subarray(0, 1024).every((x) => x === 0), 'unwritten blocks stay zero');
    assert.deepEqual(img.subarray(1024, 3072), pattern(5, 4096).subarray(0, 2048));
    assert.deepEqual(img.subarray(3072, 4096), pattern(6, 1024), 'the later write wins');
    assert.equal(compareImage(m, img), '');
    const bad = img.slice();
    bad[63 * 512 + 17] ^= 1;
    assert.match(compareImage(m, bad), /first difference at byte 32273 \(block 63\).*1 differing bytes/);
    assert.match(compareImage(m, img.subarray(0, 512)), /image is 512 bytes, the namespace 32768/);
    assert.notDeepEqual(pattern(1, 64), pattern(2, 64));
  });
});

// ---- the real controller (VM test bed) ------------------------------------------------------

const nvmeGate = needs.env('DMAPOOL_VFIO_BDF2', 'an NVMe controller on vfio-pci', RUNS_IN.guestA);

describeIf(nvmeGate, 'NVMe driver on a real controller (vfio-pci)', function () {
  const bdf = envValue('DMAPOOL_VFIO_BDF2');
  let nvme: Nvme;
  let bs = 512;
  const manifest: Manifest = { blockSize: 0, blocks: 0, writes: [] };
  /** Expected contents of every block written so far (the suite's own model of the disk). */
  const model = new Map<number, Uint8Array>();
  let seed = 1;
  const rand = rng(0x6e766d65);

  /** Writes fresh pattern data of `blocks` blocks at `lba` from `buf` at `off`; records it. */
  async function writeAt(lba: number, blocks: number, buf: ReturnType<Nvme['allocBuffer']>, off: number): Promise<number> {
    const s = seed++;
    pattern(s, blocks * bs, buf.bytes.subarray(off, off + blocks * bs));
    await nvme.writeFrom(lba, blocks, buf, off);
    manifest.writes.push({ lba, blocks, seed: s });
    const data = pattern(s, blocks * bs);
    for (let i = 0; i < blocks; i++) model.set(lba + i, data.subarray(i * bs, (i + 1) * bs));
    return s;
  }

  function checkAgainstModel(lba: number, blocks: number, got: Uint8Array): void {
    for (let i = 0; i < blocks; i++) {
      const want = model.get(lba + i);
      if (!want) continue;
      const have = got.subarray(i * bs, (i + 1) * bs);
      if (Buffer.compare(have, want) !== 0) assert.fail(`block ${lba + i} differs from what was written`);
    }
  }

  before(async () => {
    nvme = await Nvme.open(`vfio:${bdf}`, { queueDepth: 64, timeoutMs: 60000, accounting: true });
    bs = nvme.blockSize;
    manifest.blockSize = bs;
    manifest.blocks = nvme.blocks;
    console.log(`    ${nvme.describe()}`);
  });
  after(async () => {
    await nvme?.close();
    const out = process.env.DMAPOOL_NVME_MANIFEST;
    if (out && manifest.writes.length) fs.writeFileSync(out, JSON.stringify(manifest));
  });

  itIf(needs.env('DMAPOOL_EXPECT_IOMMU', 'the IOMMU back end the test bed expects', RUNS_IN.guests),
    'runs on the IOMMU back end the test bed asked for (guest A: type1 container, guest B: iommufd)', () => {
    const p = nvme.device.provider;
    assert.ok(p instanceof VfioProviderClass, `${nvme.device.kind} provider, expected vfio`);
    assert.equal(p.container.backend, envValue('DMAPOOL_EXPECT_IOMMU'), p.description);
  });

  it('identifies QEMU\'s controller and namespace', () => {
    assert.equal(nvme.controller.vid, 0x1b36);
    assert.equal(nvme.controller.serial, 'dmapool');
    assert.match(nvme.controller.model, /QEMU NVMe Ctrl/);
    const want = Number(process.env.DMAPOOL_NVME_BYTES ?? 0);
    if (want) assert.equal(nvme.blocks * nvme.blockSize, want);
    assert.ok(nvme.maxTransfer >= (2 << 20) + 2 * 4096, `max transfer ${nvme.maxTransfer}: chained lists need MDTS ≥ 10 (boot.sh sets mdts=10)`);
  });

  it('the PRP pools show what Linux\'s pools file shows for the same I/O pattern', async () => {
    // fresh pools (identify used PRP1 only): 32 concurrent 64 KiB reads (15 entries: small pool),
    // then 8 concurrent 1 MiB reads (255 entries: page pool), then one 3 MiB read (767 entries: a chain of 2)
    assert.equal(nvme.prpPools.small.stats.pages + nvme.prpPools.page.stats.pages, 0);
    const buf = nvme.allocBuffer(8 << 20);
    try {
      await Promise.all(Array.from({ length: 32 }, (_, i) => nvme.readInto(i * 128, 128, buf, i * (64 << 10))));
      await Promise.all(Array.from({ length: 8 }, (_, i) => nvme.readInto(i * 2048, 2048, buf, i * (1 << 20))));
      await nvme.readInto(0, 6144, buf, 0);
    } finally {
      buf.free();
    }
    // Linux 6.1 mm/dmapool.c: "%-16s %4u %4zu %4u %2u" name, blocks in use, pages × blocks per page, size, pages;
    // pages are never returned before destroy, so pages = the peak of lists in use at once
    const perPage = (size: number) => Math.max(4096, size) / size;
    const line = (name: string, size: number, peak: number) =>
      `${name.padEnd(16)} ${'0'.padStart(4)} ${String(Math.ceil(peak / perPage(size)) * perPage(size)).padStart(4)} ${String(size).padStart(4)} ${String(Math.ceil(peak / perPage(size))).padStart(2)}`;
    assert.equal(nvme.device.poolsReport(), [POOLS_HEADER, line(PRP_SMALL_POOL, 256, 32), line(PRP_PAGE_POOL, 4096, 8)].join('\n') + '\n');
  });

  // [name, blocks, buffer offset, commands per transfer]: PRP1 only, PRP1+PRP2, small list, page list, full page, chains, split
  const sizes: [string, number, number, number][] = [
    ['one block, PRP1 only', 1, 0, 1],
    ['one block across a page boundary (PRP1 + PRP2)', 1, 3840 + 4, 1],
    ['4 KiB at offset 12: PRP1 + PRP2', 8, 12, 1],
    ['12 KiB at offset 400: a small list', 24, 400, 1],
    ['128 KiB + 512 at offset 8: 32 entries, the largest small list', 257, 8, 1],
    ['1 MiB at offset 1028: page list', 2048, 1028, 1],
    ['2 MiB: one full list page', 4096, 0, 1],
    ['2 MiB + 4 KiB at offset 4: 513 entries, a chain of two', 4104, 4, 1],
    ['3 MiB + 512 at offset 2052: a chain of two list pages', 6145, 2052, 1],
    ['4 MiB − 4 KiB at offset 516: 1024 pages, the most one command spans (1023 entries, a chain of two)', 8184, 516, 1],
    ['4 MiB at offset 516: 1025 pages, split into two commands', 8192, 516, 2],
    ['6 MiB at offset 3076: split into two commands at MDTS', 12288, 3076, 2],
  ];
  for (const [name, blocks, off, cmds] of sizes) {
    it(`writes and reads back ${name}`, async () => {
      const bytes = blocks * bs;
      const wbuf = nvme.allocBuffer(bytes + off), rbuf = nvme.allocBuffer(bytes + 8192);
      try {
        const lba = Math.floor(rand() * (nvme.blocks - blocks));
        const c0 = nvme.poolTime.commands;
        await writeAt(lba, blocks, wbuf, off);
        const roff = (off * 7 + 260) % 4096 & ~3; // a different, also unaligned, offset
        rbuf.bytes.fill(0xa5);
        await nvme.readInto(lba, blocks, rbuf, roff);
        assert.equal(nvme.poolTime.commands - c0, 2 * cmds, 'commands issued for the write and the read');
        assert.ok(Buffer.compare(rbuf.bytes.subarray(roff, roff + bytes), wbuf.bytes.subarray(off, off + bytes)) === 0, 'read back differs');
        assert.ok(rbuf.bytes.subarray(0, roff).every((x) => x === 0xa5), 'bytes before the read target are untouched');
        assert.ok(rbuf.bytes.subarray(roff + bytes).every((x) => x === 0xa5), 'bytes after the read target are untouched');
        assert.equal(nvme.prpPools.small.stats.inUse + nvme.prpPools.page.stats.inUse, 0, 'every list returned');
      } finally {
        wbuf.free(); rbuf.free();
      }
    });
  }

  it('random data across the whole namespace (read(), write() and flush())', async () => {
    for (let i = 0; i < 48; i++) {
      const blocks = 1 + Math.floor(rand() ** 3 * 1024);
      const lba = i === 0 ? 0 : i === 1 ? nvme.blocks - blocks : Math.floor(rand() * (nvme.blocks - blocks));
      const s = seed++;
      const data = pattern(s, blocks * bs);
      await nvme.write(lba, data);
      manifest.writes.push({ lba, blocks, seed: s });
      for (let b = 0; b < blocks; b++) model.set(lba + b, data.subarray(b * bs, (b + 1) * bs));
    }
    await nvme.flush();
    const chunk = (4 << 20) / bs;
    for (let lba = 0; lba < nvme.blocks; lba += chunk) {
      const n = Math.min(chunk, nvme.blocks - lba);
      checkAgainstModel(lba, n, await nvme.read(lba, n));
    }
  });

  it('QD 32: interleaved reads and writes in flight at once', async () => {
    const q = nvme.ioQueues[0];
    // 16 writes of fresh data to distinct regions and 16 reads of regions written before, all at once
    const region = 256; // blocks
    const writeLbas = Array.from({ length: 16 }, (_, i) => 40960 + i * region);
    const written = [...model.keys()].filter((l) => l + 64 <= 40960 && model.has(l + 63)).slice(0, 16);
    assert.ok(written.length === 16);
    const wbuf = nvme.allocBuffer(16 * region * bs), rbuf = nvme.allocBuffer(16 * 64 * bs + 4096);
    try {
      const seeds = writeLbas.map(() => seed++);
      writeLbas.forEach((_, i) => pattern(seeds[i], region * bs, wbuf.bytes.subarray(i * region * bs, (i + 1) * region * bs)));
      const ops: Promise<void>[] = [];
      for (let i = 0; i < 16; i++) {
        ops.push(nvme.writeFrom(writeLbas[i], region, wbuf, i * region * bs));
        ops.push(nvme.readInto(written[i], 64, rbuf, 4 + i * 64 * bs));
      }
      assert.ok(q.inFlight >= 32, `${q.inFlight} commands in flight`);
      await Promise.all(ops);
      for (let i = 0; i < 16; i++) {
        manifest.writes.push({ lba: writeLbas[i], blocks: region, seed: seeds[i] });
        const d = pattern(seeds[i], region * bs);
        for (let b = 0; b < region; b++) model.set(writeLbas[i] + b, d.subarray(b * bs, (b + 1) * bs));
        checkAgainstModel(written[i], 64, rbuf.bytes.subarray(4 + i * 64 * bs, 4 + (i + 1) * 64 * bs));
      }
      for (let i = 0; i < 16; i++) checkAgainstModel(writeLbas[i], region, await nvme.read(writeLbas[i], region));
    } finally {
      wbuf.free(); rbuf.free();
    }
  });

  it('a controller error comes back typed: READ past the namespace is LBA Out of Range (EREMOTEIO)', async () => {
    const buf = nvme.allocBuffer(4096);
    try {
      await assert.rejects(nvme.passthru(rwSqe(NVM_READ, 0, nvme.namespace.nsid, nvme.blocks, 1, buf.dma, 0)),
        (e: unknown) => e instanceof NvmeError && e.code === 'EREMOTEIO' && e.status?.sct === 0 && e.status.sc === 0x80 && /LBA Out of Range/.test(e.message));
      await assert.rejects(nvme.read(nvme.blocks - 1, 2), isErr('EINVAL', /outside namespace/));
    } finally {
      buf.free();
    }
  });

  it('a PRP list at an unmapped IOVA: the command fails with a data transfer error, memory and disk unchanged (the IOMMU)', async () => {
    const provider = nvme.device.provider as VfioProvider;
    const hole = provider.container.iova.alloc(2 << 20, 2 << 20); // reserved, never mapped
    const target = 16384; // blocks already written by the namespace test? use the model either way
    const span = 4112; // 514 pages: PRP1 + 513 entries, so the controller must follow the chain pointer
    const before = await nvme.read(target, span);
    const data = nvme.allocBuffer((2 << 20) + 3 * 4096);
    const list = nvme.prpPools.page.alloc();
    try {
      data.bytes.fill(0x5a);
      // READ of 4 pages whose PRP list (PRP2) is itself at the unmapped IOVA
      await assert.rejects(nvme.passthru(rwSqe(NVM_READ, 0, nvme.namespace.nsid, target, 32, data.dma, hole)),
        (e: unknown) => e instanceof NvmeError && e.code === 'EIO' && e.status?.sct === 0 && e.status.sc === 0x04 && /Data Transfer Error/.test(e.message));
      assert.ok(data.bytes.every((x) => x === 0x5a), 'the device wrote nothing into the data buffer');
      // WRITE of 514 pages: a real list page whose chain pointer (entry 511) is the unmapped IOVA
      const dv = nvme.prpPools.page.dataView(list);
      for (let i = 0; i < 511; i++) { dv.setUint32(i * 8, (data.dma + (i + 1) * 4096) % 2 ** 32, true); dv.setUint32(i * 8 + 4, Math.floor((data.dma + (i + 1) * 4096) / 2 ** 32), true); }
      dv.setUint32(511 * 8, hole % 2 ** 32, true); dv.setUint32(511 * 8 + 4, Math.floor(hole / 2 ** 32), true);
      await assert.rejects(nvme.passthru(rwSqe(NVM_WRITE, 0, nvme.namespace.nsid, target, span, data.dma, list)),
        (e: unknown) => e instanceof NvmeError && e.code === 'EIO' && e.status?.sc === 0x04);
      assert.ok(Buffer.compare(await nvme.read(target, span), before) === 0, 'the disk is unchanged');
      // and the controller keeps working
      const buf = nvme.allocBuffer(4096);
      await writeAt(target, 8, buf, 0);
      checkAgainstModel(target, 8, await nvme.read(target, 8));
      buf.free();
    } finally {
      nvme.prpPools.page.free(list);
      data.free();
      provider.container.iova.release(hole);
    }
  });

  it('closes with an orderly shutdown and releases every pool and buffer', async () => {
    const dev = nvme.device;
    await nvme.close();
    assert.ok(nvme.isClosed && dev.isClosed);
    await assert.rejects(nvme.read(0, 1), isErr('EBADF'));
    // reopen: a clean controller again (the shutdown left it disabled), data persisted
    await using again = await Nvme.open(`vfio:${bdf}`);
    checkAgainstModel(0, 64, await again.read(0, 64));
  });

  it('interrupt-driven completion: an MSI-X vector per CQ, 2 queues, QD 32 writes and reads, no polling', async () => {
    await using n = await Nvme.open(`vfio:${bdf}`, { completion: 'interrupt', queues: 2, queueDepth: 32 });
    assert.equal(n.completion, 'interrupt');
    const region = 64, count = 32, base = 49152;
    const wbuf = n.allocBuffer(count * region * bs + 4096), rbuf = n.allocBuffer(count * region * bs + 4096);
    try {
      const seeds = Array.from({ length: count }, () => seed++);
      seeds.forEach((s, i) => pattern(s, region * bs, wbuf.bytes.subarray(8 + i * region * bs, 8 + (i + 1) * region * bs)));
      const pollsBefore = n.irqWakeups;
      await Promise.all(seeds.map((_, i) => n.writeFrom(base + i * region, region, wbuf, 8 + i * region * bs)));
      assert.ok(n.ioQueues.every((q) => q.completions > 0), 'both I/O queues were used');
      seeds.forEach((s, i) => {
        manifest.writes.push({ lba: base + i * region, blocks: region, seed: s });
        const d = pattern(s, region * bs);
        for (let b = 0; b < region; b++) model.set(base + i * region + b, d.subarray(b * bs, (b + 1) * bs));
      });
      await Promise.all(seeds.map((_, i) => n.readInto(base + i * region, region, rbuf, 12 + i * region * bs)));
      assert.ok(Buffer.compare(rbuf.bytes.subarray(12, 12 + count * region * bs), wbuf.bytes.subarray(8, 8 + count * region * bs)) === 0);
      assert.ok(n.irqWakeups > pollsBefore, `${n.irqWakeups - pollsBefore} interrupt wake-ups`);
    } finally {
      wbuf.free(); rbuf.free();
    }
  });
});
