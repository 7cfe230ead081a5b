#!/usr/bin/env bash
# Real clients over TLS against a Herald binary serving TLS on a free loopback port (two
# shards): pusher-js with forceTLS and the npm pusher SDK with useTLS (tls.test.mjs), the
# Channelstream JS client in headless Chromium over wss:// (browser.test.mjs), a Python
# websocket-client, urllib and the PyPI pusher SDK (test_tls_clients.py), then SIGHUP:
# a new certificate is served to new handshakes while a connection made before stays up.
# The test CA and certificates are made here with the openssl CLI (in tests/tls/pki/).
#
#   tests/tls/run.sh [path/to/herald]     # default: target/release/herald
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERALD="${1:-$here/../../target/release/herald}"
[ -x "$HERALD" ] || { echo "run.sh: $HERALD is not an executable (cargo build --release)" >&2; exit 2; }
"$here/setup.sh"
VENV="${TLS_PY_VENV:-$here/.venv}"
cd "$here"

# --- a test CA and a server certificate for 127.0.0.1 / localhost ----------------------------
pki="$here/pki"
rm -rf "$pki" && mkdir -p "$pki"
issue() { # issue NAME CN: a key and a CA-signed certificate NAME.key / NAME.pem
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=Herald test CA" 2>/dev/null
issue first "herald first"
cp "$pki/first.pem" "$pki/server.pem" && cp "$pki/first.key" "$pki/server.key"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
APP_ID=12345
mkdir -p "$here/logs"
log="$here/logs/herald.log"
HERALD_DEFAULT_APP_ID=$APP_ID "$HERALD" --host 127.0.0.1 --port "$PORT" --shards 2 \
    --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --log-level INFO >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: herald exited; its log:" >&2; cat "$log" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

status=0
export TLS_HOST=127.0.0.1 TLS_PORT="$PORT" TLS_CA="$pki/ca.pem" PUSHER_APP_ID=$APP_ID
# Chromium trusts exactly the server's key (its SPKI hash), nothing else.
TLS_SPKI="$(openssl x509 -in "$pki/server.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"
NODE_EXTRA_CA_CERTS="$pki/ca.pem" TLS_SPKI="$TLS_SPKI" timeout 180 node --test tls.test.mjs \
    browser.test.mjs || status=$?
# -p no:cacheprovider: no .pytest_cache in the tree. Exit 5 (nothing collected) is a failure.
timeout 120 "$VENV/bin/python" -m pytest -p no:cacheprovider \
    -rs -q test_tls_clients.py || status=$?

# --- SIGHUP: new handshakes get the new certificate, an open connection stays ---------------
subject() { # the subject CN the server presents to a new handshake
    openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$pki/ca.pem" </dev/null 2>/dev/null \
        | openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
reload_checks=0
reload_failed=0
check() { reload_checks=$((reload_checks + 1)); if ! "$@"; then reload_failed=$((reload_failed + 1)); echo "FAILED: $*" >&2; fi; }
# A keep-alive connection opened before the reload, held by a coprocess.
cat >"$pki/keep.py" <<'PY'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
for line in sys.stdin:
    c.request("OPTIONS", "/")
    r = c.getresponse(); r.read()
    print(r.status, c.sock.getpeercert()["subject"][0][0][1], flush=True)
PY
coproc KEEP { "$VENV/bin/python" -u "$pki/keep.py" "$PORT" "$pki/ca.pem"; }
echo go >&"${KEEP[1]}"; read -r -t 10 before <&"${KEEP[0]}" || before=none
check test "$before" = "200 herald first"
check test "$(subject)" = "herald first"
issue second "herald second"
cp "$pki/second.pem" "$pki/server.pem" && cp "$pki/second.key" "$pki/server.key"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q 'certificates reloaded' "$log" && break; sleep 0.1; done
check test "$(subject)" = "herald second"
echo go >&"${KEEP[1]}"; read -r -t 10 after <&"${KEEP[0]}" || after=none
check test "$after" = "200 herald first"  # same connection, same certificate
# A broken certificate is refused; the current one stays.
echo "not a certificate" >"$pki/server.pem"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q 'certificate not reloaded' "$log" && break; sleep 0.1; done
check grep -q 'certificate not reloaded' "$log"
check test "$(subject)" = "herald second"
check kill -0 "$pid"
eval "exec ${KEEP[1]}>&-"
echo "sighup: $((reload_checks - reload_failed)) passed, $reload_failed failed"
[ "$reload_failed" = 0 ] || status=1

kill -TERM "$pid"; wait "$pid" || { echo "run.sh: herald did not exit cleanly on SIGTERM" >&2; status=1; }
trap - EXIT
[ "$status" = 0 ] || { echo "run.sh: tests failed ($status); herald log:" >&2; tail -n 40 "$log" >&2; }
exit "$status"
