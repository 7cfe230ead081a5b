//! Pusher in cluster mode: cross-node fan-out through the backplane (`crate::cluster`).
//!
//! Why on the owner shard: the owner of a channel (`channels::owner`, the same hash on every
//! node) is where a node's local subscribers of that channel are, so it alone SUBSCRIBEs the
//! channel's Redis topic `herald:<db>:p:<app id>:<channel>` — when the channel gets its first
//! local subscriber — and UNSUBSCRIBEs at its last. A subscribing socket is held (not yet in
//! the table, no `subscription_succeeded`) until the bridge confirms the topic, so a client
//! that saw `subscription_succeeded` gets every message published after it on any node.
//!
//! Publishing: an HTTP API publish is sent to the backplane by the shard that accepted the
//! request, before it routes the local delivery (down or full: the whole request is 503 +
//! `Retry-After`, nothing delivered); a client event by the owner, after its checks (down or
//! full: delivered on this node only, counted by the backplane). The payload is the encoded
//! websocket frame itself, so a receiving node neither parses nor re-encodes it: its owner
//! hands the one `Bytes` to `Outbox::deliver`, like a local publish. The origin node never
//! gets its own message back (the bridge drops it by origin id), so nothing is delivered twice.
//!
//! Payload: `[kind][except: 1 flag byte, node tag u32, shard u16, slot u32, gen u32][frame]`
//! (big-endian; kind 0 an HTTP API event, 1 a client event or a presence event). Presence is
//! `cluster_presence.rs`; occupancy and the channel webhooks are still per node
//! (ARCHITECTURE.md, "Cluster mode").

use super::socket_id::SocketId;
use super::*;
use crate::cluster::{Backplane, Incoming};
use crate::ids::ShardId;
use std::sync::atomic::Ordering;

/// An HTTP API event (cached on cache channels).
const KIND_API: u8 = 0;
/// A client event.
const KIND_CLIENT: u8 = 1;
const HEADER: usize = 1 + 1 + 4 + 2 + 4 + 4;

/// The cluster state of one shard's Pusher.
pub(super) struct Clustered {
    pub(super) bp: Arc<Backplane>,
    /// `herald:<db>:pctl`: commands for every node (user terminations), which shard 0 of
    /// every node subscribes to at start.
    ctl: Bytes,
    /// `herald:<db>:pusr`: users coming online or going offline over the cluster
    /// (`cluster_users`), subscribed by shard 0 of every node at start.
    pub(super) usr: Bytes,
    /// The users this node is counted in as having a signed-in socket (`cluster_users`).
    pub(super) users_counted: std::collections::HashSet<(AppIdx, Box<str>)>,
    /// Sockets waiting for their channel's topic to be confirmed, by channel.
    pending: HashMap<(AppIdx, Box<str>), Pending>,
    /// EVALs waiting for their answer (`cluster_presence`).
    pub(super) evals: HashMap<u64, super::cluster_presence::Wait>,
    /// Shard 0's next dead-node sweep (`None` on the other shards).
    pub(super) next_reap: Option<Instant>,
    /// Channels this node is counted in as occupied (`cluster_occupancy`).
    pub(super) occupied: std::collections::HashSet<(AppIdx, Box<str>)>,
    /// Owned channels whose local subscriber count changed this loop turn (`cluster_query`).
    pub(super) subs_changed: std::collections::HashSet<(AppIdx, Box<str>)>,
    /// When the first of them was noted.
    pub(super) subs_since: Option<Instant>,
}

struct Pending {
    seq: u64,
    ops: Vec<ChannelOp>,
    /// The topic is confirmed and a cache channel's last event is being read from Redis
    /// (`cluster_cache`): the id of that read.
    fetch: Option<u64>,
}

impl Clustered {
    pub(super) fn new(bp: Arc<Backplane>) -> Self {
        Clustered {
            ctl: Bytes::from(format!("{}pctl", bp.prefix())),
            usr: Bytes::from(format!("{}pusr", bp.prefix())),
            users_counted: Default::default(),
            bp,
            pending: HashMap::new(),
            evals: HashMap::new(),
            next_reap: None,
            occupied: Default::default(),
            subs_changed: Default::default(),
            subs_since: None,
        }
    }
}

fn topic(bp: &Backplane, app_id: &str, channel: &str) -> Bytes {
    Bytes::from(format!("{}p:{app_id}:{channel}", bp.prefix()))
}

