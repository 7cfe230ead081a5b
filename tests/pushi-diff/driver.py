#!/usr/bin/env python3
"""Differential scenario driver: the same scripted Pushi sessions (raw websocket frames + REST)
against two servers, a reference (the real pushi-service 0.6.10) and a candidate (Herald, or a
second reference in A/A mode), then a per-scenario table.

Each scenario produces a transcript per server: every frame each connection received (in order
per connection), every close or drop, every REST status and body, normalised so that values that
are random by design compare equal: socket ids become <sid:A>, other UUIDs (mids, REST uids)
<uuid#N> by first appearance, `timestamp`/`created`/`modified`/`date`/`_id` placeholders, the
app's credentials and session token <app_id>/<app_key>/<app_secret>/<token>, and `members`
objects sorted by user id (a set). Strings that hold JSON (`data`, `member`) are parsed and
compared as values, with their serialisation style (Python's json.dumps, compact, other) kept.

Verdicts:
  same        transcripts equal, key order and serialisation style included (the bytes would
              match after normalisation)
  same-json   equal as JSON values, but key order or separators differ
  deliberate  listed in DIFFERENCES.md: the reference drops the socket, the candidate must send
              a `pusher:error` frame instead (checked)
  different   anything else (the exit status is 1 if any)

Synchronisation: every expected frame is awaited (WAIT seconds at most). Absence ("nothing else
arrived", "not echoed") is shown by a fence: the socket subscribes to a fresh public channel and
everything before that answer is recorded. On a multi-shard server a frame still in flight from
another shard could arrive after the fence, so a fence proves absence only up to that ordering.

Usage: driver.py --ref NAME,REST,WS,APP_ID,KEY,SECRET --cand NAME,REST,WS,APP_ID,KEY,SECRET
                 [--only SUBSTR] [--json-out FILE] [-v]
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

import websocket  # websocket-client

HERE = os.path.dirname(os.path.abspath(__file__))
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WAIT = float(os.environ.get("PUSHI_DIFF_WAIT", "3"))  # seconds to await one expected frame


# ---------------------------------------------------------------------------------------------
# normalisation


def style_of(text, parsed):
    if json.dumps(parsed) == text:
        return "py"
    if json.dumps(parsed, separators=(",", ":")) == text:
        return "compact"
    return "other"


class Norm:
    """Per-transcript placeholder maps."""

    def __init__(self, target):
        self.names = {}
        for label, value in (
            ("<app_id>", target.app_id),
            ("<app_key>", target.key),
            ("<app_secret>", target.secret),
        ):
            self.names[value] = label
        self.uuids = {}
        self.ids = {}

    def sid(self, value, label):
        self.names[value] = "<sid:%s>" % label

    def token(self, value):
        self.names[value] = "<token>"

    def value(self, v, key=None):
        if isinstance(v, dict):
            if key == "members":
                v = dict(sorted(v.items()))
            out = {}
            for k, x in v.items():
                k2 = self.names.get(k, k)
                if k in ("timestamp", "created", "modified") and isinstance(x, (int, float)):
                    out[k2] = "<%s>" % k
                elif k in ("date", "_id") and isinstance(x, str):
                    out[k2] = "<%s>" % k
                elif k == "id" and isinstance(x, int) and not isinstance(x, bool):
                    # a database row number: same row, same label
                    out[k2] = self.ids.setdefault(x, "<id#%d>" % (len(self.ids) + 1))
                else:
                    out[k2] = self.value(x, k)
            return out
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, str):
            if v in self.names:
                return self.names[v]
            if UUID_RE.match(v):
                if v not in self.uuids:
                    self.uuids[v] = "<uuid#%d>" % (len(self.uuids) + 1)
                return self.uuids[v]
            s = v.strip()
            if s[:1] in ("{", "[") and s[-1:] in ("}", "]"):
                try:
                    parsed = json.loads(v)
                except ValueError:
                    return v
                return {"$json": self.value(parsed, key), "$style": style_of(v, parsed)}
            return v
        return v

    def frame(self, text, drop=()):
        """A websocket frame or REST body; `drop`: keys removed from every object in it."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return {"$text": text}
        style = style_of(text, parsed)
        if drop:
            parsed = without(parsed, drop)
        if not isinstance(parsed, dict):
            return {"$json": self.value(parsed), "$style": style}
        out = self.value(parsed)
        out["$style"] = style
        return out


