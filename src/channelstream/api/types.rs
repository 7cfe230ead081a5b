//! Typed Channelstream commands, as they come out of validation (`schema`) and go into the
//! model. Everything here is `Send` plain data so a command can cross shards in an inbox.
//!
//! Field order in each struct follows the marshmallow schema of Channelstream 0.7.1, which is
//! also the key order of the JSON the real server echoes back.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A user state map: insertion-ordered, values are only null, bool, number or string.
pub type StateMap = Map<String, Value>;

/// A message timestamp. Server-made times are naive UTC (Python `datetime.utcnow()`);
/// client-supplied ones keep the offset they were given.
#[derive(Clone, Debug, PartialEq)]
pub enum Timestamp {
    /// Server-made: naive UTC, rendered without an offset.
    Naive(NaiveDateTime),
    /// Client-supplied with an explicit UTC offset, which is kept on output.
    Aware(DateTime<FixedOffset>),
}

impl Timestamp {
    /// The current time as Channelstream makes it: naive UTC with microseconds.
    pub fn now() -> Self {
        Self::from_utc(Utc::now())
    }

    /// A naive UTC timestamp from a wall-clock instant (truncated to microseconds).
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        let naive = t.naive_utc();
        let micros = naive.nanosecond() / 1_000 * 1_000;
        Timestamp::Naive(naive.with_nanosecond(micros).unwrap_or(naive))
    }

    /// Python `datetime.isoformat()`: used in HTTP responses (`+00:00` stays `+00:00`).
    pub fn to_http_string(&self) -> String {
        match self {
            Timestamp::Naive(n) => iso_naive(n),
            Timestamp::Aware(a) => {
                let mut s = iso_naive(&a.naive_local());
                s.push_str(&offset_string(a.offset().local_minus_utc()));
                s
            }
        }
    }

    /// Channelstream's socket encoder (`patched_json`): like `isoformat()` but a trailing
    /// `+00:00` becomes `Z`. Used in websocket frames and long-poll bodies.
    pub fn to_socket_string(&self) -> String {
        let mut s = self.to_http_string();
        if s.ends_with("+00:00") {
            s.truncate(s.len() - 6);
            s.push('Z');
        }
        s
    }
}

fn iso_naive(n: &NaiveDateTime) -> String {
    let micros = n.nanosecond() / 1_000;
    if micros == 0 {
        n.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        format!("{}.{:06}", n.format("%Y-%m-%dT%H:%M:%S"), micros)
    }
}

/// Python's `utcoffset` rendering in `isoformat()`: `+HH:MM`, with `:SS` only when non-zero.
fn offset_string(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, (a % 3600) / 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// The six channel settings (`ChannelConfigSchema`), in output order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Emit `join`/`part` presence messages to the channel's members.
    pub notify_presence: bool,
    /// Keep posted messages in the channel history (bounded by `history_size`).
    pub store_history: bool,
    /// `0` means unlimited (Python `history[-0:]` keeps everything).
    pub history_size: u64,
    /// Attach the channel's user list to presence messages (when `notify_presence`).
    pub broadcast_presence_with_user_lists: bool,
    /// Emit `user_state_change` messages to the channel when a member's state changes.
    pub notify_state: bool,
    /// Keep the last 100 messages in the channel's frame buffer (searched by edits and deletes).
    pub store_frames: bool,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            notify_presence: false,
            store_history: false,
            history_size: 10,
            broadcast_presence_with_user_lists: false,
            notify_state: false,
            store_frames: true,
        }
    }
}

/// What `channels_info` / `/info` contains (`InfoResolution`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoResolution {
    /// Include each channel's stored history.
    pub include_history: bool,
    /// Include each channel's user list.
    pub include_users: bool,
    /// `None` = all channels (only meaningful for `/info`).
    pub channels: Option<Vec<String>>,
    /// Channel names to leave out of the result.
    pub exclude_channels: Vec<String>,
    /// Accepted and never used, as in Channelstream.
    pub include_connections: bool,
    /// Give only each user's public state keys instead of the full state.
    pub return_public_state: bool,
}

impl Default for InfoResolution {
    fn default() -> Self {
        InfoResolution {
            include_history: true,
            include_users: true,
            channels: None,
            exclude_channels: Vec::new(),
            include_connections: false,
            return_public_state: false,
        }
    }
}

/// `POST /connect`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectCmd {
    /// The user this connection belongs to; created on first connect.
    pub username: String,
    /// Client-chosen or a fresh uuid4 made by validation.
    pub conn_id: Uuid,
    /// Channels to subscribe the new connection to (created if missing).
    pub channels: Vec<String>,
    /// Keys of the user state that other users may see; always replaces the current list.
    pub state_public_keys: Vec<String>,
    /// State applied only when this call creates the user.
    pub fresh_user_state: StateMap,
    /// State merged into the user's state on every connect.
    pub user_state: StateMap,
    /// Used only for channels this call creates.
    pub channel_configs: Vec<(String, ChannelConfig)>,
    /// What to include in the `channels_info` of the reply.
    pub info: InfoResolution,
}

