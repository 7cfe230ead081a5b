//! HTTP/1.1 request heads (httparse) and bodies, and response encoding.
//!
//! Why our own layer instead of a server crate: the reactor owns the socket and the read buffer,
//! and must be able to upgrade a connection to RFC 6455 in place. So this module is pure: it reads
//! `&[u8]`, returns `Ok(None)` while input is incomplete (nothing consumed), and records byte
//! ranges ([`Span`]) instead of borrows, so the caller may keep mutating or freezing its
//! `BytesMut` afterwards (pingora's `BufRef` pattern).
//!
//! Invariants the reactor relies on:
//! - [`parse_head`] allocates nothing on the heap: header spans live in a fixed array inside
//!   [`RequestHead`] (at most [`MAX_HEADERS`]), httparse gets an uninitialised stack array.
//! - Every limit is enforced *before* the input is complete, so a slow or hostile peer cannot
//!   make us buffer more than `max_head` bytes of head or `max_body` bytes of body.
//! - Body framing is decided conservatively (RFC 9112 §6): ambiguous framing is an error, never a
//!   guess, because guessing is what request smuggling exploits.
//! - Every error means "answer with `status()` and close"; none of them is recoverable on the
//!   same connection because the framing of what follows is unknown.

use bytes::{BufMut, BytesMut};
use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;

/// Hard upper bound for [`Limits::max_headers`]: the size of the span array in [`RequestHead`].
pub const MAX_HEADERS: usize = 64;

/// The interim response for `Expect: 100-continue`, ready to write.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Longest chunk-size line (size, extensions, not the CRLF) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// Total chunk-extension bytes allowed in one body. Without it, 1 KiB of extension per 1-byte
/// chunk would let a peer send ~1000x `max_body` bytes of wire for one request.
const MAX_CHUNK_EXT_TOTAL: usize = 16 * 1024;
/// Total trailer-section bytes allowed after the last chunk (skipped, never stored).
const MAX_TRAILERS: usize = 16 * 1024;

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request head (request line + headers + CRLFCRLF) in bytes → 431.
    pub max_head: usize,
    /// Most headers in one request → 431. Values above [`MAX_HEADERS`] act as [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Largest request body (after de-chunking) → 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}

/// A byte range into the buffer the head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
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

/// How the body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(usize),
    Chunked,
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
    pub method: Method,
    /// Path without the query string.
    pub path: Span,
    /// The query string without `?`.
    pub query: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request header block too large")]
    HeaderTooLarge,
    #[error("request body too large")]
    BodyTooLarge,
    /// A transfer coding other than a lone `chunked` (e.g. `gzip, chunked`).
    #[error("unsupported transfer encoding")]
    UnsupportedTransferEncoding,
    /// A well-formed `HTTP/x.y` version that is not 1.0 or 1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeaderTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::VersionNotSupported => 505,
        }
    }
}

/// Parse a request head. `Ok(None)` = incomplete (nothing consumed).
///
/// On success returns the head and the number of bytes it took (leading empty lines included);
/// the body, if any, starts right after. Spans index into `buf`.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HttpError> {
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

/// Body-framing facts gathered over all headers, judged once at the end so that header order
/// cannot change the outcome.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    /// A Transfer-Encoding header was present (even if empty).
    te_present: bool,
    /// `chunked` has been seen; any coding after it means it was not final (or applied twice).
    te_chunked: bool,
    te_chunked_not_final: bool,
    /// A coding other than `chunked` was listed.
    te_other: bool,
}

