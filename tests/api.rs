//! The Channelstream 0.7.1 API, black-box over real sockets (spec §5, §7, §13).
//! Each behaviour runs with one shard and, where sockets and commands can land on different
//! shards, with clients placed on chosen shards.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Next non-heartbeat Channelstream item on a websocket (frames are JSON arrays of one item).
fn next_item(ws: &mut Ws) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let text = ws_next_text(ws)?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let arr = v.as_array()?;
        if let Some(first) = arr.first() {
            assert_eq!(arr.len(), 1, "one item per frame");
            return Some(first.clone());
        }
    }
    None
}

fn connect(t: &impl Target, body: Value) -> Value {
    let r = api(t, "POST", "/connect", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn open_ws(t: &impl Target, conn_id: &str) -> Ws {
    let ws = ws_connect(t, &format!("/ws?conn_id={conn_id}"));
    set_timeout(&ws, Duration::from_secs(10));
    ws
}

#[test]
fn connect_returns_the_documented_shape() {
    let srv = Server::start(1);
    let v = connect(
        &srv,
        json!({"username": "alice", "channels": ["room", "b_chan"],
               "fresh_user_state": {"status": "online", "private": "x"},
               "state_public_keys": ["status"]}),
    );
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "conn_id",
            "state",
            "username",
            "public_state",
            "channels",
            "channels_info"
        ]
    );
    assert_eq!(v["channels"], json!(["b_chan", "room"]));
    assert_eq!(v["public_state"], json!({"status": "online"}));
    let room = &v["channels_info"]["channels"]["room"];
    assert_eq!(room["settings"]["history_size"], json!(10));
    assert_eq!(room["users"], json!(["alice"]));
    assert_eq!(room["total_connections"], json!(1));
    assert!(uuid::Uuid::parse_str(v["conn_id"].as_str().unwrap()).is_ok());
}

#[test]
fn auth_statuses() {
    let srv = Server::start(1);
    // No secret: 403; JSON flavour with Accept.
    let r = request(&srv, "POST", "/info", &[], b"");
    assert_eq!(r.status, 403);
    let r = request(
        &srv,
        "POST",
        "/info",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], json!("403 Forbidden"));
    // Bad signature: 401 with the JSON body, on any path.
    for path in ["/info", "/nonexistent", "/listen"] {
        let r = request(
            &srv,
            "GET",
            path,
            &[("X-Channelstream-Secret", "garbage")],
            b"",
        );
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json(), json!({"request": "Bad Signature"}));
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    }
    // Expired (61 s) vs exactly 60 s old.
    let s = herald::auth::Signer::new("secret");
    let old = s.sign("channelstream", unix_now() - 61);
    let r = request(
        &srv,
        "POST",
        "/info",
        &[("X-Channelstream-Secret", &old)],
        b"",
    );
    assert_eq!(r.status, 401);
    let ok = s.sign("channelstream", unix_now() - 59);
    let r = request(
        &srv,
        "POST",
        "/info",
        &[("X-Channelstream-Secret", &ok)],
        b"",
    );
    assert_eq!(r.status, 200);
    // `?secret=` works like the header.
    let r = request(&srv, "POST", &format!("/info?secret={}", token()), &[], b"");
    assert_eq!(r.status, 200);
    // Wrong method: 404 even without a secret.
    assert_eq!(request(&srv, "GET", "/connect", &[], b"").status, 404);
    // Empty header = absent = 403.
    let r = request(
        &srv,
        "POST",
        "/info",
        &[("X-Channelstream-Secret", "")],
        b"",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn disallowed_ip_is_403_even_with_a_valid_signature() {
    let srv = Server::with(|c| c.allow_posting_from = vec!["127.0.0.9".into()]);
    let r = api(&srv, "POST", "/info", &json!({"info": {}}));
    assert_eq!(r.status, 403);
}

#[test]
fn validation_errors_have_marshmallow_shapes() {
    let srv = Server::start(1);
    let r = api(&srv, "POST", "/connect", &json!({}));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json(),
        json!({"username": ["Missing data for required field."]})
    );
    let r = api(&srv, "POST", "/message", &json!({}));
    assert_eq!(r.json(), json!({"_schema": ["Invalid input type."]}));
    let r = api(&srv, "POST", "/message", &json!([{"channel": "room"}]));
    assert_eq!(
        r.json(),
        json!({"0": {"user": ["Missing data for required field."]}})
    );
    // Not JSON: 500 text/plain, connection closed.
    let t = token();
    let r = request(
        &srv,
        "POST",
        "/connect",
        &[("X-Channelstream-Secret", &t)],
        b"{not json",
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "Internal Server Error");
}

