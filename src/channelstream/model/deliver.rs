//! Delivery: `Channel.add_message`, `User.add_message`, `Connection.add_message` and catch-up.
//!
//! The hot path is a channel publish: the message is rendered once (`msg::render`), each
//! recipient connection either contributes its `SockRef` to one target list (websocket), gets
//! the shared item `Bytes` pushed into its parked poll (long poll), or drops it (nothing
//! attached), and the frame goes out in a single `Effects::deliver` call.

use super::clock::{MonoTime, USER_FRAMES};
use super::msg::{render, FieldValue, Msg, Rendered};
use super::state::{mark_for_gc, ChannelIdx, ConnRecord, ConnSlot, LongPoll, Sock, Timers, User};
use super::{Effects, Model, Now, SockRef};
use crate::channelstream::api::types::Timestamp;
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use slab::Slab;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// A `pm_users` / `exclude_users` list, as a set when it is long enough to matter: each
/// channel member is checked against it, so a long list on a big channel would be quadratic.
pub(crate) enum Names<'a> {
    List(&'a [String]),
    Set(HashSet<&'a str>),
}

impl<'a> Names<'a> {
    pub(crate) fn new(list: &'a [String]) -> Self {
        if list.len() > 16 {
            Names::Set(list.iter().map(String::as_str).collect())
        } else {
            Names::List(list)
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Names::List(l) => l.is_empty(),
            Names::Set(s) => s.is_empty(),
        }
    }
    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            Names::List(l) => l.iter().any(|n| n == name),
            Names::Set(s) => s.contains(name),
        }
    }
}

/// Mark the connection's user active (`server_state.users[conn.username].mark_activity()`),
/// through the cached slot, falling back to the name when users were collected or re-created.
/// False when the user is gone (Python raises KeyError there).
pub(crate) fn touch_user(
    users: &mut IndexMap<Arc<str>, User>,
    conn: &mut ConnRecord,
    now: MonoTime,
) -> bool {
    if let Some((_, u)) = users.get_index_mut(conn.user_slot) {
        if u.epoch == conn.user_epoch {
            u.last_active = now;
            return true;
        }
    }
    match users.get_full_mut(&*conn.username) {
        Some((i, _, u)) => {
            conn.user_slot = i;
            conn.user_epoch = u.epoch;
            u.last_active = now;
            true
        }
        None => false,
    }
}

/// The parts of the model one delivery touches, borrowed apart from the channel being walked.
pub(crate) struct Sink<'a> {
    pub(crate) conns: &'a mut Slab<ConnRecord>,
    pub(crate) users: &'a mut IndexMap<Arc<str>, User>,
    pub(crate) timers: &'a mut Timers,
    pub(crate) targets: &'a mut Vec<SockRef>,
    pub(crate) now: MonoTime,
}

impl Sink<'_> {
    /// `Connection.add_message`: `None` is the heartbeat `[]`.
    pub(crate) fn push(&mut self, slot: ConnSlot, item: Option<&Bytes>) {
        let Some(conn) = self.conns.get_mut(slot.0) else {
            return;
        };
        // A socket takes precedence over a queue, as in Python; a socket known to be closed
        // (`terminated`) turns any delivery into `mark_for_gc`.
        match conn.sock {
            Sock::Open(s) => {
                self.targets.push(s);
                conn.last_active = self.now;
                if !touch_user(self.users, conn, self.now) {
                    mark_for_gc(slot, conn, self.timers);
                }
            }
            Sock::Closed => mark_for_gc(slot, conn, self.timers),
            Sock::None => {
                if let LongPoll::Polling(p) = &mut conn.lp {
                    p.push(item, self.now, slot, conn.gen, self.timers);
                }
            }
        }
    }
}

/// Send `frame` to the collected websocket targets, once, and reset the list.
pub(crate) fn flush(fx: &mut dyn Effects, frame: &Bytes, targets: &mut Vec<SockRef>) {
    if !targets.is_empty() {
        fx.deliver(frame, targets);
        targets.clear();
    }
}

