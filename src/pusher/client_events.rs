//! Client events (`client-…`): which a socket may send, and the per-connection rate limit.
//!
//! Why checked on the socket's shard: the channel kind, the socket's own subscriptions and its
//! rate are all known there, so a refused event never costs a hop. The owner shard checks
//! membership again (a subscribe refused there, such as a full presence channel, is still in
//! the socket's list) and fans the event out to everyone but the sender. The rate state is
//! four bytes, because it lives in every connection.

use super::channels::Kind;

/// Most client events one connection may send per second (Pusher's limit).
pub const MAX_PER_SECOND: u32 = 10;
/// Longest client event name (as for HTTP API events).
pub const MAX_EVENT_NAME: usize = 200;
/// Largest client event payload, in bytes (Pusher's 10 KB message limit).
pub const MAX_DATA: usize = 10 * 1024;

/// A fixed one-second window: the low 8 bits count events, the high 24 bits hold the second
/// (relative to the shard's start, wrapping after 194 days).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rate(u32);

impl Rate {
    /// Count one event at `secs`; false if it is over [`MAX_PER_SECOND`] in that second.
    pub fn allow(&mut self, secs: u64) -> bool {
        let window = u32::try_from(secs & 0x00FF_FFFF).unwrap_or(0);
        let (cur, n) = (self.0 >> 8, self.0 & 0xFF);
        if cur != window {
            self.0 = (window << 8) | 1;
            true
        } else if n < MAX_PER_SECOND {
            self.0 += 1;
            true
        } else {
            false
        }
    }
}

/// Why a client event is refused (the `pusher:error` message); `kind` is `None` for an
/// invalid channel name.
pub fn check(
    kind: Option<Kind>,
    subscribed: bool,
    event: &str,
    data: &str,
) -> Result<(), &'static str> {
    match kind {
        Some(Kind::Encrypted) => {
            return Err("Client events are not supported on encrypted channels")
        }
        Some(k) if k.allows_client_events() => {}
        _ => return Err("Client events are only allowed on private and presence channels"),
    }
    if !subscribed {
        return Err("The connection is not subscribed to this channel");
    }
    if event.len() > MAX_EVENT_NAME {
        return Err("Event name is too long (exceeds 200 characters)");
    }
    if data.len() > MAX_DATA {
        return Err("The event data should be less than 10 KB");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_second() {
        let mut r = Rate::default();
        for _ in 0..MAX_PER_SECOND {
            assert!(r.allow(5));
        }
        assert!(!r.allow(5));
        assert!(r.allow(6));
        assert!(r.allow(0x0100_0006 + 1));
        assert!(std::mem::size_of::<Rate>() == 4);
    }

    #[test]
    fn allowed_channels() {
        assert!(check(Some(Kind::Private), true, "client-a", "x").is_ok());
        assert!(check(Some(Kind::Presence), true, "client-a", "x").is_ok());
        assert!(check(Some(Kind::Public), true, "client-a", "x").is_err());
        assert!(check(Some(Kind::Encrypted), true, "client-a", "x").is_err());
        assert!(check(None, true, "client-a", "x").is_err());
        assert!(check(Some(Kind::Private), false, "client-a", "x").is_err());
        let long = "x".repeat(201);
        assert!(check(Some(Kind::Private), true, &long, "x").is_err());
        assert!(check(Some(Kind::Private), true, "client-a", &"x".repeat(10241)).is_err());
    }
}
