#!/usr/bin/env python3
"""Differential wire-compatibility suite: real Channelstream 0.7.1 (server A) vs Herald (server B).

Every scenario is a plain function ``scenario_xxx(t)`` that drives one server through the
recorder ``t``.  The recorder keeps a *transcript*: one entry per step with the HTTP status, the
content-type family, the parsed body (JSON objects keep their key order) and, for websockets,
every frame received with its opcode.  Each scenario runs once against A and once against B (at
the same time, in threads), both transcripts are normalised (uuids, server timestamps, the
per-run name prefix, uptime) and compared as text.  In A/A mode both runs go to the same real
server, which proves that the normalisation makes transcripts deterministic.

Why so much machinery instead of asserts: nobody writes down the expected values by hand; the
real server *is* the expectation.  A scenario only has to make the server's answers
deterministic (unique names, barrier messages, waiting for a known number of frames).

Python 3.8 compatible on purpose: it runs with the venv that also runs the real server.
Usage: runner.py --a http://127.0.0.1:8000 [--b http://127.0.0.1:8001] [--only SUBSTR]...
"""

import argparse
import base64
import datetime
import difflib
import hashlib
import hmac
import json
import random
import re
import socket
import string
import struct
import sys
import threading
import time
import traceback
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor

import requests
import websocket
from requests.adapters import HTTPAdapter

SECRET = "secret"

# ------------------------------------------------------------------------------------------------
# Signing (spec §3.2): itsdangerous 1.1.0 TimestampSigner, re-implemented with hmac/hashlib so the
# suite does not depend on itsdangerous and so we can forge every token variant the spec lists.
# ------------------------------------------------------------------------------------------------


def derive_key(secret):
    """django-concat key derivation: SHA1(salt + b"signer" + secret)."""
    return hashlib.sha1(b"itsdangerous.Signer" + b"signer" + secret.encode("utf8")).digest()


