//! Heartbeats and garbage collection: heartbeat frames, connection GC after inactivity or a
//! closed socket, user GC after a day, socket replacement, and the deadlines `tick` is driven
//! by (one-second GC grid, no spinning under load).

use super::*;

#[test]
fn heartbeats_every_five_seconds_share_one_frame() {
    let mut w = World::new();
    let (a, _) = w.connect(0, connect_cmd("alice", &["c"]));
    let (b, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.ws(1000, a, sock(1));
    w.ws(1000, b, sock(2));
    w.fx.deliver_calls = 0;
    w.run(1000, 4950);
    assert!(w.fx.frames.is_empty());
    w.tick(5000);
    assert_eq!(w.fx.deliver_calls, 1, "both heartbeats in one deliver call");
    assert_eq!(w.fx.frames.len(), 2);
    assert_eq!(&w.fx.frames[0].1[..], HEARTBEAT_FRAME);
    w.fx.frames.clear();
    w.run(5000, 30_000);
    // 10, 15, 20, 25, 30 s: five more each, and the sockets are kept alive by them.
    assert_eq!(w.fx.take_for(sock(1)), vec![json!([]); 5]);
    assert_eq!(w.fx.take_for(sock(2)).len(), 5);
    assert!(w.fx.closes.is_empty());
    assert!(w.m.has_connection(&a));
}

#[test]
fn late_socket_gets_no_heartbeats_and_is_collected() {
    let mut w = World::new();
    w.configure(0, "pchan", Some(presence_config()));
    let mut a = connect_cmd("alice", &["pchan"]);
    a.user_state = state(json!({"status": "online"}));
    a.state_public_keys = strings(&["status"]);
    let (alice, _) = w.connect(0, a);
    w.ws(100, alice, sock(1));
    // dave: connect at 49.04 s, socket at 56.04 s (after the 5 s check), silent.
    w.run(100, 49_000);
    let (dave, _) = w.connect(49_040, connect_cmd("dave", &["pchan"]));
    w.run(49_000, 56_000);
    w.ws(56_040, dave, sock(4));
    w.fx.frames.clear();
    w.run(56_040, 64_000);
    assert!(w.fx.take_for(sock(4)).is_empty(), "no heartbeats for dave");
    assert!(w.fx.closes.is_empty());
    // Collected at the first 1 s pass after 64.04 s.
    w.run(64_000, 65_100);
    assert_eq!(w.fx.closes, vec![(sock(4), CloseCode::Normal)]);
    assert!(!w.m.has_connection(&dave));
    let parted: Vec<Value> =
        w.fx.take_for(sock(1))
            .into_iter()
            .filter(|f| f[0]["type"] == "presence")
            .collect();
    assert_eq!(parted.len(), 1);
    assert_eq!(parted[0][0]["user"], "dave");
    assert_eq!(parted[0][0]["message"]["action"], "parted");
    assert_eq!(
        parted[0][0]["users"],
        json!([{"user": "alice", "state": {"status": "online"}}])
    );
    assert!(w.m.has_connection(&alice));
}

#[test]
fn closed_socket_is_collected_within_a_second() {
    let mut w = World::new();
    w.configure(0, "pchan", Some(presence_config()));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["pchan"]));
    w.ws(10, alice, sock(1));
    w.run(10, 45_000);
    let (carol, _) = w.connect(45_020, connect_cmd("carol", &["pchan"]));
    w.ws(45_100, carol, sock(3));
    w.run(45_000, 46_000);
    w.fx.frames.clear();
    // A close of some other socket for carol's id changes nothing.
    w.m.ws_closed(carol, sock(99), w.now(46_010));
    w.m.ws_closed(carol, sock(3), w.now(46_020));
    w.tick(46_500);
    assert!(
        w.m.has_connection(&carol),
        "collected by the next 1 s pass, not before"
    );
    w.tick(47_000);
    assert!(!w.m.has_connection(&carol));
    // The socket was closed by the client: no close from us.
    assert!(w.fx.closes.is_empty());
    let got = w.fx.take_for(sock(1));
    assert!(got
        .iter()
        .any(|f| f[0]["type"] == "presence" && f[0]["user"] == "carol"));
}

#[test]
fn connection_gc_after_fifteen_seconds_without_activity() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.run(0, 15_000);
    assert!(w.m.has_connection(&id), "not older than 15 s yet");
    w.run(15_000, 16_000);
    assert!(!w.m.has_connection(&id));
    let admin = body_json(&w.m.admin_json(w.now(16_000)));
    assert_eq!(admin["total_connections"], 0);
    assert_eq!(admin["remembered_user_count"], 1);
    assert_eq!(admin["unique_user_count"], 0);
}

#[test]
fn client_frames_keep_a_connection_alive() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.run(0, 7000);
    w.ws(7000, id, sock(1));
    for t in (10_000..=40_000).step_by(10_000) {
        w.run(t - 10_000, t);
        w.m.ws_activity(id, w.now(t));
    }
    assert!(w.m.has_connection(&id));
}

