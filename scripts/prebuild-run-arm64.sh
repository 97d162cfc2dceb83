#!/usr/bin/env bash
# Runs the linux-arm64 prebuild on arm64 Node under qemu-user (no arm64 machine needed): loads
# prebuilds/linux-arm64/dmapool.node, round-trips mmioWrite/mmioRead at every width through the
# arm64 accessors (native/mmio.h) and checks a refused access, then runs the library's sim pools
# (every strategy) over it. Debian bookworm's arm64 nodejs (18.x: N-API 9 >= our 8) and its
# libraries, and qemu-user-static, are fetched with `apt-get download` through a PRIVATE sources
# list (the system's apt configuration and dpkg state are never changed) and unpacked, not
# installed, under ~/.cache/dmapool/arm64-node. Proves the binary loads and its MMIO code runs on
# an arm64 CPU model; the barriers themselves are checked in the disassembly (prebuild-verify.sh).
# usage: scripts/prebuild-run-arm64.sh [prebuilds/linux-arm64/dmapool.node]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
addon=$(realpath "${1:-$root/prebuilds/linux-arm64/dmapool.node}")
[[ -f $addon ]] || { echo "prebuild-run-arm64: $addon missing (scripts/prebuild.sh arm64)" >&2; exit 1; }
C=${DMAPOOL_CACHE:-$HOME/.cache/dmapool}/arm64-node
mkdir -p "$C/lists/partial" "$C/cache/archives/partial" "$C/debs" "$C/qemu"
mirror=$( (grep -hoE '^URIs: *https?://[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | sed 's/^URIs: *//';
  grep -hoE '^deb +(\[[^]]*\] +)?https?://[^ ]+' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $NF}') | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
key=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb ${key:+[signed-by=$key] }$mirror bookworm main" >"$C/sources.list"
O=(-o "Dir::Etc::sourcelist=$C/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$C/lists"
   -o "Dir::Cache=$C/cache" -o Dir::State::status=/dev/null -qq)
[[ $(id -u) -eq 0 ]] && O+=(-o APT::Sandbox::User=root)
if [[ ! -x $C/sysroot/usr/bin/node || ! -x $C/qemu/x/usr/bin/qemu-aarch64-static ]]; then
  echo "prebuild-run-arm64: fetching Debian's arm64 nodejs and qemu-user-static into $C" >&2
  apt-get "${O[@]}" -o APT::Architecture=arm64 -o APT::Architectures=arm64 update
  (cd "$C/debs" && apt-get "${O[@]}" -o APT::Architecture=arm64 -o APT::Architectures=arm64 download \
     nodejs libnode108 libuv1 libbrotli1 libc-ares2 libicu72 libnghttp2-14 libssl3 zlib1g libc6 libgcc-s1 libstdc++6 \
     node-acorn node-cjs-module-lexer node-undici node-busboy 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  apt-get "${O[@]}" -o APT::Architectures=amd64 update
  (cd "$C/qemu" && apt-get "${O[@]}" -o APT::Architectures=amd64 download qemu-user-static 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  rm -rf "$C/sysroot" "$C/qemu/x"
  for d in "$C"/debs/*.deb; do dpkg -x "$d" "$C/sysroot"; done
  dpkg -x "$C"/qemu/qemu-user-static_*.deb "$C/qemu/x"
fi
run() { "$C/qemu/x/usr/bin/qemu-aarch64-static" -L "$C/sysroot" "$C/sysroot/usr/bin/node" "$@"; }

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cat >"$t/mmio.js" <<'EOF'
const assert = require('assert');
const addon = require(process.argv[2]);
class E extends Error { constructor(code, msg) { super(msg); this.code = code; } }
addon.setErrorClass(E);
const m = addon.mapAnonymous(4096, 4096, {});
const dv = new DataView(m.buffer);
const vals = { 1: 0xa5n, 2: 0xbeefn, 4: 0xdeadbeefn, 8: 0x0123456789abcdefn };
for (const [w, v] of Object.entries(vals)) {
  const off = 64 * Number(w);
  addon.mmioWrite(m.id, off, v, Number(w));
  assert.equal(addon.mmioRead(m.id, off, Number(w)), v);
  const got = { 1: () => BigInt(dv.getUint8(off)), 2: () => BigInt(dv.getUint16(off, true)),
    4: () => BigInt(dv.getUint32(off, true)), 8: () => dv.getBigUint64(off, true) }[w]();
  assert.equal(got, v);
}
assert.throws(() => addon.mmioRead(m.id, 4093, 4), (e) => e.code === 'EINVAL');
assert.equal(addon.unmap(m.id), true);
console.log(`${process.arch} node ${process.version}: the arm64 prebuild loads; mmioWrite/mmioRead round-trip at widths 1, 2, 4, 8; an access past the mapping is EINVAL`);
EOF
cat >"$t/pool.js" <<'EOF'
const { openDevice } = require(process.argv[2]);
const dev = openDevice('sim');
for (const index of ['linear', 'rbtree', 'stack', 'radix']) {
  const pool = dev.createPool(index, 128, { index });
  const a = [];
  for (let i = 0; i < 2000; i++) a.push(pool.alloc());
  pool.view(a[7])[0] = 1;
  for (const x of a) pool.free(x);
  pool.destroy();
}
dev.close();
console.log(`${process.arch}: the library's sim pools (4 strategies x 2000 blocks) run over the arm64 prebuild`);
EOF
run "$t/mmio.js" "$addon"
[[ -f $root/dist/lib/index.js ]] && DMAPOOL_ADDON=$addon run "$t/pool.js" "$root/dist/lib/index.js"
