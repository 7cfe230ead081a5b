//! A shard: one thread, one `mio::Poll`, one SO_REUSEPORT listener, one slab of connections,
//! one dialect instance.
//!
//! The loop, per turn:
//! 1. `poll` (timeout = the next timer, or zero when connections were requeued for budget or
//!    effects wait in a spill list);
//! 2. dispatch events: accept until WouldBlock; read readable sockets to WouldBlock (or the
//!    per-connection budget) and run their protocol; drain the inbox when the waker fires;
//! 3. run due timers (the dialect's; header, idle and linger deadlines in the sweep);
//! 4. `flush_dirty`: one `writev` per connection that got output this turn;
//! 5. `reap_closed`: tear down connections marked during the turn (never during dispatch, so a
//!    slab key stays valid for the whole batch; generations make stale references harmless).
//!
//! The reactor is generic over one `Dialect` and knows none: it hands the dialect complete
//! requests and websocket messages, and the dialect acts through `effects::ShardOutbox`.
//! Connections decide their own transitions (`conn::Conn` returns `Next`); this module only
//! schedules them.

mod accept;
mod date;
mod effects;
pub mod frame;
pub mod inbox;
pub mod metrics;
mod spawn;

pub use metrics::ShardStats;
pub use spawn::{spawn, spawn_on, spawn_on_with, spawn_with, Running, Shared};

use crate::conn::{HttpStep, Next, OwnedRequest, Parked, Socket as _, Timeouts, WsStep};
use crate::dialect::{Dialect, Request, RequestAction, WsMessage, WsRole};
use crate::error::CloseReason;
use crate::ids::{Gen, ReqRef, ShardId, Slot, SockRef};
use crate::proto::deflate::{self, Codec};
use crate::proto::ws::CloseCode;
use crate::proto::{handshake, http};
pub use accept::{Listener, MAX_LISTENERS};
use date::DateCache;
use effects::{ConnTable, Links, ShardOutbox};
use inbox::{Inbox, ShardMsg};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX - 2);

/// Capacity of each shard's inbox. Slots are allocated up front (64 B each): 16 Ki messages
/// is 1 MiB per shard, and a full inbox is back-pressure, never loss.
pub const INBOX_CAPACITY: usize = 16_384;

/// Shard-local timers (header/idle/linger) are checked this often.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How long a shutting-down shard waits for its connections to finish.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// Everything a shard thread owns.
pub struct Shard<D: Dialect> {
    id: ShardId,
    poll: Poll,
    /// The main listener first, then the extra ones; emptied when draining.
    listeners: Vec<Listener>,
    shared: Arc<Shared<D::Msg>>,
    inbox: Arc<Inbox<D::Msg>>,
    dialect: D,
    trimmer: crate::mem::Trimmer,
    /// Every socket read lands here first (`Conn::read_available`).
    scratch: Box<[u8]>,
    table: ConnTable<D::Ws>,
    links: Links<D::Msg>,
    draining: bool,
    date: DateCache,
}

/// Borrow the parts a dialect call needs as one `Outbox`.
macro_rules! outbox {
    ($self:ident) => {
        &mut ShardOutbox {
            table: &mut $self.table,
            links: &mut $self.links,
            date: &$self.date,
        }
    };
}

