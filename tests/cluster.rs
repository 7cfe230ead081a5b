//! Cluster mode against a real `redis-server` (Debian's, found in PATH; `scripts/test.sh`
//! installs it): the test starts Redis on a free loopback port (`--save "" --appendonly no`)
//! and three `herald` processes (`--cluster redis://127.0.0.1:PORT --node-id nN`, two shards
//! each) pointing at it, then checks from the outside, as clients and with `redis-cli`:
//! cross-node fan-out for Pusher (exactly once, in order per publishing node, `socket_id`
//! exclusion, client events, `#server-to-user-` channels and `terminate_connections`), Redis
//! subscriptions only while a node has local subscribers, garbage on Herald's topics,
//! Channelstream `/message` across nodes, Redis killed and restarted (503 + `Retry-After`
//! while down, local traffic goes on, the nodes resubscribe), and a node killed with
//! SIGKILL (the others keep serving each other). Without `redis-server` each test prints a
//! skip line and passes.

mod common;
use common::cluster::*;
use common::pusher::{self as p, connect, data, next, send, subscribe};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SEQ_TOPIC: &str = "herald:0:p:app-id:seq";

/// A public subscriber that saw `subscription_succeeded`.
fn subscriber(node: &Node, channel: &str) -> (Ws, String) {
    let (mut ws, sid) = connect(node);
    let v = subscribe(&mut ws, channel, "");
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
    (ws, sid)
}

fn publish_n(node: &Node, channel: &str, from: u64, n: u64) {
    for i in from..from + n {
        let body = json!({"name":"n","channels":[channel],"data":i.to_string()});
        let r = p::publish(node, &body);
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// Read exactly the events `from..from+n`, in order.
fn expect_seq(ws: &mut Ws, from: u64, n: u64) {
    for i in from..from + n {
        let v = next(ws);
        assert_eq!(v["event"], "n", "{v}");
        assert_eq!(v["data"], i.to_string(), "out of order or lost: {v}");
    }
}

#[test]
fn pusher_fanout_across_three_nodes_exactly_once_in_order() {
    let Some((redis, nodes)) = cluster(3) else {
        return;
    };
    // A node subscribes a channel's topic only once it has a local subscriber.
    assert_eq!(redis.numsub(SEQ_TOPIC), 0);
    let mut subs: Vec<(Ws, String)> = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            subs.push(subscriber(node, "seq"));
        }
    }
    assert_eq!(redis.numsub(SEQ_TOPIC), 3, "one subscription per node");
    // Every node's model shard listens for Channelstream batches.
    assert_eq!(redis.numsub("herald:0:cs"), 3);

    // 30 events from each node in turn: every subscriber gets each once, in order.
    for (k, node) in nodes.iter().enumerate() {
        let from = 100 * k as u64;
        publish_n(node, "seq", from, 30);
        for (ws, _) in subs.iter_mut() {
            expect_seq(ws, from, 30);
        }
    }
    for (ws, _) in subs.iter_mut() {
        p::assert_silent(ws);
    }

    // socket_id exclusion across nodes: published on node 0, excluding a socket of node 2.
    let excluded = subs[5].1.clone();
    let body = json!({"name":"n","channels":["seq"],"data":"x","socket_id":excluded});
    assert_eq!(p::publish(&nodes[0], &body).status, 200);
    for (i, (ws, _)) in subs.iter_mut().enumerate() {
        if i == 5 {
            p::assert_silent(ws);
        } else {
            assert_eq!(next(ws)["data"], "x");
        }
    }
    // Socket ids differ over nodes even for the same shard and slot.
    let ids: std::collections::HashSet<_> = subs.iter().map(|s| s.1.clone()).collect();
    assert_eq!(ids.len(), subs.len());

    // The last local subscriber leaving unsubscribes the node.
    drop(subs.drain(4..));
    assert!(
        wait_until(Duration::from_secs(5), || redis.numsub(SEQ_TOPIC) == 2),
        "node 2 still subscribed: {}",
        redis.numsub(SEQ_TOPIC)
    );
    publish_n(&nodes[2], "seq", 500, 5);
    for (ws, _) in subs.iter_mut() {
        expect_seq(ws, 500, 5);
    }
    assert!(
        nodes[0]
            .metric("herald_cluster_received_total")
            .unwrap_or(0)
            >= 65
    );
}

