#!/usr/bin/env bash
# Stand-in for the Herald binary, to test the harness itself before Herald runs:
#   tests/diff/run.sh tests/diff/fake_herald.sh
# It starts the REAL channelstream with Herald's command line (-i INI --port N), minus the Flash
# policy server on 0.0.0.0:10843 (a second real instance in the namespace could not bind it).
# FAKE_HERALD_MUTATE injects deliberate differences to prove the suite catches them:
#   ws426     /ws without a valid upgrade -> 426 (exercises the accepted deviation)
#   keyorder  channel info objects emit "name" before "uuid" (must FAIL many scenarios)
#   nocatchup  no catch-up on websocket open (must FAIL the catch-up scenarios)
set -euo pipefail
CS_VENV="${CS_VENV:-/tmp/csenv38}"
exec "$CS_VENV/bin/python" - "$@" <<'PY'
import argparse, configparser, os, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("-i", "--ini", required=True)
ap.add_argument("--port", type=int, required=True)
args = ap.parse_args()

cp = configparser.ConfigParser()
cp.read(args.ini)
cp.set("channelstream", "port", str(args.port))
fd, path = tempfile.mkstemp(suffix=".ini")
with os.fdopen(fd, "w") as fh:
    cp.write(fh)

import channelstream.cli.start as start


class NoFlash(object):
    def __init__(self, *a, **kw):
        pass

    def start(self):
        pass


start.StreamServer = NoFlash
mutate = os.environ.get("FAKE_HERALD_MUTATE", "")
if mutate == "ws426":
    orig_call = start.RoutingApplication.__call__

    def call(self, environ, start_response):
        if environ.get("PATH_INFO") == "/ws" and environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            start_response("426 Upgrade Required", [("Content-Type", "text/plain")])
            return [b"Upgrade Required"]
        return orig_call(self, environ, start_response)

    start.RoutingApplication.__call__ = call
elif mutate == "keyorder":
    from channelstream.channel import Channel
    orig_info = Channel.get_info

    def get_info(self, *a, **kw):
        info = orig_info(self, *a, **kw)
        return dict([("name", info.pop("name"))] + list(info.items()))

    Channel.get_info = get_info
elif mutate == "nocatchup":
    from channelstream.connection import Connection
    from channelstream import ws_app
    orig_opened = ws_app.ChatApplicationSocket.opened

    def opened(self):
        saved = Connection.deliver_catchup_messages
        Connection.deliver_catchup_messages = lambda self: None
        try:
            orig_opened(self)
        finally:
            Connection.deliver_catchup_messages = saved

    ws_app.ChatApplicationSocket.opened = opened

sys.argv = ["channelstream", "-i", path]
start.main()
PY
