#!/usr/bin/env bash
# Run test_deflate_clients.py (the PyPI websockets client, with and without permessage-deflate)
# against a Herald binary started with --ws-deflate on a free loopback port with two shards.
#
#   tests/deflate-py/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
"$here/setup.sh"
VENV="${DEFLATE_PY_VENV:-$here/.venv}"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$here/logs"
log="$here/logs/herald.log"
"$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 --ws-deflate --log-level WARNING >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$log" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
cd "$here"
status=0
# -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
HERALD_HOST=127.0.0.1 HERALD_PORT="$PORT" \
    timeout 120 "$VENV/bin/python" -m pytest -p no:cacheprovider -rs -q test_deflate_clients.py \
    || status=$?
[ "$status" = 5 ] && echo "run.sh: pytest collected no tests" >&2
[ "$status" = 0 ] || { echo "run.sh: tests failed ($status); herald log:" >&2; tail -n 40 "$log" >&2; }
exit "$status"
