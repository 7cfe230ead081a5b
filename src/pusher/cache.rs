//! Cache channels (`cache-`, `private-cache-`, `private-encrypted-cache-`, `presence-cache-`):
//! the owner shard keeps the last event the HTTP API published on each, and replays it to a
//! new subscriber right after `subscription_succeeded` (else `pusher:cache_miss`).
//!
//! Why the frame, not the event: the replay is the same bytes the subscribers got, so it costs
//! one refcount bump and no encoding. Entries expire after [`TTL`] (Pusher keeps them up to 30
//! minutes); expired ones are dropped when looked up or when the table doubles.

use super::apps::AppIdx;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a cached event is replayed.
pub const TTL: Duration = Duration::from_secs(30 * 60);

/// The last event of each cache channel this shard owns.
#[derive(Debug, Default)]
pub struct Cache {
    last: HashMap<(AppIdx, Box<str>), (Bytes, Instant)>,
    /// The size after the last sweep of expired entries.
    swept: usize,
}

impl Cache {
    /// Keep `frame` as the channel's last event.
    pub fn put(&mut self, app: AppIdx, channel: &str, frame: Bytes, now: Instant) {
        self.last.insert((app, channel.into()), (frame, now));
        if self.last.len() > 2 * self.swept.max(64) {
            self.last.retain(|_, (_, at)| now.duration_since(*at) < TTL);
            self.swept = self.last.len();
        }
    }

    /// The channel's last event, if younger than [`TTL`].
    pub fn get(&mut self, app: AppIdx, channel: &str, now: Instant) -> Option<Bytes> {
        let key = (app, Box::<str>::from(channel));
        let (frame, at) = self.last.get(&key)?;
        if now.duration_since(*at) < TTL {
            return Some(frame.clone());
        }
        self.last.remove(&key);
        None
    }

    /// The channel's last event's `data` and the seconds it stays cached, if younger than
    /// [`TTL`] (for `GET /channels/{name}?info=cache`; nothing is removed).
    pub fn peek(&self, app: AppIdx, channel: &str, now: Instant) -> Option<(String, u64)> {
        let (frame, at) = self.last.get(&(app, Box::<str>::from(channel)))?;
        let left = TTL.checked_sub(now.saturating_duration_since(*at))?;
        if left.is_zero() {
            return None;
        }
        Some((event_data(frame)?, left.as_secs()))
    }

    /// How many channels have a cached event (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// The `data` string of a cached event frame (an unmasked server text frame holding
/// `{"event","channel","data"}`).
fn event_data(frame: &[u8]) -> Option<String> {
    let start = match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let v: serde_json::Value = serde_json::from_slice(frame.get(start..)?).ok()?;
    v.get("data")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_until_it_expires() {
        let mut c = Cache::default();
        let t = Instant::now();
        assert!(c.get(0, "cache-a", t).is_none());
        c.put(0, "cache-a", Bytes::from_static(b"1"), t);
        c.put(0, "cache-a", Bytes::from_static(b"2"), t);
        assert_eq!(c.get(0, "cache-a", t).as_deref(), Some(&b"2"[..]));
        assert!(c.get(1, "cache-a", t).is_none());
        assert!(c.get(0, "cache-a", t + TTL).is_none());
        assert!(c.is_empty());
        for i in 0..200 {
            let at = if i < 100 { t } else { t + TTL };
            c.put(0, &format!("cache-{i}"), Bytes::new(), at);
        }
        assert_eq!(c.len(), 100, "the expired half is swept");
    }

    #[test]
    fn peek_gives_the_data_and_the_time_left() {
        let mut c = Cache::default();
        let t = Instant::now();
        let small = crate::pusher::protocol::channel_event("e", "cache-a", "{\"v\":1}");
        c.put(0, "cache-a", small, t);
        let big = crate::pusher::protocol::channel_event("e", "cache-b", &"x".repeat(70_000));
        c.put(0, "cache-b", big, t);
        let later = t + Duration::from_secs(60);
        assert_eq!(
            c.peek(0, "cache-a", later),
            Some(("{\"v\":1}".into(), 1740))
        );
        assert_eq!(
            c.peek(0, "cache-b", later).map(|(d, _)| d.len()),
            Some(70_000)
        );
        assert_eq!(c.peek(0, "cache-a", t + TTL), None);
        assert_eq!(c.peek(1, "cache-a", t), None);
        assert_eq!(c.len(), 2, "peek removes nothing");
    }
}
