#!/usr/bin/env bash
# Idempotent setup for the PyPI `pushi` client test: a venv holding pushi 0.6.10 (the client
# library, never beside pushi-service: both ship a top-level `pushi` package), websocket-client
# and pytest, from PyPI (pinned in requirements.txt).
#
#   PUSHI_PY_VENV  venv location (default tests/pushi-py/.venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PUSHI_PY_VENV:-$here/.venv}"
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
check='import pushi, websocket, pytest, netius; pushi.API'
[ -x "$VENV/bin/python" ] || { echo "setup: creating venv $VENV"; python3 -m venv "$VENV"; }
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
    echo "setup: ok"
    exit 0
fi
echo "setup: pip install -r requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$VENV/bin/python" -c "$check"
echo "$want" >"$stamp"
echo "setup: ok"
