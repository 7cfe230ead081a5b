//! Pushi 0.6.10's websocket protocol as pure functions: the client messages parsed from
//! `&[u8]`, and the server frames rendered byte-for-byte as Pushi's `json.dumps` writes them
//! (separators `", "` / `": "`, `\uXXXX` escapes, Python float repr; `py::json`).
//!
//! Where Pushi drops the socket (bad JSON, a missing field, `pusher:ping`), Herald answers a
//! `pusher:error` with a clear message instead and keeps the socket, except for an unknown
//! app key (close 4001).

use crate::proto::ws::encode_text;
use crate::py::json::to_string_compact;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Close code for an unknown app key (Pusher's 4001).
pub const CODE_NO_APP: u16 = 4001;
/// `pusher:error` code of a message Herald cannot read (Pusher's generic 4200 range is for
/// reconnects; Pushi has no codes, so Herald uses 4009-like client errors as pusher-js does).
pub const CODE_BAD_MESSAGE: u16 = 4200;
/// `pusher:error` code of a refused subscription or event (bad signature, not subscribed).
pub const CODE_REFUSED: u16 = 4009;
/// `pusher:error` code when the store or a shard is over capacity.
pub const CODE_BUSY: u16 = 4201;

/// Largest `count` of a `pusher:latest` (and of `GET /events`).
pub const MAX_LATEST: u32 = 1000;

/// A message from a Pushi client.
#[derive(Debug, PartialEq)]
pub enum ClientMsg {
    /// `pusher:subscribe`.
    Subscribe {
        /// The channel.
        channel: String,
        /// `app_key:hex` for private, presence, peer and personal channels.
        auth: Option<String>,
        /// Presence: an object with `user_id` (Pushi sends an object; a JSON string of one is
        /// accepted too).
        channel_data: Option<Map<String, Value>>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel.
        channel: String,
    },
    /// `pusher:latest`: stored events of a channel.
    Latest {
        /// The channel.
        channel: String,
        /// Newest events skipped.
        skip: u32,
        /// Events wanted.
        count: u32,
    },
    /// `pusher:ping` (Pushi drops the socket; Herald answers `pusher:pong`).
    Ping,
    /// Any other event name: a free-form event on a channel the socket is in.
    Event {
        /// The event name.
        event: String,
        /// The channel.
        channel: String,
        /// `data`, as a string (JSON-dumped if it was not one).
        data: String,
        /// Deliver to the sender too.
        echo: bool,
        /// Store it (default true).
        persist: bool,
    },
}

/// Why a message was refused (the `pusher:error` message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub &'static str);

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_string_compact(other),
    }
}

fn truthy_flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        None | Some(Value::Null) => default,
        Some(v) => crate::py::value::truthy(v),
    }
}