def b64url_nopad(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def int_to_bytes(num):
    # big-endian u64 with the leading zero bytes stripped (itsdangerous int_to_bytes)
    return struct.pack(">Q", num).lstrip(b"\x00")


def sign(value="channelstream", ts=None, secret=SECRET):
    """TimestampSigner(secret).sign(value) at unix time ``ts`` (default: now)."""
    if ts is None:
        ts = int(time.time())
    signed = value.encode("utf8") + b"." + b64url_nopad(int_to_bytes(ts))
    mac = hmac.new(derive_key(secret), signed, hashlib.sha1).digest()
    return (signed + b"." + b64url_nopad(mac)).decode("ascii")


def sign_js(value="channelstream", ts=None, secret=SECRET):
    """The JS ChannelStreamSigner: btoa + String.replace, which only replaces the FIRST '=', '+',
    '/' -- so the timestamp usually keeps one '=' and the HMAC covers it."""
    if ts is None:
        ts = int(time.time())

    def js_b64(raw):
        s = base64.b64encode(raw).decode("ascii")
        return s.replace("=", "", 1).replace("+", "-", 1).replace("/", "_", 1)

    signed = value + "." + js_b64(int_to_bytes(ts))
    mac = hmac.new(derive_key(secret), signed.encode("utf8"), hashlib.sha1).digest()
    return signed + "." + js_b64(mac)


def _self_test_signer():
    """Test vectors of spec §3.2; the suite refuses to run if they do not hold."""
    assert derive_key("secret").hex() == "3a1c28f7aad5a02fe672d24f1003fb52a7312ed7"
    assert sign("channelstream", 1700000000) == "channelstream.ZVPxAA.UB9ITnnv9UITu0ka92WJCn1VFsQ"
    assert sign_js("channelstream", 1700000000) == "channelstream.ZVPxAA=.UnambZyUHmgFmelQMUgVo1LT02M"


_self_test_signer()

# ------------------------------------------------------------------------------------------------
# Transcript values
# ------------------------------------------------------------------------------------------------


def _pairs_hook(pairs):
    """JSON objects become dicts (insertion ordered), but duplicate keys are made visible instead
    of silently keeping the last one -- a server emitting them must show up in the diff."""
    out = {}
    for k, v in pairs:
        if k in out:
            k = "<DUPLICATE KEY %s>" % k
        out[k] = v
    return out


def parse_json(text):
    return json.loads(text, object_pairs_hook=_pairs_hook)


def mime_family(ctype):
    """'text/html; charset=UTF-8' -> 'text/html'; missing -> ''."""
    return (ctype or "").split(";")[0].strip().lower()


JSONP_RE = re.compile(r"^([A-Za-z_$][\w$.]*)\((.*)\)$", re.S)


def parse_body(text):
    """Best-effort structured view of a body: JSON, JSONP callback(JSON), or raw text."""
    try:
        return parse_json(text)
    except ValueError:
        pass
    m = JSONP_RE.match(text)
    if m:
        try:
            return {"<jsonp>": m.group(1), "data": parse_json(m.group(2))}
        except ValueError:
            pass
    return {"<text>": text}


def bucket(seconds):
    """Coarse time bucket for timer scenarios: nearest multiple of 5 s.  The server timers are
    5 s (heartbeat, long poll) and 15 s (+<=1 s GC pass), so the expected values sit in the middle
    of a bucket, far from its edges."""
    return "~%ds" % (int(round(seconds / 5.0)) * 5)


# ------------------------------------------------------------------------------------------------
# Websocket client that records every frame with its opcode
# ------------------------------------------------------------------------------------------------

OPNAMES = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong", 0: "cont"}


class Socket(object):
    """A websocket plus a reader thread.  Frames are stored as dicts: text frames parsed as JSON
    (``data``), close frames as ``code``/``reason``, a TCP drop without close frame as ``eof``."""

    def __init__(self, rec, name, url):
        self.rec = rec
        self.name = name
        self.frames = []  # (arrival monotonic time, frame dict)
        self.cond = threading.Condition()
        self.done = False
        self.client_closed = False
        self.handshake_error = None
        self.pongs = 0
        self.ws = websocket.WebSocket(enable_multithread=True)
        try:
            self.ws.connect(url, timeout=10)
        except Exception as exc:  # recorded by the caller via handshake_error
            self.handshake_error = exc
            self.done = True
            return
        self.ws.settimeout(None)
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _push(self, frame):
        with self.cond:
            self.frames.append((time.monotonic(), frame))
            self.cond.notify_all()

    def _reader(self):
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except Exception:
                if not self.client_closed:
                    self._push({"op": "eof"})
                break
            if opcode == 8:
                data = frame.data or b""
                if self.client_closed:
                    # Answer to our own close: only its presence is compared (the real server
                    # replies 1005/empty, a port may reply 1000; spec §11).
                    self._push({"op": "close-reply"})
                else:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                    self._push({"op": "close", "code": code,
                                "reason": data[2:].decode("utf8", "replace")})
                break
            if opcode == 10:
                with self.cond:
                    self.pongs += 1
                    self.cond.notify_all()
                continue
            if opcode == 9:
                continue  # answered by the library; the real server never pings
            payload = frame.data if hasattr(frame, "data") else frame
            if opcode == 1:
                text = payload.decode("utf8", "replace") if isinstance(payload, bytes) else payload
                try:
                    data = parse_json(text)
                except ValueError:
                    data = {"<text>": text}
                self._push({"op": "text", "data": data})
            else:
                self._push({"op": OPNAMES.get(opcode, str(opcode)), "len": len(payload)})
        with self.cond:
            self.done = True
            self.cond.notify_all()

    @staticmethod
    def is_heartbeat(frame):
        return frame.get("op") == "text" and frame.get("data") == []

    def wait(self, count, timeout, heartbeats=False):
        """Block until ``count`` frames (heartbeats excluded unless asked) have arrived, the socket
        ended, or ``timeout`` passed.  Returns True when the count was reached."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                n = sum(1 for _, f in self.frames if heartbeats or not self.is_heartbeat(f))
                if n >= count:
                    return True
                if self.done:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def take(self, heartbeats=False):
        """Remove and return everything received so far."""
        with self.cond:
            got, self.frames = self.frames, []
        return [(at, f) for at, f in got if heartbeats or not self.is_heartbeat(f)]

    def sync(self, timeout=5.0):
        """Attach barrier: send a ping and wait for its pong.  The server answers pings from its
        frame loop, which only starts after the open handler attached the socket to the
        connection (and sent catch-up), so after the pong, live deliveries reach this socket.
        Without it a message posted right after the handshake could race the attach and arrive
        as catch-up instead.  Returns False when the socket ended first."""
        with self.cond:
            if self.done:
                return False
            want = self.pongs + 1
        try:
            self.ws.ping(b"sync")
        except Exception:
            return False
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pongs < want and not self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return self.pongs >= want

    def send_text(self, text):
        self.ws.send(text)

    def send_binary(self, data):
        self.ws.send_binary(data)

    def close(self):
        """Client-initiated close (code 1000); the reader records the server's reply."""
        self.client_closed = True
        try:
            self.ws.send_close(1000, b"")
        except Exception:
            pass

    def shutdown(self):
        self.client_closed = True
        try:
            self.ws.shutdown()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------------
# The recorder handed to every scenario
# ------------------------------------------------------------------------------------------------

class SourceAddressAdapter(HTTPAdapter):
    """Sends from a chosen loopback address (127.0.0.2 is not whitelisted: spec §3.1)."""

    def __init__(self, source, **kw):
        self.source = source
        super(SourceAddressAdapter, self).__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        return super(SourceAddressAdapter, self).init_poolmanager(*args, **kw)


FRAME_TIMEOUT = 8.0  # max wait for frames that must come
GRACE = 0.4  # extra wait after the expected frames, to catch unexpected extra ones


class Recorder(object):
    def __init__(self, base, prefix, side):
        self.base = base.rstrip("/")
        self.ws_base = "ws" + self.base[len("http"):]
        self.prefix = prefix
        self.side = side
        self.entries = []
        self.sockets = []
        self.warnings = []
        self.client_uuids = {}
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    # -- naming ----------------------------------------------------------------------------------
    def cuuid(self, label, value=None):
        """A client-chosen uuid (conn_id, message uuid).  In transcripts it shows as
        <client-uuid:label> instead of a number, so a server that ignores it and generates its own
        cannot pass by accident: client-supplied ids must round-trip."""
        value = value or str(uuidlib.uuid4())
        self.client_uuids[str(uuidlib.UUID(value))] = label
        return value

    def p(self, name):
        """Unique name for this scenario run; the prefix is normalised away before comparing."""
        return self.prefix + name

    # -- recording -------------------------------------------------------------------------------
    def add(self, entry):
        with self.lock:
            self.entries.append(entry)
        return entry

    def note(self, step, value):
        """Record an arbitrary derived value (e.g. a boolean computed from a response)."""
        self.add({"step": step, "value": value})

    def warn(self, msg):
        self.warnings.append(msg)

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        """Only for timer scenarios: the waiting *is* the test (heartbeat / GC / long poll)."""
        time.sleep(seconds)

    # -- HTTP ------------------------------------------------------------------------------------
    def http(self, step, method, path, body=None, raw=None, signed=True, secret=None,
             headers=None, params=None, keep_headers=(), record_body=None, transform=None,
             timing_since=None, source=None, cookies=None, form=None):
        """Perform one HTTP request and record it.

        body: JSON-serialised; raw: bytes/str sent as-is (b"" = empty body).
        secret: explicit x-channelstream-secret value (overrides ``signed``).
        keep_headers: response headers to record (value or None when absent).
        record_body: force recording/omitting the body; default = omit for non-JSON errors.
        transform: fn(parsed_body) -> value, applied before recording (filter global state).
        source: local address to send from; cookies: dict; form: dict sent form-encoded.
        """
        hdrs = {}
        if secret is not None:
            hdrs["x-channelstream-secret"] = secret
        elif signed:
            hdrs["x-channelstream-secret"] = sign()
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf8")
            hdrs["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw.encode("utf8") if isinstance(raw, str) else raw
        if form is not None:
            data = form
        if headers:
            hdrs.update(headers)
        started = time.monotonic()
        with requests.Session() as session:
            if source:
                session.mount("http://", SourceAddressAdapter(source))
            resp = session.request(method, self.base + path, data=data, headers=hdrs,
                                   params=params, allow_redirects=False, timeout=15,
                                   cookies=cookies)
        took = time.monotonic() - started
        fam = mime_family(resp.headers.get("Content-Type"))
        entry = {"step": step, "status": resp.status_code, "ctype": fam}
        text = resp.content.decode("utf8", "replace")
        if record_body is None:
            # Error pages (HTML/plain) are framework-specific: compare status + family only.
            record_body = fam == "application/json" or resp.status_code < 400
        parsed = None
        if record_body:
            parsed = parse_body(text) if text != "" else ""
            entry["body"] = transform(parsed) if transform else parsed
        elif fam == "application/json":
            parsed = parse_body(text)
        if keep_headers:
            entry["headers"] = {h: resp.headers.get(h) for h in keep_headers}
        if timing_since is not None:
            entry["at"] = bucket(time.monotonic() - timing_since)
        self.add(entry)
        resp.parsed = parsed if parsed is not None else (parse_body(text) if text else "")
        resp.took = took
        return resp

    def post(self, step, path, body=None, **kw):
        return self.http(step, "POST", path, body=body, **kw)

    def connect(self, step, username, **fields):
        """POST /connect; returns the conn_id (str) or None."""
        body = {"username": username}
        body.update(fields)
        resp = self.post(step, "/connect", body)
        if resp.status_code == 200 and isinstance(resp.parsed, dict):
            return resp.parsed.get("conn_id")
        return None

    def message(self, step, items, **kw):
        return self.post(step, "/message", items, **kw)

    def listen(self, step, conn_id, callback=None, timing_since=None, raw_query=None):
        """One long-poll GET /listen (blocks until the server answers)."""
        if raw_query is not None:
            path = "/listen" + raw_query
            params = None
        else:
            path = "/listen"
            params = {"conn_id": conn_id}
            if callback:
                params["callback"] = callback
        return self.http(step, "GET", path, signed=False, params=params,
                         timing_since=timing_since)

    def listen_async(self, step, conn_id, callback=None, timing_since=None):
        """Start a long poll in a thread; ``join()`` the result to record it in order."""
        result = {}

        def run():
            try:
                result["resp"] = self._listen_detached(conn_id, callback)
            except Exception as exc:  # recorded at join time
                result["exc"] = exc

        th = threading.Thread(target=run, daemon=True)
        th.start()
        rec = self

        class Pending(object):
            def join(self_inner, timeout=20):
                th.join(timeout)
                if "resp" not in result:
                    rec.add({"step": step, "error": repr(result.get("exc", "timeout"))})
                    return None
                status, fam, text, ended = result["resp"]
                entry = {"step": step, "status": status, "ctype": fam}
                if status < 400 or fam == "application/json":
                    entry["body"] = parse_body(text) if text else ""
                if timing_since is not None:
                    entry["at"] = bucket(ended - timing_since)
                rec.add(entry)
                return entry

        return Pending()

    def _listen_detached(self, conn_id, callback):
        params = {"conn_id": conn_id}
        if callback:
            params["callback"] = callback
        resp = requests.get(self.base + "/listen", params=params, timeout=15)
        return (resp.status_code, mime_family(resp.headers.get("Content-Type")),
                resp.content.decode("utf8", "replace"), time.monotonic())

    # -- websockets ------------------------------------------------------------------------------
    def ws(self, name, conn_id=None, query=None, sync=True):
        """Open /ws?conn_id=... and start recording its frames under ``name``.  With ``sync`` the
        call returns only once the server has attached the socket (ping/pong barrier); timer
        scenarios pass sync=False where a ping could count as activity on a port."""
        url = self.ws_base + "/ws" + (query if query is not None else "?conn_id=%s" % conn_id)
        sock = Socket(self, name, url)
        self.sockets.append(sock)
        if sock.handshake_error is not None:
            self.add({"step": "open ws " + name, "error": type(sock.handshake_error).__name__})
        elif sync:
            sock.sync()
        return sock

    def frames(self, step, sock, expect, heartbeats=False, timing_since=None, timeout=None,
               grace=GRACE):
        """Wait for ``expect`` frames on ``sock`` (then a short grace period for unexpected extra
        ones) and record everything received since the last call, in order."""
        ok = sock.wait(expect, FRAME_TIMEOUT if timeout is None else timeout, heartbeats)
        if not ok:
            self.warn("%s: expected %d frame(s) on %s, timed out" % (step, expect, sock.name))
        elif grace and not sock.done:
            time.sleep(grace)
        got = sock.take(heartbeats)
        out = []
        for at, frame in got:
            frame = dict(frame)
            if timing_since is not None:
                frame["at"] = bucket(at - timing_since)
            out.append(frame)
        self.add({"step": step, "socket": sock.name, "frames": out})
        return [f for f in out]

    def close_all(self):
        for s in self.sockets:
            s.shutdown()


# ------------------------------------------------------------------------------------------------
# Normalisation
# ------------------------------------------------------------------------------------------------

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def _ts_sub(match):
    """Server-generated timestamps (near 'now') become <ts>, keeping the shape that matters to
    clients: fraction present or not, zone suffix.  Fixed client-supplied timestamps (years far
    from now, e.g. 2020-01-02T03:04:05Z) are kept verbatim: they must round-trip."""
    try:
        day = datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    if abs((day - datetime.datetime.utcnow().date()).days) > 2:
        return match.group(0)
    frac = match.group(4)
    shape = "<ts>" if frac and len(frac) == 7 else ("<ts-nofrac>" if not frac else "<ts%s>" % frac)
    if frac and len(frac) != 7:
        shape = "<ts-frac%d>" % (len(frac) - 1)
    return shape + (match.group(5) or "")


def _norm_str(s, prefix):
    if len(s) > 2000:
        # big payloads: compare length + digest, keep diffs readable
        return "<str len=%d sha1=%s>" % (len(s), hashlib.sha1(s.encode("utf8")).hexdigest()[:12])
    if prefix:
        s = s.replace(prefix, "P_")
    return TS_RE.sub(_ts_sub, s)


def _mask_uuids(value):
    return UUID_RE.sub("<uuid>", json.dumps(value))


def _norm(value, prefix):
    if isinstance(value, str):
        return _norm_str(value, prefix)
    if isinstance(value, list):
        return [_norm(v, prefix) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nk = _norm_str(k, prefix)
            if k == "uptime" and isinstance(v, str):
                out[nk] = "<uptime>"
            else:
                out[nk] = _norm(v, prefix)
        # §14.1 item 18: the `users` list next to `channels` (channels_info of /info, /connect,
        # /subscribe, /unsubscribe) comes from a Python set: compare it order-insensitively.
        if set(out.keys()) == {"channels", "users"} and isinstance(out["users"], list):
            out["users"] = sorted(out["users"], key=_mask_uuids)
        return out
    return value


class UuidNumberer(object):
    def __init__(self, fixed=None):
        self.seen = {}
        self.fixed = fixed or {}

    def sub(self, s):
        def rep(m):
            u = m.group(0)
            if u in self.fixed:
                return "<client-uuid:%s>" % self.fixed[u]
            if u not in self.seen:
                self.seen[u] = "<uuid-%d>" % (len(self.seen) + 1)
            return self.seen[u]

        return UUID_RE.sub(rep, s)

    def walk(self, value):
        if isinstance(value, str):
            return self.sub(value)
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        if isinstance(value, dict):
            return {self.sub(k): self.walk(v) for k, v in value.items()}
        return value


def normalise(entries, prefix, client_uuids=None):
    numberer = UuidNumberer(client_uuids)
    return [numberer.walk(_norm(e, prefix)) for e in entries]


def render(entries):
    """One JSON document per entry, key order preserved: equal text <=> equal ordered values."""
    lines = []
    for e in entries:
        lines.extend(json.dumps(e, indent=1, ensure_ascii=False).splitlines())
    return lines


# ------------------------------------------------------------------------------------------------
# Helpers shared by scenarios
# ------------------------------------------------------------------------------------------------


def only_prefixed(prefix):
    """Transform for responses that show global state (/info with no filter, admin.json): keep
    only this scenario's channels and users so concurrent scenarios do not leak in."""

    def tr(body):
        if not isinstance(body, dict):
            return body
        out = dict(body)
        if isinstance(out.get("channels"), dict):
            out["channels"] = {k: v for k, v in out["channels"].items() if k.startswith(prefix)}
        if isinstance(out.get("users"), list):
            out["users"] = [u for u in out["users"]
                            if isinstance(u, dict) and str(u.get("user", "")).startswith(prefix)]
        return out

    return tr


def _aligned_second():
    """Wait until just after a wall-clock second boundary, so a token built from int(now) is still
    the same age when the server checks it (the 60 s / 61 s boundary tests)."""
    while True:
        frac = time.time() % 1.0
        if frac < 0.2:
            return int(time.time())
        time.sleep(min(1.0 - frac + 0.01, 0.5))


# ================================================================================================
# SCENARIOS
# ================================================================================================
# Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
# (t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
# arrive after whatever should not have (delivery is FIFO per server).


def scenario_auth_missing_secret(t):
    t.http("POST /info no secret", "POST", "/info", raw=b"", signed=False)
    t.http("POST /info no secret, Accept json", "POST", "/info", raw=b"", signed=False,
           headers={"Accept": "application/json"})
    t.http("POST /info empty secret header", "POST", "/info", raw=b"", secret="")
    t.http("POST /connect no secret", "POST", "/connect", body={"username": t.p("u")},
           signed=False)
    t.http("POST /message no secret", "POST", "/message", body=[], signed=False)


def scenario_auth_bad_signature(t):
    good = sign()
    value_ts, sig = good.rsplit(".", 1)
    variants = [
        ("garbage", "garbage"),
        ("no timestamp", "channelstream." + sig),
        ("truncated sig", good[:-1]),
        ("bang in sig", value_ts + "." + sig[:5] + "!" + sig[5:]),
        ("wrong secret", sign(secret="other")),
        ("9-byte timestamp", _nine_byte_ts_token()),
        ("empty ts part (ts=0, expired)", _empty_ts_token()),
    ]
    for name, tok in variants:
        t.http("POST /info " + name, "POST", "/info", raw=b"", secret=tok)
    t.http("bad secret on unknown path", "GET", "/nonexistent", secret="garbage")
    t.http("bad secret on /admin/admin.json", "GET", "/admin/admin.json", secret="garbage")
    t.http("bad secret on /listen", "GET", "/listen", secret="garbage",
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("bad secret param on /disconnect", "GET", "/disconnect", signed=False,
           params={"conn_id": str(uuidlib.uuid4()), "secret": "garbage"})


def _nine_byte_ts_token():
    signed = b"channelstream." + b64url_nopad(b"\x01" * 9)
    mac = hmac.new(derive_key(SECRET), signed, hashlib.sha1).digest()
    return (signed + b"." + b64url_nopad(mac)).decode()


def _empty_ts_token():
    signed = b"channelstream."
    mac = hmac.new(derive_key(SECRET), signed, hashlib.sha1).digest()
    return (signed + b"." + b64url_nopad(mac)).decode()


def scenario_auth_token_variants(t):
    good = sign()
    value_ts, sig = good.rsplit(".", 1)
    std = sig.replace("-", "+").replace("_", "/")
    variants = [
        ("fresh token", good),
        ("JS-style token", sign_js()),
        ("sig with = appended", good + "="),
        ("sig with == appended", good + "=="),
        ("sig in standard alphabet", value_ts + "." + std),
        ("value with dots", sign("anything.with.dots")),
        ("empty value", sign("")),
        ("future +100000 s", sign(ts=int(time.time()) + 100000)),
    ]
    js = _js_token_with_plus_or_slash()
    if js:
        variants.append(("JS-style token whose signature keeps '+' or '/'", js))
    for name, tok in variants:
        t.http("POST /info {} " + name, "POST", "/info", body={}, secret=tok)
    t.http("?secret= query param", "POST", "/info", body={}, signed=False,
           params={"secret": sign()})
    t.http("header name upper-case", "POST", "/info", body={}, signed=False,
           headers={"X-Channelstream-Secret": sign()})


def _js_token_with_plus_or_slash():
    """The JS signer only replaces the first '+' and '/', so some signatures keep one (spec §3.2).
    Search recent (then future, also accepted) timestamps for such a token."""
    now = int(time.time())
    for ts in list(range(now - 30, now + 1)) + list(range(now + 1, now + 5000)):
        tok = sign_js(ts=ts)
        sig = tok.rsplit(".", 1)[1]
        if "+" in sig or "/" in sig:
            return tok
    return None


def scenario_auth_expiry(t):
    now = _aligned_second()
    t.http("60 s old accepted", "POST", "/info", body={}, secret=sign(ts=now - 60))
    now = _aligned_second()
    t.http("61 s old rejected", "POST", "/info", body={}, secret=sign(ts=now - 61))
    t.http("90 s old rejected", "POST", "/info", body={}, secret=sign(ts=int(time.time()) - 90))
    now = _aligned_second()
    t.http("JS-style 60 s old accepted", "POST", "/info", body={}, secret=sign_js(ts=now - 60))


def scenario_routing_404(t):
    for method, path in [("GET", "/"), ("GET", "/demo"), ("GET", "/foo/bar"),
                         ("GET", "/nonexistent"), ("GET", "/messages")]:
        t.http("%s %s unsigned" % (method, path), method, path, signed=False)
        t.http("%s %s signed" % (method, path), method, path)
    for method, path in [("GET", "/connect"), ("PUT", "/subscribe"), ("GET", "/unsubscribe"),
                         ("GET", "/user_state"), ("GET", "/message"), ("PUT", "/message"),
                         ("GET", "/channel_config"), ("POST", "/listen")]:
        t.http("%s %s unsigned (wrong method)" % (method, path), method, path, signed=False)
        t.http("%s %s signed (wrong method)" % (method, path), method, path)
    t.http("GET /admin/foo signed", "GET", "/admin/foo")
    t.http("GET / Accept json", "GET", "/", signed=False, headers={"Accept": "application/json"},
           record_body=False)


def scenario_options_cors(t):
    cors = ("Access-Control-Allow-Origin", "XDomainRequestAllowed",
            "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
            "Access-Control-Max-Age")
    t.http("OPTIONS /no/such/path", "OPTIONS", "/no/such/path", signed=False, keep_headers=cors)
    t.http("OPTIONS /connect", "OPTIONS", "/connect", signed=False, keep_headers=cors,
           headers={"Origin": "http://example.com",
                    "Access-Control-Request-Method": "POST"})
    t.http("200 /info has CORS", "POST", "/info",
           body={"info": {"channels": [t.p("none")]}}, keep_headers=cors)
    t.http("403 has no CORS", "POST", "/info", raw=b"", signed=False, keep_headers=cors)
    t.http("401 has no CORS", "POST", "/info", raw=b"", secret="garbage", keep_headers=cors)
    t.http("404 has no CORS", "GET", "/nonexistent", keep_headers=cors)
    t.http("422 has no CORS", "POST", "/connect", body={}, keep_headers=cors)
    cid = t.connect("connect", t.p("u"))
    t.listen("200 /listen (idle, ~5 s) has CORS", cid)
    t.http("200 /listen headers", "GET", "/listen", signed=False, params={"conn_id": cid},
           keep_headers=cors)
    t.http("200 /disconnect has CORS", "GET", "/disconnect", signed=False,
           params={"conn_id": str(uuidlib.uuid4())}, keep_headers=cors)


def scenario_connect_validation(t):
    cases = [
        ("empty object", {}),
        ("empty username", {"username": ""}),
        ("long username", {"username": "x" * 513}),
        ("bad conn_id + channels not list",
         {"username": "x", "conn_id": "not-a-uuid", "channels": "notalist"}),
        ("bad user_state + fresh_user_state",
         {"username": "x", "user_state": {"a": {"nested": 1}}, "fresh_user_state": [1]}),
        ("bad channel_configs",
         {"username": "x", "channel_configs": {"c": {"history_size": -1,
                                                      "notify_presence": "maybe"}}}),
        ("bad info + state_public_keys",
         {"username": "x", "info": {"channels": [""], "include_history": "x"},
          "state_public_keys": [1]}),
        ("username null", {"username": None}),
        ("username not string", {"username": 5}),
        ("channel too long", {"username": "x", "channels": ["c" * 257]}),
        ("channel empty + not string", {"username": "x", "channels": ["", 3]}),
        ("user_state list value", {"username": "x", "user_state": {"k": [1], "ok": 1}}),
        ("channel_configs not mapping", {"username": "x", "channel_configs": []}),
        ("info not mapping", {"username": "x", "info": 5}),
    ]
    for name, body in cases:
        t.post("422 " + name, "/connect", body)
    t.post("array body", "/connect", [1, 2])
    t.http("invalid json -> 500", "POST", "/connect", raw=b"{not json")
    t.http("empty body -> 500", "POST", "/connect", raw=b"")


def scenario_connect_basic(t):
    alice, bob = t.p("alice"), t.p("bob")
    room, quiet, b_chan = t.p("room"), t.p("quiet"), t.p("b_chan")
    t.connect("connect alice", alice,
              channels=[room, quiet, b_chan],
              fresh_user_state={"status": "online", "private": "secret-x"},
              user_state={"n": 1, "color": "red"},
              state_public_keys=["status", "color"],
              channel_configs={room: {"notify_presence": True, "store_history": True,
                                      "history_size": 3},
                               quiet: {"store_frames": False, "salvageable": True}})
    t.connect("connect bob (sees alice's private state)", bob, channels=[room],
              fresh_user_state={"status": "away"}, state_public_keys=["status"])
    t.connect("connect bob with return_public_state", bob, channels=[room, b_chan],
              state_public_keys=["status"],
              info={"return_public_state": True, "include_history": False})
    t.connect("connect bob include_users false", bob, channels=[room],
              info={"include_users": False, "exclude_channels": [room],
                    "channels": [quiet]})
    t.connect("connect no channels", t.p("carl"))
    t.connect("connect channels unsorted + duplicates", t.p("dora"),
              channels=[t.p("zz"), t.p("aa"), t.p("zz")])


def scenario_connect_reconnect_state(t):
    gina = t.p("gina")
    t.connect("first connect", gina,
              fresh_user_state={"a": 1.5, "b": True, "c": None}, state_public_keys=["a", "c"])
    t.connect("re-connect: fresh ignored, public keys reset", gina,
              fresh_user_state={"a": 99, "z": 1}, user_state={"b": False})
    t.connect("re-connect: user_state merges, null on existing key stored", gina,
              user_state={"a": None, "new": "x"}, state_public_keys=["a", "new", "missing"])
    t.connect("re-connect: equal values unchanged (1 == 1.0 == true)", gina,
              user_state={"b": 0, "new": "x"}, state_public_keys=["b"])


def scenario_connect_conn_id_forms(t):
    frank = t.p("frank")
    chan = t.p("chan")
    fixed = t.cuuid("fixed")
    t.connect("client conn_id upper-case", frank, conn_id=fixed.upper(), channels=[chan])
    t.connect("client conn_id hex without hyphens", frank,
              conn_id=uuidlib.UUID(t.cuuid("hex")).hex)
    t.connect("client conn_id urn form", frank, conn_id="urn:uuid:" + t.cuuid("urn"))
    t.connect("client conn_id braces", frank, conn_id="{%s}" % t.cuuid("braces"))
    t.connect("re-use live conn_id (duplicate connection object)", frank, conn_id=fixed,
              channels=[chan])
    t.post("info: total_connections double counted", "/info",
           {"info": {"channels": [chan]}})


def scenario_connect_coercions(t):
    chan = t.p("c")
    t.connect("channel_configs coercions", t.p("u"), channels=[chan + "1", chan + "2", chan + "3"],
              channel_configs={chan + "1": {"history_size": "5", "notify_presence": "t",
                                            "store_history": 1, "notify_state": "True"},
                               chan + "2": {"history_size": 5.7, "store_frames": "f",
                                            "broadcast_presence_with_user_lists": "TRUE"},
                               chan + "3": {"history_size": True, "store_frames": 0}})
    t.connect("info booleans coerced", t.p("u"), channels=[chan + "1"],
              info={"include_history": "false", "include_users": 0,
                    "return_public_state": "1"})
    t.connect("user_state value types", t.p("v"), user_state={
        "s": "str", "i": 7, "f": 2.25, "b": True, "neg": -3, "big": 12345678901234,
        "uni": "za\u017c\u00f3\u0142\u0107 \u2603"}, state_public_keys=["uni", "f"])


def scenario_subscribe(t):
    alice, bob = t.p("alice"), t.p("bob")
    room, new_chan = t.p("room"), t.p("new_chan")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}},
                  fresh_user_state={"s": 1}, state_public_keys=["s"])
    b = t.connect("connect bob", bob)
    ws_a = t.ws("alice", a)
    t.post("subscribe bob", "/subscribe", {"conn_id": b, "channels": [room, new_chan],
                                            "channel_configs": {
                                                new_chan: {"store_history": True},
                                                room: {"notify_presence": False}}})
    t.frames("alice sees bob joined", ws_a, 1)
    t.post("subscribe again: nothing new", "/subscribe", {"conn_id": b, "channels": [room]})
    t.http("subscribe with conn_id in query", "POST", "/subscribe",
           body={"channels": [t.p("q_chan")]}, params={"conn_id": b})
    t.post("subscribe with info", "/subscribe",
           {"conn_id": b, "channels": [t.p("x")],
            "info": {"return_public_state": True, "include_history": False}})
    t.post("422 {}", "/subscribe", {})
    t.post("422 unknown conn + empty list", "/subscribe",
           {"conn_id": str(uuidlib.uuid4()), "channels": []})
    t.post("422 malformed conn + channel not string", "/subscribe",
           {"conn_id": "nope", "channels": [1]})
    t.post("422 channels not list", "/subscribe", {"conn_id": b, "channels": "x"})
    t.post("non-object body -> 500", "/subscribe", [1])
    t.http("invalid json -> 500", "POST", "/subscribe", raw=b"{")
    t.http("wrong method GET -> 404", "GET", "/subscribe")


def scenario_unsubscribe(t):
    alice, bob = t.p("alice"), t.p("bob")
    room, other = t.p("room"), t.p("other")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}})
    b = t.connect("connect bob", bob, channels=[room, other])
    ws_a = t.ws("alice", a)
    t.post("unsubscribe bob from room + unknown channel", "/unsubscribe",
           {"conn_id": b, "channels": [room, t.p("never_existed")]})
    t.frames("alice sees bob parted", ws_a, 1)
    t.post("unsubscribe again (not subscribed)", "/unsubscribe",
           {"conn_id": b, "channels": [room]})
    t.http("unsubscribe with conn_id in query", "POST", "/unsubscribe",
           body={"channels": [other]}, params={"conn_id": b})
    t.post("422 {}", "/unsubscribe", {})
    t.post("422 unknown conn + empty list", "/unsubscribe",
           {"conn_id": str(uuidlib.uuid4()), "channels": []})
    t.post("non-object body -> 500", "/unsubscribe", [1])
    t.post("info: bob gone from room", "/info", {"info": {"channels": [room, other]}})


