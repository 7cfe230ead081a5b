//! `/connect`, `/subscribe`, `/info`, `/user_state`, `/channel_config` and admin.json: the
//! shape and key order of each answer, the state rules, and what connecting and subscribing
//! change in the model.

use super::*;

#[test]
fn connect_response_shape_and_defaults() {
    let mut w = World::new();
    let mut cmd = connect_cmd("alice", &["room", "b_chan", "quiet"]);
    cmd.fresh_user_state = state(json!({"status": "online", "private": "secret-x"}));
    cmd.user_state = state(json!({"n": 1, "color": "red"}));
    cmd.state_public_keys = strings(&["status", "color"]);
    let (id, body) = w.connect(0, cmd);
    assert_eq!(
        keys(&body),
        vec![
            "conn_id",
            "state",
            "username",
            "public_state",
            "channels",
            "channels_info"
        ]
    );
    assert_eq!(body["conn_id"], id.hyphenated().to_string());
    assert_eq!(
        body["state"],
        json!({"status": "online", "private": "secret-x", "n": 1, "color": "red"})
    );
    assert_eq!(
        keys(&body["state"]),
        vec!["status", "private", "n", "color"]
    );
    assert_eq!(
        body["public_state"],
        json!({"status": "online", "color": "red"})
    );
    assert_eq!(body["channels"], json!(["b_chan", "quiet", "room"]));
    let info = &body["channels_info"];
    assert_eq!(keys(info), vec!["channels", "users"]);
    assert_eq!(keys(&info["channels"]), vec!["b_chan", "quiet", "room"]);
    let b = &info["channels"]["b_chan"];
    assert_eq!(
        keys(b),
        vec![
            "uuid",
            "name",
            "long_name",
            "settings",
            "history",
            "last_active",
            "total_connections",
            "total_users",
            "users"
        ]
    );
    assert_eq!(
        b["settings"],
        json!({"notify_presence": false, "store_history": false, "history_size": 10,
               "broadcast_presence_with_user_lists": false, "notify_state": false,
               "store_frames": true})
    );
    assert_eq!(
        keys(&b["settings"]),
        vec![
            "notify_presence",
            "store_history",
            "history_size",
            "broadcast_presence_with_user_lists",
            "notify_state",
            "store_frames"
        ]
    );
    assert_eq!(b["long_name"], Value::Null);
    assert_eq!(b["last_active"], "2026-11-22T13:59:00");
    assert_eq!(b["total_connections"], 1);
    assert_eq!(b["users"], json!(["alice"]));
    // Quirk 5: /connect leaks the full private state of channel users by default.
    assert_eq!(
        info["users"],
        json!([{"user": "alice", "state": {"status": "online", "private": "secret-x", "n": 1, "color": "red"}}])
    );
    assert!(w.m.has_connection(&id));
    assert!(w.fx.frames.is_empty());
}

#[test]
fn connect_state_rules_gina() {
    let mut w = World::new();
    let mut c = connect_cmd("gina", &[]);
    c.fresh_user_state = state(json!({"a": 1.5, "b": true, "c": null}));
    c.state_public_keys = strings(&["a", "c"]);
    let (_, body) = w.connect(0, c);
    // Quirk 9: an absent key set to null is not stored.
    assert_eq!(body["state"], json!({"a": 1.5, "b": true}));
    assert_eq!(body["public_state"], json!({"a": 1.5}));
    let mut c = connect_cmd("gina", &[]);
    c.fresh_user_state = state(json!({"a": 99, "z": 1}));
    c.user_state = state(json!({"b": false}));
    let (_, body) = w.connect(10, c);
    // fresh_user_state only applies to a new user; quirk 4: public keys reset to [].
    assert_eq!(body["state"], json!({"a": 1.5, "b": false}));
    assert_eq!(body["public_state"], json!({}));
}

#[test]
fn duplicate_conn_id_appends_a_second_connection_object() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("frank", &["cu_chan"]));
    let mut again = connect_cmd("frank", &["cu_chan"]);
    again.conn_id = id;
    let (id2, body) = w.connect(10, again);
    assert_eq!(id2, id);
    assert_eq!(
        body["channels_info"]["channels"]["cu_chan"]["total_connections"],
        2
    );
    let info = w.info();
    assert_eq!(info["channels"]["cu_chan"]["total_connections"], 2);
    assert_eq!(info["channels"]["cu_chan"]["users"], json!(["frank"]));
    let admin = body_json(&w.m.admin_json(w.now(20)));
    assert_eq!(admin["total_connections"], 2);
    assert_eq!(
        admin["users"][0]["connections"],
        json!([id.to_string(), id.to_string()])
    );
}

