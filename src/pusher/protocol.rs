//! The Pusher protocol 7 wire format: the events a client sends (parsed from one text frame)
//! and the frames the server sends (rendered and framed once into a `Bytes`).
//!
//! Why pure and separate: every client byte reaches the dialect through [`parse`], which must
//! turn any input into a value or an error, never a panic; and every server frame is built
//! here, so the double encoding of the protocol (server `data` is a JSON *string* for
//! `pusher:` / `pusher_internal:` events and channel events) is decided in one place.

use crate::proto::ws::encode_text;
use bytes::Bytes;
use serde_json::{json, Value};

/// `pusher:error` code for a frame that is not a Pusher event (bad JSON, no `event`): a
/// generic 4xxx error; the connection stays open.
pub const CODE_BAD_MESSAGE: u16 = 4200;
/// Close code at server shutdown: reconnect immediately (Pusher's 4200 range).
pub const CODE_RECONNECT: u16 = 4200;
/// Close code: the app key is unknown.
pub const CODE_NO_APP: u16 = 4001;
/// Close code: the protocol version is not supported.
pub const CODE_BAD_PROTOCOL: u16 = 4007;
/// `pusher:error` code: the shard that owns a channel is over capacity (inbox full).
pub const CODE_OVER_CAPACITY: u16 = 4100;
/// `pusher:error` code: client events refused.
pub const CODE_CLIENT_EVENT: u16 = 4301;
/// Close code: more client events per second than allowed.
pub const CODE_RATE_LIMIT: u16 = 4301;
/// `pusher:error` code: too many channels on this connection.
pub const CODE_TOO_MANY_CHANNELS: u16 = 4302;
/// `pusher:error` and close code: sign-in refused, or the app terminated the user's
/// connections ("connection is unauthorized").
pub const CODE_UNAUTHORIZED: u16 = 4009;
/// Close code: a `pusher:ping` from the server got no answer in time.
pub const CODE_PONG_TIMEOUT: u16 = 4201;
/// `pusher:error` code: a watchlist of more than 100 ids (the first 100 are kept).
pub const CODE_WATCHLIST_LIMIT: u16 = 4302;

/// One event from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// `pusher:ping`.
    Ping,
    /// `pusher:subscribe`.
    Subscribe {
        /// The channel name.
        channel: String,
        /// The auth string (`""` for public channels from pusher-js).
        auth: Option<String>,
        /// Presence channel data (the exact string signed).
        channel_data: Option<String>,
    },
    /// `pusher:signin` (missing fields are empty strings, which fail the signature check).
    Signin {
        /// `<key>:<hex HMAC-SHA256 of "<socket_id>::user::<user_data>">`.
        auth: String,
        /// The user object as a JSON string (the exact string signed).
        user_data: String,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel name.
        channel: String,
    },
    /// `client-…` on a channel.
    ClientEvent {
        /// The event name.
        event: String,
        /// The channel.
        channel: String,
        /// The payload as relayed: a string as sent, anything else as its JSON text.
        data: String,
    },
    /// Any other event (ignored).
    Other(String),
}

/// Why a client frame was not a Pusher event.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not an object.
    Json,
    /// No string `event`.
    NoEvent,
    /// `pusher:subscribe` / `pusher:unsubscribe` without a string `data.channel`, or a client
    /// event without a string `channel`.
    NoChannel,
}

impl ParseError {
    /// The `pusher:error` message.
    pub fn message(&self) -> &'static str {
        match self {
            ParseError::Json => "Invalid message: not a JSON object",
            ParseError::NoEvent => "Invalid message: no event",
            ParseError::NoChannel => "Invalid message: data.channel is required",
        }
    }
}

/// Parse one text frame from a client.
pub fn parse(text: &[u8]) -> Result<ClientMsg, ParseError> {
    let v: Value = serde_json::from_slice(text).map_err(|_| ParseError::Json)?;
    let obj = v.as_object().ok_or(ParseError::Json)?;
    let event = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or(ParseError::NoEvent)?;
    // Clients send `data` as an object; a string holding JSON is accepted too.
    let data = match obj.get("data") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(d) => d.clone(),
        None => Value::Null,
    };
    let field = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(match event {
        "pusher:ping" => ClientMsg::Ping,
        "pusher:subscribe" => ClientMsg::Subscribe {
            channel: field("channel").ok_or(ParseError::NoChannel)?,
            auth: field("auth"),
            channel_data: field("channel_data"),
        },
        "pusher:signin" => ClientMsg::Signin {
            auth: field("auth").unwrap_or_default(),
            user_data: field("user_data").unwrap_or_default(),
        },
        "pusher:unsubscribe" => ClientMsg::Unsubscribe {
            channel: field("channel").ok_or(ParseError::NoChannel)?,
        },
        e if e.starts_with("client-") => ClientMsg::ClientEvent {
            event: e.to_owned(),
            channel: obj
                .get("channel")
                .and_then(Value::as_str)
                .ok_or(ParseError::NoChannel)?
                .to_owned(),
            data: match obj.get("data") {
                Some(Value::String(s)) => s.clone(),
                Some(d) => d.to_string(),
                None => String::new(),
            },
        },
        e => ClientMsg::Other(e.to_owned()),
    })
}

fn frame(v: &Value) -> Bytes {
    encode_text(v.to_string().as_bytes())
}

/// `pusher:connection_established` (data: a JSON string); `activity_timeout` in seconds.
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> Bytes {
    let data = json!({"socket_id": socket_id, "activity_timeout": activity_timeout});
    frame(&json!({"event": "pusher:connection_established", "data": data.to_string()}))
}

/// `pusher:pong`.
pub fn pong() -> Bytes {
    Bytes::from_static(b"\x81\x21{\"event\":\"pusher:pong\",\"data\":{}}")
}