def scenario_user_state(t):
    bob = t.p("bob")
    t.connect("connect bob", bob, fresh_user_state={"status": "online", "n": 1},
              state_public_keys=["status"])
    t.post("set state", "/user_state",
           {"user": bob, "user_state": {"status": "busy", "hidden": 5}})
    t.post("public keys null keeps keys", "/user_state",
           {"user": bob, "user_state": {"hidden": 6}, "state_public_keys": None})
    t.post("public keys set", "/user_state",
           {"user": bob, "state_public_keys": ["hidden", "status", "nope"]})
    t.post("absent key to null: no-op", "/user_state", {"user": bob, "user_state": {"ghost": None}})
    t.post("existing key to null: stored", "/user_state", {"user": bob, "user_state": {"n": None}})
    t.post("equal values unchanged (1.0, true)", "/user_state",
           {"user": bob, "user_state": {"hidden": 6.0}})
    t.post("new key flag=1", "/user_state", {"user": bob, "user_state": {"flag": 1}})
    t.post("flag=true unchanged (true == 1)", "/user_state",
           {"user": bob, "user_state": {"flag": True}})
    t.post("public keys [] clears", "/user_state", {"user": bob, "state_public_keys": []})
    t.post("only user", "/user_state", {"user": bob})
    t.post("422 {}", "/user_state", {})
    t.post("422 unknown user", "/user_state", {"user": t.p("nobody")})
    t.post("422 list value", "/user_state", {"user": bob, "user_state": {"x": [1]}})
    t.post("422 object value + bad keys", "/user_state",
           {"user": "", "user_state": {"x": {}}, "state_public_keys": [""]})
    t.post("422 array body", "/user_state", [1])
    t.http("invalid json -> 500", "POST", "/user_state", raw=b"nope")


