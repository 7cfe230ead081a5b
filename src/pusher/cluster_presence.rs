//! Pusher presence across nodes: members counted per user over the whole cluster, in Redis.
//!
//! Why Redis state and not messages: a node that joins a presence channel must answer
//! `subscription_succeeded` with every member of every node, and `member_added` /
//! `member_removed` must be sent once per user over the cluster, when its first connection
//! anywhere arrives / its last one anywhere leaves. Each node still counts its own connections
//! per user (`presence::Presence`); only a user's first / last **local** connection costs a
//! Redis round trip, a Lua script (atomic):
//!
//! * `pres:<app>:<channel>` — user id → `user_info` JSON (the global members);
//! * `presn:<app>:<channel>` — `<node>\n<user id>` → 1 (which nodes have the user; a node is
//!   named by its incarnation, `Backplane::incarnation`, so a restart is a new node);
//! * `presc:<app>:<channel>` — user id → number of nodes having it;
//! * `pnode:<node>` — the `<app>:<channel>`s where the node has entries (for clean-up).
//!
//! `JOIN` adds the node's entry and answers (global first?, all members); the joiner's
//! `subscription_succeeded` is built from that answer, and on a global first the owner sends
//! `member_added` to its local subscribers and publishes the same frame to the other nodes.
//! `LEAVE` removes it and answers whether that was the user's last node (then `member_removed`,
//! the same way). A presence subscribe that is not the user's first local connection also runs
//! `JOIN` (idempotent), for the member list.
//!
//! Node death: the bridge keeps `alive:<node>` (10 s TTL, refreshed every 3 s) and
//! `nodes`; shard 0 of every node runs `REAP` every 5 s, which removes the entries of nodes
//! whose liveness key is gone and answers the (channel, user) pairs that so left the cluster;
//! that node delivers and publishes their `member_removed`. A dead node's members are gone
//! within ~15 s. The `member_added` / `member_removed` webhooks are raised by the node that
//! saw the global first / last (once per cluster; a dead node's members: none yet). The link
//! down: joins and leaves are answered from local state (as a single
//! node), and Redis is not reconciled afterwards (a known gap).

use super::cluster::{publish_frame, topic_of};
use super::*;
use crate::cluster::{Incoming, Value};
use crate::ids::{ReqRef, ShardId};
use serde_json::{Map, Value as Json};

/// How often shard 0 looks for dead nodes.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

const JOIN: &str = r"
local f = ARGV[2] .. '\n' .. ARGV[1]
local first = 0
if redis.call('HSETNX', KEYS[2], f, 1) == 1 then
  if redis.call('HINCRBY', KEYS[3], ARGV[1], 1) == 1 then first = 1 end
  redis.call('SADD', KEYS[4], ARGV[4])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {first, redis.call('HGETALL', KEYS[1])}
";

const LEAVE: &str = r"
if redis.call('HDEL', KEYS[2], ARGV[2] .. '\n' .. ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[3], ARGV[1], -1) <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('HDEL', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
";

const REAP: &str = r"
local out = {}
local vac = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. n) == 0 then
    local s = ARGV[1] .. 'pnode:' .. n
    for _, suf in ipairs(redis.call('SMEMBERS', s)) do
      local N = ARGV[1] .. 'presn:' .. suf
      for _, f in ipairs(redis.call('HKEYS', N)) do
        local nl = string.find(f, '\n', 1, true)
        if nl and string.sub(f, 1, nl - 1) == n then
          redis.call('HDEL', N, f)
          local u = string.sub(f, nl + 1)
          if redis.call('HINCRBY', ARGV[1] .. 'presc:' .. suf, u, -1) <= 0 then
            redis.call('HDEL', ARGV[1] .. 'presc:' .. suf, u)
            redis.call('HDEL', ARGV[1] .. 'pres:' .. suf, u)
            table.insert(out, suf)
            table.insert(out, u)
          end
        end
      end
    end
    redis.call('DEL', s)
    local o = ARGV[1] .. 'onode:' .. n
    for _, suf in ipairs(redis.call('SMEMBERS', o)) do
      local app, ch = string.match(suf, '^(.*):([^:]*)$')
      if app then
        local h = ARGV[1] .. 'occ:' .. app
        if redis.call('HINCRBY', h, ch, -1) <= 0 then
          redis.call('HDEL', h, ch)
          table.insert(vac, suf)
        end
      end
    end
    redis.call('DEL', o)
    redis.call('SREM', KEYS[1], n)
  end