#[test]
fn client_events_cross_nodes_but_not_back_to_the_sender() {
    let Some((_redis, nodes)) = cluster(2) else {
        return;
    };
    let ch = "private-chat";
    let join = |node: &Node| {
        let (mut ws, sid) = connect(node);
        let v = subscribe(&mut ws, ch, &p::private_auth(&sid, ch));
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
        ws
    };
    let mut a = join(&nodes[0]);
    let mut a2 = join(&nodes[0]);
    let mut b = join(&nodes[1]);
    for i in 0..10 {
        send(
            &mut a,
            json!({"event":"client-typing","channel":ch,"data":{"i":i}}),
        );
    }
    for ws in [&mut a2, &mut b] {
        for i in 0..10 {
            let v = next(ws);
            assert_eq!(v["event"], "client-typing", "{v}");
            assert_eq!(data(&v)["i"], i);
        }
    }
    p::assert_silent(&mut a);
}

#[test]
fn channelstream_message_reaches_another_node() {
    let Some((_redis, nodes)) = cluster(2) else {
        return;
    };
    let r = api(
        &nodes[1],
        "POST",
        "/connect",
        &json!({"username":"bob","channels":["room"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let conn_id = r.json()["conn_id"].as_str().expect("conn_id").to_owned();
    let mut ws = ws_connect(&nodes[1], &format!("/ws?conn_id={conn_id}"));
    set_timeout(&ws, Duration::from_secs(5));
    let msg = json!([{"channel":"room","user":"alice","message":{"text":"hi from A"}}]);
    let r = api(&nodes[0], "POST", "/message", &msg);
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    let got: Value = serde_json::from_str(&ws_next_text(&mut ws).expect("a message")).unwrap();
    let got = &got[0];
    assert_eq!(got["message"]["text"], "hi from A", "{got}");
    assert_eq!(got["user"], "alice");
    // The same message: same uuid and timestamp as the origin's echo.
    assert_eq!(got["uuid"], echo[0]["uuid"]);
    assert_eq!(got["channel"], "room");
}

#[test]
fn redis_restart_503_while_down_then_resubscribe() {
    let Some((mut redis, nodes)) = cluster(2) else {
        return;
    };
    let ch = "private-r";
    let join = |node: &Node| {
        let (mut ws, sid) = connect(node);
        let v = subscribe(&mut ws, ch, &p::private_auth(&sid, ch));
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
        ws
    };
    let (mut a, mut a2, mut b) = (join(&nodes[0]), join(&nodes[0]), join(&nodes[1]));
    let body = |d: &str| json!({"name":"n","channels":[ch],"data":d});
    assert_eq!(p::publish(&nodes[0], &body("before")).status, 200);
    for ws in [&mut a, &mut a2, &mut b] {
        assert_eq!(next(ws)["data"], "before");
    }

    redis.kill();
    nodes[0].wait_link(false);
    nodes[1].wait_link(false);
    // The HTTP API refuses at once, with Retry-After; nothing is delivered.
    let r = p::publish(&nodes[0], &body("down"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = api(
        &nodes[0],
        "POST",
        "/message",
        &json!([{"channel":"room","user":"u","message":{}}]),
    );
    assert_eq!(r.status, 503);
    // Local traffic goes on: a client event reaches the other socket of the same node.
    send(
        &mut a,
        json!({"event":"client-x","channel":ch,"data":{"k":"local"}}),
    );
    assert_eq!(data(&next(&mut a2))["k"], "local");
    // ...and a new subscriber is not left hanging.
    let (mut late, _) = connect(&nodes[1]);
    let v = subscribe(&mut late, "late", "");
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded");

    let redis = Redis::on(redis.port);
    nodes[0].wait_link(true);
    nodes[1].wait_link(true);
    let topic = format!("herald:0:p:app-id:{ch}");
    assert!(
        wait_until(Duration::from_secs(5), || redis.numsub(&topic) == 2),
        "not resubscribed"
    );
    assert_eq!(redis.numsub("herald:0:p:app-id:late"), 1);
    assert_eq!(p::publish(&nodes[0], &body("after")).status, 200);
    for ws in [&mut a, &mut a2, &mut b] {
        assert_eq!(next(ws)["data"], "after");
    }
    // What was lost while down is exactly the client event's remote copy: b never sees it.
    p::assert_silent(&mut b);
    assert!(nodes[0].metric("herald_cluster_connects_total") >= Some(2));
    // The streams went with Redis: the nodes know something may be lost.
    assert!(nodes[1].metric("herald_cluster_recovery_gaps_total") >= Some(1));
    assert!(nodes[0].metric("herald_cluster_publish_refused_total") >= Some(2));
}

#[test]
fn a_node_killed_with_sigkill_leaves_the_others_serving() {
    let Some((redis, mut nodes)) = cluster(3) else {
        return;
    };
    let mut subs: Vec<Ws> = nodes.iter().map(|n| subscriber(n, "seq").0).collect();
    assert_eq!(redis.numsub(SEQ_TOPIC), 3);
    nodes[0].kill9();
    subs.remove(0);
    assert!(
        wait_until(Duration::from_secs(5), || redis.numsub(SEQ_TOPIC) == 2),
        "the dead node's subscription stayed"
    );
    for (k, node) in nodes.iter().enumerate().skip(1) {
        let from = 10 * k as u64;
        publish_n(node, "seq", from, 10);
        for ws in subs.iter_mut() {
            expect_seq(ws, from, 10);
        }
    }
}

#[test]
fn garbage_on_the_backplane_is_dropped_and_counted() {
    let Some((redis, nodes)) = cluster(2) else {
        return;
    };
    let (mut ws, _) = subscriber(&nodes[1], "seq");
    let garbage: [&[u8]; 6] = [
        b"",
        b"not an envelope",
        b"\x01\xffshort",
        b"\x01\x02n0",             // an envelope with no payload header
        b"\x01\x02n0\x09\x00rest", // unknown payload kind
        b"\x01\x02n0\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", // bad flag
    ];
    for g in garbage {
        redis.publish_raw(SEQ_TOPIC, g);
        redis.publish_raw("herald:0:cs", g);
    }
    redis.publish_raw("herald:0:cs", b"\x01\x02n0m[{\"channel\": 5}]");
    p::assert_silent(&mut ws);
    publish_n(&nodes[0], "seq", 0, 3);
    expect_seq(&mut ws, 0, 3);
    // All 13 are counted (an origin is a node's run, `n0.<random>`, so "n0" is no node).
    let m = nodes[1].metric("herald_cluster_malformed_total");
    assert_eq!(m, Some(13), "{:?}", m);
    // Both nodes still serve Channelstream too.
    for n in &nodes {
        let m = json!([{"channel":"room","user":"u","message":{"k":1}}]);
        assert_eq!(api(n, "POST", "/message", &m).status, 200);
    }
}

#[test]
fn subscribe_churn_leaves_exactly_the_needed_subscriptions() {
    let Some((redis, nodes)) = cluster(2) else {
        return;
    };
    let topic = "herald:0:p:app-id:churn";
    // Sockets that subscribe and leave at once, some before their subscription is confirmed:
    // unsubscribes overtake subscribes in flight at the bridge.
    for _ in 0..20 {
        let (mut ws, _) = connect(&nodes[1]);
        send(
            &mut ws,
            json!({"event":"pusher:subscribe","data":{"channel":"churn"}}),
        );
        drop(ws);
    }
    for round in 0..3 {
        let (mut ws, _) = subscriber(&nodes[1], "churn");
        assert_eq!(redis.numsub(topic), 1, "round {round}");
        let body = json!({"name":"n","channels":["churn"],"data":format!("r{round}")});
        assert_eq!(p::publish(&nodes[0], &body).status, 200);
        assert_eq!(next(&mut ws)["data"], format!("r{round}"));
        drop(ws);
        assert!(
            wait_until(Duration::from_secs(5), || redis.numsub(topic) == 0),
            "subscription leaked after round {round}"
        );
    }
    let topics = nodes[1].metric("herald_cluster_topics");
    assert_eq!(
        topics,
        Some(3),
        "only herald:0:cs, herald:0:pctl and herald:0:pusr"
    );
}

#[test]
fn terminate_connections_and_server_to_user_reach_every_node() {
    let Some((_redis, nodes)) = cluster(3) else {
        return;
    };
    let ud = json!({"id":"ann"}).to_string();
    let mut anns = Vec::new();
    for node in &nodes[1..] {
        let (mut ws, sid) = connect(node);
        assert_eq!(
            p::signin(&mut ws, &sid, &ud)["event"],
            "pusher:signin_success"
        );
        let v = subscribe(&mut ws, "#server-to-user-ann", "");
        assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
        anns.push(ws);
    }
    let (mut bystander, _) = subscriber(&nodes[2], "room");
    // #server-to-user is an ordinary channel: a publish on node 0 reaches both nodes.
    let body = json!({"name":"hello","channels":["#server-to-user-ann"],"data":"hi"});
    assert_eq!(p::publish(&nodes[0], &body).status, 200);
    for ws in anns.iter_mut() {
        assert_eq!(next(ws)["event"], "hello");
    }
    let r = p::post_api(&nodes[0], "users/ann/terminate_connections", &json!({}));
    assert_eq!((r.status, r.json()), (200, json!({})));
    for ws in anns.iter_mut() {
        let v = next(ws);
        assert_eq!(v["data"]["code"], 4009, "{v}");
        assert_eq!(p::close_code(ws), Some(4009));
    }
    p::assert_silent(&mut bystander);
}

/// Join `channel` as `user` on `node`; the socket and its `subscription_succeeded` data.
fn member(node: &Node, channel: &str, user: &str) -> (Ws, Value) {
    let (mut ws, sid) = connect(node);
    let cd = json!({"user_id": user, "user_info": {"name": user}}).to_string();
    let v = p::join(&mut ws, &sid, channel, &cd);
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
    (ws, data(&v)["presence"].clone())
}

fn ids(presence: &Value) -> Vec<String> {
    let mut v: Vec<String> = presence["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| i.as_str().unwrap_or("").to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn presence_is_counted_per_user_over_the_nodes() {
    let Some((_redis, mut nodes)) = cluster(3) else {
        return;
    };
    let ch = "presence-room";
    let (mut alice, snap) = member(&nodes[0], ch, "alice");
    assert_eq!(ids(&snap), ["alice"]);
    let (mut bob, snap) = member(&nodes[1], ch, "bob");
    assert_eq!(ids(&snap), ["alice", "bob"], "members of every node");
    assert_eq!(snap["hash"]["alice"]["name"], "alice");
    let v = next(&mut alice);
    assert_eq!(v["event"], "pusher_internal:member_added", "{v}");
    assert_eq!(data(&v)["user_id"], "bob");
    // alice's second connection, on another node: not a new member anywhere.
    let (mut alice2, snap) = member(&nodes[2], ch, "alice");
    assert_eq!(ids(&snap), ["alice", "bob"]);
    assert_eq!(snap["count"], 2);
    p::assert_silent(&mut bob);
    p::assert_silent(&mut alice);
    p::assert_silent(&mut alice2);
    // Her first connection leaves: she is still there through node 2.
    drop(alice);
    p::assert_silent(&mut bob);
    // Her last one leaves: member_removed on every node, once.
    drop(alice2);
    let v = next(&mut bob);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    assert_eq!(data(&v)["user_id"], "alice");
    p::assert_silent(&mut bob);

    // carol on node 2, which then dies: her membership is swept by the other nodes.
    let (_carol, snap) = member(&nodes[2], ch, "carol");
    assert_eq!(ids(&snap), ["bob", "carol"]);
    let v = next(&mut bob);
    assert_eq!(data(&v)["user_id"], "carol");
    nodes[2].kill9();
    // The liveness key lives 10 s; the sweep runs every 5 s.
    set_timeout(&bob, Duration::from_secs(25));
    let v = next(&mut bob);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    assert_eq!(data(&v)["user_id"], "carol");
    set_timeout(&bob, Duration::from_secs(5));
    let (_dave, snap) = member(&nodes[0], ch, "dave");
    assert_eq!(ids(&snap), ["bob", "dave"], "carol is gone from Redis too");
}

#[test]
fn presence_and_occupancy_webhooks_are_raised_once_per_cluster() {
    if !have_redis() {
        return;
    }
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let port = server.server_addr().to_ip().expect("ip").port();
    let (tx, events) = std::sync::mpsc::channel::<Value>();
    let srv = server.clone();
    std::thread::spawn(move || {
        for mut req in srv.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let _ = req.respond(tiny_http::Response::empty(200));
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                for e in v["events"].as_array().cloned().unwrap_or_default() {
                    let _ = tx.send(e);
                }
            }
        }
    });
    let take = |n: usize, wait: Duration| {
        let mut seen = Vec::new();
        while seen.len() < n {
            let e: Value = events
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("webhooks so far: {seen:?}"));
            let user = e["user_id"].as_str().unwrap_or("");
            seen.push(
                format!("{} {user}", e["name"].as_str().unwrap_or(""))
                    .trim()
                    .to_owned(),
            );
        }
        assert!(
            events.recv_timeout(Duration::from_millis(700)).is_err(),
            "extra webhook after {seen:?}"
        );
        seen.sort();
        seen
    };
    let url = format!("http://127.0.0.1:{port}/hooks");
    let env = [
        ("HERALD_DEFAULT_APP_WEBHOOKS", url.as_str()),
        ("HERALD_DEFAULT_APP_WEBHOOK_VACATED_DELAY_MS", "0"),
    ];
    let redis = Redis::start();
    let mut nodes: Vec<Node> = (0..2)
        .map(|i| Node::start_with(redis.port, &format!("w{i}"), &env))
        .collect();
    let ch = "presence-hooks";
    let (a0, _) = member(&nodes[0], ch, "alice");
    let (a1, _) = member(&nodes[1], ch, "alice");
    let (mut bob, _) = member(&nodes[1], ch, "bob");
    drop(a0);
    drop(a1);
    assert_eq!(data(&next(&mut bob))["user_id"], "alice", "member_removed");
    drop(bob);
    // alice was on both nodes and the channel occupied on both: every event once.
    let want = [
        "channel_occupied",
        "channel_vacated",
        "member_added alice",
        "member_added bob",
        "member_removed alice",
        "member_removed bob",
    ];
    assert_eq!(take(6, Duration::from_secs(10)), want);

    // carol on node 1 only, which then dies: node 0's sweep raises what node 1 cannot.
    let (_carol, _) = member(&nodes[1], ch, "carol");
    assert_eq!(
        take(2, Duration::from_secs(10)),
        ["channel_occupied", "member_added carol"]
    );
    nodes[1].kill9();
    assert_eq!(
        take(2, Duration::from_secs(25)),
        ["channel_vacated", "member_removed carol"]
    );
}

#[test]
fn cache_channels_replay_the_last_event_on_every_node() {
    let Some((redis, nodes)) = cluster(2) else {
        return;
    };
    let (ch, topic) = ("cache-score", "herald:0:p:app-id:cache-score");
    // Published on node 0 while nobody anywhere listened: replayed by node 1.
    publish_n(&nodes[0], ch, 1, 2);
    let (mut b, _) = subscriber(&nodes[1], ch);
    expect_seq(&mut b, 2, 1);
    // While node 1 listens, node 0's events reach it as usual.
    publish_n(&nodes[0], ch, 3, 1);
    expect_seq(&mut b, 3, 1);
    drop(b);
    assert!(wait_until(Duration::from_secs(5), || redis.numsub(topic) == 0));
    // Published while node 1 was not listening: its own copy (3) is stale, Redis's is not.
    publish_n(&nodes[0], ch, 4, 1);
    let (mut b, _) = subscriber(&nodes[1], ch);
    expect_seq(&mut b, 4, 1);
    p::assert_silent(&mut b);
    // A second subscriber while node 1 listens is answered from its own copy.
    let (mut b2, _) = subscriber(&nodes[1], ch);
    expect_seq(&mut b2, 4, 1);
    // A cache channel nothing was ever published on is a miss on every node.
    for node in &nodes {
        let (mut ws, _) = subscriber(node, "cache-empty");
        assert_eq!(next(&mut ws)["event"], "pusher:cache_miss");
    }
}

#[test]
fn watchlists_hear_the_first_and_last_connection_over_the_nodes() {
    let Some((redis, mut nodes)) = cluster(3) else {
        return;
    };
    let sign_in = |node: &Node, ud: Value| {
        let (mut ws, sid) = connect(node);
        let v = p::signin(&mut ws, &sid, &ud.to_string());
        assert_eq!(v["event"], "pusher:signin_success", "{v}");
        ws
    };
    let events = |ws: &mut Ws| data(&next(ws))["events"].clone();
    let online = |ids: &[&str]| json!([{"name":"online","user_ids":ids}]);
    let offline = |ids: &[&str]| json!([{"name":"offline","user_ids":ids}]);
    let mut ann = sign_in(&nodes[0], json!({"id":"ann","watchlist":["bob"]}));
    // bob's first connection anywhere: online; a second on another node: nothing.
    let bob1 = sign_in(&nodes[1], json!({"id":"bob"}));
    assert_eq!(events(&mut ann), online(&["bob"]));
    let bob2 = sign_in(&nodes[2], json!({"id":"bob"}));
    // `signin_success` does not wait for node 2's count to reach Redis: wait for it, or
    // bob1's leaving could still be his last node's (offline, then online again).
    let nodes_of_bob = || redis.cli(&["HGET", "herald:0:uon:app-id", "bob"]);
    assert!(wait_until(Duration::from_secs(5), || nodes_of_bob() == "2"));
    // A watcher signing in on a node where bob is not hears he is online elsewhere.
    let mut cat = sign_in(&nodes[0], json!({"id":"cat","watchlist":["bob","dan"]}));
    assert_eq!(events(&mut cat), online(&["bob"]));
    drop(bob1);
    p::assert_silent(&mut ann);
    // The last one anywhere: offline, to watchers on every node.
    drop(bob2);
    assert_eq!(events(&mut ann), offline(&["bob"]));
    assert_eq!(events(&mut cat), offline(&["bob"]));
    // dan's only connection is on a node killed with SIGKILL: offline once the sweep finds
    // the node dead (its liveness key lapses after 10 s, swept every 5 s).
    let dan = sign_in(&nodes[1], json!({"id":"dan"}));
    assert_eq!(events(&mut cat), online(&["dan"]));
    nodes[1].kill9();
    drop(dan);
    set_timeout(&cat, Duration::from_secs(30));
    assert_eq!(events(&mut cat), offline(&["dan"]));
    p::assert_silent(&mut ann);
}

/// The HTTP API's channel queries answer for the cluster, on any node: channels occupied on
/// other nodes, presence members and socket counts of every node (also after one leaves, and
/// after a node dies).
#[test]
fn channel_queries_answer_for_the_whole_cluster() {
    let Some((_redis, mut nodes)) = cluster(3) else {
        return;
    };
    let room = "presence-room";
    let (_sub, _) = subscriber(&nodes[1], "news");
    let (_alice, _) = member(&nodes[0], room, "alice");
    let (bob, _) = member(&nodes[1], room, "bob");
    let get = |node: &Node, path: &str, q: &str| {
        let r = p::get_signed(node, &format!("/apps/app-id{path}"), q);
        assert_eq!(r.status, 200, "{path}?{q}: {}", r.text());
        r.json()
    };
    // Node 2 has no socket at all.
    let all = get(&nodes[2], "/channels", "");
    assert_eq!(all, json!({"channels":{"news":{},"presence-room":{}}}));
    let pres = get(
        &nodes[2],
        "/channels",
        "filter_by_prefix=presence-&info=user_count",
    );
    assert_eq!(pres, json!({"channels":{"presence-room":{"user_count":2}}}));
    let socks = |node: &Node| {
        let v = get(node, "/channels/news", "info=subscription_count");
        assert_eq!(v["occupied"], true, "{v}");
        v["subscription_count"].as_u64()
    };
    assert_eq!(socks(&nodes[2]), Some(1));
    let (_sub0, _) = subscriber(&nodes[0], "news");
    let (_sub0b, _) = subscriber(&nodes[0], "news");
    // Node 0 writes its count at the end of the loop turn that subscribed them.
    assert!(wait_until(Duration::from_secs(5), || socks(&nodes[2]) == Some(3)));
    assert_eq!(socks(&nodes[1]), Some(3));
    let info = get(&nodes[2], "/channels", "filter_by_prefix=new");
    assert_eq!(info, json!({"channels":{"news":{}}}));
    let users = |node: &Node| {
        let v = get(node, &format!("/channels/{room}/users"), "");
        let mut ids: Vec<String> = v["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_str().unwrap_or("").to_owned())
            .collect();
        ids.sort();
        ids
    };
    for node in &nodes {
        assert_eq!(users(node), ["alice", "bob"]);
    }
    let info = get(&nodes[2], &format!("/channels/{room}"), "info=user_count");
    assert_eq!(info, json!({"occupied":true,"user_count":2}));
    // bob leaves (his LEAVE is a script the query may overtake: wait for it).
    drop(bob);
    assert!(wait_until(Duration::from_secs(5), || users(&nodes[2]) == ["alice"]));
    // Node 0 dies: alice and its channels go once the sweep ran (liveness 10 s + 5 s).
    nodes[0].kill9();
    assert!(wait_until(Duration::from_secs(25), || users(&nodes[2]).is_empty()));
    let all = get(&nodes[2], "/channels", "");
    assert_eq!(all, json!({"channels":{"news":{}}}));
    assert_eq!(socks(&nodes[2]), Some(1), "node 0's two sockets are swept");
    let info = get(&nodes[1], &format!("/channels/{room}"), "info=user_count");
    assert_eq!(info, json!({"occupied":false,"user_count":0}));
}
