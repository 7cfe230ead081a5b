"""Scenarios: how messages reach a connection: presence events, catch-up on /ws and /listen, long
polls, and the websocket endpoint (handshakes, bad upgrades, client frames, two sockets, close
and GC).

Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
(t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
arrive after whatever should not have (delivery is FIFO per server).
"""

import re
import socket
import time
import uuid as uuidlib

import websocket

from .helpers import _wait_frames_stored, _wait_history


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
