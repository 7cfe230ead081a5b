"""Signing (spec §3.2): itsdangerous 1.1.0 TimestampSigner, re-implemented with hmac/hashlib so the
suite does not depend on itsdangerous and so we can forge every token variant the spec lists.

The signer checks itself against a known token when imported.
"""

import base64
import hashlib
import hmac
import struct
import time


SECRET = "secret"


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
