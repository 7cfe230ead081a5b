"""Scenarios: a connection's life after its socket closes or /disconnect marks it (mark_for_gc:
last_active -= 60 days, collected by the next 1 s GC pass), and the order of users in presence
lists and /info.

What happens *between* the close and the GC pass is the point here, so the sequences start
just after a GC pass (``_after_gc_pass``): a throwaway connection is disconnected and the
moment its `parted` reaches a watcher marks a pass; the next one is ~1 s later, which leaves
the steps a wide window on both servers.  After the pass, states are awaited (a `parted` frame)
or polled with a bound, never slept for.
"""

import time

import requests

from .signing import sign

# The sequence must finish well inside the gap between two GC passes.
_WINDOW_START = 0.25


def _after_gc_pass(t):
    """Block until shortly after a connection GC pass.  Recorded steps are the same on every
    run, so the transcript stays deterministic."""
    tick, watch = t.p("gc_tick"), t.p("gc_watch")
    room = t.p("gc_phase")
    cfg = {room: {"notify_presence": True}}
    w = t.connect("gc phase: connect watcher", watch, channels=[room], channel_configs=cfg)
    ws_w = t.ws("gc watcher", w)
    k = t.connect("gc phase: connect ticker", tick, channels=[room])
    t.frames("gc phase: ticker joined", ws_w, 1)
    t.http("gc phase: disconnect ticker", "GET", "/disconnect", signed=False,
           params={"conn_id": k})
    ok = ws_w.wait(1, 5.0)
    got = ws_w.take()
    t.add({"step": "gc phase: ticker parted", "frames": [f for _, f in got]})
    if not ok or not got:
        t.warn("no GC pass seen within 5 s")
        return
    wait = got[0][0] + _WINDOW_START - time.monotonic()
    if wait > 0:
        time.sleep(wait)


def _info(t, step, room):
    return t.post(step, "/info", {"info": {"channels": [room]}})