impl Framing {
    fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::Malformed("invalid Content-Length"));
        }
        // Saturate instead of failing: an absurd length is simply larger than max_body (413).
        let n = value.iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        // Repeats of the same value are harmless (RFC 9112 §6.3 lets a recipient accept them);
        // differing values mean two parties could frame the body differently.
        match self.content_length {
            Some(prev) if prev != n => Err(HttpError::Malformed("conflicting Content-Length")),
            _ => {
                self.content_length = Some(n);
                Ok(())
            }
        }
    }

    fn transfer_encoding(&mut self, value: &[u8]) {
        self.te_present = true;
        for token in list_tokens(value) {
            // A coding may carry parameters (`gzip;q=1`); only its name matters here.
            let name = trim_ows(token.split(|&b| b == b';').next().unwrap_or(token));
            self.te_chunked_not_final |= self.te_chunked;
            if name.eq_ignore_ascii_case(b"chunked") {
                self.te_chunked = true;
            } else {
                self.te_other = true;
            }
        }
    }

    fn finish(self, minor_version: u8, max_body: usize) -> Result<BodyKind, HttpError> {
        if self.te_present {
            // RFC 9112 §6.1: TE with CL is a smuggling attempt; HTTP/1.0 has no chunked coding;
            // a request whose final coding is not chunked has no determinable length (400).
            if self.content_length.is_some() {
                return Err(HttpError::Malformed(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if minor_version == 0 {
                return Err(HttpError::Malformed("Transfer-Encoding in HTTP/1.0"));
            }
            if !self.te_chunked || self.te_chunked_not_final {
                return Err(HttpError::Malformed("chunked is not the final coding"));
            }
            if self.te_other {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            return Ok(BodyKind::Chunked);
        }
        match self.content_length {
            None => Ok(BodyKind::None),
            Some(n) => match usize::try_from(n) {
                Ok(n) if n <= max_body => Ok(BodyKind::Length(n)),
                _ => Err(HttpError::BodyTooLarge),
            },
        }
    }
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
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Non-empty, trimmed elements of a comma-separated header list.
fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Decode a complete chunked body from the start of `buf`: `Ok(Some((body, consumed)))`.
///
/// `consumed` covers the last chunk, the skipped trailers and the final CRLF. A body larger
/// than `max_body` fails with 413 as soon as the offending chunk size is read, before its data
/// arrives. Incomplete input allocates nothing: a first pass only validates and measures, and
/// the body is copied in a second pass once the whole message is known to be there.
pub fn decode_chunked(buf: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let Some((body_len, consumed)) = walk_chunked(buf, max_body, |_| {})? else {
        return Ok(None);
    };
    let mut body = Vec::with_capacity(body_len);
    // Deterministic: the second walk sees the same bytes and succeeds the same way.
    match walk_chunked(buf, max_body, |data| body.extend_from_slice(data))? {
        Some(_) => Ok(Some((body, consumed))),
        None => Ok(None),
    }
}

/// Walk a chunked message, handing each chunk's data to `sink`.
/// Returns `(body length, bytes consumed)` once the message is complete.
fn walk_chunked(
    buf: &[u8],
    max_body: usize,
    mut sink: impl FnMut(&[u8]),
) -> Result<Option<(usize, usize)>, HttpError> {
    const MALFORMED_CRLF: HttpError = HttpError::Malformed("chunk data not followed by CRLF");
    let mut pos = 0usize;
    let mut body_len = 0usize;
    let mut ext_total = 0usize;
    loop {
        let Some(line) = parse_size_line(buf.get(pos..).unwrap_or(&[]))? else {
            return Ok(None);
        };
        ext_total += line.ext_len;
        if ext_total > MAX_CHUNK_EXT_TOTAL {
            return Err(HttpError::Malformed("too many chunk extensions"));
        }
        pos += line.len;
        if line.size == 0 {
            break;
        }
        let size = usize::try_from(line.size).map_err(|_| HttpError::BodyTooLarge)?;
        body_len = body_len
            .checked_add(size)
            .filter(|&n| n <= max_body)
            .ok_or(HttpError::BodyTooLarge)?;
        // `size <= max_body` now, but `max_body` may be usize::MAX: keep the sum checked.
        let data_end = pos.checked_add(size).ok_or(HttpError::BodyTooLarge)?;
        let Some(data) = buf.get(pos..data_end) else {
            return Ok(None);
        };
        // The data must be followed by CRLF; a lone CR may still become one, anything else
        // is an error now rather than after more bytes arrive.
        match buf.get(data_end..).unwrap_or(&[]) {
            [b'\r', b'\n', ..] => {}
            [] | [b'\r'] => return Ok(None),
            _ => return Err(MALFORMED_CRLF),
        }
        sink(data);
        pos = data_end + 2;
    }
    skip_trailers(buf, pos).map(|end| end.map(|consumed| (body_len, consumed)))
}

/// One parsed `chunk-size [chunk-ext] CRLF` line.
struct SizeLine {
    size: u64,
    /// Bytes of the whole line including CRLF.
    len: usize,
    /// Bytes after the hex digits (whitespace and extensions).
    ext_len: usize,
}

/// Parse a chunk-size line at the start of `rest`. Errors are reported as early as the bytes
/// allow, so a bad line is rejected without waiting for its end.
fn parse_size_line(rest: &[u8]) -> Result<Option<SizeLine>, HttpError> {
    const TOO_LONG: HttpError = HttpError::Malformed("chunk size line too long");
    let mut size = 0u64;
    let mut i = 0usize;
    // Hex digits. Leading zeros are legal, so the digit count is bounded by the line limit,
    // and the value by checked arithmetic, not by a maximum number of digits.
    loop {
        let Some(&b) = rest.get(i) else {
            return Ok(None);
        };
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or(HttpError::Malformed("chunk size overflows"))?;
        i += 1;
        if i > MAX_CHUNK_LINE {
            return Err(TOO_LONG);
        }
    }
    if i == 0 {
        return Err(HttpError::Malformed("chunk size is not hex"));
    }
    let digits_end = i;
    // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ). Extensions
    // are ignored, so only their bytes are checked: no controls, no bare CR or LF.
    let mut in_ext = false;
    loop {
        let Some(&b) = rest.get(i) else {
            return Ok(None);
        };
        match b {
            b'\r' => break,
            b';' => in_ext = true,
            b' ' | b'\t' => {}
            0x21..=0x7e | 0x80..=0xff if in_ext => {}
            _ => return Err(HttpError::Malformed("invalid chunk extension")),
        }
        i += 1;
        if i > MAX_CHUNK_LINE {
            return Err(TOO_LONG);
        }
    }
    match rest.get(i + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(SizeLine {
            size,
            len: i + 2,
            ext_len: i - digits_end,
        })),
        Some(_) => Err(HttpError::Malformed("chunk size line not ended by CRLF")),
    }
}

/// Skip the trailer section starting at `start` (after the last chunk's line) up to and
/// including its empty line. Returns the end offset. Trailers are never used: a field that
/// matters for routing or auth must come in the head.
fn skip_trailers(buf: &[u8], start: usize) -> Result<Option<usize>, HttpError> {
    let mut pos = start;
    loop {
        let line = buf.get(pos..).unwrap_or(&[]);
        let mut i = 0usize;
        // Trailers are only checked for shape (field bytes, a colon, CRLF endings): enough to
        // refuse a body that is not chunked at all, without building anything.
        let mut has_colon = false;
        // Scan one line; `i` stops at its CR. The size limit counts the whole section.
        loop {
            if pos - start + i > MAX_TRAILERS {
                return Err(HttpError::HeaderTooLarge);
            }
            match line.get(i) {
                None => return Ok(None),
                Some(b'\r') => break,
                Some(b':') => has_colon = true,
                Some(b'\t' | 0x20..=0x7e | 0x80..=0xff) => {}
                Some(_) => return Err(HttpError::Malformed("invalid trailer")),
            }
            i += 1;
        }
        match line.get(i + 1) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return Err(HttpError::Malformed("trailer not ended by CRLF")),
        }
        if i == 0 {
            return Ok(Some(pos + 2));
        }
        if !has_colon {
            return Err(HttpError::Malformed("invalid trailer"));
        }
        pos += i + 2;
    }
}

/// First value of `name` in a query string / form body, percent- and `+`-decoded.
///
/// Follows Python's `parse_qsl(keep_blank_values=True)`, which Channelstream (WebOb) uses:
/// pairs split on `&`, a key without `=` has the empty value, keys are decoded before they are
/// compared, invalid `%` escapes stay as they are, invalid UTF-8 becomes U+FFFD.
pub fn query_param<'a>(query: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            // Split at the first `=` only: values may contain `=` (base64 signatures do).
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or(&[]),
                    pair.get(eq + 1..).unwrap_or(&[]),
                ),
                None => (pair, &[][..]),
            };
            (form_decode(key).as_ref() == name.as_bytes()).then(|| utf8_lossy(form_decode(value)))
        })
}

