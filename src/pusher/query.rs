//! Gathered HTTP API queries: `GET /channels`, `GET /channels/{name}`, `.../users` and the
//! `info` of `POST /events` / `batch_events`, answered from the owner shards' channel tables.
//!
//! Why a gather: channel state lives only on each channel's owner (`channels::owner`), so the
//! shard that received the request parks it, asks every shard that may own a matching
//! channel ([`Query`], through `Outbox::send`; its own part inline), and the last [`Part`]
//! back completes the answer (`Outbox::reply`). It is bounded: a shard whose inbox is full
//! fails the gather at once (503), and a gather still waiting after [`TIMEOUT`] is answered
//! 503 from `on_timer`, so a request never hangs. A part arriving for a gather already answered
//! is dropped. Queries sent after a publish from the same shard arrive after it (inboxes are
//! FIFO per pair of shards), so `info` counts see the state the publish met. In cluster mode
//! the cluster's view (`pusher::cluster_query`, from Redis) is one more part, laid over the
//! shards' stats by [`merge`].

use super::api::json_response;
use super::apps::AppIdx;
use super::cache::Cache;
use super::channels::{self, Kind, Registry};
use super::presence::Presence;
use crate::dialect::{Outbox, Response};
use crate::ids::{ReqRef, ShardId};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a gather waits for its parts before answering 503.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Which channels a query is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Every occupied channel whose name starts with this (possibly empty) prefix.
    Prefix(Box<str>),
    /// These channels, occupied or not.
    Names(Vec<Box<str>>),
}

/// Which attributes one channel's answer carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// `subscription_count`.
    pub subscription_count: bool,
    /// `user_count` (presence channels only).
    pub user_count: bool,
    /// `cache`: the cached event of a cache channel (`GET /channels/{name}` only).
    pub cache: bool,
}

/// How the gathered stats become the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `GET /channels`: `{"channels":{name:{"user_count"?}}}`.
    Channels(Attrs),
    /// `GET /channels/{name}`: `{"occupied":…,"subscription_count"?,"user_count"?}`.
    Channel(Box<str>, Attrs),
    /// `GET /channels/{name}/users`: `{"users":[{"id":…}]}`.
    Users(Box<str>),
    /// `POST /events` with `info`: `{"channels":{name:{…}}}` for these channels.
    Events(Vec<Box<str>>, Attrs),
    /// `POST /batch_events`: `{"batch":[…]}`, one item per event (`{}` without `info`).
    Batch(Vec<Option<(Box<str>, Attrs)>>),
}

/// What the request asks, as the API parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The app.
    pub app: AppIdx,
    /// The channels to look at.
    pub filter: Filter,
    /// Whether the owners list user ids (`/users`).
    pub users: bool,
    /// The answer's shape.
    pub shape: Shape,
}

/// A question to one shard about the channels it owns.
#[derive(Debug)]
pub struct Query {
    /// The shard holding the gather.
    pub from: ShardId,
    /// The gather's id on that shard.
    pub id: u64,
    /// The app.
    pub app: AppIdx,
    /// Which channels.
    pub filter: Filter,
    /// Whether to list user ids.
    pub users: bool,
}

/// One owned channel's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The channel.
    pub name: Box<str>,
    /// Subscribed sockets.
    pub subscription_count: usize,
    /// Distinct users (presence channels; 0 otherwise).
    pub user_count: usize,
    /// User ids, when asked.
    pub users: Vec<String>,
    /// A cache channel's last event: its `data` string and the seconds it stays cached.
    pub cache: Option<(String, u64)>,
    /// Whether it has subscribers (here: `subscription_count > 0`; merged with the
    /// cluster's view, on any node).
    pub occupied: bool,
}

/// One channel as the cluster sees it (`pusher::cluster_query`): occupied on some node, and a
/// presence channel's members over every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    /// The channel.
    pub name: Box<str>,
    /// Some node has local subscribers.
    pub occupied: bool,
    /// Distinct users over the nodes (presence channels; 0 otherwise).
    pub user_count: usize,
    /// Their ids, when asked.
    pub users: Vec<String>,
    /// Subscribed sockets over the nodes (`None`: not asked, as in a listing).
    pub subscription_count: Option<usize>,
}

