#!/usr/bin/env bash
# Reproduce BENCHMARKS.md: every herald-bench preset, side by side, in one run.
#
#   ./scripts/bench.sh shards         Herald 1 shard (A) vs Herald 2 shards (B), all presets
#   ./scripts/bench.sh pinned         Herald 1 shard on cpu0 as an A/A pair, client on cpu1
#   ./scripts/bench.sh channelstream  Herald (A) vs the real Channelstream 0.7.1 (B), inside a
#                                     loopback-only network namespace (needs root)
#   ./scripts/bench.sh scale          per-core scaling where the load client cannot get cores of
#                                     its own: 1 core = 1 shard + 1 client on cpu0; 2 cores =
#                                     2 shards + 2 clients (one per cpu) at once; saturation
#                                     deliveries/s summed per configuration (RATE=, ROUNDS=)
#   BEFORE=path/to/herald ./scripts/bench.sh ab
#                                     an A/B of two builds: before (BEFORE=) vs after (this
#                                     tree) vs after again (the A/A noise), each 1 shard on cpu0,
#                                     client on cpu1, on the fan-out presets
#   ./scripts/bench.sh tls            TLS vs plain: Herald 1 shard on cpu0 plain twice (A, A2: the
#                                     A/A noise) and with --tls-cert (T), client on cpu1 over
#                                     https:// for T; a throw-away CA made with openssl
#   ./scripts/bench.sh deflate        permessage-deflate: Herald plain (A), plain again (A2, the A/A
#                                     noise) and --ws-deflate (Z), each 1 shard on cpu0, client on
#                                     cpu1 with --deflate (every subscriber offers it; only Z
#                                     accepts): RSS per idle connection and CPU per delivery
#   ./scripts/bench.sh sockudo        the Pusher presets: Herald (A), sockudo (B) and Herald again
#                                     (the A/A pair), interleaved; every server on cpu1, client
#                                     on cpu0 (UNPINNED=1: nothing pinned, Herald 2 shards and
#                                     sockudo on both cores). SOCKUDO= its binary (default:
#                                     `command -v sockudo`, else /tmp/sockudo-build/root/bin/sockudo;
#                                     `cargo install sockudo --version 5.2.0 --locked --root DIR`)
#   SCENARIOS=fanout-1k-r25 ROUNDS=2 ./scripts/bench.sh shards
#   OUT=dir sets the output folder; BENCH_ARGS="--rate 400" adds herald-bench options (sockudo)
#
# Results go to bench-out/<mode>/ (report.json, report.md, report.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-shards}
DEFAULT_SCEN=all; [ "${1:-}" = channelstream ] && DEFAULT_SCEN=fanout-1k-r5,fanout-1k-r25,fanout-1k-4KiB-r10,publish-rest
[ "${1:-}" = tls ] && DEFAULT_SCEN=fanout-1k-r25,fanout-1k-r200-sat,pusher-fanout-1k-r25,idle-10k
[ "${1:-}" = deflate ] && DEFAULT_SCEN=idle-10k,fanout-1k-4KiB-r10,pusher-fanout-1k-r25,fanout-1k-r25
[ "${1:-}" = sockudo ] && DEFAULT_SCEN=pusher-fanout-1k-r25,pusher-fanout-10k-r5,pusher-fanout-1k-r200-sat,pusher-presence-churn,pusher-publish-rest
[ "${1:-}" = ab ] && DEFAULT_SCEN=fanout-1k-r5,fanout-1k-r25,fanout-10k-r2,fanout-1k-4KiB-r10,channels-1000x10-r2000,fanout-1k-r200-sat,publish-rest
SCENARIOS=${SCENARIOS:-$DEFAULT_SCEN}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-bench-out/$MODE${UNPINNED:+-unpinned}}
mkdir -p "$OUT"
cargo build --release --locked --bin herald --bin herald-bench >/dev/null
H=$PWD/target/release/herald
B=$PWD/target/release/herald-bench
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

case "$MODE" in
shards)
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1))
  taskset -c 0 "$H" --port $P1 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  "$H" --port $P2 --shards 2 --log-level WARNING --max-connections 30000 & pids+=($!)
  wait_port $P1; wait_port $P2
  "$B" --target one-shard=http://127.0.0.1:$P1 --target two-shards=http://127.0.0.1:$P2 \
       --server-pid one-shard=${pids[0]} --server-pid two-shards=${pids[1]} \
       --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT"
  ;;
