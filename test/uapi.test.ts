import assert from 'node:assert/strict';
import * as u from '../lib/vfio/uapi';

/** Builds a vfio_iommu_type1_info buffer with a capability chain, as the kernel lays it out. */
function infoBuffer(caps: { id: number; body: Uint8Array }[], order?: number[]): Uint8Array {
  const sizes = caps.map((c) => 8 + c.body.length);
  const total = 24 + sizes.reduce((a, b) => a + b, 0);
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  v.setUint32(0, total, true);
  v.setUint32(4, u.VFIO_IOMMU_INFO_PGSIZES | u.VFIO_IOMMU_INFO_CAPS, true);
  v.setBigUint64(8, 0x40201000n, true); // 4K | 2M | 1G
  const offs: number[] = [];
  let off = 24;
  for (const s of sizes) { offs.push(off); off += s; }
  const seq = order ?? caps.map((_, i) => i);
  v.setUint32(16, offs[seq[0]], true);
  seq.forEach((ci, k) => {
    const o = offs[ci];
    v.setUint16(o, caps[ci].id, true);
    v.setUint16(o + 2, 1, true);
    v.setUint32(o + 4, k + 1 < seq.length ? offs[seq[k + 1]] : 0, true);
    buf.set(caps[ci].body, o + 8);
  });
  return buf;
}

function iovaCap(ranges: [bigint, bigint][]): Uint8Array {
  const b = new Uint8Array(8 + ranges.length * 16);
  const v = new DataView(b.buffer);
  v.setUint32(0, ranges.length, true);
  ranges.forEach(([s, e], i) => { v.setBigUint64(8 + i * 16, s, true); v.setBigUint64(16 + i * 16, e, true); });
  return b;
}

function availCap(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

describe('VFIO uapi', () => {
  it('ioctl numbers match linux/vfio.h, linux/udmabuf.h and linux/dma-buf.h', () => {
    assert.equal(u.VFIO_GET_API_VERSION, 0x3b64);
    assert.equal(u.VFIO_IOMMU_GET_INFO, 0x3b70);
    assert.equal(u.VFIO_IOMMU_MAP_DMA, 0x3b71);
    assert.equal(u.VFIO_IOMMU_UNMAP_DMA, 0x3b72);
    assert.equal(u.UDMABUF_CREATE, 0x40187542);
    assert.equal(u.UDMABUF_CREATE_LIST, 0x40087543);
    assert.equal(u.DMA_BUF_IOCTL_SYNC, 0x40086200);
  });

  it('parses the IOVA-range and DMA_AVAIL capabilities and the page sizes', () => {
    const buf = infoBuffer([
      { id: u.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, body: iovaCap([[0n, 0xfedfffffn], [0xfef00000n, 0x7fffffffffn]]) },
      { id: u.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, body: new Uint8Array(24) },
      { id: u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, body: availCap(65535) },
    ]);
    const info = u.parseIommuInfo(buf);
    assert.equal(info.pageSizes, 0x40201000);
    assert.deepEqual(info.iovaRanges, [{ start: 0, end: 0xfedfffff }, { start: 0xfef00000, end: 0x7fffffffff }]);
    assert.equal(info.dmaAvail, 65535);
    assert.deepEqual(info.caps, [1, 2, 3]);
  });

  it('follows the chain in link order, not buffer order', () => {
    const buf = infoBuffer([
      { id: u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, body: availCap(7) },
      { id: u.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, body: iovaCap([[0x1000n, 0xffffn]]) },
    ], [1, 0]);
    const info = u.parseIommuInfo(buf);
    assert.deepEqual(info.caps, [1, 3]);
    assert.equal(info.dmaAvail, 7);
  });

  it('clips addresses above 2^53 to exact JS numbers', () => {
    const info = u.parseIommuInfo(infoBuffer([{ id: 1, body: iovaCap([[0n, 0xffffffffffffffffn]]) }]));
    assert.equal(info.iovaRanges[0].end, Number.MAX_SAFE_INTEGER);
  });

  it('handles no capabilities, and rejects loops and out-of-range offsets', () => {
    const plain = new Uint8Array(24);
    new DataView(plain.buffer).setUint32(4, u.VFIO_IOMMU_INFO_PGSIZES, true);
    assert.deepEqual(u.parseIommuInfo(plain).caps, []);
    const loop = infoBuffer([{ id: 3, body: availCap(1) }]);
    new DataView(loop.buffer).setUint32(24 + 4, 24, true); // next → itself
    assert.throws(() => u.parseIommuInfo(loop), /loops/);
    const out = infoBuffer([{ id: 3, body: availCap(1) }]);
    new DataView(out.buffer).setUint32(16, 4000, true);
    assert.throws(() => u.parseIommuInfo(out), /outside/);
    const lying = infoBuffer([{ id: 1, body: iovaCap([[0n, 1n]]) }]);
    new DataView(lying.buffer).setUint32(24 + 8, 1000, true); // claims 1000 ranges
    assert.throws(() => u.parseIommuInfo(lying), /past the buffer end/);
  });
});
