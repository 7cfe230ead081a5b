#!/usr/bin/env bash
# Idempotent setup for the differential suite against sockudo 5.2.0 (a Rust Pusher-compatible
# server): protobuf-compiler from Debian (sockudo's build needs protoc), sockudo built from
# crates.io into a cache directory if it is not there yet, and a venv with websocket-client and
# requests from PyPI (pinned in requirements.txt).
#
# Building sockudo takes ~30-60 minutes on a 2-core machine (about 500 crates), so this suite
# is not a step of scripts/test.sh unless SOCKUDO_DIFF=1 is set.
#
#   SOCKUDO_ROOT     cargo install --root for sockudo (default ~/.cache/herald/sockudo)
#   SOCKUDO_BIN      use this sockudo binary instead (nothing is built)
#   SOCKUDO_DIFF_VENV  venv location (default scripts/sockudo-diff/.venv)
# Prints the sockudo binary's path on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION=5.2.0
ROOT="${SOCKUDO_ROOT:-$HOME/.cache/herald/sockudo}"
BIN="${SOCKUDO_BIN:-$ROOT/bin/sockudo}"

if [ ! -x "$BIN" ]; then
    if ! command -v protoc >/dev/null 2>&1; then
        echo "setup: apt-get install protobuf-compiler" >&2
        apt-get update -qq >&2 && apt-get install -y -qq protobuf-compiler >&2
    fi
    echo "setup: cargo install sockudo $VERSION into $ROOT (30-60 min)" >&2
    nice cargo install sockudo --version "=$VERSION" --locked --no-default-features \
        --features local --root "$ROOT" -j 1 >&2
fi
"$BIN" --version >&2

VENV="${SOCKUDO_DIFF_VENV:-$here/.venv}"
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
[ -x "$VENV/bin/python" ] || { echo "setup: creating venv $VENV" >&2; python3 -m venv "$VENV" >&2; }
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" != "$(cat "$stamp" 2>/dev/null || true)" ] \
    || ! "$VENV/bin/python" -c 'import websocket, requests' 2>/dev/null; then
    echo "setup: pip install -r requirements.txt" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
fi
echo "$BIN"