fn message_round_trip(srv: &Server, sub: At, publish: At) {
    let alice = connect(&sub, json!({"username": "alice", "channels": ["room"]}));
    let mut ws = open_ws(&sub, alice["conn_id"].as_str().unwrap());
    let r = api(
        &publish,
        "POST",
        "/message",
        &json!([{"channel": "room", "user": "bob", "message": {"text": "hello"}}]),
    );
    assert_eq!(r.status, 200);
    let echo = &r.json()[0];
    assert_eq!(echo["edited"], Value::Null);
    let item = next_item(&mut ws).expect("message delivered");
    let keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
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
    assert_eq!(item["message"], json!({"text": "hello"}));
    assert_eq!(item["uuid"], echo["uuid"]);
    assert_eq!(item["catchup"], json!(false));
    let _ = srv;
}

#[test]
fn publish_reaches_a_websocket_on_one_shard() {
    let srv = Server::per_shard(1, |_| {});
    message_round_trip(&srv, srv.shard(0), srv.shard(0));
}

#[test]
fn publish_reaches_a_websocket_across_shards() {
    let srv = Server::per_shard(3, |_| {});
    // Socket on shard 2, publish on shard 1, model on shard 0.
    message_round_trip(&srv, srv.shard(2), srv.shard(1));
}

#[test]
fn presence_with_user_lists_and_parted() {
    let srv = Server::per_shard(2, |_| {});
    let cfg =
        json!({"room": {"notify_presence": true, "broadcast_presence_with_user_lists": true}});
    let a = connect(
        &srv.shard(0),
        json!({"username": "alice", "channels": ["room"], "channel_configs": cfg}),
    );
    let mut wa = open_ws(&srv.shard(1), a["conn_id"].as_str().unwrap());
    let b = connect(
        &srv.shard(1),
        json!({"username": "bob", "channels": ["room"], "fresh_user_state": {"s": 1},
               "state_public_keys": ["s"]}),
    );
    let joined = next_item(&mut wa).expect("joined");
    assert_eq!(joined["type"], json!("presence"));
    assert_eq!(joined["message"], json!({"action": "joined"}));
    assert_eq!(joined["user"], json!("bob"));
    assert_eq!(joined["state"], json!({"s": 1}));
    assert_eq!(joined["users"].as_array().map(Vec::len), Some(2));
    let mut wb = open_ws(&srv.shard(0), b["conn_id"].as_str().unwrap());
    wb.close(None).ok();
    let parted = next_item(&mut wa).expect("parted");
    assert_eq!(parted["message"], json!({"action": "parted"}));
    assert_eq!(parted["state"], Value::Null);
}