pinned)
  # Herald 1 shard on cpu0 twice (an A/A pair shows the noise), client on cpu1, server CPU
  # from cpu0's /proc/stat busy time: the figures comparable with targets.md.
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1))
  taskset -c 0 "$H" --port $P1 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P2 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  wait_port $P1; wait_port $P2
  "$B" --target A=http://127.0.0.1:$P1 --target A2=http://127.0.0.1:$P2 \
       --server-pid A=${pids[0]} --server-pid A2=${pids[1]} --server-cores 0 --pin-cpu 1 \
       --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT"
  ;;
ab)
  [ -x "${BEFORE:-}" ] || { echo "set BEFORE= to the herald binary to compare with" >&2; exit 2; }
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1)); P3=$((P1 + 2))
  taskset -c 0 "$BEFORE" --port $P1 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P2 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P3 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  wait_port $P1; wait_port $P2; wait_port $P3
  "$B" --target before=http://127.0.0.1:$P1 --target after=http://127.0.0.1:$P2 --target after-again=http://127.0.0.1:$P3 \
       --server-pid before=${pids[0]} --server-pid after=${pids[1]} --server-pid after-again=${pids[2]} \
       --server-cores 0 --pin-cpu 1 --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT"
  ;;
tls)
  pki=$OUT/pki; mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=bench CA" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=bench" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/ext"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 2 -extfile "$pki/ext" -out "$pki/server.pem" 2>/dev/null
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1)); P3=$((P1 + 2))
  taskset -c 0 "$H" --port $P1 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P2 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P3 --shards 1 --log-level WARNING --max-connections 30000 \
      --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" & pids+=($!)
  wait_port $P1; wait_port $P2; wait_port $P3
  "$B" --target A=http://127.0.0.1:$P1 --target A2=http://127.0.0.1:$P2 --target T=https://127.0.0.1:$P3 \
       --tls-ca "$pki/ca.pem" --server-pid A=${pids[0]} --server-pid A2=${pids[1]} --server-pid T=${pids[2]} \
       --server-cores 0 --pin-cpu 1 --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT"
deflate)
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1)); P3=$((P1 + 2))
  taskset -c 0 "$H" --port $P1 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P2 --shards 1 --log-level WARNING --max-connections 30000 & pids+=($!)
  taskset -c 0 "$H" --port $P3 --shards 1 --log-level WARNING --max-connections 30000 --ws-deflate & pids+=($!)
  wait_port $P1; wait_port $P2; wait_port $P3
  "$B" --target plain=http://127.0.0.1:$P1 --target plain-again=http://127.0.0.1:$P2 --target deflate=http://127.0.0.1:$P3 \
       --server-pid plain=${pids[0]} --server-pid plain-again=${pids[1]} --server-pid deflate=${pids[2]} \
       --server-cores 0 --pin-cpu 1 --deflate ${SIZE:+--size "$SIZE"} \
       --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT"
  ;;
channelstream)
  bash tests/diff/setup.sh >/dev/null
  CS_VENV=${CS_VENV:-/tmp/csenv38}
  NS=hbench-$$
  ip netns add $NS; ip netns exec $NS ip link set lo up
  trap 'cleanup; ip netns del '$NS' 2>/dev/null || true' EXIT
  ini=$OUT/channelstream.ini
  "$CS_VENV/bin/channelstream_utils" make_config -o "$ini"; printf '\nhost = 127.0.0.1\n' >> "$ini"
  ip netns exec $NS "$CS_VENV/bin/channelstream" -i "$ini" >"$OUT/channelstream.log" 2>&1 & pids+=($!)
  ip netns exec $NS taskset -c 0 "$H" -i "$ini" --port 8001 --shards 1 --log-level WARNING & pids+=($!)
  sleep 3
  ip netns exec $NS "$B" --target herald=http://127.0.0.1:8001 --target channelstream=http://127.0.0.1:8000 \
       --scenario "$SCENARIOS" --rounds "$ROUNDS" --connect-concurrency 32 --out-dir "$OUT"
  ;;
