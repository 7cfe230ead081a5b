//! Black-box tests of Pusher user authentication (`pusher:signin`), server-to-user channels,
//! `terminate_connections`, watchlists, the per-app switches (client events,
//! `max_presence_members`) and the activity timeout (server `pusher:ping`, close 4201).
//! In-process Herald on 127.0.0.1:0 with two shards, each on its own port, so a user's
//! sockets, its owner shard and the HTTP request sit on chosen shards.

mod common;

use common::pusher::close_code;
use common::pusher::*;
use common::*;
use herald::config::{Config, PusherApp};
use herald::pusher::users;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A user id of the default app owned by `shard` (of 2), starting with `prefix`.
fn owned_by(shard: u16, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| users::owner(0, id, 2).0 == shard)
        .unwrap()
}

fn ud(id: &str) -> String {
    json!({"id": id, "user_info": {"name": id}}).to_string()
}

fn ud_watching(id: &str, watchlist: &[&str]) -> String {
    json!({"id": id, "watchlist": watchlist}).to_string()
}

/// Connect to `target` and sign in as `user_data`; asserts `signin_success`.
fn signed_in(target: &impl Target, user_data: &str) -> Ws {
    let (mut ws, sid) = connect(target);
    let v = signin(&mut ws, &sid, user_data);
    assert_eq!(v["event"], "pusher:signin_success", "{v}");
    assert_eq!(v["data"]["user_data"], user_data);
    ws
}

/// The decoded `events` of the next frame, which must be a watchlist event.
fn watch_event(ws: &mut Ws) -> Value {
    let v = next(ws);
    assert_eq!(v["event"], "pusher_internal:watchlist_events", "{v}");
    assert!(v["data"].is_string(), "data is a JSON string: {v}");
    data(&v)["events"].clone()
}

fn online(ids: &[&str]) -> Value {
    json!([{"name":"online","user_ids":ids}])
}

fn offline(ids: &[&str]) -> Value {
    json!([{"name":"offline","user_ids":ids}])
}

#[test]
fn signin_and_server_to_user_channel_across_shards() {
    let server = Server::per_shard(2, |_| {});
    let user = owned_by(1, "u");
    let ch = format!("#server-to-user-{user}");
    let (mut a, a_id) = connect(&server.shard(0));
    let data_a = ud(&user);
    let v = signin(&mut a, &a_id, &data_a);
    assert_eq!(
        v,
        json!({"event":"pusher:signin_success","data":{"user_data":data_a}})
    );
    let mut b = signed_in(&server.shard(1), &ud(&user));
    for ws in [&mut a, &mut b] {
        let v = subscribe(ws, &ch, "");
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
        assert_eq!(v["channel"], ch);
    }
    // sendToUser: the npm SDK publishes to the user's channel.
    let r = publish(
        &server.shard(0),
        &json!({"name":"note","data":"hi","channels":[ch]}),
    );
    assert_eq!(r.status, 200);
    for ws in [&mut a, &mut b] {
        let v = next(ws);
        assert_eq!(
            (v["event"].as_str(), v["data"].as_str()),
            (Some("note"), Some("hi"))
        );
    }
    // Not signed in, signed in as someone else, or another '#' name: refused, sockets stay.
    let (mut anon, _) = connect(&server.shard(0));
    let v = subscribe(&mut anon, &ch, "");
    assert_eq!(v["event"], "pusher:subscription_error", "{v}");
    assert_eq!(v["data"]["status"], 4009);
    let mut other = signed_in(&server.shard(1), &ud("someone-else"));
    let v = subscribe(&mut other, &ch, "");
    assert_eq!(v["data"]["status"], 4009, "{v}");
    let v = subscribe(&mut other, "#server-to-user-", "");
    assert_eq!(v["data"]["status"], 400, "{v}");
    let v = subscribe(&mut other, "#private-x", "");
    assert_eq!(v["data"]["status"], 400, "{v}");
    let v = subscribe(&mut other, "#server-to-user-someone-else", "");
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
    // Client events are not allowed on a server-to-user channel.
    send(&mut a, json!({"event":"client-x","channel":ch,"data":{}}));
    assert_eq!(next(&mut a)["data"]["code"], 4301);
    assert_silent(&mut b);
    for ws in [&mut anon, &mut other] {
        send(ws, json!({"event":"pusher:ping","data":{}}));
        assert_eq!(next(ws)["event"], "pusher:pong");
    }
}

