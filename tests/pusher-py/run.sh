#!/usr/bin/env bash
# Run test_pusher_clients.py (pysher + the PyPI pusher SDK) against a Herald binary started on a
# free loopback port with two shards and a numeric default app id (the PyPI SDK refuses others),
# and a second Herald whose default app sends webhooks to the port the webhook test listens on.
#
#   tests/pusher-py/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
"$here/setup.sh"
VENV="${PUSHER_PY_VENV:-$here/.venv}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
WH_HERALD_PORT="$(free_port)"
WH_PORT="$(free_port)"
APP_ID=12345
mkdir -p "$here/logs"
log="$here/logs/herald.log"
wh_log="$here/logs/herald-webhooks.log"
HERALD_DEFAULT_APP_ID=$APP_ID "$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 \
    --log-level WARNING >"$log" 2>&1 &
pid=$!
# The webhook test's Herald: webhooks to the receiver test_webhook_validation_round_trip starts.
HERALD_DEFAULT_APP_ID=$APP_ID HERALD_DEFAULT_APP_WEBHOOKS="http://127.0.0.1:$WH_PORT/webhooks" \
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
# -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" PUSHER_APP_ID=$APP_ID \
    PUSHER_WEBHOOK_HERALD_PORT="$WH_HERALD_PORT" PUSHER_WEBHOOK_PORT="$WH_PORT" \
    timeout 180 "$VENV/bin/python" -m pytest -p no:cacheprovider -rs -q test_pusher_clients.py \
    || status=$?
[ "$status" = 5 ] && echo "run.sh: pytest collected no tests" >&2
[ "$status" = 0 ] || { echo "run.sh: tests failed ($status); herald logs:" >&2; tail -n 40 "$log" "$wh_log" >&2; }
exit "$status"
