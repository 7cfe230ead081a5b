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
# shellcheck source=../lib/start-herald.sh
. "$here/../lib/start-herald.sh"
trap herald_stop_all EXIT

# start LOG PORT [VAR=value...] [-- herald flags...]: a Herald (or, under
# tests/cluster-suites/run.sh, a cluster behind a load balancer) with client events on.
start() {
    local log="$1" port="$2"
    shift 2
    herald_start "$log" "$port" HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true "$@"
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
# The browser test starts and restarts a Herald of its own (one process): not part of a
# cluster run.
browser=(browser.test.mjs); [ -n "${HERALD_CLUSTER_REDIS:-}" ] && browser=()
status=0
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" PUSHER_SHORT_PORT="$SHORT_PORT" \
    PUSHER_WEBHOOK_HERALD_PORT="$WH_HERALD_PORT" PUSHER_WEBHOOK_PORT="$WH_PORT" \
    HERALD="$HERALD" HERALD_INI="$here/logs/browser.ini" \
    timeout 240 node --test pusher.test.mjs spec_port.test.mjs users.test.mjs webhooks.test.mjs \
    "${browser[@]}" || status=$?
[ "$status" = 0 ] || {
    echo "run.sh: tests failed; herald logs:" >&2
    # shellcheck disable=SC2046
    tail -n 40 $(herald_logs "$log") $(herald_logs "$wh_log") >&2
}
exit "$status"