impl<D: Dialect> Shard<D> {
    /// Build shard `id`. `poll` must be the one the inbox's waker was registered with.
    pub fn new(
        id: ShardId,
        poll: Poll,
        mut listeners: Vec<Listener>,
        shared: Arc<Shared<D::Msg>>,
        dialect: D,
    ) -> io::Result<Shard<D>> {
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(&mut l.tcp, accept::token(i), Interest::READABLE)?;
        }
        let n = shared.inboxes.len();
        let missing = || io::Error::new(io::ErrorKind::InvalidInput, "shard id out of range");
        let inbox = shared.inboxes.get(id.index()).ok_or_else(missing)?.clone();
        let stats = shared.stats.get(id.index()).ok_or_else(missing)?.clone();
        Ok(Shard {
            id,
            poll,
            listeners,
            dialect,
            trimmer: crate::mem::Trimmer::default(),
            scratch: vec![0; crate::conn::READ_SCRATCH].into_boxed_slice(),
            inbox,
            table: ConnTable {
                slab: Slab::with_capacity(1024),
                next_gen: Gen(1),
                dirty: Vec::new(),
                to_close: Vec::new(),
                again: Vec::new(),
                batches: vec![Vec::new(); n],
                max_queued: shared.cfg.limits.max_queued_bytes,
                pending_handshakes: 0,
                dispatching: None,
                early_reply: None,
                stats,
                shard_id: id,
                deflate: shared.cfg.deflate,
                codec: Codec::new(shared.cfg.deflate.min_bytes),
            },
            links: Links {
                shared: shared.clone(),
                spill: (0..n).map(|_| VecDeque::new()).collect(),
            },
            shared,
            draining: false,
            date: DateCache::default(),
        })
    }

    /// Run until shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let mut timeout = next_sweep.saturating_duration_since(now);
            if let Some(d) = self.dialect.next_deadline() {
                timeout = timeout.min(d.saturating_duration_since(now));
            }
            if !self.table.again.is_empty() || self.links.has_spill() {
                timeout = Duration::ZERO;
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.date.refresh();
            for key in std::mem::take(&mut self.table.again) {
                self.on_ready(key);
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.drain_inbox(),
                    t if accept::listener_index(t).is_some() => {
                        self.accept_all(accept::listener_index(t).unwrap_or(0))
                    }
                    Token(key) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_ready(key);
                        }
                        if ev.is_writable() {
                            self.table.mark_dirty_if_needed(key);
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.dialect.next_deadline().is_some_and(|d| d <= now) {
                self.dialect.on_timer(outbox!(self), now);
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_EVERY;
            }
            self.links.retry_spill();
            self.flush_dirty();
            self.reap_closed();

            if self.shared.shutdown.load(Ordering::SeqCst) && !self.draining {
                self.begin_drain();
                drain_deadline = Some(Instant::now() + DRAIN_FOR);
            }
            if self.draining
                && (self.table.slab.is_empty()
                    || drain_deadline.is_some_and(|d| Instant::now() >= d))
            {
                return Ok(());
            }
        }
    }

    /// A connection is readable (or was requeued): read, then run its protocol.
    fn on_ready(&mut self, key: usize) {
        let Some(conn) = self.table.slab.get_mut(key) else {
            return;
        };
        let max_buffered = conn.max_buffered(&self.shared.cfg.limits);
        let establishing = conn.stream.establishing();
        let read = conn.read_available(max_buffered, &mut self.scratch);
        if establishing && !conn.stream.establishing() {
            self.table
                .stats
                .tls_handshakes
                .fetch_add(1, Ordering::Relaxed);
        }
        let outcome = match read {
            Ok(o) => o,
            Err(e) => {
                if establishing {
                    tracing::debug!(peer = %conn.peer, error = %e, "TLS handshake failed");
                }
                return self.table.apply(key, Next::Reap(CloseReason::Io));
            }
        };
        if conn.is_lingering() {
            // Input is discarded; only the peer's EOF matters.
            let next = conn.after_read(outcome, self.table.max_queued);
            if matches!(next, Next::Reap(_)) {
                self.table.apply(key, next);
            }
            return;
        }
        self.process(key);
        let max_queued = self.table.max_queued;
        if let Some(conn) = self.table.slab.get_mut(key) {
            let next = conn.after_read(outcome, max_queued);
            self.table.apply(key, next);
        }
    }

    /// Run the protocol over whatever is buffered (an upgrade mid-buffer hands the rest to the
    /// websocket phase in the same call).
    fn process(&mut self, key: usize) {
        self.process_http(key);
        if self.table.slab.get(key).is_some_and(|c| c.is_ws()) {
            self.process_ws(key);
        }
        if let Some(c) = self.table.slab.get_mut(key) {
            c.release_idle_buffers();
        }
    }

    fn process_http(&mut self, key: usize) {
        let lim = &self.shared.cfg.limits;
        let limits = http::ParseLimits {
            max_head: lim.max_head_bytes,
            max_headers: lim.max_headers,
            max_body: lim.max_body_bytes,
        };
        loop {
            let Some(conn) = self.table.slab.get_mut(key) else {
                return;
            };
            let was_pending = conn.handshake_pending;
            let step = conn.next_request(&limits, self.table.max_queued, self.date.get());
            if was_pending && !conn.handshake_pending {
                self.table.pending_handshakes -= 1;
            }
            match step {
                HttpStep::Wait { .. } => return self.table.mark_dirty_if_needed(key),
                HttpStep::Malformed => {
                    self.table.stats.http_errors.fetch_add(1, Ordering::Relaxed);
                    return self.table.mark_dirty_if_needed(key);
                }
                HttpStep::Request(req) => self.dispatch_request(key, req),
            }
        }
    }

    /// One complete request: ask the dialect what to do and do it.
    fn dispatch_request(&mut self, key: usize, req: OwnedRequest) {
        let Some(conn) = self.table.slab.get_mut(key) else {
            return;
        };
        let now = Instant::now();
        conn.waiting_since = now;
        let at = ReqRef {
            shard: self.id,
            slot: Slot::of_key(key),
            gen: conn.gen,
        };
        let request = Request {
            head: &req.head,
            buf: &req.head_bytes,
            body: &req.body,
            peer: conn.peer.ip(),
            now_unix: date::unix_now(),
            secure: conn.stream.is_secure(),
            at,
        };
        // A dialect that answers inline (the request's state lives on this shard) replies
        // before it returns `Park`; that answer is held until the request is parked.
        self.table.dispatching = Some(at.local());
        let action = self.dialect.on_request(outbox!(self), &request);
        self.table.dispatching = None;
        let early = self.table.early_reply.take();
        let (keep_alive, head_only) = (req.keep_alive(), req.head_only());
        let Some(conn) = self.table.slab.get_mut(key) else {
            return;
        };
        match action {
            RequestAction::Respond(r) => {
                if r.status >= 400 {
                    self.table.stats.http_errors.fetch_add(1, Ordering::Relaxed);
                }
                conn.respond(&r, keep_alive, head_only, self.date.get());
                self.table.mark_dirty_if_needed(key);
            }
            RequestAction::Park { success_headers } => {
                conn.park(Parked {
                    keep_alive,
                    head_only,
                    success_headers,
                });
                if let Some(response) = early {
                    self.table.reply_local(at.local(), response, &self.date);
                }
            }
            RequestAction::Upgrade { accept, role } => {
                let serves = matches!(role, Some(WsRole::Dialect(_)));
                let deflate = if self.table.deflate.enabled && role.is_some() {
                    deflate::negotiate(handshake::extension_values(&req.head, &req.head_bytes))
                } else {
                    None
                };
                conn.upgrade(&accept, role, deflate);
                self.table.mark_dirty_if_needed(key);
                if serves {
                    self.open_ws(key, at.gen);
                }
            }
        }
    }

    /// Tell the dialect its websocket is open.
    fn open_ws(&mut self, key: usize, gen: Gen) {
        let Some(mut w) = self
            .table
            .slab
            .get_mut(key)
            .and_then(|c| c.take_dialect_state())
        else {
            return;
        };
        let sock = self.sock_ref(key, gen);
        let opened = self.dialect.on_ws_open(outbox!(self), sock, &mut w);
        if let Some(conn) = self.table.slab.get_mut(key) {
            conn.put_dialect_state(w);
            if let Err(code) = opened {
                conn.send_close(code);
            }
        }
        self.table.mark_dirty_if_needed(key);
    }

    fn process_ws(&mut self, key: usize) {
        let max_message = self.shared.cfg.limits.max_ws_message_bytes;
        loop {
            let Some(conn) = self.table.slab.get_mut(key) else {
                return;
            };
            let step = conn.next_ws_step(max_message, self.table.max_queued, &mut self.table.codec);
            let (text, payload) = match step {
                WsStep::Wait { .. } => return self.table.mark_dirty_if_needed(key),
                WsStep::Closed => return self.ws_ended(key),
                WsStep::ProtocolError {
                    code,
                    inflate_too_big,
                } => {
                    let stats = &self.table.stats;
                    stats.ws_protocol_errors.fetch_add(1, Ordering::Relaxed);
                    if inflate_too_big {
                        stats.ws_inflate_too_big.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(peer = %conn.peer, %code, "websocket protocol error");
                    return self.ws_ended(key);
                }
                WsStep::Message { text, payload } => (text, payload),
            };
            let gen = conn.gen;
            let Some(mut w) = conn.take_dialect_state() else {
                continue;
            };
            let msg = if text {
                WsMessage::Text(&payload)
            } else {
                WsMessage::Binary(&payload)
            };
            let sock = self.sock_ref(key, gen);
            self.dialect
                .on_ws_message(outbox!(self), sock, &mut w, msg, Instant::now());
            if let Some(conn) = self.table.slab.get_mut(key) {
                conn.put_dialect_state(w);
            }
            self.table.mark_dirty_if_needed(key);
        }
    }

    /// The websocket protocol ended (close handshake or protocol error; the connection only
    /// lingers to deliver the close frame): the dialect hears `on_ws_closed` now, as a ws4py
    /// application's `closed()` runs at the handshake, not when the TCP connection goes
    /// (`reap_closed` then finds no dialect state and says nothing more).
    fn ws_ended(&mut self, key: usize) {
        if let Some(conn) = self.table.slab.get_mut(key) {
            let gen = conn.gen;
            if let Some(w) = conn.take_dialect_state() {
                let sock = self.sock_ref(key, gen);
                self.dialect.on_ws_closed(outbox!(self), sock, w);
            }
        }
        self.table.mark_dirty_if_needed(key);
    }

    fn sock_ref(&self, key: usize, gen: Gen) -> SockRef {
        SockRef {
            shard: self.id,
            slot: Slot::of_key(key),
            gen,
        }
    }

    fn drain_inbox(&mut self) {
        let inbox = self.inbox.clone();
        inbox.drain(|msg| self.on_msg(msg));
    }

    fn on_msg(&mut self, msg: ShardMsg<D::Msg>) {
        match msg {
            ShardMsg::Dialect(m) => self.dialect.on_message(outbox!(self), m),
            ShardMsg::Reply { req, response } => {
                self.table.reply_local(req.local(), *response, &self.date)
            }
            ShardMsg::Deliver { frame, to } => {
                for r in to {
                    self.table.deliver_local(r, &frame);
                }
            }
            ShardMsg::Close { to, code } => self.table.close_local(to, code),
            ShardMsg::Shutdown => {}
        }
    }

    fn flush_dirty(&mut self) {
        let now = Instant::now();
        for key in std::mem::take(&mut self.table.dirty) {
            let Some(conn) = self.table.slab.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            match conn.flush(now) {
                // Blocked output waits for WRITABLE, which marks the connection again.
                Next::Continue | Next::Flush => {}
                next => self.table.apply(key, next),
            }
        }
    }

    /// Header timeouts (408), idle keep-alive timeouts, lingering and closing deadlines; free
    /// heap back to the OS after a large drop in connections.
    fn sweep(&mut self, now: Instant) {
        self.trimmer.tick(self.table.slab.len(), now);
        let lim = &self.shared.cfg.limits;
        let t = Timeouts {
            header: lim.header_timeout,
            idle: lim.keep_alive_timeout,
        };
        let mut due = Vec::new();
        for (key, conn) in self.table.slab.iter_mut() {
            conn.out.release_if_idle();
            match conn.on_timeout(now, &t, self.date.get()) {
                Next::Continue => {}
                next => due.push((key, next)),
            }
        }
        for (key, next) in due {
            if next == Next::Flush {
                self.table.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            self.table.apply(key, next);
        }
    }

    fn reap_closed(&mut self) {
        for (key, gen, reason) in std::mem::take(&mut self.table.to_close) {
            if self.table.slab.get(key).is_none_or(|c| c.gen != gen) {
                continue;
            }
            let mut conn = self.table.slab.remove(key);
            if conn.handshake_pending {
                self.table.pending_handshakes -= 1;
            }
            if conn.stream.establishing() {
                let failures = &self.table.stats.tls_handshake_failures;
                failures.fetch_add(1, Ordering::Relaxed);
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.table.stats.open.fetch_sub(1, Ordering::Relaxed);
            tracing::trace!(peer = %conn.peer, ?reason, "connection closed");
            if let Some(w) = conn.take_dialect_state() {
                let sock = self.sock_ref(key, gen);
                self.dialect.on_ws_closed(outbox!(self), sock, w);
            }
        }
    }

    /// Graceful shutdown: stop accepting, let the dialect answer what waits, close websockets
    /// (1001, or the dialect's `shutdown_close` code), let HTTP finish.
    fn begin_drain(&mut self) {
        self.draining = true;
        self.dialect.on_shutdown(outbox!(self));
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut l.tcp);
        }
        let keys: Vec<usize> = self.table.slab.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.table.slab.get_mut(key) else {
                continue;
            };
            if conn.is_ws() {
                let code = match conn.dialect_state() {
                    Some(w) => self.dialect.shutdown_close(w),
                    None => CloseCode::Away,
                };
                conn.send_close(code);
            } else if !conn.is_parked() {
                if conn.out.is_empty() {
                    self.table.apply(key, Next::Reap(CloseReason::Shutdown));
                    continue;
                }
                conn.close_after_flush();
            }
            self.table.mark_dirty_if_needed(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::conn::{out::OutQueue, Conn, Phase};
    use crate::tls::Stream;

    /// Per-connection memory is a product goal (≤ 1 KiB user space per idle subscribed
    /// websocket, measured by `herald-bench --scenario idle-10k`); this guards the fixed part
    /// for a dialect state of 32 bytes (Channelstream's).
    #[test]
    fn connection_record_stays_small() {
        type C = Conn<Stream, [u64; 4]>;
        let conn = std::mem::size_of::<C>();
        eprintln!(
            "Conn {conn} B (Phase {} B, OutQueue {} B)",
            std::mem::size_of::<Phase<[u64; 4]>>(),
            std::mem::size_of::<OutQueue>()
        );
        assert!(conn <= 232, "Conn grew to {conn} bytes");
    }
}
