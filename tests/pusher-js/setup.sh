#!/usr/bin/env bash
# Idempotent setup for the pusher-js real-client tests: npm ci (pusher-js, pusher,
# playwright-core) from the lockfile, and Debian's chromium for browser.test.mjs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -f node_modules/pusher-js/package.json ] || [ ! -f node_modules/pusher/package.json ] \
    || [ ! -f node_modules/playwright-core/package.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
../../scripts/install-chromium.sh
echo "setup: ok"
