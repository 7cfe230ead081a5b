#!/usr/bin/env bash
# Idempotent setup for the TLS real-client suite: the openssl CLI (Debian) that run.sh makes the
# test CA with, npm ci (pusher-js, pusher) from the lockfile, a venv with websocket-client,
# the PyPI pusher SDK and pytest (pinned in requirements.txt), and tests/e2e's setup (the
# vendored Channelstream JS client, playwright-core, Debian's chromium) for browser.test.mjs.
#
#   TLS_PY_VENV  venv location (default tests/tls/.venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if ! command -v openssl >/dev/null; then
    echo "setup: apt-get install openssl"
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi
if [ ! -f node_modules/pusher-js/package.json ] || [ ! -f node_modules/pusher/package.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
VENV="${TLS_PY_VENV:-$here/.venv}"
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
[ -x "$VENV/bin/python" ] || { echo "setup: creating venv $VENV"; python3 -m venv "$VENV"; }
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" != "$(cat "$stamp" 2>/dev/null || true)" ] \
    || ! "$VENV/bin/python" -c 'import websocket, pusher, pytest' 2>/dev/null; then
    echo "setup: pip install -r requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
fi
bash "$here/../e2e/setup.sh" >/dev/null
echo "setup: ok"
