//! One client connection: its socket, read buffer, output queue and protocol phase.
//!
//! A connection is an enum state machine (`Phase`): it starts as HTTP/1.1 and may be upgraded
//! in place to a websocket (the read buffer and output queue carry over, so bytes a client
//! pipelined behind its upgrade request are not lost). This module owns only the socket-level
//! mechanics — reading with a budget, flushing with `writev`, lingering close — and never
//! touches the poll registry, the slab or other connections; the shard decides what the bytes
//! mean and applies what it wants.

pub mod out;

use crate::proto::ws::Assembler;
use bytes::BytesMut;
use mio::net::TcpStream;
use out::{Flush, OutQueue};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;
use uuid::Uuid;

/// Bytes read from one socket per readiness event before yielding to other connections.
pub const READ_BUDGET: usize = 256 * 1024;

/// Size of the per-shard scratch buffer every `read` goes into (see `read_available`).
pub const READ_SCRATCH: usize = 64 * 1024;

/// The protocol phase.
#[derive(Debug)]
pub enum Phase {
    Http(HttpPhase),
    Ws(WsPhase),
}

/// HTTP/1.1 request processing state.
#[derive(Debug, Default)]
pub struct HttpPhase {
    /// A request waiting for the model's reply. Pipelined requests behind it wait, so
    /// responses leave in request order.
    pub parked: Option<Parked>,
    /// `100 Continue` already sent for the request being read.
    pub sent_continue: bool,
}

/// What is needed to write the reply of a parked request.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    pub keep_alive: bool,
    pub head_only: bool,
    /// Add CORS headers to a 200 reply (origin allowed by `allow_cors`).
    pub cors: bool,
}

/// Websocket state.
#[derive(Debug)]
pub struct WsPhase {
    /// The frame assembler, allocated while input is being assembled and dropped when the
    /// connection is idle (no buffered bytes, no message in progress): most subscribers
    /// rarely send, and an idle socket should cost as little memory as possible.
    pub asm: Option<Box<Assembler>>,
    pub kind: WsKind,
    /// When the model was last told about client activity (reports are throttled).
    pub last_activity_report: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsKind {
    /// A Channelstream connection (`/ws?conn_id=`), attached in the model.
    Channelstream(Uuid),
    /// The Autobahn echo route.
    Echo,
}

/// Outcome of draining the socket's readable bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Read until WouldBlock.
    Drained,
    /// Budget used up with more to read: requeue.
    Budget,
    /// The peer closed its side.
    Eof,
}

#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Generation: distinguishes this connection from earlier users of the same slab slot.
    pub gen: u32,
    pub rbuf: BytesMut,
    pub out: OutQueue,
    pub phase: Phase,
    /// After the output is flushed, close (HTTP `Connection: close`, websocket close sent).
    pub closing: bool,
    /// Output shut down; reading and discarding until EOF or this deadline (lingering close,
    /// so a peer's unread bytes do not turn our last response into a RST).
    pub linger_until: Option<Instant>,
    /// Start of the current partially received request head (header timeout), or of the idle
    /// period between keep-alive requests.
    pub waiting_since: Instant,
    /// Whether this connection is already in the shard's dirty list.
    pub dirty: bool,
    /// The peer half-closed (EOF) while a response was still owed.
    pub peer_eof: bool,
    /// When a closing connection is dropped even if its output could not be flushed.
    pub close_deadline: Option<Instant>,
    /// Accepted but its first request head (for a websocket: the upgrade request) has not
    /// fully arrived yet; such connections count against `--max-pending-handshakes`.
    pub handshake_pending: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, gen: u32, now: Instant) -> Self {
        Conn {
            stream,
            peer,
            gen,
            rbuf: BytesMut::new(),
            out: OutQueue::new(),
            phase: Phase::Http(HttpPhase::default()),
            closing: false,
            linger_until: None,
            waiting_since: now,
            dirty: false,
            peer_eof: false,
            close_deadline: None,
            handshake_pending: true,
        }
    }

    /// Read until WouldBlock, EOF or the budget. `max_buffered` bounds the read buffer: a
    /// peer that sends faster than we parse is left in the kernel's buffer (TCP back-pressure).
    ///
    /// Reads land in the shard's `scratch` buffer and only the bytes received are appended
    /// to the connection's own buffer. A connection therefore holds as much input memory as
    /// it has unparsed input (a slowloris dribbling one byte at a time costs bytes, not a
    /// 16 KiB read buffer each), and no spare capacity is zero-filled before every `read`.
    pub fn read_available(
        &mut self,
        max_buffered: usize,
        scratch: &mut [u8],
    ) -> io::Result<ReadOutcome> {
        let mut total = 0;
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
            // While lingering, input is discarded.
            if self.linger_until.is_none() {
                self.rbuf
                    .extend_from_slice(scratch.get(..n).unwrap_or_default());
            }
            total += n;
        }
    }

    /// Whether buffered input must wait: a request is parked for the model (responses go
    /// out in order), or output is over its cap (back-pressure).
    pub fn input_blocked(&self, max_queued: usize) -> bool {
        match &self.phase {
            Phase::Http(hp) => hp.parked.is_some() || self.out.queued() > max_queued,
            Phase::Ws(_) => self.out.queued() > max_queued,
        }
    }

    /// Flush queued output.
    pub fn flush(&mut self) -> io::Result<Flush> {
        self.out.flush(&mut self.stream)
    }

    /// Stop sending and start the lingering close.
    pub fn begin_linger(&mut self, until: Instant) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.rbuf.clear();
        self.linger_until = Some(until);
    }
}
