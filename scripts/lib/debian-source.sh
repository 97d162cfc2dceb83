# Sourced helper: Debian's linux-source-<series> packages (6.1 from bookworm, 6.12 from trixie),
# fetched with `apt-get download` through a PRIVATE sources list built from the Debian mirror this
# system already uses. The system's apt configuration is never changed. Used by
# scripts/kernel-dmapool/build.sh (mm/dmapool.c for the userspace runner) and
# scripts/vm/kernel-custom.sh (the whole tree, for guest B's kernel).
#
# The caller sets CACHE and may define log() and fail() (fail MSG sets $reason). Functions:
#   debsrc_candidate SERIES      prints the version apt would download ("" and status 1 if none)
#   debsrc_tarball SERIES VER    prints the path of linux-source-SERIES.tar.xz of exactly VER:
#                                the installed /usr/src one when dpkg has that version, else one
#                                downloaded once into $CACHE/linux-source-VER.tar.xz
#   debsrc_suite SERIES          bookworm / trixie

declare -F log >/dev/null || log() { printf '[debian-source] %s\n' "$*" >&2; }
reason=${reason:-}
# the one-line failure reason, mirror URLs redacted (they name no host in our output)
declare -F fail >/dev/null || fail() { reason=$(printf '%s' "$*" | sed -E 's#[a-z+]+://[^ ]*#<mirror>#g'); log "$reason"; }

DEBSRC_APT="$CACHE/apt"
DEBSRC_APT_OPTS=(-o "Dir::Etc::sourcelist=$DEBSRC_APT/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$DEBSRC_APT/lists" -o "Dir::Cache=$DEBSRC_APT/cache")
# root: apt's _apt sandbox user cannot reach a private directory under /root
[[ $(id -u) -eq 0 ]] && DEBSRC_APT_OPTS+=(-o "APT::Sandbox::User=root")

debsrc_suite() { case $1 in 6.1) echo bookworm ;; 6.12) echo trixie ;; esac; }

