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
# shellcheck source=../lib/start-herald.sh
. "$here/../lib/start-herald.sh"
trap herald_stop_all EXIT
herald_start "$log" "$PORT" HERALD_DEFAULT_APP_ID=$APP_ID
# The webhook test's Herald: webhooks to the receiver test_webhook_validation_round_trip starts.
herald_start "$wh_log" "$WH_HERALD_PORT" HERALD_DEFAULT_APP_ID=$APP_ID \
    HERALD_DEFAULT_APP_WEBHOOKS="http://127.0.0.1:$WH_PORT/webhooks" \
    HERALD_DEFAULT_APP_WEBHOOK_VACATED_DELAY_MS=200
cd "$here"
status=0
# -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$PORT" PUSHER_APP_ID=$APP_ID \
    PUSHER_WEBHOOK_HERALD_PORT="$WH_HERALD_PORT" PUSHER_WEBHOOK_PORT="$WH_PORT" \
    timeout 180 "$VENV/bin/python" -m pytest -p no:cacheprovider -rs -q test_pusher_clients.py \
    || status=$?
[ "$status" = 5 ] && echo "run.sh: pytest collected no tests" >&2
[ "$status" = 0 ] || {
    echo "run.sh: tests failed ($status); herald logs:" >&2
    # shellcheck disable=SC2046
    tail -n 40 $(herald_logs "$log") $(herald_logs "$wh_log") >&2
}
exit "$status"
