//! Sharding equivalence: seeded random sequences of API operations, with clients placed on
//! chosen shards, give the same observable results with 1 shard and with 4 shards — every
//! HTTP response and the frames each websocket receives, after normalising uuids and times.
//!
//! Synchronisation without sleeps: every connection is also subscribed to a `sync` channel;
//! after each operation a marker message is published there and each socket is read up to its
//! marker. Per-connection FIFO from the model shard guarantees that everything the operation
//! caused arrives before the marker.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const USERS: &[&str] = &["ann", "ben", "cat", "dan"];
const CHANNELS: &[&str] = &["red", "green", "blue"];

/// One client connection under test.
struct Client {
    conn_id: String,
    ws: Ws,
}

/// Replace uuids (by first appearance) and timestamps, so two runs can be compared.
struct Normaliser {
    ids: HashMap<String, usize>,
}

impl Normaliser {
    fn norm(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) if uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 => {
                let n = self.ids.len();
                let id = *self.ids.entry(s.clone()).or_insert(n);
                json!(format!("<uuid-{id}>"))
            }
            Value::String(s) if looks_like_time(s) => json!("<ts>"),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.norm(x)).collect()),
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    let mut x = self.norm(x);
                    if k == "users" {
                        // Unspecified order in Channelstream (§14.1 item 18).
                        if let Value::Array(a) = &mut x {
                            a.sort_by_key(|e| e.to_string());
                        }
                    }
                    out.insert(k.clone(), x);
                }
                Value::Object(out)
            }
            x => x.clone(),
        }
    }
}

fn looks_like_time(s: &str) -> bool {
    s.len() >= 19 && s.as_bytes().get(4) == Some(&b'-') && s.as_bytes().get(10) == Some(&b'T')
}

/// Read each socket up to the sync marker `n`; return its items (heartbeats dropped).
fn sync(clients: &mut [Client], srv_at: &At, n: usize, log: &mut Vec<Value>) {
    let marker = json!({"sync": n});
    let r = api(
        srv_at,
        "POST",
        "/message",
        &json!([{"channel": "sync", "user": "sync", "message": marker}]),
    );
    assert_eq!(r.status, 200);
    for (i, c) in clients.iter_mut().enumerate() {
        loop {
            let text = ws_next_text(&mut c.ws).unwrap_or_else(|| panic!("client {i} ended"));
            let v: Value = serde_json::from_str(&text).expect("frame is JSON");
            let Some(item) = v.as_array().and_then(|a| a.first()) else {
                continue; // heartbeat
            };
            if item["channel"] == json!("sync") {
                if item["message"] == marker {
                    break;
                }
                continue;
            }
            log.push(json!({"client": i, "item": item}));
        }
    }
}

