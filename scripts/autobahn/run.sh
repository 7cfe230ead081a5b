#!/usr/bin/env bash
# Autobahn|Testsuite (wstest -m fuzzingclient) against a websocket echo endpoint that is
# already listening, then check.py on the report. Installs wstest on first use: the
# autobahntestsuite package on PyPI is Python-2-only, so it goes into a Python 2.7 virtualenv
# made from pyenv's CPython 2.7 (virtualenv itself comes from PyPI, installed with
# `pip install --target`, since 2.7 has no venv module).
#
#   scripts/autobahn/run.sh [--full|--no-deflate] PORT [PATH]   run against ws://AB_HOST:PORT/PATH
#   scripts/autobahn/run.sh --install                           only install (or check) the venv
#
#   (default)     all 517 cases 1.* to 13.*; the 216 permessage-deflate cases 12.* and 13.* send
#                 AB_DEFLATE_COUNT messages each instead of 1,000 (wstest_counts.py; the
#                 fuzzingclient spec has no setting for it). What CI runs.
#   --full        all 517 cases exactly as Autobahn defines them (1,000 messages per 12/13 case)
#   --no-deflate  the 301 cases 1.* to 11.* only (a server without permessage-deflate)
#   PATH          echo path without the leading slash (default: echo)
#
#   AB_DEFLATE_COUNT messages per 12.*/13.* case in the default mode (default 100)
#   AB_VENV     virtualenv location            (default /tmp/herald-autobahn-py27)
#   AB_OUT      spec and reports go here       (default target/autobahn-out)
#   AB_HOST     host to connect to             (default 127.0.0.1)
#   AB_AGENT    agent name in the report       (default herald)
#   AB_PYTHON27 a CPython 2.7 interpreter      (default: newest $PYENV_ROOT/versions/2.7*)
# Re-running is cheap: a stamp of the requirements files in the venv skips pip when unchanged.
# Exit status: 0 all cases passed, 1 a case failed, 2 setup or usage error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PYENV_ROOT="${PYENV_ROOT:-/root/.pyenv}"
AB_VENV="${AB_VENV:-/tmp/herald-autobahn-py27}"
AB_OUT="${AB_OUT:-$root/target/autobahn-out}"
AB_HOST="${AB_HOST:-127.0.0.1}"
AB_AGENT="${AB_AGENT:-herald}"
boot_req="$here/requirements-bootstrap-py27.txt"
req="$here/requirements-py27.txt"
stamp="$AB_VENV/.herald-autobahn-requirements.sha256"

usage() { sed -n '8,9p' "$0" | sed 's/^# *//' >&2; exit 2; }
case "${AB_DEFLATE_COUNT:-100}" in ''|*[!0-9]*|0) echo "run.sh: AB_DEFLATE_COUNT must be a positive integer" >&2; exit 2 ;; esac
mode=reduced install_only=
AB_DEFLATE_COUNT="${AB_DEFLATE_COUNT:-100}"
while [ $# -gt 0 ]; do
    case "$1" in
        --full) mode=full; shift ;;
        --no-deflate) mode=nodeflate; shift ;;
        --install) install_only=1; shift ;;
        -h|--help) usage ;;
        -*) echo "run.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
if [ -z "$install_only" ]; then
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    port="$1" path="${2:-echo}"
    path="${path#/}"
fi

install() {
    local py27="${AB_PYTHON27:-}"
    if [ -z "$py27" ]; then
        for p in "$PYENV_ROOT"/versions/2.7*/bin/python2.7; do [ -x "$p" ] && py27="$p"; done
    fi
    if [ -z "$py27" ] || ! "$py27" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
        echo "run.sh: no CPython 2.7 found (looked for $PYENV_ROOT/versions/2.7*/bin/python2.7;" >&2
        echo "        set AB_PYTHON27). autobahntestsuite on PyPI runs only on Python 2." >&2
        exit 2
    fi
    local want have
    want="$(cat "$boot_req" "$req" | sha256sum | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$want" = "$have" ] && [ -x "$AB_VENV/bin/wstest" ] \
        && "$AB_VENV/bin/python" -c 'import autobahntestsuite' 2>/dev/null; then
        return 0
    fi
    echo "run.sh: installing Autobahn|Testsuite from PyPI into $AB_VENV ($("$py27" --version 2>&1))"
    rm -rf "$AB_VENV"
    mkdir -p "$AB_VENV"
    # Python 2.7's pip prints a deprecation banner on every call; keep only real output.
    export PYTHONWARNINGS=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
    "$py27" -m pip install --quiet --target "$AB_VENV/.bootstrap" -r "$boot_req"
    PYTHONPATH="$AB_VENV/.bootstrap" "$py27" -m virtualenv --quiet --no-periodic-update "$AB_VENV"
    "$AB_VENV/bin/python" -m pip install --quiet -r "$req"
    "$AB_VENV/bin/python" -c 'import autobahntestsuite'
    echo "$want" > "$stamp"
    echo "run.sh: installed $("$AB_VENV/bin/wstest" --autobahnversion 2>&1 | tr '\n' ' ')"
}

install
[ -n "$install_only" ] && exit 0

mkdir -p "$AB_OUT"
rm -rf "$AB_OUT/reports"
url="ws://$AB_HOST:$port/$path"
python3 - "$here/fuzzingclient.json" "$AB_OUT/spec.json" "$AB_AGENT" "$url" "$AB_OUT/reports/servers" "$mode" <<'PY'
import json, sys
template, out, agent, url, outdir, mode = sys.argv[1:]
with open(template) as f:
    spec = json.load(f)
spec["servers"] = [{"agent": agent, "url": url}]
spec["outdir"] = outdir
spec["exclude-cases"] = ["12.*", "13.*"] if mode == "nodeflate" else []
with open(out, "w") as f:
    json.dump(spec, f, indent=2)
PY
if [ "$mode" = reduced ]; then
    wstest=("$AB_VENV/bin/python" "$here/wstest_counts.py" "$AB_DEFLATE_COUNT")
    what="12.*/13.* with $AB_DEFLATE_COUNT messages per case"
else
    wstest=("$AB_VENV/bin/wstest")
    what="$mode"
fi
echo "run.sh: wstest -m fuzzingclient against $url ($what; spec $AB_OUT/spec.json)"
start=$SECONDS
# wstest writes only to outdir, but run it from AB_OUT so nothing lands in the caller's cwd.
(cd "$AB_OUT" && "${wstest[@]}" -m fuzzingclient -s "$AB_OUT/spec.json") > "$AB_OUT/wstest.log" 2>&1 || {
    echo "run.sh: wstest failed (exit $?); last lines of $AB_OUT/wstest.log:" >&2
    tail -n 20 "$AB_OUT/wstest.log" >&2
    exit 1
}
echo "run.sh: wstest finished in $((SECONDS - start)) s (log $AB_OUT/wstest.log, report $AB_OUT/reports/servers/index.html)"
python3 "$here/check.py" --agent "$AB_AGENT" "$AB_OUT/reports/servers/index.json"
