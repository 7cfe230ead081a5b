//! Channelstream across cluster nodes: one owner node for the whole model, elected with a
//! Redis lease; the other nodes forward model commands to it and serve what it sends back.
//!
//! Why one owner for the cluster, as one shard owns it within a node (ARCHITECTURE.md, "Where
//! the Channelstream state lives"): `/connect`, `/subscribe`, `/user_state`, presence events and
//! `channels_info` each cut across users, connections and channels in one step; with owners
//! per user or channel each becomes a cross-node transaction over Redis with ordering hazards.
//! The cost that grows with load, the fan-out to sockets, stays on the nodes holding them.
//!
//! * **Lease**: shard 0 of every node runs `LEASE` every 2 s: the key `cs:owner` holds the
//!   owner's incarnation for 10 s, refreshed by the owner, taken by the first node to find it
//!   gone. The answer tells every node who owns the model. The owner acts as one only for 8 s
//!   after sending the script that last confirmed it (less than the lease, so it stops before
//!   another node can take over); past that, commands wait for the next answer.
//! * **Forwarding** (a node that does not own it): every model command except `/message`
//!   batches (which every node applies anyway) goes to the owner on the shared topic
//!   `herald:<db>:cs`, named for it (`cluster_wire`), with a request id; the request stays
//!   parked here until the owner's reply (`R`) or refusal (`B`) comes back on this node's own
//!   topic `herald:<db>:csn:<incarnation>` (subscribed before the first command this node
//!   forwards; commands wait for it, and for the first lease answer, at most 2 s), or until a
//!   deadline (10 s, a long poll 60 s) answers it 503.
//!   Client activity (frames from a websocket) is collected and sent once a second (`A`).
//! * **Owner**: a remote request gets a stand-in `ReqRef` and a remote socket a stand-in
//!   `SockRef` (shard `REMOTE_SHARD`, a slot of this table, a generation), so the model runs
//!   unchanged; the effects aimed at stand-ins leave as `R`/`D`/`C` on the origin node's topic
//!   (one `D` per node per frame, whatever the number of its sockets).
//! * **Dead nodes**: the owner checks every 5 s the liveness keys of the nodes it holds
//!   sockets or requests for; a dead node's sockets are closed in the model (the connections
//!   then expire as for a vanished browser, 15 s), its requests forgotten.
//! * **Owner change**: a node whose lease answer names a new owner closes its local
//!   Channelstream websockets (1012: the client reconnects) and answers its forwarded requests
//!   503; an owner that lost the lease (its link was down longer than the lease) also starts
//!   from an empty model.
//! * **Link down**: every model command is answered 503 + `Retry-After: 1` at once (a websocket
//!   open is closed 1013), on the owner too, which cannot know whether it still owns the model.

use super::cluster_wire::{self as wire, NodeMsg};
use super::dialect::{to_response, CsMsg};
use super::model::{Command, Effects, Model, Now, Reply, ReqRef, SockRef};
use crate::cluster::{Backplane, Value};
use crate::dialect::{Outbox, Response};
use crate::ids::ShardId;
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The shard of the owner's stand-ins for remote sockets and requests (no real shard).
pub(super) const REMOTE_SHARD: ShardId = ShardId(u16::MAX);

const LEASE_MS: &str = "10000";
/// How long after sending a lease script that answered "this node" the node acts as the
/// owner: the lease's 10 s less a margin for clock drift, so that it stops before another
/// node can take the lease over (a node whose link was down stops serving, waits for an answer).
const OWNER_FOR: Duration = Duration::from_secs(8);
const LEASE_EVERY: Duration = Duration::from_secs(2);
/// A lease script not answered by then is asked again.
const LEASE_RETRY: Duration = Duration::from_secs(5);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Forwarded requests waiting here, and remote requests / sockets the owner holds.
const MAX_PENDING: usize = 65_536;
const MAX_REMOTE: usize = 1 << 20;
/// Commands held while the owner is not known yet (link up: the lease answer is on its way).
const MAX_WAITING: usize = 1024;
const WAIT_FOR_OWNER: Duration = Duration::from_secs(2);
/// Client activity is reported to the owner at most this often (one message per node).
const ACTIVITY_EVERY: Duration = Duration::from_secs(1);

/// Get or take the owner lease; answers the holder.
const LEASE: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return cur
";

