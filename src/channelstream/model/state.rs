//! The records the model owns: users, connections, channels, and the timer queues.
//!
//! Ownership follows Channelstream's object graph without its shared pointers: connections
//! live in a slab and everything else refers to them by slot; users and channels live in
//! insertion-ordered maps because admin.json, `get_channels` and the GC walk them in creation
//! order. Channels are never deleted (0.7.1 has no channel GC), so a channel's index is
//! stable and doubles as its creation rank.

use super::clock::{
    MonoTime, CHANNEL_FRAMES, CONN_TIMEOUT, GC_EVERY, POLL_GAP, POLL_MAX_ITEMS, USER_FRAMES,
};
use super::msg::Msg;
use super::{ReqRef, SockRef};
use crate::channelstream::api::types::{ChannelConfig, StateMap, Timestamp};
/// Python `==` for state values (`1 == 1.0 == True`).
pub(crate) use crate::py::value::eq as py_eq;
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use slab::Slab;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

// A connection's key in `Model.conns` (a `Slab`). Its own type so that it cannot be mixed
// up with the other `usize`s around it (channel indices, user indices, store keys). Slab keys
// are reused once a connection is removed; `ConnRecord.gen` tells a reused slot apart, which
// is why every timer and GC entry carries both. `usize` rather than `u32`: a `u32` would not
// shrink `ConnRecord` or the inline `Keys` lists (both stay the same size), only the id map
// and GC entries, at the price of a fallible conversion on every slab access.
/// A connection's slot in the model's connection slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConnSlot(pub(crate) usize);

// A channel's index in `Model.channels` (an `IndexMap`). Channels are never removed (0.7.1
// has no channel GC), so an index stays valid for the life of the model and doubles as the
// channel's creation rank: sorting indices sorts channels in creation order.
/// A channel's index in the model's channel map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ChannelIdx(pub(crate) usize);

/// Key lists (a user's and a channel member's connection slots, a connection's channels):
/// almost always one or two entries, so they live inline (24 B, the size of a `Vec`) instead
/// of in a heap block of their own; at 10k idle subscribers that is three fewer allocations
/// per connection.
pub(crate) type Keys<K> = SmallVec<[K; 2]>;

const _: () = assert!(std::mem::size_of::<Keys<ConnSlot>>() == std::mem::size_of::<Vec<usize>>());
const _: () = assert!(std::mem::size_of::<Keys<ChannelIdx>>() == std::mem::size_of::<Vec<usize>>());

/// A user (`user.py`).
#[derive(Debug)]
pub(crate) struct User {
    /// Distinguishes a re-created user from the one it replaced (connections cache the slot).
    pub(crate) epoch: u64,
    pub(crate) uuid: Uuid,
    pub(crate) state: StateMap,
    pub(crate) public_keys: Vec<String>,
    /// Connection slots in the order they were added.
    pub(crate) conns: Keys<ConnSlot>,
    /// Global private messages (and their edits/deletes), delivery keys already popped.
    pub(crate) frames: VecDeque<(MonoTime, Msg)>,
    pub(crate) last_active: MonoTime,
}

impl User {
    pub(crate) fn new(epoch: u64, now: MonoTime) -> Self {
        User {
            epoch,
            uuid: Uuid::new_v4(),
            state: Map::new(),
            public_keys: Vec::new(),
            conns: Keys::new(),
            frames: VecDeque::new(),
            last_active: now,
        }
    }