/// Percent-decode `input` (no `+` handling, as for a path). Borrowed when nothing to decode.
pub fn percent_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

/// application/x-www-form-urlencoded decoding: `+` is a space, then percent-decoding.
fn form_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, true)
}

fn decode(input: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let special = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    let Some(first) = input.iter().position(special) else {
        return Cow::Borrowed(input);
    };
    // Decoding only shrinks, so one allocation of the input's size is enough.
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(input.get(..first).unwrap_or(&[]));
    let mut i = first;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&h| hex_value(h));
                let lo = input.get(i + 2).and_then(|&l| hex_value(l));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                // Like Python's `unquote`: a `%` without two hex digits is kept literally.
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// UTF-8 with U+FFFD for invalid sequences, keeping a borrow whenever possible.
fn utf8_lossy(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
    }
}

/// Reason phrase for a status code (RFC 9110 and the IANA registry); `Unknown` otherwise.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Append a full response: status line, the given headers, `Content-Length` (always, also for
/// HEAD where the body is then omitted), `Connection: close` when `!keep_alive`, and the body.
///
/// Exceptions required by RFC 9110 §8.6/§15.2: 1xx responses get neither `Content-Length`,
/// `Connection` nor a body, and 204 gets no `Content-Length` and no body.
/// `headers` must not contain `Content-Length` or `Connection`; names and values are trusted
/// (they come from our own code, never from a peer).
pub fn write_response(
    out: &mut BytesMut,
    status: u16,
    headers: &[(&str, &[u8])],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    debug_assert!(headers.iter().all(|(n, _)| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("connection")
    }));
    // 1xx is an interim answer; the real response follows on the same connection, so it
    // carries no framing and cannot close the connection.
    let interim = (100..200).contains(&status);
    let length_header = !interim && status != 204;
    let send_body = length_header && !head_only;
    let reason = reason(status);

    // One reservation for the whole response, so the puts below never reallocate. Numbers are
    // counted at their widest (5 digits for a u16, 20 for a u64): over-reserving a few bytes
    // is cheaper than formatting twice.
    let mut len = b"HTTP/1.1 ".len() + 5 + 1 + reason.len() + 2 + 2;
    len += headers
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum::<usize>();
    if length_header {
        len += b"Content-Length: ".len() + 20 + 2;
    }
    if !interim && !keep_alive {
        len += b"Connection: close\r\n".len();
    }
    if send_body {
        len += body.len();
    }
    out.reserve(len);

    out.put_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    if length_header {
        out.put_slice(b"Content-Length: ");
        put_decimal(out, body.len() as u64);
        out.put_slice(b"\r\n");
    }
    if !interim && !keep_alive {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    if send_body {
        out.put_slice(body);
    }
}

