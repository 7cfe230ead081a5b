//! The websocket phase of a connection: frames in, control frames answered, data messages
//! handed to the loop (or echoed, on the echo route).
//!
//! The frame assembler is allocated only while input is being assembled and dropped when the
//! connection is idle: most subscribers rarely send, and an idle socket should cost as little
//! memory as possible. The dialect's per-socket state is lent to the loop while the dialect
//! handles a message (`take_dialect_state` / `put_dialect_state`), so the dialect can act on
//! other connections of the same slab meanwhile.

use super::{Conn, Phase, Socket};
use crate::dialect::WsRole;
use crate::proto::ws::{self, Assembler, CloseCode};
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
}

impl<W> WsState<W> {
    pub(super) fn new(role: WsRole<W>) -> Self {
        WsState {
            asm: None,
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
    },
}

impl<S: Socket, W> Conn<S, W> {
    /// Run the websocket protocol over the buffered input until a data message for the
    /// dialect appears or nothing more can be done now. Pings are answered, the echo route
    /// echoes, a close is answered with the peer's code (never the reserved 1005).
    pub fn next_ws_step(&mut self, max_message: usize, max_queued: usize) -> WsStep {
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
            let asm = state
                .asm
                .get_or_insert_with(|| Box::new(Assembler::new(max_message)));
            let ev = match asm.next_event(&mut self.rbuf) {
                Ok(Some(ev)) => ev,
                Ok(None) => return WsStep::Wait { flush },
                Err(e) => {
                    let code = e.close_code();
                    self.send_close(code);
                    return WsStep::ProtocolError { code };
                }
            };
            let echo = matches!(state.role, Role::Echo);
            match ev {
                ws::Event::Text(p) if echo => {
                    self.out.push(ws::encode_frame(ws::OpCode::Text, &p));
                    flush = true;
                }
                ws::Event::Binary(p) if echo => {
                    self.out.push(ws::encode_frame(ws::OpCode::Binary, &p));
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