/// One shard's answer to a [`Query`].
#[derive(Debug)]
pub struct Part {
    /// The gather's id on the asking shard.
    pub id: u64,
    /// The owned channels that matched.
    pub stats: Vec<Stat>,
}

/// The channel state a shard owns that queries read: subscribers and presence members.
#[derive(Clone, Copy)]
pub struct Owned<'a> {
    /// Subscribers per channel.
    pub registry: &'a Registry,
    /// Presence members per channel (`None`: no presence state, e.g. in unit tests).
    pub presence: Option<&'a Presence>,
    /// Cache channels' last events (`None`: none kept, e.g. in unit tests).
    pub cache: Option<&'a Cache>,
}

impl<'a> From<&'a Registry> for Owned<'a> {
    fn from(registry: &'a Registry) -> Self {
        Owned {
            registry,
            presence: None,
            cache: None,
        }
    }
}

/// The user ids present in a presence channel this shard owns (sorted: a stable answer).
pub fn presence_users(owned: Owned<'_>, app: AppIdx, channel: &str) -> Vec<String> {
    owned
        .presence
        .map(|p| p.user_ids(app, channel))
        .unwrap_or_default()
}

/// This shard's part: the channels it owns that match.
pub fn stats<'a>(
    owned: impl Into<Owned<'a>>,
    app: AppIdx,
    filter: &Filter,
    users: bool,
) -> Vec<Stat> {
    let owned = owned.into();
    let registry = owned.registry;
    let now = Instant::now();
    let stat = |name: &str, subs: usize| {
        let presence = channels::kind(name) == Some(Kind::Presence);
        let ids = if presence {
            presence_users(owned, app, name)
        } else {
            Vec::new()
        };
        Stat {
            name: name.into(),
            subscription_count: subs,
            user_count: ids.len(),
            users: if users { ids } else { Vec::new() },
            cache: cached(owned, app, name, now),
            occupied: subs > 0,
        }
    };
    match filter {
        Filter::Prefix(p) => registry
            .channels(app)
            .filter(|(name, _)| name.starts_with(&**p))
            .map(|(name, subs)| stat(name, subs.len()))
            .collect(),
        Filter::Names(names) => names
            .iter()
            .map(|n| (n, registry.subscribers(app, n).len()))
            // an unoccupied cache channel still answers `info=cache`
            .filter(|(n, subs)| *subs > 0 || cached(owned, app, n, now).is_some())
            .map(|(n, subs)| stat(n, subs))
            .collect(),
    }
}

/// A cache channel's live cached event: its `data` string and the whole seconds left.
fn cached(owned: Owned<'_>, app: AppIdx, name: &str, now: Instant) -> Option<(String, u64)> {
    if !channels::is_cache(name) {
        return None;
    }
    let (frame, left) = owned.cache?.peek(app, name, now)?;
    // the cache keeps the websocket frame subscribers got: skip its header
    let (_, header) = crate::proto::ws::frame::decode_header(frame).ok()??;
    let v: Value = serde_json::from_slice(frame.get(header..)?).ok()?;
    Some((v.get("data")?.as_str()?.to_owned(), left.as_secs()))
}

/// The shards to ask: all of them for a prefix, else the owners of the names.
pub fn targets(app: AppIdx, filter: &Filter, shards: usize) -> Vec<ShardId> {
    let mut t: Vec<ShardId> = match filter {
        Filter::Prefix(_) => (0..shards)
            .filter_map(|i| u16::try_from(i).ok().map(ShardId))
            .collect(),
        Filter::Names(names) => names
            .iter()
            .map(|n| channels::owner(app, n, shards))
            .collect(),
    };
    t.sort_by_key(|s| s.index());
    t.dedup();
    t
}

fn channel_info(s: Option<&Stat>, name: &str, a: Attrs) -> Map<String, Value> {
    let mut m = Map::new();
    if a.subscription_count {
        m.insert(
            "subscription_count".into(),
            json!(s.map_or(0, |s| s.subscription_count)),
        );
    }
    if a.user_count && channels::kind(name) == Some(Kind::Presence) {
        m.insert("user_count".into(), json!(s.map_or(0, |s| s.user_count)));
    }
    if a.cache {
        if let Some((data, ttl)) = s.and_then(|s| s.cache.as_ref()) {
            m.insert("cache".into(), json!({ "data": data, "ttl": ttl }));
        }
    }
    m
}

