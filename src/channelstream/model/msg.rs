//! Stored messages as Channelstream keeps them: small insertion-ordered dicts.
//!
//! Channelstream passes plain Python dicts around and mutates them (`dict.update` on edit,
//! `pop` of the delivery keys, `catchup = True` on catch-up), so the key order a client sees
//! depends on that history: an edit that adds `message` to a message sent without one appends
//! the key after `type`. `Msg` is that dict, with typed values where one stored value renders
//! two ways (timestamps: `isoformat()` over HTTP, `Z` on sockets).
//!
//! Rendering for sockets happens once per message: `render` builds the websocket frame and
//! keeps the pretty-printed item as a zero-copy slice of the frame for long-poll bodies.

use crate::channelstream::api::types::Timestamp;
use crate::proto::ws;
use crate::py::json as pyjson;
use bytes::Bytes;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Keys removed before a message leaves the server (`channel.add_message`, `process_catchup`).
const DELIVERY_KEYS: [&str; 3] = ["pm_users", "exclude_users", "no_history"];

/// One stored value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldValue {
    Null,
    Bool(bool),
    Str(String),
    Static(&'static str),
    Uuid(Uuid),
    Time(Timestamp),
    List(Vec<String>),
    Json(Value),
}

impl FieldValue {
    fn to_value(&self, socket: bool) -> Value {
        match self {
            FieldValue::Null => Value::Null,
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::Str(s) => Value::String(s.clone()),
            FieldValue::Static(s) => Value::String((*s).to_owned()),
            FieldValue::Uuid(u) => Value::String(u.hyphenated().to_string()),
            FieldValue::Time(t) if socket => Value::String(t.to_socket_string()),
            FieldValue::Time(t) => Value::String(t.to_http_string()),
            FieldValue::List(l) => Value::Array(l.iter().cloned().map(Value::String).collect()),
            FieldValue::Json(v) => v.clone(),
        }
    }
}

/// An insertion-ordered message dict.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Msg {
    fields: Vec<(&'static str, FieldValue)>,
}

impl Msg {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Msg {
            fields: Vec::with_capacity(n),
        }
    }

    /// Append a key known to be new (construction).
    pub(crate) fn push(&mut self, key: &'static str, v: FieldValue) -> &mut Self {
        self.fields.push((key, v));
        self
    }

    /// The keys and values in order.
    pub(crate) fn fields(&self) -> &[(&'static str, FieldValue)] {
        &self.fields
    }

    pub(crate) fn get(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Python `d[key] = v`: replace in place, or append a new key at the end.
    pub(crate) fn set(&mut self, key: &'static str, v: FieldValue) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((key, v)),
        }
    }

    /// Python `d.pop(key, None)`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.fields.retain(|(k, _)| *k != key);
    }

    /// The copy a user stores and receives (`User.add_message`): delivery keys popped.
    pub(crate) fn without_delivery_keys(&self) -> Msg {
        let mut m = self.clone();
        for k in DELIVERY_KEYS {
            m.remove(k);
        }
        m
    }

    pub(crate) fn uuid(&self) -> Option<Uuid> {
        match self.get("uuid") {
            Some(FieldValue::Uuid(u)) => Some(*u),
            _ => None,
        }
    }

    pub(crate) fn is_type(&self, ty: &str) -> bool {
        match self.get("type") {
            Some(FieldValue::Static(s)) => *s == ty,
            Some(FieldValue::Str(s)) => s == ty,
            _ => false,
        }
    }

    pub(crate) fn no_history(&self) -> bool {
        matches!(self.get("no_history"), Some(FieldValue::Bool(true)))
    }

    /// A list-of-names field (`pm_users`, `exclude_users`); empty when absent.
    pub(crate) fn names(&self, key: &str) -> &[String] {
        match self.get(key) {
            Some(FieldValue::List(l)) => l,
            _ => &[],
        }
    }

    /// The dict as stored, for HTTP bodies (`/info` history): every key, `isoformat()` times.
    pub(crate) fn to_http_value(&self) -> Value {
        let mut m = Map::with_capacity(self.fields.len());
        for (k, v) in &self.fields {
            m.insert((*k).to_owned(), v.to_value(false));
        }
        Value::Object(m)
    }

    /// The dict as a socket sees it: delivery keys dropped, `Z` times, and for catch-up
    /// `catchup` forced to true (in place if present, else appended, as `process_catchup`).
    pub(crate) fn to_socket_value(&self, catchup: bool) -> Value {
        let mut m = Map::with_capacity(self.fields.len() + 1);
        for (k, v) in &self.fields {
            if DELIVERY_KEYS.contains(k) {
                continue;
            }
            let v = if catchup && *k == "catchup" {
                Value::Bool(true)
            } else {
                v.to_value(true)
            };
            m.insert((*k).to_owned(), v);
        }
        if catchup && !m.contains_key("catchup") {
            m.insert("catchup".to_owned(), Value::Bool(true));
        }
        Value::Object(m)
    }
}

/// One message rendered for delivery: the websocket frame, and the same JSON text as a
/// long-poll list item (a slice of the frame, no copy).
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    pub(crate) frame: Bytes,
    pub(crate) item: Bytes,
}

/// The server heartbeat: a text frame holding `[]`.
pub(crate) const HEARTBEAT_FRAME: &[u8] = &[0x81, 0x02, b'[', b']'];

const OPEN: &[u8] = b"[\n    ";
const CLOSE: &[u8] = b"\n]";

/// Render `msg` once as `json.dumps([msg], indent=4)` and frame it. `buf` is scratch space.
pub(crate) fn render(msg: &Msg, catchup: bool, buf: &mut Vec<u8>) -> Rendered {
    buf.clear();
    buf.extend_from_slice(OPEN);
    pyjson::write_pretty(&msg.to_socket_value(catchup), 1, buf);
    buf.extend_from_slice(CLOSE);
    let frame = ws::encode_text(buf);
    // The payload is the tail of the frame; the item sits between `[\n    ` and `\n]`.
    let start = frame.len().saturating_sub(buf.len()) + OPEN.len();
    let end = frame.len().saturating_sub(CLOSE.len());
    let item = if start <= end {
        frame.slice(start..end)
    } else {
        Bytes::new()
    };
    Rendered { frame, item }
}

/// A long-poll body: `json.dumps(items)` where each item is already rendered at level 1.
pub(crate) fn poll_body(items: &[Bytes], callback: Option<&str>) -> Bytes {
    let size: usize = items.iter().map(|i| i.len() + 6).sum::<usize>() + 4;
    let mut out = Vec::with_capacity(size + callback.map_or(0, |c| c.len() + 2));
    if let Some(cb) = callback {
        out.extend_from_slice(cb.as_bytes());
        out.push(b'(');
    }
    if items.is_empty() {
        out.extend_from_slice(b"[]");
    } else {
        out.extend_from_slice(OPEN);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n    ");
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(CLOSE);
    }
    if callback.is_some() {
        out.push(b')');
    }
    Bytes::from(out)
}
