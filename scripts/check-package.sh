#!/usr/bin/env bash
# The package as a library user gets it. `npm pack` (prepare: tsc; prepack: both prebuilds,
# each checked by scripts/prebuild-verify.sh), then a fresh consumer project installs the tarball
# and uses it from CommonJS, ESM and strict TypeScript with `using`. Checks:
#  - the tarball: both prebuilds, LICENSE, README + docs/scaling.svg, scripts/install.js; no source
#    maps, no tests; packed / unpacked / installed sizes printed;
#  - install: the prebuilt addon was used (no compiler run), no chart library (vega, vega-lite,
#    d3) installed;
#  - exports: root (CJS require, ESM import with named exports), ./package.json, ./drivers/* for
#    every driver shipped; deep imports refused;
#  - tsc --strict (skipLibCheck off) over CJS and ESM consumers using `using`, then run;
#  - the CLI: --version; bench --scaling without vega: exit 1 and the install hint;
#  - scripts/install.js without a fitting prebuild and without a toolchain: one line, exit 1.
# The consumer's dev dependencies (typescript, @types/node) come from the npm registry (cache first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok  $*"; }

echo "== npm pack (tsc, prebuilds for linux-x64 and linux-arm64)"
(cd "$root" && npm pack --pack-destination "$work" --json --foreground-scripts >"$work/pack.json" 2>"$work/pack.log") \
  || { tail -30 "$work/pack.log" >&2; fail "npm pack"; }
grep -E '^(prebuild|  Mmio)' "$work/pack.log" || true
tgz="$work/$(node -p "require('$work/pack.json')[0].filename")"
ROOT="$root" node - "$work/pack.json" <<'EOF' || fail "tarball contents"
const p = require(process.argv[2])[0];
const files = p.files.map((f) => f.path);
const need = ['LICENSE', 'README.md', 'package.json', 'docs/scaling.svg', 'scripts/install.js', 'binding.gyp',
  'prebuilds/linux-x64/dmapool.node', 'prebuilds/linux-arm64/dmapool.node', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'native/mmio.h'];
const missing = need.filter((f) => !files.includes(f));
const maps = files.filter((f) => f.endsWith('.map'));
const stray = files.filter((f) => /^(dist\/)?test\/|^lib\/|^build\//.test(f));
if (missing.length || maps.length || stray.length) {
  console.error({ missing, maps: maps.slice(0, 5), stray: stray.slice(0, 5) });
  process.exit(1);
}
for (const img of (require('fs').readFileSync(require('path').join(process.env.ROOT || '.', 'README.md'), 'utf8').match(/\]\((docs\/[^)]+\.(?:svg|png))\)/g) || []))
  if (!files.includes(img.slice(2, -1))) { console.error(`README image ${img} not shipped`); process.exit(1); }
console.log(`  ok  tarball: ${files.length} files, packed ${p.size} B, unpacked ${p.unpackedSize} B; both prebuilds, LICENSE, docs/scaling.svg; no source maps`);
EOF

echo "== fresh consumer installs the tarball"
c="$work/consumer"
mkdir -p "$c" && cd "$c"
echo '{ "name": "consumer", "version": "1.0.0", "private": true }' >package.json
npm install --no-audit --no-fund --foreground-scripts "$tgz" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "npm install of the tarball"; }
pkg="$c/node_modules/dmapool"
arch=$(node -p process.arch)
grep -q "dmapool: using the prebuilt linux-$arch addon" "$work/install.log" || { cat "$work/install.log" >&2; fail "the prebuilt addon was not used"; }
cmp -s "$pkg/build/Release/dmapool.node" "$pkg/prebuilds/linux-$arch/dmapool.node" || fail "build/Release/dmapool.node is not the prebuild"
[[ ! -e $pkg/build/Makefile ]] || fail "node-gyp ran although a prebuild fits"
ok "install used prebuilds/linux-$arch (no compiler run)"
for m in vega vega-lite d3-scale; do [[ ! -e node_modules/$m ]] || fail "$m installed for a library user"; done
ok "no chart libraries installed ($(ls node_modules | tr '\n' ' '))"
echo "  installed: node_modules $(du -sb node_modules | cut -f1) B apparent, $(du -sk node_modules | cut -f1) KiB on disk, $(ls node_modules | wc -l) packages (dmapool itself $(du -sb node_modules/dmapool | cut -f1) B)"