/// The nodes (ARGV) whose liveness key (KEYS, same order) is gone.
const DEAD: &str = r"
local dead = {}
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 0 then table.insert(dead, ARGV[i]) end
end
return dead
";

/// Who owns the model, as last answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Unknown,
    Owner,
    Follower { node: Arc<str> },
}

#[derive(Debug)]
struct RemoteSock {
    node: Arc<str>,
    sock: SockRef,
    conn_id: Uuid,
    gen: u32,
}

#[derive(Debug)]
struct RemoteReq {
    node: Arc<str>,
    id: u64,
    gen: u32,
}

/// This node's own topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnSub {
    No,
    Asked,
    Ready,
}

/// What the dialect must do after a lease answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change {
    None,
    /// This node lost the model: start from an empty one.
    SteppedDown,
}

/// Shard 0's cluster side of the Channelstream dialect.
pub(super) struct CsCluster {
    bp: Arc<Backplane>,
    /// `herald:<db>:cs`: `/message` batches, applied by every node.
    pub(super) cs_topic: Bytes,
    /// `herald:<db>:csn:<incarnation>`: what the owner sends this node, subscribed before the
    /// first command this node forwards (a node that forwards none needs no topic).
    own_topic: Bytes,
    own_sub: OwnSub,
    role: Role,
    /// While `role` is `Owner`: until when the last confirmed lease lets this node act.
    owner_until: Instant,
    lease_eval: Option<(u64, Instant)>,
    sweep_eval: Option<u64>,
    next_lease: Instant,
    next_sweep: Instant,
    // Follower side.
    next_id: u64,
    pending: HashMap<u64, ReqRef>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// This node's attached Channelstream websockets (closed on an owner change).
    local_socks: HashMap<SockRef, Uuid>,
    /// Client activity to report to the owner at the next flush (one message a second).
    activity: HashMap<SockRef, Uuid>,
    next_activity: Instant,
    /// Commands that arrived before the first lease answer, oldest first.
    waiting: VecDeque<(Instant, Option<ReqRef>, Command)>,
    // Owner side.
    socks: Slab<RemoteSock>,
    sock_index: HashMap<(Arc<str>, SockRef), usize>,
    reqs: Slab<RemoteReq>,
    gen: u32,
}

impl CsCluster {
    /// Shard 0's instance: subscribes the shared topic (batches and commands).
    pub(super) fn new(bp: Arc<Backplane>, shard: ShardId) -> Self {
        let cs_topic = Bytes::from(format!("{}cs", bp.prefix()));
        let own_topic = node_topic(&bp, bp.incarnation());
        if bp.subscribe(cs_topic.clone(), shard).is_err() {
            tracing::error!("backplane queue full at start: Channelstream not clustered");
        }
        let now = Instant::now();
        CsCluster {
            bp,
            cs_topic,
            own_topic,
            own_sub: OwnSub::No,
            role: Role::Unknown,
            owner_until: now,
            lease_eval: None,
            sweep_eval: None,
            next_lease: now,
            next_sweep: now + SWEEP_EVERY,
            next_id: 1,
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
            local_socks: HashMap::new(),
            waiting: VecDeque::new(),
            activity: HashMap::new(),
            next_activity: now,
            socks: Slab::new(),
            sock_index: HashMap::new(),
            reqs: Slab::new(),
            gen: 0,
        }
    }

    /// The backplane (for counters).
    pub(super) fn bp(&self) -> &Backplane {
        &self.bp
    }

