#!/usr/bin/env bash
# Starts a squall-server on a free loopback port with a temporary data directory, runs the
# boto3 and AWS CLI smoke scripts against it, and stops it. Exits non-zero on any failure.
#
# Usage: scripts/smoke/run.sh [PATH_TO_SQUALL_SERVER]
#   default binary: $CARGO_TARGET_DIR/debug/squall-server, else <repo>/target/debug/squall-server
# Installs boto3 and awscli with pip only when they are missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
READY_WAIT_S=30

SERVER_BIN="${1:-${CARGO_TARGET_DIR:-$REPO/target}/debug/squall-server}"
if [[ ! -x "$SERVER_BIN" ]]; then
    echo "squall-server not found at $SERVER_BIN" >&2
    echo "build it with: cargo build -p squall-engine --bin squall-server, or pass its path" >&2
    exit 2
fi

if ! python3 -c "import boto3" 2>/dev/null; then
    echo "boto3 is missing; installing it with pip"
    python3 -m pip install --quiet boto3
fi
if ! command -v aws >/dev/null 2>&1 && ! python3 -m awscli --version >/dev/null 2>&1; then
    echo "the AWS CLI is missing; installing awscli with pip"
    python3 -m pip install --quiet awscli
fi

WORK="$(mktemp -d -t squall-smoke.XXXXXX)"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "squall-server did not stop on SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

"$SERVER_BIN" --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

ENDPOINT=""
for _ in $(seq 1 $((READY_WAIT_S * 10))); do
    line="$(grep -m1 '^squall-server listening on ' "$WORK/server.out" 2>/dev/null || true)"
    if [[ -n "$line" ]]; then
        ENDPOINT="${line#squall-server listening on }"
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$ENDPOINT" ]]; then
    echo "squall-server did not become ready within ${READY_WAIT_S}s" >&2
    echo "--- stdout ---" >&2
    cat "$WORK/server.out" >&2
    echo "--- stderr ---" >&2
    tail -n 50 "$WORK/server.err" >&2
    exit 1
fi
echo "squall-server (pid $SERVER_PID) ready at $ENDPOINT"

status=0
echo
echo "== boto3 =="
python3 "$HERE/boto3_smoke.py" "$ENDPOINT" || status=1
echo
echo "== aws cli =="
bash "$HERE/aws_cli_examples.sh" "$ENDPOINT" || status=1

stop_server
echo
if [[ $status -ne 0 ]]; then
    echo "smoke: FAILED (server log: last lines below)"
    tail -n 30 "$WORK/server.err" || true
    exit 1
fi
echo "smoke: all passed"
