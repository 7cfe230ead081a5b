#!/usr/bin/env bash
# Run pusher.test.mjs and spec_port.test.mjs (pusher-js + the npm pusher SDK) against a Herald
# binary started on a free loopback port with two shards (so channels are owned by both), and
# webhooks.test.mjs against a second Herald whose default app sends webhooks (batching on, a
# 200 ms grace delay) to the receiver that test starts on another free port; then stop both.
#
#   tests/pusher-js/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
"$here/setup.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
WH_HERALD_PORT="$(free_port)"
WH_PORT="$(free_port)"
mkdir -p "$here/logs"
log="$here/logs/herald.log"
wh_log="$here/logs/herald-webhooks.log"
"$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 --log-level WARNING >"$log" 2>&1 &
pid=$!
HERALD_DEFAULT_APP_WEBHOOKS="http://127.0.0.1:$WH_PORT/webhooks" HERALD_DEFAULT_APP_WEBHOOK_BATCHING=true \
    HERALD_DEFAULT_APP_WEBHOOK_VACATED_DELAY_MS=200 \
    "$HERALD" --host 127.0.0.1 --port "$WH_HERALD_PORT" --shards 2 --log-level WARNING >"$wh_log" 2>&1 &
wh_pid=$!
trap 'kill "$pid" "$wh_pid" 2>/dev/null || true; wait "$pid" "$wh_pid" 2>/dev/null || true' EXIT
for p in "$pid:$PORT:$log" "$wh_pid:$WH_HERALD_PORT:$wh_log"; do
    IFS=: read -r one port one_log <<<"$p"
    for _ in $(seq 1 100); do
        kill -0 "$one" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$one_log" >&2; exit 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done
cd "$here"
status=0
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" PUSHER_WEBHOOK_HERALD_PORT="$WH_HERALD_PORT" \
    PUSHER_WEBHOOK_PORT="$WH_PORT" \
    timeout 180 node --test pusher.test.mjs spec_port.test.mjs webhooks.test.mjs || status=$?
[ "$status" = 0 ] || { echo "run.sh: tests failed; herald logs:" >&2; tail -n 40 "$log" "$wh_log" >&2; }
exit "$status"