/// Write `n` in decimal without going through `fmt`: digits are produced backwards into a
/// stack buffer, then copied in one `put_slice`.
fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(digits.get(at..).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 16 * 1024,
        max_headers: 64,
        max_body: 1024 * 1024,
    };

    const WS_GET: &[u8] = b"GET /ws?conn_id=0b5b0bd4-5a1c-4b9c-8f0e-6a3f4c2f9e11 HTTP/1.1\r\n\
Host: example.com:8000\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\r\n";

    const POST: &[u8] = b"POST /message HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
Content-Type: application/json\r\n\
X-Channelstream-Secret: c2lnbmVk.abc\r\n\
Content-Length: 5\r\n\r\nhello";

    fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_head(buf, &LIMITS)
    }

    fn head(buf: &[u8]) -> (RequestHead, usize) {
        match parse(buf) {
            Ok(Some(h)) => h,
            other => panic!(
                "expected a head for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn err(buf: &[u8]) -> HttpError {
        match parse(buf) {
            Err(e) => e,
            other => panic!(
                "expected an error for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn req(headers: &str) -> Vec<u8> {
        format!("POST /p HTTP/1.1\r\nHost: h\r\n{headers}\r\n").into_bytes()
    }

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
    fn body_framing() {
        // (headers, result)
        let table: [(&str, Result<BodyKind, HttpError>); 22] = [
            ("", Ok(BodyKind::None)),
            ("Content-Length: 0\r\n", Ok(BodyKind::Length(0))),
            ("Content-Length: 42\r\n", Ok(BodyKind::Length(42))),
            ("Content-Length:  42 \r\n", Ok(BodyKind::Length(42))),
            ("Content-Length: 007\r\n", Ok(BodyKind::Length(7))),
            (
                "Content-Length: 3\r\ncontent-length: 3\r\n",
                Ok(BodyKind::Length(3)),
            ),
            (
                "Content-Length: 1048576\r\n",
                Ok(BodyKind::Length(1024 * 1024)),
            ),
            ("Content-Length: 1048577\r\n", Err(HttpError::BodyTooLarge)),
            (
                "Content-Length: 99999999999999999999999999\r\n",
                Err(HttpError::BodyTooLarge),
            ),
            (
                "Content-Length: 3\r\nContent-Length: 4\r\n",
                Err(HttpError::Malformed("conflicting Content-Length")),
            ),
            (
                "Content-Length: -1\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: +1\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: 1 2\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: 3, 3\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length:\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: 0x10\r\n",
                Err(HttpError::Malformed("invalid Content-Length")),
            ),
            ("Transfer-Encoding: chunked\r\n", Ok(BodyKind::Chunked)),
            ("Transfer-Encoding: Chunked \r\n", Ok(BodyKind::Chunked)),
            ("Transfer-Encoding: ,chunked\r\n", Ok(BodyKind::Chunked)),
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                "Transfer-Encoding: identity, chunked\r\n",
                Err(HttpError::UnsupportedTransferEncoding),
            ),
        ];
        for (headers, expected) in table {
            let buf = req(headers);
            let got = parse(&buf).map(|o| o.map(|(h, _)| h.body));
            assert_eq!(got, expected.map(Some), "{headers:?}");
        }
    }

    #[test]
    fn smuggling_and_bad_transfer_encoding_are_400() {
        let table = [
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 0\r\nTransfer-Encoding: gzip\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: \r\n",
            "Transfer-Encoding: ,\r\n",
        ];
        for headers in table {
            let e = err(&req(headers));
            assert_eq!(e.status(), 400, "{headers:?}: {e:?}");
        }
        let e = err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e, HttpError::Malformed("Transfer-Encoding in HTTP/1.0"));
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
        let exact = Limits {
            max_head: WS_GET.len(),
            ..LIMITS
        };
        assert!(matches!(parse_head(WS_GET, &exact), Ok(Some(_))));
        let short = Limits {
            max_head: WS_GET.len() - 1,
            ..LIMITS
        };
        assert_eq!(
            parse_head(WS_GET, &short).map(|o| o.is_some()),
            Err(HttpError::HeaderTooLarge)
        );
        // Incomplete: None while buf.len() <= max_head, 431 once beyond.
        let small = Limits {
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
        let limit = Limits {
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
            let limits = Limits {
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
        let wide = Limits {
            max_headers: 1000,
            ..LIMITS
        };
        assert!(matches!(parse_head(&with_headers(64), &wide), Ok(Some(_))));
        assert_eq!(
            parse_head(&with_headers(65), &wide).map(|o| o.is_some()),
            Err(HttpError::HeaderTooLarge)
        );
    }

    #[test]
    fn max_body_limit_at_head_time() {
        let limits = Limits {
            max_body: 10,
            ..LIMITS
        };
        let ok = req("Content-Length: 10\r\n");
        assert!(matches!(
            parse_head(&ok, &limits),
            Ok(Some((
                RequestHead {
                    body: BodyKind::Length(10),
                    ..
                },
                _
            )))
        ));
        let over = req("Content-Length: 11\r\n");
        let e = parse_head(&over, &limits).map(|o| o.is_some());
        assert_eq!(e, Err(HttpError::BodyTooLarge));
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
    }

    #[test]
    fn error_statuses() {
        assert_eq!(HttpError::Malformed("x").status(), 400);
        assert_eq!(HttpError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
    }

    // ---- chunked ----

    fn chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
        decode_chunked(buf, 1024)
    }

    #[test]
    fn chunked_table() {
        // (input, body, bytes left after the message)
        let ok: [(&[u8], &[u8], &[u8]); 11] = [
            (b"0\r\n\r\n", b"", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT",
                b"hello world",
                b"NEXT",
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b""),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b""),
            (b"005\r\nhello\r\n000\r\n\r\n", b"hello", b""),
            (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello", b""),
            (b"5 ; a=\"q s\"\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n", b""),
            (
                b"0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n0\r\n\r\n",
                b"",
                b"0\r\n\r\n",
            ),
            (b"1\r\nx\r\n0\r\nChecksum: abc\r\n\r\nGET /", b"x", b"GET /"),
        ];
        for (input, body, left) in ok {
            let got = chunked(input);
            let consumed = input.len() - left.len();
            assert_eq!(
                got,
                Ok(Some((body.to_vec(), consumed))),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunked_incomplete_at_every_split_point() {
        let full: &[u8] = b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(chunked(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let (body, n) = chunked(full).ok().flatten().expect("complete");
        assert_eq!(body, b"hello0123456789abcdef");
        assert_eq!(n, full.len());
    }

    #[test]
    fn chunked_malformed() {
        let bad: [&[u8]; 16] = [
            b"\r\n",
            b"x\r\n",
            b"-1\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rxhello",
            b"5 6\r\n",
            b"5;a\x00\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\rX",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\nno colon\r\n\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
            b"0\r\nX: a\rb\r\n\r\n",
            b"0\r\n\rx",
            b"0\r\nX: \x01\r\n\r\n",
        ];
        for input in bad {
            let e = chunked(input).map(|o| o.is_some());
            assert!(
                matches!(e, Err(HttpError::Malformed(_))),
                "{:?}: {e:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunked_size_overflow_and_long_lines() {
        // 17 hex digits overflow u64.
        assert_eq!(
            chunked(b"10000000000000000\r\n"),
            Err(HttpError::Malformed("chunk size overflows"))
        );
        // 16 digits fit in u64 but exceed max_body: 413, before any data arrives.
        assert_eq!(
            chunked(b"ffffffffffffffff\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        // Leading zeros are fine until the line limit; past it the line is rejected even
        // when it never ends.
        let mut zeros = vec![b'0'; MAX_CHUNK_LINE - 1];
        zeros.extend_from_slice(b"1\r\nx\r\n0\r\n\r\n");
        assert_eq!(
            chunked(&zeros).map(|o| o.map(|(b, _)| b)),
            Ok(Some(b"x".to_vec()))
        );
        let endless = vec![b'0'; MAX_CHUNK_LINE + 1];
        assert_eq!(
            chunked(&endless),
            Err(HttpError::Malformed("chunk size line too long"))
        );
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE));
        assert_eq!(
            chunked(&long_ext),
            Err(HttpError::Malformed("chunk size line too long"))
        );
    }

    #[test]
    fn chunked_extension_budget() {
        // Many small chunks with big extensions: rejected once the total passes the budget.
        let ext = "a".repeat(1000);
        let mut input = Vec::new();
        for _ in 0..20 {
            input.extend_from_slice(format!("1;{ext}\r\nx\r\n").as_bytes());
        }
        let e = decode_chunked(&input, 1 << 20);
        assert_eq!(e, Err(HttpError::Malformed("too many chunk extensions")));
    }

    #[test]
    fn chunked_body_limit() {
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n0\r\n\r\n", 5).map(|o| o.is_some()),
            Ok(true)
        );
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n0\r\n\r\n", 4),
            Err(HttpError::BodyTooLarge)
        );
        // The sum counts: 3 + 3 > 5, reported at the second size line.
        assert_eq!(
            decode_chunked(b"3\r\nabc\r\n3\r\n", 5),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            decode_chunked(b"0\r\n\r\n", 0).map(|o| o.is_some()),
            Ok(true)
        );
        assert!(decode_chunked(b"1\r\nx\r\n0\r\n\r\n", usize::MAX).is_ok());
    }

    #[test]
    fn chunked_trailer_limit() {
        let mut input = b"0\r\n".to_vec();
        for i in 0..2000 {
            input.extend_from_slice(format!("X-T{i}: v\r\n").as_bytes());
        }
        assert_eq!(chunked(&input), Err(HttpError::HeaderTooLarge));
    }

    // ---- query strings ----

    #[test]
    fn query_param_table() {
        // (query, name, expected)
        let table: [(&[u8], &str, Option<&str>); 18] = [
            (b"conn_id=abc", "conn_id", Some("abc")),
            (b"a=1&conn_id=abc&b=2", "conn_id", Some("abc")),
            (b"conn_id=1&conn_id=2", "conn_id", Some("1")),
            (b"conn_idx=1", "conn_id", None),
            (b"xconn_id=1", "conn_id", None),
            (b"", "a", None),
            (b"a", "a", Some("")),
            (b"a=", "a", Some("")),
            (b"&&a=1&", "a", Some("1")),
            (b"a=x=y", "a", Some("x=y")),
            (b"a=hello+world", "a", Some("hello world")),
            (b"a=%41%62%2b", "a", Some("Ab+")),
            (b"a=%zz%4", "a", Some("%zz%4")),
            (b"a=100%", "a", Some("100%")),
            (b"a=%E2%98%83", "a", Some("\u{2603}")),
            (b"a=%FF", "a", Some("\u{FFFD}")),
            (b"conn%5Fid=1", "conn_id", Some("1")),
            (b"my+key=v", "my key", Some("v")),
        ];
        for (query, name, expected) in table {
            let got = query_param(query, name);
            assert_eq!(
                got.as_deref(),
                expected,
                "{:?} {name}",
                String::from_utf8_lossy(query)
            );
        }
    }

    #[test]
    fn query_param_borrows_when_possible() {
        assert!(matches!(
            query_param(b"a=plain", "a"),
            Some(Cow::Borrowed("plain"))
        ));
        assert!(matches!(query_param(b"a=x+y", "a"), Some(Cow::Owned(_))));
        // Invalid UTF-8 without escapes is still borrowed-then-replaced, never a panic.
        assert_eq!(query_param(b"a=\xff", "a").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn percent_decode_keeps_plus() {
        assert_eq!(
            percent_decode(b"/a%20b+c"),
            Cow::<[u8]>::Owned(b"/a b+c".to_vec())
        );
        assert!(matches!(
            percent_decode(b"/plain"),
            Cow::Borrowed(b"/plain")
        ));
    }

    // ---- responses ----

    fn response(
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        keep_alive: bool,
        head_only: bool,
    ) -> String {
        let mut out = BytesMut::new();
        write_response(&mut out, status, headers, body, keep_alive, head_only);
        String::from_utf8(out.to_vec()).expect("ascii")
    }

    #[test]
    fn write_response_table() {
        let json: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
        let table = [
            (
                response(200, json, b"{}", true, false),
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            ),
            (
                response(200, json, b"{}", true, true),
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
            ),
            (
                response(500, &[], b"Internal Server Error", false, false),
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 21\r\nConnection: close\r\n\r\nInternal Server Error",
            ),
            (
                response(404, &[("A", b"1"), ("B", b"2")], b"", true, false),
                "HTTP/1.1 404 Not Found\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n",
            ),
            (response(100, &[], b"", true, false), "HTTP/1.1 100 Continue\r\n\r\n"),
            (
                response(204, &[], b"ignored", false, false),
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            ),
            (response(299, &[], b"", true, false), "HTTP/1.1 299 Unknown\r\nContent-Length: 0\r\n\r\n"),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
        assert_eq!(
            response(100, &[], b"", false, false).as_bytes(),
            CONTINUE_100
        );
    }

    #[test]
    fn write_response_appends_and_counts_large_bodies() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let body = vec![b'x'; 1_234_567];
        write_response(&mut out, 200, &[], &body, true, false);
        let head = b"prefixHTTP/1.1 200 OK\r\nContent-Length: 1234567\r\n\r\n";
        assert_eq!(&out[..head.len()], head);
        assert_eq!(out.len(), head.len() + body.len());
    }

    #[test]
    fn put_decimal_edges() {
        for n in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
            let mut out = BytesMut::new();
            put_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn reasons() {
        let table = [
            (100, "Continue"),
            (101, "Switching Protocols"),
            (200, "OK"),
            (204, "No Content"),
            (302, "Found"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (406, "Not Acceptable"),
            (408, "Request Timeout"),
            (411, "Length Required"),
            (413, "Content Too Large"),
            (415, "Unsupported Media Type"),
            (422, "Unprocessable Content"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (999, "Unknown"),
        ];
        for (status, phrase) in table {
            assert_eq!(reason(status), phrase);
        }
    }
}
