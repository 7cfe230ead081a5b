//! The grace delay of `channel_vacated` and `member_removed`: pending events on the owner
//! shard, each due at a deadline, cancelled if the channel is re-occupied / the member comes
//! back first.
//!
//! Why a heap with lazy deletion: cancels (a reconnecting tab) are as common as expiries, and
//! a cancel must be O(1) on the reactor thread; the heap entry of a cancelled event is simply
//! skipped when it comes up. Bounded: past [`MAX_PENDING`] heap entries `schedule` refuses and
//! the caller sends the event at once (no grace), so a subscribe/unsubscribe storm over many
//! channels cannot grow the shard's memory without limit.

use crate::pusher::apps::AppIdx;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// Most delayed events (cancelled ones included until they come due) per shard.
pub const MAX_PENDING: usize = 65_536;

/// A delayed event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    /// `channel_vacated` for the channel.
    Vacated {
        /// The app.
        app: AppIdx,
        /// The channel.
        channel: Box<str>,
    },
    /// `member_removed` for the user on the channel.
    Removed {
        /// The app.
        app: AppIdx,
        /// The presence channel.
        channel: Box<str>,
        /// The user.
        user_id: Box<str>,
    },
}

/// The pending delayed events of one shard.
#[derive(Debug, Default)]
pub struct Grace {
    live: HashMap<Pending, u64>,
    by_seq: HashMap<u64, Pending>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    seq: u64,
}

impl Grace {
    /// Send `p` at `at` unless cancelled first; `Err(p)` if the table is full (send it now).
    pub fn schedule(&mut self, p: Pending, at: Instant) -> Result<(), Pending> {
        if self.heap.len() >= MAX_PENDING {
            return Err(p);
        }
        self.cancel(&p);
        self.seq += 1;
        self.live.insert(p.clone(), self.seq);
        self.by_seq.insert(self.seq, p);
        self.heap.push(Reverse((at, self.seq)));
        Ok(())
    }

    /// Cancel `p`; whether it was pending (then its counterpart is not sent either).
    pub fn cancel(&mut self, p: &Pending) -> bool {
        match self.live.remove(p) {
            Some(seq) => {
                self.by_seq.remove(&seq);
                true
            }
            None => false,
        }
    }

    /// The earliest deadline (possibly of a cancelled event: one early wake-up, then skipped).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next event due at `now`, earliest (then first scheduled) first.
    pub fn pop_due(&mut self, now: Instant) -> Option<Pending> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(p) = self.by_seq.remove(&seq) {
                self.live.remove(&p);
                return Some(p);
            }
        }
        None
    }

    /// Every pending event, in deadline order (shutdown: send what would have been sent).
    pub fn drain(&mut self) -> Vec<Pending> {
        let mut out = Vec::with_capacity(self.live.len());
        while let Some(Reverse((_, seq))) = self.heap.pop() {
            if let Some(p) = self.by_seq.remove(&seq) {
                out.push(p);
            }
        }
        self.live.clear();
        out
    }

    /// How many events are pending (not cancelled).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn vacated(c: &str) -> Pending {
        Pending::Vacated {
            app: 0,
            channel: c.into(),
        }
    }

    #[test]
    fn due_in_order_and_cancelled_ones_skipped() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut g = Grace::default();
        let removed = Pending::Removed {
            app: 0,
            channel: "presence-a".into(),
            user_id: "u".into(),
        };
        g.schedule(removed.clone(), t + ms(10)).unwrap();
        g.schedule(vacated("presence-a"), t + ms(10)).unwrap();
        g.schedule(vacated("b"), t + ms(5)).unwrap();
        g.schedule(vacated("c"), t + ms(20)).unwrap();
        assert_eq!(g.len(), 4);
        assert!(g.cancel(&vacated("b")));
        assert!(!g.cancel(&vacated("b")), "once");
        assert_eq!(
            g.next_deadline(),
            Some(t + ms(5)),
            "the stale entry still wakes"
        );
        assert_eq!(g.pop_due(t + ms(9)), None);
        assert_eq!(
            g.pop_due(t + ms(10)),
            Some(removed),
            "first scheduled first"
        );
        assert_eq!(g.pop_due(t + ms(10)), Some(vacated("presence-a")));
        assert_eq!(g.pop_due(t + ms(10)), None);
        assert_eq!(g.next_deadline(), Some(t + ms(20)));
        // Rescheduling replaces the earlier deadline.
        g.schedule(vacated("c"), t + ms(30)).unwrap();
        assert_eq!(g.pop_due(t + ms(25)), None);
        assert_eq!(g.drain(), vec![vacated("c")]);
        assert!(g.is_empty() && g.next_deadline().is_none());
    }

    #[test]
    fn bounded() {
        let t = Instant::now();
        let mut g = Grace::default();
        for i in 0..MAX_PENDING {
            g.schedule(vacated(&i.to_string()), t).unwrap();
        }
        assert_eq!(g.schedule(vacated("x"), t), Err(vacated("x")));
    }
}
