#!/usr/bin/env bash
# The real-client suites against a cluster: every Herald a suite starts becomes 3 nodes on one
# Redis (redis-server from Debian) behind a round-robin TCP load balancer (HAProxy from Debian),
# so each client connection and each REST request may land on any node. The suites are the
# same files as for one node (tests/lib/start-herald.sh does the starting) and must pass the
# same way. As root, everything runs in a network namespace of its own with only loopback up
# (unshare -n): nothing here can reach, or be reached from, outside the machine.
#
#   tests/cluster-suites/run.sh [path/to/herald]     # default: target/release/herald
#   CLUSTER_SUITES="pusher-js pusher-py"             # which suites (default: these two)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="$(realpath "${1:-$here/../../target/release/herald}")"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
suites=(${CLUSTER_SUITES:-pusher-js pusher-py})

if [ -z "${CLUSTER_SUITES_IN_NETNS:-}" ]; then
    for tool in redis-server haproxy; do
        command -v "$tool" >/dev/null 2>&1 && continue
        echo "run.sh: installing $tool from Debian"
        (apt-get update -qq && apt-get install -y -qq redis-server haproxy) >/dev/null
    done
    # The suites install their clients from the registries now, while the network is there.
    for s in "${suites[@]}"; do "$here/../$s/setup.sh"; done
    if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
        exec env CLUSTER_SUITES_IN_NETNS=1 unshare -n -- \
            bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$HERALD"
    fi
    echo "run.sh: not root (or no unshare): running on the host's loopback" >&2
fi

mkdir -p "$here/logs"
REDIS_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --databases 64 \
    >"$here/logs/redis.log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
status=0
for s in "${suites[@]}"; do
    echo "run.sh: $s on a ${HERALD_CLUSTER_NODES:-3}-node cluster"
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    HERALD_CLUSTER_REDIS="redis://127.0.0.1:$REDIS_PORT" "$here/../$s/run.sh" "$HERALD" \
        || { echo "run.sh: $s failed on the cluster" >&2; status=1; }
done
exit "$status"
