//! Scenario tests driven through the typed entry points with a fake clock and a recording
//! `Effects`. Frames and bodies are parsed back as JSON (the `pyjson` stub is not byte-exact
//! yet), and key order is checked on the parsed objects (serde_json keeps insertion order).

use super::clock::SEC;
use super::msg::{poll_body, render, Msg, F, HEARTBEAT_FRAME};
use super::ops::uptime_string;
use super::state::py_eq;
use super::*;
use crate::channelstream::api::types::*;
use chrono::TimeZone;
use serde_json::{json, Map};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Harness

#[derive(Default)]
struct Rec {
    replies: Vec<(ReqRef, Reply)>,
    frames: Vec<(SockRef, Bytes)>,
    deliver_calls: usize,
    closes: Vec<(SockRef, CloseCode)>,
}

impl Effects for Rec {
    fn reply(&mut self, req: ReqRef, reply: Reply) {
        self.replies.push((req, reply));
    }
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        self.deliver_calls += 1;
        for s in to {
            self.frames.push((*s, frame.clone()));
        }
    }
    fn close(&mut self, sock: SockRef, code: CloseCode) {
        self.closes.push((sock, code));
    }
}

impl Rec {
    /// Payloads (as JSON) sent to one socket, in order; drained.
    fn take_for(&mut self, sock: SockRef) -> Vec<Value> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.frames.drain(..).partition(|(s, _)| *s == sock);
        self.frames = rest;
        mine.into_iter().map(|(_, f)| frame_json(&f)).collect()
    }
    fn reply_for(&mut self, req: ReqRef) -> Option<Reply> {
        let i = self.replies.iter().position(|(r, _)| *r == req)?;
        Some(self.replies.remove(i).1)
    }
}

/// The payload of an unmasked server frame.
fn payload(frame: &[u8]) -> &[u8] {
    let len = frame[1] & 0x7f;
    match len {
        126 => &frame[4..],
        127 => &frame[10..],
        _ => &frame[2..],
    }
}

fn frame_json(frame: &[u8]) -> Value {
    assert_eq!(frame[0], 0x81, "a final text frame");
    serde_json::from_slice(payload(frame)).expect("frame payload is JSON")
}

fn body_json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

struct Time {
    base: Instant,
    wall: DateTime<Utc>,
}

impl Time {
    fn new() -> Self {
        Time {
            base: Instant::now(),
            wall: Utc.with_ymd_and_hms(2026, 11, 22, 13, 59, 0).unwrap(),
        }
    }
    /// The time `ms` milliseconds after the start.
    fn at(&self, ms: u64) -> Now {
        Now {
            mono: self.base + Duration::from_millis(ms),
            wall: self.wall + chrono::Duration::milliseconds(ms as i64),
        }
    }
}

fn sock(n: u32) -> SockRef {
    SockRef::new(0, n, 1)
}

