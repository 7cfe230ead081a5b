#!/usr/bin/env bash
# Start Herald and sockudo on free loopback ports with the same app (id 12345, key app-key,
# secret app-secret, client events and user authentication on: herald.ini, sockudo.toml),
# run every scenario of scenarios.py against both and print the per-scenario comparison.
#
#   scripts/sockudo-diff/run.sh [HERALD [SOCKUDO]] [-- diff.py options: --only TEXT, -v]
#     HERALD   default target/release/herald
#     SOCKUDO  default: what setup.sh finds or builds
# Writes the last run's report to target/sockudo-diff/report.md (RESULT.md is written from it
# by hand, with the reasons). Exit status: 0 when every difference is a known one (known.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
HERALD="${1:-$repo/target/release/herald}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ] && [ "$1" != "--" ]; then export SOCKUDO_BIN="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
SOCKUDO="$("$here/setup.sh" | tail -n 1)"
VENV="${SOCKUDO_DIFF_VENV:-$here/.venv}"

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
out="$repo/target/sockudo-diff"
mkdir -p "$out"
HPORT="$(free_port)"; SPORT="$(free_port)"; MPORT="$(free_port)"

"$HERALD" -i "$here/herald.ini" --host 127.0.0.1 --port "$HPORT" --shards 2 \
    --log-level WARNING >"$out/herald.log" 2>&1 &
hpid=$!
# sockudo reads config/config.toml from its working directory first: run it in an empty one.
mkdir -p "$out/sockudo-cwd"
(cd "$out/sockudo-cwd" && SOCKUDO_PORT="$SPORT" SOCKUDO_METRICS_PORT="$MPORT" \
    exec "$SOCKUDO" --config "$here/sockudo.toml") >"$out/sockudo.log" 2>&1 &
spid=$!
trap 'kill "$hpid" "$spid" 2>/dev/null || true; wait "$hpid" "$spid" 2>/dev/null || true' EXIT

wait_port() {
    local pid=$1 port=$2 name=$3 log=$4
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited; its log:" >&2; cat "$log" >&2; exit 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: $name did not listen on $port; its log:" >&2; cat "$log" >&2; exit 1
}
wait_port "$hpid" "$HPORT" herald "$out/herald.log"
wait_port "$spid" "$SPORT" sockudo "$out/sockudo.log"
# An explicit config that fails to load is only logged by sockudo (it keeps its defaults).
if grep -q 'explicit configuration load failed' "$out/sockudo.log"; then
    echo "run.sh: sockudo did not load sockudo.toml:" >&2; cat "$out/sockudo.log" >&2; exit 1
fi

commits="herald $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?') ($("$HERALD" --version 2>/dev/null || echo herald)), $("$SOCKUDO" --version)"
cd "$here"
"$VENV/bin/python" diff.py --herald "http://127.0.0.1:$HPORT" --sockudo "http://127.0.0.1:$SPORT" \
    --report "$out/report.md" --commits "$commits" "$@"
