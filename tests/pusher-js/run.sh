#!/usr/bin/env bash
# Run pusher.test.mjs and spec_port.test.mjs (pusher-js + the npm pusher SDK) against a Herald
# binary started on a free loopback port with two shards (so channels are owned by both), then
# stop it; and browser.test.mjs (pusher-js' web build in headless Chromium), which starts its
# own Herald from the same binary with logs/browser.ini. Logs and screenshots go to logs/.
#
#   tests/pusher-js/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
HERALD="$(cd "$(dirname "$HERALD")" && pwd)/$(basename "$HERALD")"
"$here/setup.sh"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$here/logs"
log="$here/logs/herald.log"
"$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 --log-level WARNING >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$log" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
cd "$here"
# browser.test.mjs starts (and restarts) its own Herald with this ini: its own app, client
# events on (HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES is set too, for the default app).
cat >"$here/logs/browser.ini" <<'EOF'
[channelstream]
log_level = INFO

[pusher_app:browser]
id = 4242
key = browser-key
secret = browser-secret
enable_client_messages = true
EOF
status=0
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" HERALD="$HERALD" HERALD_INI="$here/logs/browser.ini" \
    timeout 240 node --test pusher.test.mjs spec_port.test.mjs browser.test.mjs || status=$?
[ "$status" = 0 ] || { echo "run.sh: tests failed; herald log:" >&2; tail -n 40 "$log" >&2; }
exit "$status"
