//! Timers: per-connection heartbeats, long-poll deadlines, the connection GC pass (1 s) and
//! the user GC pass (60 s).
//!
//! Nothing here scans every connection. Heartbeats and polls sit in one min-heap of
//! `(deadline, Timer)` whose entries carry the connection's generation (and the poll's
//! sequence), so entries for a dead connection or a superseded poll are dropped when they
//! surface. The GC keeps a second min-heap keyed by each connection's `last_active` as it was
//! when queued: activity only moves `last_active` forward, so a queued key is a lower bound and
//! a pass only pops keys older than the threshold, re-queueing the ones that turn out to be
//! active. `mark_for_gc` (the one backwards move) queues a fresh entry and bumps a sequence
//! number that invalidates the old one. The hot path never touches either heap.

use super::clock::{MonoTime, CONN_TIMEOUT, GC_EVERY, HEARTBEAT, USER_GC_EVERY, USER_TIMEOUT};
use super::deliver::flush;
use super::msg::HEARTBEAT_FRAME;
use super::ops::{internal_error, poll_reply};
use super::state::{
    grid_point_after as grid_after, ChannelIdx, ConnSlot, Keys, LongPoll, Sock, Timer,
};
use super::{CloseCode, Effects, Model, Now};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// 0.7.1's GC finds stale connections only by walking channel member lists, so a connection
/// in no channel is never collected (it stays known to `/listen`, `/ws`, `/subscribe`). We
/// keep that behaviour for compatibility; flip this to collect such connections too.
const COLLECT_CHANNELLESS: bool = false;

impl Model {
    /// Run due timers: heartbeats, long-poll completion, connection GC, user GC.
    pub fn tick(&mut self, now: Now, fx: &mut dyn Effects) {
        let now_t = self.clock_at(now);
        self.run_timers(now_t, fx);
        if let Some(next) = self.timers.gc_next {
            if now_t >= next {
                self.gc_conns(now_t, now, fx);
                self.timers.gc_next = Some(grid_after(next, GC_EVERY, now_t));
            }
        }
        if let Some(next) = self.timers.user_gc_next {
            if now_t >= next {
                self.gc_users(now_t);
                self.timers.user_gc_next = Some(grid_after(next, USER_GC_EVERY, now_t));
            }
        }
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut best = self.timers.heap.peek().map(|Reverse((due, _))| *due);
        if let (Some(next), Some(Reverse((key, ..)))) = (self.timers.gc_next, self.timers.gc.peek())
        {
            // The first pass whose threshold (pass time - 15 s) is past the oldest key.
            let due = grid_after(next, GC_EVERY, key.plus(CONN_TIMEOUT));
            best = Some(best.map_or(due, |b| b.min(due)));
        }
        if !self.users.is_empty() {
            if let Some(u) = self.timers.user_gc_next {
                best = Some(best.map_or(u, |b| b.min(u)));
            }
        }
        best.and_then(|at| self.clock.instant(at))
    }

    fn run_timers(&mut self, now_t: MonoTime, fx: &mut dyn Effects) {
        // All heartbeats due in this turn share one static frame and one `deliver` call.
        while let Some(&Reverse((due, timer))) = self.timers.heap.peek() {
            if due > now_t {
                break;
            }
            self.timers.heap.pop();
            match timer {
                Timer::Heartbeat { slot, gen } => self.heartbeat(slot, gen, due, now_t),
                Timer::Poll { slot, gen, seq } => self.poll_timer(slot, gen, seq, due, now_t, fx),
                Timer::Orphan { req } => fx.reply(req, internal_error()),
            }
        }
        flush(fx, &Bytes::from_static(HEARTBEAT_FRAME), &mut self.targets);
    }