/// The Redis channel of a Pusher channel.
pub(super) fn topic_of(bp: &Backplane, app_id: &str, channel: &str) -> Bytes {
    topic(bp, app_id, channel)
}

/// Send an encoded frame to the channel's subscribers on the other nodes (presence events;
/// refused: counted by the backplane, this node only).
pub(super) fn publish_frame(p: &Pusher, app: AppIdx, channel: &str, frame: &Bytes) {
    let Some(c) = p.cluster.as_ref() else {
        return;
    };
    let app_id = p.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
    let _ = c.bp.publish(
        topic(&c.bp, app_id, channel),
        encode(KIND_CLIENT, None, frame),
    );
}

/// `(app id, channel)` of one of our topics.
fn parse_topic<'a>(bp: &Backplane, topic: &'a [u8]) -> Option<(&'a str, &'a str)> {
    let t = std::str::from_utf8(topic).ok()?;
    let rest = t.strip_prefix(bp.prefix())?.strip_prefix("p:")?;
    rest.rsplit_once(':')
}

/// Encode a payload (pure).
pub(super) fn encode(kind: u8, except: Option<SocketId>, frame: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(HEADER + frame.len());
    v.push(kind);
    let e = except.unwrap_or(SocketId {
        node: 0,
        sock: SockRef::new(0, 0, 0),
    });
    v.push(u8::from(except.is_some()));
    v.extend_from_slice(&e.node.to_be_bytes());
    v.extend_from_slice(&e.sock.shard.0.to_be_bytes());
    v.extend_from_slice(&e.sock.slot.0.to_be_bytes());
    v.extend_from_slice(&e.sock.gen.0.to_be_bytes());
    v.extend_from_slice(frame);
    Bytes::from(v)
}

/// Decode a payload: (kind, except, frame); `None` if malformed (pure, never panics).
pub(super) fn decode(p: &Bytes) -> Option<(u8, Option<SocketId>, Bytes)> {
    let h = p.get(..HEADER)?;
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_be_bytes(h.get(i..i + 4)?.try_into().ok()?)) };
    let shard = u16::from_be_bytes(h.get(6..8)?.try_into().ok()?);
    let (kind, flag) = (*h.first()?, *h.get(1)?);
    if kind > KIND_CLIENT || flag > 1 {
        return None;
    }
    let except = (flag == 1).then_some(SocketId {
        node: u32_at(2)?,
        sock: SockRef::new(shard, u32_at(8)?, u32_at(12)?),
    });
    Some((kind, except, p.slice(HEADER..)))
}

impl Pusher {
    /// After a subscribe on a `cache-` channel: the cached event, else `pusher:cache_miss`.
    pub(super) fn send_cached(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        channel: &str,
        sock: SockRef,
    ) {
        if !channels::is_cache(channel) {
            return;
        }
        let now = Instant::now();
        let f = match self.cache.get(app, channel, now) {
            Some(f) => f,
            None => {
                self.webhooks.cache_miss(app, channel, now);
                protocol::cache_miss(channel)
            }
        };
        out.deliver(&f, &[sock]);
    }

    /// The same instance, in cluster mode through `bp` (`None`: a single node).
    /// (`shard` is the instance's shard: shard 0 listens for `terminate_connections`.)
    pub fn with_cluster(mut self, bp: Option<Arc<Backplane>>, shard: ShardId) -> Self {
        if let Some(bp) = bp {
            let tag = crate::cluster::node_tag(bp.incarnation());
            self.node_tag = socket_id::node_base(tag);
            let mut c = Clustered::new(bp);
            if shard == ShardId(0) {
                c.next_reap = Some(Instant::now());
            }
            if shard == ShardId(0) && c.bp.subscribe(c.ctl.clone(), shard).is_err() {
                tracing::error!("backplane queue full at start: terminations stay per node");
            }
            if shard == ShardId(0) && c.bp.subscribe(c.usr.clone(), shard).is_err() {
                tracing::error!("backplane queue full at start: watchlists stay per node");
            }
            self.cluster = Some(c);
        }
        self
    }

    /// `POST …/users/{u}/terminate_connections`: tell the other nodes too (`Err`: 503).
    pub(super) fn cluster_terminate(&self, app: AppIdx, user: &str) -> Result<(), ()> {
        let Some(c) = self.cluster.as_ref() else {
            return Ok(());
        };
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        let payload = Bytes::from(format!("t{app_id}\n{user}"));
        c.bp.publish(c.ctl.clone(), payload).map_err(drop)
    }