sockudo)
  SOCKUDO=${SOCKUDO:-$(command -v sockudo || echo /tmp/sockudo-build/root/bin/sockudo)}
  [ -x "$SOCKUDO" ] || { echo "no sockudo at $SOCKUDO: cargo install sockudo --version 5.2.0 --locked --root DIR; SOCKUDO=DIR/bin/sockudo" >&2; exit 2; }
  P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1)); P3=$((P1 + 2)); P4=$((P1 + 3))
  # Both servers serve the same app: sockudo's from scripts/sockudo-bench.toml, Herald's
  # default app renamed to it.
  export HERALD_DEFAULT_APP_ID=12345 HERALD_DEFAULT_APP_KEY=app-key HERALD_DEFAULT_APP_SECRET=app-secret
  if [ -n "${UNPINNED:-}" ]; then
    pin=(); shards=2; where=()
  else
    pin=(taskset -c 1); shards=1; where=(--server-cores 1 --pin-cpu 0)
  fi
  "${pin[@]}" "$H" --port $P1 --shards $shards --log-level WARNING --max-connections 30000 & pids+=($!)
  "${pin[@]}" "$H" --port $P2 --shards $shards --log-level WARNING --max-connections 30000 & pids+=($!)
  # sockudo reads config/config.toml from its working directory first: run it in an empty one.
  mkdir -p "$OUT/sockudo-cwd"
  conf=$PWD/scripts/sockudo-bench.toml
  (cd "$OUT/sockudo-cwd" && SOCKUDO_PORT=$P3 SOCKUDO_METRICS_PORT=$P4 exec "${pin[@]}" "$SOCKUDO" \
      --config "$conf") >"$OUT/sockudo.log" 2>&1 & pids+=($!)
  wait_port $P1; wait_port $P2; wait_port $P3
  echo "sockudo $("$SOCKUDO" --version) pid ${pids[2]}: $(ls /proc/${pids[2]}/task | wc -l) threads" | tee "$OUT/servers.txt"
  "$B" --target herald=http://127.0.0.1:$P1 --target sockudo=http://127.0.0.1:$P3 --target herald-again=http://127.0.0.1:$P2 \
       --server-pid herald=${pids[0]} --server-pid sockudo=${pids[2]} --server-pid herald-again=${pids[1]} \
       "${where[@]}" --pusher-app-id 12345 --pusher-key app-key --pusher-secret app-secret \
       --scenario "$SCENARIOS" --rounds "$ROUNDS" --source-ips 4 --out-dir "$OUT" ${BENCH_ARGS:-}
  ;;
scale)
  RATE=${RATE:-300}
  common=(--scenario fanout-1k-r200-sat --rate "$RATE" --source-ips 4 --quiet)
  rm -f "$OUT"/*.json
  for round in $(seq "$ROUNDS"); do
    P=$((20000 + RANDOM % 10000))
    taskset -c 0 "$H" --port $P --shards 1 --log-level WARNING & pids+=($!); wait_port $P
    "$B" --target one-core=http://127.0.0.1:$P "${common[@]}" --pin-cpu 0 \
         --json "$OUT/one-core-r$round.json" 2>>"$OUT/scale.log"
    kill "${pids[-1]}"; sleep 2
    P=$((P + 1))
    taskset -c 0,1 "$H" --port $P --shards 2 --log-level WARNING & pids+=($!); wait_port $P
    "$B" --target two-cores=http://127.0.0.1:$P "${common[@]}" --pin-cpu 0 \
         --json "$OUT/two-cores-cpu0-r$round.json" 2>>"$OUT/scale.log" & c0=$!
    "$B" --target two-cores=http://127.0.0.1:$P "${common[@]}" --pin-cpu 1 \
         --json "$OUT/two-cores-cpu1-r$round.json" 2>>"$OUT/scale.log"
    wait $c0
    kill "${pids[-1]}"; sleep 2
  done
  python3 - "$OUT" <<'PY' | tee "$OUT/report.md"
import glob, json, os, re, statistics, sys
out = sys.argv[1]
def runs(pattern):
    rs = []
    for p in sorted(glob.glob(os.path.join(out, pattern))):
        rs += json.load(open(p))["runs"]
    return rs
rows, totals = [], {"one-core": [], "two-cores": []}
found = (re.search(r"-r(\d+)\.json$", p) for p in glob.glob(os.path.join(out, "*-r*.json")))
for rnd in sorted({int(m.group(1)) for m in found if m}):
    for conf, pat in (("one-core", f"one-core-r{rnd}.json"), ("two-cores", f"two-cores-cpu*-r{rnd}.json")):
        rs = runs(pat)
        deliv = sum(r["deliveries_per_s"] for r in rs)
        offered = sum(r["offered_deliveries_per_s"] for r in rs)
        lost = sum(r["lost"] for r in rs)
        closed = sum(r["server_closes"] for r in rs)
        p99 = max(r["latency_ms"]["p99"] for r in rs)
        totals[conf].append(deliv)
        rows.append(f"| {conf} | {rnd} | {len(rs)} | {offered:,.0f} | {deliv:,.0f} | {lost:,} | {closed} | {p99:.1f} |")
print("| configuration | round | clients | offered deliv/s | deliveries/s | lost | server closes | worst p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
print("\n".join(rows))
one, two = statistics.median(totals["one-core"]), statistics.median(totals["two-cores"])
print(f"\nScaling (median deliveries/s, two cores / one core): **{two / one:.2f}x**")
PY
  ;;
*) echo "usage: $0 shards|pinned|channelstream|scale|ab|tls|deflate|sockudo" >&2; exit 2 ;;
esac
echo "results in $OUT/"
