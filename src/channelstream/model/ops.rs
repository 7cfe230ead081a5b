//! The REST operations (`operations.py` and the views of `wsgi_views/server.py`), each with a
//! typed entry point taking the validated command, plus the JSON bodies they answer with.
//!
//! Key order in every body follows the real server's dicts; the JSON text itself comes from
//! `pyjson`, so only the structure is decided here.

use super::clock::{HEARTBEAT, POLL_FIRST_WAIT, T};
use super::msg::{poll_body, Msg, F};
use super::state::{mark_for_gc, Channel, Conn, Lp, Poll, Slots, Sock, Timer, User};
use super::{CloseCode, ContentKind, Effects, Model, Now, Reply, ReqRef, SockRef};
use crate::channelstream::api::types::{
    ChannelConfig, ChannelConfigCmd, ConnectCmd, DeleteCmd, EditCmd, InfoResolution, MessageCmd,
    SchemaError, SubscribeCmd, Timestamp, UserStateCmd,
};
use crate::py::json as pyjson;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// Pyramid's `HTTPUnauthorized` page, as `/listen` sends it for an unknown `conn_id`.
pub const UNAUTHORIZED_PAGE: &str = "<html>\n <head>\n  <title>401 Unauthorized</title>\n </head>\n <body>\n  <h1>401 Unauthorized</h1>\n  This server could not verify that you are authorized to access the document you requested.  Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.<br/><br/>\n\n\n\n </body>\n</html>";

/// The version admin.json reports: the one we are compatible with.
const VERSION: &str = "0.7.1";

pub(crate) fn json_reply(status: u16, v: &Value) -> Reply {
    Reply {
        status,
        kind: ContentKind::Json,
        body: Bytes::from(pyjson::to_string_pretty(v)),
    }
}

pub(crate) fn internal_error() -> Reply {
    Reply {
        status: 500,
        kind: ContentKind::Text,
        body: Bytes::from_static(b"Internal Server Error"),
    }
}

/// A validation failure: 422 with marshmallow's error object, or the 500 of a crash.
pub(crate) fn schema_error(e: SchemaError) -> Reply {
    match e {
        SchemaError::Invalid(v) => json_reply(422, &v),
        SchemaError::Crash => internal_error(),
    }
}

fn unauthorized() -> Reply {
    Reply {
        status: 401,
        kind: ContentKind::Html,
        body: Bytes::from_static(UNAUTHORIZED_PAGE.as_bytes()),
    }
}

fn settings_value(c: &ChannelConfig) -> Value {
    json!({
        "notify_presence": c.notify_presence,
        "store_history": c.store_history,
        "history_size": c.history_size,
        "broadcast_presence_with_user_lists": c.broadcast_presence_with_user_lists,
        "notify_state": c.notify_state,
        "store_frames": c.store_frames,
    })
}

/// Python `str(timedelta).split(".")[0]`: `H:MM:SS`, or `N day(s), H:MM:SS`.
pub(crate) fn uptime_string(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match days {
        0 => format!("{h}:{m:02}:{s:02}"),
        1 => format!("1 day, {h}:{m:02}:{s:02}"),
        d => format!("{d} days, {h}:{m:02}:{s:02}"),
    }
}

/// The `message` dict `pass_message` stores and sends, with the key order of
/// `MessageBody` loading followed by `catchup` and `type`. It keeps the delivery keys: history
/// entries show them (quirk 6) and catch-up filters on them; sockets never see them.
fn message_msg(m: MessageCmd) -> Msg {
    let mut msg = Msg::with_capacity(11);
    msg.push("pm_users", F::List(m.pm_users))
        .push("exclude_users", F::List(m.exclude_users))
        .push("channel", m.channel.map_or(F::Null, F::Str))
        .push("no_history", F::Bool(m.no_history))
        .push("uuid", F::Uuid(m.uuid))
        .push("timestamp", F::Time(m.timestamp))
        .push("user", F::Str(m.user));
    // An absent `message` stays absent everywhere, including on the wire.
    if let Some(body) = m.message {
        msg.push("message", F::Json(Value::Object(body)));
    }
    // post_load adds `edited: null`; pass_message appends `catchup` and `type`.
    msg.push("edited", F::Null)
        .push("catchup", F::Bool(false))
        .push("type", F::Static("message"));
    msg
}

