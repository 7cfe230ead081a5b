"""Raw Pusher protocol 7 clients for the differential suite: websocket frames (websocket-client)
and the signed HTTP API (requests), each step recorded as a normalised transcript line.

Why raw: the suite compares what two servers put on the wire, so nothing may smooth it over
(an SDK would retry, decode or drop frames). Every wait is a read with a deadline; the only
fixed windows are the "quiet" checks that nothing more arrives (absence cannot be awaited).

Normalisation (what may legitimately differ between two correct servers and is therefore not
compared): socket ids become `<sid1>`, `<sid2>`, ... in order of first appearance; a `data`
field that is a string holding JSON is decoded (the protocol double-encodes, and pusher-js
decodes either); the human-readable text of errors (`message`, `error`, close reasons, HTTP
error bodies) is dropped, keeping codes, statuses and shapes; JSON keys are sorted; the
member `ids` of a presence snapshot and `/users` lists are sorted.

Cosmetic shapes (`COSMETIC`, off with `--exact-shapes`): a few answers differ between servers
only in form, each listed with its reason in RESULT.md; they are mapped to one form so that a
scenario's comparison shows what matters: `pusher:pong` with or without `"data": {}`,
`pusher:cache_miss` with or without `"data": {}`, the HTTP success body `{"ok": true}`
(sockudo, soketi) or `{}` (Pusher's docs), and sockudo's extra `acknowledgement_id` in `info`
answers.
"""

import hashlib
import hmac
import json
import re
import socket
import time
import urllib.parse

import requests
import websocket

APP_ID, KEY, SECRET = "12345", "app-key", "app-secret"
PROTO = "?protocol=7&client=js&version=8.6.0&flash=false"
WAIT = 3.0  # deadline for an awaited frame
QUIET = 0.4  # window in which no further frame may arrive
COSMETIC = True
HMAC = re.compile(r"\b[0-9a-f]{64}\b")


class Norm:
    """Socket ids seen in one scenario run, replaced by stable names."""

    def __init__(self, aliases=None):
        self.sids = {}
        self.aliases = dict(aliases or {})

    def sid(self, s):
        if s not in self.sids:
            self.sids[s] = f"<sid{len(self.sids) + 1}>"
        return self.sids[s]

    def scrub(self, v):
        """Replace every known socket id inside any string of `v`."""
        if isinstance(v, str):
            for real, name in list(self.sids.items()) + list(self.aliases.items()):
                v = v.replace(real, name)
            return HMAC.sub("<hmac>", v)
        if isinstance(v, list):
            return [self.scrub(x) for x in v]
        if isinstance(v, dict):
            return {self.scrub(k): self.scrub(x) for k, x in v.items()}
        return v


def decode_data(d):
    if isinstance(d, str):
        try:
            parsed = json.loads(d)
        except ValueError:
            return d
        if isinstance(parsed, (dict, list)):
            return parsed
    return d


def norm_event(v, norm):
    """The comparable form of one server frame (a parsed JSON object)."""
    if not isinstance(v, dict):
        return {"non-object": v}
    out = dict(v)
    if "data" in out:
        out["data"] = decode_data(out["data"])
    if COSMETIC and out.get("event") in ("pusher:pong", "pusher:cache_miss") and out.get("data") == {}:
        del out["data"]
    d = out.get("data")
    ev = out.get("event")
    if ev == "pusher:connection_established" and isinstance(d, dict):
        sid = d.get("socket_id", "")
        d = dict(d)
        d["socket_id"] = norm.sid(sid) if re.fullmatch(r"\d+\.\d+", str(sid)) else f"BAD:{sid}"
        out["data"] = d
    if isinstance(d, dict):
        d = dict(d)
        for k in ("message", "error"):
            if k in d:
                d[k] = "…"
        pres = d.get("presence")
        if isinstance(pres, dict) and isinstance(pres.get("ids"), list):
            pres = dict(pres)
            pres["ids"] = sorted(pres["ids"], key=str)
            d["presence"] = pres
        out["data"] = d
    return norm.scrub(out)


