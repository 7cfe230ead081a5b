"""Scenarios: /connect (validation, coercions, conn_id forms, reconnect state), /subscribe,
/unsubscribe, /user_state and its events, /channel_config, /info variants, /disconnect,
admin.json and stats of unknown channels.

Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
(t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
arrive after whatever should not have (delivery is FIFO per server).
"""

import uuid as uuidlib

from .helpers import ADMIN_PAGE_LOOSE, _admin_view, _loc_path, _wait_history, only_prefixed
from .signing import sign


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
                  record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.note("302 Location path", _loc_path(resp.headers.get("Location")))
    t.http("GET bad signature -> 401", "GET", "/admin/admin.json", secret="garbage")
    resp = t.http("GET /admin unsigned -> 302", "GET", "/admin", signed=False, record_body=False,
                  loose_headers=ADMIN_PAGE_LOOSE)
    t.note("/admin 302 Location path", _loc_path(resp.headers.get("Location")))
    t.http("GET /admin/foo signed -> 404", "GET", "/admin/foo")


def scenario_stats_unknown_channel(t):
    t.message("message to unknown channel accepted", [
        {"channel": t.p("nowhere"), "user": "u", "message": {"x": 1}}])
    t.post("channel not auto-created", "/info", {"info": {"channels": [t.p("nowhere")]}})
