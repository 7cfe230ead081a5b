#!/usr/bin/env bash
# Idempotent setup for the Pushi differential suite: two venvs from PyPI, pinned in the
# requirements files beside this script.
#   server venv: pushi-service 0.6.10 + tinydb + appier-extras + netius + jinja2 (the real Pushi)
#   client venv: websocket-client (the scenario driver)
# They stay apart: the `pushi` client and `pushi-service` both ship a top-level `pushi` package.
#
#   PUSHI_DIFF_SERVER_VENV  default tests/pushi-diff/.venv-server
#   PUSHI_DIFF_CLIENT_VENV  default tests/pushi-diff/.venv-client
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRV="${PUSHI_DIFF_SERVER_VENV:-$here/.venv-server}"
CLI="${PUSHI_DIFF_CLIENT_VENV:-$here/.venv-client}"

one() {  # venv requirements-file import-check
    local venv=$1 req=$2 check=$3
    local stamp="$venv/.requirements.sha256" want
    [ -x "$venv/bin/python" ] || { echo "setup: creating venv $venv"; python3 -m venv "$venv"; }
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
        return 0
    fi
    echo "setup: pip install -r $(basename "$req") into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    "$venv/bin/python" -c "$check"
    echo "$want" >"$stamp"
}
one "$SRV" "$here/requirements-server.txt" 'import pushi.base, tinydb, appier_extras, netius, jinja2'
one "$CLI" "$here/requirements-client.txt" 'import websocket'
echo "setup: ok"
