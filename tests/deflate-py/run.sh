#!/usr/bin/env bash
# Run test_deflate_clients.py (the PyPI websockets client, with and without permessage-deflate)
# against a Herald binary started with --ws-deflate on a free loopback port with two shards,
# plain, then a second time with TLS too (a throw-away CA made here with the openssl CLI).
#
#   tests/deflate-py/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="$(realpath "${1:-$here/../../target/release/herald}")"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
"$here/setup.sh"
VENV="${DEFLATE_PY_VENV:-$here/.venv}"

mkdir -p "$here/logs"
cd "$here"
pki="$here/logs/pki"
rm -rf "$pki" && mkdir -p "$pki"
# A throw-away CA and a certificate for 127.0.0.1, for the TLS round.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=Herald deflate test CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=herald" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/ext" -out "$pki/server.pem" 2>/dev/null

pid=
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }' EXIT
status=0
for round in plain tls; do
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    log="$here/logs/herald-$round.log"
    extra=(); ca=
    [ "$round" = tls ] && { extra=(--tls-cert "$pki/server.pem" --tls-key "$pki/server.key"); ca="$pki/ca.pem"; }
    "$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 --ws-deflate "${extra[@]}" \
        --log-level ${DEFLATE_LOG_LEVEL:-WARNING} >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$log" >&2; exit 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    echo "run.sh: round $round"
    s=0
    # -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
    HERALD_HOST=127.0.0.1 HERALD_PORT="$PORT" HERALD_TLS_CA="$ca" \
        timeout 120 "$VENV/bin/python" -m pytest -p no:cacheprovider -rs -q test_deflate_clients.py \
        || s=$?
    [ "$s" = 5 ] && echo "run.sh: pytest collected no tests" >&2
    [ "$s" = 0 ] || { echo "run.sh: $round round failed ($s); herald log:" >&2; tail -n 40 "$log" >&2; status=1; }
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
done
exit "$status"
