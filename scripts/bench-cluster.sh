#!/usr/bin/env bash
# Cluster mode cost: the Pusher fan-out preset against (1) one node without --cluster,
# (2) one node with --cluster (every subscriber local: the cost of the PUBLISH alone), and
# (3) three nodes on one redis-server, subscribers spread over the three (herald-bench
# --subs-at), publishers on node 0 — so two thirds of the deliveries cross Redis.
#
#   ./scripts/bench-cluster.sh [OUT_DIR]     (needs redis-server; loopback only)
#   RATE=200 SUBS=1000 DURATION=20 to change the load.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-out/cluster}
RATE=${RATE:-25}
SUBS=${SUBS:-1000}
DURATION=${DURATION:-20}
mkdir -p "$OUT"
cargo build --release --locked --bins >/dev/null
H=target/release/herald
B=target/release/herald-bench
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
PIDS+=($!)
wait_port "$RP"

node() { # node PORT [cluster args...]
  local port=$1; shift
  "$H" --port "$port" --shards 1 --log-level WARNING "$@" &
  PIDS+=($!)
  wait_port "$port"
}
bench() { # bench LABEL TARGET_PORT [herald-bench args...]
  local label=$1 port=$2; shift 2
  sleep 1 # the cluster link connects asynchronously
  "$B" --target "$label=http://127.0.0.1:$port" --scenario pusher-fanout-1k-r25 \
    --rate "$RATE" --subs "$SUBS" --duration "$DURATION" -q \
    --json "$OUT/$label.json" "$@"
}

P1=$(free_port); node "$P1"
bench single "$P1"
P2=$(free_port); node "$P2" --cluster "redis://127.0.0.1:$RP" --node-id solo
bench cluster-1 "$P2"
A=$(free_port); B2=$(free_port); C=$(free_port)
node "$A" --cluster "redis://127.0.0.1:$RP" --node-id a
node "$B2" --cluster "redis://127.0.0.1:$RP" --node-id b
node "$C" --cluster "redis://127.0.0.1:$RP" --node-id c
bench cluster-3 "$A" --subs-at "http://127.0.0.1:$A,http://127.0.0.1:$B2,http://127.0.0.1:$C"
"$B" --from-json "$OUT/single.json" --from-json "$OUT/cluster-1.json" \
  --from-json "$OUT/cluster-3.json" --markdown "$OUT/report.md"
cat "$OUT/report.md"