/// The `message:edit` event (a copy of the loaded PATCH item plus `type`). Only the optional
/// keys the PATCH carried appear, and there is no `catchup` key (quirk 12) until catch-up
/// appends one.
fn edit_msg(e: &EditCmd) -> Msg {
    let mut msg = Msg::with_capacity(10);
    msg.push("pm_users", F::List(e.pm_users.clone()))
        .push("exclude_users", F::List(e.exclude_users.clone()))
        .push("channel", e.channel.clone().map_or(F::Null, F::Str))
        .push("no_history", F::Bool(e.no_history))
        .push("uuid", F::Uuid(e.uuid));
    if let Some(t) = &e.timestamp {
        msg.push("timestamp", F::Time(t.clone()));
    }
    if let Some(u) = &e.user {
        msg.push("user", F::Str(u.clone()));
    }
    if let Some(body) = &e.message {
        msg.push("message", F::Json(Value::Object(body.clone())));
    }
    msg.push("edited", F::Time(e.edited.clone()))
        .push("type", F::Static("message:edit"));
    msg
}

/// `msg.update({k: v for k, v in to_edit.items() if k in MSG_EDITABLE_KEYS})`: existing keys
/// change in place, a key the original lacked (`message`) lands at the end; `message` is
/// replaced whole, not merged.
fn apply_edit(target: &mut Msg, e: &EditCmd) {
    target.set("uuid", F::Uuid(e.uuid));
    if let Some(t) = &e.timestamp {
        target.set("timestamp", F::Time(t.clone()));
    }
    if let Some(u) = &e.user {
        target.set("user", F::Str(u.clone()));
    }
    if let Some(body) = &e.message {
        target.set("message", F::Json(Value::Object(body.clone())));
    }
    target.set("edited", F::Time(e.edited.clone()));
}

fn delete_msg(d: &DeleteCmd) -> Msg {
    let mut msg = Msg::with_capacity(6);
    msg.push("pm_users", F::List(d.pm_users.clone()))
        .push("exclude_users", F::List(d.exclude_users.clone()))
        .push("channel", d.channel.clone().map_or(F::Null, F::Str))
        .push("no_history", F::Bool(d.no_history))
        .push("uuid", F::Uuid(d.uuid))
        .push("type", F::Static("message:delete"));
    msg
}

/// Python truthiness of the optional channel name.
fn target_channel(c: &Option<String>) -> Option<&str> {
    c.as_deref().filter(|c| !c.is_empty())
}

impl Model {
    fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// The channel's index, creating it with `config` (or defaults) when missing.
    pub(crate) fn ensure_channel(
        &mut self,
        name: &str,
        config: Option<&ChannelConfig>,
        now: Now,
    ) -> usize {
        if let Some(ci) = self.channels.get_index_of(name) {
            return ci;
        }
        let ch = Channel::new(
            config.cloned().unwrap_or_default(),
            Timestamp::from_utc(now.wall),
        );
        self.channels.insert_full(name.to_owned(), ch).0
    }

