#!/usr/bin/env bash
# Run pusher.test.mjs, spec_port.test.mjs and users.test.mjs (pusher-js + the npm pusher SDK)
# against a Herald binary started on a free loopback port with two shards (so channels and
# users are owned by both); users.test.mjs also uses a second Herald with a 1 s activity and
# pong timeout, and webhooks.test.mjs a third whose default app sends webhooks (batching on, a
# 200 ms grace delay) to the receiver that test starts on another free port. Client events are
# enabled for the default app of each (off unless configured, as in Pusher). All are stopped
# at the end.
# browser.test.mjs (pusher-js' web build in headless Chromium) starts its own Herald from the
# same binary with logs/browser.ini (it restarts it). Logs and screenshots go to logs/.
#
#   tests/pusher-js/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
HERALD="$(cd "$(dirname "$HERALD")" && pwd)/$(basename "$HERALD")"
"$here/setup.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$here/logs"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done' EXIT

# start LOG PORT [VAR=value...] [-- herald flags...]: start Herald in the background with these
# environment variables and flags, and wait for its port.
start() {
    local log="$1" port="$2"
    shift 2
    local vars=(HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true)
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    env "${vars[@]}" "$HERALD" --host 127.0.0.1 --port "$port" --shards 2 --log-level WARNING \
        "$@" >"$log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$log" >&2; exit 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
}

PORT="$(free_port)"
SHORT_PORT="$(free_port)"
WH_HERALD_PORT="$(free_port)"
WH_PORT="$(free_port)"
log="$here/logs/herald.log"
wh_log="$here/logs/herald-webhooks.log"
start "$log" "$PORT"
start "$here/logs/herald-short.log" "$SHORT_PORT" -- --pusher-activity-timeout 1 --pusher-pong-timeout 1
start "$wh_log" "$WH_HERALD_PORT" "HERALD_DEFAULT_APP_WEBHOOKS=http://127.0.0.1:$WH_PORT/webhooks" \
    HERALD_DEFAULT_APP_WEBHOOK_BATCHING=true HERALD_DEFAULT_APP_WEBHOOK_VACATED_DELAY_MS=200
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
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" PUSHER_SHORT_PORT="$SHORT_PORT" \
    PUSHER_WEBHOOK_HERALD_PORT="$WH_HERALD_PORT" PUSHER_WEBHOOK_PORT="$WH_PORT" \
    HERALD="$HERALD" HERALD_INI="$here/logs/browser.ini" \
    timeout 240 node --test pusher.test.mjs spec_port.test.mjs users.test.mjs webhooks.test.mjs \
    browser.test.mjs || status=$?
[ "$status" = 0 ] || { echo "run.sh: tests failed; herald logs:" >&2; tail -n 40 "$log" "$wh_log" >&2; }
exit "$status"