def scenario_user_state_events(t):
    frank, gus = t.p("frank"), t.p("gus")
    ch, silent = t.p("cu_chan"), t.p("silent")
    f = t.connect("connect frank", frank, channels=[ch, silent],
                  channel_configs={ch: {"notify_state": True}},
                  fresh_user_state={"status": "online"}, state_public_keys=["status"])
    g = t.connect("connect gus", gus, channels=[ch, silent])
    ws_f = t.ws("frank", f)
    ws_g = t.ws("gus", g)
    t.post("public change", "/user_state", {"user": frank, "user_state": {"status": "busy"}})
    t.frames("frank gets his own state change", ws_f, 1)
    t.frames("gus gets frank's state change", ws_g, 1)
    t.post("private-only change -> changed []", "/user_state",
           {"user": frank, "user_state": {"private_only": 1}})
    t.frames("frank: changed []", ws_f, 1)
    t.frames("gus: changed []", ws_g, 1)
    t.post("no change -> no event", "/user_state", {"user": frank, "user_state": {"status": "busy"}})
    t.message("barrier", [{"channel": ch, "user": "sys", "message": {"barrier": 1}}])
    t.frames("gus: only the barrier", ws_g, 1)
    t.frames("frank: only the barrier", ws_f, 1)


def scenario_message_batch9(t):
    alice, bob = t.p("alice"), t.p("bob")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room])
    b = t.connect("connect bob", bob, channels=[room])
    ws_a = t.ws("alice", a)
    pend = t.listen_async("bob long poll", b)
    # The poll must have attached its queue before we post (else delivery goes to catch-up with
    # catchup=true): nothing observable tells us, so give it a generous second.
    time.sleep(1.0)
    items = [
        {"channel": room, "user": alice, "message": {"text": "hello room"}},
        {"channel": room, "pm_users": [alice], "user": "system",
         "message": {"text": "pm inside room for alice"}},
        {"channel": room, "exclude_users": [alice], "user": "system",
         "message": {"text": "not for alice"}},
        {"channel": room, "no_history": True, "user": "system", "message": {"text": "not stored"}},
        {"pm_users": [alice, t.p("ghost")], "user": "system", "message": {"text": "global pm"}},
        {"user": "system", "message": {"text": "no target"}},
        {"channel": t.p("unknown"), "user": "system", "message": {"text": "nowhere"}},
        {"channel": room, "uuid": t.cuuid("aa", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
         "timestamp": "2020-01-02T03:04:05Z", "user": "system",
         "message": {"text": "client uuid+timestamp"}, "type": "ignored", "extra_field": 1},
        {"channel": room, "user": "system"},
    ]
    t.message("POST 9 items", items)
    t.frames("alice frames", ws_a, 6)
    pend.join()


def scenario_message_validation(t):
    room = t.p("room")
    cases = [
        ("object instead of array", {}),
        ("missing user", [{"channel": room}]),
        ("bad message/uuid/timestamp",
         [{"user": "x", "channel": room, "message": "not-a-dict", "uuid": "zzz",
           "timestamp": "yesterday"}]),
        ("pm_users null", [{"user": "x", "channel": room, "pm_users": None}]),
        ("message null", [{"user": "x", "channel": room, "message": None}]),
        ("channel empty", [{"user": "x", "channel": ""}]),
        ("user not string", [{"user": 123, "channel": room}]),
        ("date-only timestamp", [{"user": "x", "channel": room, "timestamp": "2020-01-01"}]),
        ("numeric timestamp", [{"user": "x", "channel": room, "timestamp": 12345}]),
        ("no_history not bool", [{"user": "x", "channel": room, "no_history": "yes"}]),
        ("exclude_users item empty", [{"user": "x", "channel": room, "exclude_users": [""]}]),
        ("second item invalid rejects batch",
         [{"user": "x", "channel": room}, {"channel": room}]),
    ]
    for name, body in cases:
        t.message("422 " + name, body)
    t.message("empty array -> 200 []", [])
    t.http("text/plain content type is fine", "POST", "/message",
           raw=json.dumps([{"user": "x", "channel": room}]), headers={"Content-Type": "text/plain"})
    t.http("no content type is fine", "POST", "/message",
           raw=json.dumps([{"user": "x", "channel": room}]))
    t.message("only untargeted items -> 200 []", [{"user": "x"}, {"user": "y", "pm_users": []}])
    t.http("invalid json -> 500", "POST", "/message", raw=b"[")
    t.http("empty body -> 500", "POST", "/message", raw=b"")


def scenario_message_formats(t):
    room = t.p("room")
    a = t.connect("connect", t.p("alice"), channels=[room])
    ws_a = t.ws("alice", a)
    items = [
        {"channel": room, "user": "u", "timestamp": "2010-01-01T01:01", "message": {}},
        {"channel": room, "user": "u", "timestamp": "2010-01-01 01:01:01.5+02:00"},
        {"channel": room, "user": "u", "timestamp": "2010-01-01T01:01:01.123456789Z"},
        {"channel": room, "user": "u", "timestamp": "2010-1-2T3:04:05-0130"},
        {"channel": room, "user": "u", "uuid": t.cuuid("upper").upper()},
        {"channel": room, "user": "u", "uuid": uuidlib.UUID(t.cuuid("hex")).hex},
        {"channel": room, "user": "u", "no_history": "t", "pm_users": [],
         "exclude_users": [t.p("nobody")]},
        {"channel": room, "user": "\u017c\u00f3\u0142\u0107",
         "message": {"text": "\u2603 snow", "n": [1, 2.5, None, True, {"deep": {"x": []}}]}},
    ]
    t.message("POST formats", items)
    t.frames("alice frames", ws_a, len(items))


def scenario_message_delivery_rules(t):
    alice, bob, carl = t.p("alice"), t.p("bob"), t.p("carl")
    room = t.p("room")
    a1 = t.connect("alice tab 1", alice, channels=[room])
    a2 = t.connect("alice tab 2", alice, channels=[room])
    b = t.connect("bob", bob, channels=[room])
    c = t.connect("carl (not in room)", carl)
    ws = {n: t.ws(n, cid) for n, cid in (("alice1", a1), ("alice2", a2), ("bob", b),
                                         ("carl", c))}
    t.message("exclude wins over pm", [
        {"channel": room, "user": "s", "pm_users": [alice, bob], "exclude_users": [bob],
         "message": {"n": 1}}])
    t.message("pm in room for carl (not a member): nobody", [
        {"channel": room, "user": "s", "pm_users": [carl], "message": {"n": 2}}])
    t.message("global pm to carl and bob", [
        {"user": "s", "pm_users": [carl, bob], "message": {"n": 3}}])
    t.message("barrier to everyone in room", [{"channel": room, "user": "s",
                                               "message": {"n": "barrier"}}])
    t.frames("alice tab 1", ws["alice1"], 2)
    t.frames("alice tab 2", ws["alice2"], 2)
    t.frames("bob", ws["bob"], 2)
    t.frames("carl", ws["carl"], 1)
    t.http("admin.json stats (per scenario users only)", "GET", "/admin/admin.json",
           transform=_admin_view(t.prefix))


def _admin_view(prefix):
    """admin.json is global: keep the key order and types of the counters (values depend on all
    concurrent scenarios), and only this scenario's channels/users (users sorted: dict order)."""
    def tr(body):
        if not isinstance(body, dict):
            return body
        out = {}
        for k, v in body.items():
            if k == "channels" and isinstance(v, dict):
                out[k] = {n: c for n, c in v.items() if n.startswith(prefix)}
            elif k == "users" and isinstance(v, list):
                mine = [u for u in v if isinstance(u, dict)
                        and str(u.get("user", "")).startswith(prefix)]
                out[k] = sorted(mine, key=lambda u: str(u.get("user")))
            elif isinstance(v, int) and not isinstance(v, bool):
                out[k] = "<int>"
            else:
                out[k] = v
        return out
    return tr


def scenario_message_history(t):
    h, big, none = t.p("hist"), t.p("big"), t.p("nohist")
    t.post("configure", "/channel_config", {
        h: {"store_history": True, "history_size": 3},
        big: {"store_history": True, "history_size": 0},
        none: {"store_history": False}})
    t.message("5 messages to hist incl. no_history and pm", [
        {"channel": h, "user": "u", "message": {"i": 1}},
        {"channel": h, "user": "u", "message": {"i": 2}, "no_history": True},
        {"channel": h, "user": "u", "message": {"i": 3}, "pm_users": [t.p("someone_else")]},
        {"channel": h, "user": "u", "message": {"i": 4}, "exclude_users": [t.p("x")]},
        {"channel": h, "user": "u", "message": {"i": 5}},
        {"channel": h, "user": "u", "message": {"i": 6}},
    ])
    t.message("12 messages to history_size 0 channel",
              [{"channel": big, "user": "u", "message": {"i": i}} for i in range(12)])
    t.message("1 message to no-history channel", [{"channel": none, "user": "u"}])
    # Delivery is asynchronous (after the response): a websocket barrier would need a member;
    # instead poll /info until the last message shows up (bounded), then record once.
    _wait_history(t, big, 12)
    _wait_history(t, h, 3, last_i=6)
    t.post("info history", "/info", {"info": {"channels": [h, big, none]}})
    t.post("info include_history false", "/info",
           {"info": {"channels": [h], "include_history": False}})
    t.connect("connect shows history by default", t.p("reader"), channels=[h])


def _wait_history(t, chan, n, last_i=None, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.post(t.base + "/info", json={"info": {"channels": [chan]}},
                          headers={"x-channelstream-secret": sign()}, timeout=10)
        try:
            hist = r.json()["channels"][chan]["history"]
            if len(hist) >= n and (last_i is None or hist[-1]["message"]["i"] == last_i):
                return True
        except Exception:
            pass
        time.sleep(0.05)
    t.warn("history of %s did not reach %d entries" % (chan, n))
    return False


def scenario_edit(t):
    alice = t.p("alice")
    room, he = t.p("room"), t.p("he")
    a = t.connect("connect alice", alice, channels=[room, he],
                  channel_configs={he: {"store_history": True}})
    ws_a = t.ws("alice", a)
    orig = t.cuuid("orig")
    pm = t.cuuid("pm")
    r = t.message("originals", [
        {"channel": he, "uuid": orig, "user": "u", "message": {"t": "orig"}},
        {"channel": room, "user": alice, "message": {"text": "hello room"}},
        {"pm_users": [alice], "uuid": pm, "user": "system", "message": {"text": "global pm"}}])
    t.frames("alice originals", ws_a, 3)
    room_uuid = r.parsed[1]["uuid"] if isinstance(r.parsed, list) and len(r.parsed) > 1 else None
    t.http("edit history msg (upper-case uuid, Z timestamp)", "PATCH", "/message", body=[
        {"channel": he, "uuid": orig.upper(), "message": {"t": "new", "extra": 1},
         "timestamp": "2021-05-05T05:05:05Z"}])
    t.frames("alice edit event 1", ws_a, 1)
    t.http("edit frame-only msg (user + message)", "PATCH", "/message", body=[
        {"channel": room, "uuid": room_uuid, "user": alice + "2",
         "message": {"text": "hello room (edited)"}}])
    t.frames("alice edit event 2", ws_a, 1)
    t.http("edit global pm with fixed times", "PATCH", "/message", body=[
        {"pm_users": [alice], "uuid": pm, "timestamp": "2011-01-01T00:00:00",
         "edited": "2011-01-01T00:00:01", "message": {"text": "global pm (edited)"}}])
    t.frames("alice edit event 3", ws_a, 1)
    t.http("edit unknown uuid: still broadcast", "PATCH", "/message", body=[
        {"channel": room, "uuid": str(uuidlib.uuid4()), "message": {"x": 1}}])
    t.frames("alice edit event 4", ws_a, 1)
    t.http("edit without target: echoed, nothing sent", "PATCH", "/message", body=[
        {"uuid": str(uuidlib.uuid4()), "user": "nobody"}])
    t.http("edit excluding alice", "PATCH", "/message", body=[
        {"channel": room, "uuid": room_uuid, "exclude_users": [alice], "message": {"x": 2}}])
    t.message("barrier", [{"channel": room, "user": "s", "message": {"barrier": 1}}])
    t.frames("alice: only barrier", ws_a, 1)
    t.post("info after edits", "/info", {"info": {"channels": [he]}})
    t.http("422 missing uuid", "PATCH", "/message", body=[{"channel": room}])
    t.http("422 bad edited", "PATCH", "/message",
           body=[{"uuid": orig, "edited": "nope", "message": 1}])
    t.http("422 object body", "PATCH", "/message", body={"uuid": orig})
    t.http("empty array", "PATCH", "/message", body=[])


def scenario_delete(t):
    alice = t.p("alice")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"store_history": True}})
    ws_a = t.ws("alice", a)
    r = t.message("originals", [
        {"channel": room, "user": alice, "message": {"text": "one"}},
        {"channel": room, "user": alice, "message": {"text": "two"}},
        {"pm_users": [alice], "user": "system", "message": {"text": "pm"}}])
    t.frames("alice originals", ws_a, 3)
    uuids = [m.get("uuid") for m in r.parsed] if isinstance(r.parsed, list) else [None] * 3
    t.http("delete channel msg", "DELETE", "/message",
           body=[{"channel": room, "uuid": uuids[0]}])
    t.frames("alice delete event", ws_a, 1)
    t.http("delete global pm", "DELETE", "/message",
           body=[{"pm_users": [alice], "uuid": uuids[2]}])
    t.frames("alice pm delete event", ws_a, 1)
    t.http("delete unknown uuid: still broadcast", "DELETE", "/message",
           body=[{"channel": room, "uuid": str(uuidlib.uuid4())}])
    t.frames("alice unknown delete event", ws_a, 1)
    t.post("info: one message left", "/info", {"info": {"channels": [room]}})
    t.http("delete with extra fields ignored", "DELETE", "/message",
           body=[{"channel": room, "uuid": uuids[1], "user": "x", "message": {}}])
    t.frames("alice delete event 2", ws_a, 1)
    t.post("info: history empty", "/info", {"info": {"channels": [room]}})
    t.http("[] -> 200 []", "DELETE", "/message", body=[])
    t.http("[{}] -> 422", "DELETE", "/message", body=[{}])
    t.http("object -> 422", "DELETE", "/message", body={"uuid": uuids[1]})
    t.http("bad uuid -> 422", "DELETE", "/message", body=[{"uuid": "x", "channel": ""}])


