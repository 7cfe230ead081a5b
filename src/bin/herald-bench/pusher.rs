//! The Pusher preset's wire: subscribers open `GET /app/<key>?protocol=7` and send
//! `pusher:subscribe`; publishers send signed `POST /apps/<id>/events` (Pusher's HTTP API
//! authentication: `body_md5`, the sorted `auth_*` query, HMAC-SHA256 over
//! `POST\n<path>\n<query>` with the app secret). The signature is computed here, in the bench,
//! not borrowed from the server it measures.
//!
//! Unlike the Channelstream template the request cannot be patched in place: `body_md5` and the
//! signature change with every body. Each publish formats the request into the connection's
//! retained buffer (capacity reused), one MD5 and one HMAC of a ~100-byte body: about a
//! microsecond, well below the HTTP round trip it precedes.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::wsframe::{self, Op};

/// The Pusher app a run targets: Herald's default app (soketi's defaults) unless
/// `--pusher-app-id` / `--pusher-key` / `--pusher-secret` name another (e.g. sockudo's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
}

impl Default for App {
    fn default() -> App {
        App {
            id: "app-id".into(),
            key: "app-key".into(),
            secret: "app-secret".into(),
        }
    }
}

/// The event name every publish carries.
const EVENT: &str = "b";

/// Scenarios whose name starts with this use the Pusher wire instead of Channelstream's.
pub const PREFIX: &str = "pusher-";

/// Where the `t` and `s` fields sit in a delivery: inside the `data` string, so quoted escaped.
pub const T_KEY: &[u8] = br#"\"t\""#;
pub const S_KEY: &[u8] = br#"\"s\""#;

/// The websocket upgrade for one subscriber (the key is the RFC's sample nonce, as in
/// [`crate::http::ws_request`]).
pub fn ws_request(host: &str, key: &str, deflate: bool) -> Vec<u8> {
    format!(
        "GET /app/{key}?protocol=7&client=herald-bench HTTP/1.1\r\nHost: {host}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        crate::http::offer(deflate)
    )
    .into_bytes()
}

/// A masked `pusher:subscribe` text frame for a public channel, appended to `out`.
pub fn subscribe_frame(channel: &str, mask: [u8; 4], out: &mut Vec<u8>) {
    let text = format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#);
    wsframe::encode_masked(Op::Text, text.as_bytes(), mask, out);
}

