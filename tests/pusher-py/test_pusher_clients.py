"""pysher 1.0.8 (websocket client) and the PyPI pusher 3.3.4 server SDK against a running Herald.

User sign-in: pysher has no signin(), so the test sends `pusher:signin` on pysher's connection
with the SDK's authenticate_user() signature, subscribes to `#server-to-user-<id>` as pusher-js
does, then uses the SDK's send_to_user() and terminate_user_connections().

run.sh starts Herald with a numeric default app id (the PyPI SDK accepts no other) and passes
PUSHER_HOST / PUSHER_PORT / PUSHER_APP_ID; for the webhook test it starts a second Herald
(PUSHER_WEBHOOK_HERALD_PORT) whose default app sends webhooks to PUSHER_WEBHOOK_PORT, where the
test listens. Every wait is a queue read with a deadline.
"""

import http.server
import json
import os
import queue
import threading
import time

import pusher
import pysher
import pytest

HOST = os.environ.get("PUSHER_HOST", "127.0.0.1")
PORT = int(os.environ.get("PUSHER_PORT", "6001"))
APP_ID = os.environ.get("PUSHER_APP_ID", "12345")
KEY, SECRET = "app-key", "app-secret"
DEADLINE = 5.0
WEBHOOK_HERALD_PORT = int(os.environ.get("PUSHER_WEBHOOK_HERALD_PORT", "0"))
WEBHOOK_PORT = int(os.environ.get("PUSHER_WEBHOOK_PORT", "0"))


class Client:
    """A pysher client whose every frame (connection or channel) lands in one queue.

    pysher only routes a channel frame to a Channel object created after it sent the subscribe,
    so a fast reply could be lost; wrapping the connection's event handler records it first.
    """

    def __init__(self, secret="", port=PORT, user_data=None):
        self.events = queue.Queue()
        self.p = pysher.Pusher(KEY, secure=False, custom_host=HOST, port=port, secret=secret,
                               user_data=user_data)
        conn = self.p.connection
        inner = conn.event_handler

        def record(event, data, channel):
            self.events.put((channel, event, data))
            inner(event, data, channel)

        conn.event_handler = record
        conn.bind("pusher:connection_established", lambda d: self.events.put((None, "established", d)))
        conn.bind("pusher:error", lambda d: self.events.put((None, "pusher:error", d)))
        for ev in ("pusher:signin_success", "pusher_internal:watchlist_events"):
            conn.bind(ev, lambda d, ev=ev: self.events.put((None, ev, d)))
        self.p.connect()

    def expect(self, channel, event, timeout=DEADLINE):
        """The data of the next frame for (channel, event); other frames seen meanwhile are kept."""
        end = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timeout waiting for {event} on {channel}; saw {skipped}")
                try:
                    item = self.events.get(timeout=left)
                except queue.Empty:
                    continue
                if item[0] == channel and item[1] == event:
                    return item[2]
                skipped.append(item)
        finally:
            for item in skipped:
                self.events.put(item)

    def none_of(self, channel, event, window):
        """Assert no (channel, event) frame arrives within `window` seconds (absence check)."""
        try:
            got = self.expect(channel, event, timeout=window)
        except AssertionError:
            return
        raise AssertionError(f"unexpected {event} on {channel}: {got!r}")

    def established(self):
        data = json.loads(self.expect(None, "established"))
        return data

    def signin(self, sdk, user):
        """Sign in as `user` (a dict with "id") with the SDK's authenticate_user signature."""
        socket_id = self.p.connection.socket_id
        self.p.connection.send_event("pusher:signin", sdk.authenticate_user(socket_id, user))
        data = self.expect(None, "pusher:signin_success")
        assert json.loads(data["user_data"]) == user, data
        ch = "#server-to-user-%s" % user["id"]
        self.subscribe(ch)
        self.expect(ch, "pusher_internal:subscription_succeeded")
        return ch

    def subscribe(self, channel, auth=None):
        self.p.subscribe(channel, auth=auth)

    def close(self):
        self.p.disconnect(timeout=2)


