"""Scenarios driven by the server's timers (heartbeats, connection GC, long-poll waits); they
dominate the wall time, so the runner starts them first.

Conventions: every user/channel name goes through t.p(); frames are awaited with a known count
(t.frames(..., expect=N)); "nothing else arrives" is proven with a barrier message that must
arrive after whatever should not have (delivery is FIFO per server).
"""

import time


def scenario_timer_heartbeat(t):
    start = t.now()
    cid = t.connect("connect", t.p("hb"))
    sock = t.ws("hb", cid)
    t.frames("two server heartbeats", sock, 2, heartbeats=True, timing_since=start, timeout=14,
             grace=0)


def scenario_timer_gc_late_ws(t):
    alice, dave = t.p("alice"), t.p("dave")
    room = t.p("pchan")
    a = t.connect("connect alice", alice, channels=[room],
                  channel_configs={room: {"notify_presence": True}})
    ws_a = t.ws("alice", a)
    start = t.now()
    d = t.connect("connect dave", dave, channels=[room])
    t.frames("alice: dave joined", ws_a, 1, timing_since=start)
    t.sleep(6.5)  # attach after the first 5 s heartbeat check: heartbeats have stopped for good
    ws_d = t.ws("dave", d, sync=False)
    t.frames("dave: no heartbeats, closed 1000 ~15 s after connect", ws_d, 1, heartbeats=True,
             timing_since=start, timeout=16)
    t.frames("alice: dave parted", ws_a, 1, timing_since=start, timeout=4)


def scenario_timer_longpoll_idle(t):
    cid = t.connect("connect", t.p("lp"))
    start = t.now()
    t.listen("idle poll returns [] after ~5 s", cid, timing_since=start)
    start = t.now()
    t.listen("second idle poll returns [] after ~5 s", cid, timing_since=start)


def scenario_timer_longpoll_gc(t):
    """erin polls once then stops: collected 15 s after the end of her poll.  erin2 does the same
    without channels: the GC only walks channel member lists, so she is never collected."""
    erin, erin2 = t.p("erin"), t.p("erin2")
    cid = t.connect("connect erin (in a channel)", erin, channels=[t.p("room")])
    cid2 = t.connect("connect erin2 (no channels)", erin2)
    p1 = t.listen_async("erin: one poll", cid)
    p2 = t.listen_async("erin2: one poll", cid2)
    p1.join()
    p2.join()
    start = t.now()
    t.sleep(18.0)
    t.listen("erin after 18 s without polling: collected -> 401", cid, timing_since=start)
    t.listen("erin2 after 18 s: still alive (idle poll)", cid2)


def scenario_timer_connect_without_attach(t):
    room = t.p("room")
    cid = t.connect("connect, never attach", t.p("ghost"), channels=[room])
    lonely = t.connect("connect without channels, never attach", t.p("lonely"))
    closed = t.connect("connect without channels, ws opened and closed", t.p("closer"))
    sock = t.ws("closer", closed)
    sock.close()
    t.frames("close reply", sock, 1)
    t.sleep(17.0)
    t.http("collected after ~15 s: disconnect -> false", "GET", "/disconnect", signed=False,
           params={"conn_id": cid})
    t.http("channel-less: never collected -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": lonely})
    t.http("channel-less with closed ws: never collected -> true", "GET", "/disconnect",
           signed=False, params={"conn_id": closed})
    t.post("info: channel kept, user gone from it", "/info", {"info": {"channels": [room]}})


def scenario_timer_longpoll_disconnect_midwait(t):
    """A poll whose connection is collected while it waits: the real server crashes (500) once
    its 5 s wait ends (queue set to None by the GC)."""
    start = t.now()
    cid = t.connect("connect", t.p("mid"), channels=[t.p("room")])
    pend = t.listen_async("poll collected mid-wait", cid, timing_since=start)
    time.sleep(1.0)  # let the poll attach its queue (see message_batch9)
    t.http("disconnect while polling -> true", "GET", "/disconnect", signed=False,
           params={"conn_id": cid})
    pend.join()
