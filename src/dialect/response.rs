//! The one HTTP response type every dialect answers with, and its serialisation.
//!
//! A dialect builds a `Response` (status, optionally its framework's reason phrase, content
//! type, its own headers, body, whether the connection closes after it); the connection adds
//! `Date`, `Content-Length` and the keep-alive decision when it writes it.
//!
//! Header order on the wire (that of gevent's WSGI server, which Channelstream 0.7.1 runs
//! on): the dialect's headers, `Content-Type` (or `Content-Type` first with `type_first`), `Connection: close` when the response itself
//! closes, `Content-Length`, `Connection: close` when only the request asked for it, `Date`. CORS and other dialect policies are plain headers
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
    /// Status code.
    pub status: u16,
    /// Reason phrase of the status line; `None`: the RFC's (`proto::http::reason`). A dialect
    /// sets its framework's phrase here (Channelstream: WebOb's `422 Unprocessable Entity`).
    pub reason: Option<&'static str>,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// Write `Content-Type` before the other headers instead of after them (Channelstream's
    /// long-poll answers, which its view builds type first).
    pub type_first: bool,
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
            reason: None,
            content_type,
            type_first: false,
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
        let stays_open = keep_alive && !self.close;
        let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(1 + self.headers.len());
        let content_type = ("Content-Type", self.content_type.as_bytes());
        if self.type_first {
            headers.push(content_type);
        }
        for (k, v) in &self.headers {
            headers.push((k, v.as_bytes()));
        }
        if !self.type_first {
            headers.push(content_type);
        }
        let head = http::Head {
            status: self.status,
            reason: self.reason.unwrap_or_else(|| http::reason(self.status)),
            headers: &headers,
            trailing: &[("Date", date)],
            // A response that closes by itself says so before its length, as gevent does.
            early_close: self.close,
        };
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        http::write_response(&mut out, &head, &self.body, keep_alive, head_only);
        (out.freeze(), stays_open)
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
        let mut unprocessable = Response::new(422, "application/json", "{}");
        unprocessable.reason = Some("Unprocessable Entity");
        let (bytes, _) = unprocessable.encode(date, true, false);
        assert!(bytes.starts_with(b"HTTP/1.1 422 Unprocessable Entity\r\n"));
        let (bytes, _) = Response::text_and_close(500, "x")
            .with_headers(&[("A", HeaderValue::Static(b"1"))])
            .encode(date, true, false);
        assert_eq!(
            &bytes[..],
            &b"HTTP/1.1 500 Internal Server Error\r\nA: 1\r\nContent-Type: text/plain; charset=UTF-8\r\nConnection: close\r\nContent-Length: 1\r\nDate: Sun, 06 Dec 2026 21:00:00 GMT\r\n\r\nx"[..]
        );
        let (bytes, _) = Response::new(200, "application/json", "{}").encode(date, false, false);
        assert!(bytes.ends_with(b"Content-Length: 2\r\nConnection: close\r\nDate: Sun, 06 Dec 2026 21:00:00 GMT\r\n\r\n{}"));
        let mut poll = Response::new(200, "text/html", "[]").with_headers(&[("A", "1".into())]);
        poll.type_first = true;
        let (bytes, _) = poll.encode(date, true, false);
        assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nA: 1\r\n"));
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
