#!/usr/bin/env bash
# Scale past one process: SUBS live Pusher subscribers of one channel spread over NODES Herald
# nodes on one redis-server, then one publisher on node 1 whose events must reach every one of
# them. Reports what reached whom, publish -> delivery latency on each client process, and
# memory per connection of each node (VmRSS after connecting minus before, over its sockets).
# Not CI: it takes a few minutes and most of this machine.
#
#   ./scripts/cluster-100k.sh [OUT_DIR]            (needs redis-server; loopback only)
#   NODES=6 SUBS=100000 RATE=2 DURATION=20 to change the load.
#
# Why 6 nodes by default, not 5: one process here may hold at most ~19,990 descriptors
# (ulimit -n 20,000, hard), and a node needs a few for itself (listener, epoll, wakers, Redis,
# logs), so 5 nodes hold at most ~99,900 sockets. NODES=5 SUBS=99800 is the largest 5-node run
# this machine allows. Client sockets are spread over herald-bench processes of at most
# PER_CLIENT (17,000) subscribers each, from source addresses 127.0.0.1..127.0.0.8 so no
# (source, destination) pair runs out of ephemeral ports.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-out/cluster-100k}
NODES=${NODES:-6}
SUBS=${SUBS:-100000}
RATE=${RATE:-2}
DURATION=${DURATION:-20}
PER_CLIENT=${PER_CLIENT:-17000}
mkdir -p "$OUT"
cargo build --release --locked --bins >/dev/null
H=target/release/herald
B=target/release/herald-bench
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" &
PIDS+=($!)
wait_port "$RP"

ports=(); npids=(); subs_at=""
for i in $(seq 1 "$NODES"); do
    p=$(free_port)
    "$H" --host 127.0.0.1 --port "$p" --shards 1 --log-level WARNING \
        --cluster "redis://127.0.0.1:$RP" --node-id "n$i" >"$OUT/node$i.log" 2>&1 &
    PIDS+=($!); npids+=($!); ports+=("$p")
    wait_port "$p"
    subs_at+="${subs_at:+,}http://127.0.0.1:$p"
done
sleep 1 # the nodes' Redis links connect asynchronously
rss0=(); fd0=()
for pid in "${npids[@]}"; do rss0+=("$(rss_kib "$pid")"); fd0+=("$(fds "$pid")"); done
# A node's client sockets: its descriptors now minus those it had before any client.
open_on() { echo $(( $(fds "${npids[$1]}") - ${fd0[$1]} )); }

# Subscribers: every client process but the last only listens (--rate 0), for longer than the
# publisher's run; the last one also publishes on node 1. All share one channel (--shared-tag)
# and one clock, so each measures the publisher's latency to its own sockets.
clients=$(( (SUBS + PER_CLIENT - 1) / PER_CLIENT ))
listen_for=$(( DURATION + 45 + clients * 10 ))
[ "$listen_for" -gt 120 ] && listen_for=120 # herald-bench's longest run
cpids=()
left=$SUBS
common=(--scenario pusher-fanout-10k-r5 --channels 1 --shared-tag c100k --source-ips 8
        --subs-at "$subs_at" --connect-timeout 300 -q)
for c in $(seq 1 $((clients - 1))); do
    n=$(( left < PER_CLIENT ? left : PER_CLIENT )); left=$((left - n))
    "$B" --target "listen$c=http://127.0.0.1:${ports[0]}" "${common[@]}" --subs "$n" --rate 0 \
        --duration "$listen_for" --json "$OUT/listen$c.json" >"$OUT/listen$c.log" 2>&1 &
    PIDS+=($!); cpids+=($!)
done
# Wait until the listeners' sockets are all open on the nodes.
want=$((SUBS - left))
for _ in $(seq 600); do
    open=0; for i in "${!npids[@]}"; do open=$((open + $(open_on "$i"))); done
    [ "$open" -ge "$want" ] && break
    for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "cluster-100k: a listener exited:" >&2; tail -3 "$OUT"/listen*.log >&2; exit 1; }; done
    sleep 1
done
echo "cluster-100k: $open sockets open on $NODES nodes; publisher connects $left more and publishes"
"$B" --target "publisher=http://127.0.0.1:${ports[0]}" "${common[@]}" --subs "$left" \
    --rate "$RATE" --duration "$DURATION" --json "$OUT/publisher.json" >"$OUT/publisher.log" 2>&1 &
ppid=$!; PIDS+=($ppid)
# Memory and sockets while all SUBS are connected (the publisher's close when its run ends).
for _ in $(seq 300); do
    open=0; for i in "${!npids[@]}"; do open=$((open + $(open_on "$i"))); done
    [ "$open" -ge "$SUBS" ] && break
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.5
done
rss1=(); conns=()
for i in "${!npids[@]}"; do rss1+=("$(rss_kib "${npids[$i]}")"); conns+=("$(open_on "$i")"); done
echo "cluster-100k: $open sockets open; publishing for $DURATION s"
wait "$ppid" || { echo "cluster-100k: the publisher failed; $OUT/publisher.log:" >&2; tail "$OUT/publisher.log" >&2; }
echo "cluster-100k: publisher done; waiting for the listeners' runs to end (up to ${listen_for} s)"
for p in "${cpids[@]}"; do wait "$p" || echo "cluster-100k: a listener failed (see $OUT/listen*.log)"; done

python3 - "$OUT" "$NODES" "${rss0[*]}" "${rss1[*]}" "${conns[*]}" <<'EOF' | tee "$OUT/report.md"
import glob, json, sys
out, nodes = sys.argv[1], int(sys.argv[2])
rss0, rss1, conns = ([int(x) for x in a.split()] for a in sys.argv[3:6])
pub = json.load(open(f"{out}/publisher.json"))["runs"][0]
msgs = pub["messages_accepted"]
print(f"# {sum(conns)} subscribers on {nodes} nodes, {msgs} events published on node 1\n")
print("| client | subscribers | deliveries | expected | p50 ms | p99 ms | max ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
total = expected = 0
for f in sorted(glob.glob(f"{out}/listen*.json")) + [f"{out}/publisher.json"]:
    try:
        r = json.load(open(f))["runs"][0]
    except (OSError, ValueError, KeyError, IndexError):
        print(f"| {f} | (no report) | | | | | |")
        continue
    lat = r.get("latency_ms") or {}
    total += r["deliveries_total"]
    exp = r["subs_connected"] * msgs
    expected += exp
    print(f"| {r['target']} | {r['subs_connected']} | {r['deliveries_total']} | {exp} | "
          f"{lat.get('p50', 0):.1f} | {lat.get('p99', 0):.1f} | {lat.get('max', 0):.1f} |")
print(f"\nall deliveries: {total} of {expected} expected\n")
print("| node | sockets | RSS before KiB | RSS after KiB | bytes per connection |")
print("|---|---:|---:|---:|---:|")
for i in range(nodes):
    per = (rss1[i] - rss0[i]) * 1024 / max(conns[i], 1)
    print(f"| n{i + 1} | {conns[i]} | {rss0[i]} | {rss1[i]} | {per:.0f} |")
EOF
