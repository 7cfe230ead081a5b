//! Black-box tests of Pushi's REST API on an in-process Herald in Pushi mode: sessions,
//! `POST /events` delivered as Pushi writes it, stored events, offline subscriptions and
//! `personal-` aliases with their stored events, web hooks POSTed to a real receiver,
//! unsupported routes, the route rule beside Channelstream, and store busy → 503.

mod common;

use common::pushi::*;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

#[test]
fn sessions_are_needed_and_end_at_logout() {
    let (server, _dir) = server("sessions");
    let r = request(
        &server,
        "GET",
        &format!("/login?app_id={APP_ID}&app_key={KEY}&app_secret=nope"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "Pushi: no app with those credentials");
    assert_eq!(r.json()["result"], "error");
    let r = rest(&server, "GET", "/events", "x", &Value::Null);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], 403);
    let sid = login(&server);
    assert_eq!(sid.len(), 64);
    assert_eq!(
        rest(&server, "GET", "/events", &sid, &Value::Null).status,
        200
    );
    // Header and cookie carry the session too.
    let h = request(
        &server,
        "GET",
        "/subscriptions",
        &[("X-Session-Id", &sid)],
        b"",
    );
    assert_eq!(h.status, 200, "{}", h.text());
    let c = request(
        &server,
        "GET",
        "/webs",
        &[("Cookie", &format!("a=b; sid={sid}"))],
        b"",
    );
    assert_eq!(c.status, 200, "{}", c.text());
    assert_eq!(
        rest(&server, "GET", "/logout", &sid, &Value::Null).status,
        200
    );
    assert_eq!(
        rest(&server, "GET", "/events", &sid, &Value::Null).status,
        403
    );
}

#[test]
fn post_events_delivers_pushis_message_and_stores_it() {
    let (server, _dir) = server("events");
    let (mut a, a_id) = connect(&server);
    subscribe(&mut a, &a_id, "global", None);
    subscribe(&mut a, &a_id, "other", None);
    let sid = login(&server);
    let r = rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": {"n": 1}, "event": "message", "channel": "global", "extra": "x"}),
    );
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"result": "success"}"#.to_owned())
    );
    let t = text(&mut a);
    let v: Value = serde_json::from_str(&t).unwrap();
    let mid = v["mid"].as_str().unwrap();
    assert!(t.starts_with(r#"{"data": "{\"n\": 1}", "event": "message", "channel": "global", "extra": "x", "mid": ""#), "{t}");
    assert!(v["timestamp"].as_f64().unwrap() > 1.7e9);

    // A list of channels, not persisted: one message per channel, no mid.
    let r = rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": "hello", "channel": ["global", "other"], "persist": false}),
    );
    assert_eq!(r.status, 200);
    let got: Vec<Value> = (0..2).map(|_| next(&mut a)).collect();
    let chans: Vec<&str> = got.iter().map(|m| m["channel"].as_str().unwrap()).collect();
    assert_eq!(chans, ["global", "other"]);
    assert!(got
        .iter()
        .all(|m| m.get("mid").is_none() && m["event"] == "message"));

    let list = rest(&server, "GET", "/events?count=5", &sid, &Value::Null).json();
    let list = &list["events"]; // Pushi's {"events": [...]}
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["mid"], mid);
    assert_eq!(list[0]["data"]["extra"], "x");
    // Bad bodies are 400s, not crashes.
    assert_eq!(
        rest(&server, "POST", "/events", &sid, &json!({"event": "e"})).status,
        400
    );
    assert_eq!(
        rest(&server, "POST", "/events", &sid, &json!([1])).status,
        400
    );
    assert_eq!(
        rest(
            &server,
            "POST",
            "/events",
            &sid,
            &json!({"data": 1, "channel": 5})
        )
        .status,
        400
    );
}