# appier's model bookkeeping in Pushi's REST answers (DIFFERENCES.md, "Normalised away")
APPIER_KEYS = ("enabled", "description", "meta", "created", "modified", "instance", "id", "_id")


def without(v, keys):
    if isinstance(v, dict):
        return {k: without(x, keys) for k, x in v.items() if k not in keys}
    if isinstance(v, list):
        return [without(x, keys) for x in v]
    return v


def unordered(v):
    """The JSON value without serialisation styles, for the same-json comparison."""
    if isinstance(v, dict):
        return {k: unordered(x) for k, x in v.items() if k != "$style"}
    if isinstance(v, list):
        return [unordered(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------------
# one server


class Target:
    def __init__(self, spec):
        self.name, self.rest, self.ws, self.app_id, self.key, self.secret = spec.split(",")
        self.rest = self.rest.rstrip("/")
        self.ws = self.ws.rstrip("/")


class Dropped(Exception):
    pass


class Run:
    """One scenario against one server: connections, REST calls, the transcript."""

    def __init__(self, target, scenario):
        self.t = target
        self.scn = scenario
        self.norm = Norm(target)
        self.log = []
        self.conns = []
        self.token = None
        self.fences = 0

    # -- recording
    def rec(self, who, kind, value):
        self.log.append({"who": who, kind: value})

    # -- helpers
    def ch(self, kind, name=""):
        """A channel name unique to the scenario: kind 'presence-' -> presence-SCN-name."""
        return "%s%s%s" % (kind, self.scn, ("-" + name) if name else "")

    def auth(self, channel, socket_id):
        sig = hmac.new(
            self.t.secret.encode(), ("%s:%s" % (socket_id, channel)).encode(), hashlib.sha256
        ).hexdigest()
        return "%s:%s" % (self.t.key, sig)

    def conn(self, label, path=None):
        c = Conn(self, label)
        self.conns.append(c)
        c.open(path if path is not None else "/" + self.t.key)
        return c

    # -- REST
    def http(self, method, path, body=None, sid=True, record=True, label=None):
        url = self.t.rest + path
        if sid and self.token:
            url += ("&" if "?" in path else "?") + "sid=" + self.token
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read().decode("utf-8", "replace")
        except OSError as e:
            status, raw = 0, "transport error: %s" % e.__class__.__name__
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if record:
            shown = label or "%s %s" % (method, path.split("?")[0])
            if status >= 400 or status == 0:
                # Error bodies carry tracebacks and uids in Pushi: only status and `result`.
                brief = {"status": status}
                if isinstance(parsed, dict) and "result" in parsed:
                    brief["result"] = parsed["result"]
                self.rec("REST", shown, brief)
            else:
                self.rec("REST", shown, {"status": status, "body": self.norm.frame(raw, APPIER_KEYS)})
        return status, parsed

    def login(self):
        q = "/login?app_id=%s&app_key=%s&app_secret=%s" % (self.t.app_id, self.t.key, self.t.secret)
        url = self.t.rest + q
        status, raw = 0, ""
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                status, raw = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            pass
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status == 200 and isinstance(body, dict) and isinstance(body.get("token"), str):
            self.token = body["token"]
            self.norm.token(self.token)
            self.rec("REST", "GET /login", {"status": status, "body": self.norm.frame(raw)})
        else:
            self.rec("REST", "GET /login", {"status": status})
        return status

    def publish(self, body, label="POST /events"):
        return self.http("POST", "/events", body, label=label)

    def close_all(self):
        for c in self.conns:
            c.close()


class Conn:
    def __init__(self, run, label):
        self.run = run
        self.label = label
        self.ws = None
        self.socket_id = None
        self.dead = None

    def open(self, path):
        r = self.run
        try:
            self.ws = websocket.create_connection(r.t.ws + path, timeout=WAIT)
        except websocket.WebSocketBadStatusException as e:
            self.dead = "refused"
            r.rec(self.label, "open", {"refused": e.status_code})
            return
        except (websocket.WebSocketException, OSError) as e:
            self.dead = "refused"
            r.rec(self.label, "open", {"dropped": e.__class__.__name__})
            return
        first = self.recv()
        if first is not None:
            try:
                sid = json.loads(json.loads(first)["data"])["socket_id"]
                self.socket_id = sid
                r.norm.sid(sid, self.label)
            except (ValueError, KeyError, TypeError):
                pass
            r.rec(self.label, "recv", r.norm.frame(first))

    def send(self, obj):
        if self.dead:
            self.run.rec(self.label, "send-failed", self.dead)
            return
        text = obj if isinstance(obj, str) else json.dumps(obj)
        try:
            self.ws.send(text)
        except (websocket.WebSocketException, OSError):
            self.dead = "dropped"
            self.run.rec(self.label, "closed", "dropped")

    def recv(self, timeout=WAIT):
        """One text frame, or None (recording a close, a drop or a timeout)."""
        if self.dead:
            return None
        self.ws.settimeout(timeout)
        deadline = time.time() + timeout
        while True:
            try:
                op, frame = self.ws.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                self.run.rec(self.label, "timeout", "no frame within %gs" % timeout)
                return None
            except (websocket.WebSocketException, OSError):
                self.dead = "dropped"
                self.run.rec(self.label, "closed", "dropped (no close frame)")
                return None
            if op == websocket.ABNF.OPCODE_TEXT:
                return frame.data.decode("utf-8", "replace")
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
                self.dead = "closed"
                self.run.rec(self.label, "closed", {"code": code})
                return None
            if op == websocket.ABNF.OPCODE_BINARY:
                return frame.data.decode("utf-8", "replace")
            # ping/pong: not part of the transcript
            if time.time() > deadline:
                self.run.rec(self.label, "timeout", "no frame within %gs" % timeout)
                return None

    def expect(self, n=1):
        """Await and record n frames."""
        for _ in range(n):
            text = self.recv()
            if text is None:
                return
            self.run.rec(self.label, "recv", self.run.norm.frame(text))

    def fence(self):
        """Record whatever arrives before the answer to a subscribe of a fresh public channel
        (which the socket asks now): the proof that nothing else was sent before it."""
        if self.dead:
            return
        r = self.run
        r.fences += 1
        name = "fence-%s-%d" % (r.scn, r.fences)
        self.send({"event": "pusher:subscribe", "data": {"channel": name}})
        while True:
            text = self.recv()
            if text is None:
                return
            try:
                f = json.loads(text)
                if isinstance(f, dict) and f.get("channel") == name:
                    return
            except ValueError:
                pass
            r.rec(self.label, "recv", r.norm.frame(text))

    # -- Pushi client frames
    def sub(self, channel, auth=None, channel_data=None, expect=1):
        data = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})
        self.expect(expect)

    def sub_auth(self, channel, channel_data=None, expect=1):
        self.sub(channel, self.run.auth(channel, self.socket_id or ""), channel_data, expect)

    def unsub(self, channel, expect=1):
        self.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        self.expect(expect)

    def event(self, channel, event, data, **extra):
        msg = {"event": event, "data": data, "channel": channel}
        msg.update(extra)
        self.send(msg)

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except (websocket.WebSocketException, OSError):
                pass
        self.dead = self.dead or "closed by client"


