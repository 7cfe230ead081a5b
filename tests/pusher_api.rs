//! Black-box tests of the Pusher HTTP API beyond `POST /events`: `batch_events`, `info`,
//! the channel queries gathered from every shard, terminate, signatures, and several apps
//! (isolation, a disabled app, per-app limits). In-process Herald on 127.0.0.1:0, two shards
//! each on its own port, so clients land on a chosen shard.

mod common;

use common::*;
use herald::config::PusherApp;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tungstenite::Message;

/// An app's credentials, as a test signs with them.
#[derive(Clone, Copy)]
struct Creds {
    id: &'static str,
    key: &'static str,
    secret: &'static str,
}

const DEFAULT: Creds = Creds {
    id: "app-id",
    key: "app-key",
    secret: "app-secret",
};
const A: Creds = Creds {
    id: "1001",
    key: "key-a",
    secret: "secret-a",
};
const B: Creds = Creds {
    id: "1002",
    key: "key-b",
    secret: "secret-b",
};
const OFF: Creds = Creds {
    id: "1003",
    key: "key-off",
    secret: "secret-off",
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac_hex(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// How to sign a request (the ways tests break it).
#[derive(Clone, Copy, Default)]
struct Sig {
    /// Seconds added to the timestamp.
    skew: i64,
    /// Sign with this secret instead.
    secret: Option<&'static str>,
    /// Send this `body_md5` instead of the body's.
    md5: Option<&'static str>,
    /// On a GET, send `body_md5` of the empty body (PyPI SDK).
    get_md5: bool,
}

/// A signed request as the SDKs sign it: `query` holds the extra parameters (`k=v&…`,
/// unescaped, sorted by the signer).
fn signed(
    target: &impl Target,
    app: Creds,
    method: &str,
    path: &str,
    query: &str,
    body: Option<&str>,
    sig: Sig,
) -> Resp {
    let ts = (i64::try_from(unix_now()).unwrap() + sig.skew).to_string();
    let mut params: Vec<(String, String)> = vec![
        ("auth_key".into(), app.key.into()),
        ("auth_timestamp".into(), ts),
        ("auth_version".into(), "1.0".into()),
    ];
    if body.is_some() || sig.get_md5 {
        let md5 = hex(&Md5::digest(body.unwrap_or("").as_bytes()));
        params.push(("body_md5".into(), sig.md5.map_or(md5, str::to_owned)));
    }
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap();
        params.push((k.into(), v.into()));
    }
    params.sort();
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let q = q.join("&");
    let s = hmac_hex(
        sig.secret.unwrap_or(app.secret),
        &format!("{method}\n{path}\n{q}"),
    );
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("Content-Type", "application/json")]
    } else {
        &[]
    };
    request(
        target,
        method,
        &format!("{path}?{q}&auth_signature={s}"),
        headers,
        body.unwrap_or("").as_bytes(),
    )
}

fn post(target: &impl Target, app: Creds, endpoint: &str, body: &Value) -> Resp {
    let path = format!("/apps/{}/{endpoint}", app.id);
    signed(
        target,
        app,
        "POST",
        &path,
        "",
        Some(&body.to_string()),
        Sig::default(),
    )
}

fn get(target: &impl Target, app: Creds, endpoint: &str, query: &str) -> Resp {
    let path = format!("/apps/{}/{endpoint}", app.id);
    signed(target, app, "GET", &path, query, None, Sig::default())
}

fn next(ws: &mut Ws) -> Value {
    let t = ws_next_text(ws).expect("a text frame");
    serde_json::from_str(&t).expect("JSON")
}

fn connect(target: &impl Target, key: &str) -> Ws {
    let mut ws = ws_connect(
        target,
        &format!("/app/{key}?protocol=7&client=js&version=8.6.0"),
    );
    set_timeout(&ws, Duration::from_secs(5));
    assert_eq!(next(&mut ws)["event"], "pusher:connection_established");
    ws
}

fn subscribe(ws: &mut Ws, channel: &str) {
    let sub = json!({"event":"pusher:subscribe","data":{"auth":"","channel":channel}});
    ws.send(Message::text(sub.to_string())).unwrap();
    let v = next(ws);
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
}

fn assert_silent(ws: &mut Ws) {
    set_timeout(ws, Duration::from_millis(300));
    assert!(ws_next_text(ws).is_none(), "expected no frame");
    set_timeout(ws, Duration::from_secs(5));
}

