#!/usr/bin/env bash
# Builds Linux's own mm/dmapool.c (and 6.12's mm/dmapool_test.c) as a userspace benchmark runner,
# for `dmapool bench --kernel`. The kernel's code is GPL: it is fetched and compiled here, at bench
# time, into ~/.cache/dmapool, and never committed or shipped.
#
#   build.sh [--offline] [SERIES...]        SERIES: 6.1, 6.12 (default: both)
#   build.sh --compile SRC_DIR OUT_DIR [LABEL]
#
# For each series it prints one JSON line on stdout:
#   {"series":"6.12","version":"6.12.57-1","runner":"/…/runner","dmapool_test":true}
# or {"series":"6.1","error":"why"}; progress goes to stderr. The exit status is 0 unless the
# arguments are wrong.
#
# Sources: Debian's linux-source-<series> package (6.1 from bookworm, 6.12 from trixie), fetched
# with `apt-get download` through a PRIVATE sources list built from the Debian mirror this system
# already uses (the system's apt configuration is never changed) — scripts/lib/debian-source.sh,
# shared with the guest B kernel build (scripts/vm/kernel-custom.sh), which keeps the source
# tarball in ~/.cache/dmapool/linux-source-<package version>.tar.xz. mm/dmapool.c and
# mm/dmapool_test.c are extracted to ~/.cache/dmapool/kernel-src-<package version>/. They are
# compiled unmodified except that their #include lines are stripped (sed, into the build
# directory), against shim.h; runner.c drives them. The runner goes to
# ~/.cache/dmapool/kernel-bench-<package version>-<hash of shim.h + runner.c + flags>/runner.
#
# --offline (or DMAPOOL_KERNEL_OFFLINE=1): no network; use the newest cached source per series.
# --compile: compile SRC_DIR/dmapool.c (+ dmapool_test.c if present) into OUT_DIR/runner (tests).
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${DMAPOOL_CACHE:-$HOME/.cache/dmapool}"
CC="${CC:-gcc}"
# The kernel builds with -O2 and these semantics-relevant flags; -w: the kernel's code is not ours
# to warn about (it is compiled as is).
CFLAGS_K="-O2 -std=gnu11 -fno-strict-aliasing -fno-common -fno-delete-null-pointer-checks -w"
CFLAGS_R="-O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter"

log() { printf '[kernel-dmapool] %s\n' "$*" >&2; }
# the last failure, for the one-line error (mirror URLs redacted: they name no host in our output)
reason=""
fail() { reason=$(printf '%s' "$*" | sed -E 's#[a-z+]+://[^ ]*#<mirror>#g'); log "$reason"; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/ }; printf '"%s"' "$s"; }
fail_line() { printf '{"series":%s,"error":%s}\n' "$(json_str "$1")" "$(json_str "$2")"; }

# compile SRC OUT LABEL: the runner from SRC/dmapool.c (+ SRC/dmapool_test.c), atomically into OUT.
compile() {
  local src=$1 out=$2 label=${3:-unknown}
  command -v "$CC" >/dev/null || { echo "no C compiler ($CC) found" >&2; return 1; }
  [[ -f "$src/dmapool.c" ]] || { echo "$src/dmapool.c is missing" >&2; return 1; }
  mkdir -p "$(dirname "$out")"
  local tmp; tmp=$(mktemp -d "$out.tmp.XXXXXX")
  local strip='/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]/d'
  local defs=() objs=("$tmp/dmapool.o")
  sed -E "$strip" "$src/dmapool.c" >"$tmp/dmapool.c"
  if ! "$CC" $CFLAGS_K -include "$HERE/shim.h" -c "$tmp/dmapool.c" -o "$tmp/dmapool.o" 2>"$tmp/cc.log"; then
    head -30 "$tmp/cc.log" >&2; rm -rf "$tmp"; return 1
  fi
  if [[ -f "$src/dmapool_test.c" ]]; then
    sed -E "$strip" "$src/dmapool_test.c" >"$tmp/dmapool_test.c"
    if "$CC" $CFLAGS_K -include "$HERE/shim.h" -c "$tmp/dmapool_test.c" -o "$tmp/dmapool_test.o" 2>"$tmp/cc-test.log"; then
      defs+=(-DHAVE_DMAPOOL_TEST); objs+=("$tmp/dmapool_test.o")
    else
      log "$label: mm/dmapool_test.c did not compile against the shim; the runner's own port of its loop is used"
      head -10 "$tmp/cc-test.log" >&2
    fi
  fi
  if ! "$CC" $CFLAGS_R -I"$HERE" "${defs[@]}" -DKVER="\"$label\"" -c "$HERE/runner.c" -o "$tmp/runner.o" 2>"$tmp/cc-runner.log" ||
     ! "$CC" -o "$tmp/runner" "$tmp/runner.o" "${objs[@]}" 2>>"$tmp/cc-runner.log"; then
    head -30 "$tmp/cc-runner.log" >&2; rm -rf "$tmp"; return 1
  fi
  rm -rf "$out"
  mv "$tmp" "$out"
}