# ---------------------------------------------------------------------------------------------
# scenarios: each takes a Run and drives it; they must not depend on each other's state except
# through their own (scenario-prefixed) channel names.

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append((fn.__name__.replace("_", "-"), fn))
    return fn


@scenario
def connect_shape(r):
    a = r.conn("A")
    a.fence()


@scenario
def subscribe_public(r):
    a = r.conn("A")
    a.sub(r.ch("pub-"))
    a.fence()


@scenario
def subscribe_private(r):
    a = r.conn("A")
    a.sub_auth(r.ch("private-"))
    a.fence()


@scenario
def subscribe_presence(r):
    a = r.conn("A")
    a.sub_auth(r.ch("presence-"), {"user_id": "u1", "name": "Ann"})
    a.fence()


@scenario
def presence_two_conns_one_user(r):
    ch = r.ch("presence-")
    c = r.conn("C")
    c.sub_auth(ch, {"user_id": "u2", "name": "Cid"})
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "name": "Ann"})
    c.expect(1)  # member_added u1
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u1", "name": "Ann"})  # same user, second connection
    c.fence()  # nothing: u1 was already a member
    a.unsub(ch)
    c.fence()  # nothing: u1 still has connection B
    b.unsub(ch)
    c.expect(1)  # member_removed u1
    c.fence()


