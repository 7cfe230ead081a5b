//! Pusher channels: name rules, kinds, which shard owns a channel, and the owner's table of
//! subscribers.
//!
//! Why sharded by channel: Pusher's state is per channel (no operation spans two channels),
//! so each channel has one owner shard, `hash(app, channel) % shards`; subscribes,
//! unsubscribes and publishes for it are routed there, and the owner fans a publish out with
//! one `Outbox::deliver`. The hash is SipHash with fixed keys (`DefaultHasher::new`), so every
//! shard computes the same owner.

use super::apps::AppIdx;
use crate::dialect::Outbox;
use crate::ids::{ShardId, SockRef};
use bytes::Bytes;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Longest channel name accepted, prefix included (Pusher's documented limit; the npm SDK and
/// soketi allow 200, so a name they accept may still be refused here).
pub const MAX_CHANNEL_NAME: usize = 164;

/// What a channel's name makes of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anyone may subscribe.
    Public,
    /// `private-…`: needs a channel auth signature.
    Private,
    /// `private-encrypted-…`: signed like private; payloads are opaque, no client events.
    Encrypted,
    /// `presence-…`: signed over `channel_data`, with a member list.
    Presence,
    /// `#server-to-user-<user id>`: no auth string; only a socket signed in as that user may
    /// subscribe (`pusher:signin`, `users`); the HTTP API publishes to it (`sendToUser`).
    User,
}

impl Kind {
    /// Whether members may send `client-…` events on it.
    pub fn allows_client_events(self) -> bool {
        matches!(self, Kind::Private | Kind::Presence)
    }
}

/// The prefix of server-to-user channels (`#` is reserved to them).
pub const USER_PREFIX: &str = "#server-to-user-";

/// The server-to-user channel of `user_id`.
pub fn user_channel(user_id: &str) -> String {
    format!("{USER_PREFIX}{user_id}")
}

/// The kind of a valid channel name; `None` if the name is not valid (empty, too long,
/// characters outside `[A-Za-z0-9_\-=@,.;]`, or `#…` other than `#server-to-user-<id>` with
/// a valid user id, see `users::valid_id`).
pub fn kind(name: &str) -> Option<Kind> {
    if let Some(id) = name.strip_prefix(USER_PREFIX) {
        return super::users::valid_id(id).then_some(Kind::User);
    }
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b);
    if name.is_empty() || name.len() > MAX_CHANNEL_NAME || !name.bytes().all(ok_char) {
        return None;
    }
    Some(if name.starts_with("private-encrypted-") {
        Kind::Encrypted
    } else if name.starts_with("private-") {
        Kind::Private
    } else if name.starts_with("presence-") {
        Kind::Presence
    } else {
        Kind::Public
    })
}

