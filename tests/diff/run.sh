#!/usr/bin/env bash
# Differential run: real Channelstream 0.7.1 (A, 127.0.0.1:8000) vs Herald (B, 127.0.0.1:8001),
# both inside a private loopback-only network namespace.
#
#   tests/diff/run.sh                       A/A: the real server against itself
#   tests/diff/run.sh path/to/herald        A/B: real server vs Herald
#   tests/diff/run.sh [HERALD_BIN] -- ARGS  extra runner.py arguments (--only NAME, -v, --dump DIR)
#   CS_DIFF_CLUSTER=3 tests/diff/run.sh path/to/herald
#                                           B is 3 Herald nodes on one redis-server behind a
#                                           round-robin TCP HAProxy on 8001 (each connection,
#                                           REST or websocket, may land on any node)
#
# Why a namespace: channelstream always binds the Flash policy port 0.0.0.0:10843 as well, so two
# runs (or other people's servers) on one host would collide; in a fresh namespace 8000/8001/10843
# are always free and nothing is reachable from outside.  Needs root (ip netns).
# Exit status: the runner's (0 = every scenario matched), 2 = setup/start failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CS_VENV="${CS_VENV:-/tmp/csenv38}"

herald=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    herald="$1"
    shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
runner_args=("$@")

if [ -n "$herald" ]; then
    if [ ! -x "$herald" ]; then
        echo "run.sh: Herald binary '$herald' is not executable" >&2
        exit 2
    fi
    herald="$(cd "$(dirname "$herald")" && pwd)/$(basename "$herald")"
fi

"$here/setup.sh" >/dev/null

ns="csdiff-$$-$RANDOM"
work="$(mktemp -d /tmp/csdiff.XXXXXX)"
pids=()

cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        echo "run.sh: logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

# Config exactly as spec §12: make_config with the secret, plus the host key the template lacks
# (its output has no trailing newline, hence the leading \n).  Herald reads the same file.
ini="$work/channelstream.ini"
"$CS_VENV/bin/channelstream_utils" make_config -j '{"secret": "secret"}' -o "$ini"
printf '\nhost = 127.0.0.1\n' >> "$ini"

# `ip netns exec` execs the command, so $! is the server's own pid.
ip netns exec "$ns" "$CS_VENV/bin/channelstream" -i "$ini" >"$work/real.log" 2>&1 &
pids+=($!)
ports=(8000)
if [ -n "$herald" ] && [ -n "${CS_DIFF_CLUSTER:-}" ]; then
    ip netns exec "$ns" redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
        >"$work/redis.log" 2>&1 &
    pids+=($!)
    ip netns exec "$ns" "$CS_VENV/bin/python" -c 'import socket,time
for _ in range(100):
    try: socket.create_connection(("127.0.0.1", 6379), 1).close(); break
    except OSError: time.sleep(0.1)'
    servers=""
    for i in $(seq 1 "$CS_DIFF_CLUSTER"); do
        ip netns exec "$ns" "$herald" -i "$ini" --port $((8010 + i)) \
            --cluster redis://127.0.0.1:6379 --node-id "n$i" >"$work/herald$i.log" 2>&1 &
        pids+=($!)
        ports+=($((8010 + i)))
        servers+="    server n$i 127.0.0.1:$((8010 + i))"$'\n'
    done
    printf 'global\n    maxconn 4000\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 1h\n    timeout server 1h\nfrontend herald\n    bind 127.0.0.1:8001\n    default_backend nodes\nbackend nodes\n    balance roundrobin\n%s' \
        "$servers" >"$work/haproxy.cfg"
    ip netns exec "$ns" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
    pids+=($!)
    ports+=(8001)
elif [ -n "$herald" ]; then
    ip netns exec "$ns" "$herald" -i "$ini" --port 8001 >"$work/herald.log" 2>&1 &
    pids+=($!)
    ports+=(8001)
fi

# Wait (bounded) until every port accepts connections inside the namespace.
if ! ip netns exec "$ns" "$CS_VENV/bin/python" - "${ports[@]}" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 30
for port in map(int, sys.argv[1:]):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("port %d did not open within 30 s" % port)
            time.sleep(0.1)
PY
then
    echo "run.sh: servers did not start; logs:" >&2
    tail -n 30 "$work"/*.log >&2 || true
    exit 2
fi

base_b="http://127.0.0.1:8000"
[ -n "$herald" ] && base_b="http://127.0.0.1:8001"
if [ -n "$herald" ] && [ -n "${CS_DIFF_CLUSTER:-}" ]; then
    # Behind a TCP balancer that does not speak the PROXY protocol every request comes from
    # the balancer's address, so a per-address allow list cannot be tested through it (README,
    # Cluster mode); the single-node run covers that scenario.
    runner_args+=(--skip auth_ip_whitelist)
fi

set +e
ip netns exec "$ns" "$CS_VENV/bin/python" "$here/runner.py" \
    --a http://127.0.0.1:8000 --b "$base_b" "${runner_args[@]}"
rc=$?
set -e
# A server that died during the run explains a wall of failures: say so.
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "run.sh: server process $i (0: channelstream) exited during the run; logs in $work" >&2
        tail -n 30 "$work"/*.log >&2 || true
        [ "$rc" -eq 0 ] && rc=1
    fi
done
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    echo "run.sh: runner crashed (exit $rc); server logs:" >&2
    tail -n 30 "$work"/*.log >&2 || true
fi
exit "$rc"