    /// Route one model command arriving on this node (shard 0).
    pub(super) fn dispatch(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        req: Option<ReqRef>,
        cmd: Command,
    ) {
        if matches!(
            cmd,
            Command::Messages(_) | Command::Edits(_) | Command::Deletes(_)
        ) {
            return self.run(model, out, req, cmd);
        }
        match &cmd {
            Command::WsOpen { conn_id, sock } => {
                self.local_socks.insert(*sock, *conn_id);
            }
            Command::WsClosed { sock, .. } => {
                self.local_socks.remove(sock);
            }
            _ => {}
        }
        let role = match &self.role {
            _ if !self.bp.is_up() => Role::Unknown,
            // The lease may have passed to another node: wait for the next answer.
            Role::Owner if Instant::now() >= self.owner_until => Role::Unknown,
            r => r.clone(),
        };
        match role {
            Role::Owner => self.run(model, out, req, cmd),
            Role::Unknown if self.bp.is_up() && self.waiting.len() < MAX_WAITING => {
                self.waiting.push_back((Instant::now(), req, cmd));
            }
            Role::Unknown => refuse(out, req, &cmd),
            Role::Follower { node } => {
                if self.own_sub != OwnSub::Ready {
                    if self.own_sub == OwnSub::No {
                        if self
                            .bp
                            .subscribe(self.own_topic.clone(), out.shard())
                            .is_err()
                        {
                            return refuse(out, req, &cmd);
                        }
                        self.own_sub = OwnSub::Asked;
                    }
                    if self.waiting.len() >= MAX_WAITING {
                        return refuse(out, req, &cmd);
                    }
                    return self.waiting.push_back((Instant::now(), req, cmd));
                }
                if let Command::WsActivity { conn_id, sock } = cmd {
                    if self.activity.is_empty() {
                        self.next_activity = Instant::now() + ACTIVITY_EVERY;
                    }
                    self.activity.insert(sock, conn_id);
                    return;
                }
                if req.is_some() && self.pending.len() >= MAX_PENDING {
                    return refuse(out, req, &cmd);
                }
                let id = if req.is_some() { self.next_id } else { 0 };
                let Some(p) = wire::command(&node, self.bp.incarnation(), id, &cmd) else {
                    return self.run(model, out, req, cmd);
                };
                if self.bp.publish(self.cs_topic.clone(), p).is_err() {
                    return refuse(out, req, &cmd);
                }
                if let Some(r) = req {
                    self.next_id += 1;
                    self.pending.insert(id, r);
                    let wait = if matches!(cmd, Command::Listen { .. }) {
                        LISTEN_TIMEOUT
                    } else {
                        FORWARD_TIMEOUT
                    };
                    self.deadlines.push(Reverse((Instant::now() + wait, id)));
                }
            }
        }
    }

    /// Run a command through the model here, with the effects on stand-ins sent out.
    pub(super) fn run(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        req: Option<ReqRef>,
        cmd: Command,
    ) {
        model.handle(req, cmd, now_pair(), &mut ClusterEffects { out, cl: self });
        out.set_counter(0, model.stats().channel_limit_refused);
    }

    /// The model's timers, with the effects on stand-ins sent out.
    pub(super) fn tick_model(&mut self, model: &mut Model, out: &mut dyn Outbox<CsMsg>) {
        model.tick(now_pair(), &mut ClusterEffects { out, cl: self });
    }

    /// Shutdown: answer the parked polls and the forwarded requests.
    pub(super) fn shutdown(&mut self, model: &mut Model, out: &mut dyn Outbox<CsMsg>) {
        model.finish_polls(&mut ClusterEffects { out, cl: self });
        self.fail_pending(out);
    }

    /// Something on this node's own topic.
    pub(super) fn on_node_message(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        payload: &Bytes,
    ) {
        let Some(msg) = wire::parse(payload) else {
            self.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return tracing::warn!("backplane: a malformed Channelstream node message");
        };
        match msg {
            NodeMsg::Command {
                to,
                origin,
                id,
                cmd,
            } => {
                if to == self.bp.incarnation() {
                    self.remote_command(model, out, origin, id, cmd)
                }
            }
            NodeMsg::Reply { id, reply } => {
                if let Some(req) = self.pending.remove(&id) {
                    out.reply(req, to_response(reply));
                }
            }
            NodeMsg::Busy { id } => {
                if let Some(req) = self.pending.remove(&id) {
                    out.reply(req, Response::busy());
                }
            }
            NodeMsg::Deliver { to, frame } => out.deliver(&frame, &to),
            NodeMsg::Activity { to, origin, socks } => {
                if to == self.bp.incarnation() && self.role == Role::Owner {
                    self.remote_activity(model, out, origin, socks)
                }
            }
            NodeMsg::Close { sock, code } => out.close(sock, code),
        }
    }