/// The answer built from every part's stats.
pub fn answer(shape: &Shape, stats: &[Stat]) -> Response {
    let find = |n: &str| stats.iter().find(|s| &*s.name == n);
    let v = match shape {
        Shape::Channels(a) => {
            let chans: Map<String, Value> = stats
                .iter()
                .filter(|s| s.occupied)
                .map(|s| {
                    let info = channel_info(
                        Some(s),
                        &s.name,
                        Attrs {
                            subscription_count: false,
                            ..*a
                        },
                    );
                    (s.name.to_string(), Value::Object(info))
                })
                .collect();
            json!({ "channels": chans })
        }
        Shape::Channel(name, a) => {
            let s = find(name);
            let mut m = channel_info(s, name, *a);
            let occupied = s.is_some_and(|s| s.occupied);
            m.insert("occupied".into(), json!(occupied));
            Value::Object(m)
        }
        Shape::Users(name) => {
            let users: Vec<Value> = find(name)
                .map(|s| s.users.iter().map(|u| json!({ "id": u })).collect())
                .unwrap_or_default();
            json!({ "users": users })
        }
        Shape::Events(names, a) => {
            let chans: Map<String, Value> = names
                .iter()
                .map(|n| (n.to_string(), Value::Object(channel_info(find(n), n, *a))))
                .collect();
            json!({ "channels": chans })
        }
        Shape::Batch(items) => {
            let items: Vec<Value> = items
                .iter()
                .map(|i| match i {
                    Some((n, a)) => Value::Object(channel_info(find(n), n, *a)),
                    None => json!({}),
                })
                .collect();
            json!({ "batch": items })
        }
    };
    json_response(200, &v)
}

fn unavailable() -> Response {
    json_response(
        503,
        &json!({ "error": "A shard did not answer; try again" }),
    )
}

#[derive(Debug)]
struct Pending {
    req: ReqRef,
    shape: Shape,
    waiting: usize,
    stats: Vec<Stat>,
    /// The cluster's view, when one was asked for and came.
    global: Option<Vec<Global>>,
    deadline: Instant,
}

/// The shards' stats with the cluster's view laid over them: a channel occupied on any node is
/// occupied, a presence channel's `user_count` and users are the cluster's, and so is
/// `subscription_count` when it came; `cache` stays this node's.
pub fn merge(mut stats: Vec<Stat>, global: Option<Vec<Global>>) -> Vec<Stat> {
    for g in global.unwrap_or_default() {
        if !stats.iter().any(|s| s.name == g.name) {
            stats.push(Stat {
                name: g.name.clone(),
                subscription_count: 0,
                user_count: 0,
                users: Vec::new(),
                cache: None,
                occupied: false,
            });
        }
        let Some(s) = stats.iter_mut().find(|s| s.name == g.name) else {
            continue;
        };
        s.occupied |= g.occupied;
        if let Some(n) = g.subscription_count {
            s.subscription_count = n;
        }
        if channels::kind(&g.name) == Some(Kind::Presence) {
            s.user_count = g.user_count;
            s.users = g.users;
            s.users.sort();
        }
    }
    stats
}

/// The gathers a shard is running, by id.
#[derive(Debug, Default)]
pub struct Gathers {
    next: u64,
    pending: HashMap<u64, Pending>,
}

impl Gathers {
    /// Open a gather waiting for `parts` parts; returns its id.
    pub fn open(&mut self, req: ReqRef, shape: Shape, parts: usize, now: Instant) -> u64 {
        self.next = self.next.wrapping_add(1);
        let id = self.next;
        self.pending.insert(
            id,
            Pending {
                req,
                shape,
                waiting: parts,
                stats: Vec::new(),
                global: None,
                deadline: now + TIMEOUT,
            },
        );
        id
    }

    /// A part arrived: the answer if it was the last.
    pub fn part(&mut self, part: Part) -> Option<(ReqRef, Response)> {
        let p = self.pending.get_mut(&part.id)?;
        p.stats.extend(part.stats);
        self.counted(part.id)
    }

    /// The cluster's view arrived (`None`: it could not be had; the answer is this node's):
    /// the answer if it was the last part.
    pub fn global(&mut self, id: u64, global: Option<Vec<Global>>) -> Option<(ReqRef, Response)> {
        let p = self.pending.get_mut(&id)?;
        p.global = global;
        self.counted(id)
    }

