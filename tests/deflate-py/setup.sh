#!/usr/bin/env bash
# Idempotent setup for the permessage-deflate client test: a Python 3.11 venv holding the PyPI
# websockets client and pytest (pinned in requirements.txt).
#
#   DEFLATE_PY_VENV  venv location (default tests/deflate-py/.venv)
#   DEFLATE_PY311    a Python 3.11 interpreter (default: pyenv's newest 3.11, else python3.11)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${DEFLATE_PY_VENV:-$here/.venv}"
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
py="${DEFLATE_PY311:-}"
if [ -z "$py" ]; then
    for p in "${PYENV_ROOT:-/root/.pyenv}"/versions/3.11*/bin/python3.11; do [ -x "$p" ] && py="$p"; done
fi
[ -n "$py" ] || py="$(command -v python3.11 || true)"
if [ -z "$py" ] || ! "$py" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    echo "setup: no Python 3.11 found (set DEFLATE_PY311)" >&2
    exit 2
fi
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || { echo "setup: creating venv $VENV ($("$py" --version))"; "$py" -m venv "$VENV"; }
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ] \
    && "$VENV/bin/python" -c 'import websockets, pytest' 2>/dev/null; then
    echo "setup: ok"
    exit 0
fi
echo "setup: pip install -r requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" >"$stamp"
echo "setup: ok"
