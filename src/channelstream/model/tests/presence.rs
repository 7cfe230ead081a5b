//! Presence: `joined` and `parted` events with and without user lists, and the 0.7.1 quirks
//! around them (parting a channel one is not in, GC passes that part several users).

use super::*;

/// Presence events on, user lists in them off.
fn presence_without_user_lists() -> ChannelConfig {
    ChannelConfig {
        notify_presence: true,
        ..ChannelConfig::default()
    }
}

#[test]
fn presence_joined_and_parted_with_user_lists() {
    let mut w = World::new();
    w.configure(0, "room", Some(presence_config()));
    let mut a = connect_cmd("alice", &["room"]);
    a.user_state = state(json!({"status": "online", "color": "red"}));
    a.state_public_keys = strings(&["status", "color"]);
    let (alice, _) = w.connect(0, a);
    w.ws(10, alice, sock(1));
    let mut b = connect_cmd("bob", &["room"]);
    b.user_state = state(json!({"status": "away", "secret": 1}));
    b.state_public_keys = strings(&["status"]);
    let (bob, _) = w.connect(1590, b);
    let got = w.fx.take_for(sock(1));
    assert_eq!(got.len(), 1);
    let ev = &got[0][0];
    assert_eq!(
        keys(ev),
        vec![
            "uuid",
            "type",
            "user",
            "users",
            "timestamp",
            "channel",
            "message",
            "state",
            "catchup"
        ]
    );
    assert_eq!(ev["type"], "presence");
    assert_eq!(ev["user"], "bob");
    // The joiner is already in the user list.
    assert_eq!(
        ev["users"],
        json!([{"user": "alice", "state": {"status": "online", "color": "red"}},
               {"user": "bob", "state": {"status": "away"}}])
    );
    assert_eq!(ev["timestamp"], "2026-11-22T13:59:01.590000");
    assert_eq!(ev["message"], json!({"action": "joined"}));
    assert_eq!(ev["state"], json!({"status": "away"}));
    assert_eq!(ev["catchup"], false);
    let uuid = ev["uuid"].as_str().unwrap();
    assert!(Uuid::parse_str(uuid).is_ok() && uuid.contains('-'));

    // A second tab of bob: no new joined.
    let (bob2, _) = w.connect(1600, connect_cmd("bob", &["room"]));
    assert!(w.fx.take_for(sock(1)).is_empty());

    // Unsubscribing one tab: no parted; the last one: parted with state null.
    let unsub = |id| SubscribeCmd {
        conn_id: id,
        channels: strings(&["room"]),
        info: InfoResolution::default(),
        channel_configs: vec![],
    };
    let r = w.m.unsubscribe(unsub(bob2), w.now(1700), &mut w.fx);
    let v = body_json(&r);
    assert_eq!(
        keys(&v),
        vec!["channels", "channels_info", "unsubscribed_from"]
    );
    assert_eq!(
        v,
        json!({"channels": [], "channels_info": {"channels": {}, "users": []}, "unsubscribed_from": ["room"]})
    );
    assert!(w.fx.take_for(sock(1)).is_empty());
    w.m.unsubscribe(unsub(bob), w.now(1800), &mut w.fx);
    let got = w.fx.take_for(sock(1));
    assert_eq!(got.len(), 1);
    let ev = &got[0][0];
    assert_eq!(ev["message"], json!({"action": "parted"}));
    assert_eq!(ev["state"], Value::Null);
    assert_eq!(
        ev["users"],
        json!([{"user": "alice", "state": {"status": "online", "color": "red"}}])
    );
    // Presence never lands in history, but is a frame (caught up later).
    assert_eq!(w.info()["channels"]["room"]["history"], json!([]));
}

#[test]
fn presence_without_user_lists_has_empty_users() {
    let mut w = World::new();
    w.configure(0, "p", Some(presence_without_user_lists()));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["p"]));
    w.ws(1, alice, sock(1));
    w.connect(2, connect_cmd("carol", &["p"]));
    let ev = &w.fx.take_for(sock(1))[0][0];
    assert_eq!(ev["users"], json!([]));
    assert_eq!(ev["state"], json!({}));
}

#[test]
fn unsubscribing_a_channel_one_is_not_in_still_sends_parted() {
    let mut w = World::new();
    w.configure(0, "p", Some(presence_without_user_lists()));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["p"]));
    let (bob, _) = w.connect(0, connect_cmd("bob", &[]));
    w.ws(1, alice, sock(1));
    let cmd = SubscribeCmd {
        conn_id: bob,
        channels: strings(&["p", "missing"]),
        info: InfoResolution::default(),
        channel_configs: vec![],
    };
    let v = body_json(&w.m.unsubscribe(cmd, w.now(10), &mut w.fx));
    assert_eq!(v["unsubscribed_from"], json!([]));
    let got = w.fx.take_for(sock(1));
    assert_eq!(
        got.len(),
        1,
        "0.7.1 quirk: after_parted runs for a non-member too"
    );
    assert_eq!(got[0][0]["user"], "bob");
    assert_eq!(got[0][0]["message"]["action"], "parted");
}

#[test]
fn one_gc_pass_collecting_two_users_parts_them_in_join_order() {
    let mut w = World::new();
    // No frames, so bob's late socket gets no catch-up (which would mark him active).
    let cfg = ChannelConfig {
        store_frames: false,
        ..presence_config()
    };
    w.configure(0, "p", Some(cfg));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["p"]));
    let (bob, _) = w.connect(0, connect_cmd("bob", &["p"]));
    let (carol, _) = w.connect(0, connect_cmd("carol", &["p"]));
    w.ws(1, carol, sock(3));
    // bob attaches late (no heartbeats), alice never attaches.
    w.follow(5_500);
    w.ws(6000, bob, sock(2));
    w.fx.frames.clear();
    w.follow(15_500);
    assert!(w.m.has_connection(&alice) && w.m.has_connection(&bob));
    w.follow(16_000);
    assert!(!w.m.has_connection(&alice) && !w.m.has_connection(&bob));
    assert!(w.m.has_connection(&carol));
    let parted: Vec<Value> =
        w.fx.take_for(sock(3))
            .into_iter()
            .filter(|f| f[0]["type"] == "presence")
            .map(|f| f[0].clone())
            .collect();
    assert_eq!(parted.len(), 2);
    assert_eq!(parted[0]["user"], "alice");
    let names = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user"].as_str().unwrap().to_owned())
            .collect()
    };
    // bob is still listed when alice parts: the pass removes users one at a time.
    assert_eq!(names(&parted[0]), vec!["bob", "carol"]);
    assert_eq!(parted[1]["user"], "bob");
    assert_eq!(names(&parted[1]), vec!["carol"]);
    // bob's socket, still attached during the pass, saw alice part before being closed.
    let bob_frames = w.fx.take_for(sock(2));
    assert_eq!(bob_frames.len(), 1);
    assert_eq!(bob_frames[0][0]["user"], "alice");
    assert_eq!(w.fx.closes, vec![(sock(2), CloseCode::Normal)]);
}
