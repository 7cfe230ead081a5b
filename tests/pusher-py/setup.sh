#!/usr/bin/env bash
# Idempotent setup for the Python real-client test: a venv holding pysher 1.0.8 (websocket
# client), the PyPI pusher 3.3.4 server SDK and pytest, from PyPI (pinned in requirements.txt).
#
#   PUSHER_PY_VENV  venv location (default tests/pusher-py/.venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PUSHER_PY_VENV:-$here/.venv}"
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
[ -x "$VENV/bin/python" ] || { echo "setup: creating venv $VENV"; python3 -m venv "$VENV"; }
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ] \
    && "$VENV/bin/python" -c 'import pysher, pusher, pytest' 2>/dev/null; then
    echo "setup: ok"
    exit 0
fi
echo "setup: pip install -r requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" >"$stamp"
echo "setup: ok"
