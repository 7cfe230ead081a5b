"""Python clients over TLS against a Herald serving TLS (run.sh starts it with a test CA's
certificate and passes TLS_HOST / TLS_PORT / TLS_CA / PUSHER_APP_ID; REQUESTS_CA_BUNDLE makes
the PyPI pusher SDK trust the CA). Nothing here turns certificate verification off."""

import base64
import hashlib
import hmac
import json
import os
import ssl
import time
import urllib.request

import pusher
import pusher.requests
import pytest
import websocket

HOST = os.environ.get("TLS_HOST", "127.0.0.1")
PORT = int(os.environ.get("TLS_PORT", "8443"))
CA = os.environ["TLS_CA"]
APP_ID = os.environ.get("PUSHER_APP_ID", "12345")
BASE = f"https://{HOST}:{PORT}"


class TrustTestCA(pusher.requests.RequestsBackend):
    """The SDK pins requests to its bundled CA file when ssl=True; use the test CA instead."""

    def __init__(self, client, **options):
        super().__init__(client, **options)
        self.options["verify"] = CA


def ctx(**kw):
    c = ssl.create_default_context(cafile=CA)
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def token(secret="secret"):
    """itsdangerous TimestampSigner (django-concat key, SHA1), as Channelstream's clients sign."""
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=")
    key = hashlib.sha1(b"itsdangerous.Signersigner" + secret.encode()).digest()
    signed = b"channelstream." + b64(int(time.time()).to_bytes(8, "big").lstrip(b"\0"))
    return (signed + b"." + b64(hmac.new(key, signed, hashlib.sha1).digest())).decode()


def api(path, body, context=None):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Channelstream-Secret": token()},
        method="POST",
    )
    with urllib.request.urlopen(req, context=context or ctx(), timeout=5) as r:
        return r.status, json.loads(r.read())


def next_json(ws):
    while True:
        m = ws.recv()
        if m.strip() != "[]":  # Channelstream heartbeats
            return json.loads(m)


def test_channelstream_ws_over_wss():
    status, conn = api("/connect", {"username": "alice", "channels": ["room"]})
    assert status == 200
    ws = websocket.create_connection(
        f"wss://{HOST}:{PORT}/ws?conn_id={conn['conn_id']}", sslopt={"ca_certs": CA}, timeout=5
    )
    try:
        status, _ = api("/message", [{"channel": "room", "user": "bob", "message": {"n": 7}}])
        assert status == 200
        item = next_json(ws)[0]
        assert item["channel"] == "room" and item["message"] == {"n": 7}
    finally:
        ws.close()


def test_pusher_over_wss_triggered_by_the_sdk_over_https():
    ws = websocket.create_connection(
        f"wss://{HOST}:{PORT}/app/app-key?protocol=7&client=py&version=1.0",
        sslopt={"ca_certs": CA},
        timeout=5,
    )
    try:
        assert json.loads(ws.recv())["event"] == "pusher:connection_established"
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
        sdk = pusher.Pusher(
            APP_ID, "app-key", "app-secret", host=HOST, port=PORT, ssl=True, backend=TrustTestCA
        )
        sdk.trigger("news", "flash", {"big": "y" * 9000})
        ev = json.loads(ws.recv())
        assert ev["event"] == "flash"
        assert json.loads(ev["data"]) == {"big": "y" * 9000}
    finally:
        ws.close()


def test_tls12_only_client_is_served():
    c = ctx(maximum_version=ssl.TLSVersion.TLSv1_2)
    status, body = api("/connect", {"username": "bob", "channels": []}, context=c)
    assert status == 200 and body["conn_id"]


def test_a_client_without_the_ca_refuses_the_certificate():
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(BASE + "/", context=ssl.create_default_context(), timeout=5)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