@pytest.fixture
def clients():
    made = []

    def make(**kw):
        c = Client(**kw)
        made.append(c)
        c.established()
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="module")
def sdk():
    return pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET, ssl=False, host=HOST, port=PORT)


def test_pysher_connects_and_gets_connection_established():
    c = Client()
    try:
        data = c.established()
        assert isinstance(data["socket_id"], str)
        assert data["socket_id"].replace(".", "", 1).isdigit(), data
        assert isinstance(data.get("activity_timeout"), int), data
        assert c.p.connection.socket_id == data["socket_id"]
    finally:
        c.close()


def test_public_subscribe_and_sdk_trigger_delivers(clients, sdk):
    c = clients()
    c.subscribe("py-public")
    c.expect("py-public", "pusher_internal:subscription_succeeded")
    assert sdk.trigger("py-public", "greet", {"hello": "world"}) == {}
    assert json.loads(c.expect("py-public", "greet")) == {"hello": "world"}


def test_sdk_trigger_to_several_channels(clients, sdk):
    c = clients()
    for ch in ("py-a", "py-b"):
        c.subscribe(ch)
        c.expect(ch, "pusher_internal:subscription_succeeded")
    sdk.trigger(["py-a", "py-b", "py-nobody"], "multi", "plain text")
    assert c.expect("py-a", "multi") == "plain text"
    assert c.expect("py-b", "multi") == "plain text"


def test_private_channel_with_sdk_authenticate(clients, sdk):
    c = clients()
    sid = c.p.connection.socket_id
    auth = sdk.authenticate(channel="private-py", socket_id=sid)
    assert auth["auth"].startswith(KEY + ":")
    c.subscribe("private-py", auth=auth["auth"])
    c.expect("private-py", "pusher_internal:subscription_succeeded")
    sdk.trigger("private-py", "secret", {"n": 1})
    assert json.loads(c.expect("private-py", "secret")) == {"n": 1}


def test_private_channel_signed_by_pysher_itself(clients, sdk):
    c = clients(secret=SECRET)
    c.subscribe("private-self-signed")
    c.expect("private-self-signed", "pusher_internal:subscription_succeeded")


def test_private_channel_wrong_signature_refused(clients, sdk):
    c = clients()
    other = sdk.authenticate(channel="private-py-x", socket_id="1.1")["auth"]  # another socket's
    c.subscribe("private-py-x", auth=other)
    err = c.expect("private-py-x", "pusher:subscription_error")
    assert err["status"] == 401, err
    sdk.trigger("private-py-x", "leak", "x")
    c.none_of("private-py-x", "leak", 0.5)
    c.subscribe("private-py-x", auth=KEY + ":" + "0" * 64)
    c.expect("private-py-x", "pusher:subscription_error")


def test_sdk_trigger_excludes_socket_id(clients, sdk):
    a, b = clients(), clients()
    for c in (a, b):
        c.subscribe("py-excl")
        c.expect("py-excl", "pusher_internal:subscription_succeeded")
    sdk.trigger("py-excl", "ev", "one", socket_id=a.p.connection.socket_id)
    assert b.expect("py-excl", "ev") == "one"
    # a second, unexcluded event is a marker: once a sees it, the first cannot still be queued
    sdk.trigger("py-excl", "marker", "two")
    assert a.expect("py-excl", "marker") == "two"
    a.none_of("py-excl", "ev", 0.01)


def test_unsubscribe_stops_delivery(clients, sdk):
    c = clients()
    c.subscribe("py-unsub")
    c.subscribe("py-keep")
    c.expect("py-unsub", "pusher_internal:subscription_succeeded")
    c.expect("py-keep", "pusher_internal:subscription_succeeded")
    c.p.unsubscribe("py-unsub")
    # a ping round-trip orders the unsubscribe before the triggers (one socket, in order)
    pong = threading.Event()
    c.p.connection.bind("pusher:pong", lambda _d: pong.set())
    c.p.connection.send_ping()
    assert pong.wait(DEADLINE)
    sdk.trigger(["py-unsub", "py-keep"], "after", "x")
    assert c.expect("py-keep", "after") == "x"
    c.none_of("py-unsub", "after", 0.3)


