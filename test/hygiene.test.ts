/**
 * The test suite's own rules, checked on its sources (test/**.ts): hardware is gated one way
 * (test/helpers.ts describeIf/itIf, so a gate always names its requirement and where it runs for
 * real, and a met requirement never skips), and tests reach library internals through declared
 * @internal seams, never through structural casts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, needs } from './helpers';

const TEST_DIR = path.resolve(__dirname, '..', '..', 'test');

function sources(dir = TEST_DIR): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Lines of test sources (helpers.ts, where the gate lives, and this file excepted) matching `re`. */
function offenders(re: RegExp): string[] {
  const out: string[] = [];
  for (const f of sources()) {
    const base = path.relative(TEST_DIR, f);
    if (base === 'helpers.ts' || base === 'hygiene.test.ts') continue;
    fs.readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (re.test(line)) out.push(`test/${base}:${i + 1}: ${line.trim()}`);
    });
  }
  return out;
}

const sourcesHere = needs.path(TEST_DIR, true, 'the test sources (test/*.ts)',
  'the host suite (the VM test bed runs a snapshot of dist/ without them)');

describeIf(sourcesHere, 'test hygiene (the suite\'s own rules)', () => {
  it('finds the test sources it checks', () => {
    const files = sources().map((f) => path.relative(TEST_DIR, f));
    for (const f of ['helpers.ts', 'pool.test.ts', 'vfio.test.ts', 'fuzz/api-fuzzer.ts']) assert.ok(files.includes(f), f);
  });

  it('no test skips on its own: hardware gates go through describeIf/itIf (test/helpers.ts)', () => {
    assert.deepEqual(offenders(/\bthis\.skip\(|\b(it|describe|context)\.skip\(|\bx(it|describe)\(/), []);
  });

  it('no test reads the test-bed variables or probes devices itself: the gate names the requirement', () => {
    assert.deepEqual(offenders(/process\.env\.DMAPOOL_(EDU|\w*BDF\w*|TEST_DEVICES|TEST_SIM)\b|existsSync\(['"`]\/dev\/(udmabuf|vfio)/), []);
  });

  it('no structural casts into library objects: tests use @internal seams or public behaviour', () => {
    // `x as unknown as number` (a deliberately wrong type for an EINVAL check) stays allowed
    assert.deepEqual(offenders(/as unknown as \{|\bas any\s*[);,.\]]|\bas \{ *(private|pages|chunks|index|quarantine)/), []);
  });

  it('a gate\'s reason is mocha\'s pending title, not console output', () => {
    assert.deepEqual(offenders(/console\.log\([^)]*skipped/), []);
  });
});