def scenario_edit_delete_catchup(t):
    """Edit/delete frames are stored as channel frames and replayed by catch-up."""
    alice = t.p("alice")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room])
    r = t.message("original", [{"channel": room, "user": "u", "message": {"v": 1}}])
    mid = r.parsed[0]["uuid"] if isinstance(r.parsed, list) and r.parsed else None
    t.http("edit", "PATCH", "/message", body=[{"channel": room, "uuid": mid,
                                                "message": {"v": 2}}])
    t.http("delete", "DELETE", "/message", body=[{"channel": room, "uuid": mid}])
    t.message("marker", [{"channel": room, "user": "u", "message": {"v": "marker"}}])
    _wait_frames_stored(t, room)
    ws_a = t.ws("alice", a)
    t.frames("catch-up on open: edit, delete, marker (delete removed the message frame)",
             ws_a, 3)


def _wait_frames_stored(t, chan, timeout=5.0):
    """Catch-up scenarios need the async deliveries to have happened before the socket attaches.
    The channel's last_active moves with every add_message; poll until it stops moving."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = requests.post(t.base + "/info", json={"info": {"channels": [chan]}},
                          headers={"x-channelstream-secret": sign()}, timeout=10)
        try:
            cur = r.json()["channels"][chan]["last_active"]
        except Exception:
            cur = None
        if cur is not None and cur == last:
            return
        last = cur
        time.sleep(0.2)


def scenario_channel_config(t):
    room, brand_new = t.p("room"), t.p("brand_new")
    alice = t.p("alice")
    t.connect("connect alice", alice, channels=[room], channel_configs={room: {
        "notify_presence": True, "store_history": True, "broadcast_presence_with_user_lists": True,
        "notify_state": True, "history_size": 7, "store_frames": False}})
    t.post("new channel + unknown key ignored", "/channel_config",
           {brand_new: {"notify_presence": True, "salvageable": True}})
    t.post("partial config resets the rest", "/channel_config", {room: {"history_size": 5}})
    t.post("all six keys", "/channel_config", {room: {
        "notify_presence": True, "store_history": True, "history_size": 0,
        "broadcast_presence_with_user_lists": True, "notify_state": True, "store_frames": False}})
    t.post("null value leaves channel unchanged", "/channel_config", {room: None})
    t.post("two channels, request order", "/channel_config",
           {room: {"store_history": True}, brand_new: {}})
    t.post("{} -> empty", "/channel_config", {})
    t.post("422 history_size big (not nested)", "/channel_config",
           {room: {"history_size": "big"}})
    t.post("422 history_size null", "/channel_config", {t.p("c9"): {"history_size": None}})
    t.post("422 several errors", "/channel_config",
           {t.p("c10"): {"history_size": -1, "notify_presence": "maybe", "store_frames": None}})
    t.post("array body -> 500", "/channel_config", [1])
    t.http("invalid json -> 500", "POST", "/channel_config", raw=b"{")
    t.post("info shows total_users", "/info", {"info": {"channels": [room]}})


def scenario_info_variants(t):
    a_chan, b_chan, c_chan = t.p("a"), t.p("b"), t.p("c")
    alice, bob = t.p("alice"), t.p("bob")
    t.connect("connect alice", alice, channels=[a_chan, b_chan],
              channel_configs={a_chan: {"store_history": True}},
              fresh_user_state={"pub": 1, "priv": 2}, state_public_keys=["pub"])
    t.connect("connect bob", bob, channels=[b_chan, c_chan],
              fresh_user_state={"pub": "b"}, state_public_keys=["pub"])
    t.message("one message", [{"channel": a_chan, "user": "u", "message": {"m": 1}}])
    _wait_history(t, a_chan, 1)
    mine = only_prefixed(t.prefix)
    t.http("empty body POST: everything (filtered)", "POST", "/info", raw=b"", transform=mine)
    t.http("empty body GET", "GET", "/info", transform=mine)
    t.http("empty body PUT", "PUT", "/info", raw=b"", transform=mine)
    t.http("empty body DELETE", "DELETE", "/info", transform=mine)
    t.post("{} -> 422", "/info", {})
    t.post("info {} -> all channels (filtered)", "/info", {"info": {}}, transform=mine)
    t.post("channels filter, request order, unknown skipped", "/info",
           {"info": {"channels": [c_chan, t.p("nope"), a_chan]}})
    t.post("exclude_channels", "/info",
           {"info": {"channels": [a_chan, b_chan, c_chan], "exclude_channels": [b_chan]}})
    t.post("return_public_state", "/info",
           {"info": {"channels": [a_chan, b_chan], "return_public_state": True}})
    t.post("include_users false", "/info",
           {"info": {"channels": [b_chan], "include_users": False}})
    t.post("include_history false + include_connections", "/info",
           {"info": {"channels": [a_chan], "include_history": False,
                     "include_connections": True}})
    t.post("422 channels not list", "/info", {"info": {"channels": a_chan}})
    t.post("422 array body", "/info", [1])
    t.post("422 info not object", "/info", {"info": [1]})
    t.post("422 bad booleans", "/info",
           {"info": {"include_history": "maybe", "exclude_channels": [""]}})
    t.http("invalid json -> 500", "POST", "/info", raw=b"{")


def scenario_disconnect(t):
    alice, bob = t.p("alice"), t.p("bob")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}})
    b = t.connect("connect bob", bob, channels=[room])
    b2 = t.connect("connect bob 2nd conn (kept for POST)", bob)
    ws_a = t.ws("alice", a)
    ws_b = t.ws("bob", b)
    t.http("GET ?conn_id=unknown -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("GET ?conn_id=live -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": b})
    t.frames("bob's socket closed by server", ws_b, 1)
    t.frames("alice sees bob parted", ws_a, 1)
    t.http("POST json live -> true", "POST", "/disconnect", signed=False, body={"conn_id": b2})
    t.http("POST json again -> still true: channel-less connections are never collected", "POST",
           "/disconnect", signed=False, body={"conn_id": b2}, params={"conn_id": b2})
    t.http("GET missing -> 422", "GET", "/disconnect", signed=False)
    t.http("GET malformed -> 422", "GET", "/disconnect", signed=False, params={"conn_id": "x"})
    t.http("POST {} -> 422", "POST", "/disconnect", signed=False, body={})
    t.http("POST malformed -> 422", "POST", "/disconnect", signed=False, body={"conn_id": 5})
    t.http("POST empty body -> 500 even with query", "POST", "/disconnect", signed=False,
           raw=b"", params={"conn_id": a})
    t.http("POST invalid json -> 500", "POST", "/disconnect", signed=False, raw=b"{")
    t.http("PUT ?conn_id=unknown -> false", "PUT", "/disconnect", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("DELETE ?conn_id= (empty) -> 422", "DELETE", "/disconnect?conn_id=", signed=False)


def scenario_admin_json(t):
    u = t.p("u1")
    c1 = t.p("c1")
    t.connect("connect", u, channels=[c1], channel_configs={c1: {"store_history": True}},
              fresh_user_state={"s": 1, "hidden": 2}, state_public_keys=["s"])
    t.message("hi", [{"channel": c1, "user": u, "message": {"text": "hi"}}])
    _wait_history(t, c1, 1)
    view = _admin_view(t.prefix)
    t.http("GET signed", "GET", "/admin/admin.json", transform=view)
    t.http("POST signed (body ignored)", "POST", "/admin/admin.json", raw=b"{not json",
           transform=view)
    t.http("GET ?secret= param", "GET", "/admin/admin.json", signed=False,
           params={"secret": sign()}, transform=view)
    resp = t.http("GET unsigned -> 302", "GET", "/admin/admin.json", signed=False,
                  record_body=False)
    t.note("302 Location path", _loc_path(resp.headers.get("Location")))
    t.http("GET bad signature -> 401", "GET", "/admin/admin.json", secret="garbage")
    resp = t.http("GET /admin unsigned -> 302", "GET", "/admin", signed=False, record_body=False)
    t.note("/admin 302 Location path", _loc_path(resp.headers.get("Location")))
    t.http("GET /admin/foo signed -> 404", "GET", "/admin/foo")


def _loc_path(loc):
    if not loc:
        return loc
    return re.sub(r"^https?://[^/]+", "", loc)


def scenario_openapi(t):
    resp = t.http("GET signed", "GET", "/openapi.json", record_body=False)
    body = resp.parsed if isinstance(resp.parsed, dict) else {}
    t.note("swagger", body.get("swagger"))
    t.note("info", body.get("info"))
    t.note("path keys", sorted((body.get("paths") or {}).keys()))
    t.note("/message methods", sorted(((body.get("paths") or {}).get("/message") or {}).keys()))
    t.note("definition keys", sorted((body.get("definitions") or {}).keys()))
    t.note("securityDefinitions", body.get("securityDefinitions"))
    t.http("GET unsigned -> 403", "GET", "/openapi.json", signed=False)
    t.http("GET bad signature -> 401", "GET", "/openapi.json", secret="garbage")


def scenario_presence_plain(t):
    alice, bob = t.p("alice"), t.p("bob")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}},
                  fresh_user_state={"status": "online", "secret": 1},
                  state_public_keys=["status"])
    ws_a = t.ws("alice", a)
    b = t.connect("connect bob", bob, channels=[room], fresh_user_state={"status": "away"},
                  state_public_keys=["status"])
    t.frames("alice: bob joined (users [])", ws_a, 1)
    ws_b = t.ws("bob", b)
    b2 = t.connect("bob second connection: no new joined", bob, channels=[room])
    t.post("bob 2nd conn unsubscribes: no parted (bob still has a conn)", "/unsubscribe",
           {"conn_id": b2, "channels": [room]})
    t.post("bob unsubscribes: parted", "/unsubscribe", {"conn_id": b, "channels": [room]})
    t.frames("alice: bob parted (state null)", ws_a, 1)
    t.frames("bob's socket: never his own presence", ws_b, 0)


def scenario_presence_user_lists(t):
    alice, bob, carol = t.p("alice"), t.p("bob"), t.p("carol")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True,
                                          "broadcast_presence_with_user_lists": True}},
                  fresh_user_state={"status": "online", "color": "red", "priv": 1},
                  state_public_keys=["status", "color"])
    ws_a = t.ws("alice", a)
    t.connect("connect bob", bob, channels=[room], fresh_user_state={"status": "away"},
              state_public_keys=["status"])
    t.frames("alice: bob joined with users", ws_a, 1)
    c = t.connect("connect carol", carol, channels=[room])
    t.frames("alice: carol joined", ws_a, 1)
    ws_c = t.ws("carol", c)
    ws_c.close()
    t.frames("carol's close reply", ws_c, 1)
    t.frames("alice: carol parted after socket close (GC <= 1 s)", ws_a, 1, timeout=6)


def scenario_catchup_ws(t):
    frank, other = t.p("frank"), t.p("other")
    ch, nof = t.p("cu_chan"), t.p("noframes")
    f = t.connect("connect frank", frank, channels=[ch, nof],
                  channel_configs={nof: {"store_frames": False}})
    t.connect("connect other", other, channels=[ch])
    t.message("to store_frames=false channel: never caught up", [
        {"channel": nof, "user": "s", "message": {"text": "lost"}}])
    t.message("messages while frank has no socket", [
        {"channel": ch, "user": "s", "message": {"text": "channel msg"}},
        {"channel": ch, "user": "s", "pm_users": [other], "message": {"text": "pm other"}},
        {"channel": ch, "user": "s", "exclude_users": [frank], "message": {"text": "excl"}},
        {"channel": ch, "user": "s", "pm_users": [frank], "no_history": True,
         "message": {"text": "pm frank in chan"}},
        {"user": "s", "pm_users": [frank], "message": {"text": "global pm"}},
        {"user": "s", "pm_users": [other], "message": {"text": "global pm other"}},
    ])
    _wait_frames_stored(t, ch)
    ws_f = t.ws("frank", f)
    t.frames("catch-up on ws open", ws_f, 3)
    t.message("live after catch-up", [{"channel": nof, "user": "s", "message": {"text": "live"}}])
    t.frames("live message", ws_f, 1)


def scenario_catchup_listen(t):
    bob, other = t.p("bob"), t.p("other")
    room = t.p("room")
    b = t.connect("connect bob", bob, channels=[room])
    t.connect("connect other", other, channels=[room])
    t.message("while bob is away", [
        {"channel": room, "user": other, "message": {"text": "while bob is away"}},
        {"channel": room, "user": "s", "pm_users": [other], "message": {"text": "pm other"}},
        {"user": "s", "pm_users": [bob], "message": {"text": "global pm bob"}},
    ])
    _wait_frames_stored(t, room)
    t.listen("listen: catch-up", b)
    t.message("while bob is away again", [
        {"channel": room, "user": other, "message": {"text": "second"}}])
    _wait_frames_stored(t, room)
    t.listen("listen with JSONP callback: catch-up", b, callback="myCb")


def scenario_listen_errors(t):
    t.http("no conn_id -> 500", "GET", "/listen", signed=False)
    t.http("malformed -> 422", "GET", "/listen", signed=False, params={"conn_id": "not-a-uuid"})
    t.http("unknown -> 401", "GET", "/listen", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("POST -> 404", "POST", "/listen", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("unknown, upper-case form -> 401", "GET", "/listen", signed=False,
           params={"conn_id": str(uuidlib.uuid4()).upper()})
    t.http("empty conn_id -> 422", "GET", "/listen?conn_id=", signed=False)


def scenario_listen_live(t):
    bob = t.p("bob")
    room = t.p("room")
    b = t.connect("connect bob", bob, channels=[room])
    pend = t.listen_async("listen: live delivery batched", b, callback="cb.x")
    time.sleep(1.0)  # the poll must be attached before posting (see batch9)
    t.message("two messages", [{"channel": room, "user": "u", "message": {"i": 1}},
                               {"channel": room, "user": "u", "message": {"i": 2}}])
    pend.join()


def scenario_ws_unknown_conn(t):
    s = t.ws("unknown", str(uuidlib.uuid4()))
    t.frames("server closes with 1000", s, 1)
    s2 = t.ws("unknown upper-case", str(uuidlib.uuid4()).upper())
    t.frames("server closes with 1000 (upper-case id)", s2, 1)


def scenario_ws_malformed_conn(t):
    s = t.ws("malformed", "not-a-uuid")
    t.frames("dropped without close frame", s, 1)
    s2 = t.ws("missing", query="")
    t.frames("missing conn_id: dropped", s2, 1)
    s3 = t.ws("empty", query="?conn_id=")
    t.frames("empty conn_id: dropped", s3, 1)


def _raw_http(base, request_bytes, timeout=5.0):
    """Send raw bytes, return (status, headers dict lower-cased).  For handshakes requests can't do."""
    host, port = re.match(r"https?://([^:/]+):(\d+)", base).groups()
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        s.sendall(request_bytes)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin1")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and len(lines[0].split(" ")) > 1 else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


