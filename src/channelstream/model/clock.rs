//! The model's own monotonic time line and Channelstream's hard-coded periods.
//!
//! Channelstream compares naive `datetime.utcnow()` values; we compare microseconds on a
//! monotonic line whose zero is the first `Now` the model sees. The line is signed because
//! `mark_for_gc` moves a connection 60 days into the past, which an `Instant` cannot always
//! represent (it may be before boot).

use std::time::{Duration, Instant};

/// A point on the model's monotonic line, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct MonoTime(pub(crate) i64);

impl MonoTime {
    pub(crate) fn plus(self, micros: i64) -> MonoTime {
        MonoTime(self.0.saturating_add(micros))
    }
    pub(crate) fn minus(self, micros: i64) -> MonoTime {
        MonoTime(self.0.saturating_sub(micros))
    }
}

pub(crate) const SEC: i64 = 1_000_000;
/// First server heartbeat 5 s after a connection is made, then every 5 s (`connection.py`).
pub(crate) const HEARTBEAT: i64 = 5 * SEC;
/// `gc_conns_forever` period.
pub(crate) const GC_EVERY: i64 = SEC;
/// `gc.py`: `last_active < now - 15 s` (the `gc_conns_after` config key is ignored).
pub(crate) const CONN_TIMEOUT: i64 = 15 * SEC;
/// `gc_users_forever` period.
pub(crate) const USER_GC_EVERY: i64 = 60 * SEC;
/// Users inactive for a day are forgotten.
pub(crate) const USER_TIMEOUT: i64 = 86_400 * SEC;
/// `mark_for_gc`: `last_active -= timedelta(days=60)`.
pub(crate) const MARK_FOR_GC: i64 = 60 * 86_400 * SEC;
/// `wake_connections_after`: a long poll waits this long for its first item.
pub(crate) const POLL_FIRST_WAIT: i64 = 5 * SEC;
/// Then it keeps collecting until a 0.25 s gap passes with nothing new.
pub(crate) const POLL_GAP: i64 = 250_000;
/// A parked long poll answers once it holds this many messages (our bound; 0.7.1 has none).
pub(crate) const POLL_MAX_ITEMS: usize = 1_000;
/// Channel catch-up frames kept (`channel.py`).
pub(crate) const CHANNEL_FRAMES: usize = 100;
/// User private-message frames kept (`user.py`).
pub(crate) const USER_FRAMES: usize = 50;

/// Maps `Instant`s to `MonoTime` and back. The origin is fixed by the first call to `at`.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    origin: Option<Instant>,
}

impl Clock {
    pub(crate) fn at(&mut self, mono: Instant) -> MonoTime {
        let origin = *self.origin.get_or_insert(mono);
        let d = mono.saturating_duration_since(origin);
        MonoTime(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// The `Instant` of a point, for `next_deadline`. Points before the origin map to it.
    pub(crate) fn instant(&self, at: MonoTime) -> Option<Instant> {
        let origin = self.origin?;
        let micros = u64::try_from(at.0.max(0)).unwrap_or(0);
        origin.checked_add(Duration::from_micros(micros))
    }
}