#[test]
fn user_state_change_and_edit_delete_events() {
    let srv = Server::start(1);
    let cfg = json!({"room": {"notify_state": true, "store_history": true}});
    let a = connect(
        &srv,
        json!({"username": "alice", "channels": ["room"], "channel_configs": cfg,
               "state_public_keys": ["status"]}),
    );
    let mut ws = open_ws(&srv, a["conn_id"].as_str().unwrap());
    let r = api(
        &srv,
        "POST",
        "/user_state",
        &json!({"user": "alice", "user_state": {"status": "busy"}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["changed_state"],
        json!([{"key": "status", "value": "busy"}])
    );
    let ev = next_item(&mut ws).expect("state change");
    assert_eq!(ev["type"], json!("user_state_change"));
    assert_eq!(
        ev["message"]["changed"],
        json!([{"key": "status", "value": "busy"}])
    );

    let r = api(
        &srv,
        "POST",
        "/message",
        &json!([{"channel": "room", "user": "alice", "message": {"t": "orig"}}]),
    );
    let id = r.json()[0]["uuid"].clone();
    next_item(&mut ws).expect("message");
    let r = api(
        &srv,
        "PATCH",
        "/message",
        &json!([{"channel": "room", "uuid": id, "message": {"t": "new"}}]),
    );
    assert_eq!(r.status, 200);
    let ev = next_item(&mut ws).expect("edit");
    assert_eq!(ev["type"], json!("message:edit"));
    assert_eq!(ev.get("catchup"), None);
    let info = api(
        &srv,
        "POST",
        "/info",
        &json!({"info": {"channels": ["room"]}}),
    )
    .json();
    assert_eq!(
        info["channels"]["room"]["history"][0]["message"],
        json!({"t": "new"})
    );
    api(
        &srv,
        "DELETE",
        "/message",
        &json!([{"channel": "room", "uuid": id}]),
    );
    let ev = next_item(&mut ws).expect("delete");
    assert_eq!(
        ev,
        json!({"channel": "room", "uuid": id, "type": "message:delete"})
    );
    let info = api(
        &srv,
        "POST",
        "/info",
        &json!({"info": {"channels": ["room"]}}),
    )
    .json();
    assert_eq!(info["channels"]["room"]["history"], json!([]));
}

#[test]
fn long_poll_with_catch_up_and_jsonp() {
    let srv = Server::per_shard(2, |_| {});
    let b = connect(
        &srv.shard(0),
        json!({"username": "bob", "channels": ["room"]}),
    );
    let id = b["conn_id"].as_str().unwrap().to_string();
    api(
        &srv.shard(1),
        "POST",
        "/message",
        &json!([{"channel": "room", "user": "x", "message": {"n": 1}}]),
    );
    let r = request(
        &srv.shard(1),
        "GET",
        &format!("/listen?conn_id={id}&callback=cb"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=UTF-8"));
    let text = r.text();
    assert!(text.starts_with("cb(") && text.ends_with(')'), "{text}");
    let items: Value = serde_json::from_str(&text[3..text.len() - 1]).unwrap();
    assert_eq!(items[0]["catchup"], json!(true));
    assert_eq!(items[0]["message"], json!({"n": 1}));
    // Errors.
    assert_eq!(request(&srv, "GET", "/listen", &[], b"").status, 500);
    let r = request(&srv, "GET", "/listen?conn_id=nope", &[], b"");
    assert_eq!((r.status, r.json()), (422, json!(["Wrong UUID format"])));
    let r = request(
        &srv,
        "GET",
        "/listen?conn_id=11111111-2222-3333-4444-555555555555",
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn long_poll_returns_soon_after_a_message() {
    let srv = Server::start(1);
    let b = connect(&srv, json!({"username": "bob", "channels": ["room"]}));
    let id = b["conn_id"].as_str().unwrap().to_string();
    let addr = srv.addr;
    let poller = std::thread::spawn(move || {
        let started = Instant::now();
        let r = request(&At(addr), "GET", &format!("/listen?conn_id={id}"), &[], b"");
        (r, started.elapsed())
    });
    // Publish until the poll has returned with the message (the poll may start after the
    // first publish; catch-up or the queue delivers it either way).
    api(
        &srv,
        "POST",
        "/message",
        &json!([{"channel": "room", "user": "x", "message": {"n": 1}}]),
    );
    let (r, took) = poller.join().unwrap();
    assert_eq!(r.status, 200);
    let items = r.json();
    assert_eq!(items[0]["message"], json!({"n": 1}));
    assert!(took < Duration::from_secs(4), "returned after {took:?}");
}

#[test]
fn ws_with_unknown_conn_id_is_closed_with_1000() {
    let srv = Server::start(1);
    let mut ws = open_ws(&srv, "11111111-2222-3333-4444-555555555555");
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
}

#[test]
fn disconnect_true_then_false() {
    let srv = Server::start(1);
    let a = connect(&srv, json!({"username": "alice"}));
    let id = a["conn_id"].as_str().unwrap();
    let body = json!({"conn_id": id}).to_string();
    let r = request(&srv, "POST", "/disconnect", &[], body.as_bytes());
    assert_eq!((r.status, r.json()), (200, json!(true)));
    let r = request(
        &srv,
        "GET",
        "/disconnect?conn_id=11111111-2222-3333-4444-555555555555",
        &[],
        b"",
    );
    assert_eq!((r.status, r.json()), (200, json!(false)));
    let r = request(&srv, "GET", "/disconnect", &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (422, json!({"conn_id": ["Field may not be null."]}))
    );
}

#[test]
fn admin_json_and_openapi_need_rights() {
    let srv = Server::start(1);
    connect(&srv, json!({"username": "u1", "channels": ["c1"]}));
    let r = api(&srv, "GET", "/admin/admin.json", &json!({}));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["unique_user_count"], json!(1));
    assert_eq!(v["version"], json!("0.7.1"));
    let r = request(&srv, "GET", "/admin/admin.json", &[], b"");
    assert_eq!(r.status, 302);
    assert!(r.header("Location").unwrap().ends_with("/admin/sign_in"));
    assert_eq!(request(&srv, "GET", "/openapi.json", &[], b"").status, 403);
    let r = api(&srv, "GET", "/openapi.json", &json!({}));
    assert_eq!(r.json()["info"]["title"], json!("Channelstream API"));
}

#[test]
fn options_gets_cors_and_errors_do_not() {
    let srv = Server::start(1);
    let r = request(&srv, "OPTIONS", "/no/such/path", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r.body.is_empty());
    let r = request(&srv, "GET", "/nope", &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Access-Control-Allow-Origin"), None);
}

#[test]
fn server_heartbeat_arrives() {
    let srv = Server::start(1);
    let a = connect(&srv, json!({"username": "alice"}));
    let mut ws = open_ws(&srv, a["conn_id"].as_str().unwrap());
    let started = Instant::now();
    assert_eq!(ws_next_text(&mut ws).as_deref(), Some("[]"));
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(5600),
        "heartbeat after {took:?}"
    );
}

#[test]
fn connect_on_a_socket_on_b_publish_on_c_with_history_and_catch_up() {
    let srv = Server::per_shard(3, |_| {});
    let (a, b, c) = (srv.shard(0), srv.shard(1), srv.shard(2));
    let cfg = json!({"hist": {"store_history": true, "history_size": 2}});
    let v = connect(
        &a,
        json!({"username": "u", "channels": ["hist"], "channel_configs": cfg}),
    );
    let id = v["conn_id"].as_str().unwrap().to_string();
    // Published before the socket exists: comes back by catch-up when it attaches.
    for n in 0..3 {
        let r = api(
            &c,
            "POST",
            "/message",
            &json!([{"channel": "hist", "user": "p", "message": {"n": n}}]),
        );
        assert_eq!(r.status, 200);
    }
    let mut ws = open_ws(&b, &id);
    for n in 0..3 {
        let item = next_item(&mut ws).expect("catch-up item");
        assert_eq!(
            (item["catchup"].clone(), item["message"]["n"].clone()),
            (json!(true), json!(n))
        );
    }
    // Live delivery, then history (size 2) read from a third shard.
    api(
        &c,
        "POST",
        "/message",
        &json!([{"channel": "hist", "user": "p", "message": {"n": 3}}]),
    );
    let item = next_item(&mut ws).expect("live item");
    assert_eq!(
        (item["catchup"].clone(), item["message"]["n"].clone()),
        (json!(false), json!(3))
    );
    let info = api(
        &b,
        "POST",
        "/info",
        &json!({"info": {"channels": ["hist"]}}),
    )
    .json();
    let hist: Vec<Value> = info["channels"]["hist"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"]["n"].clone())
        .collect();
    assert_eq!(hist, vec![json!(2), json!(3)]);
}

#[test]
fn metrics_need_rights_and_count_errors() {
    let srv = Server::start(2);
    assert_eq!(request(&srv, "GET", "/metrics", &[], b"").status, 403);
    request(&srv, "GET", "/nope", &[], b"");
    let t = token();
    let r = request(
        &srv,
        "GET",
        "/metrics",
        &[("X-Channelstream-Secret", &t)],
        b"",
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("# TYPE herald_connections_open gauge"),
        "{text}"
    );
    let errors: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("herald_http_errors_total "))
        .and_then(|v| v.parse().ok())
        .expect("http errors counter");
    assert!(errors >= 2, "{text}");
    assert!(text.contains("herald_shards 2"));
}

#[test]
fn channels_per_connection_are_capped_with_a_422_that_changes_nothing() {
    let srv = Server::per_shard(2, |c| c.limits.max_channels_per_connection = 2);
    let over = json!({"channels": ["Too many channels for one connection (at most 2)."]});
    // /connect with three distinct channels: refused, no connection made.
    let r = api(
        &srv.shard(1),
        "POST",
        "/connect",
        &json!({"username": "cap", "conn_id": "aaaaaaaa-0000-0000-0000-000000000001",
                "channels": ["a", "b", "c"]}),
    );
    assert_eq!((r.status, r.json()), (422, over.clone()));
    let r = api(
        &srv,
        "POST",
        "/info",
        &json!({"info": {"channels": ["a", "b", "c"]}}),
    );
    assert_eq!(r.json()["channels"], json!({}), "{}", r.text());
    // Duplicates count once: two distinct channels are within the limit.
    let r = api(
        &srv.shard(1),
        "POST",
        "/connect",
        &json!({"username": "cap", "conn_id": "aaaaaaaa-0000-0000-0000-000000000002",
                "channels": ["a", "b", "a"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api(
        &srv,
        "POST",
        "/info",
        &json!({"info": {"channels": ["a", "c"]}}),
    );
    let info = r.json();
    let names: Vec<&String> = info["channels"].as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["a"], "{}", r.text());
    // /subscribe to a channel already joined plus nothing new: fine; one new one: refused.
    let sub = |chs: serde_json::Value| {
        api(
            &srv.shard(0),
            "POST",
            "/subscribe",
            &json!({"conn_id": "aaaaaaaa-0000-0000-0000-000000000002", "channels": chs}),
        )
    };
    let r = sub(json!(["b"]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["channels"], json!(["a", "b"]));
    let r = sub(json!(["b", "c"]));
    assert_eq!((r.status, r.json()), (422, over));
    // After leaving one, there is room again.
    let r = api(
        &srv,
        "POST",
        "/unsubscribe",
        &json!({"conn_id": "aaaaaaaa-0000-0000-0000-000000000002", "channels": ["a"]}),
    );
    assert_eq!(r.status, 200);
    let r = sub(json!(["c"]));
    assert_eq!(r.json()["channels"], json!(["b", "c"]), "{}", r.text());
    // Both refusals are counted.
    let t = token();
    let m = request(
        &srv,
        "GET",
        "/metrics",
        &[("X-Channelstream-Secret", &t)],
        b"",
    )
    .text();
    assert!(m.contains("herald_channel_limit_refused_total 2"), "{m}");
}
