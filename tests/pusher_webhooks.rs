//! Pusher webhooks end to end: an in-process Herald raises them, real HTTP receivers
//! (tiny_http on 127.0.0.1:0, in the test) get them; every event kind, signatures, the grace
//! delay and its suppression, batching, back-off retries, giving up, a dead receiver beside a
//! live one, and full queues.

mod common;

use common::pusher::*;
use common::*;
use herald::config::{PusherApp, WebhookKind, WebhookSettings};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One request a receiver got.
struct Hook {
    key: String,
    signature: String,
    content_type: String,
    body: String,
    at: Instant,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn events(&self) -> Vec<Value> {
        self.json()["events"].as_array().expect("events").clone()
    }

    /// Signed by `secret` for `key`, JSON, with a recent `time_ms`.
    fn assert_signed(&self, key: &str, secret: &str) {
        assert_eq!(self.key, key);
        assert_eq!(self.content_type, "application/json");
        let want = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(self.body.as_bytes());
            hex(&mac.finalize().into_bytes())
        };
        assert_eq!(
            self.signature, want,
            "X-Pusher-Signature over {}",
            self.body
        );
        let t = self.json()["time_ms"].as_u64().expect("time_ms");
        let now = u128::from(unix_now()) * 1000;
        assert!(u128::from(t).abs_diff(now) < 10_000, "time_ms {t} is now");
    }
}

/// A gate a receiver waits at before answering (closed: a receiver that never answers).
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.cv.notify_all();
    }

    fn pass(&self) {
        let mut c = self.closed.lock().unwrap();
        while *c {
            c = self.cv.wait(c).unwrap();
        }
    }
}

/// A webhook receiver: records every request, answers the scripted statuses (then 200).
struct Receiver {
    url: String,
    hooks: mpsc::Receiver<Hook>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
    gate: Arc<Gate>,
    server: Arc<tiny_http::Server>,
    /// Events of hooks already taken, not yet looked at.
    pending: VecDeque<Value>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let (tx, hooks) = mpsc::channel();
        let statuses = Arc::new(Mutex::new(VecDeque::new()));
        let gate = Arc::new(Gate::default());
        let (s, st, g) = (server.clone(), statuses.clone(), gate.clone());
        std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let h = |n: &'static str| {
                    req.headers()
                        .iter()
                        .find(|h| h.field.equiv(n))
                        .map(|h| h.value.as_str().to_owned())
                        .unwrap_or_default()
                };
                let (key, signature, content_type) = (
                    h("X-Pusher-Key"),
                    h("X-Pusher-Signature"),
                    h("Content-Type"),
                );
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body).ok();
                let hook = Hook {
                    key,
                    signature,
                    content_type,
                    body,
                    at: Instant::now(),
                };
                if tx.send(hook).is_err() {
                    return;
                }
                g.pass();
                let code = st.lock().unwrap().pop_front().unwrap_or(200);
                let _ = req.respond(tiny_http::Response::empty(code));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/webhooks"),
            hooks,
            statuses,
            gate,
            server,
            pending: VecDeque::new(),
        }
    }

    fn answer(&self, codes: &[u16]) {
        self.statuses.lock().unwrap().extend(codes);
    }

    /// The next request (10 s at most).
    fn next(&self) -> Hook {
        self.hooks
            .recv_timeout(Duration::from_secs(10))
            .expect("a webhook within 10 s")
    }

    /// The next event, signed for the default app, one per request (batching off).
    fn event(&mut self) -> Value {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        let h = self.next();
        h.assert_signed(KEY, SECRET);
        let mut evs = h.events();
        assert_eq!(evs.len(), 1, "one event per request without batching");
        evs.remove(0)
    }

    /// Nothing arrives within `d`.
    fn assert_quiet(&self, d: Duration) {
        if let Ok(h) = self.hooks.recv_timeout(d) {
            panic!("unexpected webhook {}", h.body);
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.gate.set(false);
        self.server.unblock();
    }
}

/// Settings for tests: one URL, a short grace delay and quick retries.
fn hooks(url: &str) -> WebhookSettings {
    WebhookSettings {
        urls: vec![url.into()],
        vacated_delay: ms(300),
        retry_initial: ms(100),
        ..WebhookSettings::default()
    }
}