    /// Owner: a command another node forwarded.
    fn remote_command(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        origin: String,
        id: u64,
        mut cmd: Command,
    ) {
        let back = node_topic(&self.bp, &origin);
        let owner = self.role == Role::Owner && Instant::now() < self.owner_until;
        if !owner || !self.bp.is_up() || self.reqs.len() >= MAX_REMOTE {
            if id != 0 {
                let _ = self.bp.publish(back.clone(), wire::busy(id));
            }
            if let Command::WsOpen { sock, .. } = cmd {
                let _ = self.bp.publish(back, wire::close(sock, CloseCode::Again));
            }
            return;
        }
        let node: Arc<str> = origin.into();
        let mut closed = None;
        let is_close = matches!(cmd, Command::WsClosed { .. });
        match &mut cmd {
            Command::WsOpen { conn_id, sock } => {
                if self.socks.len() >= MAX_REMOTE {
                    let _ = self.bp.publish(back, wire::close(*sock, CloseCode::Again));
                    return;
                }
                *sock = self.stand_in_sock(node.clone(), *sock, *conn_id);
            }
            Command::WsClosed { sock, .. } | Command::WsActivity { sock, .. } => {
                let key = (node.clone(), *sock);
                let Some(r) = self
                    .sock_index
                    .get(&key)
                    .and_then(|&i| Some((i, self.socks.get(i)?)))
                else {
                    return;
                };
                *sock = remote_ref(r.0, r.1.gen);
                if is_close {
                    closed = Some(key);
                }
            }
            _ => {}
        }
        let req = (id != 0).then(|| {
            self.gen = self.gen.wrapping_add(1);
            let gen = self.gen;
            let slot = self.reqs.insert(RemoteReq { node, id, gen });
            ReqRef::new(REMOTE_SHARD.0, slot as u32, gen)
        });
        self.run(model, out, req, cmd);
        if let Some(key) = closed {
            if let Some(i) = self.sock_index.remove(&key) {
                self.socks.try_remove(i);
            }
        }
    }

    /// Owner: client activity another node collected.
    fn remote_activity(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        origin: String,
        socks: Vec<(SockRef, Uuid)>,
    ) {
        let node: Arc<str> = origin.into();
        for (sock, conn_id) in socks {
            let Some(&i) = self.sock_index.get(&(node.clone(), sock)) else {
                continue;
            };
            let Some(gen) = self.socks.get(i).map(|s| s.gen) else {
                continue;
            };
            let cmd = Command::WsActivity {
                conn_id,
                sock: remote_ref(i, gen),
            };
            self.run(model, out, None, cmd);
        }
    }

    fn stand_in_sock(&mut self, node: Arc<str>, sock: SockRef, conn_id: Uuid) -> SockRef {
        let key = (node.clone(), sock);
        if let Some((i, s)) = self
            .sock_index
            .get(&key)
            .and_then(|&i| Some((i, self.socks.get(i)?)))
        {
            return remote_ref(i, s.gen);
        }
        self.gen = self.gen.wrapping_add(1);
        let gen = self.gen;
        let i = self.socks.insert(RemoteSock {
            node,
            sock,
            conn_id,
            gen,
        });
        self.sock_index.insert(key, i);
        remote_ref(i, gen)
    }

    /// When shard 0 must next run `on_timer` for the cluster.
    pub(super) fn next_deadline(&self) -> Instant {
        let mut t = self.next_lease;
        if self.role == Role::Owner {
            t = t.min(self.next_sweep);
        }
        if let Some(Reverse((d, _))) = self.deadlines.peek() {
            t = t.min(*d);
        }
        if let Some((at, ..)) = self.waiting.front() {
            t = t.min(*at + WAIT_FOR_OWNER);
        }
        if !self.activity.is_empty() {
            t = t.min(self.next_activity);
        }
        t
    }

    /// Lease refresh, dead-node sweep, forwarded requests past their deadline.
    pub(super) fn on_timer(&mut self, out: &mut dyn Outbox<CsMsg>, now: Instant) {
        if now >= self.next_lease {
            self.next_lease = now + LEASE_EVERY;
            if self
                .lease_eval
                .is_none_or(|(_, at)| now >= at + LEASE_RETRY)
            {
                self.ask_lease(out.shard(), now);
            }
        }
        if self.role == Role::Owner && now >= self.next_sweep {
            self.next_sweep = now + SWEEP_EVERY;
            self.ask_sweep(out.shard());
        }
        if !self.activity.is_empty() && now >= self.next_activity {
            self.flush_activity();
        }
        while let Some((at, ..)) = self.waiting.front() {
            if now < *at + WAIT_FOR_OWNER {
                break;
            }
            if let Some((_, req, cmd)) = self.waiting.pop_front() {
                refuse(out, req, &cmd);
            }
        }
        while let Some(Reverse((d, id))) = self.deadlines.peek().copied() {
            if d > now {
                break;
            }
            self.deadlines.pop();
            if let Some(req) = self.pending.remove(&id) {
                out.reply(req, Response::busy());
            }
        }
    }

