//! Presence channels: the member a subscriber's `channel_data` names, and the owner shard's
//! table of members per channel.
//!
//! Why members are counted per `user_id`, not per socket: one user may be subscribed from
//! several connections (tabs), and the other members must see that user join once (on the
//! first connection, `member_added`) and leave once (on the last, `member_removed`). The table
//! lives only on the channel's owner shard, beside its subscribers, so the count needs no
//! coordination.

use super::apps::AppIdx;
use crate::ids::SockRef;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Most distinct users in one presence channel by default (Pusher's limit; an app's
/// `max_presence_members` replaces it).
pub const MAX_MEMBERS: usize = 100;
/// Longest `user_id` (Pusher's limit).
pub const MAX_USER_ID: usize = 128;
/// Largest `channel_data` string, in bytes (Pusher limits the user object to 1 KB).
pub const MAX_CHANNEL_DATA: usize = 1024;

/// One member as its `channel_data` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The user id, in its string form (a number `10` is `"10"`).
    pub user_id: Box<str>,
    /// `user_info`, or `null` if absent.
    pub user_info: Value,
}

/// The member of a `channel_data` string: a JSON object with a string or number `user_id`
/// (non-empty, at most [`MAX_USER_ID`] bytes) and an optional `user_info`.
pub fn parse_channel_data(s: &str) -> Option<Member> {
    if s.len() > MAX_CHANNEL_DATA {
        return None;
    }
    let mut v: Value = serde_json::from_str(s).ok()?;
    let obj = v.as_object_mut()?;
    let user_id = match obj.get("user_id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if user_id.is_empty() || user_id.len() > MAX_USER_ID {
        return None;
    }
    Some(Member {
        user_id: user_id.into(),
        user_info: obj.remove("user_info").unwrap_or(Value::Null),
    })
}

/// What a join did to the channel's members.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// A new user: tell the other members (`member_added`).
    Added,
    /// The user was already a member (another connection, or this one again).
    Again,
    /// The channel has the app's maximum of users: refused.
    Full,
}

#[derive(Debug)]
struct User {
    info: Value,
    conns: u32,
}

#[derive(Debug, Default)]
struct Room {
    users: HashMap<Box<str>, User>,
    socks: HashMap<SockRef, Box<str>>,
}

/// The members of the presence channels this shard owns (per app, then by channel name).
#[derive(Debug, Default)]
pub struct Presence {
    apps: HashMap<AppIdx, HashMap<Box<str>, Room>>,
}

impl Presence {
    /// Add `sock` as `member` of the channel, which may hold at most `max` distinct users.
    pub fn join(
        &mut self,
        app: AppIdx,
        channel: &str,
        sock: SockRef,
        member: Member,
        max: usize,
    ) -> Join {
        let rooms = self.apps.entry(app).or_default();
        if !rooms.contains_key(channel) {
            rooms.insert(channel.into(), Room::default());
        }
        let Some(room) = rooms.get_mut(channel) else {
            return Join::Full;
        };
        if room.socks.contains_key(&sock) {
            return Join::Again;
        }
        let full = room.users.len() >= max;
        let join = match room.users.get_mut(&*member.user_id) {
            Some(u) => {
                u.conns += 1;
                Join::Again
            }
            None if full => return Join::Full,
            None => {
                let user = User {
                    info: member.user_info,
                    conns: 1,
                };
                room.users.insert(member.user_id.clone(), user);
                Join::Added
            }
        };
        room.socks.insert(sock, member.user_id);
        join
    }

    /// The ids of the channel's users (`GET /channels/{name}/users`, `user_count`).
    pub fn user_ids(&self, app: AppIdx, channel: &str) -> Vec<String> {
        self.apps
            .get(&app)
            .and_then(|rooms| rooms.get(channel))
            .map(|room| {
                let mut ids: Vec<String> = room.users.keys().map(|k| k.to_string()).collect();
                ids.sort_unstable();
                ids
            })
            .unwrap_or_default()
    }

    /// Remove `sock` from the channel; the user id if that was the user's last connection.
    pub fn leave(&mut self, app: AppIdx, channel: &str, sock: SockRef) -> Option<Box<str>> {
        let rooms = self.apps.get_mut(&app)?;
        let room = rooms.get_mut(channel)?;
        let uid = room.socks.remove(&sock)?;
        let last = match room.users.get_mut(&uid) {
            Some(u) if u.conns > 1 => {
                u.conns -= 1;
                false
            }
            _ => {
                room.users.remove(&uid);
                true
            }
        };
        if room.socks.is_empty() {
            rooms.remove(channel);
        }
        last.then_some(uid)
    }

