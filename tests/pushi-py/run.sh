#!/usr/bin/env bash
# Run test_pushi_client.py (the PyPI `pushi` 0.6.10 client + a raw websocket client) against
#   tests/pushi-py/run.sh [path/to/herald]   Herald on a free loopback port, two shards, one app
#                                            with Pushi-style 64-hex credentials in its ini file
#   tests/pushi-py/run.sh --reference        the real pushi-service 0.6.10 (TinyDB; the server
#                                            venv of tests/pushi-diff), to prove the tests: the
#                                            cases it is known to fail are strict xfails there
# A Herald without the Pushi dialect (probe: a websocket on /{key} answered with a UUID
# socket id) is a SKIP (exit 0), or a failure if PUSHI_REQUIRED=1.
# HERALD_PUSHI_ARGS: extra herald arguments (word-split).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
VENV="${PUSHI_PY_VENV:-$here/.venv}"
PY="$VENV/bin/python"
mkdir -p "$here/logs"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
work="$(mktemp -d /tmp/pushipy.XXXXXX)"
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
wait_port() {  # pid port log
    for _ in $(seq 1 150); do
        kill -0 "$1" 2>/dev/null || { echo "run.sh: server exited; its log:" >&2; tail -n 30 "$3" >&2; exit 2; }
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: port $2 never opened" >&2; tail -n 30 "$3" >&2; exit 2
}

if [ "${1:-}" = "--reference" ]; then
    target=pushi
    bash "$here/../pushi-diff/setup.sh" >/dev/null
    SRV="${PUSHI_DIFF_SERVER_VENV:-$here/../pushi-diff/.venv-server}"
    rest="$(free_port)"; ws="$(free_port)"; log="$here/logs/pushi.log"
    ADAPTER=tiny TINY_STORAGE=json TINY_PATH="$work/db.json" APP_HOST=127.0.0.1 APP_PORT="$rest" \
        SERVER_HOST=127.0.0.1 SERVER_PORT="$ws" LEVEL=INFO "$SRV/bin/python" -m pushi.base >"$log" 2>&1 &
    pids+=($!)
    wait_port $! "$rest" "$log"; wait_port "${pids[-1]}" "$ws" "$log"
    api_url="http://127.0.0.1:$rest/"; ws_url="ws://127.0.0.1:$ws"
    # the app, created with the client library's own create_app (Pushi's POST /apps is open)
    creds="$("$PY" -c 'import pushi, sys, time
app = pushi.API(base_url=sys.argv[1]).create_app("pushipy-%d" % (time.time() * 1000))
print(app["ident"], app["key"], app["secret"])' "$api_url")"
    read -r app_id app_key app_secret <<<"$creds"
else
    target=herald
    HERALD="${1:-$here/../../target/release/herald}"
    [ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
    read -r app_id app_key app_secret <<<"$(python3 -c 'import secrets; print(*(secrets.token_hex(32) for _ in range(3)))')"
    ini="$work/herald.ini"
    printf '[channelstream]\nhost = 127.0.0.1\n\n[pusher_app:pushipy]\nid = %s\nkey = %s\nsecret = %s\n' \
        "$app_id" "$app_key" "$app_secret" >"$ini"
    port="$(free_port)"; log="$here/logs/herald.log"
    # Pushi mode, when this binary has it (`--pushi` in its --help): the store in the temp dir.
    # Pushi's own start variables (SERVER_PORT, ...) are removed from herald's environment.
    pushi_args=()
    if "$HERALD" --help 2>/dev/null | grep -q -- '--pushi'; then
        pushi_args=(--pushi --data-dir "$work/herald-data")
    fi
    # shellcheck disable=SC2086
    env -u SERVER_HOST -u SERVER_PORT -u APP_HOST -u APP_PORT "$HERALD" -i "$ini" --host 127.0.0.1 \
        --port "$port" --shards 2 --log-level WARNING "${pushi_args[@]}" ${HERALD_PUSHI_ARGS:-} \
        >"$log" 2>&1 &
    pids+=($!)
    wait_port $! "$port" "$log"
    api_url="http://127.0.0.1:$port/"; ws_url="ws://127.0.0.1:$port"
    if ! "$PY" - "$ws_url/$app_key" <<'PY'
import json, re, sys, websocket
try:
    ws = websocket.create_connection(sys.argv[1], timeout=5)
    first = json.loads(ws.recv())
    sid = json.loads(first["data"])["socket_id"]
    sys.exit(0 if first["event"] == "pusher:connection_established"
             and re.match(r"^[0-9a-f-]{36}$", sid) else 1)
except Exception as e:
    print("probe: no Pushi dialect (%s)" % e.__class__.__name__)
    sys.exit(1)
PY
    then
        if [ -n "${PUSHI_REQUIRED:-}" ]; then
            echo "run.sh: FAIL: $HERALD has no Pushi dialect (PUSHI_REQUIRED is set)" >&2; exit 1
        fi
        echo "SKIP: pushi-py: $HERALD has no Pushi dialect yet; set PUSHI_REQUIRED=1 to make this a failure"
        exit 0
    fi
fi

cd "$here"
status=0
# -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
PUSHI_TARGET=$target PUSHI_API_URL="$api_url" PUSHI_WS_URL="$ws_url" PUSHI_APP_ID="$app_id" \
    PUSHI_APP_KEY="$app_key" PUSHI_APP_SECRET="$app_secret" \
    timeout 300 "$PY" -m pytest -p no:cacheprovider -W ignore::DeprecationWarning -rfsx -q test_pushi_client.py || status=$?
[ "$status" = 5 ] && echo "run.sh: pytest collected no tests" >&2
[ "$status" = 0 ] || { echo "run.sh: tests failed ($status); server log:" >&2; tail -n 40 "$log" >&2; }
exit "$status"
