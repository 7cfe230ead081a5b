//! Channel history across restarts (`--persist-history`, off by default): what the model
//! tells the store, and how a stored message comes back.
//!
//! With the log enabled, every change to a channel's history (a message appended by
//! `store_msg`, an edit or a delete that hit a history entry) is recorded as a [`HistOp`];
//! the dialect drains them after each command ([`Model::take_history_ops`]) and hands them
//! to the store thread without waiting. The model stays pure: it never sees the store.
//!
//! A message is stored as a JSON array of `[key, tag, value]` triples, in the dict's key
//! order, so typed values (naive or offset timestamps, uuids) and the key order come back
//! exactly and a restored history renders byte for byte as before.
//!
//! At start the stored history is handed to [`Model::restore_history`]: channels are made by
//! the backend (`/connect`, `/subscribe`, `/channel_config` with their configs), so a
//! restored message waits in `pending` until its channel exists with `store_history` on; it
//! is then installed (oldest first, cut to the channel's `history_size`). A channel that is
//! never configured again keeps its stored rows untouched.

use super::msg::{FieldValue, Msg};
use super::state::{Channel, ChannelIdx, Stored};
use super::Model;
use crate::channelstream::api::types::Timestamp;
use chrono::{NaiveDateTime, TimeZone};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One change to a channel's history, for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistOp {
    /// Appended; keep the newest `keep` (0: all).
    Append {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
        /// The encoded message.
        msg: String,
        /// `history_size`.
        keep: u64,
    },
    /// The first history entry with this uuid changed.
    Edit {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
        /// The encoded message.
        msg: String,
    },
    /// The first history entry with this uuid was removed.
    Delete {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
    },
}

/// The log and the restored messages still waiting for their channel.
#[derive(Debug, Default)]
pub(crate) struct HistLog {
    ops: Vec<HistOp>,
    pending: HashMap<String, Vec<Msg>>,
}

/// The keys a stored message can hold (a `Msg` key is `&'static str`).
const KEYS: [&str; 11] = [
    "pm_users",
    "exclude_users",
    "channel",
    "no_history",
    "uuid",
    "timestamp",
    "user",
    "message",
    "edited",
    "catchup",
    "type",
];