def scenario_ws_handshake(t):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    cid = t.connect("connect", t.p("u"))
    req = ("GET /ws?conn_id=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Origin: http://evil.example\r\nx-channelstream-secret: garbage\r\n\r\n" % (cid, key))
    status, headers = _raw_http(t.base, req.encode())
    t.note("handshake status", status)
    # header tokens are case-insensitive (RFC 6455 4.2.2): compare upgrade/connection lower-cased
    t.note("handshake headers", {
        "upgrade": (headers.get("upgrade") or "").lower(),
        "connection": (headers.get("connection") or "").lower(),
        "sec-websocket-accept": headers.get("sec-websocket-accept"),
        "sec-websocket-protocol": headers.get("sec-websocket-protocol"),
        "access-control-allow-origin": headers.get("access-control-allow-origin")})
    req8 = req.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")
    status8, _ = _raw_http(t.base, req8.encode())
    t.note("version 8 accepted", status8)


def scenario_ws_bad_upgrade(t):
    """Real server: 500 (ws4py HandshakeError).  Herald answers 400/426 (RFC 6455): accepted
    deviation, see DEVIATIONS."""
    t.http("GET /ws without upgrade headers", "GET", "/ws", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("GET /ws bad version", "GET", "/ws", signed=False,
           params={"conn_id": str(uuidlib.uuid4())},
           headers={"Upgrade": "websocket", "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version": "99"})
    t.http("GET /ws missing version", "GET", "/ws", signed=False,
           headers={"Upgrade": "websocket", "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    # /ws never reaches the Pyramid app, so not even OPTIONS gets the usual 200 + CORS answer
    t.http("OPTIONS /ws (no upgrade)", "OPTIONS", "/ws", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})


def scenario_ws_client_frames(t):
    alice = t.p("alice")
    room = t.p("room")
    a = t.connect("connect", alice, channels=[room])
    ws_a = t.ws("alice", a)
    ws_a.send_text('{"type": "heartbeat"}')
    ws_a.send_text("this is not json")
    ws_a.send_binary(b"\x00\x01\x02")
    # a fragmented text message with a ping between the fragments (allowed by RFC 6455 5.4)
    ws_a.ws.send_frame(websocket.ABNF.create_frame("frag-1 ", websocket.ABNF.OPCODE_TEXT, fin=0))
    ws_a.ws.send_frame(websocket.ABNF.create_frame("mid", websocket.ABNF.OPCODE_PING))
    ws_a.ws.send_frame(websocket.ABNF.create_frame("frag-2", websocket.ABNF.OPCODE_CONT, fin=1))
    ws_a.send_text("x" * 70000)  # 64-bit payload length from the client
    t.note("ping answered with pong", ws_a.sync())
    t.message("message after client frames", [{"channel": room, "user": "u", "message": {"k": 1}}])
    t.frames("no replies, message delivered", ws_a, 1)


def scenario_ws_two_sockets_same_conn(t):
    alice = t.p("alice")
    room = t.p("room")
    a = t.connect("connect", alice, channels=[room])
    first = t.ws("first", a)
    second = t.ws("second", a)
    # Socket attach is in the handshake path; the barrier below only goes to whichever socket is
    # attached.  Wait until the second is attached: a message to the room then reaches it.
    t.message("message", [{"channel": room, "user": "u", "message": {"k": 1}}])
    t.frames("second socket gets it", second, 1)
    t.frames("first socket orphaned: nothing", first, 0)


def scenario_ws_close_gc(t):
    alice, carol = t.p("alice"), t.p("carol")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}})
    ws_a = t.ws("alice", a)
    c = t.connect("connect carol", carol, channels=[room])
    t.frames("alice: carol joined", ws_a, 1)
    ws_c = t.ws("carol", c)
    ws_c.close()
    t.frames("carol: close reply", ws_c, 1)
    t.frames("alice: carol parted", ws_a, 1, timeout=6)
    t.http("listen on carol's conn -> 401 (collected)", "GET", "/listen", signed=False,
           params={"conn_id": c})
    t.http("disconnect carol -> false", "GET", "/disconnect", signed=False, params={"conn_id": c})
    t.post("info: only alice", "/info", {"info": {"channels": [room]}})


