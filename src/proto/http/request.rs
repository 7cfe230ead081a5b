//! One whole request, head and body, as a single pure incremental step: [`parse_request`].
//!
//! Why: the reactor used to glue [`parse_head`], the [`BodyKind`] match and [`decode_chunked`]
//! together inline, with the `Expect: 100-continue` decision in the middle. Here the same logic
//! is one function of `(bytes so far, limits, whether 100 Continue was already sent)`, so it has
//! table tests, a fuzz target (`fuzz/fuzz_targets/http_request.rs`) and a bench, and the reactor
//! only has to act on the [`RequestStatus`] it returns.
//!
//! Invariants:
//! - Pure and restartable: nothing is consumed or remembered between calls. The caller calls
//!   again with the same buffer plus whatever arrived; the head is re-parsed each time (it is
//!   bounded by `max_head` and allocation-free). Only `continue_sent` carries state, and the
//!   caller owns it.
//! - The result for a complete request does not depend on bytes after it (pipelining): every
//!   offset is relative to the start of `buf` and [`ParsedRequest::consumed`] says where the next
//!   request begins.
//! - Errors are those of [`parse_head`] and [`decode_chunked`], unchanged (413 over `max_body`
//!   at head time for `Content-Length`, at the offending chunk-size line for `chunked`).
//! - `Content-Length` bodies are never copied: [`Body::InBuffer`] is a range of `buf`.

use super::body::{decode_chunked, BodyKind};
use super::head::{parse_head, RequestHead};
use super::{HttpError, ParseLimits};

/// Where a request stands after the bytes received so far.
// `Complete` carries the ~1 KiB span table of a `RequestHead` by design (heads are parsed without
// the allocator); boxing it would add an allocation per request to save stack for one call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RequestStatus {
    /// The head is incomplete: wait for more bytes.
    Partial,
    /// The head is complete (and valid) but the body is still arriving: wait for more bytes.
    /// `send_continue`: the head asked for `Expect: 100-continue` (HTTP/1.1 only) and the caller
    /// has not sent [`super::CONTINUE_100`] yet (`continue_sent` was false); the caller should
    /// send it now and remember that it did.
    AwaitingBody {
        /// Send `100 Continue` now (see above).
        send_continue: bool,
    },
    /// A whole request is in the buffer.
    Complete(ParsedRequest),
}

/// A complete request: its head and where its body is.
#[derive(Debug)]
pub struct ParsedRequest {
    /// Spans in `head` index into the `buf` given to [`parse_request`].
    pub head: RequestHead,
    /// Bytes of the head (leading empty lines included): the body, if any, starts here.
    pub head_len: usize,
    /// Bytes the whole request (head + body as on the wire) occupies at the front of `buf`.
    pub consumed: usize,
    /// Where the body's bytes are.
    pub body: Body,
}

/// The body of a complete request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body or a `Content-Length` one: the range `start..end` of the parsed buffer
    /// (zero-copy; empty, `head_len..head_len`, when the request has no body).
    InBuffer {
        /// Offset of the body's first byte in the buffer.
        start: usize,
        /// Offset one past the body's last byte.
        end: usize,
    },
    /// A `chunked` body, de-chunked (at most `max_body` bytes).
    Decoded(Vec<u8>),
}

