#!/usr/bin/env bash
# Idempotent: make sure Debian's chromium is installed (the headless browser that the browser
# tests drive through playwright-core). Used by tests/e2e/setup.sh and tests/pusher-js/setup.sh.
# Several worktrees may run this at once, so apt is serialised with a lock file.
#
#   scripts/install-chromium.sh          # CHROMIUM (default /usr/bin/chromium) must exist after
set -euo pipefail
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
echo "setup: installing chromium (apt-get)"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
(
    flock 8
    if [ ! -x "$CHROMIUM" ]; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    fi
) 8>/tmp/herald-e2e-apt.lock
[ -x "$CHROMIUM" ] || { echo "setup: $CHROMIUM still missing" >&2; exit 1; }