    /// `Connection.heartbeat`: with an open socket or a queue attached, send `[]` and go on;
    /// otherwise stop for good (quirk 17: a socket attached after the first check gets no
    /// server heartbeats).
    fn heartbeat(&mut self, slot: ConnSlot, gen: u64, due: MonoTime, now_t: MonoTime) {
        let Some(conn) = self.conns.get(slot.0) else {
            return;
        };
        if conn.gen != gen {
            return;
        }
        let alive = matches!(conn.sock, Sock::Open(_)) || !matches!(conn.lp, LongPoll::None);
        if !alive {
            return;
        }
        self.sink(now_t).push(slot, None);
        let mut next = due.plus(HEARTBEAT);
        if next <= now_t {
            next = now_t.plus(HEARTBEAT);
        }
        self.timers.at(next, Timer::Heartbeat { slot, gen });
    }

    fn poll_timer(
        &mut self,
        slot: ConnSlot,
        gen: u64,
        seq: u32,
        due: MonoTime,
        now_t: MonoTime,
        fx: &mut dyn Effects,
    ) {
        let Some(conn) = self.conns.get_mut(slot.0) else {
            return;
        };
        if conn.gen != gen {
            return;
        }
        let LongPoll::Polling(p) = &mut conn.lp else {
            return;
        };
        if p.seq != seq || p.armed != due {
            return;
        }
        let rearm = if now_t < p.deadline {
            // Items arrived since this entry was armed: wait for the later gap.
            true
        } else if p.first {
            // The 5 s wait for a first item ran out: Python then still waits one 0.25 s gap.
            p.first = false;
            p.deadline = p.deadline.plus(super::clock::POLL_GAP);
            true
        } else {
            false
        };
        if rearm {
            p.armed = p.deadline;
            let at = p.deadline;
            self.timers.at(at, Timer::Poll { slot, gen, seq });
            return;
        }
        let LongPoll::Polling(p) = std::mem::replace(&mut conn.lp, LongPoll::Idle) else {
            return;
        };
        conn.last_active = now_t;
        if let Some(req) = p.req {
            fx.reply(req, poll_reply(&p));
        }
    }

    /// `gc_conns`: collect connections whose `last_active` is older than 15 s.
    fn gc_conns(&mut self, now_t: MonoTime, now: Now, fx: &mut dyn Effects) {
        let threshold = now_t.minus(CONN_TIMEOUT);
        let mut dying = Vec::new();
        while let Some(&Reverse((key, slot, gen, seq))) = self.timers.gc.peek() {
            if key >= threshold {
                break;
            }
            self.timers.gc.pop();
            let Some(conn) = self.conns.get_mut(slot.0) else {
                continue;
            };
            if conn.gen != gen || conn.gc_seq != seq {
                continue;
            }
            if conn.last_active >= threshold {
                self.timers.queue_gc(slot, conn);
            } else if conn.channels.is_empty() && !COLLECT_CHANNELLESS {
                conn.gc_parked = true;
            } else {
                dying.push(slot);
            }
        }
        if !dying.is_empty() {
            self.collect(&dying, now, fx);
        }
    }

