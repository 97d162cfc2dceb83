/**
 * The layering written in docs/architecture.md is the layering of the code: every import under
 * lib/ goes to the same layer or a lower one, and every file under lib/ belongs to a layer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const LIB = path.join(ROOT, 'lib');

interface Layer { n: number; name: string; patterns: string[] }

/** The layer table of docs/architecture.md: `| # | layer | modules |` rows with backticked patterns. */
function readLayers(): Layer[] {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => /^\|\s*\d+\s*\|/.test(l));
  return rows.map((l) => {
    const cells = l.split('|').map((c) => c.trim());
    return { n: Number(cells[1]), name: cells[2], patterns: [...cells[3].matchAll(/`([^`]+)`/g)].map((m) => m[1]) };
  });
}

/** 'index/*' matches files directly in lib/index; 'drivers/**' anything below; 'pool' is lib/pool.ts. */
function matches(pattern: string, rel: string): boolean {
  const mod = rel.replace(/\.ts$/, '');
  if (pattern.endsWith('/**')) return mod.startsWith(pattern.slice(0, -2));
  if (pattern.endsWith('/*')) return path.dirname(mod) === pattern.slice(0, -2);
  return mod === pattern;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of a file: import … from, export … from, import(), require(). */
function imports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)) out.push(m[1]);
  return out;
}

function resolve(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base + '.ts', path.join(base, 'index.ts'), base]) if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  throw new Error(`${path.relative(ROOT, from)}: cannot resolve '${spec}'`);
}

describe('architecture (docs/architecture.md)', () => {
  const layers = readLayers();
  const layerOf = (file: string): Layer | undefined => {
    const rel = path.relative(LIB, file).split(path.sep).join('/');
    return layers.find((l) => l.patterns.some((p) => matches(p, rel)));
  };

  it('the document has the layer table', () => {
    assert.ok(layers.length >= 6, `found ${layers.length} layer rows`);
    assert.deepEqual(layers.map((l) => l.n), [...layers.keys()], 'layers are numbered 0, 1, 2, … in order');
  });

  it('every file under lib/ belongs to a layer', () => {
    const orphans = tsFiles(LIB).filter((f) => !layerOf(f)).map((f) => path.relative(ROOT, f));
    assert.deepEqual(orphans, []);
  });

  const violations = (f: string, specs: string[]): string[] => {
    const out: string[] = [];
    const me = layerOf(f);
    if (!me) return out;
    for (const spec of specs) {
      const target = resolve(f, spec);
      if (!target.startsWith(LIB + path.sep)) { out.push(`${path.relative(ROOT, f)} imports ${spec} outside lib/`); continue; }
      const them = layerOf(target);
      if (them && them.n > me.n)
        out.push(`${path.relative(ROOT, f)} (${me.name}) imports ${path.relative(ROOT, target)} (${them.name})`);
    }
    return out;
  };

  it('no module imports a higher layer (the page index imports nothing above it; the library never imports the tools)', () => {
    assert.deepEqual(tsFiles(LIB).flatMap((f) => violations(f, imports(f))), []);
  });

  it('the checker catches the imports the old layout had (page index → provider, pool → cli)', () => {
    assert.equal(violations(path.join(LIB, 'index', 'pages.ts'), ['../provider']).length, 1);
    assert.equal(violations(path.join(LIB, 'index', 'radix.ts'), ['../provider', '../pow2']).length, 1);
    assert.equal(violations(path.join(LIB, 'pool.ts'), ['./cli/bench']).length, 1);
    assert.deepEqual(violations(path.join(LIB, 'cli', 'main.ts'), ['../pool', '../index/pages']), []);
  });

  it('the VM test bed\'s node helpers find the compiled modules they load (scripts/vm/*.js)', () => {
    // dmapool-test-rows.js loads dist/lib/cli/bench.js before it parses its arguments: without
    // arguments it must get as far as its usage line (exit 2), not die on a moved module
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'vm', 'dmapool-test-rows.js')], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^usage: dmapool-test-rows\.js/);
  });
});