/// A per-app webhook counter in `/metrics`, e.g. `webhooks_failed_total{app="app-id"}`.
fn metric(server: &Server, sample: &str) -> u64 {
    let name = format!("herald_pusher_app_{sample}");
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
        .find(|l| l.split(' ').next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{name} in /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Wait (5 s at most) until the counter reaches `want`; its last value.
fn metric_reaches(server: &Server, sample: &str, want: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let v = metric(server, sample);
        if v >= want || Instant::now() > until {
            return v;
        }
        std::thread::sleep(ms(20));
    }
}

fn ev(name: &str, channel: &str) -> Value {
    json!({"name": name, "channel": channel})
}

fn member(name: &str, channel: &str, user: &str) -> Value {
    json!({"name": name, "channel": channel, "user_id": user})
}

#[test]
fn every_event_kind_signed_in_order() {
    let mut rx = Receiver::start();
    let server = Server::with(|c| {
        c.default_app_webhooks = hooks(&rx.url);
        // Off unless configured, as in Pusher: this test sends client events.
        c.default_app_client_events = true;
    });
    let p = "presence-room";
    let (mut a, a_id) = connect(&server);
    join(&mut a, &a_id, p, r#"{"user_id":1}"#);
    assert_eq!(rx.event(), ev("channel_occupied", p));
    assert_eq!(rx.event(), member("member_added", p, "1"));
    let (mut b, b_id) = connect(&server);
    join(&mut b, &b_id, p, r#"{"user_id":"bob"}"#);
    assert_eq!(rx.event(), member("member_added", p, "bob"));
    assert_eq!(next(&mut a)["event"], "pusher_internal:member_added");

    // Client events: with user_id on presence, without on private.
    send(
        &mut a,
        json!({"event":"client-hi","channel":p,"data":{"x":1}}),
    );
    assert_eq!(next(&mut b)["event"], "client-hi");
    assert_eq!(
        rx.event(),
        json!({"name":"client_event","channel":p,"event":"client-hi",
               "data":"{\"x\":1}","socket_id":a_id,"user_id":"1"})
    );
    let q = "private-chat";
    subscribe(&mut a, q, &private_auth(&a_id, q));
    subscribe(&mut b, q, &private_auth(&b_id, q));
    assert_eq!(rx.event(), ev("channel_occupied", q));
    send(
        &mut b,
        json!({"event":"client-s","channel":q,"data":"plain"}),
    );
    assert_eq!(next(&mut a)["data"], "plain");
    assert_eq!(
        rx.event(),
        json!({"name":"client_event","channel":q,"event":"client-s",
               "data":"plain","socket_id":b_id})
    );

    // A cache miss, once per channel (the second subscriber's miss is deduplicated).
    let c = "cache-prices";
    let (mut s1, _) = connect(&server);
    assert_eq!(
        subscribe(&mut s1, c, "")["event"],
        "pusher_internal:subscription_succeeded"
    );
    assert_eq!(next(&mut s1)["event"], "pusher:cache_miss");
    assert_eq!(rx.event(), ev("channel_occupied", c));
    assert_eq!(rx.event(), ev("cache_miss", c));
    let (mut s2, _) = connect(&server);
    subscribe(&mut s2, c, "");
    assert_eq!(next(&mut s2)["event"], "pusher:cache_miss");

    // Leaving: member_removed for each user's last connection, then channel_vacated, each
    // after the grace delay. The next event after the cache miss is the first removal: no
    // second cache_miss and no occupied came in between.
    let left = Instant::now();
    send(
        &mut a,
        json!({"event":"pusher:unsubscribe","data":{"channel":p}}),
    );
    assert_eq!(rx.event(), member("member_removed", p, "1"));
    assert!(left.elapsed() >= ms(300), "after the grace delay");
    drop(b);
    assert_eq!(rx.event(), member("member_removed", p, "bob"));
    assert_eq!(rx.event(), ev("channel_vacated", p));
    assert_eq!(
        metric_reaches(&server, "webhooks_sent_total{app=\"app-id\"}", 11),
        11
    );
    assert_eq!(metric(&server, "webhooks_failed_total{app=\"app-id\"}"), 0);
}

#[test]
fn grace_delay_suppresses_a_quick_return_on_two_shards() {
    let mut rx = Receiver::start();
    let server = Server::per_shard(2, |c| {
        c.default_app_webhooks = WebhookSettings {
            vacated_delay: ms(500),
            ..hooks(&rx.url)
        }
    });
    let p = "presence-tabs";
    let (mut obs, obs_id) = connect(&server.shard(0));
    join(&mut obs, &obs_id, p, r#"{"user_id":"o"}"#);
    assert_eq!(rx.event(), ev("channel_occupied", p));
    assert_eq!(rx.event(), member("member_added", p, "o"));
    let user = r#"{"user_id":"u"}"#;
    let (mut a, a_id) = connect(&server.shard(1));
    join(&mut a, &a_id, p, user);
    assert_eq!(rx.event(), member("member_added", p, "u"));
    assert_eq!(next(&mut obs)["event"], "pusher_internal:member_added");
    // u's only tab closes (the owner has processed it: the observer saw it leave), and a new
    // tab on the other shard joins within the delay: neither member_removed nor member_added.
    drop(a);
    assert_eq!(next(&mut obs)["event"], "pusher_internal:member_removed");
    let (mut b, b_id) = connect(&server.shard(0));
    join(&mut b, &b_id, p, user);

    // A channel left and rejoined within the delay by its only member: no channel_vacated,
    // no second channel_occupied (nor member_removed / member_added).
    let solo = "presence-solo";
    let (mut c, c_id) = connect(&server.shard(1));
    join(&mut c, &c_id, solo, r#"{"user_id":"s"}"#);
    assert_eq!(rx.event(), ev("channel_occupied", solo));
    assert_eq!(rx.event(), member("member_added", solo, "s"));
    send(
        &mut c,
        json!({"event":"pusher:unsubscribe","data":{"channel":solo}}),
    );
    join(&mut c, &c_id, solo, r#"{"user_id":"s"}"#);

    // Past the delay, a marker channel's occupied is the next webhook.
    std::thread::sleep(ms(700));
    let (mut m, _) = connect(&server.shard(0));
    subscribe(&mut m, "marker", "");
    assert_eq!(rx.event(), ev("channel_occupied", "marker"));

    // Leaving for good: both arrive, after the delay.
    let left = Instant::now();
    drop(b);
    assert_eq!(rx.event(), member("member_removed", p, "u"));
    assert!(left.elapsed() >= ms(500), "after the grace delay");
    drop(c);
    assert_eq!(rx.event(), member("member_removed", solo, "s"));
    assert_eq!(rx.event(), ev("channel_vacated", solo));
}

#[test]
fn batching_puts_several_events_in_one_request() {
    let rx = Receiver::start();
    let server = Server::with(|c| {
        c.default_app_webhooks = WebhookSettings {
            batching: true,
            batch_window: ms(500),
            kinds: WebhookKind::ChannelOccupied.bit(),
            ..hooks(&rx.url)
        }
    });
    let (mut a, _) = connect(&server);
    for c in ["b-1", "b-2", "b-3"] {
        send(
            &mut a,
            json!({"event":"pusher:subscribe","data":{"channel":c}}),
        );
    }
    for _ in 0..3 {
        assert_eq!(
            next(&mut a)["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    let h = rx.next();
    h.assert_signed(KEY, SECRET);
    assert_eq!(
        h.events(),
        vec![
            ev("channel_occupied", "b-1"),
            ev("channel_occupied", "b-2"),
            ev("channel_occupied", "b-3")
        ]
    );
    // The filter: no vacated is sent for these.
    drop(a);
    rx.assert_quiet(ms(600));
}

#[test]
fn failed_attempts_are_retried_with_exponential_backoff() {
    let mut rx = Receiver::start();
    rx.answer(&[500, 503]);
    let server = Server::with(|c| c.default_app_webhooks = hooks(&rx.url));
    let (mut a, _) = connect(&server);
    subscribe(&mut a, "retry-me", "");
    let (h1, h2, h3) = (rx.next(), rx.next(), rx.next());
    assert_eq!(h1.body, h2.body, "the same request again");
    assert_eq!(h2.body, h3.body);
    h3.assert_signed(KEY, SECRET);
    let (d1, d2) = (h2.at - h1.at, h3.at - h2.at);
    assert!(
        d1 >= ms(100) && d2 >= ms(200),
        "back-off {d1:?} then {d2:?}"
    );
    assert_eq!(
        metric_reaches(&server, "webhooks_sent_total{app=\"app-id\"}", 1),
        1
    );
    assert_eq!(metric(&server, "webhooks_failed_total{app=\"app-id\"}"), 2);
    // The next event follows once the first went through.
    subscribe(&mut a, "after", "");
    assert_eq!(rx.event(), ev("channel_occupied", "after"));
}

#[test]
fn a_request_failing_for_the_whole_retry_window_is_dropped_and_counted() {
    let mut rx = Receiver::start();
    rx.answer(&[500; 3]);
    let server = Server::with(|c| {
        c.default_app_webhooks = WebhookSettings {
            retry_for: ms(400),
            ..hooks(&rx.url)
        }
    });
    let (mut a, _) = connect(&server);
    subscribe(&mut a, "doomed", "");
    // Attempts at 0, 100 and 300 ms; a fourth (at 700 ms) would start past the window.
    for _ in 0..3 {
        assert_eq!(rx.next().events(), vec![ev("channel_occupied", "doomed")]);
    }
    let dropped = "webhook_events_dropped_total{app=\"app-id\",reason=\"gave_up\"}";
    assert_eq!(metric_reaches(&server, dropped, 1), 1);
    assert_eq!(metric(&server, "webhooks_failed_total{app=\"app-id\"}"), 3);
    subscribe(&mut a, "next", "");
    assert_eq!(rx.event(), ev("channel_occupied", "next"));
}

#[test]
fn a_dead_receiver_holds_back_neither_other_receivers_nor_publishes() {
    // App "dead" has two URLs: one never answers, one is live; app "live" has its own.
    let dead = Receiver::start();
    dead.gate.set(true);
    let mut dead_app_live_url = Receiver::start();
    let other = Receiver::start();
    let server = Server::per_shard(2, |c| {
        let mut a = PusherApp::new("app-id", KEY, SECRET);
        a.webhooks = WebhookSettings {
            urls: vec![dead.url.clone(), dead_app_live_url.url.clone()],
            timeout: ms(1000),
            ..hooks("")
        };
        let mut b = PusherApp::new("2", "key-2", "secret-2");
        b.webhooks = hooks(&other.url);
        c.pusher_apps = vec![a, b];
    });
    let (mut sub, _) = connect(&server.shard(0));
    subscribe(&mut sub, "news", "");
    let first = dead.next();
    assert_eq!(first.events(), vec![ev("channel_occupied", "news")]);
    assert_eq!(dead_app_live_url.event(), ev("channel_occupied", "news"));
    // While the dead receiver holds its request: publishes keep flowing to subscribers ...
    for i in 0..20 {
        let r = publish(
            &server.shard(1),
            &json!({"name":"tick","channel":"news","data":i.to_string()}),
        );
        assert_eq!(r.status, 200);
        assert_eq!(next(&mut sub)["data"], i.to_string());
    }
    // ... the same app's live URL gets its events, and so does another app.
    subscribe(&mut sub, "news-2", "");
    assert_eq!(dead_app_live_url.event(), ev("channel_occupied", "news-2"));
    let mut ws = ws_connect(&server.shard(1), "/app/key-2?protocol=7");
    set_timeout(&ws, Duration::from_secs(5));
    assert_eq!(next(&mut ws)["event"], "pusher:connection_established");
    subscribe(&mut ws, "other-app", "");
    let h = other.next();
    h.assert_signed("key-2", "secret-2");
    assert_eq!(h.events(), vec![ev("channel_occupied", "other-app")]);
    // The dead receiver's attempt timed out and counts as failed.
    assert!(metric_reaches(&server, "webhooks_failed_total{app=\"app-id\"}", 1) >= 1);
}

#[test]
fn a_full_queue_drops_events_and_counts_them() {
    let rx = Receiver::start();
    rx.gate.set(true);
    let server = Server::with(|c| {
        c.default_app_webhooks = WebhookSettings {
            queue: 2,
            timeout: Duration::from_secs(20),
            ..hooks(&rx.url)
        }
    });
    let (mut a, _) = connect(&server);
    // The first request is taken and held by the receiver; the rest fill the queue.
    subscribe(&mut a, "q-0", "");
    assert_eq!(rx.next().events(), vec![ev("channel_occupied", "q-0")]);
    for i in 1..=10 {
        let c = format!("q-{i}");
        assert_eq!(
            subscribe(&mut a, &c, "")["event"],
            "pusher_internal:subscription_succeeded",
            "the shard is not held up"
        );
    }
    let dropped = "webhook_events_dropped_total{app=\"app-id\",reason=\"queue_full\"}";
    assert_eq!(metric(&server, dropped), 8, "10 raised, 2 queued");
    // Released: the held request and the two queued ones are delivered, in order.
    rx.gate.set(false);
    let got: Vec<Value> = (0..2).map(|_| rx.next().events()[0].clone()).collect();
    assert_eq!(
        got,
        vec![ev("channel_occupied", "q-1"), ev("channel_occupied", "q-2")]
    );
    assert_eq!(
        metric_reaches(&server, "webhooks_sent_total{app=\"app-id\"}", 3),
        3
    );
}