#[test]
fn info_selection_history_users_and_public_state() {
    let mut w = World::new();
    let mut c = connect_cmd("alice", &["a", "b", "c"]);
    c.user_state = state(json!({"s": 1, "p": 2}));
    c.state_public_keys = strings(&["s"]);
    w.connect(0, c);
    w.connect(0, connect_cmd("bob", &["b"]));
    let res = InfoResolution {
        channels: Some(strings(&["c", "b", "nope", "a"])),
        exclude_channels: strings(&["a"]),
        return_public_state: true,
        include_history: false,
        ..InfoResolution::default()
    };
    let v = body_json(&w.m.info(&res));
    assert_eq!(keys(&v["channels"]), vec!["c", "b"]);
    assert_eq!(v["channels"]["b"]["users"], json!(["alice", "bob"]));
    assert_eq!(v["channels"]["b"]["total_users"], 2);
    assert_eq!(
        v["users"],
        json!([{"user": "alice", "state": {"s": 1}}, {"user": "bob", "state": {}}])
    );
    let no_users = InfoResolution {
        include_users: false,
        ..InfoResolution::default()
    };
    let v = body_json(&w.m.info(&no_users));
    assert_eq!(v["users"], json!([]));
    assert_eq!(v["channels"]["b"]["users"], json!([]));
    assert_eq!(v["channels"]["b"]["total_users"], 0);
    assert_eq!(v["channels"]["b"]["total_connections"], 2);
}

#[test]
fn user_state_response_and_state_change_events() {
    let mut w = World::new();
    w.configure(
        0,
        "cu_chan",
        Some(ChannelConfig {
            notify_state: true,
            ..ChannelConfig::default()
        }),
    );
    let mut c = connect_cmd("frank", &["cu_chan"]);
    c.state_public_keys = strings(&["status"]);
    let (frank, _) = w.connect(0, c);
    let (bob, _) = w.connect(0, connect_cmd("bob", &["cu_chan"]));
    w.ws(1, frank, sock(1));
    w.ws(1, bob, sock(2));
    let cmd = UserStateCmd {
        user: "frank".into(),
        user_state: state(json!({"private_only": 1})),
        state_public_keys: None,
    };
    let r = w.m.user_state(cmd, w.now(100), &mut w.fx);
    let body = body_json(&r);
    assert_eq!(
        keys(&body),
        vec!["user_state", "changed_state", "public_keys"]
    );
    assert_eq!(
        body["changed_state"],
        json!([{"key": "private_only", "value": 1}])
    );
    assert_eq!(body["public_keys"], json!(["status"]));
    // Quirk 8: the event goes out with `changed: []`, to everyone including frank.
    for s in [sock(1), sock(2)] {
        let got = w.fx.take_for(s);
        assert_eq!(got.len(), 1);
        let ev = &got[0][0];
        assert_eq!(
            keys(ev),
            vec![
                "uuid",
                "type",
                "user",
                "timestamp",
                "catchup",
                "channel",
                "message"
            ]
        );
        assert_eq!(ev["type"], "user_state_change");
        assert_eq!(ev["user"], "frank");
        assert_eq!(ev["channel"], "cu_chan");
        assert_eq!(ev["catchup"], false);
        assert_eq!(ev["timestamp"], "2026-11-22T13:59:00.100000");
        assert_eq!(ev["message"], json!({"state": {}, "changed": []}));
    }
    // A public key change is reported; an unchanged value (1 == 1.0) emits nothing.
    let cmd = UserStateCmd {
        user: "frank".into(),
        user_state: state(json!({"status": "busy", "private_only": 1.0})),
        state_public_keys: None,
    };
    let body = body_json(&w.m.user_state(cmd, w.now(200), &mut w.fx));
    assert_eq!(
        body["changed_state"],
        json!([{"key": "status", "value": "busy"}])
    );
    assert_eq!(w.fx.take_for(sock(1)).len(), 1);
    let ev = &w.fx.take_for(sock(2))[0][0];
    assert_eq!(
        ev["message"],
        json!({"state": {"status": "busy"}, "changed": [{"key": "status", "value": "busy"}]})
    );
    let cmd = UserStateCmd {
        user: "frank".into(),
        user_state: state(json!({"status": "busy"})),
        state_public_keys: Some(vec![]),
    };
    let body = body_json(&w.m.user_state(cmd, w.now(300), &mut w.fx));
    assert_eq!(body["changed_state"], json!([]));
    assert_eq!(body["public_keys"], json!([]));
    assert!(w.fx.frames.is_empty());
    let unknown = UserStateCmd {
        user: "nobody".into(),
        user_state: Map::new(),
        state_public_keys: None,
    };
    let r = w.m.user_state(unknown, w.now(300), &mut w.fx);
    assert_eq!(r.status, 422);
    assert_eq!(body_json(&r), json!({"user": ["Unknown user"]}));
}

