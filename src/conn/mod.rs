//! One client connection as a state machine: its socket, read buffer, output queue, protocol
//! phase and lifecycle.
//!
//! In the shape of sozu's sessions, a connection owns its behaviour and *returns* what it
//! wants from the loop (`Next`): keep going, flush, run again next turn, or be reaped. It never
//! touches the poll registry, the slab or other connections, so every transition can be tested
//! without a socket (`tests.rs` drives it over an in-memory `Socket`).
//!
//! Two axes of state:
//! * `Phase` — what the bytes mean: HTTP/1.1 (`http.rs`), upgraded in place to a websocket
//!   (`ws.rs`). The read buffer and output queue carry over an upgrade, so bytes a client
//!   pipelined behind its upgrade request are not lost.
//! * `Lifecycle` — how the connection ends: `Open`; `Closing` once its last output is queued
//!   (an HTTP `Connection: close`, a websocket close frame), with a deadline so a peer that
//!   never reads cannot hold it; `Lingering` after that output is flushed: the write side is
//!   shut down and input is read and discarded until EOF or a deadline, so the peer gets our
//!   last bytes instead of a RST.
//!
//! Who moves it: `Open → Closing` by the protocol (`close_after_flush`); `Closing → Lingering`
//! by `on_flushed`; any state → reaped by `Next::Reap` from `after_read` (EOF, I/O error),
//! `on_flushed` (peer already gone) or `on_timeout` (deadlines).

mod http;
pub mod out;
#[cfg(test)]
mod tests;
mod ws;

pub use http::{HttpStep, OwnedRequest, Parked};
pub use ws::{Delivery, WsStep};

use crate::dialect::WsRole;
use crate::error::CloseReason;
use crate::ids::Gen;
use crate::proto::ws::Assembler;
use bytes::BytesMut;
use out::{Flush, OutQueue};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes read from one socket per readiness event before yielding to other connections.
pub const READ_BUDGET: usize = 256 * 1024;

/// Size of the per-shard scratch buffer every `read` goes into (see `read_available`).
pub const READ_SCRATCH: usize = 64 * 1024;

/// How long a closing connection waits for its peer: to read our last bytes (`Closing`), and
/// to send its EOF (`Lingering`).
pub const LINGER: Duration = Duration::from_secs(2);

/// What a connection needs of its socket: reads, vectored writes, and a write-side shutdown.
///
/// A socket may be a transport with state of its own (TLS, `crate::tls::Stream`): then
/// `Write::flush` pushes what the transport still holds (`WouldBlock` while some remains),
/// and the provided methods below say what the connection cannot see in its own buffers.
/// The HTTP and websocket code above never learns which transport it runs on.
pub trait Socket: Read + Write {
    /// Shut down the write side (FIN; for TLS, `close_notify` first), keeping the read side
    /// open.
    fn shutdown_write(&mut self);

    /// The transport holds output of its own (TLS records, an alert) that a flush must push.
    fn has_pending_output(&self) -> bool {
        false
    }

    /// The transport's own handshake (TLS) is still running: no request can arrive yet, and
    /// the header timeout bounds how long that may take.
    fn establishing(&self) -> bool {
        false
    }

    /// Whether the transport is encrypted (the request's scheme is `https`/`wss`).
    fn is_secure(&self) -> bool {
        false
    }
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&mut self) {
        // Fails only if the peer is already gone; the next read reports that.
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// What the loop must do with a connection after a handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until the next event.
    Continue,
    /// Output was queued: flush it at the end of this turn.
    Flush,
    /// Input is buffered that this turn did not consume: run it again next turn.
    Requeue,
    /// Tear it down after this batch.
    Reap(CloseReason),
}

/// How the connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Serving.
    Open,
    /// Close once the queued output is flushed. The sweep sets `deadline` the first time it
    /// sees the connection closing; past it the connection is dropped unflushed.
    Closing {
        /// When to give up on flushing.
        deadline: Option<Instant>,
    },
    /// Output flushed and write side shut down; input is discarded until EOF or `until`.
    Lingering {
        /// When to give up waiting for the peer's EOF.
        until: Instant,
    },
}

/// The protocol phase.
#[derive(Debug)]
pub enum Phase<W> {
    /// HTTP/1.1 requests.
    Http(http::HttpState),
    /// An upgraded websocket.
    Ws(ws::WsState<W>),
}

/// Outcome of draining the socket's readable bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Read until WouldBlock.
    Drained,
    /// Budget used up with more to read: requeue.
    Budget,
    /// The peer closed its side.
    Eof,
}

/// Header and keep-alive timeouts, from the configured limits.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A partly received request head older than this is answered 408.
    pub header: Duration,
    /// An idle keep-alive connection older than this is closed.
    pub idle: Duration,
}

