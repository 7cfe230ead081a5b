//! Pusher HTTP API channel queries across nodes: `GET /channels`, `GET /channels/{name}`,
//! `…/users` and the `info` of `POST /events` answer for the whole cluster.
//!
//! Why from Redis and not by asking every node: what the answers need over the cluster is
//! already kept there, exactly, by the other cluster modules — which channels some node has
//! subscribers on (`occ:<app>`, `cluster_occupancy`) and every presence channel's members
//! (`pres:<app>:<channel>`, `cluster_presence`). One read-only script (`QUERY`) answers a
//! gather in one round trip, however many nodes there are, and a node that died has already
//! been swept out of both (within ~15 s). The local shards are gathered as on one node
//! (`query`); the cluster's view is one more part of that gather ([`query::Global`]), laid
//! over the shards' stats: occupied on any node, presence members of every node, sockets of
//! every node.
//!
//! Socket counts (`subscription_count`) are the one thing kept here: per channel a hash
//! `psub:<app>:<channel>` holds each node's count of local subscribers (node → count), and per
//! node a set `psubn:<node>` the channels it has a count in. The owner shard of a channel
//! notes each change and writes the **absolute** counts of the channels that changed once per
//! loop turn (`SUBS`, one script for all of them), so a burst of subscribes costs one write
//! per channel, and a count lost while the link was down is put right by the next change. A
//! dead node's counts go with the sweep (`SREAP`, run by shard 0 beside `REAP`). With the link
//! down the answer is this node's, as for presence.

use super::*;
use crate::cluster::Value;
use crate::ids::ShardId;
use query::{Ask, Filter, Global};

/// `KEYS[1]` `occ:<app>`; `ARGV[1]` the prefix of the app's `pres:` keys, `ARGV[2]` of its
/// `psub:` keys, `ARGV[3]` `1` to list member ids, `ARGV[4]` `p` (every occupied channel
/// starting with `ARGV[5]`; no socket counts, which a listing does not show) or `n` (the
/// channels `ARGV[5..]`). Answers `{name, occupied, user_count, {ids…}, sockets or -1}` per
/// channel.
const QUERY: &str = r"
local names = {}
local listing = ARGV[4] == 'p'
if listing then
  for _, n in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(n, 1, #ARGV[5]) == ARGV[5] then names[#names + 1] = n end
  end
else
  for i = 5, #ARGV do names[#names + 1] = ARGV[i] end
end
local out = {}
for _, n in ipairs(names) do
  local occ = tonumber(redis.call('HGET', KEYS[1], n) or '0') > 0 and 1 or 0
  local count, ids = 0, {}
  if string.sub(n, 1, 9) == 'presence-' then
    if ARGV[3] == '1' then
      ids = redis.call('HKEYS', ARGV[1] .. n)
      count = #ids
    else
      count = redis.call('HLEN', ARGV[1] .. n)
    end
  end
  local socks = -1
  if not listing then
    socks = 0
    for _, c in ipairs(redis.call('HVALS', ARGV[2] .. n)) do socks = socks + tonumber(c) end
  end
  out[#out + 1] = {n, occ, count, ids, socks}
end
return out
";

/// `ARGV[1]` the key prefix, `ARGV[2]` this node, then per changed channel `<app>:<channel>`
/// and this node's count of its local subscribers.
const SUBS: &str = r"
local mine = ARGV[1] .. 'psubn:' .. ARGV[2]
for i = 3, #ARGV, 2 do
  local h = ARGV[1] .. 'psub:' .. ARGV[i]
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', h, ARGV[2])
    redis.call('SREM', mine, ARGV[i])
  else
    redis.call('HSET', h, ARGV[2], ARGV[i + 1])
    redis.call('SADD', mine, ARGV[i])
  end
end
return 1
";

/// `KEYS[1]` `nodes`; `ARGV[1]` the key prefix, `ARGV[2]` this node: the socket counts of the
/// nodes whose liveness key is gone (before `REAP`, which forgets them).
pub(super) const SREAP: &str = r"
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. n) == 0 then
    local s = ARGV[1] .. 'psubn:' .. n
    for _, suf in ipairs(redis.call('SMEMBERS', s)) do
      redis.call('HDEL', ARGV[1] .. 'psub:' .. suf, n)
    end
    redis.call('DEL', s)
  end
end
return 1
";

impl Pusher {
    /// Ask Redis for the cluster's view of `ask` for gather `id`: `true` if asked (the answer
    /// comes to `query_reply`), `false` when not clustered or the link is down.
    pub(super) fn cluster_query(&mut self, shard: ShardId, id: u64, ask: &Ask) -> bool {
        let app_id = self.apps.get(ask.app).map(|a| a.id.as_str()).unwrap_or("");
        let Some(c) = self.cluster.as_mut() else {
            return false;
        };
        let prefix = c.bp.prefix();
        let keys = vec![Bytes::from(format!("{prefix}occ:{app_id}"))];
        let mut args = vec![
            Bytes::from(format!("{prefix}pres:{app_id}:")),
            Bytes::from(format!("{prefix}psub:{app_id}:")),
            Bytes::from_static(if ask.users { b"1" } else { b"0" }),
        ];
        match &ask.filter {
            Filter::Prefix(p) => {
                args.push(Bytes::from_static(b"p"));
                args.push(Bytes::copy_from_slice(p.as_bytes()));
            }
            Filter::Names(names) => {
                args.push(Bytes::from_static(b"n"));
                args.extend(names.iter().map(|n| Bytes::copy_from_slice(n.as_bytes())));
            }
        }
        match c.bp.eval(QUERY, keys, args, shard) {
            Ok(eid) => {
                c.evals
                    .insert(eid, cluster_presence::Wait::Query { gather: id });
                true
            }
            Err(_) => false,
        }
    }

    /// On the owner: `channel`'s local subscribers changed; its count goes to Redis at the end
    /// of this loop turn (`cluster_subs_flush`).
    pub(super) fn cluster_subs_changed(&mut self, app: AppIdx, channel: &str) {
        if let Some(c) = self.cluster.as_mut() {
            if c.subs_changed.is_empty() {
                c.subs_since = Some(Instant::now());
            }
            c.subs_changed.insert((app, channel.into()));
        }
    }

    /// When the first change waiting to be written was noted: already past when the reactor
    /// checks its timers at the end of the turn, so they are written then.
    pub(super) fn cluster_subs_due(&self) -> Option<Instant> {
        self.cluster.as_ref()?.subs_since
    }

    /// Write the changed channels' counts, in one script (refused, the link being down: the
    /// next change writes them again).
    pub(super) fn cluster_subs_flush(&mut self, shard: ShardId) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        c.subs_since = None;
        if c.subs_changed.is_empty() {
            return;
        }
        let mut args = vec![
            Bytes::copy_from_slice(c.bp.prefix().as_bytes()),
            Bytes::copy_from_slice(c.bp.incarnation().as_bytes()),
        ];
        for (app, channel) in c.subs_changed.drain() {
            let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
            let n = self.registry.subscribers(app, &channel).len();
            args.push(Bytes::from(format!("{app_id}:{channel}")));
            args.push(Bytes::from(n.to_string()));
        }
        // The answer (1) comes back as a reply no one waits for.
        let _ = c.bp.eval(SUBS, Vec::new(), args, shard);
    }

    /// `QUERY` answered (or failed: then this node's answer).
    pub(super) fn query_reply(&mut self, out: &mut dyn Outbox<PusherMsg>, id: u64, v: &Value) {
        query::on_global(&mut self.gathers, out, id, parse(v));
    }
}