    /// Report the client activity of the last second to the owner (lost if it changed).
    fn flush_activity(&mut self) {
        let socks: Vec<(SockRef, Uuid)> = self.activity.drain().collect();
        if let Role::Follower { node } = &self.role {
            let p = wire::activity(node, self.bp.incarnation(), &socks);
            // Refused: advisory, as a skipped report on one node.
            let _ = self.bp.publish(self.cs_topic.clone(), p);
        }
    }

    /// Ask for the lease now (at start, once this node's topic is subscribed).
    pub(super) fn ask_lease(&mut self, shard: ShardId, now: Instant) {
        let keys = vec![Bytes::from(format!("{}cs:owner", self.bp.prefix()))];
        let args = vec![
            Bytes::copy_from_slice(self.bp.incarnation().as_bytes()),
            Bytes::from_static(LEASE_MS.as_bytes()),
        ];
        if let Ok(id) = self.bp.eval(LEASE, keys, args, shard) {
            self.lease_eval = Some((id, now));
        }
    }

    fn ask_sweep(&mut self, shard: ShardId) {
        if self.sweep_eval.is_some() {
            return;
        }
        let mut nodes: Vec<Arc<str>> = self.socks.iter().map(|(_, s)| s.node.clone()).collect();
        nodes.extend(self.reqs.iter().map(|(_, r)| r.node.clone()));
        nodes.sort();
        nodes.dedup();
        if nodes.is_empty() {
            return;
        }
        let prefix = self.bp.prefix();
        let keys = nodes
            .iter()
            .map(|n| Bytes::from(format!("{prefix}alive:{n}")))
            .collect();
        let args = nodes
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
            .collect();
        if let Ok(id) = self.bp.eval(DEAD, keys, args, shard) {
            self.sweep_eval = Some(id);
        }
    }

    /// Whether `id` is one of this side's scripts; handles its answer.
    pub(super) fn on_reply(
        &mut self,
        model: &mut Model,
        out: &mut dyn Outbox<CsMsg>,
        id: u64,
        value: &Value,
    ) -> Change {
        if let Some((_, sent)) = self.lease_eval.filter(|(l, _)| *l == id) {
            self.lease_eval = None;
            let mut change = Change::None;
            if let Value::Bulk(b) = value {
                if let Ok(holder) = std::str::from_utf8(b) {
                    change = self.owner_is(out, holder);
                    if self.role == Role::Owner {
                        self.owner_until = sent + OWNER_FOR;
                    }
                }
            }
            self.replay(model, out);
            return change;
        }
        if self.sweep_eval == Some(id) {
            self.sweep_eval = None;
            if let Value::Array(dead) = value {
                for d in dead {
                    if let Value::Bulk(n) = d {
                        let n = String::from_utf8_lossy(n).into_owned();
                        self.node_died(model, out, &n);
                    }
                }
            }
        }
        Change::None
    }

    /// This node's own topic is subscribed: forwarding may start.
    pub(super) fn own_topic_ready(&mut self, model: &mut Model, out: &mut dyn Outbox<CsMsg>) {
        self.own_sub = OwnSub::Ready;
        self.replay(model, out);
    }

    /// Run the commands held for the owner's name or this node's topic, once known.
    fn replay(&mut self, model: &mut Model, out: &mut dyn Outbox<CsMsg>) {
        if self.role == Role::Unknown {
            return;
        }
        for (_, req, cmd) in std::mem::take(&mut self.waiting) {
            self.dispatch(model, out, req, cmd);
        }
    }

    /// The lease answered `holder`.
    fn owner_is(&mut self, out: &mut dyn Outbox<CsMsg>, holder: &str) -> Change {
        let new = if holder == self.bp.incarnation() {
            Role::Owner
        } else {
            Role::Follower {
                node: holder.into(),
            }
        };
        if new == self.role {
            return Change::None;
        }
        let old = std::mem::replace(&mut self.role, new);
        tracing::info!(owner = holder, "channelstream: model owner changed");
        if old == Role::Unknown {
            return Change::None;
        }
        // The connections this node's sockets and requests belong to are gone with the owner.
        for (sock, _) in self.local_socks.drain() {
            out.close(sock, CloseCode::Restart);
        }
        self.fail_pending(out);
        if old == Role::Owner {
            self.socks.clear();
            self.sock_index.clear();
            self.reqs.clear();
            return Change::SteppedDown;
        }
        Change::None
    }

