//! The websocket phase of a connection: frames in, control frames answered, data messages
//! handed to the loop (or echoed, on the echo route).
//!
//! The frame assembler is allocated only while input is being assembled and dropped when the
//! connection is idle: most subscribers rarely send, and an idle socket should cost as little
//! memory as possible. The dialect's per-socket state is lent to the loop while the dialect
//! handles a message (`take_dialect_state` / `put_dialect_state`), so the dialect can act on
//! other connections of the same slab meanwhile.
//!
//! permessage-deflate: a connection that negotiated it keeps only the two-byte
//! [`Agreement`]; the inflater and compressors are the shard's (`proto::deflate::Codec`, lent to
//! [`Conn::next_ws_step`]), since neither direction keeps context between messages. A compressed
//! message is inflated whole once its last frame is in, under `max_message` (past it: 1009,
//! reported as [`WsStep::ProtocolError`] with `inflate_too_big`), bad deflate data or bad UTF-8
//! after inflation close 1007.

use super::{Conn, Phase, Socket};
use crate::dialect::WsRole;
use crate::proto::deflate::{Agreement, Codec, InflateError};
use crate::proto::ws::{self, Assembler, CloseCode, OpCode};
use bytes::Bytes;

/// Who serves the socket, with the dialect's state possibly lent out.
#[derive(Debug)]
enum Role<W> {
    Echo,
    Dialect(W),
    /// The dialect's state is with the loop for the length of one call.
    Lent,
}

/// Websocket state.
#[derive(Debug)]
pub struct WsState<W> {
    asm: Option<Box<Assembler>>,
    role: Role<W>,
    /// permessage-deflate, if negotiated.
    deflate: Option<Agreement>,
}

impl<W> WsState<W> {
    pub(super) fn new(role: WsRole<W>, deflate: Option<Agreement>) -> Self {
        WsState {
            asm: None,
            deflate,
            role: match role {
                WsRole::Echo => Role::Echo,
                WsRole::Dialect(w) => Role::Dialect(w),
            },
        }
    }

    pub(super) fn role(&self) -> Option<&WsRole<W>> {
        None.or(match &self.role {
            Role::Echo => Some(&WsRole::Echo),
            _ => None,
        })
    }

    /// The dialect's state, unless this is the echo route or the state is lent out.
    pub(super) fn dialect(&self) -> Option<&W> {
        match &self.role {
            Role::Dialect(w) => Some(w),
            Role::Echo | Role::Lent => None,
        }
    }

    pub(super) fn release_idle_assembler(&mut self) {
        if self
            .asm
            .as_ref()
            .is_some_and(|a| !a.in_message() && !a.is_closed())
        {
            self.asm = None;
        }
    }
}

/// What the websocket phase has for the loop.
#[derive(Debug)]
pub enum WsStep {
    /// Nothing more now (more bytes needed, closing, or output over the cap). `flush`:
    /// control answers or echoes were queued.
    Wait {
        /// Output was queued.
        flush: bool,
    },
    /// A complete data message for the dialect.
    Message {
        /// Text (`true`, valid UTF-8) or binary.
        text: bool,
        /// The payload.
        payload: Bytes,
    },
    /// The peer sent a close frame: the answer is queued and the connection closes after it.
    Closed,
    /// A protocol violation: a close frame with `code` is queued, the connection closes.
    ProtocolError {
        /// The close code sent.
        code: CloseCode,
        /// A compressed message inflated past the size limit (a zip bomb; `code` is 1009).
        inflate_too_big: bool,
    },
}

impl<S: Socket, W> Conn<S, W> {
    /// Run the websocket protocol over the buffered input until a data message for the
    /// dialect appears or nothing more can be done now. Pings are answered, the echo route
    /// echoes, a close is answered with the peer's code (never the reserved 1005).
    ///
    /// `codec` is the shard's permessage-deflate state: it inflates compressed messages and
    /// compresses echoes for a connection that negotiated the extension.
    pub fn next_ws_step(
        &mut self,
        max_message: usize,
        max_queued: usize,
        codec: &mut Codec,
    ) -> WsStep {
        let mut flush = false;
        loop {
            if self.is_closing() {
                return WsStep::Wait { flush };
            }
            let Phase::Ws(state) = &mut self.phase else {
                return WsStep::Wait { flush };
            };
            if self.out.queued() > max_queued {
                // Output back-pressure (echo replies, pongs): stop consuming input until the
                // peer drains what it was sent (resumed by the flush), so the kernel's window
                // throttles the sender and nothing queues without bound.
                return WsStep::Wait { flush };
            }
            let deflate = state.deflate;
            let asm = state.asm.get_or_insert_with(|| {
                Box::new(Assembler::with_deflate(max_message, deflate.is_some()))
            });
            let ev = match asm.next_event(&mut self.rbuf) {
                Ok(Some(ws::Event::Deflated { text, payload })) => {
                    match inflate(codec, &payload, text, max_message) {
                        Ok(ev) => ev,
                        Err((code, inflate_too_big)) => {
                            self.send_close(code);
                            return WsStep::ProtocolError {
                                code,
                                inflate_too_big,
                            };
                        }
                    }
                }
                Ok(Some(ev)) => ev,
                Ok(None) => return WsStep::Wait { flush },
                Err(e) => {
                    let code = e.close_code();
                    self.send_close(code);
                    return WsStep::ProtocolError {
                        code,
                        inflate_too_big: false,
                    };
                }
            };
            let echo = matches!(state.role, Role::Echo);
            match ev {
                ws::Event::Text(p) if echo => {
                    self.out.push(data_frame(OpCode::Text, &p, deflate, codec));
                    flush = true;
                }
                ws::Event::Binary(p) if echo => {
                    self.out
                        .push(data_frame(OpCode::Binary, &p, deflate, codec));
                    flush = true;
                }
                ws::Event::Text(payload) => {
                    return WsStep::Message {
                        text: true,
                        payload,
                    }
                }
                ws::Event::Binary(payload) => {
                    return WsStep::Message {
                        text: false,
                        payload,
                    }
                }
                ws::Event::Ping(p) => {
                    self.out.push(ws::encode_frame(ws::OpCode::Pong, &p));
                    flush = true;
                }
                ws::Event::Pong(_) => {}
                // Inflated above; the assembler yields it only with the extension negotiated.
                ws::Event::Deflated { .. } => {}
                ws::Event::Close { code, .. } => {
                    self.out.push(ws::encode_close_reply(code));
                    self.close_after_flush();
                    return WsStep::Closed;
                }
            }
        }
    }