/// Enough channel names that both of two shards own some (checked in the test).
const ROOMS: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];

fn two_shards(f: impl FnOnce(&mut herald::config::Config)) -> Server {
    Server::per_shard(2, f)
}

#[test]
fn channels_list_gathers_every_shard() {
    let owners: std::collections::HashSet<_> = ROOMS
        .iter()
        .map(|r| herald::pusher::channels::owner(0, r, 2))
        .collect();
    assert_eq!(owners.len(), 2, "the rooms must be owned by both shards");
    let server = two_shards(|_| {});
    let mut a = connect(&server.shard(0), DEFAULT.key);
    let mut b = connect(&server.shard(1), DEFAULT.key);
    for r in ROOMS {
        subscribe(&mut a, r);
    }
    subscribe(&mut b, "r0");
    subscribe(&mut b, "other");
    for at in [server.shard(0), server.shard(1)] {
        let r = get(&at, DEFAULT, "channels", "");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let mut names: Vec<&str> = v["channels"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["other", "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]
        );
        assert_eq!(v["channels"]["r0"], json!({}));
        let r = get(&at, DEFAULT, "channels", "filter_by_prefix=oth");
        assert_eq!(r.json(), json!({"channels":{"other":{}}}));
    }
    let r = get(&server.shard(0), DEFAULT, "channels", "info=user_count");
    assert_eq!(r.status, 400);
    let q = "filter_by_prefix=presence-&info=user_count";
    let r = get(&server.shard(0), DEFAULT, "channels", q);
    assert_eq!((r.status, r.json()), (200, json!({"channels":{}})));
}

#[test]
fn one_channel_occupied_and_counted() {
    let server = two_shards(|_| {});
    let mut a = connect(&server.shard(0), DEFAULT.key);
    let mut b = connect(&server.shard(1), DEFAULT.key);
    subscribe(&mut a, "room");
    subscribe(&mut b, "room");
    for at in [server.shard(0), server.shard(1)] {
        let r = get(&at, DEFAULT, "channels/room", "info=subscription_count");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"occupied":true,"subscription_count":2}));
        let r = get(&at, DEFAULT, "channels/empty", "");
        assert_eq!(r.json(), json!({"occupied":false}));
    }
    let r = get(
        &server.shard(0),
        DEFAULT,
        "channels/room",
        "info=user_count",
    );
    assert_eq!(r.status, 400, "user_count is for presence channels");
    let r = get(
        &server.shard(0),
        DEFAULT,
        "channels/presence-x",
        "info=user_count",
    );
    assert_eq!(r.json(), json!({"occupied":false,"user_count":0}));
    let r = get(&server.shard(0), DEFAULT, "channels/room", "info=nonsense");
    assert_eq!(r.status, 400);
    // Unsubscribing is seen by the owner.
    let unsub = json!({"event":"pusher:unsubscribe","data":{"channel":"room"}});
    a.send(Message::text(unsub.to_string())).unwrap();
    let mut count = Value::Null;
    for _ in 0..50 {
        let r = get(
            &server.shard(1),
            DEFAULT,
            "channels/room",
            "info=subscription_count",
        );
        count = r.json()["subscription_count"].clone();
        if count == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count, 1);
}

#[test]
fn cache_channel_info_from_its_owner() {
    // `GET /channels/{name}?info=cache` (Pusher's cache channels; sockudo answers it too).
    let server = two_shards(|_| {});
    let mut a = connect(&server.shard(0), DEFAULT.key);
    subscribe(&mut a, "cache-quote");
    assert_eq!(next(&mut a)["event"], "pusher:cache_miss");
    for at in [server.shard(0), server.shard(1)] {
        let r = get(&at, DEFAULT, "channels/cache-quote", "info=cache");
        assert_eq!((r.status, r.json()), (200, json!({"occupied":true})));
    }
    let ev = json!({"name":"price","channel":"cache-quote","data":"{\"eur\":3}"});
    assert_eq!(post(&server.shard(1), DEFAULT, "events", &ev).status, 200);
    assert_eq!(next(&mut a)["event"], "price");
    drop(a);
    for at in [server.shard(0), server.shard(1)] {
        let r = get(&at, DEFAULT, "channels/cache-quote", "info=cache");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["cache"]["data"], "{\"eur\":3}", "{v}");
        let ttl = v["cache"]["ttl"].as_u64().unwrap();
        assert!((1790..=1800).contains(&ttl), "ttl {ttl}");
    }
    let r = get(&server.shard(0), DEFAULT, "channels/room", "info=cache");
    assert_eq!(
        r.json(),
        json!({"occupied":false}),
        "no cache on other channels"
    );
    let r = get(&server.shard(0), DEFAULT, "channels", "info=cache");
    assert_eq!(r.status, 400, "not on the channel list");
}

