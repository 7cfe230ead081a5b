//! Pusher channel occupancy across nodes: `channel_occupied` / `channel_vacated` webhooks once
//! per cluster.
//!
//! Why: each node knows only whether it has local subscribers; the webhooks mean "the first
//! subscriber anywhere" and "the last one anywhere left". Per app a hash `occ:<app>` counts,
//! per channel, the nodes with local subscribers, and per node a set `onode:<node>` lists its
//! channels (for the dead-node sweep, `cluster_presence`'s `REAP`). A node counts itself in
//! (`OCC_UP`) when it subscribes a channel's topic and out (`OCC_DOWN`) when it unsubscribes
//! it — exactly once each per period of local occupancy — and raises the webhook when the
//! answer says the count went 0 → 1 / 1 → 0. Refused (link down): the node raises its own, as
//! a single node would, and does not count itself out later. A count whose script was sent but
//! not answered when the link broke may be off by one until that node dies.

use super::cluster_presence::Wait;
use super::*;
use crate::cluster::Value;
use crate::ids::ShardId;

const OCC_UP: &str = r"
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
";

const OCC_DOWN: &str = r"
redis.call('SREM', KEYS[2], ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
";

impl Pusher {
    /// This node's first local subscriber of `channel` (`up`) or its last left.
    pub(super) fn cluster_occupancy(
        &mut self,
        shard: ShardId,
        app: AppIdx,
        channel: &str,
        up: bool,
    ) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let key = (app, Box::<str>::from(channel));
        if !up && !c.occupied.remove(&key) {
            // Not counted in Redis (refused when it began): raise it as a single node.
            let now = Instant::now();
            return self.webhooks.unsubscribed(app, channel, None, true, now);
        }
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        let prefix = c.bp.prefix();
        let keys = vec![
            Bytes::from(format!("{prefix}occ:{app_id}")),
            Bytes::from(format!("{prefix}onode:{}", c.bp.incarnation())),
        ];
        let args = vec![
            Bytes::copy_from_slice(channel.as_bytes()),
            Bytes::from(format!("{app_id}:{channel}")),
        ];
        let script = if up { OCC_UP } else { OCC_DOWN };
        match c.bp.eval(script, keys, args, shard) {
            Ok(id) => {
                if up {
                    c.occupied.insert(key.clone());
                }
                let w = Wait::Occupancy {
                    app,
                    channel: key.1,
                    up,
                };
                c.evals.insert(id, w);
            }
            Err(_) if up => self.webhooks.subscribed(app, channel, true, None),
            Err(_) => {}
        }
    }

    /// `OCC_UP` / `OCC_DOWN` answered with the new count.
    pub(super) fn occupancy_reply(&mut self, app: AppIdx, channel: &str, up: bool, v: &Value) {
        let now = Instant::now();
        match (up, v) {
            (true, Value::Int(1)) => self.webhooks.subscribed(app, channel, true, None),
            (false, Value::Int(n)) if *n <= 0 => {
                self.webhooks.unsubscribed(app, channel, None, true, now)
            }
            (true, Value::Error(_)) => {
                // Not counted after all (or unknown): as a single node.
                if let Some(c) = self.cluster.as_mut() {
                    c.occupied.remove(&(app, Box::<str>::from(channel)));
                }
                self.webhooks.subscribed(app, channel, true, None)
            }
            _ => {}
        }
    }
}
