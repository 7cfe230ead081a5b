//! Request bodies: how a body is framed (`Content-Length` or `chunked`, judged from the head's
//! headers) and the chunked-coding decoder.
//!
//! Why a separate module: framing is where request smuggling lives, so the rules are kept in one
//! place and tested as a table. [`super::parse_request`] puts the two halves together.
//!
//! Invariants:
//! - Framing is decided conservatively (RFC 9112 §6): ambiguous framing is an error, never a
//!   guess, and header order cannot change the outcome.
//! - `max_body` is enforced before the body arrives: at head time for `Content-Length`, at each
//!   chunk-size line for `chunked`. Chunk extensions and trailers have their own byte budgets.
//! - [`decode_chunked`] is a pure function of its input: incomplete input returns `Ok(None)` and
//!   allocates nothing, so the caller may simply call it again when more bytes arrive.

use super::head::{list_tokens, trim_ows};
use super::HttpError;

/// Longest chunk-size line (size, extensions, not the CRLF) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// Total chunk-extension bytes allowed in one body. Without it, 1 KiB of extension per 1-byte
/// chunk would let a peer send ~1000x `max_body` bytes of wire for one request.
const MAX_CHUNK_EXT_TOTAL: usize = 16 * 1024;
/// Total trailer-section bytes allowed after the last chunk (skipped, never stored).
const MAX_TRAILERS: usize = 16 * 1024;

/// How the body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` was sent.
    None,
    /// Exactly this many bytes, from `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Body-framing facts gathered over all headers, judged once at the end so that header order
/// cannot change the outcome.
#[derive(Default)]
pub(super) struct Framing {
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
    pub(super) fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
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

    pub(super) fn transfer_encoding(&mut self, value: &[u8]) {
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

    pub(super) fn finish(self, minor_version: u8, max_body: usize) -> Result<BodyKind, HttpError> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{parse_head, ParseLimits, RequestHead};
    use super::*;

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
    fn max_body_limit_at_head_time() {
        let limits = ParseLimits {
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
}
