//! Channel membership: creating channels, the join/leave primitives (`Channel.add_connection`,
//! `Channel.remove_connection` with their presence events), the channel limit, and the
//! `/subscribe` and `/unsubscribe` operations, which are one operation run in two directions.

use super::{invalid, ok, Model, Now, Reply};
use crate::channelstream::api::types::{ChannelConfig, SubscribeCmd, Timestamp};
use crate::channelstream::model::state::{Channel, ChannelIdx, ConnSlot};
use crate::channelstream::model::Effects;
use serde_json::json;
use std::sync::Arc;

impl Model {
    /// The channel's index, creating it with `config` (or defaults) when missing.
    pub(crate) fn ensure_channel(
        &mut self,
        name: &str,
        config: Option<&ChannelConfig>,
        now: Now,
    ) -> ChannelIdx {
        if let Some(ch_idx) = self.channels.get_index_of(name).map(ChannelIdx) {
            return ch_idx;
        }
        let ch = Channel::new(
            config.cloned().unwrap_or_default(),
            Timestamp::from_utc(now.wall),
        );
        let idx = ChannelIdx(self.channels.insert_full(name.to_owned(), ch).0);
        self.adopt_history(idx);
        idx
    }

    /// The name of the user owning the connection in `slot`.
    fn conn_username(&self, slot: ConnSlot) -> Option<Arc<str>> {
        self.conns.get(slot.0).map(|c| c.username.clone())
    }

    /// The name of the user owning the connection in `slot`, with the channel it joins or
    /// leaves: what `add_connection` and `remove_connection` both start from.
    fn member_and_channel(
        &mut self,
        slot: ConnSlot,
        ch_idx: ChannelIdx,
    ) -> Option<(Arc<str>, &mut Channel)> {
        let username = self.conn_username(slot)?;
        let (_, ch) = self.channels.get_index_mut(ch_idx.0)?;
        Some((username, ch))
    }

    /// `Channel.add_connection`: `joined` presence when the user had no connection there.
    pub(crate) fn add_connection(
        &mut self,
        ch_idx: ChannelIdx,
        slot: ConnSlot,
        now: Now,
        fx: &mut dyn Effects,
    ) -> bool {
        let Some((username, ch)) = self.member_and_channel(slot, ch_idx) else {
            return false;
        };
        // setdefault: the joiner's key is in the map (and in presence user lists) already.
        let first = ch.members.entry(username.clone()).or_default().is_empty();
        // Sent before the connection joins the list, so the joiner's own connection cannot
        // receive it (it is excluded by name as well).
        if first && ch.config.notify_presence {
            self.send_presence(ch_idx, &username, true, now, fx);
        }
        let Some((_, ch)) = self.channels.get_index_mut(ch_idx.0) else {
            return false;
        };
        let list = ch.members.entry(username).or_default();
        if list.contains(&slot) {
            return false;
        }
        list.push(slot);
        if let Some(conn) = self.conns.get_mut(slot.0) {
            if !conn.channels.contains(&ch_idx) {
                conn.channels.push(ch_idx);
            }
            // A stale connection outside every channel was left for later; now the GC can
            // reach it again through this channel.
            if conn.gc_parked {
                self.timers.queue_gc(slot, conn);
            }
        }
        true
    }

    /// `Channel.remove_connection` + `after_parted`. Note the quirk kept from 0.7.1: a user
    /// with no connection in the channel still triggers `parted` when presence is on.
    pub(crate) fn remove_connection(
        &mut self,
        ch_idx: ChannelIdx,
        slot: ConnSlot,
        now: Now,
        fx: &mut dyn Effects,
    ) -> bool {
        let Some((username, ch)) = self.member_and_channel(slot, ch_idx) else {
            return false;
        };
        let mut found = false;
        let mut empty = true;
        if let Some(list) = ch.members.get_mut(&*username) {
            if let Some(pos) = list.iter().position(|&s| s == slot) {
                list.remove(pos);
                found = true;
            }
            empty = list.is_empty();
        }
        let presence = empty && ch.config.notify_presence;
        if empty {
            ch.members.shift_remove(&*username);
        }
        if let Some(conn) = self.conns.get_mut(slot.0) {
            conn.channels.retain(|c| *c != ch_idx);
        }
        if presence {
            self.send_presence(ch_idx, &username, false, now, fx);
        }
        found
    }