fn req(n: u32) -> ReqRef {
    ReqRef::new(0, n, 1)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn state(v: Value) -> StateMap {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn connect_cmd(user: &str, channels: &[&str]) -> ConnectCmd {
    ConnectCmd {
        username: user.to_owned(),
        conn_id: Uuid::new_v4(),
        channels: strings(channels),
        state_public_keys: Vec::new(),
        fresh_user_state: Map::new(),
        user_state: Map::new(),
        channel_configs: Vec::new(),
        info: InfoResolution::default(),
    }
}

fn msg_cmd(user: &str, channel: Option<&str>, text: &str) -> MessageCmd {
    MessageCmd {
        pm_users: Vec::new(),
        exclude_users: Vec::new(),
        channel: channel.map(str::to_owned),
        no_history: false,
        uuid: Uuid::new_v4(),
        timestamp: Timestamp::from_utc(Utc.with_ymd_and_hms(2026, 11, 22, 14, 0, 0).unwrap()),
        user: user.to_owned(),
        message: Some(state(json!({ "text": text }))),
    }
}

fn presence_config() -> ChannelConfig {
    ChannelConfig {
        notify_presence: true,
        broadcast_presence_with_user_lists: true,
        ..ChannelConfig::default()
    }
}

/// Model, clock and recorder, with helpers for the common steps.
struct World {
    m: Model,
    time: Time,
    fx: Rec,
}

impl World {
    fn new() -> Self {
        let time = Time::new();
        World {
            m: Model::new(time.wall),
            time,
            fx: Rec::default(),
        }
    }
    fn now(&self, ms: u64) -> Now {
        self.time.at(ms)
    }
    fn connect(&mut self, ms: u64, cmd: ConnectCmd) -> (Uuid, Value) {
        let id = cmd.conn_id;
        let now = self.now(ms);
        let r = self.m.connect(cmd, now, &mut self.fx);
        assert_eq!(r.status, 200);
        assert_eq!(r.kind, ContentKind::Json);
        (id, body_json(&r))
    }
    fn ws(&mut self, ms: u64, id: Uuid, s: SockRef) {
        let now = self.now(ms);
        self.m.ws_open(id, s, now, &mut self.fx);
    }
    fn send(&mut self, ms: u64, msgs: Vec<MessageCmd>) {
        let now = self.now(ms);
        self.m.messages(msgs, now, &mut self.fx);
    }
    fn tick(&mut self, ms: u64) {
        let now = self.now(ms);
        self.m.tick(now, &mut self.fx);
    }
    /// Tick at every 50 ms step in (from, to].
    fn run(&mut self, from: u64, to: u64) {
        let mut t = from + 50;
        while t <= to {
            self.tick(t);
            t += 50;
        }
    }
    fn listen(&mut self, ms: u64, r: ReqRef, id: Uuid, cb: Option<&str>) {
        let now = self.now(ms);
        self.m
            .listen(Some(r), id, cb.map(str::to_owned), now, &mut self.fx);
    }
    fn info(&mut self) -> Value {
        body_json(&self.m.info(&InfoResolution::default()))
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces

#[test]
fn msg_set_keeps_position_and_appends_new_keys() {
    let mut m = Msg::default();
    m.push("a", F::Null).push("b", F::Bool(true));
    m.set("a", F::Static("x"));
    m.set("c", F::Null);
    m.remove("b");
    assert_eq!(keys(&m.to_http_value()), vec!["a", "c"]);
    assert_eq!(m.get("a"), Some(&F::Static("x")));
}

#[test]
fn socket_form_strips_delivery_keys_and_sets_catchup() {
    let ts = Timestamp::Aware(
        chrono::DateTime::parse_from_rfc3339("2020-01-02T03:04:05+00:00").unwrap(),
    );
    let mut m = Msg::default();
    m.push("pm_users", F::List(vec!["a".into()]))
        .push("exclude_users", F::List(vec![]))
        .push("no_history", F::Bool(false))
        .push("timestamp", F::Time(ts))
        .push("type", F::Static("message:edit"));
    let http = m.to_http_value();
    assert_eq!(http["timestamp"], "2020-01-02T03:04:05+00:00");
    let sock = m.to_socket_value(false);
    assert_eq!(keys(&sock), vec!["timestamp", "type"]);
    assert_eq!(sock["timestamp"], "2020-01-02T03:04:05Z");
    // Catch-up appends `catchup` when absent, and sets it in place when present.
    assert_eq!(
        keys(&m.to_socket_value(true)),
        vec!["timestamp", "type", "catchup"]
    );
    m.set("catchup", F::Bool(false));
    m.set("type", F::Static("message"));
    let cu = m.to_socket_value(true);
    assert_eq!(keys(&cu), vec!["timestamp", "type", "catchup"]);
    assert_eq!(cu["catchup"], true);
}

#[test]
fn render_frames_once_and_item_is_a_slice_of_the_frame() {
    let mut m = Msg::default();
    m.push("type", F::Static("message"))
        .push("message", F::Json(json!({"text": "x".repeat(300)})));
    let mut buf = Vec::new();
    let r = render(&m, false, &mut buf);
    let v = frame_json(&r.frame);
    assert_eq!(
        v,
        json!([{"type": "message", "message": {"text": "x".repeat(300)}}])
    );
    // 16-bit length header here; the item is exactly the text between "[\n    " and "\n]".
    assert_eq!(r.frame[1], 126);
    let p = payload(&r.frame);
    assert!(p.starts_with(b"[\n    {"));
    assert_eq!(&p[6..p.len() - 2], &r.item[..]);
    let item: Value = serde_json::from_slice(&r.item).unwrap();
    assert_eq!(item["type"], "message");
}

#[test]
fn poll_bodies_concatenate_items_like_json_dumps() {
    assert_eq!(&poll_body(&[], None)[..], b"[]");
    assert_eq!(&poll_body(&[], Some("cb"))[..], b"cb([])");
    let items = [
        Bytes::from_static(b"{\"a\": 1}"),
        Bytes::from_static(b"{\"b\": 2}"),
    ];
    assert_eq!(
        &poll_body(&items, None)[..],
        b"[\n    {\"a\": 1},\n    {\"b\": 2}\n]"
    );
    assert_eq!(
        &poll_body(&items[..1], Some("myCb"))[..],
        b"myCb([\n    {\"a\": 1}\n])"
    );
}

#[test]
fn heartbeat_frame_is_text_brackets() {
    assert_eq!(HEARTBEAT_FRAME, &[0x81, 0x02, 0x5b, 0x5d]);
}

#[test]
fn python_equality_of_state_values() {
    let cases = [
        (json!(1), json!(1.0), true),
        (json!(1), json!(true), true),
        (json!(0), json!(false), true),
        (json!(0.0), json!(false), true),
        (json!(2), json!(2.5), false),
        (json!("1"), json!(1), false),
        (json!(null), json!(null), true),
        (json!(null), json!(0), false),
        (json!("a"), json!("a"), true),
        (json!(9007199254740993u64), json!(9007199254740992.0), false),
    ];
    for (a, b, eq) in cases {
        assert_eq!(py_eq(&a, &b), eq, "{a} == {b}");
    }
}

#[test]
fn uptime_like_python_timedelta() {
    assert_eq!(uptime_string(7), "0:00:07");
    assert_eq!(uptime_string(3600 + 62), "1:01:02");
    assert_eq!(
        uptime_string(86_400 + 2 * 3600 + 3 * 60 + 4),
        "1 day, 2:03:04"
    );
    assert_eq!(uptime_string(3 * 86_400), "3 days, 0:00:00");
}

// ---------------------------------------------------------------------------------------------
// Connect, info, state

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
    w.m.channel_config(
        vec![(
            "cu_chan".into(),
            Some(ChannelConfig {
                notify_state: true,
                ..ChannelConfig::default()
            }),
        )],
        w.now(0),
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
    w.m.channel_config(vec![("room".into(), Some(full))], w.now(0));
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

// ---------------------------------------------------------------------------------------------
// Messages and delivery

/// §13.3: alice on a websocket, bob long-polling, one batch of (valid) items.
#[test]
fn nine_item_batch_who_gets_what() {
    let mut w = World::new();
    w.m.channel_config(
        vec![(
            "room".into(),
            Some(ChannelConfig {
                store_history: true,
                ..ChannelConfig::default()
            }),
        )],
        w.now(0),
    );
    let (alice, _) = w.connect(0, connect_cmd("alice", &["room"]));
    let (bob, _) = w.connect(0, connect_cmd("bob", &["room"]));
    w.ws(100, alice, sock(1));
    w.listen(200, req(9), bob, None);

    let m1 = msg_cmd("alice", Some("room"), "hello room");
    let mut m2 = msg_cmd("system", Some("room"), "pm inside room for alice");
    m2.pm_users = strings(&["alice"]);
    let mut m3 = msg_cmd("system", Some("room"), "not for alice");
    m3.exclude_users = strings(&["alice"]);
    let mut m4 = msg_cmd("system", Some("room"), "not stored");
    m4.no_history = true;
    let mut m5 = msg_cmd("system", None, "global pm");
    m5.pm_users = strings(&["alice", "ghost"]);
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
    m.pm_users = strings(&["alice", "bob"]);
    m.exclude_users = strings(&["bob"]);
    w.send(10, vec![m]);
    assert_eq!(w.fx.take_for(sock(1)).len(), 1);
    assert_eq!(w.fx.take_for(sock(2)).len(), 1);
    assert!(w.fx.take_for(sock(3)).is_empty());
    // A pm_user outside the channel gets nothing.
    let mut m = msg_cmd("sys", Some("room"), "y");
    m.pm_users = strings(&["carol"]);
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

// ---------------------------------------------------------------------------------------------
// Presence

#[test]
fn presence_joined_and_parted_with_user_lists() {
    let mut w = World::new();
    w.m.channel_config(vec![("room".into(), Some(presence_config()))], w.now(0));
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
    let cfg = ChannelConfig {
        notify_presence: true,
        ..ChannelConfig::default()
    };
    w.m.channel_config(vec![("p".into(), Some(cfg))], w.now(0));
    let (alice, _) = w.connect(0, connect_cmd("alice", &["p"]));
    w.ws(1, alice, sock(1));
    w.connect(2, connect_cmd("carol", &["p"]));
    let ev = &w.fx.take_for(sock(1))[0][0];
    assert_eq!(ev["users"], json!([]));
    assert_eq!(ev["state"], json!({}));
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

// ---------------------------------------------------------------------------------------------
// Edits and deletes

#[test]
fn edit_and_delete_events_and_stored_copies() {
    let mut w = World::new();
    w.m.channel_config(
        vec![(
            "room".into(),
            Some(ChannelConfig {
                store_history: true,
                ..ChannelConfig::default()
            }),
        )],
        w.now(0),
    );
    let (alice, _) = w.connect(0, connect_cmd("alice", &["room"]));
    w.ws(1, alice, sock(1));
    let m = msg_cmd("alice", Some("room"), "hello room");
    let uuid = m.uuid;
    let mut pm = msg_cmd("system", None, "global pm");
    pm.pm_users = strings(&["alice"]);
    let pm_uuid = pm.uuid;
    w.send(10, vec![m, pm]);
    w.fx.take_for(sock(1));

    let edited = Timestamp::from_utc(w.time.at(20).wall);
    let e = EditCmd {
        pm_users: vec![],
        exclude_users: vec![],
        channel: Some("room".into()),
        no_history: false,
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
        pm_users: strings(&["alice"]),
        exclude_users: vec![],
        channel: None,
        no_history: false,
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
        pm_users: strings(pm),
        exclude_users: vec![],
        channel: channel.map(str::to_owned),
        no_history: false,
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
    w.m.channel_config(
        vec![(
            "room".into(),
            Some(ChannelConfig {
                store_history: true,
                ..ChannelConfig::default()
            }),
        )],
        w.now(0),
    );
    let mut m = msg_cmd("u", Some("room"), "");
    m.message = None;
    let uuid = m.uuid;
    w.send(1, vec![m]);
    let e = EditCmd {
        pm_users: vec![],
        exclude_users: vec![],
        channel: Some("room".into()),
        no_history: false,
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

// ---------------------------------------------------------------------------------------------
// Catch-up

#[test]
fn catchup_on_ws_open_filters_pms_and_marks_catchup() {
    let mut w = World::new();
    let (frank, _) = w.connect(0, connect_cmd("frank", &["cu_chan"]));
    w.connect(0, connect_cmd("other", &["cu_chan"]));
    let m = msg_cmd("system", Some("cu_chan"), "for all");
    let mut pm_else = msg_cmd("system", Some("cu_chan"), "pm for someone else");
    pm_else.pm_users = strings(&["someone_else"]);
    let mut gpm = msg_cmd("system", None, "global pm for frank");
    gpm.pm_users = strings(&["frank"]);
    let mut excl = msg_cmd("system", Some("cu_chan"), "not frank");
    excl.exclude_users = strings(&["frank"]);
    w.send(1000, vec![m, pm_else, gpm, excl]);
    assert!(w.fx.frames.is_empty(), "nothing attached yet: dropped");
    w.ws(2000, frank, sock(1));
    let got = w.fx.take_for(sock(1));
    let texts: Vec<&Value> = got.iter().map(|f| &f[0]["message"]["text"]).collect();
    assert_eq!(texts, vec!["for all", "global pm for frank"]);
    for f in &got {
        assert_eq!(f[0]["catchup"], true);
        assert_eq!(keys(&f[0]).last(), Some(&"type"));
    }
    // The stored copies are untouched (history keeps catchup false).
    assert_eq!(w.fx.deliver_calls, 2, "one frame per caught-up message");
}

#[test]
fn catchup_only_newer_than_last_activity() {
    let mut w = World::new();
    w.send(0, vec![]);
    w.m.channel_config(vec![("c".into(), None)], w.now(0));
    w.send(500, vec![msg_cmd("s", Some("c"), "before connect")]);
    let (id, _) = w.connect(1000, connect_cmd("u", &["c"]));
    w.send(1500, vec![msg_cmd("s", Some("c"), "after connect")]);
    w.ws(2000, id, sock(1));
    let got = w.fx.take_for(sock(1));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0]["message"]["text"], "after connect");
}

#[test]
fn catchup_on_listen_with_jsonp_callback() {
    let mut w = World::new();
    let (bob, _) = w.connect(0, connect_cmd("bob", &["room"]));
    w.connect(0, connect_cmd("alice", &["room"]));
    w.send(
        3000,
        vec![msg_cmd("alice", Some("room"), "while bob is away")],
    );
    w.listen(4000, req(1), bob, Some("myCb"));
    w.tick(4200);
    assert!(w.fx.replies.is_empty());
    w.tick(4250);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!((r.status, r.kind), (200, ContentKind::Html));
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(
        body.starts_with("myCb([\n    {") && body.ends_with("\n])"),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body[5..body.len() - 1]).unwrap();
    assert_eq!(v[0]["message"]["text"], "while bob is away");
    assert_eq!(v[0]["catchup"], true);
    // The end of the poll marked the connection active: the next poll has no catch-up.
    w.listen(4300, req(2), bob, None);
    w.run(4300, 5200);
    assert!(w.fx.replies.is_empty());
    w.tick(5250);
    let r = w.fx.reply_for(req(2)).unwrap();
    assert_eq!(
        &r.body[..],
        b"[]",
        "heartbeat at 5 s wakes the poll with nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Long polling

#[test]
fn long_poll_waits_five_seconds_then_a_quarter() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("erin", &["c"]));
    // Quirk 17: no queue at the 5 s check, so heartbeats stop for good.
    w.run(0, 6000);
    w.listen(6000, req(1), id, None);
    assert_eq!(w.m.next_deadline(), Some(w.now(11_000).mono));
    w.run(6000, 11_000);
    assert!(w.fx.replies.is_empty(), "still waiting for the first item");
    w.tick(11_200);
    assert!(w.fx.replies.is_empty(), "then one 0.25 s gap");
    w.tick(11_250);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!(&r.body[..], b"[]");
}

#[test]
fn long_poll_batches_until_a_quarter_second_gap() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    w.send(1000, vec![msg_cmd("a", Some("c"), "1")]);
    w.send(1200, vec![msg_cmd("a", Some("c"), "2")]);
    w.send(1400, vec![msg_cmd("a", Some("c"), "3")]);
    w.tick(1600);
    assert!(w.fx.replies.is_empty());
    w.tick(1650);
    let v = body_json(&w.fx.reply_for(req(1)).unwrap());
    assert_eq!(v.as_array().unwrap().len(), 3);
    // Between polls, messages are dropped (and come back through catch-up).
    w.send(1700, vec![msg_cmd("a", Some("c"), "4")]);
    w.listen(1800, req(2), id, None);
    w.tick(2050);
    let v = body_json(&w.fx.reply_for(req(2)).unwrap());
    assert_eq!(v[0]["message"]["text"], "4");
    assert_eq!(v[0]["catchup"], true);
}

#[test]
fn listen_unknown_connection_is_pyramid_401() {
    let mut w = World::new();
    w.listen(0, req(1), Uuid::new_v4(), None);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!((r.status, r.kind), (401, ContentKind::Html));
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(body.starts_with("<html>\n <head>\n  <title>401 Unauthorized</title>"));
    assert!(body.contains("you requested.  Either you supplied"));
    assert!(body.ends_with("<br/><br/>\n\n\n\n </body>\n</html>"));
}

#[test]
fn superseded_poll_is_answered_and_aborted_poll_is_silent() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    w.listen(200, req(2), id, None);
    let r = w.fx.reply_for(req(1)).expect("superseded poll answered");
    assert_eq!((r.status, &r.body[..]), (200, &b"[]"[..]));
    // The client of poll 2 leaves; the poll runs out without a reply, still marking activity.
    w.m.listen_aborted(Some(req(2)), id);
    w.run(200, 6000);
    assert!(w.fx.replies.is_empty());
    // A stale abort for an old request does not touch the current poll.
    w.listen(6000, req(3), id, None);
    w.m.listen_aborted(Some(req(2)), id);
    w.run(6000, 10_250);
    assert!(w.fx.reply_for(req(3)).is_some());
}

#[test]
fn poll_of_a_collected_connection_gets_500() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    let r = w.m.disconnect(id, w.now(200));
    assert_eq!(&r.body[..], b"true");
    w.run(200, 1100);
    // Collected, but 0.7.1's greenlet only crashes when its 5 s wait runs out.
    assert!(w.fx.reply_for(req(1)).is_none());
    assert!(!w.m.has_connection(&id));
    w.run(1100, 5200);
    let r = w.fx.reply_for(req(1)).expect("answered");
    assert_eq!((r.status, r.kind), (500, ContentKind::Text));
    assert_eq!(&r.body[..], b"Internal Server Error");
    assert!(!w.m.has_connection(&id));
    assert_eq!(&w.m.disconnect(id, w.now(1200)).body[..], b"false");
}

// ---------------------------------------------------------------------------------------------
// Heartbeats and GC

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
    w.m.channel_config(vec![("pchan".into(), Some(presence_config()))], w.now(0));
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
    w.m.channel_config(vec![("pchan".into(), Some(presence_config()))], w.now(0));
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
    // Closing the orphaned socket does not collect the connection.
    w.m.ws_closed(id, sock(1), w.now(40));
    w.run(40, 2000);
    assert!(w.m.has_connection(&id));
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

// ---------------------------------------------------------------------------------------------
// `handle` dispatch (validators are stubs in this branch: they answer Crash)

#[test]
fn handle_maps_schema_errors_and_replies() {
    let mut w = World::new();
    let now = w.now(0);
    w.m.handle(Some(req(1)), Command::Connect(json!({})), now, &mut w.fx);
    let r = w.fx.reply_for(req(1)).unwrap();
    match crate::channelstream::api::schema::connect(&json!({})) {
        Err(SchemaError::Crash) => {
            assert_eq!((r.status, r.kind), (500, ContentKind::Text));
            assert_eq!(&r.body[..], b"Internal Server Error");
        }
        Err(SchemaError::Invalid(v)) => {
            assert_eq!((r.status, r.kind), (422, ContentKind::Json));
            assert_eq!(body_json(&r), v);
        }
        Ok(_) => assert_eq!(r.status, 200),
    }
    w.m.handle(
        Some(req(2)),
        Command::Disconnect(Uuid::new_v4()),
        now,
        &mut w.fx,
    );
    assert_eq!(&w.fx.reply_for(req(2)).unwrap().body[..], b"false");
    w.m.handle(Some(req(3)), Command::AdminJson, now, &mut w.fx);
    assert_eq!(w.fx.reply_for(req(3)).unwrap().status, 200);
    w.m.handle(
        None,
        Command::Messages(vec![msg_cmd("a", Some("x"), "y")]),
        now,
        &mut w.fx,
    );
    assert!(w.fx.replies.is_empty());
    assert_eq!(w.m.stats().total_unique_messages, 1);
    let s = sock(5);
    w.m.handle(
        None,
        Command::WsOpen {
            conn_id: Uuid::new_v4(),
            sock: s,
        },
        now,
        &mut w.fx,
    );
    assert_eq!(w.fx.closes, vec![(s, CloseCode::Normal)]);
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
fn a_poll_under_a_constant_stream_answers_at_the_cap() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(10, req(1), id, Some(""));
    let batch: Vec<MessageCmd> = (0..super::clock::POLL_MAX_ITEMS)
        .map(|i| msg_cmd("a", Some("c"), &i.to_string()))
        .collect();
    w.send(20, batch);
    assert_eq!(w.m.next_deadline(), Some(w.now(20).mono), "due at once");
    w.tick(20);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert!(r.body.starts_with(b"[\n"), "empty callback = plain JSON");
    assert_eq!(
        body_json(&r).as_array().map(Vec::len),
        Some(super::clock::POLL_MAX_ITEMS)
    );
}

impl World {
    /// Tick exactly at each `next_deadline` up to `to`, checking that deadlines advance.
    fn follow(&mut self, to: u64) -> usize {
        let mut n = 0;
        let mut last = None;
        while let Some(d) = self.m.next_deadline() {
            let ms = d.duration_since(self.time.base).as_millis() as u64;
            if ms > to {
                break;
            }
            assert!(
                last.is_none_or(|l| d > l),
                "next_deadline must move forward"
            );
            last = Some(d);
            self.tick(ms);
            n += 1;
        }
        n
    }
}

#[test]
fn unsubscribing_a_channel_one_is_not_in_still_sends_parted() {
    let mut w = World::new();
    let cfg = ChannelConfig {
        notify_presence: true,
        ..ChannelConfig::default()
    };
    w.m.channel_config(vec![("p".into(), Some(cfg))], w.now(0));
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
    w.m.channel_config(vec![("p".into(), Some(cfg))], w.now(0));
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
