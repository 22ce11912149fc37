# Shared helpers for Squall's scripts. Source it; do not run it.

# Builds go to a cache outside the checkout so that a fresh clone reuses earlier builds
# (RocksDB alone takes minutes to compile). Override with SQUALL_TARGET_DIR.
export CARGO_TARGET_DIR="${SQUALL_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/squall/target}}"

say() { printf '==> %s\n' "$*"; }

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root, through sudo when needed.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        die "need root to run: $*"
    fi
}
