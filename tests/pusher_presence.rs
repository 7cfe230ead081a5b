//! Black-box tests of Pusher presence channels, client events, encrypted and cache channels
//! and channel-name rules, against an in-process Herald (one shard, or one listener per shard).
//! Tests that send client events enable them for the default app explicitly.

mod common;

use common::pusher::*;
use common::*;
use serde_json::{json, Value};

/// The default app with client events enabled (`HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES`;
/// off unless configured, as in Pusher).
fn client_events_on(c: &mut herald::config::Config) {
    c.default_app_client_events = true;
}

fn members(v: &Value) -> Value {
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
    data(v)["presence"].clone()
}

#[test]
fn presence_members_counted_per_user() {
    let server = Server::start(1);
    let ch = "presence-room";
    let ann = r#"{"user_id":1,"user_info":{"name":"Ann"}}"#;
    let bob = r#"{"user_id":"bob","user_info":{"name":"Bob"}}"#;
    let (mut a1, a1_id) = connect(&server);
    let p = members(&join(&mut a1, &a1_id, ch, ann));
    assert_eq!(
        p,
        json!({"ids":["1"],"hash":{"1":{"name":"Ann"}},"count":1})
    );

    let (mut b, b_id) = connect(&server);
    let p = members(&join(&mut b, &b_id, ch, bob));
    assert_eq!(p["count"], 2);
    assert_eq!(p["hash"]["bob"], json!({"name":"Bob"}));
    let added = next(&mut a1);
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(added["channel"], ch);
    assert_eq!(
        data(&added),
        json!({"user_id":"bob","user_info":{"name":"Bob"}})
    );

    // Ann's second connection: no member_added, still two members.
    let (mut a2, a2_id) = connect(&server);
    assert_eq!(members(&join(&mut a2, &a2_id, ch, ann))["count"], 2);
    assert_silent(&mut b);
    assert_silent(&mut a1);

    // Closing one of Ann's connections removes nobody; closing the last removes Ann.
    drop(a1);
    assert_silent(&mut b);
    drop(a2);
    let removed = next(&mut b);
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(data(&removed), json!({"user_id":"1"}));

    // An unsubscribe leaves as a close does.
    let (mut c, c_id) = connect(&server);
    assert_eq!(members(&join(&mut c, &c_id, ch, ann))["count"], 2);
    assert_eq!(data(&next(&mut b))["user_id"], "1");
    send(
        &mut c,
        json!({"event":"pusher:unsubscribe","data":{"channel":ch}}),
    );
    assert_eq!(data(&next(&mut b)), json!({"user_id":"1"}));
}

