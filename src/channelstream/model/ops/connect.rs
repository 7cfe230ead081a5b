//! The user and connection lifecycle seen from the REST API: `/connect` (user, connection
//! record, timers, channels), `/user_state` (state changes and their events) and
//! `/disconnect` (hand the connection to the GC).

use super::{conn_by_id, internal_error, invalid, ok, Model, Now, Reply};
use crate::channelstream::api::types::{ConnectCmd, UserStateCmd};
use crate::channelstream::model::clock::HEARTBEAT;
use crate::channelstream::model::state::{
    mark_for_gc, ChannelIdx, ConnRecord, ConnSlot, Keys, LongPoll, Sock, Timer, User,
};
use crate::channelstream::model::Effects;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

impl Model {
    /// `POST /connect`.
    pub fn connect(&mut self, cmd: ConnectCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        let now_t = self.clock_at(now);
        let mut distinct: Vec<&str> = cmd.channels.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > self.max_channels_per_conn {
            return self.too_many_channels();
        }
        // `operations.connect`: the user (fresh state only when new), public keys (always
        // replaced, quirk 4), merged state, then a new connection, then the channels.
        if !self.users.contains_key(cmd.username.as_str()) {
            let mut user = User::new(self.next_epoch(), now_t);
            user.state_from_dict(&cmd.fresh_user_state);
            self.users.insert(Arc::from(cmd.username.as_str()), user);
        }
        let Some((user_slot, name, user)) = self.users.get_full_mut(cmd.username.as_str()) else {
            return internal_error();
        };
        let name = name.clone();
        user.public_keys = cmd.state_public_keys;
        // No user_state_change events from /connect.
        user.state_from_dict(&cmd.user_state);
        let user_epoch = user.epoch;

        self.gen += 1;
        let gen = self.gen;
        let slot = ConnSlot(self.conns.insert(ConnRecord {
            id: cmd.conn_id,
            gen,
            username: name,
            user_slot,
            user_epoch,
            last_active: now_t,
            sock: Sock::None,
            lp: LongPoll::None,
            channels: Keys::new(),
            gc_seq: 0,
            gc_parked: false,
            poll_seq: 0,
        }));
        self.timers
            .at(now_t.plus(HEARTBEAT), Timer::Heartbeat { slot, gen });
        if let Some(conn) = self.conns.get_mut(slot.0) {
            self.timers.queue_gc(slot, conn);
        }
        // Quirk: a live conn_id keeps its first object in the map; the new object still joins
        // the user and the channels (duplicate deliveries, double counts).
        self.by_id.entry(cmd.conn_id).or_insert(slot);
        if let Some((_, _, user)) = self.users.get_full_mut(cmd.username.as_str()) {
            if !user.conns.contains(&slot) {
                user.conns.push(slot);
            }
            user.last_active = now_t;
        }

        // Joined in sorted order (presence events follow it); a config only applies to a
        // channel this call creates, the last one given for a name wins as in a dict.
        let mut channels = cmd.channels;
        channels.sort();
        for name in &channels {
            let ch_idx = self.requested_channel(name, &cmd.channel_configs, now);
            self.add_connection(ch_idx, slot, now, fx);
        }

        let Some(user) = self.users.get(cmd.username.as_str()) else {
            return internal_error();
        };
        let body = json!({
            "conn_id": cmd.conn_id.hyphenated().to_string(),
            "state": user.state,
            "username": cmd.username,
            "public_state": user.public_state(),
            "channels": channels,
            "channels_info": self.resolved_info(Some(&channels), &cmd.info),
        });
        ok(&body)
    }

    /// `POST /user_state`.
    pub fn user_state(&mut self, cmd: UserStateCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        let now_t = self.clock_at(now);
        let Some(user) = self.users.get_mut(cmd.user.as_str()) else {
            return invalid("user", "Unknown user");
        };
        if let Some(keys) = cmd.state_public_keys {
            user.public_keys = keys;
        }
        let changed = user.state_from_dict(&cmd.user_state);
        user.last_active = now_t;
        if !changed.is_empty() {
            // `user.get_channels()` in creation order, then those with notify_state.
            let targets: Vec<ChannelIdx> = self
                .channels
                .values()
                .enumerate()
                .filter(|(_, ch)| {
                    ch.config.notify_state
                        && ch
                            .members
                            .get(cmd.user.as_str())
                            .is_some_and(|l| !l.is_empty())
                })
                .map(|(i, _)| ChannelIdx(i))
                .collect();
            for ch_idx in targets {
                self.send_user_state(ch_idx, &cmd.user, &changed, now, fx);
            }
        }
        let Some(user) = self.users.get(cmd.user.as_str()) else {
            return internal_error();
        };
        let changed: Vec<Value> = changed
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let body = json!({
            "user_state": user.state,
            "changed_state": changed,
            "public_keys": user.public_keys,
        });
        ok(&body)
    }

    /// `/disconnect`: `true` and mark for GC if the connection exists, else `false`.
    pub fn disconnect(&mut self, conn_id: Uuid, now: Now) -> Reply {
        self.clock_at(now);
        let found = match conn_by_id(&self.by_id, &mut self.conns, &conn_id) {
            Some((slot, conn)) => {
                mark_for_gc(slot, conn, &mut self.timers);
                true
            }
            None => false,
        };
        ok(&Value::Bool(found))
    }
}