#[test]
fn presence_users_and_terminate() {
    let server = two_shards(|_| {});
    let r = get(
        &server.shard(1),
        DEFAULT,
        "channels/presence-room/users",
        "",
    );
    assert_eq!((r.status, r.json()), (200, json!({"users":[]})));
    let r = get(&server.shard(1), DEFAULT, "channels/room/users", "");
    assert_eq!(r.status, 400);
    let r = post(
        &server.shard(0),
        DEFAULT,
        "users/42/terminate_connections",
        &json!({}),
    );
    assert_eq!((r.status, r.json()), (200, json!({})));
}

#[test]
fn events_info_counts_after_the_publish() {
    let server = two_shards(|_| {});
    let mut a = connect(&server.shard(0), DEFAULT.key);
    let mut b = connect(&server.shard(1), DEFAULT.key);
    for ws in [&mut a, &mut b] {
        subscribe(ws, "room");
    }
    subscribe(&mut a, "solo");
    let body = json!({"name":"e","data":"x","channels":["room","solo","nobody","presence-p"],
        "info":"subscription_count,user_count"});
    let r = post(&server.shard(1), DEFAULT, "events", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"channels":{
            "room":{"subscription_count":2},
            "solo":{"subscription_count":1},
            "nobody":{"subscription_count":0},
            "presence-p":{"subscription_count":0,"user_count":0}}})
    );
    for ws in [&mut a, &mut b] {
        assert_eq!(next(ws)["channel"], "room");
    }
    assert_eq!(next(&mut a)["channel"], "solo");
}

#[test]
fn batch_events_deliver_and_answer() {
    let server = two_shards(|_| {});
    let mut a = connect(&server.shard(0), DEFAULT.key);
    let mut b = connect(&server.shard(1), DEFAULT.key);
    subscribe(&mut a, "ch-a");
    subscribe(&mut b, "ch-b");
    let batch = json!({"batch":[
        {"name":"e1","data":"1","channel":"ch-a"},
        {"name":"e2","data":"2","channel":"ch-b"},
    ]});
    let r = post(&server.shard(0), DEFAULT, "batch_events", &batch);
    assert_eq!((r.status, r.json()), (200, json!({})), "{}", r.text());
    assert_eq!(
        next(&mut a),
        json!({"event":"e1","channel":"ch-a","data":"1"})
    );
    assert_eq!(
        next(&mut b),
        json!({"event":"e2","channel":"ch-b","data":"2"})
    );
    let batch = json!({"batch":[
        {"name":"e1","data":"1","channel":"ch-a"},
        {"name":"e2","data":"2","channel":"ch-b","info":"subscription_count"},
    ]});
    let r = post(&server.shard(1), DEFAULT, "batch_events", &batch);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"batch":[{},{"subscription_count":1}]}))
    );
    // Limits: 10 events, 10 KB of data each; nothing of a refused batch is delivered.
    let one = json!({"name":"e","data":"x","channel":"ch-a"});
    let eleven: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    let r = post(
        &server.shard(0),
        DEFAULT,
        "batch_events",
        &json!({ "batch": eleven }),
    );
    assert_eq!(r.status, 400);
    let big = json!({"name":"e","data":"x".repeat(10 * 1024 + 1),"channel":"ch-a"});
    let r = post(
        &server.shard(0),
        DEFAULT,
        "batch_events",
        &json!({"batch":[one, big]}),
    );
    assert_eq!(r.status, 413);
    assert_eq!(next(&mut a)["event"], "e1");
    assert_silent(&mut a);
}