end
return {out, vac}
";

/// What an EVAL's answer is for.
pub(super) enum Wait {
    /// A presence subscribe, answered when `JOIN` answers.
    Join {
        app: AppIdx,
        channel: Box<str>,
        sock: SockRef,
        uid: Box<str>,
        info: Json,
        local_added: bool,
        first_local: bool,
        /// The socket left meanwhile.
        gone: bool,
    },
    /// A user's last local connection left.
    Leave {
        app: AppIdx,
        channel: Box<str>,
        uid: Box<str>,
    },
    /// The dead-node sweep.
    Reap,
    /// A count in or out of a channel's occupancy (`cluster_occupancy`).
    Occupancy {
        app: AppIdx,
        channel: Box<str>,
        up: bool,
    },
    /// A cache channel's last event, read when its topic was confirmed (`cluster_cache`).
    Cache { app: AppIdx, channel: Box<str> },
    /// A count of a user's nodes in or out (`cluster_users`).
    User {
        app: AppIdx,
        user: Box<str>,
        up: bool,
    },
    /// Which of a new watcher's users are online (`cluster_users`).
    Watch {
        app: AppIdx,
        sock: SockRef,
        ids: Vec<Box<str>>,
    },
    /// The dead-node sweep of signed-in users (`cluster_users::UREAP`).
    UserReap,
    /// The cluster's view for an HTTP API query, gather `gather` (`cluster_query`).
    Query { gather: u64 },
    /// A publish's acknowledgement, sent once its cache write is answered (`cluster_cache`).
    Ack { req: ReqRef, response: Response },
}

impl Pusher {
    fn pres_keys(&self, app: AppIdx) -> Option<(String, &str)> {
        let c = self.cluster.as_ref()?;
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        Some((c.bp.prefix().to_owned(), app_id))
    }

    /// On the owner, a presence subscribe: `true` when it was handed to Redis (answered
    /// later, `cluster_reply`); `false`: go on locally (not clustered, or the link is down).
    pub(super) fn cluster_join(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        (app, channel, sock): (AppIdx, &str, SockRef),
        (uid, info): (&str, &Json),
        local_added: bool,
        first_local: bool,
    ) -> bool {
        let Some((prefix, app_id)) = self.pres_keys(app) else {
            return false;
        };
        let Some(c) = self.cluster.as_ref() else {
            return false;
        };
        let suffix = format!("{app_id}:{channel}");
        let k = |kind: &str| Bytes::from(format!("{prefix}{kind}:{suffix}"));
        let keys = vec![
            k("pres"),
            k("presn"),
            k("presc"),
            Bytes::from(format!("{prefix}pnode:{}", c.bp.incarnation())),
        ];
        let args = vec![
            Bytes::copy_from_slice(uid.as_bytes()),
            Bytes::copy_from_slice(c.bp.incarnation().as_bytes()),
            Bytes::from(info.to_string()),
            Bytes::from(suffix),
        ];
        let Ok(id) = c.bp.eval(JOIN, keys, args, out.shard()) else {
            return false;
        };
        let w = Wait::Join {
            app,
            channel: channel.into(),
            sock,
            uid: uid.into(),
            info: info.clone(),
            local_added,
            first_local,
            gone: false,
        };
        if let Some(c) = self.cluster.as_mut() {
            c.evals.insert(id, w);
        }
        true
    }

    /// On the owner, a user's last local connection left: `true` when Redis decides whether
    /// it was the last in the cluster (`member_removed` then, from `cluster_reply`).
    pub(super) fn cluster_leave(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        channel: &str,
        uid: &str,
    ) -> bool {
        let Some((prefix, app_id)) = self.pres_keys(app) else {
            return false;
        };
        let app_id = app_id.to_owned();
        let Some(c) = self.cluster.as_mut() else {
            return false;
        };
        let k = |kind: &str| Bytes::from(format!("{prefix}{kind}:{app_id}:{channel}"));
        let keys = vec![k("pres"), k("presn"), k("presc")];
        let args = vec![
            Bytes::copy_from_slice(uid.as_bytes()),
            Bytes::copy_from_slice(c.bp.incarnation().as_bytes()),
        ];
        let Ok(id) = c.bp.eval(LEAVE, keys, args, out.shard()) else {
            return false;
        };
        let w = Wait::Leave {
            app,
            channel: channel.into(),
            uid: uid.into(),
        };
        c.evals.insert(id, w);
        true
    }

