/**
 * Our block layouts against the kernel's own code: Linux 6.1's and 6.12's mm/dmapool.c, compiled
 * in userspace by scripts/kernel-dmapool/build.sh (the `bench --kernel` runners), report the
 * offsets of the blocks they hand out from a pool's first page. `legacyLayout` must reproduce
 * 6.1 wherever 6.1's blocks stay inside the page (6.1 also hands out a block running past the end
 * of the page when the boundary exceeds the allocation: a kernel bug we do not copy), and the
 * default layout must be 6.12's exactly. Create refusals must agree too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DmaPoolError, poolGeometry } from '../lib';
import { itIf, requirement, RUNS_IN } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const PAGE = 4096;

interface Runner { series: string; version: string; runner: string }

/** The cached kernel runners (built offline from cached sources; none when never fetched). */
function runners(): { found: Runner[]; why: string } {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/kernel-dmapool/build.sh'), '--offline'], { encoding: 'utf8' });
  const found: Runner[] = [];
  const errors: string[] = [];
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const j = JSON.parse(line) as Runner & { error?: string };
    if (j.error) errors.push(`${j.series}: ${j.error}`);
    else found.push(j);
  }
  return { found, why: errors.join('; ') || r.stderr.trim().split('\n').pop() || 'no runner' };
}

function kernelLayout(runner: string, size: number, align: number, boundary: number): number[] | undefined {
  const r = spawnSync(runner, ['--layout', `${size},${align},${boundary}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { created: boolean; offsets?: number[] };
  return j.created ? j.offsets : undefined;
}

function ourLayout(size: number, align: number, boundary: number, legacyLayout: boolean): number[] | undefined {
  try {
    return Array.from(poolGeometry(size, { align, boundary, legacyLayout }, PAGE).offsets);
  } catch (e) {
    if (e instanceof DmaPoolError && e.code === 'EINVAL') return undefined;
    throw e;
  }
}

// sizes ≥ 16: below that the kernels raise the size to fit their in-block links (4 B in 6.1,
// 16 B in 6.12) and we keep the requested size (README: differences from the kernel)
const SIZES = [16, 17, 24, 32, 48, 64, 68, 96, 100, 128, 200, 256, 500, 512, 1000, 1024, 1500, 2048, 3000, 4096, 5000, 8192];
const ALIGNS = [0, 8, 32, 64, 256];
const BOUNDARIES = [0, 16, 64, 256, 1024, 2048, 4096, 8192, 16384, 3000];

describe('block layouts against the kernel\'s own mm/dmapool.c (6.1 legacy, 6.12 default)', function () {
  const { found, why } = runners();
  const k61 = found.find((r) => r.series === '6.1');
  const k612 = found.find((r) => r.series === '6.12');
  const runner = (series: string, r: Runner | undefined) => requirement(`the Linux ${series} mm/dmapool.c runner ` +
    `(scripts/kernel-dmapool/build.sh ${series})`, RUNS_IN.kernelCache, !r && why);

  itIf(runner('6.1', k61), 'legacyLayout = Linux 6.1 wherever 6.1\'s blocks stay inside the page; never a block past its end', () => {
    const k61r = k61!;
    let compared = 0, pastEnd = 0;
    for (const size of SIZES) for (const align of ALIGNS) for (const boundary of BOUNDARIES) {
      const kernel = kernelLayout(k61r.runner, size, align, boundary);
      const ours = ourLayout(size, align, boundary, true);
      const shape = `size ${size} align ${align} boundary ${boundary}`;
      if (kernel === undefined) { assert.equal(ours, undefined, `6.1 refuses ${shape}, we accept it`); continue; }
      assert.ok(ours, `6.1 accepts ${shape}, we refuse it`);
      const aligned = Math.ceil(size / Math.max(align, 1)) * Math.max(align, 1);
      const allocation = Math.max(aligned, PAGE);
      const inside = kernel.filter((o) => o + aligned <= allocation);
      pastEnd += kernel.length - inside.length;
      assert.deepEqual(ours, inside, `${shape}: 6.1 ${JSON.stringify(kernel)}`);
      compared++;
    }
    console.log(`      ${compared} shapes identical to Linux ${k61r.version}; ${pastEnd} blocks 6.1 places past the page end left out`);
    assert.ok(compared >= SIZES.length, `only ${compared} shapes compared`);
    assert.ok(pastEnd > 0, 'the table includes shapes where 6.1 runs past the page');
  });

  itIf(runner('6.12', k612), 'the default layout = Linux 6.12 exactly', () => {
    const k612r = k612!;
    let compared = 0;
    for (const size of SIZES) for (const align of ALIGNS) for (const boundary of BOUNDARIES) {
      const kernel = kernelLayout(k612r.runner, size, align, boundary);
      const ours = ourLayout(size, align, boundary, false);
      const shape = `size ${size} align ${align} boundary ${boundary}`;
      if (kernel === undefined) { assert.equal(ours, undefined, `6.12 refuses ${shape}, we accept it`); continue; }
      assert.deepEqual(ours, kernel, shape);
      compared++;
    }
    console.log(`      ${compared} shapes identical to Linux ${k612r.version}`);
    assert.ok(compared >= SIZES.length, `only ${compared} shapes compared`);
  });
});