/// Parse one text message.
pub fn parse(text: &[u8]) -> Result<ClientMsg, Refused> {
    let v: Value = serde_json::from_slice(text).map_err(|_| Refused("Invalid JSON"))?;
    let Value::Object(mut m) = v else {
        return Err(Refused("A message must be a JSON object"));
    };
    let event = match m.get("event") {
        Some(Value::String(e)) => e.clone(),
        _ => return Err(Refused("Missing event name")),
    };
    // `data` of protocol events is an object (pushi.js); a JSON string of one is accepted.
    let data_obj = |m: &mut Map<String, Value>| -> Option<Map<String, Value>> {
        match m.remove("data") {
            Some(Value::Object(o)) => Some(o),
            Some(Value::String(s)) => match serde_json::from_str(&s) {
                Ok(Value::Object(o)) => Some(o),
                _ => None,
            },
            _ => None,
        }
    };
    let channel_of = |d: &Map<String, Value>| match d.get("channel") {
        Some(Value::String(c)) if !c.is_empty() => Ok(c.clone()),
        _ => Err(Refused("Missing channel")),
    };
    match event.as_str() {
        "pusher:subscribe" => {
            let d = data_obj(&mut m).ok_or(Refused("Missing data"))?;
            let channel = channel_of(&d)?;
            let auth = match d.get("auth") {
                Some(Value::String(a)) => Some(a.clone()),
                _ => None,
            };
            let channel_data = match d.get("channel_data") {
                Some(Value::Object(o)) => Some(o.clone()),
                Some(Value::String(s)) => match serde_json::from_str(s) {
                    Ok(Value::Object(o)) => Some(o),
                    _ => return Err(Refused("channel_data must be an object")),
                },
                None | Some(Value::Null) => None,
                Some(_) => return Err(Refused("channel_data must be an object")),
            };
            Ok(ClientMsg::Subscribe {
                channel,
                auth,
                channel_data,
            })
        }
        "pusher:unsubscribe" => {
            let d = data_obj(&mut m).ok_or(Refused("Missing data"))?;
            Ok(ClientMsg::Unsubscribe {
                channel: channel_of(&d)?,
            })
        }
        "pusher:latest" => {
            let d = data_obj(&mut m).ok_or(Refused("Missing data"))?;
            let num = |k: &str, default: u32| match d.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .ok_or(Refused("skip and count must be non-negative integers")),
            };
            Ok(ClientMsg::Latest {
                channel: channel_of(&d)?,
                skip: num("skip", 0)?,
                count: num("count", 10)?.min(MAX_LATEST),
            })
        }
        "pusher:ping" => Ok(ClientMsg::Ping),
        _ => {
            let channel = match m.get("channel") {
                Some(Value::String(c)) if !c.is_empty() => c.clone(),
                _ => return Err(Refused("Missing channel")),
            };
            // Pushi's handle_event reads json_d["data"] (KeyError: the socket is dropped).
            let data = m.get("data").map(text_of).ok_or(Refused("Missing data"))?;
            Ok(ClientMsg::Event {
                echo: truthy_flag(m.get("echo"), false),
                persist: truthy_flag(m.get("persist"), true),
                event,
                channel,
                data,
            })
        }
    }
}

fn frame(v: &Value) -> Bytes {
    encode_text(to_string_compact(v).as_bytes())
}

/// `pusher:connection_established` with a UUID socket id, as Pushi sends it (no
/// `activity_timeout`).
pub fn connection_established(socket_id: &str) -> Bytes {
    let data = to_string_compact(&json!({ "socket_id": socket_id }));
    frame(&json!({"event": "pusher:connection_established", "data": data}))
}

/// `pusher:error` (Herald's answer where Pushi drops the socket).
pub fn error(code: u16, message: &str) -> Bytes {
    frame(&json!({"event": "pusher:error", "data": {"code": code, "message": message}}))
}

/// `pusher:pong`.
pub fn pong() -> Bytes {
    frame(&json!({"event": "pusher:pong", "data": {}}))
}

/// The `{name, members, alias, events}` payload of Pushi's subscription answers.
pub fn channel_info(name: &str, members: Value, alias: &[String], events: Value) -> Value {
    json!({"name": name, "members": members, "alias": alias, "events": events})
}

/// `pusher_internal:subscription_succeeded`, `unsubscription_succeeded` or `latest`
/// (`kind`): data is the JSON string of [`channel_info`].
pub fn channel_answer(kind: &str, channel: &str, info: &Value) -> Bytes {
    frame(&json!({
        "event": format!("pusher_internal:{kind}"),
        "data": to_string_compact(info),
        "channel": channel,
    }))
}

/// `pusher:member_added` / `pusher:member_removed` (`added`): `member` is the JSON string of
/// the member's `channel_data`.
pub fn member(added: bool, channel: &str, channel_data: &Value) -> Bytes {
    let event = if added {
        "pusher:member_added"
    } else {
        "pusher:member_removed"
    };
    frame(&json!({
        "event": event,
        "member": to_string_compact(channel_data),
        "channel": channel,
    }))
}

/// A delivered event's message: `{"channel", "event", "data"}` then, when persisted, `mid`
/// and `timestamp` (Pushi's `trigger_c`).
pub fn event_message(channel: &str, event: &str, data: &str, stored: Option<(&str, f64)>) -> Value {
    let mut m = Map::new();
    m.insert("channel".into(), channel.into());
    m.insert("event".into(), event.into());
    m.insert("data".into(), data.into());
    add_stored(&mut m, stored);
    Value::Object(m)
}

/// Append `mid` and `timestamp` to a message.
pub fn add_stored(m: &mut Map<String, Value>, stored: Option<(&str, f64)>) {
    if let Some((mid, ts)) = stored {
        m.insert("mid".into(), mid.into());
        m.insert("timestamp".into(), timestamp(ts));
    }
}