class Sock:
    """One websocket; `log` collects its normalised transcript lines."""

    def __init__(self, base, norm, log, name, path=None):
        self.norm, self.log, self.name = norm, log, name
        self.sid = None
        self.closed = False
        url = base.replace("http://", "ws://") + (path or f"/app/{KEY}{PROTO}")
        try:
            self.ws = websocket.create_connection(url, timeout=WAIT, enable_multithread=False)
        except websocket.WebSocketBadStatusException as e:
            self.ws = None
            self.closed = True
            self.log.append(f"{name}: handshake refused {e.status_code}")
        except (OSError, websocket.WebSocketException) as e:
            self.ws = None
            self.closed = True
            self.log.append(f"{name}: handshake failed ({type(e).__name__})")

    def _read(self, timeout):
        """One frame: ('text', obj) / ('binary', n) / ('close', code) / ('gone', why) / None."""
        if self.ws is None or self.closed:
            return None
        self.ws.settimeout(timeout)
        try:
            op, data = self.ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketConnectionClosedException, OSError) as e:
            self.closed = True
            return ("gone", "TCP closed without a close frame")
        if op == websocket.ABNF.OPCODE_TEXT:
            try:
                return ("text", json.loads(data.decode("utf-8")))
            except ValueError:
                return ("text", {"unparsable": data.decode("utf-8", "replace")})
        if op == websocket.ABNF.OPCODE_CLOSE:
            self.closed = True
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return ("close", code)
        if op == websocket.ABNF.OPCODE_PONG:
            return ("pong-frame", data.decode("utf-8", "replace"))
        if op == websocket.ABNF.OPCODE_PING:
            return None if timeout <= 0 else self._read(timeout)
        return ("binary", len(data))

    def _record(self, f):
        kind, v = f
        if kind == "text":
            e = norm_event(v, self.norm)
            line = json.dumps(e, sort_keys=True, ensure_ascii=False)
            if len(line) > 300:
                line = line[:300] + f"…({len(line)} chars)"
            self.log.append(f"{self.name} <- {line}")
            return e
        if kind == "close":
            self.log.append(f"{self.name} <- close {v}")
        elif kind == "gone":
            self.log.append(f"{self.name} <- {v}")
        else:
            self.log.append(f"{self.name} <- {kind} {v}")
        return None

    def expect(self, n=1, quiet=QUIET, any_order=False):
        """Read `n` frames (each within WAIT), then whatever else arrives within `quiet`;
        `any_order`: the frames come from different channels, so their order is not compared."""
        start = len(self.log)
        try:
            return self._expect(n, quiet)
        finally:
            if any_order:
                self.log[start:] = sorted(self.log[start:])

    def _expect(self, n, quiet):
        got = []
        for _ in range(n):
            f = self._read(WAIT)
            if f is None:
                self.log.append(f"{self.name}: (nothing within {WAIT:.0f} s)")
                return got
            got.append(self._record(f))
            if f[0] in ("close", "gone"):
                return got
        deadline = time.monotonic() + quiet
        while quiet > 0 and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            f = self._read(left)
            if f is None:
                break
            got.append(self._record(f))
        return got

    def silent(self):
        """Record that nothing arrives within the quiet window (or what does)."""
        before = len(self.log)
        self.expect(0)
        if len(self.log) == before:
            self.log.append(f"{self.name}: (silent)")

    def established(self):
        """Read `connection_established`; remember the socket id."""
        if self.ws is None:
            return None
        got = self.expect(1, quiet=0)
        e = got[0] if got else None
        if e and e.get("event") == "pusher:connection_established":
            real = [k for k, v in self.norm.sids.items() if v == e["data"]["socket_id"]]
            self.sid = real[0] if real else None
        return e

    def send(self, v, raw=False, note=None):
        if self.ws is None or self.closed:
            self.log.append(f"{self.name} -> (closed, not sent)")
            return
        text = v if raw else json.dumps(v)
        shown = self.norm.scrub(note or text)
        shown = shown if len(shown) <= 160 else shown[:160] + "…"
        self.log.append(f"{self.name} -> {shown}")
        try:
            self.ws.send(text)
        except (websocket.WebSocketException, OSError):
            self.closed = True
            self.log.append(f"{self.name}: send failed")

    def send_binary(self, b):
        self.log.append(f"{self.name} -> binary frame ({len(b)} bytes)")
        try:
            self.ws.send_binary(b)
        except (websocket.WebSocketException, OSError):
            self.closed = True

    def ping_frame(self, payload=b"hi"):
        self.log.append(f"{self.name} -> RFC 6455 ping {payload!r}")
        self.ws.ping(payload)

    def subscribe(self, channel, auth=None, channel_data=None, n=1):
        data = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})
        return self.expect(n)

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except (websocket.WebSocketException, OSError):
                pass
            self.closed = True