/// One connection. `S` is its socket (`mio::net::TcpStream` in the server), `W` the dialect's
/// per-websocket state.
#[derive(Debug)]
pub struct Conn<S, W> {
    /// The socket.
    pub stream: S,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Distinguishes this connection from earlier users of the same slab slot.
    pub gen: Gen,
    /// Unparsed input (only what has not been consumed yet).
    pub rbuf: BytesMut,
    /// Queued output.
    pub out: OutQueue,
    /// What the bytes mean.
    pub phase: Phase<W>,
    /// How it ends.
    pub lifecycle: Lifecycle,
    /// Start of the current partly received request head (header timeout), or of the idle
    /// period between keep-alive requests.
    pub waiting_since: Instant,
    /// Already in the shard's list of connections to flush this turn.
    pub dirty: bool,
    /// The peer half-closed (EOF) while an answer was still owed.
    pub peer_eof: bool,
    /// The last read stopped at its budget, not at `WouldBlock`: the socket may hold input no
    /// readiness edge will announce again (edge-triggered), so whatever unblocks the
    /// connection (a drained flush, an answer) must requeue it even with `rbuf` empty.
    pub unread: bool,
    /// Accepted, but its first request head (for a websocket: the upgrade request) has not
    /// fully arrived; such connections count against `--max-pending-handshakes`.
    pub handshake_pending: bool,
}

impl<S: Socket, W> Conn<S, W> {
    /// A freshly accepted connection, speaking HTTP.
    pub fn new(stream: S, peer: SocketAddr, gen: Gen, now: Instant) -> Self {
        Conn {
            stream,
            peer,
            gen,
            rbuf: BytesMut::new(),
            out: OutQueue::new(),
            phase: Phase::Http(http::HttpState::default()),
            lifecycle: Lifecycle::Open,
            waiting_since: now,
            dirty: false,
            peer_eof: false,
            unread: false,
            handshake_pending: true,
        }
    }

    /// Whether the connection is on its way out (closing or lingering).
    pub fn is_closing(&self) -> bool {
        self.lifecycle != Lifecycle::Open
    }

