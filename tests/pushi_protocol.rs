//! Black-box tests of the Pushi websocket dialect against an in-process Herald in Pushi mode:
//! frames compared as text with Pushi's bytes (`json.dumps` separators), every channel kind,
//! presence across two connections of one user, peer channels, echo/persist, unsubscribe,
//! latest, bad signatures and keys, and errors where Pushi drops the socket.

mod common;

use common::pushi::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn public_channel_and_free_form_events_with_echo() {
    let (server, _dir) = server("public");
    let (mut a, a_id) = connect(&server);
    assert_eq!(a_id.len(), 36, "a UUID socket id: {a_id}");
    let (mut b, b_id) = connect(&server);
    assert_eq!(
        text_of_subscribe(&mut a, "global"),
        r#"{"event": "pusher_internal:subscription_succeeded", "data": "{\"name\": \"global\", \"members\": {}, \"alias\": [], \"events\": []}", "channel": "global"}"#
    );
    subscribe(&mut b, &b_id, "global", None);

    // Not persisted: no mid/timestamp; not echoed to the sender.
    send(
        &mut a,
        json!({"event": "chat", "data": "peer msg", "channel": "global", "echo": false, "persist": false}),
    );
    assert_eq!(
        text(&mut b),
        r#"{"channel": "global", "event": "chat", "data": "peer msg"}"#
    );
    assert_silent(&mut a);

    // Persisted by default; an object `data` is dumped as Python would; echo reaches A too.
    send(
        &mut a,
        json!({"event": "chat", "data": {"text": "hi from A"}, "channel": "global", "echo": true}),
    );
    let got = next(&mut b);
    assert_eq!(got["data"], "{\"text\": \"hi from A\"}");
    assert_eq!(got["mid"].as_str().unwrap().len(), 36);
    assert!(got["timestamp"].as_f64().unwrap() > 1.7e9);
    assert_eq!(next(&mut a)["mid"], got["mid"]);
}

fn text_of_subscribe(ws: &mut Ws, channel: &str) -> String {
    send(
        ws,
        json!({"event": "pusher:subscribe", "data": {"channel": channel}}),
    );
    text(ws)
}

#[test]
fn private_channels_need_pushis_signature() {
    let (server, _dir) = server("private");
    let (mut a, a_id) = connect(&server);
    let ok = subscribe(&mut a, &a_id, "private-x", None);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    // Signed for another socket: refused, the socket stays usable.
    send(
        &mut a,
        json!({"event": "pusher:subscribe", "data": {"channel": "private-y", "auth": auth("other", "private-y")}}),
    );
    let e = next(&mut a);
    assert_eq!(e["event"], "pusher:error");
    assert_eq!(e["data"]["message"], "Invalid signature");
    // Sending to a channel the socket is not in is refused.
    send(
        &mut a,
        json!({"event": "x", "data": 1, "channel": "private-y"}),
    );
    assert_eq!(
        next(&mut a)["data"]["message"],
        "Not subscribed to that channel"
    );
    send(
        &mut a,
        json!({"event": "pusher:subscribe", "data": {"channel": "private-z"}}),
    );
    assert_eq!(next(&mut a)["data"]["message"], "Invalid signature");
    let ok = subscribe(&mut a, &a_id, "private-y", None);
    assert_eq!(ok["channel"], "private-y");
}