def hmac_hex(msg, secret=SECRET):
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def private_auth(sid, channel, secret=SECRET):
    return f"{KEY}:{hmac_hex(f'{sid}:{channel}', secret)}"


def presence_auth(sid, channel, channel_data, secret=SECRET):
    return f"{KEY}:{hmac_hex(f'{sid}:{channel}:{channel_data}', secret)}"


def user_auth(sid, user_data, secret=SECRET):
    return f"{KEY}:{hmac_hex(f'{sid}::user::{user_data}', secret)}"


def norm_body(status, body, norm):
    """An HTTP answer's comparable form: 2xx bodies as JSON, others as their status only."""
    if not 200 <= status < 300:
        return None
    try:
        v = json.loads(body)
    except ValueError:
        return {"non-json": body[:200]}
    if COSMETIC:
        v = {} if v == {"ok": True} else drop_key(v, "acknowledgement_id")
    if isinstance(v, dict) and isinstance(v.get("users"), list):
        v = dict(v)
        v["users"] = sorted(v["users"], key=lambda u: json.dumps(u, sort_keys=True))
    return norm.scrub(v)


def drop_key(v, key):
    if isinstance(v, dict):
        return {k: drop_key(x, key) for k, x in v.items() if k != key}
    if isinstance(v, list):
        return [drop_key(x, key) for x in v]
    return v


class Api:
    """The signed HTTP API of one server."""

    def __init__(self, base, norm, log):
        self.base, self.norm, self.log = base, norm, log

    def call(self, method, endpoint, body=None, query=None, note=None, app_id=APP_ID, **sig):
        """Sign and send; `sig` overrides: key, secret, timestamp, body_md5 (False: omit,
        str: use), signature (str), version; `raw_body` sends bytes as they are."""
        path = f"/apps/{app_id}/{endpoint}"
        raw = sig.pop("raw_body", None)
        if raw is None:
            raw = b"" if body is None else json.dumps(body).encode()
        params = dict(query or {})
        params["auth_key"] = sig.get("key", KEY)
        params["auth_timestamp"] = str(sig.get("timestamp", int(time.time())))
        params["auth_version"] = sig.get("version", "1.0")
        md5 = sig.get("body_md5", None)
        if md5 is None and (raw or method == "POST"):
            md5 = hashlib.md5(raw).hexdigest()
        if isinstance(md5, str):
            params["body_md5"] = md5
        to_sign = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["auth_signature"] = sig.get(
            "signature", hmac_hex(f"{method}\n{path}\n{to_sign}", sig.get("secret", SECRET))
        )
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, safe=',')}"
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        try:
            r = requests.request(method, url, data=raw if method == "POST" else None,
                                 headers=headers, timeout=5)
            status, text = r.status_code, r.text
        except requests.RequestException as e:
            status, text = 0, type(e).__name__
        shown = self.norm.scrub(note or f"{method} {endpoint}")
        b = norm_body(status, text, self.norm)
        self.log.append(f"http {shown} -> {status}" + ("" if b is None else f" {json.dumps(b, sort_keys=True)}"))
        return status, text

    def post(self, endpoint, body, **kw):
        return self.call("POST", endpoint, body, **kw)

    def get(self, endpoint, query=None, **kw):
        return self.call("GET", endpoint, None, query, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