def _poll_info(t, step, room, gone_user, timeout=5.0):
    """Poll /info (unrecorded) until ``gone_user`` is no longer in ``room``, then record it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.post(t.base + "/info", json={"info": {"channels": [room]}},
                          headers={"x-channelstream-secret": sign()}, timeout=10)
        try:
            if gone_user not in r.json()["channels"][room]["users"]:
                break
        except Exception:
            pass
        time.sleep(0.05)
    else:
        t.warn("%s still in %s after %.0f s" % (gone_user, room, timeout))
    return _info(t, step, room)


def _room(t, name):
    room = t.p(name)
    return room, {room: {"notify_presence": True, "broadcast_presence_with_user_lists": True}}


def scenario_lifetime_close_then_disconnect(t):
    """The JS client's disconnect(): the socket closes and /disconnect is posted in the same
    tick.  The connection outlives its socket until the next GC pass, so /disconnect says true,
    and /info still lists the user until the pass sends `parted`."""
    alice, bob = t.p("alice"), t.p("bob")
    room, cfg = _room(t, "room")
    b = t.connect("connect bob", bob, channels=[room], channel_configs=cfg)
    ws_b = t.ws("bob", b)
    a = t.connect("connect alice", alice, channels=[room], fresh_user_state={"k": 1})
    t.frames("bob: alice joined", ws_b, 1)
    ws_a = t.ws("alice", a)
    _after_gc_pass(t)
    ws_a.close()
    t.http("disconnect right after the close (JS client: POST, query + body) -> true", "POST",
           "/disconnect", body={"conn_id": a}, signed=False, params={"conn_id": a})
    _info(t, "info before the GC pass: alice still listed", room)
    t.http("disconnect again before the pass -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": a})
    t.frames("alice: close reply", ws_a, 1)
    t.frames("bob: alice parted at the GC pass", ws_b, 1, timeout=5)
    _poll_info(t, "info after the GC pass: alice gone", room, alice)
    t.http("disconnect after the pass -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": a})
    t.post("admin: alice has no connection left", "/admin/admin.json", None,
           transform=lambda body: [u.get("user") for u in body.get("users", [])
                                   if str(u.get("user", "")).startswith(t.prefix)]
           if isinstance(body, dict) else body)


def scenario_lifetime_close_only(t):
    """A socket close alone (no /disconnect): until the pass the connection is still known."""
    alice, bob = t.p("alice"), t.p("bob")
    room, cfg = _room(t, "room")
    b = t.connect("connect bob", bob, channels=[room], channel_configs=cfg)
    ws_b = t.ws("bob", b)
    a = t.connect("connect alice", alice, channels=[room])
    t.frames("bob: alice joined", ws_b, 1)
    ws_a = t.ws("alice", a)
    _after_gc_pass(t)
    ws_a.close()
    t.frames("alice: close reply", ws_a, 1)
    _info(t, "info after the close, before the pass: alice listed", room)
    t.message("a message to the room before the pass", [
        {"channel": room, "user": "s", "message": {"text": "after close"}}])
    t.frames("bob: the message", ws_b, 1)
    t.frames("bob: alice parted at the GC pass", ws_b, 1, timeout=5)
    _poll_info(t, "info after the pass", room, alice)
    t.http("disconnect after the pass -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": a})


def scenario_lifetime_longpoll_disconnect(t):
    """Long polls around a disconnect: a poll answered before it, a poll started after it but
    before the GC pass (answered with catch-up, which revives the connection), a second
    disconnect that the pass honours, then a poll after the pass (401)."""
    erin, bob = t.p("erin"), t.p("bob")
    room, cfg = _room(t, "room")
    b = t.connect("connect bob", bob, channels=[room], channel_configs=cfg)
    ws_b = t.ws("bob", b)
    e = t.connect("connect erin", erin, channels=[room])
    t.frames("bob: erin joined", ws_b, 1)
    p1 = t.listen_async("erin: poll answered by a message", e)
    time.sleep(0.5)  # let the poll attach its queue (see message_batch9)
    t.message("message to the room", [{"channel": room, "user": "s", "message": {"n": 1}}])
    t.frames("bob: the message", ws_b, 1)
    p1.join()
    _after_gc_pass(t)
    t.http("erin disconnects -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": e})
    _info(t, "info before the pass: erin listed", room)
    # /listen replays every frame newer than last_active (now 60 days back) and its answer
    # (after the 0.25 s gap, before the pass) marks the connection active again.
    t.listen("erin: poll after the disconnect: catch-up of the room, revives erin", e)
    t.http("disconnect after the revival -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": e})
    t.frames("bob: erin parted at the GC pass", ws_b, 1, timeout=5)
    _poll_info(t, "info after the pass: erin gone", room, erin)
    t.listen("erin: poll after the pass -> 401", e)
    t.http("disconnect after the pass -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": e})


def scenario_lifetime_user_order(t):
    """Users joining and leaving in a non-sorted order: presence `users` lists follow the
    channel's first-join order (a user who leaves and comes back goes to the end), the channel
    `users` of /info are sorted."""
    names = ["mike", "carl", "xena", "anna", "bert"]
    room, cfg = _room(t, "room")
    w = t.connect("connect watcher zed", t.p("zed"), channels=[room], channel_configs=cfg)
    ws_w = t.ws("zed", w)
    conns = {}
    for n in names:
        conns[n] = t.connect("connect " + n, t.p(n), channels=[room],
                             fresh_user_state={"who": n}, state_public_keys=["who"])
        t.frames("zed: %s joined" % n, ws_w, 1)
    _info(t, "info: five users", room)
    t.post("carl leaves", "/unsubscribe", {"conn_id": conns["carl"], "channels": [room]})
    t.frames("zed: carl parted", ws_w, 1)
    t.post("carl comes back (goes last)", "/subscribe",
           {"conn_id": conns["carl"], "channels": [room]})
    t.frames("zed: carl joined again", ws_w, 1)
    t.http("xena disconnects", "GET", "/disconnect", signed=False,
           params={"conn_id": conns["xena"]})
    t.frames("zed: xena parted at the GC pass", ws_w, 1, timeout=5)
    t.connect("connect xena again, new connection (goes last)", t.p("xena"), channels=[room])
    t.frames("zed: xena joined again", ws_w, 1)
    _info(t, "info after the churn", room)
    t.post("info: all channels of the scenario, public state", "/info",
           {"info": {"channels": [room, t.p("other")], "return_public_state": True}})


def scenario_lifetime_close_then_disconnect_unaligned(t):
    """The same tick without waiting for a GC pass first, after a quiet second of this
    scenario's own: a port that lets its GC grid fall behind while idle collects the marked
    connection at once and answers false (the browser test repeats this 20 times; run this
    scenario alone, --only, for an idle server)."""
    alice = t.p("alice")
    room = t.p("room")
    a = t.connect("connect alice", alice, channels=[room])
    ws_a = t.ws("alice", a)
    t.sleep(1.5)
    # As from a browser, where /disconnect waits for its CORS preflight: the close handshake
    # and the TCP close are done before the POST arrives.
    ws_a.close()
    t.frames("alice: close reply", ws_a, 1)
    ws_a.shutdown()
    t.http("disconnect right after the close -> true", "POST", "/disconnect",
           body={"conn_id": a}, signed=False, params={"conn_id": a})


def scenario_lifetime_close_replaced_socket(t):
    """Two sockets on one connection; closing the replaced (first) one marks the connection
    too (ws_app.py closed() looks the connection up by conn_id): the next pass collects it
    and closes the live second socket with 1000."""
    alice, bob = t.p("alice"), t.p("bob")
    room, cfg = _room(t, "room")
    b = t.connect("connect bob", bob, channels=[room], channel_configs=cfg)
    ws_b = t.ws("bob", b)
    a = t.connect("connect alice", alice, channels=[room])
    t.frames("bob: alice joined", ws_b, 1)
    first = t.ws("first", a)
    second = t.ws("second", a)
    t.message("barrier: the second socket is attached", [
        {"channel": room, "user": "s", "message": {"k": 1}}])
    t.frames("second socket gets it", second, 1)
    t.frames("bob gets it", ws_b, 1)
    _after_gc_pass(t)
    first.close()
    t.frames("first: close reply", first, 1)
    _info(t, "info before the pass: alice listed", room)
    t.frames("second: closed by the GC pass", second, 1, timeout=5)
    t.frames("bob: alice parted", ws_b, 1, timeout=5)
    t.http("disconnect after the pass -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": a})


def scenario_lifetime_two_conns_one_pass_each(t):
    """Two marked connections of one user next to each other in a channel's list: gc_conns
    removes from the list it iterates, so it skips the second; it goes one pass later (the
    user's `parted` and its /info entry wait for that second pass)."""
    alice, bob = t.p("alice"), t.p("bob")
    room, cfg = _room(t, "room")
    b = t.connect("connect bob", bob, channels=[room], channel_configs=cfg)
    ws_b = t.ws("bob", b)
    a1 = t.connect("connect alice", alice, channels=[room])
    t.frames("bob: alice joined", ws_b, 1)
    a2 = t.connect("connect alice again (second connection)", alice, channels=[room])
    _after_gc_pass(t)
    for n, cid in (("first", a1), ("second", a2)):
        t.http("disconnect alice's %s connection -> true" % n, "GET", "/disconnect",
               signed=False, params={"conn_id": cid})
    seen = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        r = requests.post(t.base + "/info", json={"info": {"channels": [room]}},
                          headers={"x-channelstream-secret": sign()}, timeout=10)
        try:
            n = r.json()["channels"][room]["total_connections"]
        except Exception:
            n = None
        if not seen or seen[-1] != n:
            seen.append(n)
        if n == 1:  # bob alone
            break
        time.sleep(0.05)
    t.note("room total_connections as the passes go (3 = bob + alice x2)", seen)
    t.frames("bob: alice parted", ws_b, 1, timeout=5)
    for n, cid in (("first", a1), ("second", a2)):
        t.http("disconnect alice's %s connection after the passes -> false" % n, "GET",
               "/disconnect", signed=False, params={"conn_id": cid})
