//! HTTP/1.1 request heads (httparse) and bodies, and response encoding.
//! STUB: owned by the HTTP work; the signatures below are the contract.
#![allow(unused_variables)]

use bytes::BytesMut;
use std::borrow::Cow;

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request head (request line + headers + CRLFCRLF) in bytes → 431.
    pub max_head: usize,
    /// Most headers in one request → 431.
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

/// How the body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(usize),
    Chunked,
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
}

impl RequestHead {
    /// First value of header `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        todo!()
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
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeaderTooLarge => 431,
            HttpError::BodyTooLarge => 413,
        }
    }
}

/// Parse a request head. `Ok(None)` = incomplete (nothing consumed).
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HttpError> {
    todo!()
}

/// Decode a complete chunked body from the start of `buf`: `Ok(Some((body, consumed)))`.
pub fn decode_chunked(buf: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    todo!()
}

/// First value of `name` in a query string / form body, percent- and `+`-decoded.
pub fn query_param<'a>(query: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    todo!()
}

/// Reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    todo!()
}

/// Append a full response: status line, the given headers, `Content-Length` (always, also for
/// HEAD where the body is then omitted), `Connection: close` when `!keep_alive`, and the body.
pub fn write_response(
    out: &mut BytesMut,
    status: u16,
    headers: &[(&str, &[u8])],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    todo!()
}
