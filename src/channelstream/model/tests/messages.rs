//! `POST`, `PATCH` and `DELETE /message`: who receives which item (channels, PMs, excludes,
//! tabs), history storage and trimming, one render per publish, and what edits and deletes
//! do to the stored copies and the events they broadcast.

use super::*;

/// §13.3: alice on a websocket, bob long-polling, one batch of (valid) items.
#[test]
fn nine_item_batch_who_gets_what() {
    let mut w = World::new();
    w.configure(0, "room", Some(history_config()));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["room"]));
    let (bob, _) = w.connect(0, connect_cmd("bob", &["room"]));
    w.ws(100, alice, sock(1));
    w.listen(200, req(9), bob, None);

    let m1 = msg_cmd("alice", Some("room"), "hello room");
    let mut m2 = msg_cmd("system", Some("room"), "pm inside room for alice");
    m2.delivery.pm_users = strings(&["alice"]);
    let mut m3 = msg_cmd("system", Some("room"), "not for alice");
    m3.delivery.exclude_users = strings(&["alice"]);
    let mut m4 = msg_cmd("system", Some("room"), "not stored");
    m4.delivery.no_history = true;
    let mut m5 = msg_cmd("system", None, "global pm");
    m5.delivery.pm_users = strings(&["alice", "ghost"]);
    let m7 = msg_cmd("system", Some("nowhere"), "unknown channel");
    let mut m8 = msg_cmd("system", Some("room"), "client uuid+timestamp");
    m8.uuid = Uuid::parse_str("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee").unwrap();
    m8.timestamp =
        Timestamp::Aware(chrono::DateTime::parse_from_rfc3339("2020-01-02T03:04:05Z").unwrap());
    let mut m9 = msg_cmd("system", Some("room"), "");
    m9.message = None;
    // Item 6 (no target) never reaches the model: validation drops it.
    w.send(1000, vec![m1, m2, m3, m4, m5, m7, m8, m9]);

    let got = w.fx.take_for(sock(1));
    let texts: Vec<Value> = got
        .iter()
        .map(|f| f[0]["message"]["text"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![
            json!("hello room"),
            json!("pm inside room for alice"),
            json!("not stored"),
            json!("global pm"),
            json!("client uuid+timestamp"),
            Value::Null,
        ]
    );
    for f in &got {
        assert_eq!(f.as_array().map(Vec::len), Some(1), "one message per frame");
    }
    let first = &got[0][0];
    assert_eq!(
        keys(first),
        vec![
            "channel",
            "uuid",
            "timestamp",
            "user",
            "message",
            "edited",
            "catchup",
            "type"
        ]
    );
    assert_eq!(first["timestamp"], "2026-11-22T14:00:00");
    assert_eq!(first["edited"], Value::Null);
    assert_eq!(first["catchup"], false);
    assert_eq!(first["type"], "message");
    assert_eq!(got[3][0]["channel"], Value::Null);
    assert_eq!(got[4][0]["uuid"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    assert_eq!(got[4][0]["timestamp"], "2020-01-02T03:04:05Z");
    assert_eq!(
        keys(&got[5][0]),
        vec![
            "channel",
            "uuid",
            "timestamp",
            "user",
            "edited",
            "catchup",
            "type"
        ]
    );

    // Bob's poll collects 1, 3, 4, 8, 9 into one body 0.25 s after the last one.
    w.run(1000, 1200);
    assert!(w.fx.replies.is_empty());
    w.tick(1250);
    let r = w.fx.reply_for(req(9)).expect("poll answered");
    assert_eq!((r.status, r.kind), (200, ContentKind::Html));
    let v = body_json(&r);
    let texts: Vec<Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["text"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![
            json!("hello room"),
            json!("not for alice"),
            json!("not stored"),
            json!("client uuid+timestamp"),
            Value::Null
        ]
    );

    // History: 1, 2, 3, 8, 9 (4 is no_history); entries keep delivery info (quirk 6).
    let info = w.info();
    let hist = info["channels"]["room"]["history"].as_array().unwrap();
    assert_eq!(hist.len(), 5);
    assert_eq!(
        keys(&hist[0]),
        vec![
            "pm_users",
            "exclude_users",
            "channel",
            "no_history",
            "uuid",
            "timestamp",
            "user",
            "message",
            "edited",
            "catchup",
            "type"
        ]
    );
    assert_eq!(hist[1]["pm_users"], json!(["alice"]));
    assert_eq!(hist[3]["timestamp"], "2020-01-02T03:04:05+00:00");

    // 8 unique; deliveries: 6 channel items x 2 connections, minus filtered (2: 1, 3: 1),
    // plus the PM to alice's one connection.
    let st = w.m.stats();
    assert_eq!(st.total_unique_messages, 8);
    assert_eq!(st.total_messages, 2 + 1 + 1 + 2 + 1 + 2 + 2);
}

#[test]
fn publish_renders_once_and_delivers_in_one_call() {
    let mut w = World::new();
    for i in 0..50u32 {
        let (id, _) = w.connect(0, connect_cmd(&format!("u{i}"), &["big"]));
        w.ws(1, id, sock(i));
    }
    w.fx.deliver_calls = 0;
    w.send(10, vec![msg_cmd("x", Some("big"), "hi")]);
    assert_eq!(w.fx.deliver_calls, 1);
    assert_eq!(w.fx.frames.len(), 50);
    let first = &w.fx.frames[0].1;
    for (_, f) in &w.fx.frames {
        // Every target shares the same allocation.
        assert_eq!(f.as_ptr(), first.as_ptr());
    }
}

#[test]
fn exclude_users_wins_over_pm_users_and_all_tabs_receive() {
    let mut w = World::new();
    let (a1, _) = w.connect(0, connect_cmd("alice", &["room"]));
    let (a2, _) = w.connect(0, connect_cmd("alice", &["room"]));
    let (b, _) = w.connect(0, connect_cmd("bob", &["room"]));
    w.ws(1, a1, sock(1));
    w.ws(1, a2, sock(2));
    w.ws(1, b, sock(3));
    let mut m = msg_cmd("sys", Some("room"), "x");
    m.delivery.pm_users = strings(&["alice", "bob"]);
    m.delivery.exclude_users = strings(&["bob"]);
    w.send(10, vec![m]);
    assert_eq!(w.fx.take_for(sock(1)).len(), 1);
    assert_eq!(w.fx.take_for(sock(2)).len(), 1);
    assert!(w.fx.take_for(sock(3)).is_empty());
    // A pm_user outside the channel gets nothing.
    let mut m = msg_cmd("sys", Some("room"), "y");
    m.delivery.pm_users = strings(&["carol"]);
    w.send(20, vec![m]);
    assert!(w.fx.frames.is_empty());
}

#[test]
fn history_size_zero_is_unlimited_and_size_trims() {
    let mut w = World::new();
    let unlimited = ChannelConfig {
        store_history: true,
        history_size: 0,
        ..ChannelConfig::default()
    };
    let three = ChannelConfig {
        store_history: true,
        history_size: 3,
        ..ChannelConfig::default()
    };
    w.m.channel_config(
        vec![
            ("all".into(), Some(unlimited)),
            ("three".into(), Some(three)),
            ("none".into(), None),
        ],
        w.now(0),
    );
    let batch: Vec<MessageCmd> = (0..12)
        .flat_map(|i| {
            ["all", "three", "none"]
                .into_iter()
                .map(move |c| msg_cmd("u", Some(c), &format!("m{i}")))
        })
        .collect();
    w.send(10, batch);
    let info = w.info();
    assert_eq!(
        info["channels"]["all"]["history"].as_array().unwrap().len(),
        12
    );
    let three = info["channels"]["three"]["history"].as_array().unwrap();
    let texts: Vec<&Value> = three.iter().map(|m| &m["message"]["text"]).collect();
    assert_eq!(texts, vec!["m9", "m10", "m11"]);
    assert_eq!(info["channels"]["none"]["history"], json!([]));
    // A message to a missing channel is counted but creates nothing.
    w.send(20, vec![msg_cmd("u", Some("ghost_chan"), "x")]);
    assert_eq!(w.m.stats().total_unique_messages, 37);
    assert!(w.info()["channels"].get("ghost_chan").is_none());
}

#[test]
fn edit_and_delete_events_and_stored_copies() {
    let mut w = World::new();
    w.configure(0, "room", Some(history_config()));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["room"]));
    w.ws(1, alice, sock(1));
    let m = msg_cmd("alice", Some("room"), "hello room");
    let uuid = m.uuid;
    let mut pm = msg_cmd("system", None, "global pm");
    pm.delivery.pm_users = strings(&["alice"]);
    let pm_uuid = pm.uuid;
    w.send(10, vec![m, pm]);
    w.fx.take_for(sock(1));

    let edited = Timestamp::from_utc(w.time.at(20).wall);
    let e = EditCmd {
        delivery: Delivery {
            channel: Some("room".into()),
            ..Delivery::default()
        },
        uuid,
        timestamp: None,
        user: Some("alice2".into()),
        message: Some(state(json!({"text": "hello room (edited)"}))),
        edited: edited.clone(),
    };
    w.m.edits(vec![e], w.now(20), &mut w.fx);
    let ev = &w.fx.take_for(sock(1))[0][0];
    // Quirk 12: no `catchup` key on edit events.
    assert_eq!(
        keys(ev),
        vec!["channel", "uuid", "user", "message", "edited", "type"]
    );
    assert_eq!(ev["type"], "message:edit");
    assert_eq!(ev["edited"], "2026-11-22T13:59:00.020000");
    let hist = &w.info()["channels"]["room"]["history"][0];
    assert_eq!(hist["user"], "alice2");
    assert_eq!(hist["message"], json!({"text": "hello room (edited)"}));
    assert_eq!(hist["edited"], "2026-11-22T13:59:00.020000");
    assert_eq!(hist["timestamp"], "2026-11-22T14:00:00");

    let pe = EditCmd {
        delivery: Delivery {
            pm_users: strings(&["alice"]),
            channel: None,
            ..Delivery::default()
        },
        uuid: pm_uuid,
        timestamp: Some(Timestamp::from_utc(
            Utc.with_ymd_and_hms(2011, 1, 1, 0, 0, 0).unwrap(),
        )),
        user: None,
        message: Some(state(json!({"text": "global pm (edited)"}))),
        edited: Timestamp::from_utc(Utc.with_ymd_and_hms(2011, 1, 1, 0, 0, 1).unwrap()),
    };
    w.m.edits(vec![pe], w.now(30), &mut w.fx);
    let ev = &w.fx.take_for(sock(1))[0][0];
    assert_eq!(
        keys(ev),
        vec!["channel", "uuid", "timestamp", "message", "edited", "type"]
    );
    assert_eq!(ev["channel"], Value::Null);
    assert_eq!(ev["timestamp"], "2011-01-01T00:00:00");
    assert_eq!(ev["edited"], "2011-01-01T00:00:01");

    let del = |channel: Option<&str>, pm: &[&str], uuid| DeleteCmd {
        delivery: Delivery {
            pm_users: strings(pm),
            channel: channel.map(str::to_owned),
            ..Delivery::default()
        },
        uuid,
    };
    w.m.deletes(vec![del(Some("room"), &[], uuid)], w.now(40), &mut w.fx);
    let ev = &w.fx.take_for(sock(1))[0][0];
    assert_eq!(
        ev,
        &json!({"channel": "room", "uuid": uuid.to_string(), "type": "message:delete"})
    );
    assert_eq!(keys(ev), vec!["channel", "uuid", "type"]);
    assert_eq!(w.info()["channels"]["room"]["history"], json!([]));
    w.m.deletes(vec![del(None, &["alice"], pm_uuid)], w.now(50), &mut w.fx);
    let ev = &w.fx.take_for(sock(1))[0][0];
    assert_eq!(
        ev,
        &json!({"channel": null, "uuid": pm_uuid.to_string(), "type": "message:delete"})
    );
    // Unknown uuid: the event is still broadcast.
    let ghost = Uuid::new_v4();
    w.m.deletes(vec![del(Some("room"), &[], ghost)], w.now(60), &mut w.fx);
    assert_eq!(w.fx.take_for(sock(1)).len(), 1);
    // Edits and deletes are not counted.
    assert_eq!(w.m.stats().total_unique_messages, 2);
}

#[test]
fn edit_adding_a_message_key_appends_it_after_type() {
    let mut w = World::new();
    w.configure(0, "room", Some(history_config()));
    let mut m = msg_cmd("u", Some("room"), "");
    m.message = None;
    let uuid = m.uuid;
    w.send(1, vec![m]);
    let e = EditCmd {
        delivery: Delivery {
            channel: Some("room".into()),
            ..Delivery::default()
        },
        uuid,
        timestamp: None,
        user: None,
        message: Some(state(json!({"t": "new"}))),
        edited: Timestamp::from_utc(w.time.at(2).wall),
    };
    w.m.edits(vec![e], w.now(2), &mut w.fx);
    let hist = &w.info()["channels"]["room"]["history"][0];
    assert_eq!(keys(hist).last(), Some(&"message"));
}
