"""Scenarios: signatures and token variants (age, format, bad signatures), the IP whitelist,
routing (404s, SCRIPT_NAME), CORS preflight, the OpenAPI document and the admin sign-in.

Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
(t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
arrive after whatever should not have (delivery is FIFO per server).
"""

import hashlib
import hmac
import time
import uuid as uuidlib

from .helpers import ADMIN_PAGE_LOOSE, _admin_view, _aligned_second, _loc_path
from .signing import SECRET, b64url_nopad, derive_key, sign, sign_js


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
    # Every step records all headers, so the CORS set (present, absent, order) is compared.
    t.http("OPTIONS /no/such/path", "OPTIONS", "/no/such/path", signed=False)
    t.http("OPTIONS /connect", "OPTIONS", "/connect", signed=False,
           headers={"Origin": "http://example.com",
                    "Access-Control-Request-Method": "POST"})
    t.http("200 /info has CORS", "POST", "/info",
           body={"info": {"channels": [t.p("none")]}})
    t.http("403 has no CORS", "POST", "/info", raw=b"", signed=False)
    t.http("401 has no CORS", "POST", "/info", raw=b"", secret="garbage")
    t.http("404 has no CORS", "GET", "/nonexistent")
    t.http("422 has no CORS", "POST", "/connect", body={})
    cid = t.connect("connect", t.p("u"))
    t.listen("200 /listen (idle, ~5 s) has CORS", cid)
    t.http("200 /listen headers", "GET", "/listen", signed=False, params={"conn_id": cid})
    t.http("200 /disconnect has CORS", "GET", "/disconnect", signed=False,
           params={"conn_id": str(uuidlib.uuid4())})


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
           record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
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
    t.http("GET sign_in page", "GET", "/admin/sign_in", signed=False, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.http("wrong password -> 200 page again", "POST", "/admin/sign_in", signed=False,
           form={"username": "admin", "password": "wrong"}, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    r = t.http("right credentials (padded) -> 302", "POST", "/admin/sign_in", signed=False,
               form={"username": " admin ", "password": "admin_secret "}, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.note("Location path", _loc_path(r.headers.get("Location")))
    t.note("cookie", _cookie_view(r))
    jar = {c.name: c.value for c in r.cookies}
    t.http("admin.json with cookie only", "GET", "/admin/admin.json", signed=False, cookies=jar,
           transform=_admin_view(t.prefix))
    t.http("/admin page with cookie", "GET", "/admin", signed=False, cookies=jar,
           record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.http("openapi.json with cookie", "GET", "/openapi.json", signed=False, cookies=jar,
           record_body=False)
    r = t.http("sign_out -> 302", "GET", "/admin/sign_out", signed=False, cookies=jar,
               record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.note("sign_out Location path", _loc_path(r.headers.get("Location")))
    t.note("sign_out cookie", _cookie_view(r))
    t.http("bogus cookie -> 302", "GET", "/admin/admin.json", signed=False,
           cookies={"auth_tkt": "bogus"}, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)


def scenario_routing_script_name(t):
    t.http("X-Script-Name prefix stripped", "POST", "/cs/info",
           body={"info": {"channels": [t.p("none")]}}, headers={"X-Script-Name": "/cs"})
    t.http("X-Script-Name: unprefixed path still works", "POST", "/info",
           body={"info": {"channels": [t.p("none")]}}, headers={"X-Script-Name": "/cs"})
    resp = t.http("X-Script-Name redirect keeps prefix", "GET", "/cs/admin", signed=False,
                  headers={"X-Script-Name": "/cs"}, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.note("Location path", _loc_path(resp.headers.get("Location")))