    /// Whether presence joins of `channel` wait for Redis (the channel is live meanwhile).
    pub(super) fn joins_waiting(&self, app: AppIdx, channel: &str) -> bool {
        self.cluster.as_ref().is_some_and(|c| {
            c.evals.values().any(|w| {
                matches!(w, Wait::Join { app: a, channel: ch, gone: false, .. }
                    if *a == app && **ch == *channel)
            })
        })
    }

    /// A socket left: its join waiting for Redis is answered to nobody.
    pub(super) fn forget_joins(&mut self, app: AppIdx, channel: &str, sock: SockRef) {
        if let Some(c) = self.cluster.as_mut() {
            for w in c.evals.values_mut() {
                if let Wait::Join {
                    app: a,
                    channel: ch,
                    sock: s,
                    gone,
                    ..
                } = w
                {
                    if *a == app && **ch == *channel && *s == sock {
                        *gone = true;
                    }
                }
            }
        }
    }

    /// Shard 0's next dead-node sweep.
    pub(super) fn cluster_deadline(&self) -> Option<Instant> {
        self.cluster.as_ref().and_then(|c| c.next_reap)
    }

    /// Shard 0's timer: sweep dead nodes' presence entries.
    pub(super) fn cluster_tick(&mut self, out: &mut dyn Outbox<PusherMsg>, now: Instant) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        match c.next_reap {
            Some(t) if t <= now => c.next_reap = Some(now + REAP_EVERY),
            _ => return,
        }
        let prefix = c.bp.prefix().to_owned();
        let keys = vec![Bytes::from(format!("{prefix}nodes"))];
        let args = vec![
            Bytes::from(prefix),
            Bytes::copy_from_slice(c.bp.incarnation().as_bytes()),
        ];
        // Socket counts and users first: REAP then forgets the dead nodes.
        let (k, a) = (keys.clone(), args.clone());
        let _ = c.bp.eval(super::cluster_query::SREAP, k, a, out.shard());
        let (k, a) = (keys.clone(), args.clone());
        if let Ok(id) = c.bp.eval(super::cluster_users::UREAP, k, a, out.shard()) {
            c.evals.insert(id, Wait::UserReap);
        }
        if let Ok(id) = c.bp.eval(REAP, keys, args, out.shard()) {
            c.evals.insert(id, Wait::Reap);
        }
    }

    /// An EVAL answered.
    pub(super) fn cluster_reply(&mut self, out: &mut dyn Outbox<PusherMsg>, msg: &Incoming) {
        let Incoming::Reply { id, value } = msg else {
            return;
        };
        let Some(w) = self.cluster.as_mut().and_then(|c| c.evals.remove(id)) else {
            return;
        };
        match w {
            Wait::Join {
                app,
                channel,
                sock,
                uid,
                info,
                local_added,
                first_local,
                gone,
            } => {
                let answer = match value {
                    Value::Array(a) => match a.as_slice() {
                        [Value::Int(first), Value::Array(flat)] => Some((*first == 1, flat)),
                        _ => None,
                    },
                    _ => None,
                };
                let (global_first, snap) = match answer {
                    Some((f, flat)) => (f, snapshot(flat)),
                    // Redis refused or the link broke: as a single node.
                    None => (local_added, self.presence.snapshot(app, &channel)),
                };
                if !gone {
                    self.registry.subscribe(app, &channel, sock);
                    self.cluster_subs_changed(app, &channel);
                    out.deliver(&protocol::presence_succeeded(&channel, &snap), &[sock]);
                }
                if global_first {
                    let f = protocol::member_added(&channel, &uid, &info);
                    let subs = self.registry.subscribers(app, &channel);
                    channels::deliver_except(out, &f, subs, Some(sock));
                    if answer.is_some() {
                        publish_frame(self, app, &channel, &f);
                    }
                }
                if gone {
                    self.unsubscribe_if_idle(out.shard(), app, &channel);
                    return;
                }
                let added = global_first.then_some(&*uid);
                let _ = first_local; // occupancy is decided over the nodes
                self.webhooks.subscribed(app, &channel, false, added);
                self.send_cached(out, app, &channel, sock);
            }
            Wait::Leave { app, channel, uid } => {
                let last = match value {
                    Value::Int(n) => *n == 1,
                    _ => true, // refused or link lost: as a single node
                };
                if last {
                    let f = protocol::member_removed(&channel, &uid);
                    out.deliver(&f, self.registry.subscribers(app, &channel));
                    if matches!(value, Value::Int(_)) {
                        publish_frame(self, app, &channel, &f);
                    }
                    let now = Instant::now();
                    self.webhooks
                        .unsubscribed(app, &channel, Some(&uid), false, now);
                }
            }
            Wait::Occupancy { app, channel, up } => self.occupancy_reply(app, &channel, up, value),
            Wait::Cache { app, channel } => self.cache_reply(out, (app, &channel), *id, value),
            Wait::User { app, user, up } => self.user_reply(out, (app, &user, up), value),
            Wait::Watch { app, sock, ids } => self.watch_reply(out, (app, sock, ids), value),
            Wait::UserReap => self.users_reaped(out, value),
            Wait::Query { gather } => self.query_reply(out, gather, value),
            // Written or not (an error, the link lost), the publish was accepted.
            Wait::Ack { req, response } => out.reply(req, response),
            Wait::Reap => {
                let Value::Array(a) = value else {
                    return;
                };
                let [Value::Array(members), Value::Array(vacated)] = a.as_slice() else {
                    return;
                };
                for pair in members.chunks(2) {
                    let [Value::Bulk(suf), Value::Bulk(user)] = pair else {
                        continue;
                    };
                    let (Ok(suf), Ok(user)) = (std::str::from_utf8(suf), std::str::from_utf8(user))
                    else {
                        continue;
                    };
                    self.reaped(out, suf, Some(user));
                }
                for suf in vacated {
                    if let Value::Bulk(suf) = suf {
                        if let Ok(suf) = std::str::from_utf8(suf) {
                            self.reaped(out, suf, None);
                        }
                    }
                }
            }
        }
    }

    /// A dead node's user left the cluster (`Some(user)`): tell this node's subscribers
    /// (through the owner) and the other nodes, and raise `member_removed`; or the dead node
    /// was the channel's last (`None`): raise `channel_vacated`. Webhooks from this shard.
    fn reaped(&mut self, out: &mut dyn Outbox<PusherMsg>, suffix: &str, user: Option<&str>) {
        let Some((app_id, channel)) = suffix.rsplit_once(':') else {
            return;
        };
        let Some((app, _)) = self.apps.by_id(app_id) else {
            return;
        };
        let now = Instant::now();
        let Some(user) = user else {
            return self.webhooks.unsubscribed(app, channel, None, true, now);
        };
        self.webhooks
            .unsubscribed(app, channel, Some(user), false, now);
        let frame = protocol::member_removed(channel, user);
        publish_frame(self, app, channel, &frame);
        let p = Publish {
            app,
            channel: channel.into(),
            frame,
            except: None,
            cache: false,
        };
        let _ = self.route(out, app, channel, PusherMsg::Publish(Box::new(p)));
    }

    /// After the last waiting join of a channel nobody stayed in: drop its topic.
    pub(super) fn unsubscribe_if_idle(&mut self, shard: ShardId, app: AppIdx, channel: &str) {
        if !self.registry.subscribers(app, channel).is_empty() || self.joins_waiting(app, channel) {
            return;
        }
        if let Some(c) = self.cluster.as_ref() {
            let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
            c.bp.unsubscribe(topic_of(&c.bp, app_id, channel), shard);
            self.cluster_occupancy(shard, app, channel, false);
        }
    }
}

/// `{"ids","hash","count"}` from `HGETALL`'s flat field/value list (pure).
fn snapshot(flat: &[Value]) -> Json {
    let mut ids = Vec::new();
    let mut hash = Map::new();
    for pair in flat.chunks(2) {
        let [Value::Bulk(id), Value::Bulk(info)] = pair else {
            continue;
        };
        let id = String::from_utf8_lossy(id).into_owned();
        let info = serde_json::from_slice(info).unwrap_or(Json::Null);
        ids.push(Json::from(id.as_str()));
        hash.insert(id, info);
    }
    let count = ids.len();
    serde_json::json!({"ids": ids, "hash": hash, "count": count})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_from_hgetall() {
        let b = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let flat = [b("u1"), b(r#"{"n":1}"#), b("u2"), b("not json"), b("odd")];
        let s = snapshot(&flat);
        assert_eq!(s["count"], 2);
        assert_eq!(s["ids"], serde_json::json!(["u1", "u2"]));
        assert_eq!(s["hash"]["u1"]["n"], 1);
        assert_eq!(s["hash"]["u2"], Json::Null);
    }
}