#[test]
fn signatures_refused() {
    let server = two_shards(|_| {});
    let at = server.shard(0);
    let path = "/apps/app-id/channels";
    let forged = Sig {
        secret: Some("not-the-secret"),
        ..Sig::default()
    };
    assert_eq!(
        signed(&at, DEFAULT, "GET", path, "", None, forged).status,
        401
    );
    for skew in [-601, 601] {
        let old = Sig {
            skew,
            ..Sig::default()
        };
        assert_eq!(signed(&at, DEFAULT, "GET", path, "", None, old).status, 401);
    }
    let near = Sig {
        skew: -590,
        ..Sig::default()
    };
    assert_eq!(
        signed(&at, DEFAULT, "GET", path, "", None, near).status,
        200
    );
    // The PyPI SDK's body_md5 of the empty body on a GET is accepted; a wrong one is not.
    let py = Sig {
        get_md5: true,
        ..Sig::default()
    };
    assert_eq!(signed(&at, DEFAULT, "GET", path, "", None, py).status, 200);
    let wrong = Sig {
        get_md5: true,
        md5: Some("00000000000000000000000000000000"),
        ..Sig::default()
    };
    assert_eq!(
        signed(&at, DEFAULT, "GET", path, "", None, wrong).status,
        401
    );
    let body = json!({"name":"e","data":"x","channel":"c"}).to_string();
    let p = "/apps/app-id/batch_events";
    let r = signed(&at, DEFAULT, "POST", p, "", Some(&body), wrong);
    assert_eq!(r.status, 401);
    // A signed parameter changed after signing.
    let r = get(&at, DEFAULT, "channels", "filter_by_prefix=a");
    assert_eq!(r.status, 200);
    let r = request(&at, "GET", &format!("{path}?auth_key=app-key"), &[], b"");
    assert_eq!(r.status, 401);
    // Routes and methods.
    assert_eq!(get(&at, DEFAULT, "events", "").status, 405);
    assert_eq!(get(&at, DEFAULT, "nothing", "").status, 404);
}

fn three_apps(c: &mut herald::config::Config) {
    let mut off = PusherApp::new(OFF.id, OFF.key, OFF.secret);
    off.enabled = false;
    let mut b = PusherApp::new(B.id, B.key, B.secret);
    b.max_event_size = 16;
    c.pusher_apps = vec![PusherApp::new(A.id, A.key, A.secret), b, off];
}

