#!/usr/bin/env bash
# Run the end-to-end chat tests against a push server (see README.md).
#
#   tests/e2e/run.sh                       # the real Channelstream 0.7.1 (default)
#   tests/e2e/run.sh channelstream         # same
#   tests/e2e/run.sh path/to/herald        # a Herald binary, started as: BIN -i <ini> --port 8000
#   tests/e2e/run.sh http://127.0.0.1:8000 # a server that is already running (nothing started)
#
# chat.test.mjs runs against every server; admin.test.mjs (Herald's admin web app in headless
# chromium) only against Herald (a started binary, or E2E_SERVER_KIND=herald with a URL).
#
# A started server runs in a private, loopback-only network namespace (Channelstream always
# binds 0.0.0.0:10843 for its Flash policy server, spec §12), and so do the demo backend and
# the node tests.  Exit status: node's (non-zero when a test fails) or 1 if the server does
# not come up.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVER="${1:-channelstream}"
CS_VENV="${CS_VENV:-/tmp/csenv38}"
CS_SECRET="${CS_SECRET:-secret}"
PORT=8000
NODE="${NODE:-node}"
# Every *.test.mjs here (chat: Node client; *.browser.test.mjs: the client in Chromium).
TESTS=()
for f in "$here"/*.test.mjs; do TESTS+=("$(basename "$f")"); done

if [[ "$SERVER" == http://* || "$SERVER" == https://* ]]; then
    "$here/setup.sh"
    cd "$here"
    exec env E2E_SERVER_KIND="${E2E_SERVER_KIND:-}" CS_URL="$SERVER" CS_SECRET="$CS_SECRET" "$NODE" --test "${TESTS[@]}"
fi

if [ "$SERVER" = channelstream ]; then
    "$here/setup.sh" --channelstream
else
    [ -x "$SERVER" ] || { echo "run.sh: $SERVER is neither 'channelstream' nor an executable" >&2; exit 2; }
    SERVER="$(cd "$(dirname "$SERVER")" && pwd)/$(basename "$SERVER")"
    "$here/setup.sh"
fi

ns="herald-e2e-$$"
work="$(mktemp -d /tmp/herald-e2e.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

# One ini for both servers: only keys both read (spec §2.2); cookie_secret left to the server.
cat >"$work/server.ini" <<EOF
[channelstream]
secret = $CS_SECRET
admin_user = admin
admin_secret = admin_secret
host = 127.0.0.1
port = $PORT
allow_posting_from = 127.0.0.1
log_level = ${CS_LOG_LEVEL:-INFO}
EOF

# The server log is kept (gitignored) for post-mortems: logs/server-<kind>.log
mkdir -p "$here/logs"
kind=herald
[ "$SERVER" = channelstream ] && kind=channelstream
log="$here/logs/server-$kind.log"
if [ "$SERVER" = channelstream ]; then
    # The collections.Mapping shim (spec §12) makes a venv on Python >= 3.10 work too; on
    # Python 3.8 it is a no-op.
    ip netns exec "$ns" "$CS_VENV/bin/python" -c '
import collections, collections.abc, sys
if not hasattr(collections, "Mapping"):
    collections.Mapping = collections.abc.Mapping
sys.argv = ["channelstream", "-i", sys.argv[1]]
from channelstream.cli.start import main
main()
' "$work/server.ini" >"$log" 2>&1 &
else
    ip netns exec "$ns" "$SERVER" -i "$work/server.ini" --port "$PORT" >"$log" 2>&1 &
fi
server_pid=$!

# Wait (bounded) until the server accepts TCP connections inside the namespace.
up=0
for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then up=1; break; fi
    sleep 0.2
done
if [ "$up" != 1 ]; then
    echo "run.sh: server $SERVER did not start; its log:" >&2
    cat "$log" >&2
    exit 1
fi
echo "run.sh: server $SERVER up on 127.0.0.1:$PORT in netns $ns"

cd "$here"
# admin.test.mjs drives Herald's own admin web app: not run against the real server.
tests=()
for t in "${TESTS[@]}"; do
    [ "$t" = admin.test.mjs ] && [ "$kind" != herald ] && continue
    tests+=("$t")
done
status=0
ip netns exec "$ns" env E2E_SERVER_KIND="$kind" CS_URL="http://127.0.0.1:$PORT" CS_SECRET="$CS_SECRET" \
    timeout 240 "$NODE" --test "${tests[@]}" || status=$?
if [ "$status" != 0 ]; then
    echo "run.sh: tests failed (exit $status); last lines of the server log:" >&2
    tail -n 40 "$log" >&2
    echo "run.sh: full server log: $log" >&2
fi
exit "$status"
