"""The client side of a scenario: transcript values (bodies parsed the way the transcript keeps
them, JSON key order preserved), the websocket client that records every frame with its opcode,
and the recorder handed to every scenario (HTTP steps, sockets, long polls, frame waits).
"""

import json
import re
import struct
import threading
import time
import uuid as uuidlib

import requests
import websocket
from requests.adapters import HTTPAdapter

from .signing import sign


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


class SourceAddressAdapter(HTTPAdapter):
    """Sends from a chosen loopback address (127.0.0.2 is not whitelisted: spec §3.1)."""

    def __init__(self, source, **kw):
        self.source = source
        super(SourceAddressAdapter, self).__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        return super(SourceAddressAdapter, self).init_poolmanager(*args, **kw)


HTTP_DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                          r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                          r"\d{2}:\d{2}:\d{2} GMT$")


def status_line(raw_response):
    """The full status line as sent: version, code and reason phrase ("HTTP/1.1 422 Unprocessable
    Entity"), so a server that only gets the code right does not pass."""
    version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(raw_response.version, str(raw_response.version))
    return "%s %d %s" % (version, raw_response.status, raw_response.reason)


def header_list(raw_response, base, loose=(), long_poll=False):
    """Every response header, in the order sent, names as sent, duplicates kept (http.client's
    message keeps all three).  Normalised, and only here:
    * Date: the clock, not the server, decides it; only its format (IMF-fixdate) is compared.
    * any value containing the base URL (Location): A and B listen on different ports; the base
      becomes <base>.
    * the headers the step names in ``loose`` (its caller says why): the value becomes <loose>.
    * long_poll (a 200 of /listen): the framing headers are dropped.  0.7.1 streams the answer
      (gevent: Transfer-Encoding: chunked, after Date), Herald sends it whole with a
      Content-Length (a deliberate difference, ARCHITECTURE.md); the decoded body is compared.
    """
    out = []
    for name, value in raw_response.msg.items():
        if long_poll and name.lower() in ("transfer-encoding", "content-length"):
            continue
        if name.lower() == "date":
            value = "<http-date>" if HTTP_DATE_RE.match(value) else value
        elif name.lower() in loose:
            value = "<loose>"
        else:
            value = value.replace(base, "<base>")
        out.append([name, value])
    return out


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
             headers=None, params=None, record_body=None, transform=None,
             timing_since=None, source=None, cookies=None, form=None, loose_headers=()):
        """Perform one HTTP request and record it.

        body: JSON-serialised; raw: bytes/str sent as-is (b"" = empty body).
        secret: explicit x-channelstream-secret value (overrides ``signed``).
        The status line and every response header are always recorded (see header_list).
        record_body: False omits the body (the scenario records what it needs of it).
        loose_headers: lowercased header names whose values are masked; only for steps whose
        body legitimately differs (then Content-Length does too), with the reason beside the call.
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
        original = resp.raw._original_response
        if transform is not None:
            # The recorded body is filtered down to this scenario's names; the length counts
            # the global state of every concurrent scenario, so it cannot be compared.
            loose_headers = tuple(loose_headers) + ("content-length",)
        long_poll = path.startswith("/listen") and resp.status_code == 200
        entry = {"step": step, "status": resp.status_code, "ctype": fam,
                 "line": status_line(original),
                 "headers": header_list(original, self.base, loose_headers, long_poll)}
        text = resp.content.decode("utf8", "replace")
        if record_body is None:
            # Every body is compared, error pages too: Herald renders Pyramid's pages byte for
            # byte (HTML, JSON or plain text by Accept).
            record_body = True
        parsed = None
        if record_body:
            parsed = parse_body(text) if text != "" else ""
            entry["body"] = transform(parsed) if transform else parsed
        elif fam == "application/json":
            parsed = parse_body(text)
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
                status, fam, text, ended, line, hdrs = result["resp"]
                entry = {"step": step, "status": status, "ctype": fam, "line": line,
                         "headers": hdrs}
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
        original = resp.raw._original_response
        return (resp.status_code, mime_family(resp.headers.get("Content-Type")),
                resp.content.decode("utf8", "replace"), time.monotonic(),
                status_line(original),
                header_list(original, self.base, long_poll=resp.status_code == 200))

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
