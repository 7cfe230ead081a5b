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

/// Herald's default Pusher app (soketi's defaults), which the presets target.
pub const APP_ID: &str = "app-id";
pub const APP_KEY: &str = "app-key";
pub const APP_SECRET: &str = "app-secret";

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
    pub fn new(host: &str, chan_prefix: &str, channels: u32, size: usize) -> Publisher {
        Publisher {
            host: host.to_string(),
            path: format!("/apps/{APP_ID}/events"),
            key: APP_KEY.to_string(),
            secret: APP_SECRET.to_string(),
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
        let mut p = Publisher::new("127.0.0.1:1", "hb-c", 10, 64);
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
        let app = herald::pusher::apps::App::new(APP_ID, APP_KEY, APP_SECRET);
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
}
