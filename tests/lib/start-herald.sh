# Sourced by the client suites' run.sh: start "one Herald" for a suite, which is either one
# process or, when HERALD_CLUSTER_REDIS is set (tests/cluster-suites/run.sh sets it), a cluster
# of HERALD_CLUSTER_NODES (default 3) nodes on one Redis behind a round-robin TCP load balancer
# (HAProxy from Debian), so every client connection and every REST request of the suite may
# land on any node. The suite cannot tell which it got: that is the point.
#
#   herald_start LOG PORT [VAR=value...] [-- herald flags...]
#
# starts it on 127.0.0.1:PORT with those environment variables and flags (plus --host,
# --port, --shards 2, --log-level WARNING) and waits until PORT accepts. Each cluster gets its
# own Redis database (1, 2, ...), so a suite's clusters do not hear each other. Process ids go
# to the array HERALD_PIDS; herald_stop_all stops them (call it from the suite's EXIT trap).
# Needs HERALD (the binary). Node logs: LOG with .nodeN before the extension.

HERALD_PIDS=()
_herald_db=0

_herald_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# _herald_wait PID PORT LOG: until PORT accepts, or fail with the log if PID exited.
_herald_wait() {
    local pid="$1" port="$2" log="$3"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "start-herald: process exited; its log:" >&2; cat "$log" >&2; return 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "start-herald: nothing listens on $port after 10 s; log $log" >&2
    return 1
}

herald_start() {
    local log="$1" port="$2"
    shift 2
    local vars=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    if [ -z "${HERALD_CLUSTER_REDIS:-}" ]; then
        env "${vars[@]}" "$HERALD" --host 127.0.0.1 --port "$port" --shards 2 --log-level WARNING \
            "$@" >"$log" 2>&1 &
        HERALD_PIDS+=("$!")
        _herald_wait "$!" "$port" "$log"
        return
    fi
    _herald_db=$((_herald_db + 1))
    local n="${HERALD_CLUSTER_NODES:-3}" i servers="" node_port node_log
    for i in $(seq 1 "$n"); do
        node_port="$(_herald_free_port)"
        node_log="${log%.*}.node$i.${log##*.}"
        env "${vars[@]}" "$HERALD" --host 127.0.0.1 --port "$node_port" --shards 2 \
            --log-level WARNING --cluster "$HERALD_CLUSTER_REDIS/$_herald_db" --node-id "n$i" \
            "$@" >"$node_log" 2>&1 &
        HERALD_PIDS+=("$!")
        _herald_wait "$!" "$node_port" "$node_log" || return 1
        servers+="    server n$i 127.0.0.1:$node_port"$'\n'
    done
    local cfg="${log%.*}.haproxy.cfg"
    # TCP mode: websockets and keep-alive HTTP pass through untouched; each new client
    # connection goes to the next node.
    cat >"$cfg" <<EOF
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
frontend herald
    bind 127.0.0.1:$port
    default_backend nodes
backend nodes
    balance roundrobin
$servers
EOF
    haproxy -db -f "$cfg" >"${log%.*}.haproxy.log" 2>&1 &
    HERALD_PIDS+=("$!")
    _herald_wait "$!" "$port" "${log%.*}.haproxy.log"
    echo "start-herald: $n nodes (redis db $_herald_db) behind 127.0.0.1:$port" >&2
}

herald_stop_all() {
    local p
    for p in "${HERALD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${HERALD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# herald_logs LOG: the log(s) of what herald_start LOG started, for a failure report.
herald_logs() {
    local log="$1"
    if [ -z "${HERALD_CLUSTER_REDIS:-}" ]; then echo "$log"; else ls "${log%.*}".node*."${log##*.}"; fi
}