def scenario_auth_ip_whitelist(t):
    """127.0.0.2 is not in allow_posting_from: 403 even with a valid signature, and a bad one is
    never checked.  The client API has no whitelist."""
    src = "127.0.0.2"
    t.http("valid signature from 127.0.0.2 -> 403", "POST", "/info", body={}, source=src)
    t.http("bad signature from 127.0.0.2 -> 403 (never checked)", "POST", "/info", body={},
           secret="garbage", source=src)
    t.http("no secret from 127.0.0.2 -> 403", "POST", "/connect", body={"username": "x"},
           signed=False, source=src)
    t.http("admin.json from 127.0.0.2 -> 302", "GET", "/admin/admin.json", source=src,
           record_body=False)
    cid = t.connect("connect from 127.0.0.1", t.p("u"), channels=[t.p("room")])
    t.http("disconnect from 127.0.0.2 works (client API)", "GET", "/disconnect", signed=False,
           params={"conn_id": cid}, source=src)
    t.http("listen from 127.0.0.2, malformed id -> 422", "GET", "/listen", signed=False,
           params={"conn_id": "x"}, source=src)
    t.http("wrong method from 127.0.0.2 -> 404", "GET", "/connect", source=src)


def _cookie_view(resp):
    """The parts of the admin cookie that matter to a browser (not its value)."""
    raw = resp.headers.get("Set-Cookie") or ""
    parts = [p.strip() for p in raw.split(";")]
    first = parts[0].split("=", 1) if parts and parts[0] else [None, None]
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return {"name": first[0], "has_value": bool(len(first) > 1 and first[1].strip('"')),
            "max-age": attrs.get("max-age"), "path": attrs.get("path")}


def scenario_admin_sign_in(t):
    t.http("GET sign_in page", "GET", "/admin/sign_in", signed=False, record_body=False)
    t.http("wrong password -> 200 page again", "POST", "/admin/sign_in", signed=False,
           form={"username": "admin", "password": "wrong"}, record_body=False)
    r = t.http("right credentials (padded) -> 302", "POST", "/admin/sign_in", signed=False,
               form={"username": " admin ", "password": "admin_secret "}, record_body=False)
    t.note("Location path", _loc_path(r.headers.get("Location")))
    t.note("cookie", _cookie_view(r))
    jar = {c.name: c.value for c in r.cookies}
    t.http("admin.json with cookie only", "GET", "/admin/admin.json", signed=False, cookies=jar,
           transform=_admin_view(t.prefix))
    t.http("/admin page with cookie", "GET", "/admin", signed=False, cookies=jar,
           record_body=False)
    t.http("openapi.json with cookie", "GET", "/openapi.json", signed=False, cookies=jar,
           record_body=False)
    r = t.http("sign_out -> 302", "GET", "/admin/sign_out", signed=False, cookies=jar,
               record_body=False)
    t.note("sign_out Location path", _loc_path(r.headers.get("Location")))
    t.note("sign_out cookie", _cookie_view(r))
    t.http("bogus cookie -> 302", "GET", "/admin/admin.json", signed=False,
           cookies={"auth_tkt": "bogus"}, record_body=False)


def scenario_message_large(t):
    room = t.p("room")
    a = t.connect("connect ws", t.p("alice"), channels=[room])
    b = t.connect("connect long poll", t.p("bob"), channels=[room])
    sock = t.ws("alice", a)
    big = "".join(chr(0x41 + (i % 26)) for i in range(100000)) + "\u2603"
    t.message("100 KB message", [{"channel": room, "user": "u", "message": {"big": big}}])
    t.frames("alice gets the big frame", sock, 1)
    _wait_frames_stored(t, room)
    t.listen("bob gets it by catch-up", b)


