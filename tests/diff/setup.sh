#!/usr/bin/env bash
# Idempotent installer for the differential suite: a Python 3.8 venv (from pyenv) holding the
# real Channelstream 0.7.1 server plus the client libraries runner.py uses.
#
# Why Python 3.8: channelstream 0.7.1 (marshmallow 2) crashes on Python >= 3.10
# (collections.Mapping), and 3.8 runs it unpatched (spec §12).
#
#   CS_VENV     venv location            (default /tmp/csenv38)
#   PYENV_ROOT  pyenv root               (default /root/.pyenv)
# Re-running is cheap: a stamp of requirements.txt in the venv skips pip when nothing changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYENV_ROOT="${PYENV_ROOT:-/root/.pyenv}"
CS_VENV="${CS_VENV:-/tmp/csenv38}"
py38="$PYENV_ROOT/versions/3.8.18/bin/python3"
req="$here/requirements.txt"
stamp="$CS_VENV/.csdiff-requirements.sha256"

if [ ! -x "$py38" ]; then
    echo "setup.sh: $py38 not found (need pyenv's CPython 3.8.18; only PyPI is reachable here," >&2
    echo "          so it must already be installed on the machine)" >&2
    exit 2
fi

if [ ! -x "$CS_VENV/bin/python" ]; then
    echo "setup.sh: creating venv $CS_VENV"
    "$py38" -m venv "$CS_VENV"
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" = "$have" ] && "$CS_VENV/bin/python" -c 'import channelstream, requests, websocket' 2>/dev/null \
    && [ -x "$CS_VENV/bin/channelstream" ] && [ -x "$CS_VENV/bin/channelstream_utils" ]; then
    echo "setup.sh: $CS_VENV up to date"
    exit 0
fi

echo "setup.sh: installing $req into $CS_VENV"
"$CS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$CS_VENV/bin/python" -c 'import channelstream, requests, websocket' 
test "$("$CS_VENV/bin/channelstream" -v 2>&1 | tail -n1)" = "0.7.1"
echo "$want" > "$stamp"
echo "setup.sh: done ($("$CS_VENV/bin/python" --version 2>&1), channelstream 0.7.1)"