#[test]
fn connection_in_no_channel_is_never_collected() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("lonely", &[]));
    w.run(0, 30_000);
    assert!(w.m.has_connection(&id), "0.7.1's GC only walks channels");
    // Joining a channel later makes it collectable again.
    let cmd = SubscribeCmd {
        conn_id: id,
        channels: strings(&["c"]),
        info: InfoResolution::default(),
        channel_configs: vec![],
    };
    w.m.subscribe(cmd, w.now(30_000), &mut w.fx);
    w.run(30_000, 31_100);
    assert!(!w.m.has_connection(&id));
}

#[test]
fn unknown_ws_is_closed_with_1000() {
    let mut w = World::new();
    w.ws(0, Uuid::new_v4(), sock(7));
    assert_eq!(w.fx.closes, vec![(sock(7), CloseCode::Normal)]);
}

#[test]
fn new_socket_replaces_the_old_one() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.ws(10, id, sock(1));
    w.ws(20, id, sock(2));
    w.send(30, vec![msg_cmd("x", Some("c"), "hi")]);
    assert!(w.fx.take_for(sock(1)).is_empty());
    assert_eq!(w.fx.take_for(sock(2)).len(), 1);
    // Closing the orphaned socket marks the connection, as in 0.7.1 (tests/lifetime.rs).
}

#[test]
fn users_are_forgotten_after_a_day_without_activity() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &[]));
    w.m.disconnect(id, w.now(1));
    let day = 86_400 * 1000;
    // Jump straight to the passes around the one-day mark.
    w.tick(day);
    assert_eq!(
        body_json(&w.m.admin_json(w.now(day)))["remembered_user_count"],
        1
    );
    w.tick(day + 60_000);
    assert_eq!(
        body_json(&w.m.admin_json(w.now(day + 60_000)))["remembered_user_count"],
        0
    );
}

#[test]
fn next_deadline_tracks_heartbeats_polls_and_gc() {
    let mut w = World::new();
    assert_eq!(w.m.next_deadline(), None);
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    // Earliest: the first heartbeat at 5 s (GC cannot collect before 15 s; user GC at 60 s).
    assert_eq!(w.m.next_deadline(), Some(w.now(5000).mono));
    w.listen(1000, req(1), id, None);
    assert_eq!(w.m.next_deadline(), Some(w.now(5000).mono));
    w.send(2000, vec![msg_cmd("x", Some("c"), "m")]);
    assert_eq!(w.m.next_deadline(), Some(w.now(2250).mono));
    w.tick(2250);
    assert!(w.fx.reply_for(req(1)).is_some());
    assert_eq!(w.m.next_deadline(), Some(w.now(5000).mono));
}

#[test]
fn gc_pass_timing_is_on_a_one_second_grid() {
    let _ = SEC;
    let mut w = World::new();
    w.tick(0);
    let (id, _) = w.connect(300, connect_cmd("u", &["c"]));
    w.m.disconnect(id, w.now(400));
    // The pass grid started at 0: passes at 1 s, 2 s, ...
    assert_eq!(w.m.next_deadline(), Some(w.now(1000).mono));
    w.tick(999);
    assert!(w.m.has_connection(&id));
    w.tick(1000);
    assert!(!w.m.has_connection(&id));
}

#[test]
fn a_long_poll_user_is_forgotten_and_its_next_socket_send_marks_it_for_gc() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("erin", &["c"]));
    let day = 86_400_000u64;
    // Poll back to back for a day and a minute: the connection stays, the user does not
    // (long polls never mark the user active).
    let mut t = 0;
    let mut n = 0u32;
    while t < day + 61_000 {
        w.listen(t, req(n), id, None);
        w.follow(t + 5_250);
        assert!(w.fx.reply_for(req(n)).is_some(), "poll {n} answered");
        t += 5_250;
        n += 1;
    }
    assert!(w.m.has_connection(&id));
    let admin = body_json(&w.m.admin_json(w.now(t)));
    assert_eq!(admin["remembered_user_count"], 0);
    // A socket send to a connection whose user is gone marks it for GC (KeyError in 0.7.1).
    w.ws(t, id, sock(1));
    w.send(t + 10, vec![msg_cmd("x", Some("c"), "hi")]);
    assert_eq!(w.fx.take_for(sock(1)).len(), 1);
    w.follow(t + 1_100);
    assert!(!w.m.has_connection(&id));
    assert_eq!(w.fx.closes, vec![(sock(1), CloseCode::Normal)]);
}

#[test]
fn deadlines_drive_a_busy_model_without_spinning() {
    let mut w = World::new();
    let mut ids = Vec::new();
    for i in 0..20u32 {
        let (id, _) = w.connect(u64::from(i) * 100, connect_cmd(&format!("u{i}"), &["c"]));
        if i % 2 == 0 {
            w.ws(u64::from(i) * 100 + 1, id, sock(i));
        }
        ids.push(id);
    }
    let ticks = w.follow(120_000);
    // 10 sockets kept alive by heartbeats; the 10 unattached connections are collected.
    let alive = ids.iter().filter(|id| w.m.has_connection(id)).count();
    assert_eq!(alive, 10);
    // Heartbeats share ticks per 100 ms step; GC passes run only when something can be due.
    assert!(ticks < 400, "{ticks} ticks");
}
