//! The one HTTP response type every dialect answers with, and its serialisation.
//!
//! A dialect builds a `Response` (status, content type, its own headers, body, whether the
//! connection closes after it); the connection adds `Date`, `Content-Length` and the
//! keep-alive decision when it writes it. CORS and other dialect policies are plain headers
//! here: the core knows no dialect's header set.

use crate::proto::http;
use bytes::{Bytes, BytesMut};

/// One response header: a static name and an owned or static value.
pub type Header = (&'static str, HeaderValue);

/// A header value: static for the common fixed ones, owned otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// A compile-time value (CORS lists, `Retry-After: 1`).
    Static(&'static [u8]),
    /// A value built per response (`Location`, `Set-Cookie`).
    Owned(String),
}

impl HeaderValue {
    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            HeaderValue::Static(b) => b,
            HeaderValue::Owned(s) => s.as_bytes(),
        }
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::Owned(s)
    }
}

impl From<&'static str> for HeaderValue {
    fn from(s: &'static str) -> Self {
        HeaderValue::Static(s.as_bytes())
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code; the reason phrase comes from `proto::http::reason`.
    pub status: u16,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// Headers besides `Date`, `Content-Type`, `Content-Length` and `Connection`.
    pub headers: Vec<Header>,
    /// The body (not sent for `HEAD`).
    pub body: Bytes,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    /// A response with no extra headers that keeps the connection open.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            close: false,
        }
    }

    /// A plain-text error that closes the connection (malformed requests, timeouts).
    pub fn text_and_close(status: u16, body: impl Into<Bytes>) -> Self {
        let mut r = Response::new(status, "text/plain; charset=UTF-8", body);
        r.close = true;
        r
    }

    /// `503` with `Retry-After: 1`: a shard's inbox was full (back-pressure, nothing done).
    pub fn busy() -> Self {
        let mut r = Response::new(
            503,
            "text/plain; charset=UTF-8",
            Bytes::from_static(b"Service Unavailable"),
        );
        r.headers.push(("Retry-After", HeaderValue::Static(b"1")));
        r
    }

    /// Add headers (builder style).
    pub fn with_headers(mut self, extra: &[Header]) -> Self {
        self.headers.extend_from_slice(extra);
        self
    }

    /// Serialise as one chunk. `keep_alive` is the request's wish; a `close` response closes
    /// regardless. Returns the bytes and whether the connection stays open.
    pub fn encode(&self, date: &[u8], keep_alive: bool, head_only: bool) -> (Bytes, bool) {
        let keep_alive = keep_alive && !self.close;
        let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(4 + self.headers.len());
        headers.push(("Date", date));
        headers.push(("Content-Type", self.content_type.as_bytes()));
        for (k, v) in &self.headers {
            headers.push((k, v.as_bytes()));
        }
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        http::write_response(
            &mut out,
            self.status,
            &headers,
            &self.body,
            keep_alive,
            head_only,
        );
        (out.freeze(), keep_alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_table() {
        let date = b"Sun, 06 Dec 2026 21:00:00 GMT";
        let busy = Response::busy();
        let cases: [(&Response, bool, bool, &[&str], bool); 3] = [
            (
                &busy,
                true,
                false,
                &[
                    "503 Service Unavailable",
                    "Retry-After: 1",
                    "Service Unavailable",
                ],
                true,
            ),
            (
                &Response::text_and_close(408, "Request Timeout"),
                true,
                false,
                &["408 Request Timeout", "Connection: close"],
                false,
            ),
            (
                &Response::new(200, "application/json", "{}"),
                true,
                true,
                &["200 OK", "Content-Length: 2", "application/json"],
                true,
            ),
        ];
        for (r, ka, head_only, want, open) in cases {
            let (bytes, stays_open) = r.encode(date, ka, head_only);
            let text = String::from_utf8_lossy(&bytes);
            for w in want {
                assert!(text.contains(w), "{w:?} not in {text:?}");
            }
            assert_eq!(stays_open, open, "{text}");
            assert_eq!(text.ends_with("\r\n\r\n"), head_only, "{text}");
        }
    }
}
