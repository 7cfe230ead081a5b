"""The scripted scenarios of the differential suite, each run once against every server.

A scenario drives raw sockets and the signed HTTP API through `Ctx` and leaves a normalised
transcript (`wire.py`); the runner compares the transcripts line by line. Channel names are
fixed, since each scenario runs on a fresh set of channels of its own (the prefix `d<n>-`).
"""

import json
import secrets
import time

from wire import Api, KEY, Norm, PROTO, Sock, presence_auth, private_auth, user_auth

SCENARIOS = []


def scenario(name):
    def reg(f):
        SCENARIOS.append((name, f))
        return f
    return reg


class Ctx:
    """One scenario run against one server."""

    def __init__(self, base, tag):
        # A fresh nonce per run keeps runs apart on a server (cache channels remember);
        # transcripts show the tag without it.
        nonce = secrets.token_hex(3)
        self.base, self.tag = base, f"{tag}x{nonce}"
        self.norm, self.log = Norm({f"x{nonce}": ""}), []
        self.api = Api(base, self.norm, self.log)
        self.socks = []

    def ch(self, name):
        """A channel name private to this scenario run (prefixes kept in front)."""
        for p in ("private-encrypted-cache-", "private-encrypted-", "private-cache-",
                  "presence-cache-", "presence-", "private-", "cache-", "#"):
            if name.startswith(p):
                return f"{p}{self.tag}-{name[len(p):]}"
        return f"{self.tag}-{name}"

    def sock(self, name, path=None, established=True):
        s = Sock(self.base, self.norm, self.log, name, path)
        self.socks.append(s)
        if established:
            s.established()
        return s

    def note(self, text):
        self.log.append(f"# {text}")

    def close_all(self):
        for s in self.socks:
            s.close()


def join(s, channel, user_id, info=None, n=1):
    cd = json.dumps({"user_id": user_id, "user_info": info or {"name": user_id}})
    return s.subscribe(channel, presence_auth(s.sid, channel, cd), cd, n=n)


@scenario("connect: connection_established shape")
def s_connect(c):
    c.sock("a")


@scenario("ping: pusher:ping (object and pysher's empty string data), RFC 6455 ping")
def s_ping(c):
    a = c.sock("a")
    a.send({"event": "pusher:ping", "data": {}})
    a.expect()
    a.send({"event": "pusher:ping", "data": ""})
    a.expect()
    a.ping_frame()
    a.expect()


@scenario("subscribe: public, twice, then unsubscribe stops delivery")
def s_public(c):
    a = c.sock("a")
    ch = c.ch("pub")
    a.subscribe(ch, "")
    a.subscribe(ch, "")
    c.api.post("events", {"name": "e1", "channel": ch, "data": "one"})
    a.expect()
    a.send({"event": "pusher:unsubscribe", "data": {"channel": ch}})
    a.silent()
    c.api.post("events", {"name": "e2", "channel": ch, "data": "two"})
    a.silent()


@scenario("subscribe: private with good, wrong, foreign-socket and missing auth")
def s_private(c):
    a, b = c.sock("a"), c.sock("b")
    ch = c.ch("private-room")
    a.subscribe(ch, private_auth(a.sid, ch))
    b.subscribe(ch, private_auth(b.sid, ch, secret="wrong-secret"))
    b.subscribe(ch, private_auth(a.sid, ch))
    b.subscribe(ch)
    c.note("b still alive")
    b.send({"event": "pusher:ping", "data": {}})
    b.expect()


