"""The PyPI websockets client (permessage-deflate on by default) against a running Herald
started with --ws-deflate, on both dialects' websocket routes: Channelstream's /ws and
Pusher's /app/app-key. Each test connects one client with compression and one without, and
checks that both receive the same broadcasts, that only the first negotiated the extension,
and (from /metrics) that the server really sent compressed frames.

run.sh starts Herald and passes HERALD_HOST / HERALD_PORT; it runs the module twice, the second
time against a Herald serving TLS too (HERALD_TLS_CA names the test CA that signed its
certificate): compression and TLS together, wss:// and https://, verification on.

The clients are websockets' asyncio ones, each test one `asyncio.run`. Not its threaded
`websockets.sync` client: over TLS that one loses about one opening handshake in 40 (the
request is never written after the TLS handshake; its background thread's blocking SSL read
and the caller's write share one OpenSSL session). That was reproduced against websockets' own
threaded TLS server too, so it is the client, not Herald; the asyncio client never touches one
session from two threads and passed 300 of 300 against Herald.
"""

import base64
import hashlib
import hmac
import json
import os
import asyncio
import re
import ssl
import time
import urllib.request
import uuid

from websockets.asyncio.client import connect as ws_connect

HOST = os.environ.get("HERALD_HOST", "127.0.0.1")
PORT = int(os.environ.get("HERALD_PORT", "8000"))
TLS_CA = os.environ.get("HERALD_TLS_CA")
TLS = ssl.create_default_context(cafile=TLS_CA) if TLS_CA else None
BASE = f"{'https' if TLS else 'http'}://{HOST}:{PORT}"
WS = f"{'wss' if TLS else 'ws'}://{HOST}:{PORT}"


def connect(url, **kw):
    """An asyncio websockets connection (to await, or to use with `async with`)."""
    return ws_connect(url, ssl=TLS, **kw) if TLS else ws_connect(url, **kw)
CS_SECRET = "secret"
KEY, SECRET = "app-key", "app-secret"
PMD = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
# Long enough to pass Herald's --ws-deflate-min-bytes (256) and to compress well.
BIG = "The quick brown fox jumps over the lazy dog. " * 40


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def cs_token():
    """itsdangerous TimestampSigner(secret).sign("channelstream"), as Channelstream's clients send."""
    key = hashlib.sha1(b"itsdangerous.Signer" + b"signer" + CS_SECRET.encode()).digest()
    ts = int(time.time())
    value = b"channelstream." + b64(ts.to_bytes((ts.bit_length() + 7) // 8, "big"))
    mac = hmac.new(key, value, hashlib.sha1).digest()
    return (value + b"." + b64(mac)).decode()


def http(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5, context=TLS) as r:
        return r.status, r.read()


def cs_post(path, body):
    return http("POST", path, body, {"Content-Type": "application/json",
                                     "X-Channelstream-Secret": cs_token()})


def metric(name):
    _, text = http("GET", "/metrics", headers={"X-Channelstream-Secret": cs_token()})
    m = re.search(rf"^{name} (\d+)$", text.decode(), re.M)
    assert m, f"{name} not in /metrics"
    return int(m.group(1))


def extensions(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


def test_channelstream_ws_receives_compressed_broadcasts():
    asyncio.run(channelstream_ws_receives_compressed_broadcasts())


async def channelstream_ws_receives_compressed_broadcasts():
    conns = {}
    for name in ("deflate", "plain"):
        conn_id = str(uuid.uuid4())
        status, _ = cs_post("/connect", {"username": f"py-{name}", "conn_id": conn_id,
                                         "channels": ["py-room"]})
        assert status == 200
        conns[name] = conn_id
    before = metric("herald_ws_deflated_deliveries_total")
    async with connect(f"{WS}/ws?conn_id={conns['deflate']}", open_timeout=5) as zws, \
            connect(f"{WS}/ws?conn_id={conns['plain']}", compression=None, open_timeout=5) as pws:
        assert extensions(zws) == PMD
        assert extensions(pws) is None
        # The extension took effect on the client side too.
        assert [type(e).__name__ for e in zws.protocol.extensions] == ["PerMessageDeflate"]
        assert pws.protocol.extensions == []
        for text in (BIG, "short", BIG.upper()):
            status, _ = cs_post("/message", [{"channel": "py-room", "user": "system",
                                              "message": {"text": text}}])
            assert status == 200
            for ws in (zws, pws):
                got = await recv_json(ws)
                while not (isinstance(got, list) and got and got[0].get("type") == "message"):
                    got = await recv_json(ws)  # presence events of the other user, heartbeats
                assert got[0]["message"] == {"text": text}
                assert got[0]["channel"] == "py-room"
    # At least the two long messages went to the one deflate socket compressed (Channelstream's
    # indented JSON makes some presence events long enough too).
    assert metric("herald_ws_deflated_deliveries_total") - before >= 2


def pusher_publish(channel, event, data):
    body = json.dumps({"name": event, "channels": [channel], "data": data}).encode()
    path = "/apps/app-id/events"
    q = (f"auth_key={KEY}&auth_timestamp={int(time.time())}&auth_version=1.0"
         f"&body_md5={hashlib.md5(body).hexdigest()}")
    sig = hmac.new(SECRET.encode(), f"POST\n{path}\n{q}".encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{BASE}{path}?{q}&auth_signature={sig}", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5, context=TLS) as r:
        assert r.status == 200


async def pusher_subscribe(ws, channel):
    assert (await recv_json(ws))["event"] == "pusher:connection_established"
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert (await recv_json(ws))["event"] == "pusher_internal:subscription_succeeded"


def test_pusher_app_receives_compressed_broadcasts():
    asyncio.run(pusher_app_receives_compressed_broadcasts())


async def pusher_app_receives_compressed_broadcasts():
    path = f"{WS}/app/{KEY}?protocol=7&client=py&version=1.0"
    before = metric("herald_ws_deflated_deliveries_total")
    clients = []
    try:
        # Several sockets each way, so both shards serve some of each.
        for _ in range(3):
            clients.append((await connect(path, open_timeout=5), True))
            clients.append((await connect(path, compression=None, open_timeout=5), False))
        for ws, deflated in clients:
            assert extensions(ws) == (PMD if deflated else None)
            await pusher_subscribe(ws, "py-deflate")
        for data in (BIG, "tiny", json.dumps({"rows": [BIG] * 3})):
            pusher_publish("py-deflate", "news", data)
            for ws, _ in clients:
                ev = await recv_json(ws)
                assert ev["event"] == "news" and ev["channel"] == "py-deflate"
                assert ev["data"] == data
        # A compressed client message is inflated by Herald: a ping of 400 bytes gets its pong.
        ws, _ = clients[0]
        await ws.send(json.dumps({"event": "pusher:ping", "data": {"pad": BIG[:400]}}))
        assert (await recv_json(ws))["event"] == "pusher:pong"
    finally:
        for ws, _ in clients:
            await ws.close()
    # Two long events to three deflate sockets.
    assert metric("herald_ws_deflated_deliveries_total") - before == 6