#[test]
fn where_pushi_drops_the_socket_herald_answers_an_error() {
    let (server, _dir) = server("errors");
    let (mut a, a_id) = connect(&server);
    send(&mut a, json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(next(&mut a)["event"], "pusher:pong");
    a.send(tungstenite::Message::text("{not json")).unwrap();
    assert_eq!(next(&mut a)["data"]["message"], "Invalid JSON");
    send(&mut a, json!({"event": "chat", "data": 1}));
    assert_eq!(next(&mut a)["data"]["message"], "Missing channel");
    send(&mut a, json!({"event": "chat", "channel": "global"}));
    assert_eq!(next(&mut a)["data"]["message"], "Missing data");
    send(
        &mut a,
        json!({"event": "pusher:subscribe", "data": {"channel": "presence-r", "auth": auth(&a_id, "presence-r"), "channel_data": {"name": "no id"}}}),
    );
    assert!(next(&mut a)["data"]["message"]
        .as_str()
        .unwrap()
        .contains("user_id"));
    // Still served.
    assert_eq!(
        subscribe(&mut a, &a_id, "global", None)["channel"],
        "global"
    );
}

#[test]
fn unknown_key_is_closed_4001_and_pusher_paths_stay_pushers() {
    let (server, _dir) = server("keys");
    let mut ws = ws_connect(&server, &format!("/{}", "0".repeat(64)));
    let e = next(&mut ws);
    assert_eq!(e["event"], "pusher:error");
    assert_eq!(e["data"]["code"], 4001);
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 4001),
        other => panic!("expected close 4001, got {other:?}"),
    }
    // `/app/{key}` is Pusher's (same app table): the Pusher handshake, with
    // activity_timeout and a Pusher socket id, not a UUID.
    let mut p = ws_connect(&server, &format!("/app/{KEY}?protocol=7"));
    let v = next(&mut p);
    assert_eq!(v["event"], "pusher:connection_established");
    let d = inner(&v, "data");
    assert_eq!(d["activity_timeout"], 120);
    assert!(d["socket_id"].as_str().unwrap().contains('.'), "{d}");
    // A query string is not part of the key (deliberately unlike Pushi).
    let mut q = ws_connect(&server, &format!("/any/prefix/{KEY}?x=1"));
    assert_eq!(next(&mut q)["event"], "pusher:connection_established");
}

#[test]
fn presence_members_per_user_across_two_connections() {
    let (server, _dir) = server("presence");
    let ch = "presence-room";
    let u1 = json!({"user_id": "u1", "name": "Ann"});
    let u2 = json!({"user_id": "u2", "name": "Bob"});
    let (mut a1, a1_id) = connect(&server);
    let ok = subscribe(&mut a1, &a1_id, ch, Some(u1.clone()));
    assert_eq!(inner(&ok, "data")["members"], json!({"u1": u1}));

    let (mut b, b_id) = connect(&server);
    let ok = subscribe(&mut b, &b_id, ch, Some(u2.clone()));
    assert_eq!(inner(&ok, "data")["members"], json!({"u1": u1, "u2": u2}));
    assert_eq!(
        text(&mut a1),
        r#"{"event": "pusher:member_added", "member": "{\"user_id\": \"u2\", \"name\": \"Bob\"}", "channel": "presence-room"}"#
    );
    // pusher:latest carries the channel's members, as Pushi's get_channel.
    send(
        &mut b,
        json!({"event": "pusher:latest", "data": {"channel": ch}}),
    );
    let l = next(&mut b);
    assert_eq!(l["event"], "pusher_internal:latest", "{l}");
    let d = inner(&l, "data");
    assert_eq!(
        (&d["members"], &d["alias"]),
        (&json!({"u1": u1, "u2": u2}), &json!([]))
    );
    // Ann's second connection: nobody hears of it.
    let (mut a2, a2_id) = connect(&server);
    subscribe(&mut a2, &a2_id, ch, Some(u1.clone()));
    assert_silent(&mut b);
    // Unsubscribe answers with the members left; Ann is still there through a1.
    send(
        &mut a2,
        json!({"event": "pusher:unsubscribe", "data": {"channel": ch}, "echo": false, "persist": true}),
    );
    let un = next(&mut a2);
    assert_eq!(un["event"], "pusher_internal:unsubscription_succeeded");
    assert_eq!(inner(&un, "data")["members"], json!({"u1": u1, "u2": u2}));
    assert_silent(&mut b);
    // Ann's last connection goes: member_removed with the member's channel_data.
    drop(a1);
    let rm = next(&mut b);
    assert_eq!(rm["event"], "pusher:member_removed");
    assert_eq!(inner(&rm, "member"), u1);
}