    /// Remove stale connections as `gc_conns` does: channel by channel (creation order), user
    /// by user (join order), sending `parted` when a user's list empties; then drop each
    /// removed one from its user and the id map, answer its parked poll (500, as the crashed
    /// greenlet did) and close its socket with 1000.
    ///
    /// `gc_conns` removes from the list it iterates, so the entry after a removed one is not
    /// looked at in that pass (two stale connections of one user in one channel take two
    /// passes). A connection removed from one channel but skipped in another stays in the
    /// latter as a ghost (unreachable by id, no socket, no queue) until the next pass; one
    /// skipped everywhere is left for the next pass as it is.
    fn collect(&mut self, dying: &[ConnSlot], now: Now, fx: &mut dyn Effects) {
        let set: HashSet<ConnSlot> = dying.iter().copied().collect();
        let mut ch_idxs: Vec<ChannelIdx> = dying
            .iter()
            .filter_map(|&s| self.conns.get(s.0))
            .flat_map(|c| c.channels.iter().copied())
            .collect();
        ch_idxs.sort_unstable();
        ch_idxs.dedup();
        let mut order: Vec<ConnSlot> = Vec::with_capacity(dying.len());
        let mut removed: Vec<(ConnSlot, ChannelIdx)> = Vec::with_capacity(dying.len());
        for ch_idx in ch_idxs {
            let Some((_, ch)) = self.channels.get_index(ch_idx.0) else {
                continue;
            };
            let names: Vec<Arc<str>> = ch
                .members
                .iter()
                .filter(|(_, slots)| slots.iter().any(|s| set.contains(s)))
                .map(|(n, _)| n.clone())
                .collect();
            for name in names {
                let Some((_, ch)) = self.channels.get_index_mut(ch_idx.0) else {
                    break;
                };
                let Some(slots) = ch.members.get_mut(&*name) else {
                    continue;
                };
                let mut kept = Keys::new();
                let mut skip = false;
                for &s in slots.iter() {
                    if !skip && set.contains(&s) {
                        order.push(s);
                        removed.push((s, ch_idx));
                        skip = true;
                    } else {
                        kept.push(s);
                        skip = false;
                    }
                }
                *slots = kept;
                if slots.is_empty() {
                    ch.members.shift_remove(&*name);
                    if ch.config.notify_presence {
                        self.send_presence(ch_idx, &name, false, now, fx);
                    }
                }
            }
        }
        for (slot, ch_idx) in removed {
            if let Some(conn) = self.conns.get_mut(slot.0) {
                conn.channels.retain(|c| *c != ch_idx);
            }
        }
        let mut done = HashSet::with_capacity(dying.len());
        for slot in order {
            if done.insert(slot) {
                self.drop_conn(slot, fx);
            }
        }
        for &slot in dying {
            if !done.contains(&slot) {
                if let Some(conn) = self.conns.get_mut(slot.0) {
                    self.timers.queue_gc(slot, conn);
                }
            }
        }
    }

    /// The second half of a collection: forget the connection (user, id map), end its poll
    /// and socket; free its slot unless it is still a ghost member of some channel.
    fn drop_conn(&mut self, slot: ConnSlot, fx: &mut dyn Effects) {
        let Some(conn) = self.conns.get_mut(slot.0) else {
            return;
        };
        if let Some(user) = self.users.get_mut(&*conn.username) {
            if let Some(i) = user.conns.iter().position(|&s| s == slot) {
                user.conns.remove(i);
            }
        }
        // Only if the map entry is this object: with a duplicated conn_id (quirk), 0.7.1 would
        // also unmap the live original; we keep it reachable.
        if self.by_id.get(&conn.id) == Some(&slot) {
            self.by_id.remove(&conn.id);
        }
        // `conn.queue = None`
        if let LongPoll::Polling(p) = std::mem::replace(&mut conn.lp, LongPoll::None) {
            if let Some(req) = p.req {
                self.timers.at(p.deadline, Timer::Orphan { req });
            }
        }
        // `conn.socket.close()`: the socket stays attached, terminated.
        match conn.sock {
            Sock::Open(s) => {
                fx.close(s, CloseCode::Normal);
                conn.sock = Sock::Closed;
            }
            Sock::Closed | Sock::None => {}
        }
        if conn.channels.is_empty() {
            self.conns.try_remove(slot.0);
        } else {
            self.timers.queue_gc(slot, conn);
        }
    }

    /// Server shutdown: answer every parked long poll now with what it has collected, so
    /// no client is left waiting on a socket that is about to close.
    pub fn finish_polls(&mut self, fx: &mut dyn Effects) {
        for (_, conn) in self.conns.iter_mut() {
            if let LongPoll::Polling(_) = conn.lp {
                if let LongPoll::Polling(p) = std::mem::replace(&mut conn.lp, LongPoll::Idle) {
                    if let Some(req) = p.req {
                        fx.reply(req, poll_reply(&p));
                    }
                }
            }
        }
    }

    /// `gc_users`: forget users inactive for a day (even with connections, as 0.7.1 does).
    fn gc_users(&mut self, now_t: MonoTime) {
        let threshold = now_t.minus(USER_TIMEOUT);
        self.users.retain(|_, u| u.last_active >= threshold);
    }
}
