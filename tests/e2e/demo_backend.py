#!/usr/bin/env python3
"""Demo web-app backend for the Channelstream JS client (stdlib only, Python 3.8+).

Shaped like channelstream_demos' chat app: the browser-side `ChannelStreamConnection`
talks to THIS app (connectUrl, subscribeUrl, ...), the app decides what the user may do,
signs a request with the shared secret and forwards it to the push server's REST API.
Only the websocket (`/ws`) and long poll (`/listen`) go from the client straight to the
push server.  Because it is a plain backend written against the Channelstream 0.7.1 API,
it must work unchanged against any compatible server (Channelstream itself, Herald).

Endpoints (all take and return JSON; the push server's status and body are passed back):

    POST   /connect      {username, channels}              -> push /connect
    POST   /subscribe    {channels, conn_id}               -> push /subscribe
    POST   /unsubscribe  {channels, conn_id}               -> push /unsubscribe
    POST   /user_state   {username, conn_id, update_state} -> push /user_state {user, user_state}
    POST   /message      {user, channel, message, ...}     -> push POST /message [..]
    PATCH  /message      {uuid, channel, message, ...}     -> push PATCH /message [..]
    DELETE /message      {uuid, channel}                   -> push DELETE /message [..]
    POST   /disconnect?conn_id=..  {conn_id}               -> push POST /disconnect {conn_id}
    GET    /info                                           -> push /info (empty body: everything)

Usage:
    demo_backend.py --server http://127.0.0.1:8000 --secret secret [--port 0]
        prints "LISTENING <port>" on stdout once it accepts connections.
    demo_backend.py --self-test
        checks the signer against the test vectors of the spec (§3.2) and exits.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- signing (itsdangerous 1.1.0 TimestampSigner with defaults, re-implemented) -------------
#
# Re-implemented with hmac/hashlib instead of importing itsdangerous so the backend has no
# dependency and so the spec's description of the format (§3.2) is itself under test: if
# this token were wrong, every forwarded call would fail with 401.

SALT = b"itsdangerous.Signer"
SIGNED_VALUE = "channelstream"  # what the demos sign; the server never looks at the value


def b64url_nopad(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def derive_key(secret):
    # key_derivation = "django-concat": SHA1(salt + b"signer" + secret)
    return hashlib.sha1(SALT + b"signer" + secret.encode("utf-8")).digest()


def sign(secret, value=SIGNED_VALUE, now=None):
    ts = int(time.time() if now is None else now)
    # big-endian, leading zero bytes stripped (itsdangerous int_to_bytes)
    ts_bytes = ts.to_bytes(8, "big").lstrip(b"\x00")
    signed = value.encode("utf-8") + b"." + b64url_nopad(ts_bytes)
    sig = hmac.new(derive_key(secret), signed, hashlib.sha1).digest()
    return (signed + b"." + b64url_nopad(sig)).decode("ascii")


def self_test():
    # Vectors from the spec §3.2 (cross-checked there against itsdangerous 1.1.0).
    got_key = derive_key("secret").hex()
    want_key = "3a1c28f7aad5a02fe672d24f1003fb52a7312ed7"
    got_tok = sign("secret", now=1700000000)
    want_tok = "channelstream.ZVPxAA.UB9ITnnv9UITu0ka92WJCn1VFsQ"
    ok = got_key == want_key and got_tok == want_tok
    print(json.dumps({"ok": ok, "key": got_key, "token": got_tok}))
    return 0 if ok else 1


# --- channel policy ---------------------------------------------------------------------
#
# A real chat app decides per channel what the push server should do.  Here: channels
# whose name starts with "room" are full chat rooms (presence with user lists, state
# changes, history); every other channel gets the server defaults.  channel_configs only
# take effect for channels that the call creates, which is why the test suite uses fresh
# channel names per run.

ROOM_CONFIG = {
    "notify_presence": True,
    "broadcast_presence_with_user_lists": True,
    "notify_state": True,
    "store_history": True,
    "history_size": 10,
}

PUBLIC_STATE_KEYS = ["status", "color"]


def channel_configs(channels):
    return {c: dict(ROOM_CONFIG) for c in channels if c.startswith("room")}


def fresh_state(username):
    # "private_note" is deliberately not public: it must never show up in presence events.
    return {"status": "online", "color": "c-" + username, "private_note": "only-" + username}


class Upstream:
    def __init__(self, base_url, secret):
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    def call(self, method, path, payload):
        """Signed JSON call; returns (status, body_bytes) for every HTTP outcome."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("x-channelstream-secret", sign(self.secret))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            # 4xx/5xx from the push server are passed to the client as they are
            return err.code, err.read()


def as_list(body):
    # The JS client's message()/edit()/delete() send one object; the REST API wants arrays.
    return body if isinstance(body, list) else [body]


def make_handler(upstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep test output clean; errors go to stderr below
            pass

        def read_json(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            return json.loads(raw.decode("utf-8"))

        def reply(self, status, body):
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route(self, method):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            try:
                body = self.read_json()
            except (ValueError, UnicodeDecodeError):
                return self.reply(400, {"error": "body is not JSON"})
            key = (method, url.path)
            if key == ("POST", "/connect"):
                channels = body.get("channels") or []
                username = body.get("username")
                payload = {
                    "username": username,
                    "channels": channels,
                    "fresh_user_state": fresh_state(username or ""),
                    "user_state": {},
                    # always sent: /connect without it resets the user's public keys
                    "state_public_keys": PUBLIC_STATE_KEYS,
                    "channel_configs": channel_configs(channels),
                    "info": {"return_public_state": True, "include_history": True},
                }
                return self.reply(*upstream.call("POST", "/connect", payload))
            if key in (("POST", "/subscribe"), ("POST", "/unsubscribe")):
                channels = body.get("channels") or []
                payload = {
                    "conn_id": body.get("conn_id"),
                    "channels": channels,
                    "info": {"return_public_state": True},
                }
                if url.path == "/subscribe":
                    payload["channel_configs"] = channel_configs(channels)
                return self.reply(*upstream.call("POST", url.path, payload))
            if key == ("POST", "/user_state"):
                # the client sends {username, conn_id, update_state}; the server wants
                # {user, user_state} (spec §11)
                payload = {"user": body.get("username"), "user_state": body.get("update_state") or {}}
                return self.reply(*upstream.call("POST", "/user_state", payload))
            if url.path == "/message" and method in ("POST", "PATCH", "DELETE"):
                return self.reply(*upstream.call(method, "/message", as_list(body)))
            if key == ("POST", "/disconnect"):
                conn_id = body.get("conn_id") or (query.get("conn_id") or [None])[0]
                return self.reply(*upstream.call("POST", "/disconnect", {"conn_id": conn_id}))
            if url.path == "/info" and method in ("GET", "POST"):
                return self.reply(*upstream.call("POST", "/info", body or None))
            return self.reply(404, {"error": "no route", "method": method, "path": url.path})

        def handle_method(self, method):
            try:
                self.route(method)
            except Exception as exc:  # report instead of hanging the client
                print("demo_backend error: %r" % (exc,), file=sys.stderr, flush=True)
                try:
                    self.reply(502, {"error": repr(exc)})
                except OSError:
                    pass

        def do_GET(self):
            self.handle_method("GET")

        def do_POST(self):
            self.handle_method("POST")

        def do_PATCH(self):
            self.handle_method("PATCH")

        def do_DELETE(self):
            self.handle_method("DELETE")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="push server base URL")
    parser.add_argument("--secret", default="secret", help="push server API secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Upstream(args.server, args.secret)))
    server.daemon_threads = True
    print("LISTENING %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