#[test]
fn peer_channels_join_presence_members_who_ask_for_them() {
    let (server, _dir) = server("peer");
    let ch = "presence-room";
    let (mut a, a_id) = connect(&server);
    let (mut b, b_id) = connect(&server);
    subscribe(
        &mut a,
        &a_id,
        ch,
        Some(json!({"user_id": "u1", "peer": true})),
    );
    subscribe(
        &mut b,
        &b_id,
        ch,
        Some(json!({"user_id": "u2", "peer": true})),
    );
    assert_eq!(next(&mut a)["event"], "pusher:member_added");
    // Both are in peer-room:u1&u2 without subscribing; B may send there.
    send(
        &mut b,
        json!({"event": "whisper", "data": "peer msg", "channel": "peer-room:u1&u2", "persist": false}),
    );
    assert_eq!(
        text(&mut a),
        r#"{"channel": "peer-room:u1&u2", "event": "whisper", "data": "peer msg"}"#
    );
    // A third user not in the pair may not.
    let (mut c, c_id) = connect(&server);
    subscribe(&mut c, &c_id, ch, Some(json!({"user_id": "u3"})));
    assert_eq!(inner(&next(&mut a), "member")["user_id"], "u3");
    assert_eq!(inner(&next(&mut b), "member")["user_id"], "u3");
    send(
        &mut c,
        json!({"event": "whisper", "data": "x", "channel": "peer-room:u1&u2"}),
    );
    assert_eq!(
        next(&mut c)["data"]["message"],
        "Not subscribed to that channel"
    );
    // B leaves: the peer channel no longer reaches A... from B's side either.
    send(
        &mut b,
        json!({"event": "pusher:unsubscribe", "data": {"channel": ch}}),
    );
    assert_eq!(
        next(&mut b)["event"],
        "pusher_internal:unsubscription_succeeded"
    );
    let rm = next(&mut a);
    assert_eq!(
        (
            rm["event"].as_str(),
            inner(&rm, "member")["user_id"].as_str()
        ),
        (Some("pusher:member_removed"), Some("u2"))
    );
    send(
        &mut b,
        json!({"event": "whisper", "data": "late", "channel": "peer-room:u1&u2"}),
    );
    assert_eq!(
        next(&mut b)["data"]["message"],
        "Not subscribed to that channel"
    );
}

#[test]
fn latest_returns_stored_events_newest_first() {
    let (server, _dir) = server("latest");
    let (mut a, a_id) = connect(&server);
    subscribe(&mut a, &a_id, "news", None);
    for i in 0..5 {
        send(
            &mut a,
            json!({"event": "e", "data": format!("n{i}"), "channel": "news", "echo": true}),
        );
        assert_eq!(next(&mut a)["data"], format!("n{i}"));
    }
    // Socket events are stored without an answer: ask until all five are there.
    let mut events = Vec::new();
    for _ in 0..50 {
        send(
            &mut a,
            json!({"event": "pusher:latest", "data": {"channel": "news", "skip": 1, "count": 3}}),
        );
        let l = next(&mut a);
        assert_eq!(l["event"], "pusher_internal:latest");
        events = inner(&l, "data")["events"].as_array().unwrap().clone();
        if events.len() == 3 && events[0]["data"]["data"] == "n3" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got: Vec<&Value> = events.iter().map(|e| &e["data"]["data"]).collect();
    assert_eq!(got, [&json!("n3"), &json!("n2"), &json!("n1")]);
    assert_eq!(events[0]["owner_id"], a_id.as_str());
    send(
        &mut a,
        json!({"event": "pusher:latest", "data": {"channel": "other"}}),
    );
    assert_eq!(
        next(&mut a)["data"]["message"],
        "Not subscribed to that channel"
    );
}