def test_sdk_refuses_wrong_secret(sdk):
    bad = pusher.Pusher(app_id=APP_ID, key=KEY, secret="nope", ssl=False, host=HOST, port=PORT)
    with pytest.raises(pusher.errors.PusherBadAuth):
        bad.trigger("py-public", "x", "y")


def test_sdk_trigger_batch(clients, sdk):
    c = clients()
    c.subscribe("py-batch")
    c.expect("py-batch", "pusher_internal:subscription_succeeded")
    sdk.trigger_batch([{"channel": "py-batch", "name": "b1", "data": {"n": 1}},
                       {"channel": "py-batch", "name": "b2", "data": "two"}])
    assert json.loads(c.expect("py-batch", "b1")) == {"n": 1}
    assert c.expect("py-batch", "b2") == "two"


def test_sdk_channels_info(clients, sdk):
    c = clients()
    c.subscribe("py-info")
    c.expect("py-info", "pusher_internal:subscription_succeeded")
    # the SDK sends body_md5 of the empty body on GET too; the server must accept it
    info = sdk.channels_info(prefix_filter="py-info")
    assert info == {"channels": {"py-info": {}}}, info
    # as Pusher: a channel list offers only user_count, and only for presence- prefixes
    with pytest.raises(pusher.errors.PusherBadRequest):
        sdk.channels_info(prefix_filter="py-info", attributes=["subscription_count"])
    one = sdk.channel_info("py-info", attributes=["subscription_count"])
    assert one == {"occupied": True, "subscription_count": 1}, one


def test_signin_send_to_user_and_terminate(clients, sdk):
    a, b, keep = clients(), clients(), clients()
    ch = a.signin(sdk, {"id": "py-1", "user_info": {"name": "One"}})
    b.signin(sdk, {"id": "py-1"})
    keep_ch = keep.signin(sdk, {"id": "py-keep"})
    sdk.send_to_user("py-1", "note", {"x": 1})
    for c in (a, b):
        assert json.loads(c.expect(ch, "note")) == {"x": 1}
    keep.none_of(keep_ch, "note", 0.3)
    assert sdk.terminate_user_connections("py-1") == {}
    for c in (a, b):
        err = c.expect(None, "pusher:error")
        assert err == {"code": 4009, "message": "You got disconnected by the app."}, err
    # 4000-4099: pysher disconnects and does not come back; the other user stays.
    deadline = time.monotonic() + DEADLINE
    while a.p.connection.state != "disconnected" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.p.connection.state == "disconnected"
    sdk.send_to_user("py-keep", "still", "here")
    assert keep.expect(keep_ch, "still") == "here"


def test_signin_watchlist_online_offline(clients, sdk):
    w = clients()
    w.signin(sdk, {"id": "py-watcher", "watchlist": ["py-w"]})
    u = clients()
    u.signin(sdk, {"id": "py-w"})
    ev = json.loads(w.expect(None, "pusher_internal:watchlist_events"))
    assert ev == {"events": [{"name": "online", "user_ids": ["py-w"]}]}, ev
    u.close()
    ev = json.loads(w.expect(None, "pusher_internal:watchlist_events"))
    assert ev == {"events": [{"name": "offline", "user_ids": ["py-w"]}]}, ev


