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

# A simulator build (`--cfg madsim`, in its own target directory) would compile RocksDB's C++
# a second time, though the flags that differ only matter to Rust code. When the normal build
# of the same profile ($1: debug or release) has compiled RocksDB, this points librocksdb-sys
# at that archive instead (ROCKSDB_LIB_DIR), which saves most of a first simulator build. The
# setting is part of cargo's fingerprint, so every simulator build goes through here.
# Returns non-zero when no such archive exists (RocksDB is then compiled as usual).
use_built_rocksdb() {
    local archive
    archive="$(ls -t "$CARGO_TARGET_DIR/$1"/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1 || true)"
    if [ -n "$archive" ]; then
        ROCKSDB_LIB_DIR="$(dirname "$archive")"
        export ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
    else
        unset ROCKSDB_LIB_DIR ROCKSDB_STATIC
        return 1
    fi
}