    /// `Channel.add_connection`: `joined` presence when the user had no connection there.
    pub(crate) fn add_connection(
        &mut self,
        ci: usize,
        slot: usize,
        now: Now,
        fx: &mut dyn Effects,
    ) -> bool {
        let Some(username) = self.conns.get(slot).map(|c| c.username.clone()) else {
            return false;
        };
        let Some((_, ch)) = self.channels.get_index_mut(ci) else {
            return false;
        };
        // setdefault: the joiner's key is in the map (and in presence user lists) already.
        let first = ch.members.entry(username.clone()).or_default().is_empty();
        // Sent before the connection joins the list, so the joiner's own connection cannot
        // receive it (it is excluded by name as well).
        if first && ch.config.notify_presence {
            self.send_presence(ci, &username, true, now, fx);
        }
        let Some((_, ch)) = self.channels.get_index_mut(ci) else {
            return false;
        };
        let list = ch.members.entry(username).or_default();
        if list.contains(&slot) {
            return false;
        }
        list.push(slot);
        if let Some(conn) = self.conns.get_mut(slot) {
            if !conn.channels.contains(&ci) {
                conn.channels.push(ci);
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
        ci: usize,
        slot: usize,
        now: Now,
        fx: &mut dyn Effects,
    ) -> bool {
        let Some(username) = self.conns.get(slot).map(|c| c.username.clone()) else {
            return false;
        };
        let Some((_, ch)) = self.channels.get_index_mut(ci) else {
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
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.channels.retain(|c| *c != ci);
        }
        if empty {
            ch.members.shift_remove(&*username);
            if ch.config.notify_presence {
                self.send_presence(ci, &username, false, now, fx);
            }
        }
        found
    }

    /// `Connection.channels`: names of the channels holding the connection, sorted.
    pub(crate) fn conn_channel_names(&self, slot: usize) -> Vec<String> {
        let mut names: Vec<String> = self
            .conns
            .get(slot)
            .map(|c| {
                c.channels
                    .iter()
                    .filter_map(|&ci| self.channels.get_index(ci).map(|(n, _)| n.clone()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `Channel.get_info`.
    fn channel_value(
        &self,
        name: &str,
        ch: &Channel,
        include_history: bool,
        include_users: bool,
    ) -> Value {
        let history: Vec<Value> = if include_history {
            ch.history
                .iter()
                .filter_map(|&k| ch.store.get(k).map(|s| s.msg.to_http_value()))
                .collect()
        } else {
            Vec::new()
        };
        // `total_users` counts the listed names, so it is 0 when users are not requested
        // (quirk 10), while `total_connections` always counts.
        let mut users: Vec<&str> = if include_users {
            ch.members.keys().map(|k| &**k).collect()
        } else {
            Vec::new()
        };
        users.sort_unstable();
        json!({
            "uuid": ch.uuid.hyphenated().to_string(),
            "name": name,
            "long_name": null,
            "settings": settings_value(&ch.config),
            "history": history,
            "last_active": ch.last_active.to_http_string(),
            "total_connections": ch.total_connections(),
            "total_users": users.len(),
            "users": users,
        })
    }

    /// `SharedUtils.get_channel_info`: requested channels (None = all) minus excluded ones,
    /// and the union of their users (in order of first appearance; Python used a set).
    pub(crate) fn channels_info(
        &self,
        req: Option<&[String]>,
        include_history: bool,
        include_users: bool,
        exclude: &[String],
        return_public_state: bool,
    ) -> Value {
        let picked: Vec<(&str, &Channel)> = match req {
            None => self.channels.iter().map(|(n, c)| (n.as_str(), c)).collect(),
            Some(names) => names
                .iter()
                .filter_map(|n| self.channels.get_key_value(n.as_str()))
                .map(|(n, c)| (n.as_str(), c))
                .collect(),
        };
        // Unknown names are skipped; a name asked twice collapses like a dict key.
        let mut chans = Map::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut listed: Vec<&str> = Vec::new();
        for (name, ch) in picked {
            if exclude.iter().any(|e| e == name) {
                continue;
            }
            chans.insert(
                name.to_owned(),
                self.channel_value(name, ch, include_history, include_users),
            );
            if include_users {
                let mut names: Vec<&str> = ch.members.keys().map(|k| &**k).collect();
                names.sort_unstable();
                for n in names {
                    if seen.insert(n) {
                        listed.push(n);
                    }
                }
            }
        }
        // Full private state unless asked otherwise (quirk 5). A member whose user was
        // collected is left out (0.7.1 raised KeyError here).
        let users: Vec<Value> = listed
            .into_iter()
            .filter_map(|n| self.users.get(n).map(|u| (n, u)))
            .map(|(n, u)| {
                let state = if return_public_state {
                    u.public_state()
                } else {
                    u.state.clone()
                };
                json!({"user": n, "state": state})
            })
            .collect();
        json!({"channels": chans, "users": users})
    }

    fn common_info(&self, channels: &[String], info: &InfoResolution) -> Value {
        self.channels_info(
            Some(channels),
            info.include_history,
            info.include_users,
            &info.exclude_channels,
            info.return_public_state,
        )
    }

    /// `POST /connect`.
    pub fn connect(&mut self, cmd: ConnectCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        let t = self.t(now);
        let mut distinct: Vec<&str> = cmd.channels.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > self.max_channels_per_conn {
            return self.too_many_channels();
        }
        // `operations.connect`: the user (fresh state only when new), public keys (always
        // replaced, quirk 4), merged state, then a new connection, then the channels.
        if !self.users.contains_key(cmd.username.as_str()) {
            let mut user = User::new(self.next_epoch(), t);
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
        let slot = self.conns.insert(Conn {
            id: cmd.conn_id,
            gen,
            username: name,
            user_slot,
            user_epoch,
            last_active: t,
            sock: Sock::None,
            lp: Lp::None,
            channels: Slots::new(),
            gc_seq: 0,
            gc_parked: false,
            poll_seq: 0,
        });
        self.timers
            .at(t.plus(HEARTBEAT), Timer::Heartbeat { slot, gen });
        if let Some(conn) = self.conns.get_mut(slot) {
            self.timers.queue_gc(slot, conn);
        }
        // Quirk: a live conn_id keeps its first object in the map; the new object still joins
        // the user and the channels (duplicate deliveries, double counts).
        self.by_id.entry(cmd.conn_id).or_insert(slot);
        if let Some((_, _, user)) = self.users.get_full_mut(cmd.username.as_str()) {
            if !user.conns.contains(&slot) {
                user.conns.push(slot);
            }
            user.last_active = t;
        }

        // Joined in sorted order (presence events follow it); a config only applies to a
        // channel this call creates, the last one given for a name wins as in a dict.
        let mut channels = cmd.channels;
        channels.sort();
        for name in &channels {
            let config = cmd.channel_configs.iter().rev().find(|(n, _)| n == name);
            let ci = self.ensure_channel(name, config.map(|(_, c)| c), now);
            self.add_connection(ci, slot, now, fx);
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
            "channels_info": self.common_info(&channels, &cmd.info),
        });
        json_reply(200, &body)
    }

    /// 422 in marshmallow's shape when a request would put a connection in more channels
    /// than the limit allows.
    fn too_many_channels(&mut self) -> Reply {
        self.stats.channel_limit_refused += 1;
        let msg = format!(
            "Too many channels for one connection (at most {}).",
            self.max_channels_per_conn
        );
        json_reply(422, &json!({ "channels": [msg] }))
    }

    fn unknown_connection() -> Reply {
        json_reply(422, &json!({"conn_id": ["Unknown connection"]}))
    }

    /// `POST /subscribe`.
    pub fn subscribe(&mut self, cmd: SubscribeCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        self.t(now);
        let Some(&slot) = self.by_id.get(&cmd.conn_id) else {
            return Self::unknown_connection();
        };
        let username = self.conns.get(slot).map(|c| c.username.clone());
        let mut subscribed = Vec::new();
        // `if user:` - a connection whose user was collected subscribes to nothing.
        if username.is_some_and(|u| self.users.contains_key(&*u)) {
            if self.subscribe_would_exceed(slot, &cmd.channels) {
                return self.too_many_channels();
            }
            for name in &cmd.channels {
                let config = cmd.channel_configs.iter().rev().find(|(n, _)| n == name);
                let ci = self.ensure_channel(name, config.map(|(_, c)| c), now);
                if self.add_connection(ci, slot, now, fx) {
                    subscribed.push(name.clone());
                }
            }
        }
        subscribed.sort();
        let channels = self.conn_channel_names(slot);
        let body = json!({
            "channels": channels,
            "channels_info": self.common_info(&channels, &cmd.info),
            "subscribed_to": subscribed,
        });
        json_reply(200, &body)
    }

    /// Whether joining `names` would put the connection past the channel limit.
    fn subscribe_would_exceed(&self, slot: usize, names: &[String]) -> bool {
        let Some(conn) = self.conns.get(slot) else {
            return false;
        };
        let mut new: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                self.channels
                    .get_index_of(*n)
                    .is_none_or(|ci| !conn.channels.contains(&ci))
            })
            .collect();
        new.sort_unstable();
        new.dedup();
        conn.channels.len() + new.len() > self.max_channels_per_conn
    }

    /// `POST /unsubscribe` (`channel_configs` ignored).
    pub fn unsubscribe(&mut self, cmd: SubscribeCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        self.t(now);
        let Some(&slot) = self.by_id.get(&cmd.conn_id) else {
            return Self::unknown_connection();
        };
        let username = self.conns.get(slot).map(|c| c.username.clone());
        let mut unsubscribed = Vec::new();
        if username.is_some_and(|u| self.users.contains_key(&*u)) {
            for name in &cmd.channels {
                if let Some(ci) = self.channels.get_index_of(name.as_str()) {
                    if self.remove_connection(ci, slot, now, fx) {
                        unsubscribed.push(name.clone());
                    }
                }
            }
        }
        unsubscribed.sort();
        let channels = self.conn_channel_names(slot);
        let body = json!({
            "channels": channels,
            "channels_info": self.common_info(&channels, &cmd.info),
            "unsubscribed_from": unsubscribed,
        });
        json_reply(200, &body)
    }

    /// `POST /user_state`.
    pub fn user_state(&mut self, cmd: UserStateCmd, now: Now, fx: &mut dyn Effects) -> Reply {
        let t = self.t(now);
        let Some(user) = self.users.get_mut(cmd.user.as_str()) else {
            return json_reply(422, &json!({"user": ["Unknown user"]}));
        };
        if let Some(keys) = cmd.state_public_keys {
            user.public_keys = keys;
        }
        let changed = user.state_from_dict(&cmd.user_state);
        user.last_active = t;
        if !changed.is_empty() {
            // `user.get_channels()` in creation order, then those with notify_state.
            let targets: Vec<usize> = self
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
                .map(|(ci, _)| ci)
                .collect();
            for ci in targets {
                self.send_user_state(ci, &cmd.user, &changed, now, fx);
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
        json_reply(200, &body)
    }

    /// `POST /channel_config`: a given config replaces all six settings; `None` creates a
    /// default channel or leaves an existing one alone.
    pub fn channel_config(&mut self, cmd: ChannelConfigCmd, now: Now) -> Reply {
        self.t(now);
        for (name, config) in &cmd {
            match (self.channels.get_mut(name.as_str()), config) {
                (Some(ch), Some(c)) => ch.config = c.clone(),
                (Some(_), None) => {}
                (None, c) => {
                    self.ensure_channel(name, c.as_ref(), now);
                }
            }
        }
        let names: Vec<String> = cmd.into_iter().map(|(n, _)| n).collect();
        json_reply(
            200,
            &self.channels_info(Some(&names), false, false, &[], false),
        )
    }

    /// `/info`.
    pub fn info(&self, res: &InfoResolution) -> Reply {
        json_reply(
            200,
            &self.channels_info(
                res.channels.as_deref(),
                res.include_history,
                res.include_users,
                &res.exclude_channels,
                res.return_public_state,
            ),
        )
    }

    /// `POST /message` after the front answered: `pass_message` for each item, in order.
    pub fn messages(&mut self, msgs: Vec<MessageCmd>, now: Now, fx: &mut dyn Effects) {
        for m in msgs {
            self.stats.total_unique_messages += 1;
            let channel = target_channel(&m.channel).map(str::to_owned);
            let msg = message_msg(m);
            let sent = match channel {
                Some(name) => match self.channels.get_index_of(name.as_str()) {
                    Some(ci) => self.channel_publish(ci, msg, now, fx),
                    None => 0,
                },
                // Global PM: each listed user that exists, duplicates included.
                None => msg
                    .names("pm_users")
                    .iter()
                    .map(|name| self.user_publish(name, &msg, now, fx))
                    .sum(),
            };
            self.stats.total_messages += sent;
        }
    }

    /// `PATCH /message`: update the stored message, then broadcast a `message:edit` event
    /// (even when nothing matched), following the edit's own pm/exclude lists.
    pub fn edits(&mut self, edits: Vec<EditCmd>, now: Now, fx: &mut dyn Effects) {
        for e in edits {
            let event = edit_msg(&e);
            if let Some(name) = target_channel(&e.channel) {
                let Some(ci) = self.channels.get_index_of(name) else {
                    continue;
                };
                if let Some((_, ch)) = self.channels.get_index_mut(ci) {
                    // History first; a hit there is the same object as its frame.
                    let key = ch
                        .history
                        .iter()
                        .copied()
                        .find(|&k| {
                            ch.store
                                .get(k)
                                .is_some_and(|s| s.msg.uuid() == Some(e.uuid))
                        })
                        .or_else(|| {
                            ch.frames.iter().map(|(_, k)| *k).find(|&k| {
                                ch.store.get(k).is_some_and(|s| {
                                    s.msg.uuid() == Some(e.uuid) && s.msg.is_type("message")
                                })
                            })
                        });
                    if let Some(stored) = key.and_then(|k| ch.store.get_mut(k)) {
                        apply_edit(&mut stored.msg, &e);
                    }
                }
                self.channel_publish(ci, event, now, fx);
            } else {
                for name in &e.pm_users {
                    let Some(user) = self.users.get_mut(name.as_str()) else {
                        continue;
                    };
                    if let Some((_, m)) = user
                        .frames
                        .iter_mut()
                        .find(|(_, m)| m.uuid() == Some(e.uuid) && m.is_type("message"))
                    {
                        apply_edit(m, &e);
                    }
                    self.user_publish(name, &event, now, fx);
                }
            }
        }
    }

    /// `DELETE /message`: drop the stored message, then broadcast `message:delete`.
    pub fn deletes(&mut self, deletes: Vec<DeleteCmd>, now: Now, fx: &mut dyn Effects) {
        for d in deletes {
            let event = delete_msg(&d);
            if let Some(name) = target_channel(&d.channel) {
                let Some(ci) = self.channels.get_index_of(name) else {
                    continue;
                };
                // History and frames are searched independently; first match only.
                if let Some((_, ch)) = self.channels.get_index_mut(ci) {
                    let hit = ch.history.iter().position(|&k| {
                        ch.store
                            .get(k)
                            .is_some_and(|s| s.msg.uuid() == Some(d.uuid))
                    });
                    if let Some(key) = hit.and_then(|i| ch.history.remove(i)) {
                        ch.unref(key);
                    }
                    let hit = ch.frames.iter().position(|(_, k)| {
                        ch.store.get(*k).is_some_and(|s| {
                            s.msg.uuid() == Some(d.uuid) && s.msg.is_type("message")
                        })
                    });
                    if let Some((_, key)) = hit.and_then(|i| ch.frames.remove(i)) {
                        ch.unref(key);
                    }
                }
                self.channel_publish(ci, event, now, fx);
            } else {
                for name in &d.pm_users {
                    let Some(user) = self.users.get_mut(name.as_str()) else {
                        continue;
                    };
                    let hit = user
                        .frames
                        .iter()
                        .position(|(_, m)| m.uuid() == Some(d.uuid) && m.is_type("message"));
                    if let Some(i) = hit {
                        user.frames.remove(i);
                    }
                    self.user_publish(name, &event, now, fx);
                }
            }
        }
    }

    /// `/disconnect`: `true` and mark for GC if the connection exists, else `false`.
    pub fn disconnect(&mut self, conn_id: Uuid, now: Now) -> Reply {
        self.t(now);
        let found = match self.by_id.get(&conn_id) {
            Some(&slot) => match self.conns.get_mut(slot) {
                Some(conn) => {
                    mark_for_gc(slot, conn, &mut self.timers);
                    true
                }
                None => false,
            },
            None => false,
        };
        json_reply(200, &Value::Bool(found))
    }

    /// `/admin/admin.json`.
    pub fn admin_json(&self, now: Now) -> Reply {
        // Users with connections, in creation order; here the state shown is the public one.
        let active: Vec<(&Arc<str>, &User)> = self
            .users
            .iter()
            .filter(|(_, u)| !u.conns.is_empty())
            .collect();
        let total_connections: usize = active.iter().map(|(_, u)| u.conns.len()).sum();
        let info = self.channels_info(None, true, true, &[], false);
        let users: Vec<Value> = active
            .iter()
            .map(|(name, u)| {
                let conns: Vec<String> = u
                    .conns
                    .iter()
                    .filter_map(|&s| self.conns.get(s).map(|c| c.id.hyphenated().to_string()))
                    .collect();
                json!({
                    "state": u.public_state(),
                    "user": &***name,
                    "uuid": u.uuid.hyphenated().to_string(),
                    "connections": conns,
                })
            })
            .collect();
        let uptime = uptime_string((now.wall - self.started).num_seconds());
        let body = json!({
            "remembered_user_count": self.users.len(),
            "unique_user_count": active.len(),
            "total_connections": total_connections,
            "total_channels": self.channels.len(),
            "total_messages": self.stats.total_messages,
            "total_unique_messages": self.stats.total_unique_messages,
            "channels": info.get("channels").cloned().unwrap_or(Value::Null),
            "users": users,
            "uptime": uptime,
            "version": VERSION,
        });
        json_reply(200, &body)
    }

    /// `GET /listen`: attach a fresh queue (answering a poll it supersedes with what that poll
    /// had), push catch-up, and park until the first item (5 s) and then a 0.25 s gap.
    pub fn listen(
        &mut self,
        req: Option<ReqRef>,
        conn_id: Uuid,
        callback: Option<String>,
        now: Now,
        fx: &mut dyn Effects,
    ) {
        let t = self.t(now);
        let Some(slot) = self.by_id.get(&conn_id).copied() else {
            if let Some(r) = req {
                fx.reply(r, unauthorized());
            }
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            if let Some(r) = req {
                fx.reply(r, unauthorized());
            }
            return;
        };
        conn.poll_seq = conn.poll_seq.wrapping_add(1);
        let deadline = t.plus(POLL_FIRST_WAIT);
        let poll = Poll {
            req,
            // Python tests `if cb:`, so an empty callback means plain JSON.
            callback: callback.filter(|c| !c.is_empty()),
            items: Vec::new(),
            seq: conn.poll_seq,
            first: true,
            deadline,
            armed: deadline,
        };
        let old = std::mem::replace(&mut conn.lp, Lp::Polling(Box::new(poll)));
        self.timers.at(
            deadline,
            Timer::Poll {
                slot,
                gen: conn.gen,
                seq: conn.poll_seq,
            },
        );
        // The superseded poll is answered but not counted as activity: catch-up below must
        // use the `last_active` the connection had when this `/listen` arrived.
        if let Lp::Polling(p) = old {
            if let Some(r) = p.req {
                fx.reply(r, poll_reply(&p));
            }
        }
        self.deliver_catchup(slot, now, fx);
    }

    /// The HTTP client of a parked poll left. The poll keeps running to its end (it still
    /// consumes items and marks the connection active, as the Python greenlet does) but
    /// answers nobody. `req`, when given, must be the poll's own request.
    pub fn listen_aborted(&mut self, req: Option<ReqRef>, conn_id: Uuid) {
        let Some(conn) = self
            .by_id
            .get(&conn_id)
            .and_then(|&s| self.conns.get_mut(s))
        else {
            return;
        };
        if let Lp::Polling(p) = &mut conn.lp {
            if req.is_none() || p.req == req {
                p.req = None;
            }
        }
    }

    /// A websocket upgraded on `/ws?conn_id=`: unknown id → close 1000; otherwise attach
    /// (replacing any previous socket, which is simply orphaned) and send catch-up.
    pub fn ws_open(&mut self, conn_id: Uuid, sock: SockRef, now: Now, fx: &mut dyn Effects) {
        self.t(now);
        let Some(slot) = self.by_id.get(&conn_id).copied() else {
            fx.close(sock, CloseCode::Normal);
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            fx.close(sock, CloseCode::Normal);
            return;
        };
        conn.sock = Sock::Open(sock);
        self.deliver_catchup(slot, now, fx);
    }

    /// The attached socket closed: the connection goes to the next GC pass. A socket that is
    /// not (or no longer) the attached one changes nothing.
    pub fn ws_closed(&mut self, conn_id: Uuid, sock: SockRef, now: Now) {
        self.t(now);
        let Some(slot) = self.by_id.get(&conn_id).copied() else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(slot) {
            if conn.sock == Sock::Open(sock) {
                conn.sock = Sock::Closed;
                mark_for_gc(slot, conn, &mut self.timers);
            }
        }
    }

    /// A client frame arrived (`received_message`): connection and user are active.
    pub fn ws_activity(&mut self, conn_id: Uuid, now: Now) {
        let t = self.t(now);
        let Some(slot) = self.by_id.get(&conn_id).copied() else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.last_active = t;
            super::deliver::touch_user(&mut self.users, conn, t);
        }
    }

    /// A time on the model's line for `now` (also starts the GC grids on first use).
    pub(crate) fn t(&mut self, now: Now) -> T {
        let t = self.clock.at(now.mono);
        if self.timers.gc_next.is_none() {
            self.timers.gc_next = Some(t.plus(super::clock::GC_EVERY));
            self.timers.user_gc_next = Some(t.plus(super::clock::USER_GC_EVERY));
        }
        t
    }
}

/// A finished (or superseded) poll's answer: 200, `text/html`, the collected items.
pub(crate) fn poll_reply(p: &Poll) -> Reply {
    Reply {
        status: 200,
        kind: ContentKind::Html,
        body: poll_body(&p.items, p.callback.as_deref()),
    }
}