def scenario_stats_unknown_channel(t):
    t.message("message to unknown channel accepted", [
        {"channel": t.p("nowhere"), "user": "u", "message": {"x": 1}}])
    t.post("channel not auto-created", "/info", {"info": {"channels": [t.p("nowhere")]}})


def scenario_nonascii_roundtrip(t):
    name = t.p("za\u017c\u00f3\u0142\u0107")
    chan = t.p("kana\u0142 \u2603")
    cid = t.connect("connect non-ascii user + channel", name, channels=[chan],
                    fresh_user_state={"\u2603": "\u00e9"}, state_public_keys=["\u2603"])
    sock = t.ws("u", cid)
    t.message("non-ascii message", [{"channel": chan, "user": name,
                                     "message": {"t": "\u4f60\u597d \U0001F600"}}])
    t.frames("frame", sock, 1)
    t.post("info", "/info", {"info": {"channels": [chan]}})


def scenario_catchup_limits(t):
    """Catch-up replays at most the channel's last 100 frames and the user's last 50 PM frames."""
    u = t.p("u")
    ch = t.p("busy")
    # history (size 1) only serves as the "all delivered" signal: deliveries run in request
    # order, so once c=104 is in history every PM before it has been stored too
    cid = t.connect("connect", u, channels=[ch],
                    channel_configs={ch: {"store_history": True, "history_size": 1}})
    t.message("55 global PMs + 105 channel messages",
              [{"pm_users": [u], "user": "s", "message": {"i": "p%d" % i}} for i in range(55)]
              + [{"channel": ch, "user": "s", "message": {"i": i}} for i in range(105)])
    _wait_history(t, ch, 1, last_i=104)
    sock = t.ws("u", cid)
    got = t.frames("catch-up", sock, 150)
    t.note("catch-up count", len(got))


def scenario_routing_script_name(t):
    t.http("X-Script-Name prefix stripped", "POST", "/cs/info",
           body={"info": {"channels": [t.p("none")]}}, headers={"X-Script-Name": "/cs"})
    t.http("X-Script-Name: unprefixed path still works", "POST", "/info",
           body={"info": {"channels": [t.p("none")]}}, headers={"X-Script-Name": "/cs"})
    resp = t.http("X-Script-Name redirect keeps prefix", "GET", "/cs/admin", signed=False,
                  headers={"X-Script-Name": "/cs"}, record_body=False)
    t.note("Location path", _loc_path(resp.headers.get("Location")))


# -- timers ---------------------------------------------------------------------------------------


def scenario_timer_heartbeat(t):
    start = t.now()
    cid = t.connect("connect", t.p("hb"))
    sock = t.ws("hb", cid)
    t.frames("two server heartbeats", sock, 2, heartbeats=True, timing_since=start, timeout=14,
             grace=0)


def scenario_timer_gc_late_ws(t):
    alice, dave = t.p("alice"), t.p("dave")
    room = t.p("pchan")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}})
    ws_a = t.ws("alice", a)
    start = t.now()
    d = t.connect("connect dave", dave, channels=[room])
    t.frames("alice: dave joined", ws_a, 1, timing_since=start)
    t.sleep(6.5)  # attach after the first 5 s heartbeat check: heartbeats have stopped for good
    ws_d = t.ws("dave", d, sync=False)
    t.frames("dave: no heartbeats, closed 1000 ~15 s after connect", ws_d, 1, heartbeats=True,
             timing_since=start, timeout=16)
    t.frames("alice: dave parted", ws_a, 1, timing_since=start, timeout=4)


def scenario_timer_longpoll_idle(t):
    cid = t.connect("connect", t.p("lp"))
    start = t.now()
    t.listen("idle poll returns [] after ~5 s", cid, timing_since=start)
    start = t.now()
    t.listen("second idle poll returns [] after ~5 s", cid, timing_since=start)


def scenario_timer_longpoll_gc(t):
    """erin polls once then stops: collected 15 s after the end of her poll.  erin2 does the same
    without channels: the GC only walks channel member lists, so she is never collected."""
    erin, erin2 = t.p("erin"), t.p("erin2")
    cid = t.connect("connect erin (in a channel)", erin, channels=[t.p("room")])
    cid2 = t.connect("connect erin2 (no channels)", erin2)
    p1 = t.listen_async("erin: one poll", cid)
    p2 = t.listen_async("erin2: one poll", cid2)
    p1.join()
    p2.join()
    start = t.now()
    t.sleep(18.0)
    t.listen("erin after 18 s without polling: collected -> 401", cid, timing_since=start)
    t.listen("erin2 after 18 s: still alive (idle poll)", cid2)


def scenario_timer_connect_without_attach(t):
    room = t.p("room")
    cid = t.connect("connect, never attach", t.p("ghost"), channels=[room])
    lonely = t.connect("connect without channels, never attach", t.p("lonely"))
    closed = t.connect("connect without channels, ws opened and closed", t.p("closer"))
    sock = t.ws("closer", closed)
    sock.close()
    t.frames("close reply", sock, 1)
    t.sleep(17.0)
    t.http("collected after ~15 s: disconnect -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": cid})
    t.http("channel-less: never collected -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": lonely})
    t.http("channel-less with closed ws: never collected -> true", "GET", "/disconnect",
           signed=False, params={"conn_id": closed})
    t.post("info: channel kept, user gone from it", "/info", {"info": {"channels": [room]}})


def scenario_timer_longpoll_disconnect_midwait(t):
    """A poll whose connection is collected while it waits: the real server crashes (500) once
    its 5 s wait ends (queue set to None by the GC)."""
    start = t.now()
    cid = t.connect("connect", t.p("mid"), channels=[t.p("room")])
    pend = t.listen_async("poll collected mid-wait", cid, timing_since=start)
    time.sleep(1.0)  # let the poll attach its queue (see message_batch9)
    t.http("disconnect while polling -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": cid})
    pend.join()


# ------------------------------------------------------------------------------------------------
# Registry, deviations, driver
# ------------------------------------------------------------------------------------------------

SCENARIOS = [(name[len("scenario_"):], fn) for name, fn in sorted(globals().items())
             if name.startswith("scenario_") and callable(fn)]
# timers first: they dominate the wall time, everything else overlaps with them
SCENARIOS.sort(key=lambda item: (not item[0].startswith("timer_"), item[0]))


def _fix_ws_upgrade(a, b):
    """A=500 vs B=400/426 on the failed-upgrade steps is accepted; returns (b', applied)."""
    applied = False
    out = []
    for ea, eb in zip(a, b):
        if ea.get("status") == 500 and eb.get("status") in (400, 426) and ea.get("step") == eb.get("step"):
            eb = dict(ea)
            applied = True
        out.append(eb)
    out.extend(b[len(a):])
    return out, applied


# scenario -> (explanation, fixup(a_entries, b_entries) -> (b_entries', applied) or None)
DEVIATIONS = {
    "ws_bad_upgrade": (
        "GET /ws without a valid upgrade / with an unsupported Sec-WebSocket-Version: the real "
        "server crashes with 500 (ws4py HandshakeError); Herald answers 400 or 426 as RFC 6455 "
        "asks. Statuses 500 (A) vs 400/426 (B) are accepted on those steps only.",
        _fix_ws_upgrade),
}


def run_one(fn, base, prefix, side):
    rec = Recorder(base, prefix, side)
    error = None
    try:
        fn(rec)
    except Exception:
        error = traceback.format_exc()
        rec.add({"step": "EXCEPTION", "error": error.strip().splitlines()[-1]})
    finally:
        rec.close_all()
    return rec, error


def new_prefix():
    return "zq" + "".join(random.choice(string.ascii_lowercase) for _ in range(6)) + "_"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", help="base URL of the reference server (real)")
    ap.add_argument("--b", help="base URL of the server under test (default: --a, A/A mode)")
    ap.add_argument("--only", action="append", default=[], help="run scenarios containing this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--workers", type=int, default=48)
    ap.add_argument("--dump", help="write normalised transcripts to this directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every transcript")
    args = ap.parse_args(argv)
    if args.list:
        for name, _ in SCENARIOS:
            print(name)
        return 0
    if not args.a:
        ap.error("--a is required")
    base_b = args.b or args.a
    mode = "A/A (real vs itself)" if base_b == args.a else "A/B"
    chosen = [(n, f) for n, f in SCENARIOS if not args.only or any(o in n for o in args.only)]
    print("differential suite: %d scenarios, %s, A=%s B=%s" % (len(chosen), mode, args.a, base_b))
    started = time.monotonic()
    jobs = {}
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for name, fn in chosen:
            pa, pb = new_prefix(), new_prefix()
            jobs[name] = (pool.submit(run_one, fn, args.a, pa, "A"),
                          pool.submit(run_one, fn, base_b, pb, "B"), pa, pb)
        results = {}
        for name, _ in chosen:
            fa, fb, pa, pb = jobs[name]
            results[name] = (fa.result(), fb.result(), pa, pb)
    passed, failed, deviations = [], [], []
    for name, _ in chosen:
        (ra, erra), (rb, errb), pa, pb = results[name]
        na = normalise(ra.entries, pa, ra.client_uuids)
        nb = normalise(rb.entries, pb, rb.client_uuids)
        applied = False
        if name in DEVIATIONS and DEVIATIONS[name][1] is not None:
            nb, applied = DEVIATIONS[name][1](na, nb)
        la, lb = render(na), render(nb)
        for side, rec, err in (("A", ra, erra), ("B", rb, errb)):
            for w in rec.warnings:
                print("  warning [%s %s]: %s" % (name, side, w))
            if err:
                print("  EXCEPTION [%s %s]:\n%s" % (name, side, err))
        if args.dump:
            import os
            os.makedirs(args.dump, exist_ok=True)
            for side, lines in (("A", la), ("B", lb)):
                with open(os.path.join(args.dump, "%s.%s.json" % (name, side)), "w") as fh:
                    fh.write("\n".join(lines) + "\n")
        ok = la == lb and not erra and not errb
        if args.verbose:
            print("---- %s (A)" % name)
            print("\n".join(la))
        if ok:
            passed.append(name)
            if applied:
                deviations.append(name)
            print("PASS %s%s" % (name, "  (known deviation applied)" if applied else ""))
        else:
            failed.append(name)
            print("FAIL %s%s" % (name, "  [listed deviation: %s]" % DEVIATIONS[name][0]
                                 if name in DEVIATIONS else ""))
            for line in difflib.unified_diff(la, lb, "A (reference)", "B (under test)", n=4,
                                             lineterm=""):
                print("    " + line)
    print("")
    if deviations:
        print("Known deviations accepted (B differs from A only as documented):")
        for name in deviations:
            print("  - %s: %s" % (name, DEVIATIONS[name][0]))
    print("wall time %.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed" % (len(passed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