    /// `{k: v for k, v in state.items() if k in state_public_keys}`.
    pub(crate) fn public_state(&self) -> Map<String, Value> {
        self.state
            .iter()
            .filter(|(k, _)| self.public_keys.iter().any(|p| p == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `state_from_dict`: store each value that differs (Python `!=`), report what changed.
    /// Setting an absent key to null is no change, since `state.get(k)` is `None` too.
    pub(crate) fn state_from_dict(&mut self, update: &StateMap) -> Vec<(String, Value)> {
        let mut changed = Vec::new();
        for (k, v) in update {
            let same = match self.state.get(k) {
                Some(old) => py_eq(old, v),
                None => v.is_null(),
            };
            if !same {
                self.state.insert(k.clone(), v.clone());
                changed.push((k.clone(), v.clone()));
            }
        }
        changed
    }

    pub(crate) fn add_frame(&mut self, now: MonoTime, msg: Msg) {
        self.frames.push_back((now, msg));
        while self.frames.len() > USER_FRAMES {
            self.frames.pop_front();
        }
    }
}

/// The websocket side of a connection (`Connection.socket`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sock {
    None,
    Open(SockRef),
    /// The attached socket closed (`socket.terminated`): sends now mark the connection for GC.
    Closed,
}

/// The long-poll side (`Connection.queue`).
#[derive(Debug)]
pub(crate) enum LongPoll {
    /// No queue was ever attached.
    None,
    /// A queue is attached but no poll is reading it. Items put there would be discarded by
    /// the next `/listen` (which replaces the queue) before anyone could read them, so they
    /// are dropped right away; the state still matters for heartbeats (quirk 17).
    Idle,
    /// A `/listen` is parked, collecting items.
    Polling(Box<PendingPoll>),
}

/// A parked `/listen` (`await_data`).
#[derive(Debug)]
pub(crate) struct PendingPoll {
    /// None once the HTTP client went away: the poll still runs to its end, as in Python.
    pub(crate) req: Option<ReqRef>,
    pub(crate) callback: Option<String>,
    pub(crate) items: Vec<Bytes>,
    pub(crate) seq: u32,
    /// Still waiting for the first item (5 s), rather than for a 0.25 s gap.
    pub(crate) first: bool,
    pub(crate) deadline: MonoTime,
    /// The deadline of the timer entry that speaks for this poll; others are stale.
    pub(crate) armed: MonoTime,
}

/// A connection (`connection.py`).
#[derive(Debug)]
pub(crate) struct ConnRecord {
    pub(crate) id: Uuid,
    /// Unique per connection object, so timers aimed at a reused slot are ignored.
    pub(crate) gen: u64,
    pub(crate) username: Arc<str>,
    /// Cached index of the owner in `Model::users`, valid while the epoch matches.
    pub(crate) user_slot: usize,
    pub(crate) user_epoch: u64,
    pub(crate) last_active: MonoTime,
    pub(crate) sock: Sock,
    pub(crate) lp: LongPoll,
    /// Indices of the channels holding this connection.
    pub(crate) channels: Keys<ChannelIdx>,
    /// Sequence of this connection's one live entry in the GC queue.
    pub(crate) gc_seq: u32,
    /// Stale but in no channel: 0.7.1's GC only finds connections through channels.
    pub(crate) gc_parked: bool,
    pub(crate) poll_seq: u32,
}

/// A stored message shared by a channel's history and frames (the same dict in Python, so
/// an edit found through history shows in the frame too).
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) msg: Msg,
    pub(crate) refs: u8,
}

/// A channel (`channel.py`).
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) uuid: Uuid,
    pub(crate) config: ChannelConfig,
    /// `connections`: username -> connection slots, users in first-join order.
    pub(crate) members: IndexMap<Arc<str>, Keys<ConnSlot>>,
    pub(crate) store: Slab<Stored>,
    pub(crate) history: VecDeque<usize>,
    pub(crate) frames: VecDeque<(MonoTime, usize)>,
    pub(crate) last_active: Timestamp,
}

impl Channel {
    pub(crate) fn new(config: ChannelConfig, wall: Timestamp) -> Self {
        Channel {
            uuid: Uuid::new_v4(),
            config,
            members: IndexMap::new(),
            store: Slab::new(),
            history: VecDeque::new(),
            frames: VecDeque::new(),
            last_active: wall,
        }
    }

    /// `add_to_history` + `add_frame` for a message about to be delivered; true when it
    /// joined the history.
    pub(crate) fn store_msg(&mut self, msg: Msg, now: MonoTime) -> bool {
        let to_history = !msg.no_history() && self.config.store_history && msg.is_type("message");
        let to_frames = self.config.store_frames;
        if !to_history && !to_frames {
            return false;
        }
        let refs = u8::from(to_history) + u8::from(to_frames);
        let key = self.store.insert(Stored { msg, refs });
        if to_history {
            self.history.push_back(key);
            // `history[-history_size:]`; `[-0:]` keeps everything.
            let size = usize::try_from(self.config.history_size).unwrap_or(usize::MAX);
            while size > 0 && self.history.len() > size {
                if let Some(old) = self.history.pop_front() {
                    self.unref(old);
                }
            }
        }
        if to_frames {
            self.frames.push_back((now, key));
            while self.frames.len() > CHANNEL_FRAMES {
                if let Some((_, old)) = self.frames.pop_front() {
                    self.unref(old);
                }
            }
        }
        to_history
    }

    pub(crate) fn unref(&mut self, key: usize) {
        let last = match self.store.get_mut(key) {
            Some(s) => {
                s.refs = s.refs.saturating_sub(1);
                s.refs == 0
            }
            None => false,
        };
        if last {
            self.store.try_remove(key);
        }
    }

    pub(crate) fn total_connections(&self) -> usize {
        self.members.values().map(|s| s.len()).sum()
    }
}

