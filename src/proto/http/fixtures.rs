//! Requests and helpers shared by the HTTP layer's unit tests (compiled for tests only).

use super::{parse_head, HttpError, ParseLimits, RequestHead};

pub(super) const LIMITS: ParseLimits = ParseLimits {
    max_head: 16 * 1024,
    max_headers: 64,
    max_body: 1024 * 1024,
};

pub(super) const WS_GET: &[u8] =
    b"GET /ws?conn_id=0b5b0bd4-5a1c-4b9c-8f0e-6a3f4c2f9e11 HTTP/1.1\r\n\
Host: example.com:8000\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\r\n";

pub(super) const POST: &[u8] = b"POST /message HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
Content-Type: application/json\r\n\
X-Channelstream-Secret: c2lnbmVk.abc\r\n\
Content-Length: 5\r\n\r\nhello";

pub(super) fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    parse_head(buf, &LIMITS)
}

pub(super) fn head(buf: &[u8]) -> (RequestHead, usize) {
    match parse(buf) {
        Ok(Some(h)) => h,
        other => panic!(
            "expected a head for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

pub(super) fn err(buf: &[u8]) -> HttpError {
    match parse(buf) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

pub(super) fn req(headers: &str) -> Vec<u8> {
    format!("POST /p HTTP/1.1\r\nHost: h\r\n{headers}\r\n").into_bytes()
}