#[test]
fn personal_channels_alias_stored_subscriptions_with_their_events() {
    let (server, _dir) = server("personal");
    let sid = login(&server);
    let r = rest(
        &server,
        "POST",
        "/subscriptions",
        &sid,
        &json!({"user_id": "u9", "event": "news"}),
    );
    assert_eq!(r.json(), json!({"user_id": "u9", "event": "news"}));
    let r = rest(
        &server,
        "POST",
        &format!("/apps/{APP_ID}/subscribe"),
        &sid,
        &json!({"user_id": "u9", "event": "sport"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        rest(
            &server,
            "POST",
            "/apps/another/subscribe",
            &sid,
            &json!({"user_id": "u9", "event": "x"})
        )
        .status,
        403
    );
    let subs = rest(
        &server,
        "GET",
        "/subscriptions?user_id=u9",
        &sid,
        &Value::Null,
    )
    .json();
    assert_eq!(
        subs,
        json!({"subscriptions": [{"user_id": "u9", "event": "news"}, {"user_id": "u9", "event": "sport"}]})
    );
    // Offline: events for the user's channels are stored in the user's inbox.
    for (ch, d) in [("news", "n1"), ("weather", "w1"), ("sport", "s1")] {
        let r = rest(
            &server,
            "POST",
            "/events",
            &sid,
            &json!({"data": d, "channel": ch}),
        );
        assert_eq!(r.status, 200);
    }
    let (mut c, c_id) = connect(&server);
    let ok = subscribe(&mut c, &c_id, "personal-u9", None);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let info = inner(&ok, "data");
    assert_eq!(info["name"], "personal-u9");
    assert_eq!(info["alias"], json!(["news", "sport"]));
    let evs: Vec<&Value> = info["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["data"])
        .collect();
    assert_eq!(evs, [&json!("s1"), &json!("n1")]);
    // Live events on an alias reach the personal subscriber.
    rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": "n2", "channel": "news", "persist": false}),
    );
    assert_eq!(next(&mut c)["data"], "n2");
    // pusher:latest on the personal channel answers as Pushi's get_channel: with its aliases.
    send(
        &mut c,
        json!({"event": "pusher:latest", "data": {"channel": "personal-u9", "count": 1}}),
    );
    let l = next(&mut c);
    assert_eq!(l["event"], "pusher_internal:latest", "{l}");
    let d = inner(&l, "data");
    assert_eq!(
        (&d["alias"], &d["members"]),
        (&json!(["news", "sport"]), &json!({}))
    );
    // Unsubscribing the personal channel leaves its aliases too.
    send(
        &mut c,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "personal-u9"}}),
    );
    let un = next(&mut c);
    assert_eq!(un["event"], "pusher_internal:unsubscription_succeeded");
    assert_eq!(inner(&un, "data")["alias"], json!(["news", "sport"]));
    rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": "n3", "channel": "news", "persist": false}),
    );
    assert_silent(&mut c);
    let r = rest(
        &server,
        "DELETE",
        "/subscriptions/u9/news",
        &sid,
        &Value::Null,
    );
    assert_eq!(r.status, 200);
    let subs = rest(&server, "GET", "/subscriptions", &sid, &Value::Null).json();
    assert_eq!(
        subs,
        json!({"subscriptions": [{"user_id": "u9", "event": "sport"}]})
    );
    // A personal channel needs its signature like any private one.
    send(
        &mut c,
        json!({"event": "pusher:subscribe", "data": {"channel": "personal-u1", "auth": auth("x", "personal-u1")}}),
    );
    assert_eq!(next(&mut c)["data"]["message"], "Invalid signature");
}

#[test]
fn webs_post_each_event_to_subscribed_urls() {
    let (server, _dir) = server("webs");
    let receiver = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", receiver.server_addr().to_ip().unwrap());
    let sid = login(&server);
    let r = rest(
        &server,
        "POST",
        "/webs",
        &sid,
        &json!({"url": url, "event": "orders"}),
    );
    assert_eq!(r.json(), json!({"url": url, "event": "orders"}));
    assert_eq!(
        rest(&server, "GET", "/webs", &sid, &Value::Null).json(),
        json!({"subscriptions": [{"url": url, "event": "orders"}]})
    );
    rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": {"id": 7}, "channel": "orders"}),
    );
    assert_eq!(
        hook(&receiver),
        ("/hook".into(), json!("orders"), json!("{\"id\": 7}"))
    );
    let enc: String = url.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = rest(
        &server,
        "DELETE",
        &format!("/webs/{enc}"),
        &sid,
        &Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        rest(&server, "GET", "/webs", &sid, &Value::Null).json(),
        json!({"subscriptions": []})
    );
    rest(
        &server,
        "POST",
        "/events",
        &sid,
        &json!({"data": 1, "channel": "orders"}),
    );
    assert!(receiver
        .recv_timeout(Duration::from_millis(500))
        .unwrap()
        .is_none());
}

/// The next web hook POST's `(path, channel, data)`, answered 200.
fn hook(receiver: &tiny_http::Server) -> (String, Value, Value) {
    let mut req = receiver
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("a web hook POST");
    let mut body = String::new();
    req.as_reader().read_to_string(&mut body).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let path = req.url().to_owned();
    req.respond(tiny_http::Response::empty(200)).unwrap();
    (path, v["channel"].clone(), v["data"].clone())
}

#[test]
fn webs_on_a_personal_channel_get_the_events_of_its_users_subscriptions() {
    let (server, _dir) = server("webs-personal");
    let receiver = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", receiver.server_addr().to_ip().unwrap());
    let sid = login(&server);
    let post = |path: &str, body: Value| {
        let r = rest(&server, "POST", path, &sid, &body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    };
    // /joe hears joe's personal channel; /both also hears "orders" itself: one POST each.
    post(
        "/webs",
        json!({"url": format!("{base}/joe"), "event": "personal-joe"}),
    );
    post(
        "/webs",
        json!({"url": format!("{base}/both"), "event": "personal-joe"}),
    );
    post(
        "/webs",
        json!({"url": format!("{base}/both"), "event": "orders"}),
    );
    post(
        "/subscriptions",
        json!({"user_id": "joe", "event": "orders"}),
    );
    post("/events", json!({"data": "o1", "channel": "orders"}));
    let mut got = vec![hook(&receiver), hook(&receiver)];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("/both".into(), json!("orders"), json!("o1")),
            ("/joe".into(), json!("orders"), json!("o1")),
        ]
    );
    assert!(
        receiver
            .recv_timeout(Duration::from_millis(300))
            .unwrap()
            .is_none(),
        "each URL once per event"
    );
    // Once joe unsubscribes, "orders" reaches only the URL subscribed to it.
    let r = rest(
        &server,
        "DELETE",
        "/subscriptions/joe/orders",
        &sid,
        &Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    post("/events", json!({"data": "o2", "channel": "orders"}));
    assert_eq!(
        hook(&receiver),
        ("/both".into(), json!("orders"), json!("o2"))
    );
    assert!(receiver
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_none());
}