# The Debian archive this system already uses: the first `deb` entry (http or https) of an enabled
# sources file whose suites include a Debian release codename (not -security/-updates).
# Prints "URI KEYRING".
DEBSRC_CODENAMES="$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}") bullseye bookworm trixie forky sid stable testing unstable"
debsrc_system_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v codenames="$DEBSRC_CODENAMES" 'BEGIN { RS = ""; FS = "\n"; n = split(codenames, c, " "); for (i = 1; i <= n; i++) ok[c[i]] = 1 }
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
    awk -v codenames="$DEBSRC_CODENAMES" 'BEGIN { n = split(codenames, c, " "); for (i = 1; i <= n; i++) ok[c[i]] = 1 }
      $1 == "deb" {
        key = ""; i = 2
        if ($2 ~ /^\[/) { for (; i <= NF; i++) { if ($i ~ /^\[?signed-by=/) { key = $i; sub(/^\[?signed-by=/, "", key); sub(/\]$/, "", key) } if ($i ~ /\]$/) break }; i++ }
        if ($i ~ /^https?:\/\// && ($(i + 1) in ok)) { print $i, key; exit }
      }' "$f"
  done
}

debsrc_ready=0 debsrc_reason=""
# Prepares the private sources list and refreshes its package lists (at most once a day).
debsrc_prepare() {
  ((debsrc_ready == 1)) && return 0
  ((debsrc_ready == 2)) && { reason=$debsrc_reason; return 1; }
  debsrc_ready=1
  local line uri key
  line=$(debsrc_system_mirror | head -1)
  uri=${line%% *}; key=${line#* }; [[ "$key" == "$line" ]] && key=""
  if [[ -z "$uri" ]]; then fail "no Debian archive found in the system's apt sources"; debsrc_ready=2; debsrc_reason=$reason; return 1; fi
  mkdir -p "$DEBSRC_APT/lists/partial" "$DEBSRC_APT/cache/archives/partial"
  local opt=""; [[ -n "$key" && -f "$key" ]] && opt="[signed-by=$key] "
  local suite
  for suite in bookworm trixie; do printf 'deb %s%s %s main\n' "$opt" "$uri" "$suite"; done >"$DEBSRC_APT/sources.list.new"
  # a changed list (another mirror) invalidates the stamp
  if ! cmp -s "$DEBSRC_APT/sources.list.new" "$DEBSRC_APT/sources.list" 2>/dev/null; then
    mv "$DEBSRC_APT/sources.list.new" "$DEBSRC_APT/sources.list"; rm -f "$DEBSRC_APT/updated"
  else
    rm -f "$DEBSRC_APT/sources.list.new"
  fi
  if [[ -f "$DEBSRC_APT/updated" && -z "$(find "$DEBSRC_APT/updated" -mmin +1440)" ]]; then return 0; fi
  log "apt-get update (private sources list: bookworm + trixie)"
  # apt-get update exits 0 when indexes fail to download (it warns): treat those warnings as failure
  if flock "$CACHE/debsrc.lock" apt-get "${DEBSRC_APT_OPTS[@]}" -qq update >"$DEBSRC_APT/update.log" 2>&1 &&
     ! grep -q -E '^(W|E): (Failed to fetch|Some index files failed)' "$DEBSRC_APT/update.log"; then
    touch "$DEBSRC_APT/updated"
  else
    fail "apt-get update failed: $(grep -m1 -E '^(E|W):' "$DEBSRC_APT/update.log" | cut -c1-200 || tail -1 "$DEBSRC_APT/update.log")"
    debsrc_reason=$reason
    # older lists from an earlier update still name versions (cached sources may match them)
    ls "$DEBSRC_APT/lists" 2>/dev/null | grep -q -E '_(In)?Release$' || { debsrc_ready=2; return 1; }
  fi
}

debsrc_candidate() {
  local s=$1 ver
  debsrc_prepare || return 1
  ver=$(flock "$CACHE/debsrc.lock" apt-cache "${DEBSRC_APT_OPTS[@]}" policy "linux-source-$s" 2>/dev/null | awk '/Candidate:/ { print $2 }') || ver=""
  [[ "$ver" == "(none)" ]] && ver=""
  if [[ -z "$ver" ]]; then
    if [[ -n "$debsrc_reason" ]]; then reason=$debsrc_reason
    else fail "linux-source-$s is not in $(debsrc_suite "$s") on the system's Debian mirror"; fi
    return 1
  fi
  printf '%s\n' "$ver"
}

debsrc_tarball() {
  local s=$1 ver=$2 inner="linux-source-$1.tar.xz"
  # the same package already installed here: its tarball is the one apt would download
  if [[ -f "/usr/src/$inner" ]] && [[ "$(dpkg-query -W -f='${Version}' "linux-source-$s" 2>/dev/null)" == "$ver" ]]; then
    log "linux-source-$s $ver: using the installed /usr/src/$inner"
    printf '%s\n' "/usr/src/$inner"; return 0
  fi
  local out="$CACHE/linux-source-$ver.tar.xz"
  [[ -f "$out" ]] && { printf '%s\n' "$out"; return 0; }
  debsrc_prepare || return 1
  # one fetch per tarball at a time: CI builds guest B's kernel in the background while the kernel
  # runners fetch the same source; whoever waited finds the tarball the other one fetched
  exec 7>"$CACHE/debsrc-fetch.lock"; flock 7
  if [[ -f "$out" ]]; then exec 7>&-; printf '%s\n' "$out"; return 0; fi
  local rc=0
  debsrc_fetch "$s" "$ver" "$inner" "$out" || rc=$?
  exec 7>&-
  return $rc
}

# debsrc_tarball's download (under its lock): the .deb through the private list, the tarball out of it.
debsrc_fetch() {
  local s=$1 ver=$2 inner=$3 out=$4
  local tmp; tmp=$(mktemp -d "$CACHE/fetch-$s.XXXXXX")
  log "linux-source-$s $ver: apt-get download (~150 MB)"
  if ! (cd "$tmp" && flock "$CACHE/debsrc.lock" apt-get "${DEBSRC_APT_OPTS[@]}" -qq download "linux-source-$s=$ver") >"$tmp/download.log" 2>&1; then
    fail "apt-get download failed: $(grep -m1 -E '^(E|W):' "$tmp/download.log" | cut -c1-200 || tail -1 "$tmp/download.log")"
    rm -rf "$tmp"; return 1
  fi
  local deb; deb=$(ls "$tmp"/*.deb 2>/dev/null | head -1)
  [[ -n "$deb" ]] || { fail "apt-get download produced no .deb"; rm -rf "$tmp"; return 1; }
  dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$tmp" "./usr/src/$inner" ||
    { fail "$inner not found in $(basename "$deb")"; rm -rf "$tmp"; return 1; }
  mv "$tmp/usr/src/$inner" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
  printf '%s\n' "$out"
}
