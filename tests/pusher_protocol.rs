//! Black-box tests of the Pusher dialect: websocket clients (tungstenite) and signed HTTP API
//! requests against an in-process Herald on 127.0.0.1:0, served beside Channelstream.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tungstenite::Message;

const KEY: &str = "app-key";
const SECRET: &str = "app-secret";
const APP_PATH: &str = "/app/app-key?protocol=7&client=js&version=8.6.0&flash=false";

fn hmac_hex(msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Next Pusher event (JSON) from a websocket.
fn next(ws: &mut Ws) -> Value {
    let t = ws_next_text(ws).expect("a text frame");
    serde_json::from_str(&t).expect("JSON")
}

/// Connect and read `connection_established`; returns the socket and its socket id.
fn connect(target: &impl Target) -> (Ws, String) {
    let mut ws = ws_connect(target, APP_PATH);
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:connection_established");
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    (ws, data["socket_id"].as_str().unwrap().to_owned())
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

fn subscribe(ws: &mut Ws, channel: &str, auth: &str) -> Value {
    send(
        ws,
        json!({"event":"pusher:subscribe","data":{"auth":auth,"channel":channel}}),
    );
    next(ws)
}

/// A signed `POST /apps/app-id/events`, as the npm `pusher` SDK sends it.
fn publish(target: &impl Target, body: &Value) -> Resp {
    publish_with(target, body, SECRET)
}

fn publish_with(target: &impl Target, body: &Value, secret: &str) -> Resp {
    let body = body.to_string();
    let md5 = hex(&Md5::digest(body.as_bytes()));
    let path = "/apps/app-id/events";
    let q = format!(
        "auth_key={KEY}&auth_timestamp={}&auth_version=1.0&body_md5={md5}",
        unix_now()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("POST\n{path}\n{q}").as_bytes());
    let sig = hex(&mac.finalize().into_bytes());
    request(
        target,
        "POST",
        &format!("{path}?{q}&auth_signature={sig}"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn assert_silent(ws: &mut Ws) {
    set_timeout(ws, Duration::from_millis(300));
    assert!(ws_next_text(ws).is_none(), "expected no frame");
    set_timeout(ws, Duration::from_secs(5));
}

fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
fn connection_established() {
    let server = Server::start(1);
    let (_ws, sid) = connect(&server);
    let (a, b) = sid.split_once('.').unwrap();
    assert!(a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()));
    let mut ws = ws_connect(&server, APP_PATH);
    let v = next(&mut ws);
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    assert_ne!(data["socket_id"].as_str().unwrap(), sid);
}

#[test]
fn ping_pong() {
    let server = Server::start(1);
    let (mut ws, _) = connect(&server);
    send(&mut ws, json!({"event":"pusher:ping","data":{}}));
    assert_eq!(next(&mut ws), json!({"event":"pusher:pong","data":{}}));
    // pysher's form.
    ws.send(Message::text(r#"{"event": "pusher:ping", "data": ""}"#))
        .unwrap();
    assert_eq!(next(&mut ws)["event"], "pusher:pong");
}

#[test]
fn public_subscribe_and_http_publish_with_exclusion() {
    let server = Server::start(1);
    let (mut a, a_id) = connect(&server);
    let (mut b, _) = connect(&server);
    for ws in [&mut a, &mut b] {
        let v = subscribe(ws, "my-channel", "");
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded");
        assert_eq!(v["channel"], "my-channel");
    }
    let data = r#"{"hello":"world"}"#;
    let r = publish(
        &server,
        &json!({"name":"my-event","data":data,"channels":["my-channel"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({}));
    let want = json!({"event":"my-event","channel":"my-channel","data":data});
    assert_eq!(next(&mut a), want);
    assert_eq!(next(&mut b), want);

    // socket_id excludes its socket.
    let r = publish(
        &server,
        &json!({"name":"e2","data":"x","channel":"my-channel","socket_id":a_id}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(next(&mut b)["event"], "e2");
    assert_silent(&mut a);

    // After unsubscribing, nothing more arrives.
    send(
        &mut b,
        json!({"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}),
    );
    send(&mut b, json!({"event":"pusher:ping","data":{}}));
    assert_eq!(next(&mut b)["event"], "pusher:pong");
    publish(
        &server,
        &json!({"name":"e3","data":"y","channel":"my-channel"}),
    );
    assert_eq!(next(&mut a)["event"], "e3");
    assert_silent(&mut b);
}

#[test]
fn http_api_refuses_bad_signatures() {
    let server = Server::start(1);
    let body = json!({"name":"e","data":"x","channel":"c"});
    assert_eq!(publish_with(&server, &body, "wrong").status, 401);
    let r = request(&server, "POST", "/apps/app-id/events", &[], b"{}");
    assert_eq!(r.status, 401);
    assert_eq!(publish(&server, &json!({"name":"e"})).status, 400);
    let r = request(&server, "POST", "/apps/nope/events", &[], b"{}");
    assert_eq!(r.status, 404);
}

#[test]
fn private_auth_ok_and_refused() {
    let server = Server::start(1);
    let (mut ws, sid) = connect(&server);
    let bad = subscribe(&mut ws, "private-room", "app-key:00");
    assert_eq!(bad["event"], "pusher:subscription_error");
    assert_eq!(bad["channel"], "private-room");
    assert_eq!(bad["data"]["status"], 401);
    // A signature for another socket id is refused too.
    let other = format!("{KEY}:{}", hmac_hex("0.999:private-room"));
    assert_eq!(
        subscribe(&mut ws, "private-room", &other)["event"],
        "pusher:subscription_error"
    );
    let auth = format!("{KEY}:{}", hmac_hex(&format!("{sid}:private-room")));
    let ok = subscribe(&mut ws, "private-room", &auth);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    publish(
        &server,
        &json!({"name":"e","data":"d","channel":"private-room"}),
    );
    assert_eq!(
        next(&mut ws),
        json!({"event":"e","channel":"private-room","data":"d"})
    );
}

#[test]
fn unknown_app_closes_4001() {
    let server = Server::start(1);
    let mut ws = ws_connect(&server, "/app/nope?protocol=7&client=js&version=8.6.0");
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:error");
    assert_eq!(v["data"]["code"], 4001);
    assert_eq!(close_code(&mut ws), Some(4001));
}

#[test]
fn bad_protocol_closes_4006_4007_4008() {
    let server = Server::start(1);
    // The protocol docs' codes: 4007 unsupported version, 4008 none, 4006 not a version.
    for (path, code) in [
        ("/app/app-key?protocol=4", 4007),
        ("/app/app-key?protocol=8", 4007),
        ("/app/app-key", 4008),
        ("/app/app-key?client=js&version=8.6.0", 4008),
        ("/app/app-key?protocol=seven", 4006),
    ] {
        let mut ws = ws_connect(&server, path);
        set_timeout(&ws, Duration::from_secs(5));
        assert_eq!(next(&mut ws)["data"]["code"], code, "{path}");
        assert_eq!(close_code(&mut ws), Some(code), "{path}");
    }
    for p in [5, 6] {
        let (_ws, _) = connect(&At(server.addr));
        let mut ws = ws_connect(&server, &format!("/app/app-key?protocol={p}"));
        assert_eq!(next(&mut ws)["event"], "pusher:connection_established");
    }
}

#[test]
fn garbage_frames_answered_without_disturbing_another_client() {
    let server = Server::start(1);
    let (mut bad, _) = connect(&server);
    let (mut good, _) = connect(&server);
    subscribe(&mut good, "c", "");
    subscribe(&mut bad, "c", "");
    for junk in [
        "{not json",
        "[]",
        "42",
        r#"{"data":{}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":7}}"#,
        r#"{"event":"pusher:subscribe","data":"not json"}"#,
        "\u{0}\u{ffff}",
    ] {
        bad.send(Message::text(junk)).unwrap();
        let v = next(&mut bad);
        assert_eq!(v["event"], "pusher:error", "{junk}");
        assert!(v["data"]["code"].as_u64().is_some());
    }
    bad.send(Message::binary(vec![0u8, 1, 2])).unwrap();
    assert_eq!(next(&mut bad)["event"], "pusher:error");
    // Invalid channel names and client events are refused, the socket stays open.
    assert_eq!(
        subscribe(&mut bad, "a b", "")["event"],
        "pusher:subscription_error"
    );
    send(
        &mut bad,
        json!({"event":"client-x","channel":"private-c","data":{}}),
    );
    assert_eq!(next(&mut bad)["data"]["code"], 4301);
    publish(&server, &json!({"name":"e","data":"d","channel":"c"}));
    assert_eq!(next(&mut good)["event"], "e");
    assert_eq!(next(&mut bad)["event"], "e");
}

#[test]
fn publish_reaches_subscribers_on_two_shards() {
    let server = Server::per_shard(2, |_| {});
    let (mut a, a_id) = connect(&server.shard(0));
    let (mut b, b_id) = connect(&server.shard(1));
    // "<base + shard>.<n>": the same per-process base, consecutive shard numbers
    let first = |id: &str| id.split('.').next().unwrap().parse::<u32>().unwrap();
    assert_eq!(first(&b_id), first(&a_id) + 1, "{a_id} {b_id}");
    // Channels owned by either shard: every route (local, remote) is taken.
    let rooms = ["room-1", "room-2", "room-3", "room-4", "room-5", "room-6"];
    let owners: std::collections::HashSet<_> = rooms
        .iter()
        .map(|c| herald::pusher::channels::owner(0, c, 2))
        .collect();
    assert_eq!(owners.len(), 2, "the rooms must be owned by both shards");
    for ch in rooms {
        assert_eq!(
            subscribe(&mut a, ch, "")["event"],
            "pusher_internal:subscription_succeeded"
        );
        assert_eq!(
            subscribe(&mut b, ch, "")["event"],
            "pusher_internal:subscription_succeeded"
        );
        for at in [server.shard(0), server.shard(1)] {
            let r = publish(&at, &json!({"name":"e","data":ch,"channel":ch}));
            assert_eq!(r.status, 200);
            let want = json!({"event":"e","channel":ch,"data":ch});
            assert_eq!(next(&mut a), want);
            assert_eq!(next(&mut b), want);
        }
        // Exclusion across shards.
        publish(
            &server.shard(0),
            &json!({"name":"x","data":"","channel":ch,"socket_id":b_id}),
        );
        assert_eq!(next(&mut a)["event"], "x");
    }
    assert_silent(&mut b);
    // A closed socket is unsubscribed at the owners: the other keeps receiving.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    publish(
        &server.shard(1),
        &json!({"name":"y","data":"","channel":"room-1"}),
    );
    assert_eq!(next(&mut b)["event"], "y");
}