@scenario
def member_removed_on_close(r):
    ch = r.ch("presence-")
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "name": "Ann", "extra": {"k": [1, 2]}})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2", "name": "Bob"})
    a.expect(1)  # member_added u2 with `member`
    b.close()
    a.expect(1)  # member_removed u2
    a.fence()


@scenario
def peer_channels(r):
    base = "%s" % r.scn
    ch = "presence-" + base
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "peer": True})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2", "peer": True})
    a.expect(1)  # member_added
    peer = "peer-%s:u1&u2" % base
    a.event(peer, "whisper", "peer msg", persist=False)
    b.expect(1)
    b.event(peer, "whisper-back", {"x": 1}, persist=False)
    a.expect(1)
    a.fence()
    b.fence()


@scenario
def peer_channels_mixed(r):
    # only the joining member asks for peer channels: B (no peer flag) is joined to it all the same
    base = r.scn
    ch = "presence-" + base
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2"})
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "peer": True})
    b.expect(1)  # member_added u1
    peer = "peer-%s:u1&u2" % base
    a.event(peer, "whisper", "to b", persist=False)
    b.expect(1)
    b.event(peer, "whisper", "to a", persist=False)
    a.expect(1)
    a.fence()
    b.fence()


@scenario
def peer_outsider(r):
    # C is no member of the presence channel: it may not send to the pair's peer channel
    base = r.scn
    ch = "presence-" + base
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "peer": True})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2", "peer": True})
    a.expect(1)
    c = r.conn("C")
    c.event("peer-%s:u1&u2" % base, "whisper", "intruder", persist=False)
    c.fence()
    a.fence()
    b.fence()


@scenario
def peer_after_leave(r):
    # when B leaves the presence channel A's peer channel with B goes too
    base = r.scn
    ch = "presence-" + base
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "peer": True})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2", "peer": True})
    a.expect(1)
    b.unsub(ch)
    a.expect(1)  # member_removed
    a.event("peer-%s:u1&u2" % base, "whisper", "anyone?", persist=False)
    a.fence()
    b.fence()


@scenario
def personal_alias(r):
    r.login()
    ch = r.ch("news-")
    r.http("POST", "/subscriptions", {"user_id": "%s-u9" % r.scn, "event": ch})
    personal = "personal-%s-u9" % r.scn
    a = r.conn("A")
    a.sub_auth(personal)
    r.publish({"data": "to the alias", "event": "message", "channel": ch, "persist": False})
    a.expect(1)
    a.unsub(personal)
    r.publish({"data": "after unsubscribe", "event": "message", "channel": ch, "persist": False})
    a.fence()


