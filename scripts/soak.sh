#!/usr/bin/env bash
# Soak: Herald under mixed good and hostile clients for SECONDS (default 600).
# Good clients: herald-bench subscribers + open-loop publishers in back-to-back runs (every
# delivery counted). Hostile clients: tests/soak/hostile.py (garbage HTTP, bad frames,
# slowloris, half-open and never-reading sockets). Samples the server's RSS every 10 s and
# checks at the end that no good client missed a message and RSS is back near its start.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
OUT=bench-out/soak; mkdir -p "$OUT"
cargo build --release --locked --bin herald --bin herald-bench >/dev/null
PORT=$((30000 + RANDOM % 10000))
./target/release/herald --port $PORT --shards 2 --echo-path /echo --log-level WARNING >"$OUT/herald.log" 2>&1 &
HP=$!
trap 'kill $HP 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$HP/status; }
RSS0=$(rss); echo "start RSS ${RSS0} kB"
( while kill -0 $HP 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 10; done ) >"$OUT/rss.txt" &
SAMPLER=$!
python3 tests/soak/hostile.py --port $PORT --seconds "$SECS" >"$OUT/hostile.txt" 2>&1 &
HOSTILE=$!
end=$(( $(date +%s) + SECS )); runs=0; lost=0; delivered=0
while [ $(date +%s) -lt $((end - 20)) ]; do
  left=$(( end - $(date +%s) - 10 )); d=$(( left < 100 ? left : 100 ))
  [ $d -lt 10 ] && break
  ./target/release/herald-bench --target http://127.0.0.1:$PORT --scenario custom --subs 300 \
     --channels 3 --rate 50 --duration $d --quiet --json "$OUT/run-$runs.json" >/dev/null 2>&1 || true
  read -r e dl < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"][0]; print(r["expected_deliveries"], r["delivered"])' "$OUT/run-$runs.json")
  delivered=$((delivered + dl)); lost=$((lost + e - dl)); runs=$((runs + 1))
  echo "good run $runs: $dl of $e delivered"
done
wait $HOSTILE; HOSTILE_RC=$?
cat "$OUT/hostile.txt"
sleep 20   # let the 15 s connection GC collect the good clients' connections
RSS1=$(rss); kill $SAMPLER 2>/dev/null || true
PEAK=$(awk '{print $2}' "$OUT/rss.txt" | sort -n | tail -1)
echo "RSS start ${RSS0} kB, peak ${PEAK} kB, end ${RSS1} kB; good deliveries ${delivered}, lost ${lost}, runs ${runs}"
[ "$lost" = 0 ] && [ "$HOSTILE_RC" = 0 ] && [ "$RSS1" -lt $((RSS0 * 3 + 8192)) ]
