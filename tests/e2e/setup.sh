#!/usr/bin/env bash
# Idempotent setup for the end-to-end tests (see README.md).
#
#   tests/e2e/setup.sh                # JS client files + npm packages + Debian chromium
#   tests/e2e/setup.sh --channelstream   # also the real Channelstream 0.7.1 server in $CS_VENV
#
# The real JS client is not on the npm registry reachable here, but the very same files
# ship inside the channelstream==0.7.1 wheel (channelstream/static/channelstream/*.js),
# so they are taken from there and checked against vendor.sha256.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

want_server=0
for arg in "$@"; do
    case "$arg" in
        --channelstream) want_server=1 ;;
        *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
CS_VENV="${CS_VENV:-/tmp/csenv38}"

# --- 1. the real JS client, from the PyPI wheel ------------------------------------------
if ! (cd vendor 2>/dev/null && sha256sum --quiet -c ../vendor.sha256 >/dev/null 2>&1); then
    echo "setup: fetching JS client from channelstream==0.7.1 wheel"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: channelstream==0.7.1 -d "$tmp"
    rm -rf vendor && mkdir -p vendor
    "$PYTHON" - "$tmp" vendor <<'PY'
import glob, os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(src, "channelstream-0.7.1-*.whl"))
prefix = "channelstream/static/channelstream/"
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest.endswith(".js") and "/" not in rest:
            with open(os.path.join(dst, rest), "wb") as out:
                out.write(zf.read(name))
PY
    (cd vendor && sha256sum --quiet -c ../vendor.sha256)
fi

# --- 2. npm packages: ws (WebSocket), xhr2 (XMLHttpRequest), playwright-core (admin test) ---
if [ ! -f node_modules/ws/package.json ] || [ ! -f node_modules/xhr2/package.json ] \
    || [ ! -f node_modules/playwright-core/package.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi

# --- 3. a headless browser for the *.browser tests: Debian's chromium -----------------------
"$here/../../scripts/install-chromium.sh"

# --- 4. optionally, the real server (spec §12): Python 3.8 venv with channelstream 0.7.1 --
if [ "$want_server" = 1 ] && [ ! -x "$CS_VENV/bin/channelstream" ]; then
    # several people may share $CS_VENV on one machine: serialise the install
    exec 9>"$CS_VENV.lock"
    flock 9
    if [ ! -x "$CS_VENV/bin/channelstream" ]; then
        py38=""
        for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8.*/bin/python3 "$(command -v python3.8 || true)"; do
            if [ -n "$cand" ] && [ -x "$cand" ]; then py38="$cand"; break; fi
        done
        if [ -z "$py38" ]; then
            # newer Pythons work too, with the collections.Mapping shim run.sh always applies
            py38="$PYTHON"
            echo "setup: no Python 3.8 found, using $("$py38" --version)" >&2
        fi
        echo "setup: creating $CS_VENV with $py38"
        "$py38" -m venv "$CS_VENV"
        "$CS_VENV/bin/pip" install --quiet channelstream==0.7.1
    fi
    flock -u 9
fi
echo "setup: ok"