    /// Whether the write side is shut down and input is being discarded.
    pub fn is_lingering(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Lingering { .. })
    }

    /// Close once everything queued so far is flushed.
    pub fn close_after_flush(&mut self) {
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::Closing { deadline: None };
        }
    }

    /// Whether the loop must flush this connection: output is queued, or it is closing and
    /// the flush is what moves it on to lingering.
    pub fn needs_flush(&self) -> bool {
        !self.out.is_empty()
            || matches!(self.lifecycle, Lifecycle::Closing { .. })
            || self.stream.has_pending_output()
    }

    /// The largest read buffer worth holding in this phase: the largest acceptable unit plus
    /// what may follow it. The parsers reject a head, body or websocket message past its
    /// limit as soon as that is visible, so a buffer this size always makes progress.
    pub fn max_buffered(&self, limits: &crate::config::Limits) -> usize {
        64 * 1024
            + match self.phase {
                Phase::Http(_) => limits.max_head_bytes + limits.max_body_bytes,
                Phase::Ws(_) => limits.max_ws_message_bytes + crate::proto::ws::MAX_HEADER_LEN,
            }
    }

    /// Read until WouldBlock, EOF or the budget. `max_buffered` bounds the read buffer: a
    /// peer that sends faster than we parse is left in the kernel's buffer (TCP back-pressure).
    ///
    /// Reads land in the shard's `scratch` buffer and only the bytes received are appended
    /// to the connection's own buffer. A connection therefore holds as much input memory as
    /// it has unparsed input (a slowloris dribbling one byte at a time costs bytes, not a
    /// 16 KiB read buffer each), and no spare capacity is zero-filled before every `read`.
    /// While lingering, input is read and discarded.
    pub fn read_available(
        &mut self,
        max_buffered: usize,
        scratch: &mut [u8],
    ) -> io::Result<ReadOutcome> {
        let mut total = 0;
        let keep = !self.is_lingering();
        loop {
            if total >= READ_BUDGET || self.rbuf.len() >= max_buffered {
                return Ok(ReadOutcome::Budget);
            }
            let n = match self.stream.read(scratch) {
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Drained),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                },
            };
            if n == 0 {
                return Ok(ReadOutcome::Eof);
            }
            if keep {
                self.rbuf
                    .extend_from_slice(scratch.get(..n).unwrap_or_default());
            }
            total += n;
        }
    }

    /// Whether buffered input must wait: a request is parked (answers go out in order), or
    /// output is over its cap (back-pressure).
    pub fn input_blocked(&self, max_queued: usize) -> bool {
        let parked = matches!(&self.phase, Phase::Http(h) if h.is_parked());
        parked || self.out.queued() > max_queued
    }

    /// After the protocol ran over what `read_available` returned with `outcome`.
    pub fn after_read(&mut self, outcome: ReadOutcome, max_queued: usize) -> Next {
        self.unread = outcome == ReadOutcome::Budget;
        match outcome {
            ReadOutcome::Drained => Next::Continue,
            // A connection that cannot consume its input right now is not requeued: that
            // would spin. Whatever unblocks it (the answer, a drained flush) requeues it.
            ReadOutcome::Budget if self.input_blocked(max_queued) => Next::Continue,
            ReadOutcome::Budget => Next::Requeue,
            ReadOutcome::Eof => self.on_eof(),
        }
    }

    /// The peer half-closed. It has sent everything it will send: answer what is in flight
    /// (a parked request, queued output), then close; with nothing owed, close now.
    fn on_eof(&mut self) -> Next {
        if self.is_lingering() {
            return Next::Reap(CloseReason::PeerClosed);
        }
        let parked = matches!(&self.phase, Phase::Http(h) if h.is_parked());
        if !parked && self.out.is_empty() {
            return Next::Reap(CloseReason::PeerClosed);
        }
        self.peer_eof = true;
        if !parked {
            self.close_after_flush();
        }
        Next::Continue
    }

    /// Write what is queued and move on from the result (`on_flushed`).
    /// The transport's own output (TLS records) counts: `Drained` only once it is out too.
    pub fn flush(&mut self, now: Instant) -> Next {
        let result = self.out.flush(&mut self.stream).and_then(|f| match f {
            Flush::Blocked => Ok(Flush::Blocked),
            Flush::Drained => match self.stream.flush() {
                Ok(()) => Ok(Flush::Drained),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flush::Blocked),
                Err(e) => Err(e),
            },
        });
        self.on_flushed(result, now)
    }

    /// A flush attempt returned `result`.
    pub fn on_flushed(&mut self, result: io::Result<Flush>, now: Instant) -> Next {
        match result {
            Err(_) => Next::Reap(CloseReason::Io),
            Ok(Flush::Blocked) => Next::Continue,
            Ok(Flush::Drained) => match self.lifecycle {
                // The peer already half-closed: nothing to linger for.
                Lifecycle::Closing { .. } if self.peer_eof => Next::Reap(CloseReason::PeerClosed),
                Lifecycle::Closing { .. } => {
                    self.stream.shutdown_write();
                    self.rbuf.clear();
                    self.lifecycle = Lifecycle::Lingering {
                        until: now + LINGER,
                    };
                    Next::Continue
                }
                Lifecycle::Lingering { .. } => Next::Continue,
                // Input may have been left unread behind output back-pressure, buffered or
                // still in the socket.
                Lifecycle::Open if !self.rbuf.is_empty() || self.unread => Next::Requeue,
                Lifecycle::Open => Next::Continue,
            },
        }
    }

    /// The periodic sweep: lingering and closing deadlines, header (408) and idle timeouts.
    /// Returns `Flush` only when it queued a 408 answer.
    pub fn on_timeout(&mut self, now: Instant, t: &Timeouts, date: &[u8]) -> Next {
        match self.lifecycle {
            Lifecycle::Lingering { until } if now >= until => {
                return Next::Reap(CloseReason::Timeout)
            }
            Lifecycle::Lingering { .. } => return Next::Continue,
            // A peer that never reads cannot hold a closing connection open: its final bytes
            // get LINGER to leave, then the socket is dropped.
            Lifecycle::Closing { deadline: None } => {
                self.lifecycle = Lifecycle::Closing {
                    deadline: Some(now + LINGER),
                };
                return Next::Continue;
            }
            Lifecycle::Closing { deadline: Some(d) } if now >= d => {
                return Next::Reap(CloseReason::Timeout)
            }
            Lifecycle::Closing { .. } => return Next::Continue,
            Lifecycle::Open => {}
        }
        let waited = now.saturating_duration_since(self.waiting_since);
        if self.stream.establishing() {
            // A TLS handshake that has not finished within the header timeout: nothing can be
            // answered (no request, no keys), so the connection is just dropped.
            return if waited >= t.header {
                Next::Reap(CloseReason::Timeout)
            } else {
                Next::Continue
            };
        }
        let Phase::Http(h) = &self.phase else {
            return Next::Continue;
        };
        if h.is_parked() {
            return Next::Continue;
        }
        if !self.rbuf.is_empty() && waited >= t.header {
            self.rbuf.clear();
            let r = crate::dialect::Response::text_and_close(408, "Request Timeout");
            self.respond(&r, false, false, date);
            Next::Flush
        } else if self.rbuf.is_empty() && waited >= t.idle {
            Next::Reap(CloseReason::Timeout)
        } else {
            Next::Continue
        }
    }

    /// Idle connections keep no read buffer, no frame assembler and no output buffer (memory
    /// per socket). The read buffer unconditionally: an empty remainder of `split_to` has no
    /// capacity but still holds the whole allocation it was split from.
    pub fn release_idle_buffers(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
            if let Phase::Ws(w) = &mut self.phase {
                w.release_idle_assembler();
            }
        }
    }

    /// The websocket's role, if it is one.
    pub fn ws_role(&self) -> Option<&WsRole<W>> {
        match &self.phase {
            Phase::Ws(w) => w.role(),
            Phase::Http(_) => None,
        }
    }

    /// The dialect's per-socket state of a websocket it serves (`None`: HTTP, the echo route,
    /// or the state is lent to a dialect call).
    pub fn dialect_state(&self) -> Option<&W> {
        match &self.phase {
            Phase::Ws(w) => w.dialect(),
            Phase::Http(_) => None,
        }
    }

    /// Size of the frame assembler type (memory accounting in tests).
    pub const ASSEMBLER_SIZE: usize = std::mem::size_of::<Assembler>();
}
