#!/usr/bin/env bash
# Builds the prebuilt addons the package ships, so `npm install` needs no compiler where one fits:
#   prebuilds/linux-x64/dmapool.node    native g++
#   prebuilds/linux-arm64/dmapool.node  Debian's aarch64-linux-gnu-g++ cross compiler, node-gyp --arch=arm64
# N-API 8 (binding.gyp): one binary per architecture serves every Node >= 20. glibc only.
# Each is built in a scratch copy of binding.gyp + native/, so the developer's build/ is untouched,
# and checked before it is kept (scripts/prebuild-verify.sh: ELF machine, MMIO barriers), then
# stripped. Prebuilds are build outputs: produced by `npm pack` (prepack) and CI, never committed.
#
# usage: scripts/prebuild.sh [x64] [arm64]      (default: both; a missing cross compiler is an error)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arches=("$@")
((${#arches[@]})) || arches=(x64 arm64)

gyp="$root/node_modules/node-gyp/bin/node-gyp.js"
[[ -f $gyp ]] || gyp=${npm_config_node_gyp:-}
[[ -n $gyp && -f $gyp ]] || { echo "prebuild: node-gyp not found (run npm install first)" >&2; exit 1; }
# node-gyp run directly does not read .npmrc: pass nodedir (local headers) through when configured
nodedir=${npm_config_nodedir:-$(cd "$root" && npm config get nodedir 2>/dev/null || true)}
gypargs=()
[[ -n $nodedir && $nodedir != undefined && $nodedir != null ]] && gypargs+=("--nodedir=$nodedir")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for arch in "${arches[@]}"; do
  case $arch in
    x64)   cc=${CC_x64:-gcc}; cxx=${CXX_x64:-g++}; strip=strip ;;
    arm64) cc=aarch64-linux-gnu-gcc; cxx=aarch64-linux-gnu-g++; strip=aarch64-linux-gnu-strip ;;
    *) echo "prebuild: unknown arch '$arch' (x64 or arm64)" >&2; exit 2 ;;
  esac
  if ! command -v "$cxx" >/dev/null; then
    echo "prebuild: $cxx not found; for linux-$arch install it (Debian: apt-get install g++-aarch64-linux-gnu)" >&2
    exit 1
  fi
  work="$scratch/$arch"
  mkdir -p "$work"
  cp -r "$root/binding.gyp" "$root/native" "$work/"
  ln -s "$root/node_modules" "$work/node_modules"     # node-addon-api's include_dir
  echo "prebuild: linux-$arch with $cxx" >&2
  (cd "$work" && CC=$cc CXX=$cxx LINK=$cxx AR=${cc%gcc}ar \
     node "$gyp" rebuild --arch="$arch" "${gypargs[@]}" >"$scratch/$arch.log" 2>&1) \
    || { tail -30 "$scratch/$arch.log" >&2; echo "prebuild: linux-$arch build failed" >&2; exit 1; }
  bin="$work/build/Release/dmapool.node"
  bash "$root/scripts/prebuild-verify.sh" "$bin" "$arch"
  mkdir -p "$root/prebuilds/linux-$arch"
  "$strip" --strip-unneeded -o "$root/prebuilds/linux-$arch/dmapool.node" "$bin"
  ls -l "$root/prebuilds/linux-$arch/dmapool.node" >&2
done