    /// Queue a close frame with `code` and close after it (once: a second call does nothing).
    pub fn send_close(&mut self, code: CloseCode) {
        if !self.is_closing() {
            self.out.push(ws::encode_close(code, ""));
            self.close_after_flush();
        }
    }

    /// Borrow the dialect's per-socket state for one call (`None`: not a dialect socket).
    pub fn take_dialect_state(&mut self) -> Option<W> {
        let Phase::Ws(state) = &mut self.phase else {
            return None;
        };
        match std::mem::replace(&mut state.role, Role::Lent) {
            Role::Dialect(w) => Some(w),
            other => {
                state.role = other;
                None
            }
        }
    }

    /// Give the dialect's state back after `take_dialect_state`.
    pub fn put_dialect_state(&mut self, w: W) {
        if let Phase::Ws(state) = &mut self.phase {
            if matches!(state.role, Role::Lent) {
                state.role = Role::Dialect(w);
            }
        }
    }

    /// Whether this is a websocket (of any role).
    pub fn is_ws(&self) -> bool {
        matches!(self.phase, Phase::Ws(_))
    }

    /// The permessage-deflate agreement of this websocket, if it negotiated one.
    pub fn deflate(&self) -> Option<Agreement> {
        match &self.phase {
            Phase::Ws(w) => w.deflate,
            Phase::Http(_) => None,
        }
    }

    /// Queue one frame for a subscriber under the slow-consumer cap `max_queued`. A burst
    /// (one large batch) can pass the cap within one turn for a reader that keeps up, so the
    /// socket is first written as far as it takes; a reader still behind is sent a 1008 close
    /// and closed (its queue is full by definition, so the close is best-effort and never
    /// lands inside a partly written frame). Returns whether it was closed as slow.
    pub fn deliver(&mut self, frame: &Bytes, max_queued: usize) -> Delivery {
        if self.is_closing() || !self.is_ws() {
            return Delivery::Skipped;
        }
        if self.out.queued() + frame.len() > max_queued && self.out.flush(&mut self.stream).is_err()
        {
            self.out.clear();
            self.close_after_flush();
            return Delivery::Failed;
        }
        if self.out.queued() + frame.len() > max_queued {
            self.out.clear_unsent();
            self.out
                .push(ws::encode_close(CloseCode::Policy, "slow consumer"));
            self.close_after_flush();
            return Delivery::SlowConsumer;
        }
        self.out.push(frame.clone());
        Delivery::Queued
    }
}

/// What became of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the next flush.
    Queued,
    /// Not a websocket, or already closing: nothing done.
    Skipped,
    /// Closed 1008 as a slow consumer.
    SlowConsumer,
    /// The socket failed while making room: closed.
    Failed,
}

/// Inflate a compressed message and check a text's UTF-8: the event it stands for, or the close
/// code to fail with (and whether it was a zip bomb).
fn inflate(
    codec: &mut Codec,
    payload: &[u8],
    text: bool,
    max_message: usize,
) -> Result<ws::Event, (CloseCode, bool)> {
    match codec.inflate(payload, max_message) {
        Ok(data) if text => {
            if std::str::from_utf8(&data).is_ok() {
                Ok(ws::Event::Text(Bytes::from(data)))
            } else {
                Err((CloseCode::Invalid, false))
            }
        }
        Ok(data) => Ok(ws::Event::Binary(Bytes::from(data))),
        Err(InflateError::TooBig) => Err((CloseCode::Size, true)),
        Err(InflateError::Invalid) => Err((CloseCode::Invalid, false)),
    }
}

/// A data frame for this connection: compressed with the shard's codec when the connection
/// negotiated permessage-deflate and the message is worth it, else plain.
pub fn data_frame(
    op: OpCode,
    payload: &[u8],
    deflate: Option<Agreement>,
    codec: &mut Codec,
) -> Bytes {
    deflate
        .and_then(|a| a.compress_window())
        .and_then(|w| codec.deflate(w, op, payload))
        .unwrap_or_else(|| ws::encode_frame(op, payload))
}
