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
//! over the shards' stats: occupied on any node, presence members of every node.
//! `subscription_count` (sockets, not nodes) stays this node's count: no node keeps the
//! others' socket counts. With the link down the answer is this node's, as for presence.

use super::*;
use crate::cluster::Value;
use crate::ids::ShardId;
use query::{Ask, Filter, Global};

/// `KEYS[1]` `occ:<app>`; `ARGV[1]` the prefix of the app's `pres:` keys, `ARGV[2]` `1` to
/// list member ids, `ARGV[3]` `p` (every occupied channel starting with `ARGV[4]`) or `n`
/// (the channels `ARGV[4..]`). Answers `{name, occupied, user_count, {ids…}}` per channel.
const QUERY: &str = r"
local names = {}
if ARGV[3] == 'p' then
  for _, n in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(n, 1, #ARGV[4]) == ARGV[4] then names[#names + 1] = n end
  end
else
  for i = 4, #ARGV do names[#names + 1] = ARGV[i] end
end
local out = {}
for _, n in ipairs(names) do
  local occ = tonumber(redis.call('HGET', KEYS[1], n) or '0') > 0 and 1 or 0
  local count, ids = 0, {}
  if string.sub(n, 1, 9) == 'presence-' then
    if ARGV[2] == '1' then
      ids = redis.call('HKEYS', ARGV[1] .. n)
      count = #ids
    else
      count = redis.call('HLEN', ARGV[1] .. n)
    end
  end
  out[#out + 1] = {n, occ, count, ids}
end
return out
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
                [name, Value::Int(occ), Value::Int(count), Value::Array(ids)] => Some(Global {
                    name: text(name)?.into(),
                    occupied: *occ == 1,
                    user_count: usize::try_from(*count).unwrap_or(0),
                    users: ids.iter().filter_map(text).collect(),
                }),
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
            ]),
            Value::Array(vec![
                b("presence-p"),
                Value::Int(0),
                Value::Int(2),
                Value::Array(vec![b("u1"), b("u2")]),
            ]),
        ]);
        let g = parse(&v).unwrap();
        assert_eq!(g.len(), 2);
        assert!(g[0].occupied && g[0].users.is_empty());
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
