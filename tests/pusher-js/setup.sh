#!/usr/bin/env bash
# Idempotent setup for the pusher-js real-client test: npm ci (pusher-js, pusher) from the lockfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -f node_modules/pusher-js/package.json ] || [ ! -f node_modules/pusher/package.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: ok"
