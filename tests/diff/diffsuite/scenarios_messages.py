"""Scenarios: POST /message (batches, validation, formats, delivery rules, history, large and
non-ASCII payloads), PATCH and DELETE /message and what catch-up shows after them.

Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
(t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
arrive after whatever should not have (delivery is FIFO per server).
"""

import json
import time
import uuid as uuidlib

from .helpers import _admin_view, _wait_frames_stored, _wait_history


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