#[test]
fn channel_config_partial_resets_and_response_shape() {
    let mut w = World::new();
    let full = ChannelConfig {
        notify_presence: true,
        store_history: true,
        history_size: 3,
        broadcast_presence_with_user_lists: true,
        notify_state: true,
        store_frames: false,
    };
    w.configure(0, "room", Some(full));
    w.connect(0, connect_cmd("alice", &["room"]));
    // Quirk 3: a partial config (defaults filled by the schema) resets the rest.
    let partial = ChannelConfig {
        history_size: 5,
        ..ChannelConfig::default()
    };
    let r = w.m.channel_config(
        vec![("room".into(), Some(partial)), ("brand_new".into(), None)],
        w.now(10),
    );
    let v = body_json(&r);
    assert_eq!(keys(&v["channels"]), vec!["room", "brand_new"]);
    let room = &v["channels"]["room"];
    assert_eq!(room["settings"]["notify_presence"], false);
    assert_eq!(room["settings"]["history_size"], 5);
    // Quirk 10: no users listed, total_users 0, though alice is connected.
    assert_eq!(room["total_users"], 0);
    assert_eq!(room["users"], json!([]));
    assert_eq!(room["total_connections"], 1);
    assert_eq!(v["users"], json!([]));
    assert_eq!(v["channels"]["brand_new"]["settings"]["store_frames"], true);
    let empty = body_json(&w.m.channel_config(vec![], w.now(20)));
    assert_eq!(empty, json!({"channels": {}, "users": []}));
}

#[test]
fn subscribe_reports_new_channels_and_joins() {
    let mut w = World::new();
    let (alice, _) = w.connect(0, connect_cmd("alice", &["room", "b_chan"]));
    let cmd = SubscribeCmd {
        conn_id: alice,
        channels: strings(&["room", "new_chan"]),
        info: InfoResolution::default(),
        channel_configs: vec![("new_chan".into(), presence_config())],
    };
    let v = body_json(&w.m.subscribe(cmd, w.now(5), &mut w.fx));
    assert_eq!(keys(&v), vec!["channels", "channels_info", "subscribed_to"]);
    assert_eq!(v["channels"], json!(["b_chan", "new_chan", "room"]));
    assert_eq!(v["subscribed_to"], json!(["new_chan"]));
    assert_eq!(
        v["channels_info"]["channels"]["new_chan"]["settings"]["notify_presence"],
        true
    );
    let bad = SubscribeCmd {
        conn_id: Uuid::new_v4(),
        channels: strings(&["x"]),
        info: InfoResolution::default(),
        channel_configs: vec![],
    };
    let r = w.m.subscribe(bad, w.now(6), &mut w.fx);
    assert_eq!(r.status, 422);
}

#[test]
fn admin_json_shape_and_counts() {
    let mut w = World::new();
    let mut c = connect_cmd("u1", &["c1"]);
    c.user_state = state(json!({"s": 1, "hidden": 2}));
    c.state_public_keys = strings(&["s"]);
    let (id, _) = w.connect(0, c);
    w.connect(0, connect_cmd("u2", &[]));
    w.send(100, vec![msg_cmd("u1", Some("c1"), "hi")]);
    let v = body_json(&w.m.admin_json(w.now(7_500)));
    assert_eq!(
        keys(&v),
        vec![
            "remembered_user_count",
            "unique_user_count",
            "total_connections",
            "total_channels",
            "total_messages",
            "total_unique_messages",
            "channels",
            "users",
            "uptime",
            "version"
        ]
    );
    assert_eq!(v["remembered_user_count"], 2);
    assert_eq!(v["unique_user_count"], 2);
    assert_eq!(v["total_connections"], 2);
    assert_eq!(v["total_channels"], 1);
    assert_eq!(v["total_messages"], 1);
    assert_eq!(v["total_unique_messages"], 1);
    assert_eq!(v["uptime"], "0:00:07");
    assert_eq!(v["version"], "0.7.1");
    assert_eq!(v["channels"]["c1"]["users"], json!(["u1"]));
    let u = &v["users"][0];
    assert_eq!(keys(u), vec!["state", "user", "uuid", "connections"]);
    assert_eq!(u["state"], json!({"s": 1}));
    assert_eq!(u["connections"], json!([id.to_string()]));
}

#[test]
fn admin_connections_tells_transports_apart() {
    let mut w = World::new();
    let (ws_id, _) = w.connect(0, connect_cmd("u1", &["c1", "c2"]));
    let (lp_id, _) = w.connect(0, connect_cmd("u2", &["c1"]));
    let (none_id, _) = w.connect(0, connect_cmd("u3", &[]));
    w.ws(10, ws_id, sock(1));
    w.listen(20, req(1), lp_id, None);
    let v = body_json(&w.m.admin_connections());
    assert_eq!(keys(&v), vec!["connections", "by_transport"]);
    assert_eq!(
        v["by_transport"],
        json!({"websocket": 1, "long_poll": 1, "closed": 0, "none": 1})
    );
    let find = |id: Uuid| {
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["conn_id"] == json!(id.hyphenated().to_string()))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find(ws_id),
        json!({"conn_id": ws_id.hyphenated().to_string(), "user": "u1",
               "transport": "websocket", "channels": ["c1", "c2"]})
    );
    assert_eq!(find(lp_id)["transport"], "long_poll");
    assert_eq!(find(none_id)["transport"], "none");
    assert_eq!(find(none_id)["channels"], json!([]));
}
