//! HTTP/1.1 requests (heads via httparse, bodies) and response encoding.
//!
//! Why our own layer instead of a server crate: the reactor owns the socket and the read buffer,
//! and must be able to upgrade a connection to RFC 6455 in place. So this module is pure: it reads
//! `&[u8]`, reports incomplete input without consuming anything, and records byte ranges
//! ([`Span`]) instead of borrows, so the caller may keep mutating or freezing its `BytesMut`
//! afterwards (pingora's `BufRef` pattern).
//!
//! One concern per file:
//! - [`head`]: request line and headers ([`parse_head`], [`RequestHead`], [`Span`]).
//! - [`body`]: body framing ([`BodyKind`]) and chunked decoding ([`decode_chunked`]).
//! - [`request`]: head + body as one incremental step ([`parse_request`]).
//! - [`query`]: query strings and percent-decoding ([`query_param`]).
//! - [`response`]: [`write_response`] of a [`Head`], reason phrases, [`CONTINUE_100`].
//! - [`error`]: [`HttpError`] and its status code.
//!
//! Invariants the reactor relies on:
//! - [`parse_head`] allocates nothing on the heap.
//! - Every limit is enforced *before* the input is complete, so a slow or hostile peer cannot
//!   make us buffer more than `max_head` bytes of head or `max_body` bytes of body.
//! - Body framing is decided conservatively (RFC 9112 §6): ambiguous framing is an error, never a
//!   guess, because guessing is what request smuggling exploits.
//! - Every error means "answer with `status()` and close"; none of them is recoverable on the
//!   same connection because the framing of what follows is unknown.

pub mod body;
pub mod error;
pub mod head;
pub mod query;
pub mod request;
pub mod response;

#[cfg(test)]
mod fixtures;

pub use body::{decode_chunked, BodyKind};
pub use error::HttpError;
pub use head::{parse_head, Method, RequestHead, Span, MAX_HEADERS};
pub use query::{percent_decode, query_param};
pub use request::{parse_request, Body, ParsedRequest, RequestStatus};
pub use response::{reason, write_response, Head, CONTINUE_100};

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Largest request head (request line + headers + CRLFCRLF) in bytes → 431.
    pub max_head: usize,
    /// Most headers in one request → 431. Values above [`MAX_HEADERS`] act as [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Largest request body (after de-chunking) → 413.
    pub max_body: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}
