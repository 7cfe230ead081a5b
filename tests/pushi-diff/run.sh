#!/usr/bin/env bash
# Differential run: the real Pushi (pushi-service 0.6.10 on TinyDB, REST and WebSocket on two
# ports) against Herald's Pushi dialect (one port), the same scenarios (driver.py) against both.
#
#   tests/pushi-diff/run.sh                   A/A: the real Pushi against a second real Pushi
#   tests/pushi-diff/run.sh path/to/herald    the real Pushi vs Herald
#   tests/pushi-diff/run.sh HERALD -- ARGS    extra driver.py arguments (--only NAME, -v)
#
# Everything (both servers and the driver) runs inside a fresh loopback-only network namespace
# (`unshare -n`, then `ip link set lo up`): nothing is reachable from outside and no port can
# collide with another run. Without namespaces (not root, no CAP_SYS_ADMIN) it says so and runs
# on the host's loopback instead.
#
# Environment:
#   HERALD_PUSHI_ARGS   extra arguments for herald (e.g. a mode flag), word-split
#   PUSHI_REQUIRED=1    a Herald without the Pushi dialect fails the run instead of skipping it
#   PUSHI_DIFF_RECORD=1 write RESULT.md beside this script from this run
# Exit: 0 every scenario same/same-json/deliberate (or SKIP), 1 a difference, 2 setup failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ -z "${PUSHI_DIFF_INSIDE:-}" ]; then
    "$here/setup.sh"
    if unshare -n true 2>/dev/null; then
        echo "run.sh: running inside a private loopback-only network namespace (unshare -n)"
        exec env PUSHI_DIFF_INSIDE=ns unshare -n bash "${BASH_SOURCE[0]}" "$@"
    fi
    echo "run.sh: NOTICE: network namespaces are unavailable here (unshare -n failed);" \
        "running on the host's loopback (127.0.0.1) instead"
    export PUSHI_DIFF_INSIDE=host
fi
[ "$PUSHI_DIFF_INSIDE" = ns ] && ip link set lo up

herald=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then herald="$1"; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
driver_args=("$@")
if [ -n "$herald" ]; then
    [ -x "$herald" ] || { echo "run.sh: $herald is not an executable (cargo build --release)" >&2; exit 2; }
    herald="$(cd "$(dirname "$herald")" && pwd)/$(basename "$herald")"
fi

SRV="${PUSHI_DIFF_SERVER_VENV:-$here/.venv-server}"
CLI="${PUSHI_DIFF_CLIENT_VENV:-$here/.venv-client}"
work="$(mktemp -d /tmp/pushidiff.XXXXXX)"
logs="$here/logs"
mkdir -p "$logs"
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # pid port log
    for _ in $(seq 1 150); do
        kill -0 "$1" 2>/dev/null || { echo "run.sh: a server exited; its log:" >&2; tail -n 30 "$3" >&2; exit 2; }
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: port $2 never opened; log:" >&2; tail -n 30 "$3" >&2; exit 2
}

# start_pushi NAME: the real server on two free ports, TinyDB in its own temp dir; then an app
# created through its open POST /apps. Sets the variable NAME_SPEC (driver.py target spec).
start_pushi() {
    local name=$1 rest ws log
    rest="$(free_port)"; ws="$(free_port)"; log="$logs/$name.log"
    mkdir -p "$work/$name"
    ADAPTER=tiny TINY_STORAGE=json TINY_PATH="$work/$name/db.json" \
        APP_HOST=127.0.0.1 APP_PORT="$rest" SERVER_HOST=127.0.0.1 SERVER_PORT="$ws" LEVEL=INFO \
        "$SRV/bin/python" -m pushi.base >"$log" 2>&1 &
    pids+=($!)
    wait_port $! "$rest" "$log"
    wait_port "${pids[-1]}" "$ws" "$log"
    local creds
    creds="$("$CLI/bin/python" - "$rest" "$name" <<'PY'
import json, sys, time, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s/apps" % sys.argv[1], method="POST",
    data=json.dumps({"name": "pushidiff-%s-%d" % (sys.argv[2], time.time() * 1000)}).encode(),
    headers={"Content-Type": "application/json"})
app = json.load(urllib.request.urlopen(req, timeout=30))
print("%s,%s,%s" % (app["ident"], app["key"], app["secret"]))
PY
)"
    printf -v "${name}_SPEC" '%s' "$name,http://127.0.0.1:$rest,ws://127.0.0.1:$ws,$creds"
    printf -v "${name}_CREDS" '%s' "$creds"
}

start_pushi pushi
ref="$pushi_SPEC"

if [ -z "$herald" ]; then
    start_pushi pushi2
    cand="$pushi2_SPEC"
    mode=(--aa)
else
    # The same credentials in Herald's app configuration: one [pusher_app:*] section.
    IFS=, read -r app_id app_key app_secret <<<"$pushi_CREDS"
    ini="$work/herald.ini"
    printf '[channelstream]\nhost = 127.0.0.1\n\n[pusher_app:pushidiff]\nid = %s\nkey = %s\nsecret = %s\n' \
        "$app_id" "$app_key" "$app_secret" >"$ini"
    hport="$(free_port)"
    # Pushi mode, when this binary has it (`--pushi` in its --help): the store in the temp dir.
    # Pushi's own start variables (SERVER_PORT, ...) are removed from herald's environment.
    pushi_args=()
    if "$herald" --help 2>/dev/null | grep -q -- '--pushi'; then
        pushi_args=(--pushi --data-dir "$work/herald-data")
    fi
    # shellcheck disable=SC2086
    env -u SERVER_HOST -u SERVER_PORT -u APP_HOST -u APP_PORT "$herald" -i "$ini" --host 127.0.0.1 \
        --port "$hport" --shards 2 --log-level WARNING "${pushi_args[@]}" ${HERALD_PUSHI_ARGS:-} \
        >"$logs/herald.log" 2>&1 &
    pids+=($!)
    wait_port $! "$hport" "$logs/herald.log"
    cand="herald,http://127.0.0.1:$hport,ws://127.0.0.1:$hport,$pushi_CREDS"
    mode=()
    # Probe: does this Herald speak Pushi (a UUID socket id on /{64-hex key})?
    if ! "$CLI/bin/python" "$here/driver.py" --probe "$cand"; then
        if [ -n "${PUSHI_REQUIRED:-}" ]; then
            echo "run.sh: FAIL: $herald has no Pushi dialect (PUSHI_REQUIRED is set)" >&2
            exit 1
        fi
        echo "SKIP: pushi-diff: $herald has no Pushi dialect yet (no Pushi connection_established on /{app key});" \
            "set PUSHI_REQUIRED=1 to make this a failure"
        exit 0
    fi
fi

record=()
[ -n "${PUSHI_DIFF_RECORD:-}" ] && record=(--md-out "$here/RESULT.md")
status=0
"$CLI/bin/python" "$here/driver.py" --ref "$ref" --cand "$cand" "${mode[@]}" "${record[@]}" \
    --json-out "$logs/transcripts.json" "${driver_args[@]}" || status=$?
[ "$status" = 0 ] || echo "run.sh: differences found ($status); transcripts in $logs/transcripts.json, server logs in $logs/" >&2
exit "$status"
