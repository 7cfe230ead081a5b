//! The activity timeout: a socket that has sent nothing for `activity_timeout` gets a
//! `pusher:ping`; if it then sends nothing for `pong_timeout`, it is closed with 4201
//! ("Pong reply not received in time", protocol §"Ping and pong").
//!
//! Why a table swept on the dialect's timer, not a timer per socket: the reactor lends a
//! socket's state to the dialect only for that socket's events, so the dialect keeps, per
//! shard, one 12-byte record per open socket, indexed by its slab slot (the slot's
//! generation, the millisecond of its last message, whether it was pinged). A message costs one
//! store; the sweep runs every quarter of the shorter timeout (at least 1 s, at most 10 s)
//! through `Dialect::next_deadline` / `on_timer`, pings every due socket with one
//! `Outbox::deliver` and closes those that did not answer. Deadlines are therefore late by up
//! to one sweep interval. Times are milliseconds since the table was made, wrapping at 2^32
//! (49 days); a record is checked at least every sweep, long before it could wrap.
//!
//! What counts as activity: any data message the dialect receives (pusher-js answers the
//! server's ping with `pusher:pong`, pysher too, and both send `pusher:ping` themselves).
//! Websocket control frames (RFC 6455 ping/pong) are answered by the reactor and not seen
//! here.

use crate::ids::{Gen, ShardId, Slot, SockRef};
use crate::proto::ws::encode_text;
use bytes::Bytes;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Free,
    Active,
    Pinged,
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    gen: u32,
    last_ms: u32,
    state: State,
}

/// What one sweep found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Silent for the activity timeout: send them a `pusher:ping`.
    pub ping: Vec<SockRef>,
    /// Pinged and silent for the pong timeout: close them with 4201.
    pub dead: Vec<SockRef>,
}

/// One shard's activity records.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    timeout_ms: u32,
    pong_ms: u32,
    every: Duration,
    next_sweep: Instant,
    records: Vec<Record>,
    open: usize,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Activity {
    /// A table pinging after `timeout` of silence and closing `pong` after the ping.
    pub fn new(timeout: Duration, pong: Duration, now: Instant) -> Self {
        let every = (timeout.min(pong) / 4).clamp(Duration::from_secs(1), Duration::from_secs(10));
        Activity {
            epoch: now,
            timeout_ms: ms(timeout),
            pong_ms: ms(pong),
            every,
            next_sweep: now + every,
            records: Vec::new(),
            open: 0,
        }
    }

    fn now_ms(&self, now: Instant) -> u32 {
        // Truncation is the wrap-around the module docs describe.
        (now.saturating_duration_since(self.epoch).as_millis() & u128::from(u32::MAX)) as u32
    }

    /// A socket opened (its first activity).
    pub fn open(&mut self, sock: SockRef, now: Instant) {
        let key = sock.slot.key();
        if self.records.len() <= key {
            self.records.resize(key + 1, Record::default());
        }
        let last_ms = self.now_ms(now);
        if let Some(r) = self.records.get_mut(key) {
            if r.state == State::Free {
                self.open += 1;
            }
            *r = Record {
                gen: sock.gen.0,
                last_ms,
                state: State::Active,
            };
        }
    }

    /// The socket sent a message.
    pub fn seen(&mut self, sock: SockRef, now: Instant) {
        let t = self.now_ms(now);
        if let Some(r) = self.records.get_mut(sock.slot.key()) {
            if r.gen == sock.gen.0 && r.state != State::Free {
                r.last_ms = t;
                r.state = State::Active;
            }
        }
    }

    /// The socket closed.
    pub fn close(&mut self, sock: SockRef) {
        if let Some(r) = self.records.get_mut(sock.slot.key()) {
            if r.gen == sock.gen.0 && r.state != State::Free {
                r.state = State::Free;
                self.open -= 1;
            }
        }
    }

    /// When the next sweep is due (`None` without open sockets).
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.open > 0).then_some(self.next_sweep)
    }

    /// Sweep if due: the sockets to ping (now marked pinged) and the dead ones (now freed).
    pub fn sweep(&mut self, shard: ShardId, now: Instant) -> Due {
        let mut due = Due::default();
        if now < self.next_sweep {
            return due;
        }
        self.next_sweep = now + self.every;
        let t = self.now_ms(now);
        for (key, r) in self.records.iter_mut().enumerate() {
            let idle = t.wrapping_sub(r.last_ms);
            let sock = || SockRef {
                shard,
                slot: Slot::of_key(key),
                gen: Gen(r.gen),
            };
            match r.state {
                State::Active if idle >= self.timeout_ms => {
                    due.ping.push(sock());
                    r.state = State::Pinged;
                    r.last_ms = t;
                }
                State::Pinged if idle >= self.pong_ms => {
                    due.dead.push(sock());
                    r.state = State::Free;
                    self.open -= 1;
                }
                _ => {}
            }
        }
        due
    }
}

/// `{"event":"pusher:ping","data":"{}"}` (pusher-js answers `pusher:pong`).
pub fn ping() -> Bytes {
    encode_text(br#"{"event":"pusher:ping","data":"{}"}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_then_close_unless_seen() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut a = Activity::new(Duration::from_secs(8), Duration::from_secs(4), t0);
        assert_eq!(a.next_deadline(), None);
        let (x, y) = (SockRef::new(0, 3, 7), SockRef::new(0, 0, 1));
        a.open(x, t0);
        a.open(y, t0);
        assert_eq!(a.next_deadline(), Some(s(1)), "a quarter of 4 s");
        assert_eq!(a.sweep(ShardId(0), s(7)), Due::default());
        a.seen(y, s(7));
        let due = a.sweep(ShardId(0), s(8));
        assert_eq!((due.ping, due.dead), (vec![x], vec![]));
        a.seen(SockRef::new(0, 3, 6), s(9)); // another generation: not x
        let due = a.sweep(ShardId(0), s(12));
        assert_eq!(due.dead, vec![x]);
        // y was seen at 7: pinged at 15, answers at 16, stays.
        assert_eq!(a.sweep(ShardId(0), s(15)).ping, vec![y]);
        a.seen(y, s(16));
        assert_eq!(a.sweep(ShardId(0), s(20)), Due::default());
        a.close(y);
        a.close(y);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.sweep(ShardId(0), s(100)), Due::default());
    }

    #[test]
    fn sweeps_are_rate_limited_and_survive_wrap() {
        let t0 = Instant::now();
        let mut a = Activity::new(Duration::from_secs(120), Duration::from_secs(30), t0);
        assert_eq!(a.every, Duration::from_secs(7) + Duration::from_millis(500));
        a.open(SockRef::new(1, 0, 1), t0);
        assert_eq!(a.sweep(ShardId(1), t0), Due::default(), "not due yet");
        // A record written just before the millisecond clock wraps.
        a.records[0].last_ms = u32::MAX - 10;
        let wrapped = t0 + Duration::from_millis(u64::from(u32::MAX) + 1 + 5_000);
        assert_eq!(a.sweep(ShardId(1), wrapped), Due::default(), "15 s idle");
        let later = wrapped + Duration::from_secs(120);
        assert_eq!(a.sweep(ShardId(1), later).ping.len(), 1);
        assert_eq!(&ping()[2..], br#"{"event":"pusher:ping","data":"{}"}"#);
    }
}