#[test]
fn apps_are_isolated() {
    let server = two_shards(three_apps);
    let mut a = connect(&server.shard(0), A.key);
    let mut b = connect(&server.shard(1), B.key);
    subscribe(&mut a, "room");
    subscribe(&mut b, "room");
    let ev = json!({"name":"e","data":"for-a","channel":"room","info":"subscription_count"});
    let r = post(&server.shard(1), A, "events", &ev);
    assert_eq!(
        r.json(),
        json!({"channels":{"room":{"subscription_count":1}}})
    );
    assert_eq!(next(&mut a)["data"], "for-a");
    assert_silent(&mut b);
    let r = get(
        &server.shard(0),
        B,
        "channels/room",
        "info=subscription_count",
    );
    assert_eq!(r.json(), json!({"occupied":true,"subscription_count":1}));
    // B's credentials do not sign for A, and the default app is not served.
    let path = "/apps/1001/events";
    let body = ev.to_string();
    let r = signed(
        &server.shard(0),
        B,
        "POST",
        path,
        "",
        Some(&body),
        Sig::default(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(post(&server.shard(0), DEFAULT, "events", &ev).status, 404);
    // B's own event size limit.
    let big = json!({"name":"e","data":"x".repeat(17),"channel":"room"});
    assert_eq!(post(&server.shard(0), B, "events", &big).status, 413);
    assert_eq!(post(&server.shard(0), A, "events", &big).status, 200);
    assert_eq!(next(&mut a)["data"], "x".repeat(17));
    assert_silent(&mut b);
}

#[test]
fn disabled_and_unknown_apps() {
    let server = two_shards(three_apps);
    let mut ws = ws_connect(&server.shard(0), &format!("/app/{}?protocol=7", OFF.key));
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:error");
    assert_eq!(v["data"]["code"], 4003);
    let code = loop {
        match ws.read() {
            Ok(Message::Close(f)) => break f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    assert_eq!(code, Some(4003));
    let r = post(
        &server.shard(0),
        OFF,
        "events",
        &json!({"name":"e","data":"x","channel":"c"}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(get(&server.shard(1), OFF, "channels", "").status, 403);
    let nope = Creds {
        id: "999",
        key: "nope",
        secret: "s",
    };
    assert_eq!(get(&server.shard(1), nope, "channels", "").status, 404);
}

/// A Pusher counter's value in `/metrics` (summed over shards).
fn metric(server: &Server, name: &str) -> u64 {
    let t = token();
    let r = request(
        server,
        "GET",
        "/metrics",
        &[("X-Channelstream-Secret", &t)],
        b"",
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    let line = text
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} in /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn metrics_count_connections_messages_and_refusals() {
    let server = two_shards(three_apps);
    let mut a = connect(&server.shard(0), A.key);
    let mut b = connect(&server.shard(1), A.key);
    subscribe(&mut a, "room");
    subscribe(&mut b, "room");
    assert_eq!(metric(&server, "herald_pusher_connections"), 2);
    assert_eq!(metric(&server, "herald_pusher_messages_in_total"), 2);
    let ev = json!({"name":"e","data":"x","channel":"room"});
    assert_eq!(post(&server.shard(0), A, "events", &ev).status, 200);
    next(&mut a);
    next(&mut b);
    assert_eq!(metric(&server, "herald_pusher_messages_out_total"), 2);
    assert_eq!(metric(&server, "herald_pusher_channels"), 1);
    assert_eq!(post(&server.shard(0), OFF, "events", &ev).status, 403);
    let forged = Sig {
        secret: Some("x"),
        ..Sig::default()
    };
    let r = signed(
        &server.shard(1),
        A,
        "GET",
        "/apps/1001/channels",
        "",
        None,
        forged,
    );
    assert_eq!(r.status, 401);
    assert_eq!(metric(&server, "herald_pusher_api_disabled_total"), 1);
    assert_eq!(metric(&server, "herald_pusher_api_unauthorized_total"), 1);
    // The same, per app.
    let per_app = [
        (r#"herald_pusher_app_connections{app="1001"}"#, 2),
        (r#"herald_pusher_app_connections{app="1002"}"#, 0),
        (r#"herald_pusher_app_messages_in_total{app="1001"}"#, 2),
        (r#"herald_pusher_app_messages_out_total{app="1001"}"#, 2),
        (r#"herald_pusher_app_messages_out_total{app="1002"}"#, 0),
        (
            r#"herald_pusher_app_rejections_total{app="1003",reason="disabled"}"#,
            1,
        ),
        (
            r#"herald_pusher_app_rejections_total{app="1001",reason="unauthorized"}"#,
            1,
        ),
        (
            r#"herald_pusher_app_rejections_total{app="1002",reason="unauthorized"}"#,
            0,
        ),
    ];
    for (name, want) in per_app {
        assert_eq!(metric(&server, name), want, "{name}");
    }
    drop(ws_connect(&server.shard(0), "/app/nope?protocol=7"));
    drop(a);
    let mut n = (0, 0);
    for _ in 0..50 {
        n = (
            metric(&server, "herald_pusher_sockets_refused_total"),
            metric(&server, "herald_pusher_connections"),
        );
        if n == (1, 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(n, (1, 1));
}

/// The close code a refused socket gets, after its `pusher:error` with the same code.
fn refused_with(target: &impl Target, key: &str) -> Option<u16> {
    let mut ws = ws_connect(target, &format!("/app/{key}?protocol=7"));
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    if v["event"] == "pusher:connection_established" {
        return None;
    }
    assert_eq!(v["event"], "pusher:error", "{v}");
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return Some(0),
        }
    }
}

#[test]
fn max_connections_hold_over_both_shards() {
    let server = two_shards(|c| {
        let mut a = PusherApp::new(A.id, A.key, A.secret);
        a.max_connections = 1;
        c.pusher_apps = vec![a, PusherApp::new(B.id, B.key, B.secret)];
    });
    let first = connect(&server.shard(0), A.key);
    assert_eq!(refused_with(&server.shard(1), A.key), Some(4004));
    assert_eq!(refused_with(&server.shard(0), A.key), Some(4004));
    assert_eq!(
        refused_with(&server.shard(1), B.key),
        None,
        "B has no limit"
    );
    drop(first);
    let mut again = Some(4004);
    for _ in 0..50 {
        again = refused_with(&server.shard(1), A.key);
        if again.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(again, None, "the closed socket's place is free again");
}