def test_presence_two_users_one_with_two_connections(clients, sdk):
    """pysher signs presence with json.dumps spacing; the server must check the bytes it got."""
    ch = "presence-py-room"
    a = clients(secret=SECRET, user_data={"user_id": "py-a", "user_info": {"name": "A"}})
    a.subscribe(ch)
    first = json.loads(a.expect(ch, "pusher_internal:subscription_succeeded"))
    assert first["presence"]["count"] == 1 and first["presence"]["ids"] == ["py-a"], first
    assert first["presence"]["hash"] == {"py-a": {"name": "A"}}, first
    b1 = clients(secret=SECRET, user_data={"user_id": "py-b", "user_info": {"name": "B"}})
    b1.subscribe(ch)
    got = json.loads(b1.expect(ch, "pusher_internal:subscription_succeeded"))
    assert got["presence"]["count"] == 2 and sorted(got["presence"]["ids"]) == ["py-a", "py-b"], got
    added = json.loads(a.expect(ch, "pusher_internal:member_added"))
    assert added == {"user_id": "py-b", "user_info": {"name": "B"}}, added
    # the same user on a second connection: counted once, no second member_added
    b2 = clients(secret=SECRET, user_data={"user_id": "py-b", "user_info": {"name": "B"}})
    b2.subscribe(ch)
    got = json.loads(b2.expect(ch, "pusher_internal:subscription_succeeded"))
    assert got["presence"]["count"] == 2, got
    a.none_of(ch, "pusher_internal:member_added", 0.3)
    users = sdk.users_info(ch)
    assert sorted(u["id"] for u in users["users"]) == ["py-a", "py-b"], users
    # one of py-b's connections leaves: still a member; the last one leaves: member_removed
    b1.close()
    a.none_of(ch, "pusher_internal:member_removed", 0.3)
    b2.close()
    removed = json.loads(a.expect(ch, "pusher_internal:member_removed"))
    assert removed == {"user_id": "py-b"}, removed


def test_presence_refuses_forged_channel_data(clients):
    """A signature over other channel_data than the one sent is refused."""
    ch = "presence-py-forged"
    c = clients(secret=SECRET, user_data={"user_id": "py-x"})
    forged = {"channel": ch, "auth": c.p._generate_presence_token(ch),
              "channel_data": json.dumps({"user_id": "py-admin"})}
    c.p.connection.send_event("pusher:subscribe", forged)
    err = c.expect(ch, "pusher:subscription_error")
    if isinstance(err, str):
        err = json.loads(err)
    assert err["status"] == 401 and err["type"] == "AuthError", err
    c.none_of(ch, "pusher_internal:subscription_succeeded", 0.3)


class _Hooks(http.server.BaseHTTPRequestHandler):
    """Puts (headers, body) of each POST in the server's queue and answers 200."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        self.server.hooks.put((self.headers, body))  # looked up case-insensitively
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_validation_round_trip(clients, sdk):
    if not WEBHOOK_PORT:
        pytest.skip("run.sh passes PUSHER_WEBHOOK_PORT and starts a Herald that sends webhooks")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), _Hooks)
    server.hooks = queue.Queue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        c = clients(port=WEBHOOK_HERALD_PORT)
        c.subscribe("py-hooks")
        c.expect("py-hooks", "pusher_internal:subscription_succeeded")
        c.subscribe("cache-py-hooks")
        c.expect("cache-py-hooks", "pusher_internal:subscription_succeeded")
        c.expect("cache-py-hooks", "pusher:cache_miss")
        c.p.unsubscribe("py-hooks")
        want = [("channel_occupied", "py-hooks"), ("channel_occupied", "cache-py-hooks"),
                ("cache_miss", "cache-py-hooks"), ("channel_vacated", "py-hooks")]
        got = []
        while len(got) < len(want):
            headers, body = server.hooks.get(timeout=DEADLINE)
            key, sig = headers.get("X-Pusher-Key"), headers.get("X-Pusher-Signature")
            assert headers.get("Content-Type") == "application/json"
            data = sdk.validate_webhook(key=key, signature=sig, body=body)
            assert data is not None, f"validate_webhook refused {body!r}"
            assert len(data["events"]) == 1, "one event per request (batching is off)"
            got += [(e["name"], e["channel"]) for e in data["events"]]
            # The check can fail: another body, key or secret is refused.
            assert sdk.validate_webhook(key=key, signature=sig, body=body + " ") is None
            assert sdk.validate_webhook(key="other", signature=sig, body=body) is None
            other = pusher.Pusher(app_id=APP_ID, key=KEY, secret="nope", ssl=False, host=HOST, port=PORT)
            assert other.validate_webhook(key=key, signature=sig, body=body) is None
        assert got == want
    finally:
        server.shutdown()
        server.server_close()