#[test]
fn presence_auth_and_channel_data_refused() {
    let server = Server::start(1);
    let (mut ws, sid) = connect(&server);
    let ch = "presence-x";
    let d = r#"{"user_id":"1"}"#;
    // Signed over other channel_data, or without it (a private signature).
    let auth = presence_auth(&sid, ch, r#"{"user_id":"2"}"#);
    send(
        &mut ws,
        json!({"event":"pusher:subscribe","data":{"auth":auth,"channel":ch,"channel_data":d}}),
    );
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:subscription_error");
    assert_eq!(v["data"]["status"], 401);
    assert_eq!(
        subscribe(&mut ws, ch, &private_auth(&sid, ch))["data"]["status"],
        401
    );
    // Signed, but no user_id.
    let v = join(&mut ws, &sid, ch, r#"{"user_info":{}}"#);
    assert_eq!(v["event"], "pusher:subscription_error");
    assert_eq!(v["data"]["status"], 400);
    assert_eq!(members(&join(&mut ws, &sid, ch, d))["ids"], json!(["1"]));
}

#[test]
fn presence_and_client_events_on_two_shards() {
    let server = Server::per_shard(2, client_events_on);
    let (mut a, a_id) = connect(&server.shard(0));
    let (mut b, b_id) = connect(&server.shard(1));
    let rooms = ["presence-1", "presence-2", "presence-3", "presence-4"];
    let owners: std::collections::HashSet<_> = rooms
        .iter()
        .map(|c| herald::pusher::channels::owner(0, c, 2))
        .collect();
    assert_eq!(owners.len(), 2, "the rooms must be owned by both shards");
    for ch in rooms {
        assert_eq!(
            members(&join(&mut a, &a_id, ch, r#"{"user_id":"a"}"#))["count"],
            1
        );
        assert_eq!(
            members(&join(&mut b, &b_id, ch, r#"{"user_id":"b"}"#))["count"],
            2
        );
        assert_eq!(data(&next(&mut a))["user_id"], "b");
        send(
            &mut b,
            json!({"event":"client-hi","channel":ch,"data":{"n":1}}),
        );
        let v = next(&mut a);
        assert_eq!(v["event"], "client-hi");
        assert_eq!(v["channel"], ch);
        assert_eq!(v["user_id"], "b");
        assert_eq!(data(&v), json!({"n":1}));
    }
    assert_silent(&mut b);
    drop(b);
    for _ in rooms {
        let v = next(&mut a);
        assert_eq!(v["event"], "pusher_internal:member_removed");
        assert_eq!(data(&v), json!({"user_id":"b"}));
    }
}

#[test]
fn client_events_reach_others_not_the_sender() {
    let server = Server::with(client_events_on);
    let ch = "private-chat";
    let (mut a, a_id) = connect(&server);
    let (mut b, b_id) = connect(&server);
    let (mut c, _) = connect(&server);
    subscribe(&mut a, ch, &private_auth(&a_id, ch));
    subscribe(&mut b, ch, &private_auth(&b_id, ch));
    send(
        &mut a,
        json!({"event":"client-typing","channel":ch,"data":{"who":"a"}}),
    );
    let v = next(&mut b);
    assert_eq!(v["event"], "client-typing");
    assert_eq!(data(&v), json!({"who":"a"}));
    assert!(v.get("user_id").is_none(), "no user_id outside presence");
    // A string payload is relayed as sent.
    send(
        &mut b,
        json!({"event":"client-s","channel":ch,"data":"plain"}),
    );
    assert_eq!(next(&mut a)["data"], "plain");
    assert_silent(&mut a);
    assert_silent(&mut b);

    // Not subscribed: refused; the subscribers see nothing.
    send(&mut c, json!({"event":"client-x","channel":ch,"data":{}}));
    let v = next(&mut c);
    assert_eq!(v["event"], "pusher:error");
    assert_eq!(v["data"]["code"], 4301);
    // A public channel: refused even when subscribed.
    subscribe(&mut c, "lobby", "");
    subscribe(&mut a, "lobby", "");
    send(
        &mut c,
        json!({"event":"client-x","channel":"lobby","data":{}}),
    );
    assert_eq!(next(&mut c)["data"]["code"], 4301);
    assert_silent(&mut a);
    assert_silent(&mut b);
}

#[test]
fn client_event_rate_limit_closes_4301() {
    let server = Server::with(client_events_on);
    let ch = "private-fast";
    let (mut a, a_id) = connect(&server);
    let (mut b, b_id) = connect(&server);
    subscribe(&mut a, ch, &private_auth(&a_id, ch));
    subscribe(&mut b, ch, &private_auth(&b_id, ch));
    // 25 in a burst span at most two one-second windows of 10: one is over.
    for i in 0..25 {
        if a.send(tungstenite::Message::text(
            json!({"event":"client-n","channel":ch,"data":i}).to_string(),
        ))
        .is_err()
        {
            break;
        }
    }
    let mut saw_error = false;
    let code = loop {
        match a.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "pusher:error" {
                    assert_eq!(v["data"]["code"], 4301);
                    saw_error = true;
                }
            }
            Ok(tungstenite::Message::Close(f)) => break f.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert!(saw_error);
    assert_eq!(code, Some(4301));
    // The other member got at least the first ten, and stays connected.
    for _ in 0..10 {
        assert_eq!(next(&mut b)["event"], "client-n");
    }
    send(&mut b, json!({"event":"pusher:ping","data":{}}));
    loop {
        if next(&mut b)["event"] == "pusher:pong" {
            break;
        }
    }
}

#[test]
fn encrypted_channels_signed_opaque_no_client_events() {
    let server = Server::with(client_events_on);
    let ch = "private-encrypted-vault";
    let (mut a, a_id) = connect(&server);
    assert_eq!(subscribe(&mut a, ch, "app-key:00")["data"]["status"], 401);
    let ok = subscribe(&mut a, ch, &private_auth(&a_id, ch));
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let sealed = r#"{"nonce":"bm9uY2U=","ciphertext":"c2VhbGVk"}"#;
    let r = publish(
        &server,
        &json!({"name":"secret","data":sealed,"channel":ch}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        next(&mut a),
        json!({"event":"secret","channel":ch,"data":sealed})
    );
    send(&mut a, json!({"event":"client-x","channel":ch,"data":{}}));
    let v = next(&mut a);
    assert_eq!(v["event"], "pusher:error");
    assert_eq!(v["data"]["code"], 4301);
}

#[test]
fn cache_channels_replay_the_last_event_or_miss() {
    let server = Server::per_shard(2, |_| {});
    for (i, ch) in ["cache-news", "private-cache-news", "presence-cache-news"]
        .into_iter()
        .enumerate()
    {
        let at = server.shard(i % 2);
        let (mut a, a_id) = connect(&at);
        let first = if ch.starts_with("presence-") {
            join(&mut a, &a_id, ch, r#"{"user_id":"a"}"#)
        } else if ch.starts_with("private-") {
            subscribe(&mut a, ch, &private_auth(&a_id, ch))
        } else {
            subscribe(&mut a, ch, "")
        };
        assert_eq!(first["event"], "pusher_internal:subscription_succeeded");
        assert_eq!(
            next(&mut a),
            json!({"event":"pusher:cache_miss","channel":ch})
        );
        for n in ["1", "2"] {
            let r = publish(&server.shard(1), &json!({"name":"e","data":n,"channel":ch}));
            assert_eq!(r.status, 200);
            assert_eq!(next(&mut a)["data"], n);
        }
        let (mut b, b_id) = connect(&server.shard(1 - i % 2));
        let first = if ch.starts_with("presence-") {
            join(&mut b, &b_id, ch, r#"{"user_id":"b"}"#)
        } else if ch.starts_with("private-") {
            subscribe(&mut b, ch, &private_auth(&b_id, ch))
        } else {
            subscribe(&mut b, ch, "")
        };
        assert_eq!(first["event"], "pusher_internal:subscription_succeeded");
        assert_eq!(next(&mut b), json!({"event":"e","channel":ch,"data":"2"}));
        assert_silent(&mut b);
    }
    // A plain channel has no cache.
    let (mut c, _) = connect(&server.shard(0));
    subscribe(&mut c, "news", "");
    assert_silent(&mut c);
}

#[test]
fn bad_channel_names_refused() {
    let server = Server::start(1);
    let (mut ws, _) = connect(&server);
    let long = "a".repeat(165);
    // `#server-to-user-<id>` is valid but only for its signed-in user (tests/pusher_users.rs).
    for name in [
        "a b",
        "#other-1",
        "#server-to-user-",
        "x:y",
        "",
        "é",
        long.as_str(),
    ] {
        let v = subscribe(&mut ws, name, "");
        assert_eq!(v["event"], "pusher:subscription_error", "{name}");
        assert_eq!(v["data"]["status"], 400, "{name}");
    }
    let ok = "a".repeat(164);
    assert_eq!(
        subscribe(&mut ws, &ok, "")["event"],
        "pusher_internal:subscription_succeeded"
    );
    let r = publish(&server, &json!({"name":"e","data":"x","channel":long}));
    assert_eq!(r.status, 400);
}

#[test]
fn presence_member_limit_refuses_the_101st_user() {
    let server = Server::with(client_events_on);
    let ch = "presence-full";
    let mut socks = Vec::new();
    for i in 0..herald::pusher::presence::MAX_MEMBERS {
        let (mut ws, sid) = connect(&server);
        let d = format!(r#"{{"user_id":"u{i}"}}"#);
        assert_eq!(members(&join(&mut ws, &sid, ch, &d))["count"], i + 1);
        socks.push(ws);
    }
    let (mut late, late_id) = connect(&server);
    let v = join(&mut late, &late_id, ch, r#"{"user_id":"late"}"#);
    assert_eq!(v["event"], "pusher:subscription_error");
    assert_eq!(v["data"]["type"], "LimitReached");
    // Not a member: its client events reach nobody.
    send(
        &mut late,
        json!({"event":"client-x","channel":ch,"data":{}}),
    );
    // Another connection of a member still joins.
    let (mut again, again_id) = connect(&server);
    let p = members(&join(&mut again, &again_id, ch, r#"{"user_id":"u0"}"#));
    assert_eq!(p["count"], 100);
    // The first member saw 99 joins and nothing else.
    let first = &mut socks[0];
    for _ in 1..100 {
        assert_eq!(next(first)["event"], "pusher_internal:member_added");
    }
    assert_silent(first);
}
