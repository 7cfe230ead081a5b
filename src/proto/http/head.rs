//! Request heads: the request line and header block, parsed by httparse into [`RequestHead`].
//!
//! Why a separate module: the head is the part of a request that routing, auth and the upgrade
//! look at, and the part that must be parsed without touching the allocator. Body framing facts
//! are collected here in the same pass over the headers but judged in [`super::body`].
//!
//! Invariants:
//! - [`parse_head`] allocates nothing on the heap: header spans live in a fixed array inside
//!   [`RequestHead`] (at most [`MAX_HEADERS`]), httparse gets an uninitialised stack array.
//! - It looks at most `max_head` bytes, so the work per call is bounded; a head that does not end
//!   inside that window is a 431 whatever follows.
//! - Everything returned is a [`Span`] into the caller's buffer, never a borrow, so the caller may
//!   keep mutating or freezing its `BytesMut` afterwards (pingora's `BufRef` pattern).

use super::body::{BodyKind, Framing};
use super::{HttpError, ParseLimits};
use std::fmt;
use std::mem::MaybeUninit;

/// Hard upper bound for [`ParseLimits::max_headers`]: the size of the span array in [`RequestHead`].
pub const MAX_HEADERS: usize = 64;

/// A byte range into the buffer the head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte (exclusive).
    pub end: u32,
}

impl Span {
    /// The bytes of this span in `buf`; empty if the span lies outside it.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }

    /// Span of `part`, which must be a sub-slice of `buf` (httparse guarantees that).
    ///
    /// Offsets fit in u32 because `parse_head` never looks past `min(max_head, u32::MAX)` bytes.
    /// Should `part` ever lie outside `buf`, the span is garbage but [`Span::get`] stays safe.
    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        Span {
            start: start as u32,
            end: start.wrapping_add(part.len()) as u32,
        }
    }
}

/// A request method; the ones Herald routes on, everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other token, including lower-case spellings.
    Other,
}

impl Method {
    /// Methods are case-sensitive tokens (RFC 9110 §9.1): `get` is `Other`.
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// Name and value spans of the headers of one request, in arrival order.
///
/// A fixed array rather than a `Vec`: parsing a head must not touch the allocator.
#[derive(Clone, Copy)]
struct HeaderTable {
    len: u8,
    spans: [(Span, Span); MAX_HEADERS],
}

impl HeaderTable {
    fn new() -> Self {
        HeaderTable {
            len: 0,
            spans: [(Span::default(), Span::default()); MAX_HEADERS],
        }
    }

    fn as_slice(&self) -> &[(Span, Span)] {
        self.spans.get(..self.len as usize).unwrap_or(&[])
    }

    /// Silently ignores overflow; httparse was given at most `MAX_HEADERS` slots.
    fn push(&mut self, name: Span, value: Span) {
        if let Some(slot) = self.spans.get_mut(self.len as usize) {
            *slot = (name, value);
            self.len += 1;
        }
    }
}

impl fmt::Debug for HeaderTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A parsed request head: spans into the input buffer, plus the facts the server needs.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// Path without the query string.
    pub path: Span,
    /// The query string without `?`.
    pub query: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// How the body is framed: none, `Content-Length` or chunked.
    pub body: BodyKind,
    /// After this request, keep the connection (HTTP/1.1 default, `Connection: close`, 1.0 rules).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    headers: HeaderTable,
}