    fn counted(&mut self, id: u64) -> Option<(ReqRef, Response)> {
        let p = self.pending.get_mut(&id)?;
        p.waiting = p.waiting.saturating_sub(1);
        if p.waiting > 0 {
            return None;
        }
        let p = self.pending.remove(&id)?;
        let stats = merge(p.stats, p.global);
        Some((p.req, answer(&p.shape, &stats)))
    }

    /// A shard cannot be asked: answer 503 now.
    pub fn fail(&mut self, id: u64) -> Option<(ReqRef, Response)> {
        self.pending.remove(&id).map(|p| (p.req, unavailable()))
    }

    /// The gathers past their deadline, answered 503.
    pub fn expire(&mut self, now: Instant) -> Vec<(ReqRef, Response)> {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        late.into_iter().filter_map(|id| self.fail(id)).collect()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// How many gathers wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The messages a gather needs the dialect to carry between shards.
pub trait Carrier: Sized {
    /// Wrap a query.
    fn query(q: Query) -> Self;
    /// Wrap a part.
    fn part(p: Part) -> Self;
}

/// Start a gather for `req`: ask every target shard (this one inline), and wait for the
/// cluster's view too if `global` (given later with [`on_global`]). The answer may be given
/// before this returns (a one-shard gather without `global`); the caller parks the request
/// either way. The gather's id.
pub fn start<'a, M: Carrier>(
    gathers: &mut Gathers,
    owned: impl Into<Owned<'a>>,
    out: &mut dyn Outbox<M>,
    req: ReqRef,
    ask: &Ask,
    shards: usize,
    global: bool,
) -> u64 {
    let owned = owned.into();
    let targets = targets(ask.app, &ask.filter, shards);
    let parts = targets.len() + usize::from(global);
    let id = gathers.open(req, ask.shape.clone(), parts, Instant::now());
    let here = out.shard();
    for to in targets {
        if to == here {
            let stats = stats(owned, ask.app, &ask.filter, ask.users);
            if let Some((r, resp)) = gathers.part(Part { id, stats }) {
                out.reply(r, resp);
            }
            continue;
        }
        let q = Query {
            from: here,
            id,
            app: ask.app,
            filter: ask.filter.clone(),
            users: ask.users,
        };
        if out.send(to, M::query(q)).is_err() {
            if let Some((r, resp)) = gathers.fail(id) {
                out.reply(r, resp);
            }
            return id;
        }
    }
    id
}

/// The cluster's view for gather `id` came (or could not be had: `None`).
pub fn on_global<M>(
    gathers: &mut Gathers,
    out: &mut dyn Outbox<M>,
    id: u64,
    global: Option<Vec<Global>>,
) {
    if let Some((r, resp)) = gathers.global(id, global) {
        out.reply(r, resp);
    }
}

/// Answer another shard's query with this shard's part (dropped if its inbox is full: that
/// gather then times out with 503).
pub fn on_query<'a, M: Carrier>(owned: impl Into<Owned<'a>>, out: &mut dyn Outbox<M>, q: Query) {
    let stats = stats(owned, q.app, &q.filter, q.users);
    if out.send(q.from, M::part(Part { id: q.id, stats })).is_err() {
        tracing::warn!("pusher: query part lost (inbox full)");
    }
}

/// A part came back: reply if it completes its gather.
pub fn on_part<M>(gathers: &mut Gathers, out: &mut dyn Outbox<M>, part: Part) {
    if let Some((r, resp)) = gathers.part(part) {
        out.reply(r, resp);
    }
}

/// Answer the gathers past their deadline with 503.
pub fn on_timer<M>(gathers: &mut Gathers, out: &mut dyn Outbox<M>, now: Instant) {
    for (r, resp) in gathers.expire(now) {
        out.reply(r, resp);
    }
}

/// The server stops: answer every waiting gather with 503.
pub fn on_shutdown<M>(gathers: &mut Gathers, out: &mut dyn Outbox<M>) {
    let ids: Vec<u64> = gathers.pending.keys().copied().collect();
    for id in ids {
        if let Some((r, resp)) = gathers.fail(id) {
            out.reply(r, resp);
        }
    }
}

#[cfg(test)]
#[path = "tests/query.rs"]
mod tests;
