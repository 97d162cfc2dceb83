/**
 * What the NVMe suite wrote, reproducible on the host: every write's data is pattern(seed, bytes),
 * and the suite records {lba, blocks, seed} of each completed write in order (the manifest). After
 * guest A exits, scripts/vm/run.sh runs `node dist/test/nvme-image.js MANIFEST IMAGE`: it replays
 * the manifest onto a zero image and compares it byte for byte with the NVMe image file QEMU wrote.
 */
import * as fs from 'node:fs';

export interface ManifestEntry { lba: number; blocks: number; seed: number }
export interface Manifest { blockSize: number; blocks: number; writes: ManifestEntry[] }

/** Deterministic bytes for a write: xorshift32 words from `seed`, little-endian. */
export function pattern(seed: number, bytes: number, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(bytes);
  let x = (seed >>> 0) || 0x9e3779b9;
  const words = bytes >>> 2;
  const dv = new DataView(out.buffer, out.byteOffset, bytes);
  for (let i = 0; i < words; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    dv.setUint32(i * 4, x, true);
  }
  for (let i = words * 4; i < bytes; i++) out[i] = (seed + i) & 0xff;
  return out;
}

/** The image the manifest describes (starting from zeros, as run.sh creates it). */
export function replay(m: Manifest): Uint8Array {
  const img = new Uint8Array(m.blocks * m.blockSize);
  for (const w of m.writes) pattern(w.seed, w.blocks * m.blockSize, img.subarray(w.lba * m.blockSize, (w.lba + w.blocks) * m.blockSize));
  return img;
}

/** Compares; returns '' when identical, else a description of the first difference. */
export function compareImage(m: Manifest, image: Uint8Array): string {
  const want = replay(m);
  if (image.length !== want.length) return `image is ${image.length} bytes, the namespace ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (image[i] !== want[i]) {
      let end = i;
      while (end < want.length && image[end] !== want[end]) end++;
      return `first difference at byte ${i} (block ${Math.floor(i / m.blockSize)}): image 0x${image[i].toString(16)}, ` +
        `driver wrote 0x${want[i].toString(16)}; ${end - i} differing bytes from there`;
    }
  }
  return '';
}

if (require.main === module) {
  const [manifestPath, imagePath] = process.argv.slice(2);
  if (!manifestPath || !imagePath) {
    console.error('usage: node dist/test/nvme-image.js MANIFEST.json IMAGE');
    process.exit(2);
  }
  const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
  const diff = compareImage(m, new Uint8Array(fs.readFileSync(imagePath)));
  if (diff) {
    console.error(`NVMe image ${imagePath} differs from what the driver wrote (${m.writes.length} writes): ${diff}`);
    process.exit(1);
  }
  const bytes = m.writes.reduce((s, w) => s + w.blocks * m.blockSize, 0);
  console.log(`NVMe image ${imagePath}: all ${m.blocks * m.blockSize} bytes match the ${m.writes.length} writes ` +
    `(${bytes} bytes written) replayed onto zeros`);
}
