//! The HTTP/1.1 phase of a connection: request framing, 100-continue, parking a request
//! while its answer is computed elsewhere, answers in request order, upgrade.
//!
//! Pipelining: requests are taken one at a time; while one is parked the rest wait in the
//! read buffer, and the answer's arrival requeues the connection to run them. A client that
//! pipelines without reading its answers stops being parsed once its output passes the cap
//! (TCP throttles it meanwhile), and is resumed by the flush that drains it.

use super::{Conn, Next, Phase, Socket};
use crate::dialect::{Header, Response, WsRole};
use crate::proto::deflate::Agreement;
use crate::proto::http::{self, Body, Method, RequestHead, RequestStatus};
use bytes::Bytes;
use std::time::Instant;

/// HTTP state between requests.
#[derive(Debug, Default)]
pub struct HttpState {
    /// A request waiting for its answer. Pipelined requests behind it wait.
    parked: Option<Parked>,
    /// `100 Continue` already sent for the request being read.
    sent_continue: bool,
}

impl HttpState {
    /// Whether a request is waiting for its answer.
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }
}

/// What is needed to write the answer of a parked request.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    /// The request asked to keep the connection open.
    pub keep_alive: bool,
    /// A `HEAD` request: no body in the answer.
    pub head_only: bool,
    /// Headers added to a 200 answer.
    pub success_headers: &'static [Header],
}

/// One complete request, owning its bytes.
#[derive(Debug)]
pub struct OwnedRequest {
    /// The head; its spans index into `head_bytes`.
    pub head: RequestHead,
    /// The head's bytes.
    pub head_bytes: Bytes,
    /// The body (a zero-copy slice of the read buffer, or the de-chunked body).
    pub body: Bytes,
}

impl OwnedRequest {
    /// Whether the client wants the connection kept open after the answer.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }

    /// Whether the answer carries no body (`HEAD`).
    pub fn head_only(&self) -> bool {
        self.head.method == Method::Head
    }
}

/// What the HTTP phase has for the loop. Returned by value once per request and moved
/// straight into the dispatch: boxing the large variant would cost an allocation per request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum HttpStep {
    /// Nothing more now: more bytes are needed, a request is parked, the connection is
    /// closing or its output is over the cap. `flush`: output was queued (100 Continue).
    Wait {
        /// Output was queued.
        flush: bool,
    },
    /// A complete request, taken out of the read buffer.
    Request(OwnedRequest),
    /// A malformed request: its error answer is queued and the connection closes after it.
    Malformed,
}

impl<S: Socket, W> Conn<S, W> {
    /// Take the next complete request out of the read buffer, if there is one to run now.
    pub fn next_request(
        &mut self,
        limits: &http::ParseLimits,
        max_queued: usize,
        date: &[u8],
    ) -> HttpStep {
        let wait = HttpStep::Wait { flush: false };
        if self.is_closing() || self.rbuf.is_empty() {
            return wait;
        }
        let Phase::Http(state) = &mut self.phase else {
            return wait;
        };
        if state.parked.is_some() || self.out.queued() > max_queued {
            return wait;
        }
        let parsed = match http::parse_request(&self.rbuf, limits, state.sent_continue) {
            Ok(p) => p,
            Err(e) => {
                let r = Response::text_and_close(e.status(), e.to_string());
                self.respond(&r, false, false, date);
                return HttpStep::Malformed;
            }
        };
        let req = match parsed {
            RequestStatus::Partial => return wait,
            RequestStatus::AwaitingBody { send_continue } => {
                self.handshake_pending = false;
                if send_continue {
                    state.sent_continue = true;
                    self.out.push(Bytes::from_static(http::CONTINUE_100));
                    return HttpStep::Wait { flush: true };
                }
                return wait;
            }
            RequestStatus::Complete(req) => req,
        };
        self.handshake_pending = false;
        state.sent_continue = false;
        // Content-Length bodies are zero-copy slices of the read buffer.
        let all = self.rbuf.split_to(req.consumed).freeze();
        let body = match req.body {
            Body::InBuffer { start, end } => all.slice(start..end),
            Body::Decoded(b) => Bytes::from(b),
        };
        let (head, head_len) = (req.head, req.head_len);
        HttpStep::Request(OwnedRequest {
            head,
            head_bytes: all.slice(..head_len),
            body,
        })
    }

    /// Queue an answer. Closes after it when the client or the response says so.
    pub fn respond(&mut self, r: &Response, keep_alive: bool, head_only: bool, date: &[u8]) {
        let (bytes, stays_open) = r.encode(date, keep_alive, head_only);
        self.out.push(bytes);
        if !stays_open {
            self.close_after_flush();
        }
    }

    /// Whether a request is waiting for its answer.
    pub fn is_parked(&self) -> bool {
        matches!(&self.phase, Phase::Http(h) if h.is_parked())
    }

    /// Hold the request until its answer arrives (`on_reply`).
    pub fn park(&mut self, parked: Parked) {
        if let Phase::Http(state) = &mut self.phase {
            state.parked = Some(parked);
        }
    }

    /// The answer to the parked request arrived. A client that half-closed meanwhile gets it
    /// and then the connection closes; pipelined requests behind it run next turn.
    pub fn on_reply(&mut self, response: Response, date: &[u8], now: Instant) -> Next {
        let Phase::Http(state) = &mut self.phase else {
            return Next::Continue;
        };
        let Some(p) = state.parked.take() else {
            return Next::Continue;
        };
        let r = if response.status == 200 && !p.success_headers.is_empty() {
            response.with_headers(p.success_headers)
        } else {
            response
        };
        let keep_alive = p.keep_alive && !self.peer_eof;
        self.respond(&r, keep_alive, p.head_only, date);
        self.waiting_since = now;
        if self.rbuf.is_empty() && !self.unread {
            Next::Flush
        } else {
            Next::Requeue
        }
    }

    /// Complete a websocket handshake: queue the 101 and switch to the websocket phase (or,
    /// with no role, close after the 101 as Channelstream does for a bad `conn_id`).
    ///
    /// `deflate`: the permessage-deflate agreement, answered in the 101's
    /// `Sec-WebSocket-Extensions` (only for a socket that stays open).
    pub fn upgrade(&mut self, accept: &str, role: Option<WsRole<W>>, deflate: Option<Agreement>) {
        match role {
            Some(role) => {
                let ext = deflate.map(|a| a.response_value());
                let head = crate::proto::handshake::response_101_with(accept, ext.as_deref());
                self.out.push(Bytes::from(head));
                self.phase = Phase::Ws(super::ws::WsState::new(role, deflate));
            }
            None => {
                let head = crate::proto::handshake::response_101(accept);
                self.out.push(Bytes::from(head));
                self.close_after_flush();
            }
        }
    }
}