#[test]
fn unsupported_routes_apps_and_the_route_rule() {
    let (server, _dir) = server("routes");
    for p in [
        "/apns",
        "/smtps",
        "/web_pushes",
        "/vapid_key",
        "/messaging/send",
    ] {
        let r = request(&server, "GET", p, &[], b"");
        assert_eq!(r.status, 501, "{p}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Not supported"));
    }
    assert_eq!(
        request(&server, "GET", "/health", &[], b"").json(),
        json!({"status": "ok", "service": "pushi", "version": "0.6.10"})
    );
    let sid = login(&server);
    let apps = rest(&server, "GET", "/apps", &sid, &Value::Null).json();
    assert_eq!(apps[0]["key"], KEY);
    let r = rest(&server, "POST", "/apps", &sid, &json!({"name": "x"}));
    assert_eq!(r.status, 403, "no admin secret configured: {}", r.text());
    // Channelstream keeps its routes in Pushi mode.
    let info = api(&server, "POST", "/info", &json!({"info": {"channels": []}}));
    assert!([200, 422].contains(&info.status), "{}", info.text());
    assert!(
        info.json().get("code").is_none(),
        "Channelstream's answer: {}",
        info.text()
    );
    // Pusher keeps /apps/{id}/events.
    let r = request(
        &server,
        "POST",
        &format!("/apps/{APP_ID}/events"),
        &[],
        b"{}",
    );
    assert_ne!(r.status, 404);
    assert!(r.text().contains("auth") || r.status == 401, "{}", r.text());
}

#[test]
fn a_full_store_queue_is_503_and_nothing_else_is_disturbed() {
    let dir = DataDir(data_dir("busy"));
    let d = dir.0.clone();
    let server = Server::with(move |c| {
        pushi_config(c, &d);
        c.pushi.store_queue = 1;
        c.pushi.sync_full = true;
    });
    let sid = login(&server);
    let (mut a, a_id) = connect(&server);
    subscribe(&mut a, &a_id, "c", None);
    // Pipeline many persisted publishes on several connections at once.
    let body = r#"{"data": "x", "channel": "c"}"#;
    let one = format!(
        "POST /events?sid={sid} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (addr, one) = (server.addr, one.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(one.repeat(200).as_bytes()).unwrap();
                let mut buf = Vec::new();
                let mut codes = Vec::new();
                for _ in 0..200 {
                    let r = read_response(&mut s, &mut buf, false).expect("an answer");
                    if r.status == 503 {
                        assert_eq!(r.json()["error"], "Store busy, try again");
                        assert_eq!(r.header("Retry-After"), Some("1"));
                    }
                    codes.push(r.status);
                }
                codes
            })
        })
        .collect();
    let codes: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let busy = codes.iter().filter(|c| **c == 503).count();
    let ok = codes.iter().filter(|c| **c == 200).count();
    assert_eq!(busy + ok, 800, "{codes:?}");
    assert!(busy > 0, "no 503 with a one-slot queue");
    assert!(ok > 0);
    // Exactly the acknowledged events were delivered (a refused one is not sent at all).
    let mut seen = 0;
    set_timeout(&a, Duration::from_secs(5));
    while seen < ok {
        assert_eq!(next(&mut a)["channel"], "c");
        seen += 1;
    }
    assert_silent(&mut a);
    assert_eq!(
        rest(&server, "GET", "/health", &sid, &Value::Null).status,
        200
    );
}

#[test]
fn sockets_are_gathered_from_every_shard() {
    let dir = DataDir(data_dir("sockets"));
    let d = dir.0.clone();
    let server = Server::per_shard(2, move |c| pushi_config(c, &d));
    let (mut a, a_id) = connect(&server.shard(0));
    let (mut b, b_id) = connect(&server.shard(1));
    subscribe(&mut a, &a_id, "global", None);
    subscribe(&mut b, &b_id, "private-b", None);
    let sid = login(&server.shard(1));
    let r = rest(&server.shard(0), "GET", "/sockets", &sid, &Value::Null);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v[&a_id], json!(["global"]));
    assert_eq!(v[&b_id], json!(["private-b"]));
    assert_eq!(v.as_object().unwrap().len(), 2);
    // The other shards' instances check the same sids (no shared table).
    let r = rest(&server.shard(1), "GET", "/sockets", &sid, &Value::Null);
    assert_eq!(r.json(), v);
}
