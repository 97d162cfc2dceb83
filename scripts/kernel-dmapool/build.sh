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
# already uses (the system's apt configuration is never changed). Only mm/dmapool.c and
# mm/dmapool_test.c are kept, under ~/.cache/dmapool/kernel-src-<package version>/. They are
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

suite_of() { case $1 in 6.1) echo bookworm ;; 6.12) echo trixie ;; esac; }

mkdir -p "$CACHE"
# one builder at a time (two bench runs may start together)
exec 9>"$CACHE/kernel-dmapool.lock"
flock 9

APT="$CACHE/apt"
APT_OPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache")
# root: apt's _apt sandbox user cannot reach a private directory under /root
[[ $(id -u) -eq 0 ]] && APT_OPTS+=(-o "APT::Sandbox::User=root")

# The Debian archive this system already uses: the first `deb` entry (http or https) of an enabled
# sources file whose suites include a Debian release codename (not -security/-updates).
# Prints "URI KEYRING".
CODENAMES="$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}") bullseye bookworm trixie forky sid stable testing unstable"
system_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v codenames="$CODENAMES" 'BEGIN { RS = ""; FS = "\n"; n = split(codenames, c, " "); for (i = 1; i <= n; i++) ok[c[i]] = 1 }
      {
        types = ""; uris = ""; suites = ""; key = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i; if (line ~ /^[ \t]*#/) continue
          split(line, kv, ":"); k = tolower(kv[1]); v = substr(line, length(kv[1]) + 2)
          gsub(/^[ \t]+|[ \t]+$/, "", v)
          if (k == "types") types = v; else if (k == "uris") uris = v; else if (k == "suites") suites = v
          else if (k == "signed-by") key = v; else if (k == "enabled") enabled = tolower(v)
        }
        if (enabled == "no" || (" " types " ") !~ / deb / || uris !~ /^https?:\/\//) next
        n = split(suites, s, /[ \t]+/)
        for (j = 1; j <= n; j++) if (s[j] in ok) {
          split(uris, u, /[ \t]+/); if (key !~ /^\//) key = ""
          print u[1], key; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v codenames="$CODENAMES" 'BEGIN { n = split(codenames, c, " "); for (i = 1; i <= n; i++) ok[c[i]] = 1 }
      $1 == "deb" {
        key = ""; i = 2
        if ($2 ~ /^\[/) { for (; i <= NF; i++) { if ($i ~ /^\[?signed-by=/) { key = $i; sub(/^\[?signed-by=/, "", key); sub(/\]$/, "", key) } if ($i ~ /\]$/) break }; i++ }
        if ($i ~ /^https?:\/\// && ($(i + 1) in ok)) { print $i, key; exit }
      }' "$f"
  done
}

apt_ready=0 apt_reason=""
# Prepares the private sources list and refreshes its package lists (at most once a day).
apt_prepare() {
  ((apt_ready == 1)) && return 0
  ((apt_ready == 2)) && { reason=$apt_reason; return 1; }
  apt_ready=1
  local line uri key
  line=$(system_mirror | head -1)
  uri=${line%% *}; key=${line#* }; [[ "$key" == "$line" ]] && key=""
  if [[ -z "$uri" ]]; then fail "no Debian archive found in the system's apt sources"; apt_ready=2; apt_reason=$reason; return 1; fi
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
  local opt=""; [[ -n "$key" && -f "$key" ]] && opt="[signed-by=$key] "
  local suite
  for suite in bookworm trixie; do printf 'deb %s%s %s main\n' "$opt" "$uri" "$suite"; done >"$APT/sources.list.new"
  # a changed list (another mirror) invalidates the stamp
  if ! cmp -s "$APT/sources.list.new" "$APT/sources.list" 2>/dev/null; then
    mv "$APT/sources.list.new" "$APT/sources.list"; rm -f "$APT/updated"
  else
    rm -f "$APT/sources.list.new"
  fi
  if [[ -f "$APT/updated" && -z "$(find "$APT/updated" -mmin +1440)" ]]; then return 0; fi
  log "apt-get update (private sources list: bookworm + trixie)"
  # apt-get update exits 0 when indexes fail to download (it warns): treat those warnings as failure
  if apt-get "${APT_OPTS[@]}" -qq update >"$APT/update.log" 2>&1 &&
     ! grep -q -E '^(W|E): (Failed to fetch|Some index files failed)' "$APT/update.log"; then
    touch "$APT/updated"
  else
    fail "apt-get update failed: $(grep -m1 -E '^(E|W):' "$APT/update.log" | cut -c1-200 || tail -1 "$APT/update.log")"
    apt_reason=$reason
    # older lists from an earlier update still name versions (cached sources may match them)
    ls "$APT/lists" 2>/dev/null | grep -q -E '_(In)?Release$' || { apt_ready=2; return 1; }
  fi
}

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
  local tmp; tmp=$(mktemp -d "$CACHE/fetch-$s.XXXXXX")
  local tarball="" inner="linux-source-$s.tar.xz"
  # the same package already installed here: its tarball is the one apt would download
  if [[ -f "/usr/src/$inner" ]] && [[ "$(dpkg-query -W -f='${Version}' "linux-source-$s" 2>/dev/null)" == "$ver" ]]; then
    tarball="/usr/src/$inner"
    log "linux-source-$s $ver: using the installed /usr/src/$inner"
  else
    log "linux-source-$s $ver: apt-get download (~150 MB)"
    if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" -qq download "linux-source-$s=$ver") >"$tmp/download.log" 2>&1; then
      fail "apt-get download failed: $(grep -m1 -E '^(E|W):' "$tmp/download.log" | cut -c1-200 || tail -1 "$tmp/download.log")"
      rm -rf "$tmp"; return 1
    fi
    local deb; deb=$(ls "$tmp"/*.deb 2>/dev/null | head -1)
    [[ -n "$deb" ]] || { fail "apt-get download produced no .deb"; rm -rf "$tmp"; return 1; }
    dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$tmp" "./usr/src/$inner" ||
      { fail "$inner not found in $(basename "$deb")"; rm -rf "$tmp"; return 1; }
    rm -f "$deb"
    tarball="$tmp/usr/src/$inner"
  fi
  log "extracting mm/dmapool.c and mm/dmapool_test.c"
  # 6.1 has no dmapool_test.c: tar reports the missing member; what counts is dmapool.c
  tar -xf "$tarball" -C "$tmp" --wildcards '*/mm/dmapool.c' '*/mm/dmapool_test.c' 2>/dev/null || true
  local c; c=$(find "$tmp" -path '*/mm/dmapool.c' | head -1)
  [[ -n "$c" ]] || { fail "mm/dmapool.c not found in $inner"; rm -rf "$tmp"; return 1; }
  rm -rf "$dst.tmp"; mkdir -p "$dst.tmp"
  cp "$c" "$dst.tmp/dmapool.c"
  [[ -f "$(dirname "$c")/dmapool_test.c" ]] && cp "$(dirname "$c")/dmapool_test.c" "$dst.tmp/dmapool_test.c"
  printf 'linux-source-%s %s\n' "$s" "$ver" >"$dst.tmp/PACKAGE"
  touch "$dst.tmp/.complete"
  rm -rf "$dst"; mv "$dst.tmp" "$dst"
  rm -rf "$tmp"
}

hash=$(cat "$HERE/shim.h" "$HERE/runner.c" <(echo "$CC $CFLAGS_K $CFLAGS_R") | sha256sum | cut -c1-12)

for s in "${series[@]}"; do
  ver="" reason=""
  if ((offline == 0)) && apt_prepare; then
    ver=$(apt-cache "${APT_OPTS[@]}" policy "linux-source-$s" 2>/dev/null | awk '/Candidate:/ { print $2 }') || ver=""
    [[ "$ver" == "(none)" ]] && ver=""
    if [[ -z "$ver" ]]; then
      if [[ -n "$apt_reason" ]]; then reason=$apt_reason
      else fail "linux-source-$s is not in $(suite_of "$s") on the system's Debian mirror"; fi
    fi
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