@scenario
def socket_event_echo_off(r):
    ch = r.ch("room-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    a.event(ch, "chat", {"text": "hi", "n": 1}, echo=False)
    b.expect(1)
    a.fence()  # not echoed


@scenario
def socket_event_echo_on(r):
    ch = r.ch("room-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    a.event(ch, "chat", {"text": "hi"}, echo=True)
    b.expect(1)
    a.expect(1)
    a.fence()


@scenario
def socket_event_persist_off(r):
    ch = r.ch("room-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    a.event(ch, "chat", "plain text", persist=False)
    b.expect(1)
    a.fence()


@scenario
def socket_event_default_fields(r):
    # no echo/persist keys: persist defaults to true (mid + timestamp), echo to false
    ch = r.ch("room-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    a.send({"event": "any-name", "data": [1, "two"], "channel": ch})
    b.expect(1)
    a.fence()


@scenario
def rest_event_extra_keys(r):
    r.login()
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    r.publish({"data": {"n": 1}, "event": "message", "channel": ch, "extra": "x", "n": 2})
    a.expect(1)
    a.fence()


@scenario
def rest_event_channel_list(r):
    r.login()
    c1, c2 = r.ch("one-"), r.ch("two-")
    a = r.conn("A")
    a.sub(c1)
    b = r.conn("B")
    b.sub(c2)
    r.publish({"data": "both", "channel": [c1, c2], "persist": False})
    a.expect(1)
    b.expect(1)
    a.fence()
    b.fence()


@scenario
def rest_event_persist_off(r):
    r.login()
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    r.publish({"data": "not kept", "event": "e1", "channel": ch, "persist": False})
    a.expect(1)
    a.fence()


@scenario
def rest_event_private_channel(r):
    r.login()
    ch = r.ch("private-")
    a = r.conn("A")
    a.sub_auth(ch)
    r.publish({"data": {"secret": True}, "event": "e", "channel": ch})
    a.expect(1)
    a.fence()


@scenario
def rest_get_events(r):
    r.login()
    ch = r.ch("pub-")
    r.publish({"data": "kept 1", "event": "e", "channel": ch})
    r.publish({"data": "kept 2", "event": "e", "channel": ch})
    r.http("GET", "/events?count=10", label="GET /events")


@scenario
def rest_subscriptions(r):
    r.login()
    uid = "%s-u1" % r.scn
    r.http("POST", "/subscriptions", {"user_id": uid, "event": "alerts"})
    r.http("POST", "/subscriptions", {"user_id": uid, "event": "alerts"}, label="POST /subscriptions again")
    r.http("GET", "/subscriptions?user_id=%s" % uid, label="GET /subscriptions")
    r.http("DELETE", "/subscriptions/%s/alerts" % uid, label="DELETE /subscriptions/u/alerts")
    r.http("GET", "/subscriptions?user_id=%s" % uid, label="GET /subscriptions after delete")


@scenario
def rest_logout(r):
    r.login()
    r.http("GET", "/logout", label="GET /logout")
    r.http("POST", "/events", {"data": "x", "channel": "global"}, label="POST /events with the old sid")


@scenario
def rest_webs(r):
    r.login()
    url = "http://127.0.0.1:9/%s" % r.scn  # never called: no event is published
    r.http("POST", "/webs", {"url": url, "event": r.ch("hook-")})
    r.http("GET", "/webs?url=%s" % url, label="GET /webs")


@scenario
def rest_health(r):
    r.http("GET", "/health", sid=False, label="GET /health")


@scenario
def rest_no_session(r):
    r.http("POST", "/events", {"data": "x", "channel": "global"}, sid=False, label="POST /events without sid")


@scenario
def rest_login_bad_secret(r):
    q = "/login?app_id=%s&app_key=%s&app_secret=%s" % (r.t.app_id, r.t.key, "0" * 64)
    r.http("GET", q, sid=False, label="GET /login bad secret")


@scenario
def unsubscribe(r):
    r.login()
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    a.unsub(ch)
    r.publish({"data": "after", "channel": ch, "persist": False})
    a.fence()


@scenario
def unsubscribe_presence(r):
    ch = r.ch("presence-")
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1"})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2"})
    a.expect(1)
    b.unsub(ch)  # unsubscription_succeeded carries the remaining members
    a.expect(1)
    a.fence()
    b.fence()


@scenario
def latest(r):
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    a.event(ch, "chat", "one", echo=True)
    a.expect(1)
    a.send({"event": "pusher:latest", "data": {"channel": ch, "skip": 0, "count": 10}})
    a.expect(1)
    a.fence()


@scenario
def duplicate_subscribe(r):
    r.login()
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    a.sub(ch)
    r.publish({"data": "once", "channel": ch, "persist": False})
    a.expect(1)
    a.fence()  # delivered once only


@scenario
def socket_event_presence(r):
    # Pushi adds nothing (no user_id, unlike Pusher's client events on presence channels)
    ch = r.ch("presence-")
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1"})
    b = r.conn("B")
    b.sub_auth(ch, {"user_id": "u2"})
    a.expect(1)
    a.event(ch, "say", {"t": "hello"}, persist=False)
    b.expect(1)
    a.fence()
    b.fence()


@scenario
def duplicate_subscribe_presence(r):
    # a second subscribe of the same socket: Pushi unsubscribes it first, then subscribes again
    ch = r.ch("presence-")
    c = r.conn("C")
    c.sub_auth(ch, {"user_id": "u2"})
    a = r.conn("A")
    a.sub_auth(ch, {"user_id": "u1", "n": 1})
    c.expect(1)
    a.sub_auth(ch, {"user_id": "u1", "n": 2})
    c.fence()
    a.fence()


@scenario
def unsubscribe_not_subscribed(r):
    a = r.conn("A")
    a.unsub(r.ch("pub-"))
    a.fence()


@scenario
def subscribe_missing_channel(r):
    a = r.conn("A")
    a.send({"event": "pusher:subscribe", "data": {}})
    a.fence()


@scenario
def event_missing_data(r):
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    a.send({"event": "chat", "channel": ch})
    a.fence()
    b.fence()


@scenario
def presence_without_channel_data(r):
    a = r.conn("A")
    a.sub_auth(r.ch("presence-"))
    a.fence()


@scenario
def bad_signature_private(r):
    a = r.conn("A")
    a.sub(r.ch("private-"), auth=r.t.key + ":" + "0" * 64)
    a.fence()


@scenario
def bad_signature_presence(r):
    a = r.conn("A")
    a.sub(r.ch("presence-"), auth="nope", channel_data={"user_id": "u1"})
    a.fence()


@scenario
def private_without_auth(r):
    a = r.conn("A")
    a.sub(r.ch("private-"))
    a.fence()


@scenario
def bad_key_length(r):
    a = r.conn("A", "/" + r.t.key[:32])
    a.fence()


@scenario
def key_with_query(r):
    a = r.conn("A", "/" + r.t.key + "?protocol=7")
    a.sub(r.ch("pub-"))
    a.fence()


@scenario
def personal_stored_events(r):
    r.login()
    ch = r.ch("inbox-")
    uid = "%s-u1" % r.scn
    r.http("POST", "/subscriptions", {"user_id": uid, "event": ch})
    r.publish({"data": "stored 1", "event": "note", "channel": ch})
    r.publish({"data": {"n": 2}, "event": "note", "channel": ch})
    a = r.conn("A")
    a.sub_auth("personal-" + uid)
    a.fence()


@scenario
def bad_key_unknown(r):
    a = r.conn("A", "/" + "f" * 64)
    a.sub(r.ch("pub-"))
    a.fence()


@scenario
def ping(r):
    a = r.conn("A")
    a.send({"event": "pusher:ping", "data": {}})
    a.fence()


@scenario
def bad_json(r):
    a = r.conn("A")
    a.send("{not json")
    a.fence()


@scenario
def event_missing_channel(r):
    a = r.conn("A")
    a.send({"event": "chat", "data": "no channel"})
    a.fence()


@scenario
def event_not_subscribed(r):
    a = r.conn("A")
    a.event(r.ch("other-"), "chat", "not a member")
    a.fence()


@scenario
def latest_not_subscribed(r):
    a = r.conn("A")
    a.send({"event": "pusher:latest", "data": {"channel": r.ch("pub-")}})
    a.fence()


@scenario
def error_leaves_others_untouched(r):
    r.login()
    ch = r.ch("pub-")
    a = r.conn("A")
    a.sub(ch)
    b = r.conn("B")
    b.sub(ch)
    b.send("{bad json")
    b.fence()
    r.publish({"data": "still here", "channel": ch, "persist": False})
    a.expect(1)
    a.fence()


# ---------------------------------------------------------------------------------------------
# the table


def differences_md():
    """DIFFERENCES.md's two lists: `- **name**: reason` (deliberate: the reference drops, the
    candidate answers pusher:error) and `- **name** [mask: key,key]: reason` (a caveat of the
    reference: those keys' values are masked in both transcripts before comparing)."""
    deliberate, masked = {}, {}
    with open(os.path.join(HERE, "DIFFERENCES.md"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            m = re.match(r"^- \*\*([a-z0-9-]+)\*\* \[mask: ([a-z_,]+)\]: (.*)$", line)
            if m:
                masked[m.group(1)] = (m.group(2).split(","), m.group(3))
                continue
            m = re.match(r"^- \*\*([a-z0-9-]+)\*\*(?: \[(accepts|answers [a-z_:]+)\])?: (.*)$", line)
            if m:
                deliberate[m.group(1)] = (m.group(2) or "answers pusher:error", m.group(3))
    return deliberate, masked


def mask(v, keys):
    if isinstance(v, dict):
        return {k: ("<masked>" if k in keys else mask(x, keys)) for k, x in v.items()}
    if isinstance(v, list):
        return [mask(x, keys) for x in v]
    return v


def run_one(target, name, fn):
    r = Run(target, name)
    try:
        fn(r)
    except Exception as e:  # a driver bug must not look like a difference
        r.rec("DRIVER", "error", "%s: %s" % (e.__class__.__name__, e))
    finally:
        r.close_all()
    return r.log


def reference_dropped(log):
    return any(
        ("closed" in e and "dropped" in str(e["closed"])) or ("open" in e) for e in log
    )


def candidate_answered(log, event):
    for e in log:
        f = e.get("recv")
        if isinstance(f, dict) and f.get("event") == event:
            return True
        o = e.get("open")
        if isinstance(o, dict) and "refused" in o:  # refused at the handshake with an HTTP status
            return True
    return False


def candidate_accepted(log):
    """Every connection got connection_established and none was closed or dropped."""
    if any("closed" in e or "open" in e or "timeout" in e for e in log):
        return False
    return any(isinstance(e.get("recv"), dict)
               and e["recv"].get("event") == "pusher:connection_established" for e in log)


def verdict(name, ref, cand, deliberate, masked):
    if any("DRIVER" == e["who"] for e in ref + cand):
        return "different", "driver error"
    if masked is not None and name in masked:
        keys, why = masked[name]
        v, note = verdict(name, mask(ref, keys), mask(cand, keys), None, None)
        if v in ("same", "same-json"):
            return v, "with %s masked: %s" % (",".join(keys), why)
        return v, note
    if deliberate is not None and name in deliberate:
        if not reference_dropped(ref):
            return "different", "listed as deliberate but the reference did not drop"
        expect, why = deliberate[name]
        if expect == "accepts":
            if not candidate_accepted(cand):
                return "different", "deliberate: the candidate must serve this connection"
        elif not candidate_answered(cand, expect.split(" ", 1)[1]):
            return "different", "deliberate: the candidate must send %s (or refuse the handshake)" % expect.split(" ", 1)[1]
        # what the other connections and REST saw must still agree
        gone = {e["who"] for e in ref if "open" in e or ("closed" in e and "dropped" in str(e["closed"]))}
        rest_a = [e for e in ref if e["who"] not in gone]
        rest_b = [e for e in cand if e["who"] not in gone]
        if json.dumps(unordered(rest_a), sort_keys=True) != json.dumps(unordered(rest_b), sort_keys=True):
            return "different", "deliberate for %s, but the others saw something else (%s)" % (
                ",".join(sorted(gone)), first_difference(rest_a, rest_b))
        return "deliberate", why
    if json.dumps(ref) == json.dumps(cand):
        return "same", ""
    if json.dumps(unordered(ref), sort_keys=True) == json.dumps(unordered(cand), sort_keys=True):
        return "same-json", "key order or separators differ"
    return "different", first_difference(ref, cand)


def first_difference(ref, cand):
    for i in range(max(len(ref), len(cand))):
        a = ref[i] if i < len(ref) else None
        b = cand[i] if i < len(cand) else None
        if json.dumps(unordered(a), sort_keys=True) != json.dumps(unordered(b), sort_keys=True):
            return "step %d" % (i + 1)
    return "step ?"


def show(entry):
    return json.dumps(entry, separators=(",", ":"))


def probe(t):
    """A Pushi dialect answers a websocket on /{app key} with connection_established carrying a
    UUID socket id."""
    try:
        ws = websocket.create_connection(t.ws + "/" + t.key, timeout=WAIT)
        first = json.loads(ws.recv())
        ws.close()
        sid = json.loads(first["data"])["socket_id"]
        ok = first.get("event") == "pusher:connection_established" and bool(UUID_RE.match(sid))
    except Exception as e:  # any failure means: no Pushi here
        print("probe: %s: no Pushi dialect (%s: %s)"
              % (t.name, e.__class__.__name__, str(e).splitlines()[0][:120] if str(e) else ""))
        return 1
    if not ok:
        print("probe: %s: no Pushi dialect (first frame %r)" % (t.name, first))
    return 0 if ok else 1


def write_md(path, ref, cand, rows, summary, aa, transcripts):
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", "-C", HERE] + list(a), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return "?"

    lines = [
        "# Last recorded run of tests/pushi-diff",
        "",
        "Written by `PUSHI_DIFF_RECORD=1 tests/pushi-diff/run.sh%s`." % ("" if aa else " HERALD"),
        "",
        "- date: %s" % time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "- tree: `%s` (%s)%s" % (git("rev-parse", "--short", "HEAD"), git("log", "-1", "--format=%s"),
                                 " + uncommitted changes" if git("status", "--porcelain") else ""),
        "- reference: pushi-service 0.6.10 (TinyDB adapter); candidate: %s%s" % (
            cand.name, (" (%s)" % os.environ["HERALD_VERSION"]) if os.environ.get("HERALD_VERSION") else ""),
        "- network: %s" % {"ns": "private loopback-only namespace (unshare -n)",
                            "host": "host loopback (no namespace)"}.get(os.environ.get("PUSHI_DIFF_INSIDE", ""), "?"),
        "- summary: %d scenarios: %s" % (len(rows), summary),
        "",
        "| scenario | verdict | note |",
        "|---|---|---|",
    ]
    for n, v, why in rows:
        lines.append("| %s | %s | %s |" % (n, v, why.replace("|", "\\|")))
    different = [n for n, v, _ in rows if v == "different"]
    if different:
        lines += ["", "## The differences, step by step", "",
                  "Each line is one normalised transcript entry (`-`: none); only differing steps."]
        for n in different:
            a, b = transcripts[n]
            lines += ["", "### " + n, "", "```"]
            for i in range(max(len(a), len(b))):
                x = show(a[i]) if i < len(a) else "-"
                y = show(b[i]) if i < len(b) else "-"
                if x != y:
                    lines.append("%2d %s: %s" % (i + 1, ref.name, x))
                    lines.append("   %s: %s" % (cand.name, y))
            lines.append("```")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", default="", help="exit 0 if SPEC speaks Pushi on /{app key}")
    ap.add_argument("--ref")
    ap.add_argument("--cand")
    ap.add_argument("--md-out", default="", help="write the table as RESULT.md")
    ap.add_argument("--only", default="")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--aa", action="store_true",
                    help="A/A run (the reference against itself): DIFFERENCES.md is not applied")
    ap.add_argument("-v", action="store_true", help="print both transcripts of every scenario")
    args = ap.parse_args()
    if args.probe:
        return probe(Target(args.probe))
    if not (args.ref and args.cand):
        ap.error("--ref and --cand are required")
    ref, cand = Target(args.ref), Target(args.cand)
    deliberate, masked = differences_md()
    unknown = (set(deliberate) | set(masked)) - {n for n, _ in SCENARIOS}
    if unknown:
        print("DIFFERENCES.md names unknown scenarios: %s" % ", ".join(sorted(unknown)))
        return 2
    rows, dump = [], {}
    for name, fn in SCENARIOS:
        if args.only and args.only not in name:
            continue
        a = run_one(ref, name, fn)
        b = run_one(cand, name, fn)
        v, why = verdict(name, a, b, *((None, None) if args.aa else (deliberate, masked)))
        rows.append((name, v, why))
        dump[name] = {"verdict": v, "why": why, ref.name: a, cand.name: b}
        if args.v or v == "different":
            print("--- %s: %s %s" % (name, v, why))
            for i in range(max(len(a), len(b))):
                x = show(a[i]) if i < len(a) else "-"
                y = show(b[i]) if i < len(b) else "-"
                mark = "  " if x == y else "!="
                print("  %2d %s %s: %s" % (i + 1, mark, ref.name, x))
                if x != y:
                    print("        %s: %s" % (cand.name, y))
    width = max(len(n) for n, _, _ in rows) if rows else 10
    print("\n%-*s  %-10s  %s" % (width, "scenario", "verdict", "note"))
    print("%s  %s  %s" % ("-" * width, "-" * 10, "-" * 40))
    for n, v, why in rows:
        print("%-*s  %-10s  %s" % (width, n, v, why))
    counts = {}
    for _, v, _ in rows:
        counts[v] = counts.get(v, 0) + 1
    summary = ", ".join("%d %s" % (counts[k], k) for k in ("same", "same-json", "deliberate", "different") if k in counts)
    print("\n%s vs %s: %d scenarios: %s" % (ref.name, cand.name, len(rows), summary))
    if args.md_out:
        write_md(args.md_out, ref, cand, rows, summary, args.aa,
                 {n: (d[ref.name], d[cand.name]) for n, d in dump.items()})
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(dump, f, indent=1)
    return 1 if counts.get("different") or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