impl Body {
    /// The body's bytes; `buf` must be the buffer given to [`parse_request`].
    pub fn bytes<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match self {
            Body::InBuffer { start, end } => buf.get(*start..*end).unwrap_or(&[]),
            Body::Decoded(body) => body,
        }
    }

    /// Length of the body after de-chunking.
    pub fn len(&self) -> usize {
        match self {
            Body::InBuffer { start, end } => end.saturating_sub(*start),
            Body::Decoded(body) => body.len(),
        }
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frame one request at the front of `buf`: head, then body by its framing.
///
/// `continue_sent`: whether the caller already answered this request's `Expect: 100-continue`
/// with [`super::CONTINUE_100`]; it only affects [`RequestStatus::AwaitingBody`]. A request whose
/// body is already complete (or that has none) never asks for a 100 Continue.
pub fn parse_request(
    buf: &[u8],
    limits: &ParseLimits,
    continue_sent: bool,
) -> Result<RequestStatus, HttpError> {
    let Some((head, head_len)) = parse_head(buf, limits)? else {
        return Ok(RequestStatus::Partial);
    };
    // (bytes the body occupies on the wire, the body)
    let body = match head.body {
        BodyKind::None => Some((
            0,
            Body::InBuffer {
                start: head_len,
                end: head_len,
            },
        )),
        BodyKind::Length(n) => {
            // `n <= max_body` was checked by parse_head; saturate rather than wrap should
            // max_body be near usize::MAX (such a body can never be complete).
            let end = head_len.saturating_add(n);
            (buf.len() >= end).then_some((
                n,
                Body::InBuffer {
                    start: head_len,
                    end,
                },
            ))
        }
        BodyKind::Chunked => {
            let rest = buf.get(head_len..).unwrap_or(&[]);
            decode_chunked(rest, limits.max_body)?.map(|(b, used)| (used, Body::Decoded(b)))
        }
    };
    Ok(match body {
        None => RequestStatus::AwaitingBody {
            send_continue: head.expect_continue && !continue_sent,
        },
        Some((body_len, body)) => RequestStatus::Complete(ParsedRequest {
            head,
            head_len,
            consumed: head_len + body_len,
            body,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    /// The framing the reactor did inline before `parse_request` existed, kept as the reference:
    /// `Ok(None)` = wait, `Ok(Some(None))` = head complete but body not,
    /// `Ok(Some(Some((head_len, consumed, body))))` = complete.
    #[allow(clippy::type_complexity)]
    fn reference(
        buf: &[u8],
        limits: &ParseLimits,
    ) -> Result<Option<Option<(usize, usize, Vec<u8>)>>, HttpError> {
        let Some((head, head_len)) = parse_head(buf, limits)? else {
            return Ok(None);
        };
        let body = match head.body {
            BodyKind::None => Some((0, None)),
            BodyKind::Length(n) => (buf.len() >= head_len + n).then_some((n, None)),
            BodyKind::Chunked => {
                decode_chunked(&buf[head_len..], limits.max_body)?.map(|(b, used)| (used, Some(b)))
            }
        };
        Ok(Some(body.map(|(body_len, decoded)| {
            let all = &buf[..head_len + body_len];
            let body = decoded.unwrap_or_else(|| all[head_len..].to_vec());
            (head_len, head_len + body_len, body)
        })))
    }

    /// What `parse_request` says, in the reference's shape (plus the continue flag).
    #[allow(clippy::type_complexity)]
    fn simplify(
        buf: &[u8],
        got: Result<RequestStatus, HttpError>,
    ) -> Result<Option<Option<(usize, usize, Vec<u8>)>>, HttpError> {
        got.map(|status| match status {
            RequestStatus::Partial => None,
            RequestStatus::AwaitingBody { .. } => Some(None),
            RequestStatus::Complete(r) => {
                Some(Some((r.head_len, r.consumed, r.body.bytes(buf).to_vec())))
            }
        })
    }

    fn complete(buf: &[u8], limits: &ParseLimits) -> ParsedRequest {
        match parse_request(buf, limits, false) {
            Ok(RequestStatus::Complete(r)) => r,
            other => panic!(
                "expected a complete request for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    const CHUNKED: &[u8] = b"POST /message HTTP/1.1\r\n\
Transfer-Encoding: chunked\r\n\
Expect: 100-continue\r\n\r\n\
5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nChecksum: abc\r\nX-Other: 1\r\n\r\n";

    const EXPECT_LENGTH: &[u8] =
        b"PUT /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";

    #[test]
    fn table() {
        // (request, head_len, body); every sample is complete and followed by nothing.
        let table: [(&[u8], usize, &[u8]); 5] = [
            (WS_GET, WS_GET.len(), b""),
            (POST, POST.len() - 5, b"hello"),
            (CHUNKED, 76, b"hello world"),
            (EXPECT_LENGTH, EXPECT_LENGTH.len() - 3, b"abc"),
            (b"\r\nGET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 39, b""),
        ];
        for (buf, head_len, body) in table {
            let name = String::from_utf8_lossy(buf);
            let r = complete(buf, &LIMITS);
            assert_eq!(r.head_len, head_len, "{name}");
            assert_eq!(r.consumed, buf.len(), "{name}");
            assert_eq!(r.body.bytes(buf), body, "{name}");
            assert_eq!(r.body.len(), body.len(), "{name}");
            assert_eq!(r.body.is_empty(), body.is_empty(), "{name}");
            assert_eq!(&buf[..r.head_len], &buf[..head_len]);
        }
        // Content-Length bodies stay in the buffer, chunked ones are decoded.
        assert_eq!(
            complete(POST, &LIMITS).body,
            Body::InBuffer {
                start: POST.len() - 5,
                end: POST.len()
            }
        );
        assert_eq!(
            complete(WS_GET, &LIMITS).body,
            Body::InBuffer {
                start: WS_GET.len(),
                end: WS_GET.len()
            }
        );
        assert_eq!(
            complete(CHUNKED, &LIMITS).body,
            Body::Decoded(b"hello world".to_vec())
        );
    }

    #[test]
    fn incomplete_at_every_byte_boundary() {
        for sample in [WS_GET, POST, CHUNKED, EXPECT_LENGTH] {
            let full = complete(sample, &LIMITS);
            for cut in 0..sample.len() {
                let got = parse_request(&sample[..cut], &LIMITS, false);
                if cut < full.head_len {
                    assert!(
                        matches!(got, Ok(RequestStatus::Partial)),
                        "cut {cut}: {got:?}"
                    );
                } else {
                    let want_continue = full.head.expect_continue;
                    assert!(
                        matches!(got, Ok(RequestStatus::AwaitingBody { send_continue }) if send_continue == want_continue),
                        "cut {cut}: {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn pipelined_bytes_after_the_request_do_not_matter() {
        for sample in [WS_GET, POST, CHUNKED, EXPECT_LENGTH] {
            let mut buf = sample.to_vec();
            buf.extend_from_slice(WS_GET);
            let r = complete(&buf, &LIMITS);
            assert_eq!(r.consumed, sample.len());
            assert_eq!(
                r.body.bytes(&buf),
                complete(sample, &LIMITS).body.bytes(sample)
            );
            let next = complete(&buf[r.consumed..], &LIMITS);
            assert_eq!(next.consumed, WS_GET.len());
        }
    }

    #[test]
    fn hundred_continue() {
        let head_only = &EXPECT_LENGTH[..EXPECT_LENGTH.len() - 3];
        // (input, continue_sent, send_continue)
        let table: [(&[u8], bool, bool); 6] = [
            (head_only, false, true),
            (head_only, true, false),
            (&CHUNKED[..80], false, true),
            (&CHUNKED[..80], true, false),
            // HTTP/1.0 clients' Expect is ignored (RFC 9110 §10.1.1).
            (
                b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                false,
                false,
            ),
            // No Expect header.
            (&POST[..POST.len() - 1], false, false),
        ];
        for (buf, sent, want) in table {
            let got = parse_request(buf, &LIMITS, sent);
            assert!(
                matches!(got, Ok(RequestStatus::AwaitingBody { send_continue }) if send_continue == want),
                "{:?} sent={sent}: {got:?}",
                String::from_utf8_lossy(buf)
            );
        }
        // A body that is already complete, or none at all, never asks for a 100 Continue.
        assert!(matches!(
            parse_request(EXPECT_LENGTH, &LIMITS, false),
            Ok(RequestStatus::Complete(_))
        ));
        let no_body = b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
        assert!(matches!(
            parse_request(no_body, &LIMITS, false),
            Ok(RequestStatus::Complete(_))
        ));
    }

    #[test]
    fn errors() {
        let small = ParseLimits {
            max_body: 4,
            ..LIMITS
        };
        // (input, limits, error)
        let table: [(&[u8], ParseLimits, HttpError); 7] = [
            (POST, small, HttpError::BodyTooLarge),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
                small,
                HttpError::BodyTooLarge,
            ),
            // Over max_body in the sum of chunks, before the data arrives.
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n",
                small,
                HttpError::BodyTooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                LIMITS,
                HttpError::Malformed("chunk size is not hex"),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
                LIMITS,
                HttpError::Malformed("both Content-Length and Transfer-Encoding"),
            ),
            (
                b"GET / HTTP/2.0\r\n\r\n",
                LIMITS,
                HttpError::VersionNotSupported,
            ),
            (
                b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n",
                LIMITS,
                HttpError::Malformed("invalid header value"),
            ),
        ];
        for (buf, limits, want) in table {
            let got = parse_request(buf, &limits, false).map(|_| ());
            assert_eq!(got, Err(want.clone()), "{:?}", String::from_utf8_lossy(buf));
            assert_eq!(
                want.status(),
                parse_request(buf, &limits, true)
                    .err()
                    .map_or(0, |e| e.status())
            );
        }
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        // A head that never ends: 431 once past max_head.
        let tiny = ParseLimits {
            max_head: 16,
            ..LIMITS
        };
        assert_eq!(
            parse_request(WS_GET, &tiny, false).map(|_| ()),
            Err(HttpError::HeaderTooLarge)
        );
    }

    #[test]
    fn same_as_the_inline_reactor_framing() {
        let small = ParseLimits {
            max_head: 64,
            max_headers: 3,
            max_body: 8,
        };
        let mut samples: Vec<Vec<u8>> = [WS_GET, POST, CHUNKED, EXPECT_LENGTH]
            .iter()
            .map(|s| s.to_vec())
            .collect();
        samples.push(req("Content-Length: 9\r\n"));
        samples.push(req("Transfer-Encoding: gzip, chunked\r\n"));
        samples.push(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n".to_vec());
        for sample in &samples {
            for limits in [LIMITS, small] {
                for cut in 0..=sample.len() {
                    let buf = &sample[..cut];
                    for sent in [false, true] {
                        assert_eq!(
                            simplify(buf, parse_request(buf, &limits, sent)),
                            reference(buf, &limits),
                            "{:?} {limits:?}",
                            String::from_utf8_lossy(buf)
                        );
                    }
                }
            }
        }
    }
}
