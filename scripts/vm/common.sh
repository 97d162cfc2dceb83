# Shared settings for the VM test bed (sourced by the other scripts).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$VM_DIR/../.." && pwd)"
CACHE="${DMAPOOL_CACHE:-$HOME/.cache/dmapool}"
mkdir -p "$CACHE"

log() { printf '[vm] %s\n' "$*" >&2; }
die() { printf '[vm] ERROR: %s\n' "$*" >&2; exit 1; }

apt_updated=0
# need_pkgs CMD:PKG ... — installs PKG when CMD (a command or a file path) is missing.
need_pkgs() {
  local missing=() spec cmd pkg
  for spec in "$@"; do
    cmd="${spec%%:*}"; pkg="${spec#*:}"
    if [[ "$cmd" == /* ]]; then [[ -e "$cmd" ]] || missing+=("$pkg")
    else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
  done
  ((${#missing[@]})) || return 0
  if ((apt_updated == 0)); then apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