fn naive_iso(n: &NaiveDateTime) -> String {
    n.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

fn encode_value(v: &FieldValue) -> (&'static str, Value) {
    match v {
        FieldValue::Null => ("n", Value::Null),
        FieldValue::Bool(b) => ("b", Value::Bool(*b)),
        FieldValue::Str(s) => ("s", Value::String(s.clone())),
        FieldValue::Static(s) => ("s", Value::String((*s).to_owned())),
        FieldValue::Uuid(u) => ("u", Value::String(u.hyphenated().to_string())),
        FieldValue::Time(Timestamp::Naive(n)) => ("tn", Value::String(naive_iso(n))),
        FieldValue::Time(Timestamp::Aware(a)) => (
            "ta",
            json!([naive_iso(&a.naive_local()), a.offset().local_minus_utc()]),
        ),
        FieldValue::List(l) => ("l", json!(l)),
        FieldValue::Json(v) => ("j", v.clone()),
    }
}

fn decode_value(tag: &str, v: &Value) -> Option<FieldValue> {
    Some(match tag {
        "n" => FieldValue::Null,
        "b" => FieldValue::Bool(v.as_bool()?),
        "s" => match v.as_str()? {
            "message" => FieldValue::Static("message"),
            s => FieldValue::Str(s.to_owned()),
        },
        "u" => FieldValue::Uuid(uuid::Uuid::parse_str(v.as_str()?).ok()?),
        "tn" => FieldValue::Time(Timestamp::Naive(parse_naive(v.as_str()?)?)),
        "ta" => {
            let naive = parse_naive(v.get(0)?.as_str()?)?;
            let off = chrono::FixedOffset::east_opt(i32::try_from(v.get(1)?.as_i64()?).ok()?)?;
            FieldValue::Time(Timestamp::Aware(off.from_local_datetime(&naive).single()?))
        }
        "l" => FieldValue::List(
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
        "j" => FieldValue::Json(v.clone()),
        _ => return None,
    })
}

/// A message as the store keeps it.
pub(crate) fn encode(msg: &Msg) -> String {
    let items: Vec<Value> = msg
        .fields()
        .iter()
        .map(|(k, v)| {
            let (tag, val) = encode_value(v);
            json!([k, tag, val])
        })
        .collect();
    Value::Array(items).to_string()
}

/// A stored message back; `None` if it is not one (an unknown key or tag).
pub(crate) fn decode(text: &str) -> Option<Msg> {
    let v: Value = serde_json::from_str(text).ok()?;
    let items = v.as_array()?;
    let mut msg = Msg::with_capacity(items.len());
    for item in items {
        let key = item.get(0)?.as_str()?;
        let key = KEYS.iter().copied().find(|k| *k == key)?;
        msg.push(key, decode_value(item.get(1)?.as_str()?, item.get(2)?)?);
    }
    Some(msg)
}

fn keep_of(ch: &Channel) -> u64 {
    ch.config.history_size
}

impl Model {
    /// Record history changes from now on (`--persist-history`).
    pub fn enable_history_log(&mut self) {
        self.hist.get_or_insert_with(HistLog::default);
    }

    /// The history changes since the last call, oldest first.
    pub fn take_history_ops(&mut self) -> Vec<HistOp> {
        self.hist
            .as_mut()
            .map(|h| std::mem::take(&mut h.ops))
            .unwrap_or_default()
    }

    /// Hand the model one stored message of `channel` (start-up, oldest first). It joins the
    /// channel's history when the channel exists with `store_history` (now or when the
    /// backend creates it). Returns false (and drops it) if it does not decode.
    pub fn restore_history(&mut self, channel: &str, text: &str) -> bool {
        let Some(msg) = decode(text) else {
            return false;
        };
        self.enable_history_log();
        if let Some(h) = self.hist.as_mut() {
            h.pending.entry(channel.to_owned()).or_default().push(msg);
        }
        if let Some(i) = self.channels.get_index_of(channel) {
            self.adopt_history(ChannelIdx(i));
        }
        true
    }

    /// Install the restored messages waiting for this channel, if it stores history.
    pub(crate) fn adopt_history(&mut self, ch_idx: ChannelIdx) {
        let Some(h) = self.hist.as_mut() else {
            return;
        };
        let Some((name, ch)) = self.channels.get_index_mut(ch_idx.0) else {
            return;
        };
        if !ch.config.store_history {
            return;
        }
        let Some(msgs) = h.pending.remove(name.as_str()) else {
            return;
        };
        let size = usize::try_from(ch.config.history_size).unwrap_or(usize::MAX);
        for msg in msgs {
            let key = ch.store.insert(Stored { msg, refs: 1 });
            ch.history.push_back(key);
            while size > 0 && ch.history.len() > size {
                if let Some(old) = ch.history.pop_front() {
                    ch.unref(old);
                }
            }
        }
    }

    /// `store_msg` appended to this channel's history: log it.
    pub(crate) fn log_append(&mut self, ch_idx: ChannelIdx) {
        let Some(h) = self.hist.as_mut() else {
            return;
        };
        let Some((name, ch)) = self.channels.get_index(ch_idx.0) else {
            return;
        };
        let Some(stored) = ch.history.back().and_then(|k| ch.store.get(*k)) else {
            return;
        };
        h.ops.push(HistOp::Append {
            channel: name.clone(),
            uuid: stored.msg.uuid().map(|u| u.to_string()).unwrap_or_default(),
            msg: encode(&stored.msg),
            keep: keep_of(ch),
        });
    }

    /// An edit changed the history entry `key` of this channel: log it.
    pub(crate) fn log_edit(&mut self, ch_idx: ChannelIdx, key: usize) {
        let Some(h) = self.hist.as_mut() else {
            return;
        };
        let Some((name, ch)) = self.channels.get_index(ch_idx.0) else {
            return;
        };
        let Some(stored) = ch.store.get(key) else {
            return;
        };
        h.ops.push(HistOp::Edit {
            channel: name.clone(),
            uuid: stored.msg.uuid().map(|u| u.to_string()).unwrap_or_default(),
            msg: encode(&stored.msg),
        });
    }

    /// A delete removed the first history entry with `uuid` of this channel: log it.
    pub(crate) fn log_delete(&mut self, ch_idx: ChannelIdx, uuid: uuid::Uuid) {
        let Some(h) = self.hist.as_mut() else {
            return;
        };
        let Some((name, _)) = self.channels.get_index(ch_idx.0) else {
            return;
        };
        h.ops.push(HistOp::Delete {
            channel: name.clone(),
            uuid: uuid.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate};

    #[test]
    fn a_message_comes_back_exactly() {
        let naive = NaiveDate::from_ymd_opt(2024, 2, 3)
            .and_then(|d| d.and_hms_micro_opt(4, 5, 6, 70))
            .unwrap();
        let aware = FixedOffset::east_opt(5 * 3600 + 30 * 60)
            .and_then(|o| o.from_local_datetime(&naive).single())
            .unwrap();
        let mut m = Msg::with_capacity(8);
        m.push("pm_users", FieldValue::List(vec!["a".into()]))
            .push("channel", FieldValue::Str("room".into()))
            .push("uuid", FieldValue::Uuid(uuid::Uuid::new_v4()))
            .push("timestamp", FieldValue::Time(Timestamp::Aware(aware)))
            .push(
                "message",
                FieldValue::Json(json!({"z": 1, "a": [true, null]})),
            )
            .push("edited", FieldValue::Time(Timestamp::Naive(naive)))
            .push("catchup", FieldValue::Bool(false))
            .push("type", FieldValue::Static("message"));
        let back = decode(&encode(&m)).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.to_http_value().to_string(),
            m.to_http_value().to_string()
        );
        assert!(decode("[[\"nope\", \"n\", null]]").is_none());
        assert!(decode("not json").is_none());
    }
}