/// Heartbeat and long-poll deadlines, keyed so that entries for a dead connection (or a
/// superseded poll) are recognised and dropped when they surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Heartbeat {
        slot: ConnSlot,
        gen: u64,
    },
    Poll {
        slot: ConnSlot,
        gen: u64,
        seq: u32,
    },
    /// A poll whose connection was collected mid-wait: 0.7.1's greenlet crashes (500) when
    /// its current wait runs out, not at once.
    Orphan {
        req: super::ReqRef,
    },
}

/// An entry of the GC queue: a connection's `last_active` when queued (a lower bound of its
/// current value, except after `mark_for_gc`, which queues a fresh entry).
pub(crate) type GcEntry = Reverse<(MonoTime, ConnSlot, u64, u32)>;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    pub(crate) heap: BinaryHeap<Reverse<(MonoTime, Timer)>>,
    pub(crate) gc: BinaryHeap<GcEntry>,
    /// The 1 s grid of connection GC passes and the 60 s grid of user GC passes, started by
    /// the first `Now` (Channelstream starts both loops with the server).
    pub(crate) gc_next: Option<MonoTime>,
    pub(crate) user_gc_next: Option<MonoTime>,
}

impl Timers {
    pub(crate) fn at(&mut self, due: MonoTime, timer: Timer) {
        self.heap.push(Reverse((due, timer)));
    }

    /// Move the GC grid past the passes that were skipped because nothing could be due.
    ///
    /// `tick` only runs (and advances the grid) when `next_deadline` says a pass can collect
    /// something, so after an idle spell `gc_next` lies in the past. 0.7.1's loop ran those
    /// passes anyway (finding nothing), so the pass that collects a connection marked now is
    /// the first grid point after now; with a stale `gc_next` the mark would be collected at
    /// once (a websocket close immediately followed by `/disconnect` answered `false`). A pass
    /// that is really due (its threshold already past the oldest key) is left for `tick`.
    pub(crate) fn catch_up_gc_grid(&mut self, now_t: MonoTime) {
        let Some(next) = self.gc_next else {
            return;
        };
        if next > now_t {
            return;
        }
        let due = self
            .gc
            .peek()
            .map(|Reverse((key, ..))| grid_point_after(next, GC_EVERY, key.plus(CONN_TIMEOUT)));
        if due.is_none_or(|d| d > now_t) {
            self.gc_next = Some(grid_point_after(next, GC_EVERY, now_t));
        }
    }

    /// Queue `conn` for the GC at its current `last_active`, invalidating older entries.
    pub(crate) fn queue_gc(&mut self, slot: ConnSlot, conn: &mut ConnRecord) {
        conn.gc_seq = conn.gc_seq.wrapping_add(1);
        conn.gc_parked = false;
        self.gc
            .push(Reverse((conn.last_active, slot, conn.gen, conn.gc_seq)));
    }
}

/// The first point of a grid (`next`, `next + step`, ...) strictly after `after`.
pub(crate) fn grid_point_after(next: MonoTime, step: i64, after: MonoTime) -> MonoTime {
    if next > after {
        return next;
    }
    let behind = after.0.saturating_sub(next.0);
    next.plus((behind / step).saturating_add(1).saturating_mul(step))
}

/// `mark_for_gc`: push `last_active` 60 days back, so the next pass collects the connection.
pub(crate) fn mark_for_gc(slot: ConnSlot, conn: &mut ConnRecord, timers: &mut Timers) {
    conn.last_active = conn.last_active.minus(super::clock::MARK_FOR_GC);
    timers.queue_gc(slot, conn);
}

impl PendingPoll {
    /// One queue item arrived (`None` = a heartbeat `[]`, which wakes the poll but adds
    /// nothing to the body).
    pub(crate) fn push(
        &mut self,
        item: Option<&Bytes>,
        now: MonoTime,
        slot: ConnSlot,
        gen: u64,
        timers: &mut Timers,
    ) {
        if let Some(i) = item {
            self.items.push(i.clone());
        }
        self.first = false;
        // 0.7.1 keeps collecting while items come less than 0.25 s apart, so on a busy channel
        // a poll never answers and grows without bound. We answer at a cap instead (due now,
        // so the reactor's next tick sends it).
        self.deadline = if self.items.len() >= POLL_MAX_ITEMS {
            now
        } else {
            now.plus(POLL_GAP)
        };
        // A later deadline is picked up lazily when the armed entry fires; an earlier one
        // (the first item cutting the 5 s wait short) needs its own entry.
        if self.deadline < self.armed {
            self.armed = self.deadline;
            timers.at(
                self.deadline,
                Timer::Poll {
                    slot,
                    gen,
                    seq: self.seq,
                },
            );
        }
    }
}
