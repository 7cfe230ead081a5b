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

    /// Forget the channel's last event.
    pub fn remove(&mut self, app: AppIdx, channel: &str) {
        self.last.remove(&(app, Box::<str>::from(channel)));
    }

    /// The channel's last event and how long it stays cached, without dropping expired ones
    /// (what `GET /channels/{name}?info=cache` reads).
    pub fn peek(&self, app: AppIdx, channel: &str, now: Instant) -> Option<(&Bytes, Duration)> {
        let (frame, at) = self.last.get(&(app, Box::<str>::from(channel)))?;
        TTL.checked_sub(now.duration_since(*at))
            .filter(|left| !left.is_zero())
            .map(|left| (frame, left))
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
}