    /// The user `sock` joined the channel as.
    pub fn user_of(&self, app: AppIdx, channel: &str, sock: SockRef) -> Option<&str> {
        let room = self.apps.get(&app)?.get(channel)?;
        room.socks.get(&sock).map(|u| &**u)
    }

    /// The `user_info` the user joined the channel with (Pushi: the whole `channel_data`).
    pub fn info_of(&self, app: AppIdx, channel: &str, user_id: &str) -> Option<&Value> {
        let room = self.apps.get(&app)?.get(channel)?;
        room.users.get(user_id).map(|u| &u.info)
    }

    /// `{"ids":[…],"hash":{id: info},"count":n}` for `subscription_succeeded`.
    pub fn snapshot(&self, app: AppIdx, channel: &str) -> Value {
        let mut ids = Vec::new();
        let mut hash = Map::new();
        if let Some(room) = self.apps.get(&app).and_then(|r| r.get(channel)) {
            for (id, u) in &room.users {
                ids.push(Value::from(&**id));
                hash.insert(id.to_string(), u.info.clone());
            }
        }
        let count = ids.len();
        json!({"ids": ids, "hash": hash, "count": count})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str) -> Member {
        Member {
            user_id: id.into(),
            user_info: json!({"name": id}),
        }
    }

    #[test]
    fn channel_data() {
        let a = parse_channel_data(r#"{"user_id":10,"user_info":{"name":"A"}}"#).unwrap();
        assert_eq!(&*a.user_id, "10");
        assert_eq!(a.user_info, json!({"name":"A"}));
        let b = parse_channel_data(r#"{"user_id":"u"}"#).unwrap();
        assert_eq!(b.user_info, Value::Null);
        for bad in [
            "",
            "[]",
            r#"{"user_id":""}"#,
            r#"{"user_id":true}"#,
            r#"{"user_info":{}}"#,
        ] {
            assert!(parse_channel_data(bad).is_none(), "{bad}");
        }
        let long = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(129));
        assert!(parse_channel_data(&long).is_none());
    }

    #[test]
    fn counted_per_user() {
        let mut p = Presence::default();
        let (s1, s2, s3) = (
            SockRef::new(0, 1, 1),
            SockRef::new(1, 1, 1),
            SockRef::new(0, 2, 1),
        );
        assert_eq!(
            p.join(0, "presence-c", s1, m("a"), MAX_MEMBERS),
            Join::Added
        );
        assert_eq!(
            p.join(0, "presence-c", s2, m("a"), MAX_MEMBERS),
            Join::Again
        );
        assert_eq!(
            p.join(0, "presence-c", s2, m("a"), MAX_MEMBERS),
            Join::Again
        );
        assert_eq!(
            p.join(0, "presence-c", s3, m("b"), MAX_MEMBERS),
            Join::Added
        );
        assert_eq!(p.user_of(0, "presence-c", s2), Some("a"));
        assert_eq!(p.snapshot(0, "presence-c")["count"], 2);
        assert_eq!(
            p.snapshot(0, "presence-c")["hash"]["b"],
            json!({"name":"b"})
        );
        assert_eq!(p.leave(0, "presence-c", s1), None);
        assert_eq!(p.leave(0, "presence-c", s1), None);
        assert_eq!(p.leave(0, "presence-c", s2).as_deref(), Some("a"));
        assert_eq!(p.leave(0, "presence-c", s3).as_deref(), Some("b"));
        assert!(p.apps[&0].is_empty());
        assert_eq!(p.snapshot(0, "presence-c")["count"], 0);
    }

    #[test]
    fn member_limit() {
        let mut p = Presence::default();
        for i in 0..MAX_MEMBERS {
            let s = SockRef::new(0, u32::try_from(i).unwrap(), 1);
            assert_eq!(
                p.join(0, "presence-c", s, m(&i.to_string()), MAX_MEMBERS),
                Join::Added
            );
        }
        let s = SockRef::new(1, 0, 1);
        assert_eq!(
            p.join(0, "presence-c", s, m("new"), MAX_MEMBERS),
            Join::Full
        );
        // Another connection of a member is not a new member.
        assert_eq!(p.join(0, "presence-c", s, m("0"), MAX_MEMBERS), Join::Again);
        // Another app's limit.
        let t = SockRef::new(1, 1, 1);
        assert_eq!(p.join(1, "presence-c", s, m("a"), 1), Join::Added);
        assert_eq!(p.join(1, "presence-c", t, m("b"), 1), Join::Full);
    }
}