/// Run one seeded scenario; `place(k)` says which shard the k-th request goes to.
fn run(seed: u64, shards: usize, steps: usize) -> Vec<Value> {
    let srv = Server::per_shard(shards, |_| {});
    let at = |k: usize| srv.shard(k % shards);
    let mut rng = Rng(seed);
    let mut log = Vec::new();
    let mut clients: Vec<Client> = Vec::new();
    let mut sent: Vec<(String, String)> = Vec::new();
    let cfg = json!({
        "red": {"notify_presence": true, "broadcast_presence_with_user_lists": true, "store_history": true},
        "green": {"notify_state": true},
        "blue": {"notify_presence": true, "history_size": 3, "store_history": true}
    });
    let mut k = 0usize;
    for step in 0..steps {
        k += 1 + rng.below(7);
        let op = if clients.is_empty() { 0 } else { rng.below(8) };
        let resp = match op {
            0 => {
                let user = USERS[rng.below(USERS.len())];
                let ch = CHANNELS[rng.below(CHANNELS.len())];
                let r = api(
                    &at(k),
                    "POST",
                    "/connect",
                    &json!({"username": user, "channels": ["sync", ch], "channel_configs": cfg,
                            "fresh_user_state": {"mood": step}, "state_public_keys": ["mood"]}),
                );
                let v = r.json();
                let conn_id = v["conn_id"].as_str().expect("conn_id").to_string();
                let ws = ws_connect(&at(k + 1), &format!("/ws?conn_id={conn_id}"));
                set_timeout(&ws, Duration::from_secs(10));
                clients.push(Client { conn_id, ws });
                json!({"status": r.status, "body": v})
            }
            1 | 2 => {
                let ch = CHANNELS[rng.below(CHANNELS.len())];
                let user = USERS[rng.below(USERS.len())];
                let mut m = json!({"channel": ch, "user": user, "message": {"n": step}});
                if rng.below(4) == 0 {
                    m["pm_users"] = json!([USERS[rng.below(USERS.len())]]);
                }
                if rng.below(5) == 0 {
                    m["exclude_users"] = json!([USERS[rng.below(USERS.len())]]);
                }
                let r = api(&at(k), "POST", "/message", &json!([m]));
                let v = r.json();
                if let Some(id) = v[0]["uuid"].as_str() {
                    sent.push((ch.to_string(), id.to_string()));
                }
                json!({"status": r.status, "body": v})
            }
            3 => {
                let c = &clients[rng.below(clients.len())];
                let ch = CHANNELS[rng.below(CHANNELS.len())];
                let path = if rng.below(2) == 0 {
                    "/subscribe"
                } else {
                    "/unsubscribe"
                };
                let r = api(
                    &at(k),
                    "POST",
                    path,
                    &json!({"conn_id": c.conn_id, "channels": [ch]}),
                );
                json!({"status": r.status, "body": r.json()})
            }
            4 => {
                let user = USERS[rng.below(USERS.len())];
                let r = api(
                    &at(k),
                    "POST",
                    "/user_state",
                    &json!({"user": user, "user_state": {"mood": rng.below(3), "secret": step}}),
                );
                json!({"status": r.status, "body": serde_json::from_slice::<Value>(&r.body).ok()})
            }
            5 if !sent.is_empty() => {
                let (ch, id) = sent[rng.below(sent.len())].clone();
                let r = if rng.below(2) == 0 {
                    api(
                        &at(k),
                        "PATCH",
                        "/message",
                        &json!([{"channel": ch, "uuid": id, "message": {"edited": step}}]),
                    )
                } else {
                    api(
                        &at(k),
                        "DELETE",
                        "/message",
                        &json!([{"channel": ch, "uuid": id}]),
                    )
                };
                json!({"status": r.status, "body": r.json()})
            }
            6 => {
                let r = api(
                    &at(k),
                    "POST",
                    "/info",
                    &json!({"info": {"channels": CHANNELS}}),
                );
                json!({"status": r.status, "body": r.json()})
            }
            _ => {
                // A global private message.
                let to = USERS[rng.below(USERS.len())];
                let r = api(
                    &at(k),
                    "POST",
                    "/message",
                    &json!([{"user": "sys", "pm_users": [to], "message": {"pm": step}}]),
                );
                json!({"status": r.status, "body": r.json()})
            }
        };
        log.push(json!({"step": step, "op": op, "response": resp}));
        sync(&mut clients, &at(k + 2), step, &mut log);
    }
    let mut n = Normaliser {
        ids: HashMap::new(),
    };
    log.iter().map(|v| n.norm(v)).collect()
}

#[test]
fn one_shard_and_four_shards_are_indistinguishable() {
    for seed in [1u64, 7, 42, 1234] {
        let one = run(seed, 1, 60);
        let four = run(seed, 4, 60);
        assert_eq!(one.len(), four.len(), "seed {seed}: transcript lengths");
        let frames = one.iter().filter(|v| v.get("client").is_some()).count();
        assert!(frames >= 10, "seed {seed}: only {frames} frames observed");
        eprintln!("seed {seed}: {} entries, {frames} frames", one.len());
        for (i, (a, b)) in one.iter().zip(&four).enumerate() {
            assert_eq!(a, b, "seed {seed}: entry {i} differs");
        }
    }
}