/// `pusher:error` (data: an object, as the protocol shows it).
pub fn error(code: u16, message: &str) -> Bytes {
    frame(&json!({"event": "pusher:error", "data": {"code": code, "message": message}}))
}

/// `pusher_internal:subscription_succeeded` for a public or private channel.
pub fn subscription_succeeded(channel: &str) -> Bytes {
    frame(&json!({
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": "{}",
    }))
}

/// `pusher:subscription_error` (soketi's shape; pusher-js re-emits it on the channel).
pub fn subscription_error(channel: &str, kind: &str, error: &str, status: u16) -> Bytes {
    frame(&json!({
        "event": "pusher:subscription_error",
        "channel": channel,
        "data": {"type": kind, "error": error, "status": status},
    }))
}

/// `pusher_internal:subscription_succeeded` for a presence channel: `presence` is
/// `{"ids":[…],"hash":{id: info},"count":n}`.
pub fn presence_succeeded(channel: &str, presence: &Value) -> Bytes {
    frame(&json!({
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": json!({ "presence": presence }).to_string(),
    }))
}

/// `pusher_internal:member_added` (to the channel's other members).
pub fn member_added(channel: &str, user_id: &str, user_info: &Value) -> Bytes {
    frame(&json!({
        "event": "pusher_internal:member_added",
        "channel": channel,
        "data": json!({"user_id": user_id, "user_info": user_info}).to_string(),
    }))
}

/// `pusher_internal:member_removed` (the user's last connection left).
pub fn member_removed(channel: &str, user_id: &str) -> Bytes {
    frame(&json!({
        "event": "pusher_internal:member_removed",
        "channel": channel,
        "data": json!({ "user_id": user_id }).to_string(),
    }))
}

/// `pusher:cache_miss`: a cache channel has no event to replay.
pub fn cache_miss(channel: &str) -> Bytes {
    frame(&json!({"event": "pusher:cache_miss", "channel": channel}))
}

/// A client event as relayed to the channel's other members; `user_id` on presence channels.
pub fn client_event(event: &str, channel: &str, data: &str, user_id: Option<&str>) -> Bytes {
    let mut v = json!({"event": event, "channel": channel, "data": data});
    if let (Some(u), Some(o)) = (user_id, v.as_object_mut()) {
        o.insert("user_id".into(), Value::from(u));
    }
    frame(&v)
}

/// A channel event: `data` is the string the backend posted.
pub fn channel_event(event: &str, channel: &str, data: &str) -> Bytes {
    frame(&json!({"event": event, "channel": channel, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(b: &Bytes) -> &str {
        std::str::from_utf8(&b[2..]).unwrap()
    }

    #[test]
    fn parses_client_events() {
        assert_eq!(
            parse(br#"{"event":"pusher:ping","data":{}}"#),
            Ok(ClientMsg::Ping)
        );
        assert_eq!(
            parse(br#"{"event": "pusher:ping", "data": ""}"#),
            Ok(ClientMsg::Ping)
        );
        assert_eq!(
            parse(br#"{"event":"pusher:subscribe","data":{"auth":"","channel":"c"}}"#),
            Ok(ClientMsg::Subscribe {
                channel: "c".into(),
                auth: Some(String::new()),
                channel_data: None
            })
        );
        assert_eq!(
            parse(br#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"c\"}"}"#),
            Ok(ClientMsg::Unsubscribe {
                channel: "c".into()
            })
        );
        assert_eq!(
            parse(br#"{"event":"client-a","channel":"private-c","data":{"x":1}}"#),
            Ok(ClientMsg::ClientEvent {
                event: "client-a".into(),
                channel: "private-c".into(),
                data: r#"{"x":1}"#.into()
            })
        );
        assert_eq!(
            parse(br#"{"event":"client-a","data":"s"}"#),
            Err(ParseError::NoChannel)
        );
        assert_eq!(
            parse(br#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{}"}}"#),
            Ok(ClientMsg::Signin {
                auth: "k:s".into(),
                user_data: "{}".into()
            })
        );
        assert_eq!(
            parse(br#"{"event":"pusher:signin","data":{"auth":5}}"#),
            Ok(ClientMsg::Signin {
                auth: String::new(),
                user_data: String::new()
            })
        );
        assert_eq!(parse(b"{nope"), Err(ParseError::Json));
        assert_eq!(parse(b"[1]"), Err(ParseError::Json));
        assert_eq!(parse(br#"{"data":1}"#), Err(ParseError::NoEvent));
        assert_eq!(
            parse(br#"{"event":"pusher:subscribe","data":{"channel":5}}"#),
            Err(ParseError::NoChannel)
        );
    }

    #[test]
    fn frames() {
        let f = connection_established("1.2", 120);
        let v: Value = serde_json::from_str(payload(&f)).unwrap();
        assert_eq!(v["event"], "pusher:connection_established");
        let d: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(d, json!({"socket_id": "1.2", "activity_timeout": 120}));
        assert_eq!(pong()[1] as usize, pong().len() - 2);
        assert_eq!(payload(&pong()), r#"{"event":"pusher:pong","data":{}}"#);
        assert_eq!(
            payload(&channel_event("e", "c", "{\"a\":1}")),
            r#"{"event":"e","channel":"c","data":"{\"a\":1}"}"#
        );
        assert_eq!(
            payload(&client_event("client-e", "presence-c", "x", Some("7"))),
            r#"{"event":"client-e","channel":"presence-c","data":"x","user_id":"7"}"#
        );
        assert_eq!(
            payload(&cache_miss("cache-c")),
            r#"{"event":"pusher:cache_miss","channel":"cache-c"}"#
        );
    }
}