/// A masked `pusher:subscribe` to a presence channel as user `user_id`, appended to `out`:
/// `channel_data` `{"user_id":…,"user_info":{"t":t}}` (so a `member_added` carries the join's
/// intended time) signed `key:HMAC-SHA256(secret, "socket_id:channel:channel_data")`.
pub fn presence_subscribe_frame(
    app: &App,
    socket_id: &str,
    channel: &str,
    user_id: &str,
    t: u64,
    mask: [u8; 4],
    out: &mut Vec<u8>,
) {
    let channel_data = format!(r#"{{"user_id":"{user_id}","user_info":{{"t":{t}}}}}"#);
    let sig = hmac_hex(
        &app.secret,
        &format!("{socket_id}:{channel}:{channel_data}"),
    );
    let frame = serde_json::json!({
        "event": "pusher:subscribe",
        "data": {
            "channel": channel,
            "auth": format!("{}:{sig}", app.key),
            "channel_data": channel_data,
        }
    });
    wsframe::encode_masked(Op::Text, frame.to_string().as_bytes(), mask, out);
}

/// A masked `pusher:unsubscribe`, appended to `out`.
pub fn unsubscribe_frame(channel: &str, mask: [u8; 4], out: &mut Vec<u8>) {
    let text = format!(r#"{{"event":"pusher:unsubscribe","data":{{"channel":"{channel}"}}}}"#);
    wsframe::encode_masked(Op::Text, text.as_bytes(), mask, out);
}

/// The `socket_id` of a `pusher:connection_established` frame (its `data` is a JSON string,
/// so the key is usually quoted escaped: `{\"socket_id\":\"1.2\",…}`).
pub fn socket_id(payload: &[u8]) -> Option<&str> {
    let has = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
    if !has(b"pusher:connection_established") {
        return None;
    }
    let key = b"socket_id";
    let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = payload.get(at..)?;
    let start = rest
        .iter()
        .position(|b| !matches!(b, b'\\' | b'"' | b':' | b' '))?;
    let value = rest.get(start..)?;
    let end = value
        .iter()
        .position(|b| matches!(b, b'\\' | b'"'))
        .unwrap_or(value.len());
    std::str::from_utf8(value.get(..end)?)
        .ok()
        .filter(|v| !v.is_empty())
}

/// A presence member event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    Added,
    Removed,
}

pub fn member_event(payload: &[u8]) -> Option<Member> {
    let has = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
    if has(b"pusher_internal:member_added") {
        Some(Member::Added)
    } else if has(b"pusher_internal:member_removed") {
        Some(Member::Removed)
    } else {
        None
    }
}

/// The `t` of a `member_added`'s `user_info` (escaped inside the `data` string, or plain if a
/// server sent `data` as an object).
pub fn member_t(payload: &[u8]) -> Option<u64> {
    wsframe::find_u64_field(payload, T_KEY).or_else(|| wsframe::find_u64_field(payload, b"\"t\""))
}

/// A masked `pusher:pong` answering the server's `pusher:ping`, appended to `out`.
pub fn pong_frame(mask: [u8; 4], out: &mut Vec<u8>) {
    wsframe::encode_masked(Op::Text, br#"{"event":"pusher:pong","data":{}}"#, mask, out);
}

/// What a subscriber's frame before its subscription means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Subscribed,
    Refused,
    Other,
}

pub fn classify_setup(payload: &[u8]) -> Setup {
    let has = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
    if has(b"pusher_internal:subscription_succeeded") {
        Setup::Subscribed
    } else if has(b"pusher:subscription_error") || has(b"\"pusher:error\"") {
        Setup::Refused
    } else {
        Setup::Other
    }
}

pub fn is_ping(payload: &[u8]) -> bool {
    payload.windows(13).any(|w| w == b"\"pusher:ping\"")
}

/// `HMAC-SHA256(secret, msg)` as lowercase hex.
pub fn hmac_hex(secret: &str, msg: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The signed query string (without `?`) of an HTTP API request. The `auth_*` and `body_md5`
/// keys are already in byte order, which is the order the string to sign needs.
pub fn signed_query(
    method: &str,
    path: &str,
    key: &str,
    secret: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    let md5 = hex(&Md5::digest(body));
    let q = format!("auth_key={key}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={md5}");
    let sig = hmac_hex(secret, &format!("{method}\n{path}\n{q}"));
    format!("{q}&auth_signature={sig}")
}

/// Builds each publish request: `{"name":"b","channel":"<prefix><i>","data":"{\"t\":…,\"s\":…,
/// \"pad\":\"xxx…\"}"}` (the `data` string is about `size` bytes once decoded).
#[derive(Debug, Clone)]
pub struct Publisher {
    host: String,
    path: String,
    key: String,
    secret: String,
    chan_prefix: String,
    channels: u32,
    pad: String,
    body: String,
    query: String,
}

impl Publisher {
    pub fn new(host: &str, app: &App, chan_prefix: &str, channels: u32, size: usize) -> Publisher {
        Publisher {
            host: host.to_string(),
            path: format!("/apps/{}/events", app.id),
            key: app.key.clone(),
            secret: app.secret.clone(),
            chan_prefix: chan_prefix.to_string(),
            channels,
            // `{"t":<13>,"s":<6>,"pad":""}` is about 40 bytes before padding.
            pad: "x".repeat(size.saturating_sub(40)),
            body: String::new(),
            query: String::new(),
        }
    }

    /// An upper bound of one request's length (for the buffer's first capacity).
    pub fn request_len_hint(&self) -> usize {
        512 + self.pad.len() + self.chan_prefix.len()
    }

    /// Write the request for message `s` on channel `chan`, stamped `t`, signed at `unix_ts`.
    pub fn write_into(&mut self, out: &mut Vec<u8>, chan: u32, t: u64, s: u64, unix_ts: u64) {
        let name = crate::http::channel_name(&self.chan_prefix, chan, self.channels);
        self.body.clear();
        let _ = write!(
            self.body,
            r#"{{"name":"{EVENT}","channel":"{name}","data":"{{\"t\":{t},\"s\":{s},\"pad\":\"{}\"}}"}}"#,
            self.pad
        );
        self.query = signed_query(
            "POST",
            &self.path,
            &self.key,
            &self.secret,
            unix_ts,
            self.body.as_bytes(),
        );
        out.clear();
        let _ = write!(
            ByteWriter(out),
            "POST {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{}",
            self.path,
            self.query,
            self.host,
            self.body.len(),
            self.body
        );
    }
}

/// `fmt::Write` straight into a byte buffer.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Pusher's HTTP API authentication docs.
    #[test]
    fn docs_signature_vector() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let q = signed_query(
            "POST",
            "/apps/3/events",
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
            1353088179,
            body,
        );
        assert_eq!(
            q,
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn publish_request_is_signed_and_carries_t_and_s() {
        let mut p = Publisher::new("127.0.0.1:1", &App::default(), "hb-c", 10, 64);
        let mut out = Vec::new();
        p.write_into(&mut out, 7, 123_456, 9, 1_700_000_000);
        let text = String::from_utf8(out.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head
            .starts_with("POST /apps/app-id/events?auth_key=app-key&auth_timestamp=1700000000&"));
        assert!(head.ends_with(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["channel"], "hb-c7");
        let data: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            (data["t"].as_u64(), data["s"].as_u64()),
            (Some(123_456), Some(9))
        );
        let len = v["data"].as_str().unwrap().len();
        assert!((50..=80).contains(&len), "data ~64 bytes, got {len}");
        // The query verifies with the server's own checker.
        let query = head
            .split_whitespace()
            .nth(1)
            .and_then(|t| t.split_once('?'))
            .map(|(_, q)| q)
            .unwrap();
        let app = herald::pusher::apps::App::new("app-id", "app-key", "app-secret");
        assert_eq!(
            herald::pusher::sign::verify_api(
                &app,
                "POST",
                "/apps/app-id/events",
                query.as_bytes(),
                body.as_bytes(),
                1_700_000_000
            ),
            Ok(())
        );
        // The delivery the server builds from it is found by the subscriber's field scan.
        let frame = serde_json::json!({"event":"b","channel":"hb-c7","data":v["data"]}).to_string();
        assert_eq!(
            wsframe::find_u64_field(frame.as_bytes(), T_KEY),
            Some(123_456)
        );
        assert_eq!(wsframe::find_u64_field(frame.as_bytes(), S_KEY), Some(9));
    }

    #[test]
    fn setup_frames() {
        let ok = br#"{"event":"pusher_internal:subscription_succeeded","channel":"c","data":"{}"}"#;
        assert_eq!(classify_setup(ok), Setup::Subscribed);
        let no = br#"{"event":"pusher:subscription_error","channel":"c","data":{}}"#;
        assert_eq!(classify_setup(no), Setup::Refused);
        let est = br#"{"event":"pusher:connection_established","data":"{}"}"#;
        assert_eq!(classify_setup(est), Setup::Other);
        assert!(is_ping(br#"{"event":"pusher:ping","data":{}}"#));
        assert!(!is_ping(est));
    }

    #[test]
    fn socket_ids_of_herald_and_sockudo_shapes() {
        let herald = br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.4294967296\",\"activity_timeout\":120}"}"#;
        assert_eq!(socket_id(herald), Some("1.4294967296"));
        let plain = br#"{"event":"pusher:connection_established","data":{"socket_id":"12.34"}}"#;
        assert_eq!(socket_id(plain), Some("12.34"));
        assert_eq!(socket_id(br#"{"event":"pusher:pong","data":{}}"#), None);
    }

    #[test]
    fn presence_subscribe_is_signed_and_member_t_is_found() {
        let app = App::default();
        let mut out = Vec::new();
        presence_subscribe_frame(
            &app,
            "1.2",
            "presence-x",
            "u7",
            4242,
            [1, 2, 3, 4],
            &mut out,
        );
        let head = wsframe::decode_head(&out, false).unwrap().unwrap();
        let payload = &mut out[head.header_len..head.frame_len()];
        wsframe::unmask(payload, head.mask.unwrap());
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let cd = v["data"]["channel_data"].as_str().unwrap();
        assert_eq!(cd, r#"{"user_id":"u7","user_info":{"t":4242}}"#);
        let apps = herald::pusher::apps::App::new("app-id", "app-key", "app-secret");
        let want = format!(
            "app-key:{}",
            hmac_hex(&apps.secret, &format!("1.2:presence-x:{cd}"))
        );
        assert_eq!(v["data"]["auth"], want.as_str());
        // What a server sends the other members: data is the channel_data's member, as a string.
        let added = serde_json::json!({
            "event": "pusher_internal:member_added",
            "channel": "presence-x",
            "data": r#"{"user_id":"u7","user_info":{"t":4242}}"#,
        })
        .to_string();
        assert_eq!(member_event(added.as_bytes()), Some(Member::Added));
        assert_eq!(member_t(added.as_bytes()), Some(4242));
        let removed = br#"{"event":"pusher_internal:member_removed","channel":"presence-x","data":"{\"user_id\":\"u7\"}"}"#;
        assert_eq!(member_event(removed), Some(Member::Removed));
    }
}