/// A Unix time as a JSON float (Python `time.time()` prints as a float).
pub fn timestamp(ts: f64) -> Value {
    serde_json::Number::from_f64(ts).map_or(Value::Null, Value::Number)
}

/// Encode a message as a text frame.
pub fn message_frame(m: &Value) -> (String, Bytes) {
    let text = to_string_compact(m);
    let f = encode_text(text.as_bytes());
    (text, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(f: &Bytes) -> &str {
        // Server frames here are short or 16-bit-length text frames.
        let off = if f[1] == 126 { 4 } else { 2 };
        std::str::from_utf8(&f[off..]).unwrap()
    }

    #[test]
    fn frames_are_pushi_bytes() {
        let f = connection_established("24b441fc-5915-45bf-b4c1-850d89bc98b9");
        assert_eq!(
            payload(&f),
            r#"{"event": "pusher:connection_established", "data": "{\"socket_id\": \"24b441fc-5915-45bf-b4c1-850d89bc98b9\"}"}"#
        );
        let info = channel_info("global", json!({}), &[], json!([]));
        assert_eq!(
            payload(&channel_answer("subscription_succeeded", "global", &info)),
            r#"{"event": "pusher_internal:subscription_succeeded", "data": "{\"name\": \"global\", \"members\": {}, \"alias\": [], \"events\": []}", "channel": "global"}"#
        );
        let cd = json!({"user_id": "u2", "name": "u2", "peer": true});
        assert_eq!(
            payload(&member(true, "presence-room", &cd)),
            r#"{"event": "pusher:member_added", "member": "{\"user_id\": \"u2\", \"name\": \"u2\", \"peer\": true}", "channel": "presence-room"}"#
        );
        let m = event_message("peer-room:u1&u2", "whisper", "peer msg", None);
        assert_eq!(
            message_frame(&m).0,
            r#"{"channel": "peer-room:u1&u2", "event": "whisper", "data": "peer msg"}"#
        );
        let m = event_message(
            "global",
            "chat",
            "{\"text\": \"hi\"}",
            Some(("b79d", 1795357270.6438222)),
        );
        assert_eq!(
            message_frame(&m).0,
            r#"{"channel": "global", "event": "chat", "data": "{\"text\": \"hi\"}", "mid": "b79d", "timestamp": 1795357270.6438222}"#
        );
    }

    #[test]
    fn client_messages() {
        let m = parse(br#"{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:s","channel_data":{"user_id":"u1","peer":true}},"echo":false,"persist":true}"#).unwrap();
        let ClientMsg::Subscribe {
            channel,
            auth,
            channel_data,
        } = m
        else {
            panic!()
        };
        assert_eq!(
            (channel.as_str(), auth.as_deref()),
            ("presence-x", Some("k:s"))
        );
        assert_eq!(channel_data.unwrap()["user_id"], "u1");
        assert_eq!(
            parse(br#"{"event":"chat","data":{"text":"hi"},"channel":"global"}"#).unwrap(),
            ClientMsg::Event {
                event: "chat".into(),
                channel: "global".into(),
                data: "{\"text\": \"hi\"}".into(),
                echo: false,
                persist: true
            }
        );
        assert_eq!(
            parse(br#"{"event":"pusher:latest","data":{"channel":"c","skip":2,"count":5}}"#)
                .unwrap(),
            ClientMsg::Latest {
                channel: "c".into(),
                skip: 2,
                count: 5
            }
        );
        assert_eq!(
            parse(br#"{"event":"pusher:ping","data":{}}"#).unwrap(),
            ClientMsg::Ping
        );
        assert_eq!(parse(b"{nope").unwrap_err(), Refused("Invalid JSON"));
        assert_eq!(
            parse(br#"{"event":"x","data":1}"#).unwrap_err(),
            Refused("Missing channel")
        );
        assert_eq!(
            parse(br#"[1]"#).unwrap_err().0,
            "A message must be a JSON object"
        );
        assert_eq!(
            parse(br#"{"event":"pusher:subscribe"}"#).unwrap_err(),
            Refused("Missing data")
        );
    }
}