    fn fail_pending(&mut self, out: &mut dyn Outbox<CsMsg>) {
        for (_, req) in self.pending.drain() {
            out.reply(req, Response::busy());
        }
        self.deadlines.clear();
    }

    /// Owner: `node` is dead; its sockets close in the model, its requests are forgotten.
    fn node_died(&mut self, model: &mut Model, out: &mut dyn Outbox<CsMsg>, node: &str) {
        let gone: Vec<usize> = self
            .socks
            .iter()
            .filter(|(_, s)| &*s.node == node)
            .map(|(i, _)| i)
            .collect();
        tracing::info!(
            node,
            sockets = gone.len(),
            "channelstream: a node died, its websockets are closed"
        );
        for i in gone {
            let s = self.socks.remove(i);
            self.sock_index.remove(&(s.node, s.sock));
            let cmd = Command::WsClosed {
                conn_id: s.conn_id,
                sock: remote_ref(i, s.gen),
            };
            self.run(model, out, None, cmd);
        }
        self.reqs.retain(|_, r| &*r.node != node);
    }

    fn send_to(&self, node: &str, payload: Bytes) {
        // Refused (down, full): lost, counted by the backplane.
        let _ = self.bp.publish(node_topic(&self.bp, node), payload);
    }
}

fn node_topic(bp: &Backplane, node: &str) -> Bytes {
    Bytes::from(format!("{}csn:{node}", bp.prefix()))
}

fn remote_ref(i: usize, gen: u32) -> SockRef {
    SockRef::new(REMOTE_SHARD.0, i as u32, gen)
}

fn now_pair() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::Utc::now(),
    }
}

/// A command that cannot be served now: 503 to its request, 1013 to a websocket opening.
fn refuse(out: &mut dyn Outbox<CsMsg>, req: Option<ReqRef>, cmd: &Command) {
    if let Some(r) = req {
        out.reply(r, Response::busy());
    }
    if let Command::WsOpen { sock, .. } = cmd {
        out.close(*sock, CloseCode::Again);
    }
}

/// The model's effects on the owner: local ones through the outbox, those on stand-ins to
/// their nodes.
struct ClusterEffects<'a, 'o> {
    out: &'a mut (dyn Outbox<CsMsg> + 'o),
    cl: &'a mut CsCluster,
}

impl Effects for ClusterEffects<'_, '_> {
    fn reply(&mut self, req: ReqRef, reply: Reply) {
        if req.shard != REMOTE_SHARD {
            return self.out.reply(req, to_response(reply));
        }
        let i = req.slot.key();
        if self.cl.reqs.get(i).is_some_and(|r| r.gen == req.gen.0) {
            let r = self.cl.reqs.remove(i);
            self.cl.send_to(&r.node, wire::reply(r.id, &reply));
        }
    }

    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        if !to.iter().any(|s| s.shard == REMOTE_SHARD) {
            return self.out.deliver(frame, to);
        }
        let mut local = Vec::with_capacity(to.len());
        let mut remote: HashMap<Arc<str>, Vec<SockRef>> = HashMap::new();
        for s in to {
            if s.shard != REMOTE_SHARD {
                local.push(*s);
            } else if let Some(r) = self.cl.socks.get(s.slot.key()) {
                if r.gen == s.gen.0 {
                    remote.entry(r.node.clone()).or_default().push(r.sock);
                }
            }
        }
        if !local.is_empty() {
            self.out.deliver(frame, &local);
        }
        for (node, socks) in remote {
            self.cl.send_to(&node, wire::deliver(&socks, frame));
        }
    }

    fn close(&mut self, sock: SockRef, code: CloseCode) {
        if sock.shard != REMOTE_SHARD {
            return self.out.close(sock, code);
        }
        if let Some(r) = self.cl.socks.get(sock.slot.key()) {
            if r.gen == sock.gen.0 {
                self.cl.send_to(&r.node, wire::close(r.sock, code));
            }
        }
    }
}

impl CsCluster {
    /// Whether `topic` is this node's own.
    pub(super) fn is_own_topic(&self, topic: &Bytes) -> bool {
        *topic == self.own_topic
    }
}
