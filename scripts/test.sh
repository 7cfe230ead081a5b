#!/usr/bin/env bash
# Run every Herald test, installing what the tests need (Rust tools from crates.io, Debian's
# redis-server and haproxy for the cluster tests and suites, the real Channelstream 0.7.1 from
# PyPI, Autobahn|Testsuite from PyPI under Python 2.7, npm packages for the JS clients, pysher and the PyPI pusher SDK, the
# PyPI websockets client under Python 3.11; the TLS suite's openssl CLI, pusher-js and
# websocket-client; the real pushi-service 0.6.10 and the
# PyPI pushi client).
#
#   ./scripts/test.sh            everything (what CI runs)
#   QUICK=1 ./scripts/test.sh    Rust tests only (no installs, no external suites)
#   FUZZ_SECONDS=N               seconds per fuzz target (default 20; 0 skips fuzzing)
#   SOCKUDO_DIFF=1               also the differential suite against sockudo (its first setup
#                                builds sockudo from crates.io: 30-60 min, so not in CI)
#   AUTOBAHN_FULL=1              Autobahn 12.*/13.* with their full 1,000 messages per case
#                                (default: AB_DEFLATE_COUNT, 100, see scripts/autobahn/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }
fail=0

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests"
# tests/cluster.rs starts real redis-server processes (it prints a skip line without one).
if ! command -v redis-server >/dev/null 2>&1 && [ -z "${QUICK:-}" ]; then
  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null ||
    echo "warning: could not install redis-server; tests/cluster.rs will skip"
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
cargo test --locked --doc

[ -n "${QUICK:-}" ] && { echo "QUICK=1: external suites skipped"; exit 0; }

step "release build"
cargo build --release --locked --bins
HERALD="$ROOT/target/release/herald"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Autobahn|Testsuite against the echo route (all 517 cases; AUTOBAHN_FULL=1: 1,000 messages per 12/13 case)"
PORT=$(free_port)
"$HERALD" --port "$PORT" --shards 2 --echo-path /echo --max-ws-message-bytes 20000000 --ws-deflate \
  --log-level WARNING &
HPID=$!
trap 'kill $HPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
# Installs Autobahn|Testsuite from PyPI into a Python 2.7 virtualenv on first use.
AB_OUT="$ROOT/target/autobahn-out" bash scripts/autobahn/run.sh ${AUTOBAHN_FULL:+--full} "$PORT" echo || fail=1
kill -TERM $HPID; wait $HPID || { echo "herald did not exit cleanly on SIGTERM"; fail=1; }
trap - EXIT

step "differential tests against the real Channelstream 0.7.1"
bash tests/diff/setup.sh
bash tests/diff/run.sh "$HERALD" || fail=1

step "Channelstream JS client and demo backend, end to end"
bash tests/e2e/setup.sh
bash tests/e2e/run.sh "$HERALD" || fail=1

step "pusher-js and the npm pusher SDK against the Pusher dialect"
bash tests/pusher-js/setup.sh
bash tests/pusher-js/run.sh "$HERALD" || fail=1

step "pysher and the PyPI pusher SDK against the Pusher dialect"
bash tests/pusher-py/setup.sh
bash tests/pusher-py/run.sh "$HERALD" || fail=1

step "the same real-client suites against a 3-node cluster on one Redis behind HAProxy"
# Installs Debian's redis-server and haproxy if missing; runs in a loopback-only namespace.
bash tests/cluster-suites/run.sh "$HERALD" || fail=1
CS_DIFF_CLUSTER=3 bash tests/diff/run.sh "$HERALD" || fail=1

# The Pushi suites probe the binary first; the Pushi dialect is built, so its absence is a
# failure (PUSHI_REQUIRED=1). The A/A run and --reference keep the harnesses themselves checked
# against the real pushi-service.
export PUSHI_REQUIRED="${PUSHI_REQUIRED:-1}"
step "differential tests against the real Pushi (pushi-service 0.6.10): A/A, then vs Herald"
bash tests/pushi-diff/setup.sh
bash tests/pushi-diff/run.sh || fail=1
bash tests/pushi-diff/run.sh "$HERALD" || fail=1

step "the PyPI pushi client: against the real pushi-service (reference), then Herald"
bash tests/pushi-py/setup.sh
bash tests/pushi-py/run.sh --reference || fail=1
bash tests/pushi-py/run.sh "$HERALD" || fail=1

step "TLS: pusher-js (forceTLS), Python websocket-client and SDKs over rustls; SIGHUP reload"
bash tests/tls/setup.sh
bash tests/tls/run.sh "$HERALD" || fail=1

step "the PyPI websockets client with and without permessage-deflate (Channelstream and Pusher routes)"
bash tests/deflate-py/setup.sh
bash tests/deflate-py/run.sh "$HERALD" || fail=1

if [ -n "${SOCKUDO_DIFF:-}" ]; then
  step "differential scenarios against sockudo 5.2.0 (Pusher dialect)"
  bash scripts/sockudo-diff/run.sh "$HERALD" || fail=1
fi

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzzing, $FUZZ_SECONDS s per target"
  bash scripts/fuzz.sh "$FUZZ_SECONDS" || fail=1
fi

if [ $fail != 0 ]; then echo "SOME SUITES FAILED"; exit 1; fi
echo "all suites passed"
