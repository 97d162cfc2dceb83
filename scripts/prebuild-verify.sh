#!/usr/bin/env bash
# Checks one built addon (unstripped) before it is shipped or tested:
#  - its ELF machine is the architecture asked for (x64: Advanced Micro Devices X86-64, arm64: AArch64);
#  - its MMIO accessors (mmioRead/mmioWrite in native/memory.cc, accessors in native/mmio.h) are
#    fenced for the device as observer: x86-64 two `mfence`; arm64 no inner-shareable-only
#    `dmb ish`, every width as one plain `ldr*/str* reg, [xN]`, and on every control-flow path a
#    `dmb osh` before and after each access (scripts/prebuild-verify-order.py).
#  - the highest glibc symbol version it needs (printed).
# usage: scripts/prebuild-verify.sh FILE.node x64|arm64
set -euo pipefail
file=$1 arch=$2
case $arch in
  x64)   machine='X86-64'; objdump=objdump; fence='mfence' ;;
  arm64) machine='AArch64'; objdump=aarch64-linux-gnu-objdump; fence='dmb[[:space:]]+osh$' ;;
  *) echo "prebuild-verify: unknown arch '$arch'" >&2; exit 2 ;;
esac
command -v "$objdump" >/dev/null || objdump=objdump
fail() { echo "prebuild-verify: $file ($arch): $*" >&2; exit 1; }

got=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p')
[[ $got == *"$machine"* ]] || fail "ELF machine is '$got', expected $machine"

# the body of one function (demangled name, clones such as .isra/.constprop included)
body() { "$objdump" -d -C --no-show-raw-insn "$file" | awk -v fn="dmapool::$1(" '
  /^[0-9a-f]+ <.*>:$/ { on = index($0, fn) > 0; next }
  on && NF { print }'; }

for fn in MmioRead MmioWrite; do
  dis=$(body "$fn")
  [[ -n $dis ]] || fail "no disassembly found for dmapool::$fn"
  n=$(grep -cE "[[:space:]]$fence" <<<"$dis" || true)
  ((n >= 2)) || fail "dmapool::$fn has $n '$fence' barriers, expected one before and one after the access"
  if [[ $arch == arm64 ]]; then
    if grep -qE 'dmb[[:space:]]+ish' <<<"$dis"; then fail "dmapool::$fn uses dmb ish (inner shareable: does not order against a device)"; fi
    if [[ $fn == MmioRead ]]; then ops='ldrb ldrh ldr'; else ops='strb strh str'; fi
    for op in $ops; do
      grep -qE "[[:space:]]$op[[:space:]]+[wx][0-9]+, \[x[0-9]+\]$" <<<"$dis" || fail "dmapool::$fn: no plain '$op reg, [xN]' access"
    done
    # on every control-flow path: a dmb osh between the entry and each access, and one after it
    order=$(python3 "$(dirname "$0")/prebuild-verify-order.py" "$ops" <<<"$dis" 2>&1) || fail "dmapool::$fn: $order"
  fi
  echo "  $fn: $n × $( [[ $arch == arm64 ]] && echo "dmb osh; $order" || echo mfence )" >&2
done
glibc=$(objdump -T "$file" 2>/dev/null | grep -oE 'GLIBC_[0-9.]+' | sort -t. -k1,1 -k2,2n -k3,3n -uV | tail -1 || true)
echo "prebuild-verify: $file: $got, MMIO fenced, needs ${glibc:-no versioned glibc symbols}" >&2