impl RequestHead {
    /// First value of header `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.headers(buf)
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// All headers as `(name, value)` in arrival order; values have surrounding whitespace
    /// trimmed.
    pub fn headers<'s, 'a>(
        &'s self,
        buf: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 's
    where
        'a: 's,
    {
        self.headers
            .as_slice()
            .iter()
            .map(move |(n, v)| (n.get(buf), v.get(buf)))
    }

    /// Number of headers in the request.
    pub fn header_count(&self) -> usize {
        self.headers.len as usize
    }

    /// Whether any `name` header holds `token` in its comma-separated list (ASCII
    /// case-insensitive), e.g. `Connection: keep-alive, Upgrade` holds `upgrade`. Lists split
    /// over several header lines count as one list (RFC 9110 §5.3).
    pub fn header_has_token(&self, buf: &[u8], name: &str, token: &str) -> bool {
        self.headers(buf)
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .any(|(_, v)| list_tokens(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }
}

/// Parse a request head. `Ok(None)` = incomplete (nothing consumed).
///
/// On success returns the head and the number of bytes it took (leading empty lines included);
/// the body, if any, starts right after. Spans index into `buf`.
pub fn parse_head(
    buf: &[u8],
    limits: &ParseLimits,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    // Parse at most max_head bytes: bounds the work per call, and a head that does not end
    // inside that window is too large whatever follows.
    let max_head = limits.max_head.min(u32::MAX as usize);
    let window = buf.get(..max_head).unwrap_or(buf);
    let max_headers = limits.max_headers.min(MAX_HEADERS);

    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    // `max_headers <= MAX_HEADERS` by the `min` above, so `get_mut` always succeeds.
    let slots = slots.get_mut(..max_headers).unwrap_or_default();
    let consumed = match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(HttpError::HeaderTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeaderTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(window)),
        Err(e) => return Err(HttpError::Malformed(httparse_reason(e))),
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed("incomplete request line"));
    };

    // Path and query stay raw (percent-encoded): the router decides what to decode.
    let (path, query) = split_target(buf, target.as_bytes());
    let mut headers = HeaderTable::new();
    let mut framing = Framing::default();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;

    // One pass over the headers: record spans for later lookups and collect the few facts
    // that decide framing and connection reuse. Values are trimmed once, here, so no caller of
    // `header()` ever sees optional whitespace.
    for h in req.headers.iter() {
        let value = trim_ows(h.value);
        headers.push(
            Span::within(buf, h.name.as_bytes()),
            Span::within(buf, value),
        );
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            framing.content_length(value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            framing.transfer_encoding(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            // `close` wins over `keep-alive` whatever the order (RFC 9112 §9.6).
            for token in list_tokens(value) {
                conn_close |= token.eq_ignore_ascii_case(b"close");
                conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
    }

    // Host is deliberately not required for HTTP/1.1: Channelstream's gevent server accepts
    // requests without it, and as an origin server we route on the path alone.
    let head = RequestHead {
        method: Method::from_token(method),
        path,
        query,
        minor_version,
        body: framing.finish(minor_version, limits.max_body)?,
        keep_alive: if minor_version == 1 {
            !conn_close
        } else {
            conn_keep_alive && !conn_close
        },
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client.
        expect_continue: expect_continue && minor_version == 1,
        headers,
    };
    Ok(Some((head, consumed)))
}

/// Split a request target into path and query spans at the first `?`.
///
/// Absolute-form (`http://host/p?q`, RFC 9112 §3.2.2, which servers MUST accept) is reduced
/// to its path; `*` and authority-form are returned unchanged as the path.
fn split_target(buf: &[u8], target: &[u8]) -> (Span, Option<Span>) {
    let path_from = scheme_len(target).map_or(0, |after| {
        let authority = target.get(after..).unwrap_or(&[]);
        after
            + authority
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(authority.len())
    });
    let rest = target.get(path_from..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == b'?') {
        Some(q) => (
            Span::within(buf, rest.get(..q).unwrap_or(&[])),
            Some(Span::within(buf, rest.get(q + 1..).unwrap_or(&[]))),
        ),
        None => (Span::within(buf, rest), None),
    }
}

/// Length of a leading `http://` or `https://` (ASCII case-insensitive).
fn scheme_len(target: &[u8]) -> Option<usize> {
    [&b"http://"[..], &b"https://"[..]]
        .into_iter()
        .find_map(|scheme| {
            let head = target.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme).then_some(scheme.len())
        })
}

/// httparse says "bad version" both for `HTTP/2.0` and for garbage; only the former earns a 505.
/// The version is the third field of the request line (method and target contain no spaces).
/// Looking at a prefix only keeps the answer the same however the input was split.
fn version_error(window: &[u8]) -> HttpError {
    let start = window.iter().position(|&b| b != b'\r' && b != b'\n');
    let line = start.and_then(|s| window.get(s..)).unwrap_or(&[]);
    let line = line
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(&[]);
    match line.split(|&b| b == b' ').nth(2) {
        Some([b'H', b'T', b'T', b'P', b'/', d, ..]) if d.is_ascii_digit() => {
            HttpError::VersionNotSupported
        }
        _ => HttpError::Malformed("invalid HTTP version"),
    }
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid request line",
        httparse::Error::Version => "invalid HTTP version",
        _ => "invalid request",
    }
}

/// Strip optional whitespace (SP / HTAB) on both ends.
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Non-empty, trimmed elements of a comma-separated header list.
pub(super) fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn parses_websocket_get() {
        let (h, n) = head(WS_GET);
        assert_eq!(n, WS_GET.len());
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path.get(WS_GET), b"/ws");
        let query = h.query.map(|q| q.get(WS_GET));
        assert_eq!(
            query,
            Some(&b"conn_id=0b5b0bd4-5a1c-4b9c-8f0e-6a3f4c2f9e11"[..])
        );
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.body, BodyKind::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.header_count(), 6);
        assert_eq!(h.header(WS_GET, "upgrade"), Some(&b"websocket"[..]));
        assert_eq!(
            h.header(WS_GET, "SEC-WEBSOCKET-KEY"),
            Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..])
        );
        assert_eq!(h.header(WS_GET, "missing"), None);
        assert!(h.header_has_token(WS_GET, "connection", "upgrade"));
        assert!(!h.header_has_token(WS_GET, "connection", "close"));
        let names: Vec<&[u8]> = h.headers(WS_GET).map(|(n, _)| n).collect();
        assert_eq!(names.first(), Some(&&b"Host"[..]));
        assert_eq!(names.last(), Some(&&b"Origin"[..]));
    }

    #[test]
    fn parses_post_with_length_and_leaves_body() {
        let (h, n) = head(POST);
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path.get(POST), b"/message");
        assert_eq!(h.query, None);
        assert_eq!(h.body, BodyKind::Length(5));
        assert_eq!(POST.get(n..), Some(&b"hello"[..]));
        assert_eq!(
            h.header(POST, "x-channelstream-secret"),
            Some(&b"c2lnbmVk.abc"[..])
        );
    }

    #[test]
    fn incomplete_at_every_split_point() {
        for sample in [WS_GET, POST] {
            let head_len = head(sample).1;
            for cut in 0..head_len {
                assert_eq!(
                    parse(&sample[..cut]).map(|o| o.is_some()),
                    Ok(false),
                    "cut at {cut}"
                );
            }
            assert_eq!(head(&sample[..head_len]).1, head_len);
        }
    }

    #[test]
    fn methods() {
        let table = [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("PATCH", Method::Patch),
            ("DELETE", Method::Delete),
            ("OPTIONS", Method::Options),
            ("TRACE", Method::Other),
            ("get", Method::Other),
        ];
        for (token, method) in table {
            let buf = format!("{token} / HTTP/1.1\r\n\r\n");
            assert_eq!(head(buf.as_bytes()).0.method, method, "{token}");
        }
    }

    #[test]
    fn path_and_query_split() {
        // (target, path, query)
        let table: [(&str, &str, Option<&str>); 9] = [
            ("/", "/", None),
            ("/info", "/info", None),
            ("/listen?", "/listen", Some("")),
            ("/a?b=1&c=2", "/a", Some("b=1&c=2")),
            ("/a?b=?c", "/a", Some("b=?c")),
            ("*", "*", None),
            ("http://h:8000/ws?conn_id=1", "/ws", Some("conn_id=1")),
            ("HTTPS://h/x", "/x", None),
            ("http://h?q", "", Some("q")),
        ];
        for (target, path, query) in table {
            let buf = format!("OPTIONS {target} HTTP/1.1\r\n\r\n");
            let (h, _) = head(buf.as_bytes());
            assert_eq!(h.path.get(buf.as_bytes()), path.as_bytes(), "{target}");
            let q = h.query.map(|q| q.get(buf.as_bytes()));
            assert_eq!(q, query.map(str::as_bytes), "{target}");
        }
    }

    #[test]
    fn keep_alive_and_expect() {
        // (version, headers, keep_alive, expect_continue)
        let table = [
            ("1.1", "", true, false),
            ("1.1", "Connection: close\r\n", false, false),
            ("1.1", "Connection: CLOSE\r\n", false, false),
            ("1.1", "Connection: keep-alive, Close\r\n", false, false),
            (
                "1.1",
                "Connection: upgrade\r\nConnection: close\r\n",
                false,
                false,
            ),
            ("1.1", "Connection: closed\r\n", true, false),
            ("1.1", "Connection: keep-alive\r\n", true, false),
            ("1.0", "", false, false),
            ("1.0", "Connection: Keep-Alive\r\n", true, false),
            ("1.0", "Connection: foo ,keep-alive\r\n", true, false),
            ("1.0", "Connection: keep-alive, close\r\n", false, false),
            ("1.1", "Expect: 100-continue\r\n", true, true),
            ("1.1", "Expect: 100-Continue \r\n", true, true),
            ("1.1", "Expect: 200-ok\r\n", true, false),
            ("1.0", "Expect: 100-continue\r\n", false, false),
        ];
        for (version, headers, keep_alive, expect) in table {
            let buf = format!("GET / HTTP/{version}\r\n{headers}\r\n");
            let (h, _) = head(buf.as_bytes());
            assert_eq!(h.keep_alive, keep_alive, "{version} {headers:?}");
            assert_eq!(h.expect_continue, expect, "{version} {headers:?}");
            assert_eq!(h.minor_version, if version == "1.1" { 1 } else { 0 });
        }
    }

    #[test]
    fn malformed_heads_are_400() {
        let table: [&[u8]; 16] = [
            b"GET\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b" GET / HTTP/1.1\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET / FOO/1.1\r\n\r\n",
            b"GET / HTTP/x.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\rX: a\r\n\r\n",
        ];
        for buf in table {
            let e = err(buf);
            assert!(
                matches!(e, HttpError::Malformed(_)),
                "{:?}: {e:?}",
                String::from_utf8_lossy(buf)
            );
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn unsupported_versions_are_505() {
        for buf in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/3",
            b"GET / HTTP/0.9\r\n\r\n",
        ] {
            assert_eq!(err(buf).status(), 505, "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn tolerated_variations() {
        // Leading empty lines (RFC 9112 §2.2), bare LF line ends, no Host, empty values,
        // trailing whitespace in values.
        let buf = b"\r\n\r\nGET /x HTTP/1.1\nX-Empty:\nX-Pad: \t v \t\n\n";
        let (h, n) = head(buf);
        assert_eq!(n, buf.len());
        assert_eq!(h.path.get(buf), b"/x");
        assert_eq!(h.header(buf, "x-empty"), Some(&b""[..]));
        assert_eq!(h.header(buf, "x-pad"), Some(&b"v"[..]));
    }

    #[test]
    fn header_returns_first_of_duplicates() {
        let buf = b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
        let (h, _) = head(buf);
        assert_eq!(h.header(buf, "X-A"), Some(&b"1"[..]));
        assert_eq!(
            h.headers(buf)
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-a"))
                .count(),
            2
        );
    }

    #[test]
    fn pipelined_requests() {
        let mut buf = POST.to_vec();
        buf.extend_from_slice(WS_GET);
        let (first, n) = head(&buf);
        assert_eq!(first.method, Method::Post);
        let BodyKind::Length(body) = first.body else {
            panic!("expected a length");
        };
        assert_eq!(&buf[n..n + body], b"hello");
        let rest = &buf[n + body..];
        let (second, m) = head(rest);
        assert_eq!(second.method, Method::Get);
        assert_eq!(second.path.get(rest), b"/ws");
        assert_eq!(m, rest.len());
    }

    #[test]
    fn max_head_limit() {
        // WS_GET's head is exactly WS_GET.len() bytes.
        let exact = ParseLimits {
            max_head: WS_GET.len(),
            ..LIMITS
        };
        assert!(matches!(parse_head(WS_GET, &exact), Ok(Some(_))));
        let short = ParseLimits {
            max_head: WS_GET.len() - 1,
            ..LIMITS
        };
        assert_eq!(
            parse_head(WS_GET, &short).map(|o| o.is_some()),
            Err(HttpError::HeaderTooLarge)
        );
        // Incomplete: None while buf.len() <= max_head, 431 once beyond.
        let small = ParseLimits {
            max_head: 32,
            ..LIMITS
        };
        assert_eq!(
            parse_head(&WS_GET[..32], &small).map(|o| o.is_some()),
            Ok(false)
        );
        assert_eq!(
            parse_head(&WS_GET[..33], &small).map(|o| o.is_some()),
            Err(HttpError::HeaderTooLarge)
        );
        // A complete head followed by a large body is fine: only the head counts.
        let mut big = POST.to_vec();
        big.extend_from_slice(&[b'x'; 100_000]);
        let limit = ParseLimits {
            max_head: POST.len(),
            ..LIMITS
        };
        assert!(matches!(parse_head(&big, &limit), Ok(Some(_))));
        assert_eq!(HttpError::HeaderTooLarge.status(), 431);
    }

    fn with_headers(count: usize) -> Vec<u8> {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..count {
            buf.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        buf
    }

    #[test]
    fn max_headers_limit() {
        for max in [0, 1, 5, 64] {
            let limits = ParseLimits {
                max_headers: max,
                ..LIMITS
            };
            let ok = with_headers(max);
            let (h, _) = parse_head(&ok, &limits)
                .ok()
                .flatten()
                .expect("within the limit");
            assert_eq!(h.header_count(), max);
            let last = format!("{}", max.saturating_sub(1));
            if max > 0 {
                assert_eq!(h.header(&ok, &format!("x-h{last}")), Some(last.as_bytes()));
            }
            let over = with_headers(max + 1);
            assert_eq!(
                parse_head(&over, &limits).map(|o| o.is_some()),
                Err(HttpError::HeaderTooLarge)
            );
        }
        // Limits above the array size act as MAX_HEADERS.
        let wide = ParseLimits {
            max_headers: 1000,
            ..LIMITS
        };
        assert!(matches!(parse_head(&with_headers(64), &wide), Ok(Some(_))));
        assert_eq!(
            parse_head(&with_headers(65), &wide).map(|o| o.is_some()),
            Err(HttpError::HeaderTooLarge)
        );
    }
}
