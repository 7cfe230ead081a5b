//! Channelstream across cluster nodes, against a real `redis-server` and three `herald`
//! processes (`common::cluster`): a connection made on one node is attached (websocket and
//! long poll) on another, membership, user state and presence commands work whichever node
//! they land on, a killed node's connections leave the model within the bound, a killed
//! model owner is replaced, and with Redis gone every model command answers 503 at once.
//! Without `redis-server` each test prints a skip line and passes.

mod common;
use common::cluster::*;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn conn_id(v: &Value) -> String {
    v["conn_id"].as_str().expect("conn_id").to_owned()
}

/// The next item of type `kind`, skipping others (heartbeats are skipped by `cs_next_item`).
fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = cs_next_item(ws).unwrap_or_else(|| panic!("no {kind} item"));
        if v["type"] == kind {
            return v;
        }
    }
}

#[test]
fn connect_on_one_node_attach_on_another_gets_messages() {
    let Some((_redis, nodes)) = cluster(3) else {
        return;
    };
    let id = cs_connect(&nodes[0], "alice", &["room"]);
    let mut ws = cs_ws(&nodes[1], &id);
    cs_publish(&nodes[2], "room", &json!({"text": "via n2"}));
    let got = cs_next_item(&mut ws).expect("the message on n1");
    assert_eq!(got["message"]["text"], "via n2", "{got}");
    assert_eq!(got["channel"], "room");

    // Long poll on a third node, for a connection made on the first.
    let lp = cs_connect(&nodes[0], "bob", &["poll"]);
    let target = nodes[2].addr;
    let poll = std::thread::spawn(move || {
        struct At(std::net::SocketAddr);
        impl Target for At {
            fn addr(&self) -> std::net::SocketAddr {
                self.0
            }
        }
        request(
            &At(target),
            "GET",
            &format!("/listen?conn_id={lp}"),
            &[],
            b"",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    cs_publish(&nodes[1], "poll", &json!({"text": "polled"}));
    let r = poll.join().expect("poll thread");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("polled"), "{}", r.text());

    // An id no node made is refused as on one node: the socket is closed.
    let mut bad = cs_ws(&nodes[2], &uuid::Uuid::new_v4().to_string());
    assert!(ws_next_text(&mut bad).is_none());
}

#[test]
fn membership_user_state_and_presence_span_the_nodes() {
    let Some((_redis, nodes)) = cluster(3) else {
        return;
    };
    let cfg = json!({"room": {"notify_presence": true, "notify_state": true}});
    let a = cs_connect_with(
        &nodes[0],
        &json!({"username": "alice", "channels": ["room"], "channel_configs": cfg,
                "state_public_keys": ["status"]}),
    );
    let mut wa = cs_ws(&nodes[1], &conn_id(&a));
    // Bob joins through a third node: alice, on another, hears it.
    let b = cs_connect_with(
        &nodes[2],
        &json!({"username": "bob", "channels": ["room"], "fresh_user_state": {"s": 1},
                "state_public_keys": ["s"]}),
    );
    let users = &b["channels_info"]["channels"]["room"]["users"];
    assert_eq!(users, &json!(["alice", "bob"]), "{b}");
    let joined = next_of_type(&mut wa, "presence");
    assert_eq!(joined["user"], "bob");
    assert_eq!(joined["message"], json!({"action": "joined"}));
    assert_eq!(joined["state"], json!({"s": 1}));

    // /info on any node sees both users and both connections.
    for n in &nodes {
        let room = &cs_info(n, &["room"])["room"];
        assert_eq!(room["total_connections"], 2, "{room}");
        assert_eq!(room["users"].as_array().map(Vec::len), Some(2), "{room}");
    }

    // /user_state for alice (connected on n0, attached on n1) through n2.
    let r = api(
        &nodes[2],
        "POST",
        "/user_state",
        &json!({"user": "alice", "user_state": {"status": "busy"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["changed_state"],
        json!([{"key": "status", "value": "busy"}])
    );
    let ev = next_of_type(&mut wa, "user_state_change");
    assert_eq!(ev["user"], "alice");

    // /subscribe and /unsubscribe of bob's connection through n1.
    let r = api(
        &nodes[1],
        "POST",
        "/subscribe",
        &json!({"conn_id": conn_id(&b), "channels": ["extra"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["channels"], json!(["extra", "room"]));
    let r = api(
        &nodes[0],
        "POST",
        "/unsubscribe",
        &json!({"conn_id": conn_id(&b), "channels": ["room"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let parted = next_of_type(&mut wa, "presence");
    assert_eq!(parted["user"], "bob");
    assert_eq!(parted["message"], json!({"action": "parted"}));

    // /disconnect of alice's connection through n2 closes it wherever it is attached.
    let r = api(
        &nodes[2],
        "POST",
        "/disconnect",
        &json!({"conn_id": conn_id(&a)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Marked for the next GC pass (1 s), as on one node.
    let gone = wait_until(Duration::from_secs(5), || {
        cs_info(&nodes[0], &["room"])["room"]["total_connections"] == 0
    });
    assert!(gone, "alice's connection stayed");
}

#[test]
fn a_killed_node_s_connections_leave_within_the_bound() {
    let Some((redis, mut nodes)) = cluster(3) else {
        return;
    };
    let owner = cs_owner(&redis);
    let victim = (owner + 1) % 3;
    let other = (owner + 2) % 3;
    let cfg = json!({"k": {"notify_presence": true}});
    let o = cs_connect_with(
        &nodes[owner],
        &json!({"username": "observer", "channels": ["k"], "channel_configs": cfg}),
    );
    let mut wo = cs_ws(&nodes[other], &conn_id(&o));
    let id = cs_connect(&nodes[other], "doomed", &["k"]);
    let mut wv = cs_ws(&nodes[victim], &id);
    cs_publish(&nodes[owner], "k", &json!({"text": "attached?"}));
    let got = next_of_type(&mut wv, "message");
    assert_eq!(got["message"]["text"], "attached?");
    assert_eq!(cs_info(&nodes[other], &["k"])["k"]["total_connections"], 2);

    let killed = Instant::now();
    nodes[victim].kill9();
    // Liveness key (10 s) + the owner's sweep (5 s) + the connection GC (15 s idle).
    let gone = wait_until(Duration::from_secs(45), || {
        cs_info(&nodes[other], &["k"])["k"]["users"] == json!(["observer"])
    });
    assert!(gone, "the dead node's connection stayed");
    let took = killed.elapsed();
    assert!(took > Duration::from_secs(5), "gone too early: {took:?}");
    let joined = next_of_type(&mut wo, "presence");
    assert_eq!(joined["message"], json!({"action": "joined"}));
    let parted = next_of_type(&mut wo, "presence");
    assert_eq!(parted["user"], "doomed");
    assert_eq!(parted["message"], json!({"action": "parted"}));
}

#[test]
fn a_killed_owner_is_replaced_and_its_sockets_closed() {
    let Some((redis, mut nodes)) = cluster(3) else {
        return;
    };
    let owner = cs_owner(&redis);
    let rest: Vec<usize> = (0..3).filter(|&i| i != owner).collect();
    let id = cs_connect(&nodes[rest[0]], "carol", &["r"]);
    let mut ws = cs_ws(&nodes[rest[1]], &id);
    cs_publish(&nodes[rest[0]], "r", &json!({"n": 1}));
    assert_eq!(next_of_type(&mut ws, "message")["message"]["n"], 1);
    nodes[owner].kill9();

    // Within the lease (10 s) plus a refresh (2 s), a surviving node owns the model.
    let new_owner = wait_until(Duration::from_secs(20), || {
        let v = redis.cli(&["GET", "herald:0:cs:owner"]);
        !v.is_empty() && !v.starts_with(&format!("n{owner}."))
    });
    assert!(new_owner, "no new owner");
    // The socket attached to the old owner's connection is closed (1012), not left mute.
    set_timeout(&ws, Duration::from_secs(15));
    let mut closed = None;
    while let Ok(m) = ws.read() {
        if let tungstenite::Message::Close(f) = m {
            closed = f.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(closed, Some(1012));
    let ok = wait_until(Duration::from_secs(10), || {
        api(
            &nodes[rest[1]],
            "POST",
            "/connect",
            &json!({"username": "dave"}),
        )
        .status
            == 200
    });
    assert!(ok, "/connect never worked again");
}

#[test]
fn redis_down_answers_503_at_once() {
    let Some((mut redis, nodes)) = cluster(2) else {
        return;
    };
    let owner = cs_owner(&redis);
    let id = cs_connect(&nodes[0], "erin", &["d"]);
    redis.kill();
    nodes[0].wait_link(false);
    nodes[1].wait_link(false);
    for n in [owner, 1 - owner] {
        let started = Instant::now();
        let r = api(&nodes[n], "POST", "/connect", &json!({"username": "x"}));
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
        let r = api(&nodes[n], "POST", "/info", &json!({}));
        assert_eq!(r.status, 503);
        assert!(started.elapsed() < Duration::from_secs(2));
        // A websocket for a connection cannot be attached: closed 1013 (try again).
        let mut ws = cs_ws(&nodes[n], &id);
        let mut code = None;
        while let Ok(m) = ws.read() {
            if let tungstenite::Message::Close(f) = m {
                code = f.map(|f| u16::from(f.code));
                break;
            }
        }
        assert_eq!(code, Some(1013));
    }
    let _redis = Redis::on(redis.port);
    nodes[0].wait_link(true);
    nodes[1].wait_link(true);
    let ok = wait_until(Duration::from_secs(10), || {
        api(&nodes[1], "POST", "/connect", &json!({"username": "y"})).status == 200
    });
    assert!(ok, "/connect never worked again");
}