@scenario("subscribe: private-encrypted good and bad auth, payload relayed untouched")
def s_encrypted(c):
    a, b = c.sock("a"), c.sock("b")
    ch = c.ch("private-encrypted-vault")
    a.subscribe(ch, private_auth(a.sid, ch))
    b.subscribe(ch, "app-key:" + "0" * 64)
    blob = json.dumps({"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})
    c.api.post("events", {"name": "secret", "channel": ch, "data": blob})
    a.expect()
    b.silent()


@scenario("subscribe: presence good, bad signature, channel_data without user_id")
def s_presence_auth(c):
    a, b, d = c.sock("a"), c.sock("b"), c.sock("d")
    ch = c.ch("presence-lobby")
    join(a, ch, "alice")
    cd = json.dumps({"user_id": "bob"})
    b.subscribe(ch, presence_auth(b.sid, ch, cd, secret="nope"), cd)
    cd = json.dumps({"user_info": {"x": 1}})
    d.subscribe(ch, presence_auth(d.sid, ch, cd), cd)
    c.note("a saw no member_added for the refused ones")
    a.silent()


@scenario("subscribe: cache channel, miss then replay of the last HTTP event")
def s_cache(c):
    a = c.sock("a")
    ch = c.ch("cache-news")
    a.subscribe(ch, "", n=2)
    c.api.post("events", {"name": "headline", "channel": ch, "data": "v1"})
    a.expect()
    c.api.post("events", {"name": "headline", "channel": ch, "data": "v2"})
    a.expect()
    b = c.sock("b")
    b.subscribe(ch, "", n=2)


@scenario("presence: two users, one with two connections (member_added/removed, counts)")
def s_presence_members(c):
    ch = c.ch("presence-room")
    a1 = c.sock("alice1")
    join(a1, ch, "alice")
    b = c.sock("bob")
    join(b, ch, "bob")
    a1.expect()
    a2 = c.sock("alice2")
    join(a2, ch, "alice")
    c.note("bob sees no second member_added for alice")
    b.silent()
    c.api.get(f"channels/{ch}", {"info": "user_count,subscription_count"})
    c.api.get(f"channels/{ch}/users")
    a1.send({"event": "pusher:unsubscribe", "data": {"channel": ch}})
    c.note("alice still has a connection: no member_removed")
    b.silent()
    a2.close()
    b.expect()
    c.api.get(f"channels/{ch}/users")


@scenario("presence: numeric user_id and user_info in member_added")
def s_presence_numeric(c):
    ch = c.ch("presence-num")
    a = c.sock("a")
    join(a, ch, 7, {"n": 1})
    b = c.sock("b")
    join(b, ch, 8, {"n": 2})
    a.expect()


@scenario("client events: private channel, not echoed to the sender")
def s_client_private(c):
    ch = c.ch("private-chat")
    a, b = c.sock("a"), c.sock("b")
    a.subscribe(ch, private_auth(a.sid, ch))
    b.subscribe(ch, private_auth(b.sid, ch))
    a.send({"event": "client-typing", "channel": ch, "data": {"typing": True}})
    b.expect()
    a.silent()
    a.send({"event": "client-str", "channel": ch, "data": "plain text"})
    b.expect()


@scenario("client events: presence channel carries user_id")
def s_client_presence(c):
    ch = c.ch("presence-chat")
    a, b = c.sock("a"), c.sock("b")
    join(a, ch, "u1")
    join(b, ch, "u2")
    a.expect()
    a.send({"event": "client-hi", "channel": ch, "data": {"x": 1}})
    b.expect()
    a.silent()


@scenario("client events: refused on public, encrypted and unsubscribed channels")
def s_client_refused(c):
    a, b = c.sock("a"), c.sock("b")
    pub, enc, priv = c.ch("pub"), c.ch("private-encrypted-e"), c.ch("private-other")
    a.subscribe(pub, "")
    b.subscribe(pub, "")
    a.send({"event": "client-x", "channel": pub, "data": {}})
    a.expect(0)
    b.silent()
    a.subscribe(enc, private_auth(a.sid, enc))
    b.subscribe(enc, private_auth(b.sid, enc))
    a.send({"event": "client-x", "channel": enc, "data": {}})
    a.expect(0)
    b.silent()
    b.subscribe(priv, private_auth(b.sid, priv))
    a.send({"event": "client-x", "channel": priv, "data": {}})
    a.expect(0)
    b.silent()


@scenario("client events: 11 in one second (limit 10)")
def s_client_rate(c):
    ch = c.ch("private-flood")
    a, b = c.sock("a"), c.sock("b")
    a.subscribe(ch, private_auth(a.sid, ch))
    b.subscribe(ch, private_auth(b.sid, ch))
    t0 = time.monotonic()
    for i in range(11):
        a.send({"event": "client-n", "channel": ch, "data": {"i": i}}, note=f"client-n #{i}")
    sent_in = time.monotonic() - t0
    c.note("all 11 sent within one second" if sent_in < 0.9 else "SLOW: not within one second")
    b.expect(10)
    a.expect(0)


@scenario("HTTP events: one channel, several channels, socket_id exclusion")
def s_http_events(c):
    ch1, ch2 = c.ch("one"), c.ch("two")
    a, b = c.sock("a"), c.sock("b")
    a.subscribe(ch1, "")
    b.subscribe(ch1, "")
    b.subscribe(ch2, "")
    c.api.post("events", {"name": "e", "channels": [ch1, ch2], "data": json.dumps({"k": 1})})
    a.expect()
    b.expect(2, any_order=True)
    c.api.post("events", {"name": "x", "channel": ch1, "data": "skip-a", "socket_id": a.sid})
    b.expect()
    a.silent()
    c.api.post("events", {"name": "obj", "channel": ch1, "data": {"not": "a string"}})
    a.expect()


@scenario("HTTP events: info=subscription_count,user_count")
def s_http_events_info(c):
    pub, pres = c.ch("counted"), c.ch("presence-counted")
    a = c.sock("a")
    a.subscribe(pub, "")
    join(a, pres, "u1")
    c.api.post("events", {"name": "e", "channels": [pub], "data": "d",
                          "info": "subscription_count"})
    c.api.post("events", {"name": "e", "channels": [pres], "data": "d",
                          "info": "subscription_count,user_count"})
    c.api.post("events", {"name": "e", "channels": [pub, c.ch("empty")], "data": "d",
                          "info": "subscription_count"})
    a.expect(3)


@scenario("HTTP batch_events: without and with info")
def s_batch(c):
    ch1, ch2 = c.ch("b1"), c.ch("b2")
    a = c.sock("a")
    a.subscribe(ch1, "")
    c.api.post("batch_events", {"batch": [
        {"name": "e1", "channel": ch1, "data": "1"},
        {"name": "e2", "channel": ch2, "data": "2"}]})
    a.expect()
    c.api.post("batch_events", {"batch": [
        {"name": "e3", "channel": ch1, "data": "3", "info": "subscription_count"},
        {"name": "e4", "channel": ch2, "data": "4"}]})
    a.expect()


@scenario("HTTP channels: list, prefix filter, info, one channel, users")
def s_channels(c):
    pub, pres = c.ch("listed"), c.ch("presence-listed")
    a, b = c.sock("a"), c.sock("b")
    a.subscribe(pub, "")
    join(a, pres, "u1")
    join(b, pres, "u2")
    a.expect()
    c.api.get("channels", {"filter_by_prefix": c.tag})
    c.api.get("channels", {"filter_by_prefix": f"presence-{c.tag}", "info": "user_count"})
    c.api.get("channels", {"filter_by_prefix": c.tag, "info": "user_count"})
    c.api.get(f"channels/{pub}")
    c.api.get(f"channels/{pub}", {"info": "subscription_count"})
    c.api.get(f"channels/{pub}", {"info": "user_count"})
    c.api.get(f"channels/{pres}", {"info": "user_count,subscription_count"})
    c.api.get(f"channels/{c.ch('nobody')}", {"info": "subscription_count"})
    c.api.get(f"channels/{pres}/users")
    c.api.get(f"channels/{pub}/users")


@scenario("HTTP limits: 100/101 channels, 10/11 batch, 10 KB data and one byte more")
def s_limits(c):
    chans = [c.ch(f"l{i}") for i in range(101)]
    c.api.post("events", {"name": "e", "channels": chans[:100], "data": "x"}, note="events 100 channels")
    c.api.post("events", {"name": "e", "channels": chans, "data": "x"}, note="events 101 channels")
    item = {"name": "e", "channel": chans[0], "data": "x"}
    c.api.post("batch_events", {"batch": [item] * 10}, note="batch of 10")
    c.api.post("batch_events", {"batch": [item] * 11}, note="batch of 11")
    c.api.post("events", {"name": "e", "channel": chans[0], "data": "x" * 10240}, note="data 10240 B")
    c.api.post("events", {"name": "e", "channel": chans[0], "data": "x" * 10241}, note="data 10241 B")
    c.api.post("events", {"name": "e" * 201, "channel": chans[0], "data": "x"}, note="name 201 chars")


@scenario("HTTP signatures: wrong, missing, wrong key, wrong body_md5, body_md5 on GET")
def s_signatures(c):
    ev = {"name": "e", "channel": c.ch("sig"), "data": "x"}
    c.api.post("events", ev, signature="0" * 64, note="events, wrong signature")
    c.api.post("events", ev, secret="other", note="events, signed with another secret")
    c.api.post("events", ev, key="other-key", note="events, another auth_key")
    c.api.post("events", ev, body_md5="0" * 32, note="events, wrong body_md5")
    c.api.post("events", ev, body_md5=False, note="events, no body_md5")
    c.api.post("events", ev, version="2.0", note="events, auth_version 2.0")
    q = {"filter_by_prefix": c.tag}
    c.api.get("channels", q, note="channels, no body_md5 (npm SDK)")
    c.api.get("channels", q, body_md5="d41d8cd98f00b204e9800998ecf8427e",
              note="channels, body_md5 of the empty body (PyPI SDK)")
    c.api.get("channels", q, body_md5="0" * 32, note="channels, wrong body_md5")


@scenario("HTTP timestamps: 500 s old, 610 s old, 610 s ahead")
def s_timestamps(c):
    ev = {"name": "e", "channel": c.ch("ts"), "data": "x"}
    now = int(time.time())
    c.api.post("events", ev, timestamp=now - 500, note="events, 500 s old")
    c.api.post("events", ev, timestamp=now - 610, note="events, 610 s old")
    c.api.post("events", ev, timestamp=now + 610, note="events, 610 s ahead")
    c.api.post("events", ev, timestamp="yesterday", note="events, timestamp not a number")


@scenario("HTTP bad bodies: not JSON, no name, no data, no channel, bad channel name")
def s_bad_bodies(c):
    c.api.post("events", None, raw_body=b"{not json", note="events, not JSON")
    c.api.post("events", {"channel": c.ch("x"), "data": "x"}, note="events, no name")
    c.api.post("events", {"name": "e", "channel": c.ch("x")}, note="events, no data")
    c.api.post("events", {"name": "e", "data": "x"}, note="events, no channel")
    c.api.post("events", {"name": "e", "channel": "bad name!", "data": "x"}, note="events, bad channel name")
    c.api.post("events", {"name": "e", "channel": "x" * 165, "data": "x"}, note="events, 165-char channel")
    c.api.post("batch_events", None, raw_body=b"[]", note="batch_events, not an object")
    c.api.post("batch_events", {"batch": []}, note="batch_events, empty batch")


@scenario("unknown app: websocket key, HTTP app id, unknown endpoint")
def s_unknown_app(c):
    s = c.sock("nokey", path=f"/app/no-such-key{PROTO}", established=False)
    s.expect(2)
    c.api.post("events", {"name": "e", "channel": "c", "data": "x"}, app_id="999",
               note="events for app 999")
    c.api.get("nothing-here", note="GET unknown endpoint")


@scenario("bad channel names: spaces, 165 chars, 164 chars, '#' names, colon")
def s_bad_names(c):
    a = c.sock("a")
    a.subscribe("bad name!")
    a.subscribe("x" * 165)
    a.subscribe(c.ch("y") + "y" * (164 - len(c.ch("y"))))
    a.subscribe("#server-to-user-1")
    a.subscribe("#anything")
    a.subscribe("a:b")
    a.send({"event": "pusher:ping", "data": {}})
    a.expect()


@scenario("bad frames: not JSON, array, no event, no channel, binary; socket stays")
def s_bad_frames(c):
    a = c.sock("a")
    a.send("not json", raw=True)
    a.expect(0)
    a.send("[1,2]", raw=True)
    a.expect(0)
    a.send({"data": {}})
    a.expect(0)
    a.send({"event": "pusher:subscribe", "data": {}})
    a.expect(0)
    a.send({"event": "pusher:unknown", "data": {}})
    a.expect(0)
    a.send_binary(b"\x00\x01binary")
    a.expect(0)
    a.send({"event": "pusher:ping", "data": {}})
    a.expect()


@scenario("protocol versions: 7, 6 (pysher), 99, none, not a number")
def s_protocol(c):
    for name, q in [("p7", "?protocol=7"), ("p6", "?client=Pysher&version=1.0.7&protocol=6"),
                    ("p99", "?protocol=99"), ("none", "?client=js"), ("nan", "?protocol=x")]:
        s = c.sock(name, path=f"/app/{KEY}{q}", established=False)
        s.expect(1)


@scenario("sign-in: pusher:signin good, then bad signature")
def s_signin(c):
    a = c.sock("a")
    ud = json.dumps({"id": "user-1", "user_info": {"name": "A"}})
    a.send({"event": "pusher:signin", "data": {"auth": user_auth(a.sid, ud), "user_data": ud}})
    a.expect()
    b = c.sock("b")
    b.send({"event": "pusher:signin", "data": {"auth": user_auth(b.sid, ud, "bad"), "user_data": ud}})
    b.expect(2)


@scenario("server-to-user: #server-to-user-<id> after sign-in, HTTP event to it")
def s_server_to_user(c):
    a = c.sock("a")
    uid = f"{c.tag}-u"
    ud = json.dumps({"id": uid})
    a.send({"event": "pusher:signin", "data": {"auth": user_auth(a.sid, ud), "user_data": ud}})
    a.expect()
    ch = f"#server-to-user-{uid}"
    a.subscribe(ch, "")
    c.api.post("events", {"name": "direct", "channels": [ch], "data": "for you"})
    a.expect()
    b = c.sock("b")
    b.subscribe(ch, "")
    c.note("a socket not signed in as that user gets nothing")
    c.api.post("events", {"name": "direct2", "channels": [ch], "data": "again"})
    a.expect()
    b.silent()


@scenario("terminate_connections: the signed-in user's sockets are closed")
def s_terminate(c):
    a, b = c.sock("a"), c.sock("b")
    uid = f"{c.tag}-t"
    ud = json.dumps({"id": uid})
    a.send({"event": "pusher:signin", "data": {"auth": user_auth(a.sid, ud), "user_data": ud}})
    a.expect()
    c.api.post(f"users/{uid}/terminate_connections", {})
    a.expect(2)
    b.send({"event": "pusher:ping", "data": {}})
    b.expect()


@scenario("HTTP channels: info=subscription_count on the list, info=cache on a cache channel")
def s_channels_extra(c):
    pub, cache = c.ch("extra"), c.ch("cache-extra")
    a = c.sock("a")
    a.subscribe(pub, "")
    a.subscribe(cache, "", n=2)
    c.api.post("events", {"name": "e", "channel": cache, "data": "kept"})
    a.expect()
    c.api.get("channels", {"filter_by_prefix": c.tag, "info": "subscription_count"})
    c.api.get(f"channels/{cache}", {"info": "cache"})


@scenario("presence: user_id of 129 bytes, channel_data over 1 KB, 101st member")
def s_presence_limits(c):
    ch = c.ch("presence-limits")
    a = c.sock("a")
    join(a, ch, "u" * 129)
    b = c.sock("b")
    join(b, ch, "big", {"blob": "x" * 3000})
    socks = []
    for i in range(100):
        s = Sock(c.base, c.norm, [], f"m{i}")
        s.established()
        join(s, ch, f"member-{i}")
        socks.append(s)
    c.socks.extend(socks)
    c.note("100 members joined (their frames not logged)")
    last = c.sock("m100")
    join(last, ch, "member-100")
    c.api.get(f"channels/{ch}", {"info": "user_count"})


@scenario("watchlist: online when a watched user signs in, offline when it leaves")
def s_watchlist(c):
    a = c.sock("watcher")
    friend = f"{c.tag}-friend"
    ud = json.dumps({"id": f"{c.tag}-w", "watchlist": [friend]})
    a.send({"event": "pusher:signin", "data": {"auth": user_auth(a.sid, ud), "user_data": ud}})
    a.expect()
    b = c.sock("friend")
    ud2 = json.dumps({"id": friend})
    b.send({"event": "pusher:signin", "data": {"auth": user_auth(b.sid, ud2), "user_data": ud2}})
    b.expect()
    a.expect()
    b.close()
    a.expect()


@scenario("sign-in: a second identity on one socket, the same one again")
def s_signin_twice(c):
    a = c.sock("a")
    for uid in ("first", "first", "second"):
        ud = json.dumps({"id": f"{c.tag}-{uid}"})
        a.send({"event": "pusher:signin", "data": {"auth": user_auth(a.sid, ud), "user_data": ud}})
        a.expect()


@scenario("client events: an app that does not enable them")
def s_client_off(c):
    path = f"/app/quiet-key{PROTO}"
    ch = c.ch("private-quiet")
    a = c.sock("a", path=path)
    b = c.sock("b", path=path)
    a.subscribe(ch, private_auth(a.sid, ch, secret="quiet-secret").replace(KEY, "quiet-key", 1))
    b.subscribe(ch, private_auth(b.sid, ch, secret="quiet-secret").replace(KEY, "quiet-key", 1))
    a.send({"event": "client-x", "channel": ch, "data": {}})
    a.expect(0)
    b.silent()