cat >cjs.cjs <<'EOF'
const assert = require('node:assert/strict');
const d = require('dmapool');
assert.equal(require('dmapool/package.json').name, 'dmapool');
assert.throws(() => require('dmapool/dist/lib/pool.js'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
const dev = d.openDevice('sim');
const pool = dev.createPool('cjs', 64, { align: 64 });
const a = pool.alloc();
pool.view(a)[0] = 7;
pool.free(a);
pool.destroy();
dev.close();
assert.throws(() => pool.alloc(), (e) => e instanceof d.DmaPoolError && e.code === 'EBADF');
for (const name of (process.env.DRIVERS || '').split(' ').filter(Boolean)) require(`dmapool/drivers/${name}`);
console.log('cjs ok');
EOF
cat >esm.mjs <<'EOF'
import assert from 'node:assert/strict';
import { openDevice, DmaPoolError, dmaToBigInt } from 'dmapool';
import dmapool from 'dmapool';
assert.equal(dmapool.openDevice, openDevice);
const dev = openDevice('sim');
const pool = dev.createPool('esm', 128);
const a = pool.alloc();
assert.equal(typeof dmaToBigInt(a), 'bigint');
pool.free(a);
pool.destroy();
dev.close();
await assert.rejects(import('dmapool/dist/lib/index.js'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
for (const name of (process.env.DRIVERS || '').split(' ').filter(Boolean)) await import(`dmapool/drivers/${name}`);
assert.ok(DmaPoolError);
console.log('esm ok');
EOF
drivers=$(cd "$pkg/dist/lib" && ls -d drivers/*/index.js 2>/dev/null | cut -d/ -f2 | tr '\n' ' ' || true)
dlist=${drivers:+, dmapool/drivers/: $drivers}
DRIVERS=$drivers node cjs.cjs >/dev/null || fail "CommonJS consumer"
ok "CommonJS: require('dmapool'), dmapool/package.json${dlist% }; deep import refused"
DRIVERS=$drivers node esm.mjs >/dev/null || fail "ESM consumer"
ok "ESM: named and default import from an .mjs${dlist% }"

echo "== strict TypeScript with using"
tsv=$(node -p "require('$root/node_modules/typescript/package.json').version")
npm install --no-audit --no-fund --prefer-offline -D "typescript@$tsv" "@types/node@^20.19" >"$work/ts-install.log" 2>&1 \
  || { tail -20 "$work/ts-install.log" >&2; fail "npm install typescript@$tsv @types/node"; }
cat >tsconfig.json <<'EOF'
{ "compilerOptions": { "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext", "strict": true,
    "skipLibCheck": false, "lib": ["es2022", "esnext.disposable"], "types": ["node"], "outDir": "out" },
  "files": ["use.cts", "use.mts"] }
EOF
cat >use.cts <<'EOF'
import { openDevice, DmaPoolError, type Device, type DeviceSpec, type IndexKind, type PciAccess } from 'dmapool';
const spec: DeviceSpec = 'sim';
const index: IndexKind = 'radix';
let seen: PciAccess | undefined = undefined;
function run(): number {
  using dev: Device = openDevice(spec);
  using pool = dev.createPool('ts', 256, { index });
  const a = pool.alloc();
  pool.free(a);
  return a;
}
const addr: number = run();
try { openDevice('nope' as DeviceSpec); } catch (e) { if (!(e instanceof DmaPoolError) || e.code !== 'EINVAL') throw e; }
console.log('cts ok', typeof addr, seen);
EOF
cat >use.mts <<'EOF'
import { openDevice } from 'dmapool';
{
  using dev = openDevice('sim');
  using pool = dev.createPool('ts-esm', 32);
  pool.free(pool.alloc());
}
console.log('mts ok');
EOF
npx tsc -p . >"$work/tsc.log" 2>&1 || { cat "$work/tsc.log" >&2; fail "tsc --strict over the published typings"; }
node out/use.cjs >/dev/null && node out/use.mjs >/dev/null || fail "running the compiled TypeScript consumers"
ok "tsc $tsv --strict (skipLibCheck off): CJS (.cts) and ESM (.mts) consumers with using compile and run"

echo "== the CLI"
v=$(npx --no-install dmapool --version)
[[ $v == "$(node -p "require('dmapool/package.json').version")" ]] || fail "dmapool --version printed '$v'"
set +e
out=$(npx --no-install dmapool bench --device sim --scaling "$work/scaling" 2>&1); rc=$?
set -e
[[ $rc == 1 && $out == *"hint: npm install vega@^6 vega-lite@^6"* && ! -e $work/scaling ]] || fail "bench --scaling without vega: exit $rc, '$out'"
ok "--version $v; bench --scaling without vega exits 1 with the install hint"

echo "== install script without a fitting prebuild and without a toolchain"
bare="$work/bare"
mkdir -p "$bare/bin" "$bare/pkg"
ln -s "$(command -v node)" "$bare/bin/node"
cp -r "$pkg/package.json" "$pkg/scripts" "$pkg/binding.gyp" "$pkg/native" "$bare/pkg/"
set +e
msg=$(cd "$bare/pkg" && env -i PATH="$bare/bin" HOME="$work" node scripts/install.js 2>&1); rc=$?
set -e
lines=$(printf '%s\n' "$msg" | wc -l)
[[ $rc != 0 && $lines == 1 && $msg == *"no prebuilt addon for linux-"*"python3, make, g++ are missing"* ]] \
  || fail "install.js without prebuild and toolchain: exit $rc, $lines lines: $msg"
ok "one line, exit $rc: $msg"
echo "check-package: all checks passed"