/// The script's answer, `None` if it is not one (a Redis error, the link lost).
fn parse(v: &Value) -> Option<Vec<Global>> {
    let Value::Array(rows) = v else {
        return None;
    };
    let text = |v: &Value| match v {
        Value::Bulk(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    };
    rows.iter()
        .map(|row| match row {
            Value::Array(f) => match f.as_slice() {
                [name, Value::Int(occ), Value::Int(count), Value::Array(ids), Value::Int(socks)] => {
                    Some(Global {
                        name: text(name)?.into(),
                        occupied: *occ == 1,
                        user_count: usize::try_from(*count).unwrap_or(0),
                        users: ids.iter().filter_map(text).collect(),
                        subscription_count: usize::try_from(*socks).ok(),
                    })
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_answer_parses_and_anything_else_is_none() {
        let b = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let v = Value::Array(vec![
            Value::Array(vec![
                b("a"),
                Value::Int(1),
                Value::Int(0),
                Value::Array(vec![]),
                Value::Int(3),
            ]),
            Value::Array(vec![
                b("presence-p"),
                Value::Int(0),
                Value::Int(2),
                Value::Array(vec![b("u1"), b("u2")]),
                Value::Int(-1),
            ]),
        ]);
        let g = parse(&v).unwrap();
        assert_eq!(g.len(), 2);
        assert!(g[0].occupied && g[0].users.is_empty());
        assert_eq!(
            (g[0].subscription_count, g[1].subscription_count),
            (Some(3), None)
        );
        assert_eq!(
            (&*g[1].name, g[1].occupied, g[1].user_count),
            ("presence-p", false, 2)
        );
        assert_eq!(g[1].users, ["u1", "u2"]);
        assert_eq!(parse(&Value::Error("link lost".into())), None);
        assert_eq!(parse(&Value::Array(vec![Value::Int(3)])), None);
        assert_eq!(parse(&Value::Array(vec![])), Some(vec![]));
    }
}