impl Model {
    /// A sink over the whole model, for deliveries that walk no channel.
    pub(crate) fn sink(&mut self, now_t: MonoTime) -> Sink<'_> {
        Sink {
            conns: &mut self.conns,
            users: &mut self.users,
            timers: &mut self.timers,
            targets: &mut self.targets,
            now: now_t,
        }
    }

    /// `Channel.add_message`: store (history/frames), then deliver to every connection of every
    /// user in join order, skipping users in the message's `exclude_users` and, when its
    /// `pm_users` is non-empty, users not listed there. Returns the number of connections
    /// handed the message (`total_messages`).
    pub(crate) fn channel_publish(
        &mut self,
        ch_idx: ChannelIdx,
        msg: Msg,
        now: Now,
        fx: &mut dyn Effects,
    ) -> u64 {
        let now_t = self.clock_at(now);
        let Model {
            channels,
            conns,
            users,
            timers,
            targets,
            buf,
            ..
        } = self;
        let Some((_, ch)) = channels.get_index_mut(ch_idx.0) else {
            return 0;
        };
        ch.last_active = Timestamp::from_utc(now.wall);
        let mut sent = 0u64;
        if !ch.members.is_empty() {
            let r = render(&msg, false, buf);
            let pm = Names::new(msg.names("pm_users"));
            let ex = Names::new(msg.names("exclude_users"));
            let mut sink = Sink {
                conns,
                users,
                timers,
                targets,
                now: now_t,
            };
            let filtered = !pm.is_empty() || !ex.is_empty();
            for (user, slots) in &ch.members {
                if filtered && (ex.contains(user) || (!pm.is_empty() && !pm.contains(user))) {
                    continue;
                }
                for &slot in slots {
                    sink.push(slot, Some(&r.item));
                }
                sent += slots.len() as u64;
            }
            flush(fx, &r.frame, targets);
        }
        if ch.store_msg(msg, now_t) {
            self.log_append(ch_idx);
        }
        sent
    }

    /// `User.add_message`: a private message (or PM edit/delete) to every connection of the
    /// user, stored in the user's frames without delivery keys. Returns connections reached.
    pub(crate) fn user_publish(
        &mut self,
        username: &str,
        msg: &Msg,
        now: Now,
        fx: &mut dyn Effects,
    ) -> u64 {
        let now_t = self.clock_at(now);
        let Some(user) = self.users.get_mut(username) else {
            return 0;
        };
        let copy = msg.without_delivery_keys();
        let rendered = (!user.conns.is_empty()).then(|| render(&copy, false, &mut self.buf));
        user.add_frame(now_t, copy);
        debug_assert!(user.frames.len() <= USER_FRAMES);
        user.last_active = now_t;
        // Delivery marks users active, so it needs `users` mutably: walk a copy of the
        // (short) list of the user's connections, kept in a reused scratch vector.
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        slots.extend_from_slice(&user.conns);
        if let Some(r) = rendered {
            self.deliver_to(&slots, &r, now_t, fx);
        }
        let sent = slots.len() as u64;
        self.slots = slots;
        sent
    }

    /// Deliver one rendered message to some connection slots.
    pub(crate) fn deliver_to(
        &mut self,
        slots: &[ConnSlot],
        r: &Rendered,
        now_t: MonoTime,
        fx: &mut dyn Effects,
    ) {
        let mut sink = self.sink(now_t);
        for &slot in slots {
            sink.push(slot, Some(&r.item));
        }
        flush(fx, &r.frame, &mut self.targets);
    }

    /// `Connection.get_catchup_messages`: frames of the connection's channels (sorted by name)
    /// newer than or equal to `last_active` and meant for this user, then the user's private
    /// frames strictly newer; each rendered with `catchup: true`.
    pub(crate) fn catchup(&mut self, slot: ConnSlot) -> Vec<Rendered> {
        let Some(conn) = self.conns.get(slot.0) else {
            return Vec::new();
        };
        let t0 = conn.last_active;
        let name: &str = &conn.username;
        let mut chans: Vec<(&str, ChannelIdx)> = conn
            .channels
            .iter()
            .filter_map(|&ch_idx| {
                self.channels
                    .get_index(ch_idx.0)
                    .map(|(n, _)| (n.as_str(), ch_idx))
            })
            .collect();
        chans.sort_unstable();
        let mut out = Vec::new();
        for (_, ch_idx) in chans {
            let Some((_, ch)) = self.channels.get_index(ch_idx.0) else {
                continue;
            };
            // Channel frames at or after `t0` (Python skips `t < newer_than`) ...
            for (t, key) in &ch.frames {
                if *t < t0 {
                    continue;
                }
                let Some(stored) = ch.store.get(*key) else {
                    continue;
                };
                let m = &stored.msg;
                let ex = m.names("exclude_users");
                let pm = m.names("pm_users");
                if ex.iter().any(|u| u == name) || (!pm.is_empty() && !pm.iter().any(|u| u == name))
                {
                    continue;
                }
                out.push(render(m, true, &mut self.buf));
            }
        }
        // ... but user frames strictly after it (`f[0] > newer_than`).
        if let Some(user) = self.users.get(name) {
            for (t, m) in &user.frames {
                if *t > t0 {
                    out.push(render(m, true, &mut self.buf));
                }
            }
        }
        out
    }

    /// `deliver_catchup_messages`: compute everything first, then send one item at a time
    /// (a websocket gets one frame per message).
    pub(crate) fn deliver_catchup(&mut self, slot: ConnSlot, now: Now, fx: &mut dyn Effects) {
        let msgs = self.catchup(slot);
        let now_t = self.clock_at(now);
        for r in &msgs {
            self.deliver_to(&[slot], r, now_t, fx);
        }
    }

    /// `Channel.send_notify_presence_info`: `joined` / `parted` to everyone else in the channel.
    pub(crate) fn send_presence(
        &mut self,
        ch_idx: ChannelIdx,
        username: &Arc<str>,
        joined: bool,
        now: Now,
        fx: &mut dyn Effects,
    ) {
        let Some((name, ch)) = self.channels.get_index(ch_idx.0) else {
            return;
        };
        // The list is built from the member keys at this moment: it includes a joiner
        // (already keyed by `add_connection`) and no longer includes a parting user.
        let users = if ch.config.broadcast_presence_with_user_lists {
            ch.members
                .keys()
                .filter_map(|n| {
                    self.users
                        .get(n)
                        .map(|u| json!({"user": &**n, "state": u.public_state()}))
                })
                .collect()
        } else {
            Vec::new()
        };
        let (action, state) = if joined {
            let state = self
                .users
                .get(&**username)
                .map_or(Value::Object(Map::new()), |u| {
                    Value::Object(u.public_state())
                });
            ("joined", state)
        } else {
            ("parted", Value::Null)
        };
        let wall = Timestamp::from_utc(now.wall);
        let mut msg = Msg::with_capacity(12);
        msg.push("uuid", FieldValue::Uuid(Uuid::new_v4()))
            .push("type", FieldValue::Static("presence"))
            .push("no_history", FieldValue::Bool(false))
            .push("pm_users", FieldValue::List(Vec::new()))
            .push(
                "exclude_users",
                FieldValue::List(vec![username.to_string()]),
            )
            .push("user", FieldValue::Str(username.to_string()))
            .push("users", FieldValue::Json(Value::Array(users)))
            .push("timestamp", FieldValue::Time(wall))
            .push("channel", FieldValue::Str(name.clone()))
            .push("message", FieldValue::Json(json!({ "action": action })))
            .push("state", FieldValue::Json(state))
            .push("catchup", FieldValue::Bool(false));
        self.channel_publish(ch_idx, msg, now, fx);
    }

    /// `Channel.send_user_state`: to everyone in the channel, the user included; `changed`
    /// keeps only keys that are currently public (possibly none).
    pub(crate) fn send_user_state(
        &mut self,
        ch_idx: ChannelIdx,
        username: &str,
        changed: &[(String, Value)],
        now: Now,
        fx: &mut dyn Effects,
    ) {
        let Some((name, _)) = self.channels.get_index(ch_idx.0) else {
            return;
        };
        let public = self
            .users
            .get(username)
            .map(User::public_state)
            .unwrap_or_default();
        let public_changed: Vec<Value> = changed
            .iter()
            .filter(|(k, _)| public.contains_key(k))
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let mut msg = Msg::with_capacity(10);
        msg.push("uuid", FieldValue::Uuid(Uuid::new_v4()))
            .push("type", FieldValue::Static("user_state_change"))
            .push("no_history", FieldValue::Bool(false))
            .push("pm_users", FieldValue::List(Vec::new()))
            .push("exclude_users", FieldValue::List(Vec::new()))
            .push("user", FieldValue::Str(username.to_owned()))
            .push("timestamp", FieldValue::Time(Timestamp::from_utc(now.wall)))
            .push("catchup", FieldValue::Bool(false))
            .push("channel", FieldValue::Str(name.clone()))
            .push(
                "message",
                FieldValue::Json(
                    json!({"state": Value::Object(public), "changed": public_changed}),
                ),
            );
        self.channel_publish(ch_idx, msg, now, fx);
    }
}