/// Whether the owner keeps the channel's last HTTP API event for new subscribers.
pub fn is_cache(name: &str) -> bool {
    [
        "cache-",
        "private-cache-",
        "private-encrypted-cache-",
        "presence-cache-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The shard that owns `channel` of `app`.
pub fn owner(app: AppIdx, channel: &str, shards: usize) -> ShardId {
    let mut h = DefaultHasher::new();
    app.hash(&mut h);
    channel.hash(&mut h);
    let n = u64::try_from(shards.max(1)).unwrap_or(1);
    ShardId(u16::try_from(h.finish() % n).unwrap_or(0))
}

/// Deliver `frame` to `subs` but `except` (a sender, a joining member), and say to how many.
/// The list is copied only when the one left out is among them: a publish without an
/// exclusion, the common case, hands the owner's list on as it is.
pub fn deliver_except<M>(
    out: &mut dyn Outbox<M>,
    frame: &Bytes,
    subs: &[SockRef],
    except: Option<SockRef>,
) -> usize {
    match except {
        Some(ex) if subs.contains(&ex) => {
            let to: Vec<SockRef> = subs.iter().copied().filter(|s| *s != ex).collect();
            out.deliver(frame, &to);
            to.len()
        }
        _ => {
            out.deliver(frame, subs);
            subs.len()
        }
    }
}

/// The subscribers of the channels this shard owns (per app, then by name: a lookup borrows
/// the name). Removal scans the channel's list: fine for this slice, a set when it matters.
#[derive(Debug, Default)]
pub struct Registry {
    apps: HashMap<AppIdx, HashMap<Box<str>, Vec<SockRef>>>,
    channels: usize,
}

impl Registry {
    /// Add `sock` to the channel; false if it was already there.
    pub fn subscribe(&mut self, app: AppIdx, channel: &str, sock: SockRef) -> bool {
        let chans = self.apps.entry(app).or_default();
        let subs = match chans.get_mut(channel) {
            Some(s) => s,
            None => {
                self.channels += 1;
                chans.entry(channel.into()).or_default()
            }
        };
        if subs.contains(&sock) {
            return false;
        }
        subs.push(sock);
        true
    }

    /// Remove `sock` from the channel (a channel without subscribers is dropped); true if this
    /// removed its last subscriber (the channel is vacated).
    pub fn unsubscribe(&mut self, app: AppIdx, channel: &str, sock: SockRef) -> bool {
        let Some(chans) = self.apps.get_mut(&app) else {
            return false;
        };
        if let Some(subs) = chans.get_mut(channel) {
            subs.retain(|s| *s != sock);
            if subs.is_empty() {
                chans.remove(channel);
                self.channels -= 1;
                return true;
            }
        }
        false
    }

    /// The channel's subscribers (empty if none).
    pub fn subscribers(&self, app: AppIdx, channel: &str) -> &[SockRef] {
        self.apps
            .get(&app)
            .and_then(|c| c.get(channel))
            .map_or(&[], Vec::as_slice)
    }

    /// The app's channels with subscribers, in no particular order.
    pub fn channels(&self, app: AppIdx) -> impl Iterator<Item = (&str, &[SockRef])> {
        self.apps
            .get(&app)
            .into_iter()
            .flat_map(|c| c.iter().map(|(k, v)| (&**k, v.as_slice())))
    }

    /// How many channels have subscribers.
    pub fn len(&self) -> usize {
        self.channels
    }

    /// Whether no channel has subscribers.
    pub fn is_empty(&self) -> bool {
        self.channels == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(kind("my-channel"), Some(Kind::Public));
        assert_eq!(kind("private-x"), Some(Kind::Private));
        assert_eq!(kind("private-encrypted-x"), Some(Kind::Encrypted));
        assert_eq!(kind("presence-x"), Some(Kind::Presence));
        assert_eq!(kind(""), None);
        assert_eq!(kind("a b"), None);
        assert_eq!(kind("#server-to-user-1"), Some(Kind::User));
        assert_eq!(kind("#server-to-user-a b:c"), Some(Kind::User));
        assert_eq!(kind("#server-to-user-"), None);
        assert_eq!(kind("#other-1"), None);
        assert_eq!(kind(&user_channel(&"u".repeat(129))), None);
        assert!(!Kind::User.allows_client_events());
        assert_eq!(kind(&"a".repeat(165)), None);
        assert_eq!(kind(&"a".repeat(164)), Some(Kind::Public));
        assert_eq!(kind("x:y"), None);
        assert_eq!(kind("-_=@,.;Az09"), Some(Kind::Public));
        assert!(Kind::Presence.allows_client_events() && Kind::Private.allows_client_events());
        assert!(!Kind::Public.allows_client_events() && !Kind::Encrypted.allows_client_events());
        for c in [
            "cache-a",
            "private-cache-a",
            "private-encrypted-cache-a",
            "presence-cache-a",
        ] {
            assert!(is_cache(c), "{c}");
        }
        assert!(!is_cache("a-cache-b") && !is_cache("private-a"));
    }

    #[test]
    fn owner_is_stable_and_in_range() {
        for s in 1..5 {
            let o = owner(0, "room", s);
            assert!(o.index() < s);
            assert_eq!(o, owner(0, "room", s));
        }
        let spread: std::collections::HashSet<_> =
            (0..64).map(|i| owner(0, &format!("c{i}"), 4)).collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn registry() {
        let mut r = Registry::default();
        let a = SockRef::new(0, 1, 1);
        let b = SockRef::new(1, 1, 1);
        assert!(r.subscribe(0, "c", a));
        assert!(!r.subscribe(0, "c", a));
        assert!(r.subscribe(0, "c", b));
        assert!(r.subscribe(1, "c", b));
        assert_eq!(r.subscribers(0, "c"), &[a, b]);
        assert!(!r.unsubscribe(0, "c", a));
        assert_eq!(r.subscribers(0, "c"), &[b]);
        assert_eq!(r.len(), 2);
        assert!(r.unsubscribe(0, "c", b), "the last one vacates");
        assert!(!r.unsubscribe(0, "c", b));
        assert!(!r.unsubscribe(7, "c", b));
        assert!(r.subscribers(0, "c").is_empty());
        assert_eq!(r.len(), 1);
        r.unsubscribe(1, "c", b);
        assert!(r.is_empty());
    }
}