    /// `Connection.channels`: names of the channels holding the connection, sorted.
    pub(crate) fn conn_channel_names(&self, slot: ConnSlot) -> Vec<String> {
        let mut names: Vec<String> = self
            .conns
            .get(slot.0)
            .map(|c| {
                c.channels
                    .iter()
                    .filter_map(|&ch_idx| self.channels.get_index(ch_idx.0).map(|(n, _)| n.clone()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The channel `name` as a request that may carry `channel_configs` names it: created
    /// with its config when missing (the last one given for a name wins, as in a dict).
    pub(super) fn requested_channel(
        &mut self,
        name: &str,
        configs: &[(String, ChannelConfig)],
        now: Now,
    ) -> ChannelIdx {
        let config = configs.iter().rev().find(|(n, _)| n == name);
        self.ensure_channel(name, config.map(|(_, c)| c), now)
    }

    /// 422 in marshmallow's shape when a request would put a connection in more channels
    /// than the limit allows.
    pub(super) fn too_many_channels(&mut self) -> Reply {
        self.stats.channel_limit_refused += 1;
        let msg = format!(
            "Too many channels for one connection (at most {}).",
            self.max_channels_per_conn
        );
        invalid("channels", &msg)
    }

    /// Whether joining `names` would put the connection past the channel limit.
    fn subscribe_would_exceed(&self, slot: ConnSlot, names: &[String]) -> bool {
        let Some(conn) = self.conns.get(slot.0) else {
            return false;
        };
        let mut new: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                self.channels
                    .get_index_of(*n)
                    .map(ChannelIdx)
                    .is_none_or(|ch_idx| !conn.channels.contains(&ch_idx))
            })
            .collect();
        new.sort_unstable();
        new.dedup();
        conn.channels.len() + new.len() > self.max_channels_per_conn
    }

    /// `POST /subscribe`.
    pub fn subscribe(&mut self, cmd: SubscribeCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        self.change_membership(cmd, Direction::Join, now, fx)
    }

    /// `POST /unsubscribe` (`channel_configs` ignored).
    pub fn unsubscribe(&mut self, cmd: SubscribeCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        self.change_membership(cmd, Direction::Leave, now, fx)
    }

    /// `/subscribe` and `/unsubscribe`: for a known connection whose user still exists, join
    /// (or leave) each named channel, then answer with the connection's channels, their info
    /// and the names that actually changed, sorted.
    fn change_membership(
        &mut self,
        cmd: SubscribeCmd,
        dir: Direction,
        now: Now,
        fx: &mut dyn Effects,
    ) -> Reply {
        self.clock_at(now);
        let Some(&slot) = self.by_id.get(&cmd.conn_id) else {
            return invalid("conn_id", "Unknown connection");
        };
        let username = self.conn_username(slot);
        let mut changed = Vec::new();
        // `if user:` - a connection whose user was collected joins or leaves nothing.
        if username.is_some_and(|u| self.users.contains_key(&*u)) {
            if dir == Direction::Join && self.subscribe_would_exceed(slot, &cmd.channels) {
                return self.too_many_channels();
            }
            for name in &cmd.channels {
                let done = match dir {
                    Direction::Join => {
                        let ch_idx = self.requested_channel(name, &cmd.channel_configs, now);
                        self.add_connection(ch_idx, slot, now, fx)
                    }
                    Direction::Leave => self
                        .channels
                        .get_index_of(name.as_str())
                        .map(ChannelIdx)
                        .is_some_and(|ch_idx| self.remove_connection(ch_idx, slot, now, fx)),
                };
                if done {
                    changed.push(name.clone());
                }
            }
        }
        changed.sort();
        let channels = self.conn_channel_names(slot);
        let body = json!({
            "channels": channels,
            "channels_info": self.resolved_info(Some(&channels), &cmd.info),
            (dir.changed_key()): changed,
        });
        ok(&body)
    }
}

/// Which way `change_membership` goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Join,
    Leave,
}

impl Direction {
    /// The reply key listing the channels that changed.
    fn changed_key(self) -> &'static str {
        match self {
            Direction::Join => "subscribed_to",
            Direction::Leave => "unsubscribed_from",
        }
    }
}