/// Makes the `auth` of a signin from the socket id and the user data.
type Signer = dyn Fn(&str, &str) -> String;

#[test]
fn bad_signins_close_4009_and_disturb_no_one() {
    let server = Server::per_shard(2, |_| {});
    let mut bystander = signed_in(&server.shard(0), &ud("calm"));
    let cases: Vec<(String, Box<Signer>)> = vec![
        (ud("x"), Box::new(|_, _| "app-key:00".into())),
        (ud("x"), Box::new(|sid, d| user_auth(&format!("{sid}9"), d))),
        (r#"{"user_info":{}}"#.into(), Box::new(user_auth)),
        (r#"{"id":""}"#.into(), Box::new(user_auth)),
        (r#"{"id":7}"#.into(), Box::new(user_auth)),
        ("not json".into(), Box::new(user_auth)),
        (r#"{"id":"x","watchlist":"y"}"#.into(), Box::new(user_auth)),
    ];
    for (user_data, auth) in cases {
        let (mut ws, sid) = connect(&server.shard(1));
        let auth = auth(&sid, &user_data);
        send(
            &mut ws,
            json!({"event":"pusher:signin","data":{"auth":auth,"user_data":user_data}}),
        );
        let v = next(&mut ws);
        assert_eq!(v["event"], "pusher:error", "{user_data}: {v}");
        assert_eq!(v["data"]["code"], 4009);
        assert_eq!(close_code(&mut ws), Some(4009), "{user_data}");
    }
    // A signin without data at all, and one with data as a string.
    for frame in [
        json!({"event":"pusher:signin"}),
        json!({"event":"pusher:signin","data":"{\"auth\":1}"}),
    ] {
        let (mut ws, _) = connect(&server.shard(0));
        send(&mut ws, frame);
        assert_eq!(next(&mut ws)["data"]["code"], 4009);
        assert_eq!(close_code(&mut ws), Some(4009));
    }
    send(&mut bystander, json!({"event":"pusher:ping","data":{}}));
    assert_eq!(next(&mut bystander)["event"], "pusher:pong");
}

#[test]
fn one_user_per_connection() {
    let server = Server::per_shard(2, |_| {});
    let (mut ws, sid) = connect(&server.shard(0));
    assert_eq!(
        signin(&mut ws, &sid, &ud("one"))["event"],
        "pusher:signin_success"
    );
    // The same user again: answered again.
    assert_eq!(
        signin(&mut ws, &sid, &ud("one"))["event"],
        "pusher:signin_success"
    );
    let v = signin(&mut ws, &sid, &ud("two"));
    assert_eq!(v["event"], "pusher:error");
    assert_eq!(v["data"]["code"], 4009);
    assert!(v["data"]["message"]
        .as_str()
        .unwrap()
        .contains("already signed in"));
    // Still open, still user "one": its channel, not "two"'s.
    let v = subscribe(&mut ws, "#server-to-user-two", "");
    assert_eq!(v["event"], "pusher:subscription_error");
    let v = subscribe(&mut ws, "#server-to-user-one", "");
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded");
    // Terminating "one" closes it once (it was registered once).
    let r = post_api(
        &server.shard(1),
        "users/one/terminate_connections",
        &json!({}),
    );
    assert_eq!((r.status, r.json()), (200, json!({})));
    let v = next(&mut ws);
    assert_eq!(v["data"]["code"], 4009);
    assert_eq!(close_code(&mut ws), Some(4009));
}

#[test]
fn terminate_closes_the_users_connections_on_every_shard() {
    let server = Server::per_shard(2, |_| {});
    let user = owned_by(1, "t");
    let mut t0 = signed_in(&server.shard(0), &ud(&user));
    let mut t1 = signed_in(&server.shard(1), &ud(&user));
    let mut t0b = signed_in(&server.shard(0), &ud(&user));
    let mut other = signed_in(&server.shard(0), &ud("other"));
    let (mut anon, _) = connect(&server.shard(1));
    subscribe(&mut anon, "room", "");
    subscribe(&mut other, "room", "");
    let path = format!("users/{user}/terminate_connections");
    let r = post_api(&server.shard(0), &path, &json!({}));
    assert_eq!((r.status, r.json()), (200, json!({})));
    for ws in [&mut t0, &mut t1, &mut t0b] {
        let v = next(ws);
        assert_eq!(
            v,
            json!({"event":"pusher:error",
                   "data":{"message":"You got disconnected by the app.","code":4009}})
        );
        assert_eq!(close_code(ws), Some(4009));
    }
    // The others stay, and a second terminate finds nobody.
    let r = post_api(&server.shard(1), &path, &json!({}));
    assert_eq!(r.status, 200);
    publish(
        &server.shard(1),
        &json!({"name":"e","data":"d","channel":"room"}),
    );
    assert_eq!(next(&mut other)["event"], "e");
    assert_eq!(next(&mut anon)["event"], "e");
    // The PyPI SDK's path (no `/apps/{id}`, the app named by auth_key) works too.
    let mut py = signed_in(&server.shard(1), &ud(&user));
    let r = post_signed(&server.shard(0), &format!("/{path}"), &json!({}));
    assert_eq!((r.status, r.json()), (200, json!({})));
    assert_eq!(next(&mut py)["data"]["code"], 4009);
    assert_eq!(close_code(&mut py), Some(4009));
    let r = request(
        &server.shard(0),
        "POST",
        &format!("/{path}?auth_key=nope"),
        &[],
        b"{}",
    );
    assert_eq!(r.status, 401);
    // Invalid user ids are a 400.
    let long = "x".repeat(129);
    let r = post_api(
        &server.shard(0),
        &format!("users/{long}/terminate_connections"),
        &json!({}),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn watchlist_online_and_offline_across_shards() {
    let server = Server::per_shard(2, |_| {});
    let (early, late, never) = (owned_by(0, "e"), owned_by(1, "l"), owned_by(1, "n"));
    let _early_ws = signed_in(&server.shard(1), &ud(&early));
    let mut w = signed_in(
        &server.shard(0),
        &ud_watching("watcher", &[&early, &late, &never]),
    );
    // The users already online, told at signin (from each owner shard).
    assert_eq!(watch_event(&mut w), online(&[&early]));
    assert_silent(&mut w);
    let mut l1 = signed_in(&server.shard(1), &ud(&late));
    assert_eq!(watch_event(&mut w), online(&[&late]));
    let l2 = signed_in(&server.shard(0), &ud(&late));
    assert_silent(&mut w);
    // Another watcher of the same user on the other shard hears it is online now.
    let mut v = signed_in(&server.shard(1), &ud_watching("v", &[&late]));
    assert_eq!(watch_event(&mut v), online(&[&late]));
    drop(l2);
    assert_silent(&mut w);
    l1.close(None).unwrap();
    for ws in [&mut w, &mut v] {
        assert_eq!(watch_event(ws), offline(&[&late]));
    }
    // A user watched by a closed watcher: nothing left to tell.
    drop(v);
    let again = signed_in(&server.shard(0), &ud(&late));
    assert_eq!(watch_event(&mut w), online(&[&late]));
    drop(again);
    assert_eq!(watch_event(&mut w), offline(&[&late]));
}

#[test]
fn watchlist_over_100_ids_keeps_the_first_100() {
    let server = Server::per_shard(2, |_| {});
    let ids: Vec<String> = (0..101).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (mut w, sid) = connect(&server.shard(0));
    let v = signin(&mut w, &sid, &ud_watching("big", &refs));
    assert_eq!(v["event"], "pusher:error", "{v}");
    assert_eq!(v["data"]["code"], 4302);
    assert_eq!(next(&mut w)["event"], "pusher:signin_success");
    let _last = signed_in(&server.shard(1), &ud("w100"));
    assert_silent(&mut w);
    let _kept = signed_in(&server.shard(1), &ud("w99"));
    assert_eq!(watch_event(&mut w), online(&["w99"]));
}

#[test]
fn client_events_are_off_unless_enabled() {
    let server = Server::per_shard(2, |_| {});
    let (mut ws, sid) = connect(&server.shard(0));
    let ch = "private-c";
    assert_eq!(
        subscribe(&mut ws, ch, &private_auth(&sid, ch))["event"],
        "pusher_internal:subscription_succeeded"
    );
    for _ in 0..12 {
        send(&mut ws, json!({"event":"client-x","channel":ch,"data":{}}));
        assert_eq!(
            next(&mut ws),
            json!({"event":"pusher:error","data":{"code":4301,
                   "message":"The app does not have client messaging enabled."}})
        );
    }
    // No close, and no rate-limit close after 12 of them either.
    send(&mut ws, json!({"event":"pusher:ping","data":{}}));
    assert_eq!(next(&mut ws)["event"], "pusher:pong");
}

#[test]
fn max_presence_members_per_app() {
    let server = Server::per_shard(2, |c: &mut Config| {
        let mut app = PusherApp::new("app-id", KEY, SECRET);
        app.max_presence_members = 2;
        c.pusher_apps = vec![app];
    });
    let ch = "presence-small";
    let mut socks = Vec::new();
    for (i, user) in ["a", "b", "a"].iter().enumerate() {
        let (mut ws, sid) = connect(&server.shard(i % 2));
        let v = join(&mut ws, &sid, ch, &json!({"user_id": user}).to_string());
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
        socks.push(ws);
    }
    let (mut c, sid) = connect(&server.shard(1));
    let v = join(&mut c, &sid, ch, r#"{"user_id":"c"}"#);
    assert_eq!(v["event"], "pusher:subscription_error");
    assert_eq!(v["data"]["status"], 4100);
    assert_eq!(v["data"]["type"], "LimitReached");
}

#[test]
fn silent_sockets_are_pinged_then_closed_4201() {
    let server = Server::per_shard(2, |c: &mut Config| {
        c.pusher_activity_timeout = Duration::from_secs(1);
        c.pusher_pong_timeout = Duration::from_secs(1);
    });
    let start = Instant::now();
    let mut ws_a = ws_connect(&server.shard(0), APP_PATH);
    let mut ws_b = ws_connect(&server.shard(1), APP_PATH);
    for ws in [&mut ws_a, &mut ws_b] {
        set_timeout(ws, Duration::from_secs(5));
        let v = next(ws);
        assert_eq!(v["event"], "pusher:connection_established");
        assert_eq!(data(&v)["activity_timeout"], 1);
    }
    // Both get a ping after at least a second of silence.
    for ws in [&mut ws_a, &mut ws_b] {
        let v = next(ws);
        assert_eq!(v, json!({"event":"pusher:ping","data":"{}"}));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    // b answers as pusher-js does and stays; a does not and is closed.
    send(&mut ws_b, json!({"event":"pusher:pong","data":{}}));
    let v = next(&mut ws_a);
    assert_eq!(
        v,
        json!({"event":"pusher:error",
               "data":{"code":4201,"message":"Pong reply not received in time"}})
    );
    assert_eq!(close_code(&mut ws_a), Some(4201));
    let v = next(&mut ws_b);
    assert_eq!(
        v["event"], "pusher:ping",
        "b was pinged again, not closed: {v}"
    );
    send(&mut ws_b, json!({"event":"pusher:ping","data":{}}));
    assert_eq!(next(&mut ws_b)["event"], "pusher:pong");
}
