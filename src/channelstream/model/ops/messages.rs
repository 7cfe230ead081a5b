//! `POST`, `PATCH` and `DELETE /message`: building the stored `message`, `message:edit` and
//! `message:delete` dicts, finding the stored original an edit or delete applies to (channel
//! history and frames, or a user's PM frames), and handing the event to the fan-out.

use super::{Model, Now};
use crate::channelstream::api::types::{DeleteCmd, Delivery, EditCmd, MessageCmd};
use crate::channelstream::model::msg::{FieldValue, Msg};
use crate::channelstream::model::state::ChannelIdx;
use crate::channelstream::model::Effects;
use serde_json::Value;
use uuid::Uuid;

/// A message dict begun with the delivery keys, in `MessageBody` order: `pm_users`,
/// `exclude_users`, `channel`, `no_history`, `uuid`. Every stored message and event starts so.
fn addressed(capacity: usize, d: Delivery, uuid: Uuid) -> Msg {
    let mut msg = Msg::with_capacity(capacity);
    msg.push("pm_users", FieldValue::List(d.pm_users))
        .push("exclude_users", FieldValue::List(d.exclude_users))
        .push(
            "channel",
            d.channel.map_or(FieldValue::Null, FieldValue::Str),
        )
        .push("no_history", FieldValue::Bool(d.no_history))
        .push("uuid", FieldValue::Uuid(uuid));
    msg
}

/// The `message` dict `pass_message` stores and sends, with the key order of
/// `MessageBody` loading followed by `catchup` and `type`. It keeps the delivery keys: history
/// entries show them (quirk 6) and catch-up filters on them; sockets never see them.
fn message_msg(m: MessageCmd) -> Msg {
    let mut msg = addressed(11, m.delivery, m.uuid);
    msg.push("timestamp", FieldValue::Time(m.timestamp))
        .push("user", FieldValue::Str(m.user));
    // An absent `message` stays absent everywhere, including on the wire.
    if let Some(body) = m.message {
        msg.push("message", FieldValue::Json(Value::Object(body)));
    }
    // post_load adds `edited: null`; pass_message appends `catchup` and `type`.
    msg.push("edited", FieldValue::Null)
        .push("catchup", FieldValue::Bool(false))
        .push("type", FieldValue::Static("message"));
    msg
}

/// The optional keys a PATCH item carried, in order: `timestamp`, `user`, `message`.
fn edited_fields(e: &EditCmd) -> impl Iterator<Item = (&'static str, FieldValue)> {
    [
        e.timestamp
            .clone()
            .map(|t| ("timestamp", FieldValue::Time(t))),
        e.user.clone().map(|u| ("user", FieldValue::Str(u))),
        e.message
            .clone()
            .map(|body| ("message", FieldValue::Json(Value::Object(body)))),
    ]
    .into_iter()
    .flatten()
}

/// The `message:edit` event (a copy of the loaded PATCH item plus `type`). Only the optional
/// keys the PATCH carried appear, and there is no `catchup` key (quirk 12) until catch-up
/// appends one.
fn edit_msg(e: &EditCmd) -> Msg {
    let mut msg = addressed(10, e.delivery.clone(), e.uuid);
    for (key, value) in edited_fields(e) {
        msg.push(key, value);
    }
    msg.push("edited", FieldValue::Time(e.edited.clone()))
        .push("type", FieldValue::Static("message:edit"));
    msg
}

/// `msg.update({k: v for k, v in to_edit.items() if k in MSG_EDITABLE_KEYS})`: existing keys
/// change in place, a key the original lacked (`message`) lands at the end; `message` is
/// replaced whole, not merged.
fn apply_edit(target: &mut Msg, e: &EditCmd) {
    target.set("uuid", FieldValue::Uuid(e.uuid));
    for (key, value) in edited_fields(e) {
        target.set(key, value);
    }
    target.set("edited", FieldValue::Time(e.edited.clone()));
}

/// The `message:delete` event: the delivery keys and `type`.
fn delete_msg(d: &DeleteCmd) -> Msg {
    let mut msg = addressed(6, d.delivery.clone(), d.uuid);
    msg.push("type", FieldValue::Static("message:delete"));
    msg
}

/// Python truthiness of the optional channel name.
fn target_channel(c: &Option<String>) -> Option<&str> {
    c.as_deref().filter(|c| !c.is_empty())
}

impl Model {
    /// `POST /message` after the front answered: `pass_message` for each item, in order.
    pub fn messages(&mut self, msgs: Vec<MessageCmd>, now: Now, fx: &mut dyn Effects) {
        for m in msgs {
            self.stats.total_unique_messages += 1;
            let channel = target_channel(&m.delivery.channel).map(str::to_owned);
            let msg = message_msg(m);
            let sent = match channel {
                Some(name) => match self.channels.get_index_of(name.as_str()).map(ChannelIdx) {
                    Some(ch_idx) => self.channel_publish(ch_idx, msg, now, fx),
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
            if let Some(name) = target_channel(&e.delivery.channel) {
                let Some(ch_idx) = self.channels.get_index_of(name).map(ChannelIdx) else {
                    continue;
                };
                let mut in_history = None;
                if let Some((_, ch)) = self.channels.get_index_mut(ch_idx.0) {
                    // History first; a hit there is the same object as its frame.
                    let hist_key = ch.history.iter().copied().find(|&k| {
                        ch.store
                            .get(k)
                            .is_some_and(|s| s.msg.uuid() == Some(e.uuid))
                    });
                    let key = hist_key.or_else(|| {
                        ch.frames.iter().map(|(_, k)| *k).find(|&k| {
                            ch.store.get(k).is_some_and(|s| {
                                s.msg.uuid() == Some(e.uuid) && s.msg.is_type("message")
                            })
                        })
                    });
                    if let Some(stored) = key.and_then(|k| ch.store.get_mut(k)) {
                        apply_edit(&mut stored.msg, &e);
                    }
                    in_history = hist_key;
                }
                if let Some(k) = in_history {
                    self.log_edit(ch_idx, k);
                }
                self.channel_publish(ch_idx, event, now, fx);
            } else {
                for name in &e.delivery.pm_users {
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
            if let Some(name) = target_channel(&d.delivery.channel) {
                let Some(ch_idx) = self.channels.get_index_of(name).map(ChannelIdx) else {
                    continue;
                };
                // History and frames are searched independently; first match only.
                let mut from_history = false;
                if let Some((_, ch)) = self.channels.get_index_mut(ch_idx.0) {
                    let hit = ch.history.iter().position(|&k| {
                        ch.store
                            .get(k)
                            .is_some_and(|s| s.msg.uuid() == Some(d.uuid))
                    });
                    if let Some(key) = hit.and_then(|i| ch.history.remove(i)) {
                        ch.unref(key);
                        from_history = true;
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
                if from_history {
                    self.log_delete(ch_idx, d.uuid);
                }
                self.channel_publish(ch_idx, event, now, fx);
            } else {
                for name in &d.delivery.pm_users {
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
}
