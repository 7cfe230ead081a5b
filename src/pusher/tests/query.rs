//! The gather: parts, completion, failure, expiry, and the answers' shapes.

use super::*;
use crate::dialect::InboxFull;
use crate::ids::SockRef;
use crate::proto::ws::CloseCode;
use bytes::Bytes;

#[derive(Debug)]
enum Msg {
    Q(Query),
    P(Part),
}

impl Carrier for Msg {
    fn query(q: Query) -> Self {
        Msg::Q(q)
    }
    fn part(p: Part) -> Self {
        Msg::P(p)
    }
}

/// An outbox on shard `here` that records replies and sends; `full` refuses every send.
struct Rec {
    here: u16,
    full: bool,
    replies: Vec<(ReqRef, Response)>,
    sent: Vec<(ShardId, Msg)>,
}

impl Rec {
    fn new(here: u16) -> Self {
        Rec {
            here,
            full: false,
            replies: Vec::new(),
            sent: Vec::new(),
        }
    }
}

impl Outbox<Msg> for Rec {
    fn shard(&self) -> ShardId {
        ShardId(self.here)
    }
    fn reply(&mut self, req: ReqRef, response: Response) {
        self.replies.push((req, response));
    }
    fn deliver(&mut self, _: &Bytes, _: &[SockRef]) {}
    fn close(&mut self, _: SockRef, _: CloseCode) {}
    fn send(&mut self, to: ShardId, msg: Msg) -> Result<(), InboxFull> {
        if self.full {
            return Err(InboxFull);
        }
        self.sent.push((to, msg));
        Ok(())
    }
    fn set_counter(&mut self, _: usize, _: u64) {}
    fn metrics_text(&self) -> String {
        String::new()
    }
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn all(app: AppIdx, users: bool, shape: Shape) -> Ask {
    Ask {
        app,
        filter: Filter::Prefix("".into()),
        users,
        shape,
    }
}

#[test]
fn two_shards_gather_and_the_last_part_answers() {
    let req = ReqRef::new(0, 7, 1);
    let mut reg0 = Registry::default();
    reg0.subscribe(0, "a", SockRef::new(0, 1, 1));
    reg0.subscribe(1, "other-app", SockRef::new(0, 2, 1));
    let mut reg1 = Registry::default();
    reg1.subscribe(0, "b", SockRef::new(1, 1, 1));
    reg1.subscribe(0, "b", SockRef::new(0, 1, 1));
    let mut g = Gathers::default();
    let mut out = Rec::new(0);
    start(
        &mut g,
        &reg0,
        &mut out,
        req,
        &all(0, false, Shape::Channels(Attrs::default())),
        2,
        false,
    );
    assert!(out.replies.is_empty(), "shard 1 has not answered");
    assert_eq!(g.len(), 1);
    let (to, Msg::Q(q)) = out.sent.pop().unwrap() else {
        panic!("a query")
    };
    assert_eq!(to, ShardId(1));
    let mut out1 = Rec::new(1);
    on_query(&reg1, &mut out1, q);
    let (back, Msg::P(p)) = out1.sent.pop().unwrap() else {
        panic!("a part")
    };
    assert_eq!(back, ShardId(0));
    on_part(&mut g, &mut out, p);
    let (r, resp) = out.replies.pop().unwrap();
    assert_eq!(r, req);
    assert_eq!(resp.status, 200);
    assert_eq!(body(&resp), json!({"channels":{"a":{},"b":{}}}));
    assert!(g.is_empty());
}

#[test]
fn one_shard_answers_inline() {
    let mut reg = Registry::default();
    reg.subscribe(0, "presence-x", SockRef::new(0, 1, 1));
    reg.subscribe(0, "x", SockRef::new(0, 1, 1));
    let mut g = Gathers::default();
    let mut out = Rec::new(0);
    let a = Attrs {
        subscription_count: true,
        user_count: true,
        cache: false,
    };
    let ask = Ask {
        app: 0,
        filter: Filter::Names(vec!["x".into(), "presence-x".into(), "y".into()]),
        users: false,
        shape: Shape::Events(vec!["x".into(), "presence-x".into(), "y".into()], a),
    };
    start(&mut g, &reg, &mut out, ReqRef::new(0, 1, 1), &ask, 1, false);
    let (_, resp) = out.replies.pop().unwrap();
    assert_eq!(
        body(&resp),
        json!({"channels":{
            "x":{"subscription_count":1},
            "presence-x":{"subscription_count":1,"user_count":0},
            "y":{"subscription_count":0}}})
    );
    assert!(g.is_empty() && out.sent.is_empty());
}

#[test]
fn full_inbox_fails_at_once_and_silence_expires() {
    let reg = Registry::default();
    let mut g = Gathers::default();
    let mut out = Rec::new(0);
    out.full = true;
    start(
        &mut g,
        &reg,
        &mut out,
        ReqRef::new(0, 1, 1),
        &all(0, false, Shape::Channels(Attrs::default())),
        3,
        false,
    );
    assert_eq!(out.replies.pop().unwrap().1.status, 503);
    assert!(g.is_empty());

    let mut out = Rec::new(0);
    start(
        &mut g,
        &reg,
        &mut out,
        ReqRef::new(0, 2, 1),
        &all(0, false, Shape::Channels(Attrs::default())),
        3,
        false,
    );
    assert!(out.replies.is_empty());
    let deadline = g.next_deadline().unwrap();
    on_timer(&mut g, &mut out, deadline - Duration::from_millis(1));
    assert!(out.replies.is_empty());
    on_timer(&mut g, &mut out, deadline);
    assert_eq!(out.replies.pop().unwrap().1.status, 503);
    assert!(g.is_empty() && g.next_deadline().is_none());
    // A late part finds nothing to complete.
    let (_, Msg::Q(q)) = out.sent.pop().unwrap() else {
        panic!("a query")
    };
    on_part(
        &mut g,
        &mut out,
        Part {
            id: q.id,
            stats: Vec::new(),
        },
    );
    assert!(out.replies.is_empty());
}

#[test]
fn shapes() {
    let s = |n: &str, c| Stat {
        name: n.into(),
        subscription_count: c,
        user_count: 0,
        users: Vec::new(),
        cache: None,
        occupied: c > 0,
    };
    let a = Attrs {
        subscription_count: true,
        user_count: false,
        cache: false,
    };
    assert_eq!(
        body(&answer(&Shape::Channel("c".into(), a), &[s("c", 3)])),
        json!({"occupied":true,"subscription_count":3})
    );
    assert_eq!(
        body(&answer(&Shape::Channel("c".into(), Attrs::default()), &[])),
        json!({"occupied":false})
    );
    assert_eq!(
        body(&answer(&Shape::Users("presence-c".into()), &[])),
        json!({"users":[]})
    );
    let mut p = s("presence-c", 2);
    p.users = vec!["1".into(), "2".into()];
    p.user_count = 2;
    assert_eq!(
        body(&answer(&Shape::Users("presence-c".into()), &[p.clone()])),
        json!({"users":[{"id":"1"},{"id":"2"}]})
    );
    let uc = Attrs {
        subscription_count: false,
        user_count: true,
        cache: false,
    };
    assert_eq!(
        body(&answer(&Shape::Channels(uc), &[p.clone()])),
        json!({"channels":{"presence-c":{"user_count":2}}})
    );
    let batch = Shape::Batch(vec![Some(("c".into(), a)), None]);
    assert_eq!(
        body(&answer(&batch, &[s("c", 1)])),
        json!({"batch":[{"subscription_count":1},{}]})
    );
}

#[test]
fn targets_are_owners_or_everyone() {
    assert_eq!(
        targets(0, &Filter::Prefix("".into()), 3),
        vec![ShardId(0), ShardId(1), ShardId(2)]
    );
    let names: Vec<Box<str>> = (0..20).map(|i| format!("c{i}").into()).collect();
    let t = targets(0, &Filter::Names(names.clone()), 4);
    assert!(t.len() <= 4 && !t.is_empty());
    for n in &names {
        assert!(t.contains(&channels::owner(0, n, 4)));
    }
}

#[test]
fn a_cache_channel_answers_its_cached_event_even_unoccupied() {
    use crate::pusher::cache::Cache;
    let reg = Registry::default();
    let mut cache = Cache::default();
    let json = br#"{"event":"e","channel":"cache-w","data":"{\"t\":2}"}"#;
    let frame = crate::proto::ws::encode_text(json);
    cache.put(0, "cache-w", frame, std::time::Instant::now());
    let owned = Owned {
        registry: &reg,
        presence: None,
        cache: Some(&cache),
    };
    let names = Filter::Names(vec!["cache-w".into(), "cache-none".into()]);
    let got = stats(owned, 0, &names, false);
    assert_eq!(got.len(), 1, "{got:?}");
    let (data, ttl) = got[0].cache.clone().expect("cached");
    assert_eq!(data, r#"{"t":2}"#);
    assert!(ttl > 29 * 60 && ttl <= 30 * 60, "{ttl}");
    let a = Attrs {
        cache: true,
        ..Attrs::default()
    };
    assert_eq!(
        body(&answer(&Shape::Channel("cache-w".into(), a), &got)),
        json!({"occupied":false,"cache":{"data":"{\"t\":2}","ttl":ttl}})
    );
}

/// In cluster mode the gather waits for the cluster's view as one more part, and lays it over
/// the shards' stats: channels occupied only on other nodes are listed and occupied, a
/// presence channel's members and socket counts are the cluster's.
#[test]
fn the_cluster_view_is_one_more_part_laid_over_the_shards() {
    let mut reg = Registry::default();
    reg.subscribe(0, "here", SockRef::new(0, 1, 1));
    reg.subscribe(0, "presence-p", SockRef::new(0, 1, 1));
    let g_of = |name: &str, occupied, users: &[&str]| Global {
        name: name.into(),
        occupied,
        user_count: users.len(),
        users: users.iter().map(|u| (*u).to_owned()).collect(),
        subscription_count: None,
    };
    let mut g = Gathers::default();
    let mut out = Rec::new(0);
    let ask = all(
        0,
        false,
        Shape::Channels(Attrs {
            user_count: true,
            ..Attrs::default()
        }),
    );
    let id = start(&mut g, &reg, &mut out, ReqRef::new(0, 1, 1), &ask, 1, true);
    assert!(out.replies.is_empty(), "waits for the cluster's view");
    let view = vec![
        g_of("here", true, &[]),
        g_of("there", true, &[]),
        g_of("presence-p", true, &["zed", "amy"]),
    ];
    on_global(&mut g, &mut out, id, Some(view));
    let (_, resp) = out.replies.pop().unwrap();
    assert_eq!(
        body(&resp),
        json!({"channels":{"here":{},"there":{},"presence-p":{"user_count":2}}})
    );

    let a = Attrs {
        subscription_count: true,
        user_count: true,
        cache: false,
    };
    let one = |name: &str, shape| Ask {
        app: 0,
        filter: Filter::Names(vec![name.into()]),
        users: true,
        shape,
    };
    let ask = one("there", Shape::Channel("there".into(), a));
    let id = start(&mut g, &reg, &mut out, ReqRef::new(0, 2, 1), &ask, 1, true);
    let mut there = g_of("there", true, &[]);
    there.subscription_count = Some(4);
    on_global(&mut g, &mut out, id, Some(vec![there]));
    assert_eq!(
        body(&out.replies.pop().unwrap().1),
        json!({"occupied":true,"subscription_count":4})
    );
    let ask = one("presence-p", Shape::Users("presence-p".into()));
    let id = start(&mut g, &reg, &mut out, ReqRef::new(0, 3, 1), &ask, 1, true);
    on_global(
        &mut g,
        &mut out,
        id,
        Some(vec![g_of("presence-p", true, &["zed", "amy"])]),
    );
    assert_eq!(
        body(&out.replies.pop().unwrap().1),
        json!({"users":[{"id":"amy"},{"id":"zed"}]})
    );
    // No view to be had (the link is down): this node's answer.
    let ask = one("there", Shape::Channel("there".into(), a));
    let id = start(&mut g, &reg, &mut out, ReqRef::new(0, 4, 1), &ask, 1, true);
    on_global(&mut g, &mut out, id, None);
    assert_eq!(
        body(&out.replies.pop().unwrap().1),
        json!({"occupied":false,"subscription_count":0})
    );
    assert!(g.is_empty());
}
