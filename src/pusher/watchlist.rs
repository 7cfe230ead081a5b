//! Watchlists: the `pusher_internal:watchlist_events` frame, and splitting a watchlist by the
//! shards that own its users.
//!
//! Why split by owner: a watched user's online state lives only on that user's owner shard
//! (`users::owner`), so a signed-in socket registers as a watcher with each owner holding some
//! of its watchlist — one `UserMsg::Watch` per owner, not one per id — and each owner answers
//! with the watched users already online (at most one frame per owner shard). pusher-js
//! (`watchlist.ts`) emits each event of `data.events` under its `name` with
//! `{name, user_ids}`, so several frames are as good as one.

use super::apps::AppIdx;
use super::users;
use crate::ids::ShardId;
use crate::proto::ws::encode_text;
use bytes::Bytes;
use serde_json::json;

/// A watched user's change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// First signed-in connection (or already online when the watcher signed in).
    Online,
    /// Last signed-in connection gone.
    Offline,
}

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::Online => "online",
            Change::Offline => "offline",
        }
    }
}

/// `{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":…,\"user_ids\":[…]}]}"}`
/// (data as a JSON string, like the other `pusher_internal:` events; no channel).
pub fn events<S: AsRef<str>>(change: Change, user_ids: &[S]) -> Bytes {
    let ids: Vec<&str> = user_ids.iter().map(AsRef::as_ref).collect();
    let data = json!({"events": [{"name": change.name(), "user_ids": ids}]});
    let v = json!({"event": "pusher_internal:watchlist_events", "data": data.to_string()});
    encode_text(v.to_string().as_bytes())
}

/// The ids of a watchlist grouped by owner shard (in first-seen shard order).
pub fn by_owner(app: AppIdx, ids: &[Box<str>], shards: usize) -> Vec<(ShardId, Vec<Box<str>>)> {
    let mut groups: Vec<(ShardId, Vec<Box<str>>)> = Vec::new();
    for id in ids {
        let o = users::owner(app, id, shards);
        match groups.iter_mut().find(|(s, _)| *s == o) {
            Some((_, g)) => g.push(id.clone()),
            None => groups.push((o, vec![id.clone()])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn frame_shape() {
        let f = events(Change::Offline, &["2", "x"]);
        let v: Value = serde_json::from_slice(&f[2..]).unwrap();
        assert_eq!(v["event"], "pusher_internal:watchlist_events");
        assert!(v.get("channel").is_none());
        let d: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            d,
            json!({"events":[{"name":"offline","user_ids":["2","x"]}]})
        );
    }

    #[test]
    fn grouped_by_owner() {
        let ids: Vec<Box<str>> = (0..40).map(|i| i.to_string().into()).collect();
        let g = by_owner(0, &ids, 3);
        assert_eq!(g.len(), 3);
        assert_eq!(g.iter().map(|(_, v)| v.len()).sum::<usize>(), 40);
        for (s, v) in &g {
            assert!(v.iter().all(|id| users::owner(0, id, 3) == *s));
        }
        assert_eq!(by_owner(0, &ids, 1).len(), 1);
        assert!(by_owner(0, &[], 2).is_empty());
    }
}