    /// A termination another node accepted: run it here as if asked here.
    fn cluster_ctl(&mut self, out: &mut dyn Outbox<PusherMsg>, payload: &[u8]) {
        let parsed = std::str::from_utf8(payload)
            .ok()
            .and_then(|p| p.strip_prefix('t'))
            .and_then(|p| p.split_once('\n'));
        let Some((app_id, user)) = parsed else {
            if let Some(c) = self.cluster.as_ref() {
                c.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        let Some((app, _)) = self.apps.by_id(app_id) else {
            return;
        };
        let msg = users::UserMsg::Terminate {
            app,
            user: user.into(),
        };
        if self.route_user(out, app, user, msg).is_err() {
            tracing::warn!("pusher: user owner inbox full, a remote termination was lost");
        }
    }

    /// Before a subscribe on the owner: `Some(op)` to go on now; `None` when the socket waits
    /// for the channel's topic (or was refused: the backplane queue is full).
    pub(super) fn cluster_hold(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        op: ChannelOp,
    ) -> Option<ChannelOp> {
        if self.cluster.is_none() {
            return Some(op);
        }
        if !self.registry.subscribers(op.app, &op.channel).is_empty()
            || self.joins_waiting(op.app, &op.channel)
        {
            return Some(op);
        }
        let Some(c) = self.cluster.as_mut() else {
            return Some(op);
        };
        let key = (op.app, op.channel.clone());
        if let Some(p) = c.pending.get_mut(&key) {
            p.ops.push(op);
            return None;
        }
        let app_id = self.apps.get(op.app).map(|a| a.id.as_str()).unwrap_or("");
        match c
            .bp
            .subscribe(topic(&c.bp, app_id, &op.channel), out.shard())
        {
            Ok(seq) => {
                let (app, channel) = (op.app, op.channel.clone());
                let p = Pending {
                    seq,
                    ops: vec![op],
                    fetch: None,
                };
                c.pending.insert(key, p);
                self.cluster_occupancy(out.shard(), app, &channel, true);
            }
            Err(_) => {
                let f = protocol::error(protocol::CODE_OVER_CAPACITY, "Over capacity, try again");
                out.deliver(&f, &[op.sock]);
            }
        }
        None
    }

    /// On the owner, after an unsubscribe: drop a waiting socket; on the last local
    /// subscriber, unsubscribe the topic.
    pub(super) fn cluster_left(&mut self, shard: ShardId, op: &ChannelOp, vacated: bool) {
        self.forget_joins(op.app, &op.channel, op.sock);
        let vacated = vacated && !self.joins_waiting(op.app, &op.channel);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let key = (op.app, op.channel.clone());
        if let Some(p) = c.pending.get_mut(&key) {
            p.ops.retain(|o| o.sock != op.sock);
        }
        if vacated {
            let app_id = self.apps.get(op.app).map(|a| a.id.as_str()).unwrap_or("");
            c.bp.unsubscribe(topic(&c.bp, app_id, &op.channel), shard);
            self.cluster_occupancy(shard, op.app, &op.channel, false);
        }
    }

    /// On the accepting shard, before routing HTTP API publishes: send them to the other
    /// nodes, all or none. `Err`: answer 503.
    /// A cache channel's event is kept in Redis first (`cluster_cache`); `Ok(Some(id))`: the
    /// acknowledgement waits for that write's answer.
    pub(super) fn cluster_publish(
        &self,
        shard: ShardId,
        ps: &[Publish],
    ) -> Result<Option<u64>, ()> {
        let Some(c) = self.cluster.as_ref() else {
            return Ok(None);
        };
        c.bp.can_publish(ps.len()).map_err(drop)?;
        let cached = self.cluster_cache_put(shard, ps);
        for p in ps {
            let app_id = self.apps.get(p.app).map(|a| a.id.as_str()).unwrap_or("");
            let t = topic(&c.bp, app_id, &p.channel);
            c.bp.publish(t, encode(KIND_API, p.except, &p.frame))
                .map_err(drop)?;
        }
        Ok(cached)
    }

    /// On the owner, after a client event's local delivery: send it to the other nodes
    /// (refused: this node only; the backplane counts it).
    pub(super) fn cluster_client_event(
        &self,
        app: AppIdx,
        channel: &str,
        f: &Bytes,
        from: SockRef,
    ) {
        let Some(c) = self.cluster.as_ref() else {
            return;
        };
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        let except = SocketId {
            node: self.node_tag,
            sock: from,
        };
        let _ = c.bp.publish(
            topic(&c.bp, app_id, channel),
            encode(KIND_CLIENT, Some(except), f),
        );
    }

    /// What the backplane brought this owner shard.
    pub(super) fn cluster_incoming(&mut self, out: &mut dyn Outbox<PusherMsg>, msg: &Incoming) {
        let Some(c) = self.cluster.as_ref() else {
            return;
        };
        let (topic, payload, seq) = match msg {
            Incoming::Message { topic, payload } => (topic, Some(payload), 0),
            Incoming::Subscribed { topic, seq } => (topic, None, *seq),
            Incoming::Reply { .. } => return self.cluster_reply(out, msg),
        };
        if *topic == c.ctl {
            if let Some(p) = payload {
                self.cluster_ctl(out, p);
            }
            return;
        }
        if *topic == c.usr {
            if let Some(p) = payload {
                self.cluster_usr(out, p);
            }
            return;
        }
        let Some((app_id, channel)) = parse_topic(&c.bp, topic) else {
            return;
        };
        let Some((app, _)) = self.apps.by_id(app_id) else {
            return;
        };
        match payload {
            None => self.cluster_confirmed(out, app, channel, seq),
            Some(p) => {
                let Some((kind, except, frame)) = decode(p) else {
                    c.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let publish = Publish {
                    app,
                    channel: channel.into(),
                    frame,
                    except,
                    cache: true,
                };
                if kind == KIND_API {
                    self.publish(out, &publish);
                } else {
                    // A client event: never cached, nothing else to check here (the origin's
                    // owner did), the sender is on another node.
                    let subs = self.registry.subscribers(app, channel);
                    out.deliver(&publish.frame, subs);
                    let n = subs.len();
                    self.count_out(out, app, n);
                }
            }
        }
    }

    fn cluster_confirmed(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        channel: &str,
        seq: u64,
    ) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let key = (app, Box::<str>::from(channel));
        if c.pending
            .get(&key)
            .is_none_or(|p| p.seq != seq || p.fetch.is_some())
        {
            return;
        }
        if let Some(id) = self.cluster_cache_fetch(out.shard(), app, channel) {
            if let Some(p) = self.cluster.as_mut().and_then(|c| c.pending.get_mut(&key)) {
                p.fetch = Some(id);
            }
            return;
        }
        self.subscribe_pending(out, app, channel);
    }

    /// A cache channel's last event was read from Redis (`cluster_cache`): go on as
    /// `cluster_confirmed` would have.
    pub(super) fn cluster_fetched(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        channel: &str,
        id: u64,
    ) {
        let key = (app, Box::<str>::from(channel));
        let ours = self
            .cluster
            .as_ref()
            .and_then(|c| c.pending.get(&key))
            .is_some_and(|p| p.fetch == Some(id));
        if ours {
            self.subscribe_pending(out, app, channel);
        }
    }

    /// Subscribe the sockets that waited for the channel's topic.
    fn subscribe_pending(&mut self, out: &mut dyn Outbox<PusherMsg>, app: AppIdx, channel: &str) {
        let key = (app, Box::<str>::from(channel));
        let Some(p) = self.cluster.as_mut().and_then(|c| c.pending.remove(&key)) else {
            return;
        };
        for op in p.ops {
            self.owner_subscribe_now(out, op);
        }
        // Everyone left (or was refused) while the topic was being subscribed; presence
        // joins still waiting for Redis keep it.
        self.unsubscribe_if_idle(out.shard(), app, channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_garbage() {
        let ex = SocketId {
            node: 7,
            sock: SockRef::new(3, 9, 2),
        };
        for (kind, except) in [(KIND_API, None), (KIND_CLIENT, Some(ex))] {
            let p = encode(kind, except, b"\x81\x02hi");
            let (k, e, f) = decode(&p).unwrap();
            assert_eq!((k, e, &f[..]), (kind, except, &b"\x81\x02hi"[..]));
        }
        let good = encode(KIND_API, None, b"x");
        for n in 0..HEADER {
            assert!(decode(&good.slice(..n)).is_none());
        }
        let mut bad = good.to_vec();
        bad[0] = 9;
        assert!(decode(&Bytes::from(bad)).is_none());
    }
}
