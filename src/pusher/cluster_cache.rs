//! Cache channels across nodes: the last HTTP API event of a `cache-` channel is replayed to a
//! new subscriber on any node, not only on the nodes that were subscribed when it was published.
//!
//! Why Redis and not the other nodes: a node hears a channel's events only while it has local
//! subscribers of it (it SUBSCRIBEs the topic on the first and UNSUBSCRIBEs at the last), so
//! its own cache misses everything published while it had none. The node that accepts a
//! publish on a cache channel therefore also `SET`s the frame at `pcache:<app>:<channel>` with
//! the cache's TTL, on the command connection before the publish itself. A node that gets a
//! channel's first local subscriber keeps it waiting (as it already does until Redis confirms
//! the SUBSCRIBE) for one more round trip: once the topic is confirmed it forgets its own copy
//! (stale: it was not listening) and `GET`s Redis's. Anything published after the SUBSCRIBE
//! reaches it on the topic and is cached as usual; the `GET` answer is taken only if nothing
//! arrived meanwhile, so a later event is never replaced by an older one. While the node stays
//! subscribed its own copy is current and nothing is read from Redis.
//!
//! Refused or failed (the link down, the backplane queue full): the node answers from its own
//! cache, as a single node does.

use super::cluster_presence::Wait;
use super::*;
use crate::cluster::Value;
use crate::ids::{ReqRef, ShardId};
use crate::pusher::cache::TTL;
use std::time::Duration;

/// `SET` the frame with the cache's TTL (ms).
const CACHE_SET: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// The cached frame and its remaining time to live (ms), or nil.
const CACHE_GET: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
";

impl Pusher {
    fn cache_key(&self, app: AppIdx, channel: &str) -> Option<Bytes> {
        let c = self.cluster.as_ref()?;
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        Some(Bytes::from(format!(
            "{}pcache:{app_id}:{channel}",
            c.bp.prefix()
        )))
    }

    /// On the accepting shard, just before the publishes go to the backplane (so a node that
    /// reads the key after its SUBSCRIBE either finds the event or will hear it): keep the last
    /// event of each cache channel in Redis (refused: the other nodes' caches miss it). The id
    /// of the last write sent: the request is acknowledged once it is answered (replies come in
    /// order), so a subscribe anywhere after the acknowledgement finds this event, not the one
    /// before.
    pub(super) fn cluster_cache_put(&self, shard: ShardId, ps: &[Publish]) -> Option<u64> {
        let c = self.cluster.as_ref()?;
        let ttl = Bytes::from(TTL.as_millis().to_string());
        let mut last = None;
        for p in ps
            .iter()
            .filter(|p| p.cache && channels::is_cache(&p.channel))
        {
            let Some(key) = self.cache_key(p.app, &p.channel) else {
                break;
            };
            let args = vec![p.frame.clone(), ttl.clone()];
            if let Ok(id) = c.bp.eval(CACHE_SET, vec![key], args, shard) {
                last = Some(id);
            }
        }
        last
    }

    /// Answer `req` with `response` once Redis has answered write `id` (`Wait::Ack`).
    pub(super) fn ack_after(
        &mut self,
        id: u64,
        req: ReqRef,
        response: Response,
    ) -> RequestAction<PusherSocket> {
        let Some(c) = self.cluster.as_mut() else {
            return RequestAction::Respond(response);
        };
        c.evals.insert(id, Wait::Ack { req, response });
        RequestAction::Park {
            success_headers: &[],
        }
    }

    /// The server stops: answer the publishes still waiting for their cache write.
    pub(super) fn cluster_shutdown(&mut self, out: &mut dyn Outbox<PusherMsg>) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let acks: Vec<u64> = c
            .evals
            .iter()
            .filter(|(_, w)| matches!(w, Wait::Ack { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in acks {
            if let Some(Wait::Ack { req, response }) = c.evals.remove(&id) {
                out.reply(req, response);
            }
        }
    }

    /// On the owner, when a cache channel's topic is confirmed: ask Redis for its last event.
    /// `Some(id)`: the waiting sockets stay pending until `cache_reply` with this id.
    pub(super) fn cluster_cache_fetch(
        &mut self,
        shard: ShardId,
        app: AppIdx,
        channel: &str,
    ) -> Option<u64> {
        if !channels::is_cache(channel) {
            return None;
        }
        let key = self.cache_key(app, channel)?;
        let c = self.cluster.as_mut()?;
        let id = c.bp.eval(CACHE_GET, vec![key], Vec::new(), shard).ok()?;
        // Not listening until now: whatever this node kept may be stale.
        self.cache.remove(app, channel);
        let w = Wait::Cache {
            app,
            channel: channel.into(),
        };
        c.evals.insert(id, w);
        Some(id)
    }

    /// `CACHE_GET` answered: cache it unless an event arrived on the topic meanwhile, then let
    /// the waiting sockets subscribe (each gets the event or `cache_miss`).
    pub(super) fn cache_reply(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        (app, channel): (AppIdx, &str),
        id: u64,
        value: &Value,
    ) {
        let now = Instant::now();
        if let Value::Array(a) = value {
            if let [Value::Bulk(frame), Value::Int(ms)] = a.as_slice() {
                let left = Duration::from_millis(u64::try_from(*ms).unwrap_or(0));
                let age = TTL.saturating_sub(left);
                let missing = self.cache.peek(app, channel, now).is_none();
                if let (true, Some(at)) = (missing && !left.is_zero(), now.checked_sub(age)) {
                    self.cache.put(app, channel, frame.clone(), at);
                }
            }
        }
        self.cluster_fetched(out, app, channel, id);
    }
}
