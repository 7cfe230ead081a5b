"""Scenarios: the bytes of the answers themselves -- status lines with WebOb's reason phrases,
every header (Content-Type with or without charset, CORS set, Connection, order), Pyramid's error
pages in the three formats its Accept negotiation picks, and the 404 detail lines.

Every HTTP step of every scenario records the full status line and all headers (client.py);
these scenarios make sure each kind of answer the dialect sends is among them.  The raw steps
send bytes requests cannot (HTTP/1.0, no Accept at all, Connection: close).
"""

import re
import socket
import uuid as uuidlib

from .client import HTTP_DATE_RE, parse_body
from .signing import sign

# Accept values and the format WebOb 1.8 picks for them (noted in the step names for readers;
# the transcript compares what each server actually sent).
ACCEPTS = [
    (None, "no header: plain"),
    ("", "empty header: plain"),
    ("*/*", "html"),
    ("text/html", "html"),
    ("application/json", "json"),
    ("application/json, text/html", "tie: html"),
    ("application/json;q=0.5, text/html;q=0.4", "json by q"),
    ("text/html;q=0, */*", "json"),
    ("text/plain", "plain"),
    ("image/png", "plain"),
    ("application/*", "json"),
    ("nonsense", "invalid header: html"),
]


def _accept_headers(value):
    # requests drops a header whose value is None: that is how "no Accept at all" is sent.
    return {"Accept": value}


def scenario_wire_status_lines(t):
    """One step per status the dialect sends; the status line carries the reason phrase."""
    t.http("200 /info", "POST", "/info", body={"info": {"channels": [t.p("none")]}})
    t.http("401 bad signature", "POST", "/info", raw=b"", secret="garbage")
    t.http("403 no secret", "POST", "/info", raw=b"", signed=False)
    t.http("404 unknown path", "GET", "/nonexistent", signed=False)
    t.http("422 /connect {}", "POST", "/connect", body={})
    t.http("422 /message [{}]", "POST", "/message", body=[{}])
    t.http("422 /listen malformed conn_id", "GET", "/listen", signed=False,
           params={"conn_id": "x"})
    t.http("422 /disconnect malformed conn_id", "POST", "/disconnect",
           body={"conn_id": "zz"})
    t.http("401 /listen unknown conn_id", "GET", "/listen", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})
    t.http("500 invalid JSON (text/plain, no charset, Connection: close)", "POST", "/connect",
           raw=b"{")
    t.http("500 /listen without conn_id", "GET", "/listen", signed=False)
    t.http("200 OPTIONS (text/plain; charset=UTF-8)", "OPTIONS", "/connect", signed=False)
    t.http("HEAD 404 (length of the page, no body)", "HEAD", "/nonexistent", signed=False)


def scenario_wire_error_page_formats(t):
    """Pyramid's pages (403, 404, 404 predicate mismatch, 401 of /listen) by Accept."""
    for accept, what in ACCEPTS:
        h = _accept_headers(accept)
        label = "Accept %r (%s)" % (accept, what)
        t.http("403 " + label, "POST", "/info", raw=b"", signed=False, headers=h)
        t.http("404 " + label, "GET", "/nonexistent", signed=False, headers=h)
        t.http("404 mismatch " + label, "GET", "/connect", signed=False, headers=h)
        t.http("401 /listen " + label, "GET", "/listen", signed=False, headers=h,
               params={"conn_id": str(uuidlib.uuid4())})


def scenario_wire_404_details(t):
    """The detail line of a 404: the path, empty, or Pyramid's predicate mismatch message."""
    cases = [
        ("GET", "/admin/unknown"),      # /admin/{action}, no view for the action: empty
        ("POST", "/admin/unknown"),
        ("GET", "/admin/"),             # no route: the path
        ("GET", "/admin/foo/bar"),
        ("GET", "/message"),            # several views (POST/PATCH/DELETE), none matches: empty
        ("PUT", "/message"),
        ("GET", "/connect"),            # one view: predicate mismatch
        ("PUT", "/subscribe"),
        ("POST", "/listen"),
        ("DELETE", "/listen"),
        ("PUT", "/admin/admin.json"),   # the view class is named: ServerViews
        ("GET", "/x/y"),                # /{section}/{action} route without a view: the path
        ("GET", "/a&b<c>"),             # escaped in HTML, verbatim in plain text and JSON
    ]
    for accept in ("text/html", "application/json", None):
        for method, path in cases:
            t.http("%s %s Accept %r" % (method, path, accept), method, path,
                   headers=_accept_headers(accept))


def _raw(t, step, request, signed=True, body=b""):
    """Send ``request`` (bytes, a full head without the final CRLF pair) and ``body`` on a fresh
    socket and
    record the status line, all headers (Date normalised as in client.header_list) and body."""
    host, port = re.match(r"^http://([^:/]+):(\d+)", t.base).groups()
    if signed:
        request += b"\r\nx-channelstream-secret: " + sign().encode()
    s = socket.create_connection((host, int(port)), timeout=10)
    data = b""
    try:
        s.sendall(request + b"\r\n\r\n" + body)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    except socket.timeout:
        pass
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        value = value.strip()
        if name.lower() == "date" and HTTP_DATE_RE.match(value):
            value = "<http-date>"
        headers.append([name, value])
    text = body.decode("utf8", "replace")
    t.add({"step": step, "line": lines[0], "headers": headers,
           "body": parse_body(text) if text else ""})


def scenario_wire_raw_heads(t):
    """Heads requests cannot send: HTTP/1.0 (the answer closes, and says so), no Accept header
    at all on an error page, HEADs on JSON routes."""
    info = ('{"info": {"channels": ["%s"]}}' % t.p("none")).encode()
    _raw(t, "HTTP/1.0 POST /info", b"POST /info HTTP/1.0\r\nContent-Length: %d" % len(info),
         body=info)
    _raw(t, "HTTP/1.0 GET / (404)", b"GET / HTTP/1.0", signed=False)
    _raw(t, "HTTP/1.1 GET /admin/unknown, no Accept", b"GET /admin/unknown HTTP/1.1\r\nHost: h")
    _raw(t, "HTTP/1.1 GET /connect, no Accept", b"GET /connect HTTP/1.1\r\nHost: h",
         signed=False)
    _raw(t, "HTTP/1.1 POST /connect invalid JSON",
         b"POST /connect HTTP/1.1\r\nHost: h\r\nContent-Length: 1", body=b"{")
    # (a HEAD /info would show the global state: its length depends on concurrent scenarios)
    _raw(t, "HTTP/1.1 HEAD /disconnect (200 false, CORS, length, no body)",
         b"HEAD /disconnect?conn_id=%s HTTP/1.1\r\nHost: h" % str(uuidlib.uuid4()).encode())
    _raw(t, "HTTP/1.1 HEAD /listen malformed conn_id (422)",
         b"HEAD /listen?conn_id=x HTTP/1.1\r\nHost: h", signed=False)