/// `POST /subscribe` and `POST /unsubscribe` (which ignores `channel_configs`).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeCmd {
    /// The connection to (un)subscribe.
    pub conn_id: Uuid,
    /// Channels to join or leave.
    pub channels: Vec<String>,
    /// What to include in the `channels_info` of the reply.
    pub info: InfoResolution,
    /// Settings for channels this call creates; ignored by unsubscribe.
    pub channel_configs: Vec<(String, ChannelConfig)>,
}

/// `POST /user_state`.
#[derive(Clone, Debug, PartialEq)]
pub struct UserStateCmd {
    /// The user whose state is changed.
    pub user: String,
    /// Keys and values merged into the user's state.
    pub user_state: StateMap,
    /// `None` keeps the current keys; `Some(vec![])` clears them.
    pub state_public_keys: Option<Vec<String>>,
}

/// The `PayloadDeliveryInfo` fields every `/message` item (post, edit, delete) carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    /// Users who get the item privately; empty means no private delivery.
    pub pm_users: Vec<String>,
    /// Users never delivered to, even when subscribed to the channel.
    pub exclude_users: Vec<String>,
    /// Target channel; `None` for a private-only item.
    pub channel: Option<String>,
    /// Do not store the message in the channel history.
    pub no_history: bool,
}

/// One item of `POST /message`.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageCmd {
    /// Who gets the message: the channel, private recipients, exclusions.
    pub delivery: Delivery,
    /// The message id; client-given or a fresh uuid4 made by validation.
    pub uuid: Uuid,
    /// When the message was sent; defaults to server time.
    pub timestamp: Timestamp,
    /// The sender's name, as shown to receivers.
    pub user: String,
    /// Absent key stays absent everywhere.
    pub message: Option<Map<String, Value>>,
}

/// One item of `PATCH /message`. Optional fields are output only when given.
#[derive(Clone, Debug, PartialEq)]
pub struct EditCmd {
    /// Who gets the `message:edit` event; `channel` also names where the original is
    /// (`None`: a private message). `no_history` is only echoed: the stored message is
    /// edited either way.
    pub delivery: Delivery,
    /// Id of the message to edit.
    pub uuid: Uuid,
    /// Replacement send time, when given.
    pub timestamp: Option<Timestamp>,
    /// Replacement sender name, when given.
    pub user: Option<String>,
    /// Replacement message body, when given.
    pub message: Option<Map<String, Value>>,
    /// Server time of the edit (naive UTC).
    pub edited: Timestamp,
}

/// One item of `DELETE /message`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeleteCmd {
    /// Who gets the `message:delete` event; `channel` also names where the original is
    /// (`None`: a private message). `no_history` is only echoed: the stored message is
    /// dropped either way.
    pub delivery: Delivery,
    /// Id of the message to delete.
    pub uuid: Uuid,
}

/// `POST /channel_config`: `None` leaves an existing channel unchanged.
pub type ChannelConfigCmd = Vec<(String, Option<ChannelConfig>)>;

/// Why a request body was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaError {
    /// 422 with this body, in marshmallow 2's shape (render it with `crate::py::json`).
    Invalid(Value),
    /// Channelstream 0.7.1 crashes on this input (HTTP 500); Herald answers 500 too.
    Crash,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn timestamps_render_like_python() {
        let n = NaiveDate::from_ymd_opt(2026, 11, 22)
            .and_then(|d| d.and_hms_micro_opt(13, 59, 11, 630_535))
            .map(Timestamp::Naive);
        assert_eq!(
            n.map(|t| t.to_http_string()).as_deref(),
            Some("2026-11-22T13:59:11.630535")
        );
        let whole = NaiveDate::from_ymd_opt(2010, 1, 1)
            .and_then(|d| d.and_hms_opt(1, 1, 0))
            .map(Timestamp::Naive);
        assert_eq!(
            whole.map(|t| t.to_http_string()).as_deref(),
            Some("2010-01-01T01:01:00")
        );
        let z = DateTime::parse_from_rfc3339("2020-01-02T03:04:05+00:00").map(Timestamp::Aware);
        let z = z.as_ref().ok();
        assert_eq!(
            z.map(|t| t.to_http_string()).as_deref(),
            Some("2020-01-02T03:04:05+00:00")
        );
        assert_eq!(
            z.map(|t| t.to_socket_string()).as_deref(),
            Some("2020-01-02T03:04:05Z")
        );
        let two = DateTime::parse_from_rfc3339("2020-01-02T03:04:05.5-02:30").map(Timestamp::Aware);
        assert_eq!(
            two.ok().map(|t| t.to_socket_string()).as_deref(),
            Some("2020-01-02T03:04:05.500000-02:30")
        );
    }
}