if [[ "${1:-}" == --compile ]]; then
  [[ $# -ge 3 ]] || { echo "usage: $0 --compile SRC_DIR OUT_DIR [LABEL]" >&2; exit 2; }
  compile "$2" "$3" "${4:-test}"
  exit $?
fi

offline=${DMAPOOL_KERNEL_OFFLINE:-0}
series=()
for a in "$@"; do
  case "$a" in
    --offline) offline=1 ;;
    6.1|6.12) series+=("$a") ;;
    *) echo "usage: $0 [--offline] [6.1] [6.12]" >&2; exit 2 ;;
  esac
done
((${#series[@]})) || series=(6.1 6.12)

mkdir -p "$CACHE"
# one builder at a time (two bench runs may start together)
exec 9>"$CACHE/kernel-dmapool.lock"
flock 9

# the private apt list and the linux-source download, shared with scripts/vm/kernel-custom.sh
source "$HERE/../lib/debian-source.sh"
suite_of() { debsrc_suite "$1"; }

# newest cached source of a series ("" if none)
cached_version() {
  local s=$1 d best=""
  for d in "$CACHE"/kernel-src-"$s".[0-9]*; do
    [[ -f "$d/.complete" ]] || continue
    best+="${d##*/kernel-src-}"$'\n'
  done
  printf '%s' "$best" | sort -V | tail -1
}

# fetch SERIES VERSION: mm/dmapool.c (+ mm/dmapool_test.c) into kernel-src-VERSION.
fetch() {
  local s=$1 ver=$2 dst="$CACHE/kernel-src-$2"
  [[ -f "$dst/.complete" ]] && return 0
  local tarball
  tarball=$(debsrc_tarball "$s" "$ver") || { fail "linux-source-$s $ver could not be fetched (see above)"; return 1; }
  local tmp; tmp=$(mktemp -d "$CACHE/fetch-$s.XXXXXX")
  log "extracting mm/dmapool.c and mm/dmapool_test.c"
  # 6.1 has no dmapool_test.c: tar reports the missing member; what counts is dmapool.c
  tar -xf "$tarball" -C "$tmp" --wildcards '*/mm/dmapool.c' '*/mm/dmapool_test.c' 2>/dev/null || true
  local c; c=$(find "$tmp" -path '*/mm/dmapool.c' | head -1)
  [[ -n "$c" ]] || { fail "mm/dmapool.c not found in $(basename "$tarball")"; rm -rf "$tmp"; return 1; }
  rm -rf "$dst.tmp"; mkdir -p "$dst.tmp"
  cp "$c" "$dst.tmp/dmapool.c"
  [[ -f "$(dirname "$c")/dmapool_test.c" ]] && cp "$(dirname "$c")/dmapool_test.c" "$dst.tmp/dmapool_test.c"
  printf 'linux-source-%s %s\n' "$s" "$ver" >"$dst.tmp/PACKAGE"
  touch "$dst.tmp/.complete"
  rm -rf "$dst"; mv "$dst.tmp" "$dst"
  rm -rf "$tmp"
}

hash=$( { cat "$HERE/shim.h" "$HERE/runner.c"; echo "$CC $CFLAGS_K $CFLAGS_R"; } | sha256sum | cut -c1-12)  # no <(…): guests have no /dev/fd

for s in "${series[@]}"; do
  ver="" reason=""
  if ((offline == 0)); then
    ver=$(debsrc_candidate "$s") || ver=""
  fi
  if [[ -n "$ver" ]] && ! fetch "$s" "$ver"; then ver=""; fi
  if [[ -z "$ver" ]]; then
    ver=$(cached_version "$s")
    if [[ -z "$ver" ]]; then
      if ((offline)); then fail_line "$s" "linux-source-$s is not cached in $CACHE (offline)"
      else fail_line "$s" "linux-source-$s could not be fetched (${reason:-see the messages above}) and is not cached"; fi
      continue
    fi
    log "using the cached linux-source-$s $ver"
  fi
  out="$CACHE/kernel-bench-$ver-$hash"
  if [[ ! -x "$out/runner" ]]; then
    log "compiling Linux $ver mm/dmapool.c against the shim"
    if ! compile "$CACHE/kernel-src-$ver" "$out" "$ver" 2>"$CACHE/compile-$s.log"; then
      cat "$CACHE/compile-$s.log" >&2
      why=$(grep -m1 -E 'error' "$CACHE/compile-$s.log" || head -1 "$CACHE/compile-$s.log")
      fail_line "$s" "Linux $ver mm/dmapool.c did not compile against the shim: $(printf '%s' "$why" | sed -E 's#^[^ ]*/##' | cut -c1-200)"
      continue
    fi
    rm -f "$CACHE/compile-$s.log"
    # builds of this version against an older shim/runner (or interrupted ones) are stale
    for d in "$CACHE"/kernel-bench-"$ver"-*; do [[ "$d" == "$out" ]] || rm -rf "$d"; done
  fi
  dt=false; [[ -f "$out/dmapool_test.o" ]] && dt=true
  printf '{"series":%s,"version":%s,"runner":%s,"dmapool_test":%s}\n' \
    "$(json_str "$s")" "$(json_str "$ver")" "$(json_str "$out/runner")" "$dt"
done
