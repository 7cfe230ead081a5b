//! A shard: one thread, one `mio::Poll`, one SO_REUSEPORT listener, one slab of connections.
//!
//! The loop, per turn:
//! 1. `poll` (timeout = the next timer, or zero when connections were requeued for budget);
//! 2. dispatch events: accept until WouldBlock; read readable sockets to WouldBlock (or the
//!    per-connection budget) and run their protocol; drain the inbox when the waker fires;
//! 3. run due timers (model heartbeats/GC/long-polls on the model shard; header, idle and
//!    linger deadlines everywhere);
//! 4. `flush_dirty`: one `writev` per connection that got output this turn;
//! 5. `reap_closed`: tear down connections marked during the turn (never during dispatch, so a
//!    slab key stays valid for the whole batch; generations make stale references harmless).
//!
//! The Channelstream model lives on shard `MODEL_SHARD` (see ARCHITECTURE.md for why one
//! owner). Other shards send it commands through its inbox and get replies, deliveries and
//! closes back through theirs; on the model shard itself effects are applied directly.

pub mod inbox;

use crate::auth::Signer;
use crate::channelstream::api::front::{Front, FrontAction, Request, Response, WsTarget};
use crate::channelstream::model::{
    Command, ContentKind, Effects, Model, Now, Reply, ReqRef, SockRef,
};
use crate::config::Config;
use crate::conn::out::Flush;
use crate::conn::{Conn, HttpPhase, Parked, Phase, ReadOutcome, WsKind, WsPhase};
use crate::error::CloseReason;
use crate::proto::http::{self, BodyKind, Method};
use crate::proto::{handshake, ws};
use bytes::{Bytes, BytesMut};
use inbox::{Inbox, LocalRef, ShardMsg};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shard that owns the Channelstream model.
pub const MODEL_SHARD: u16 = 0;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// Capacity of each shard's inbox. Slots are allocated up front (64 B each): 16 Ki messages
/// is 1 MiB per shard, and a full inbox is back-pressure, never loss.
pub const INBOX_CAPACITY: usize = 16_384;

/// Shard-local timers (header/idle/linger) are checked this often.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How long a lingering close waits for the peer's EOF.
const LINGER: Duration = Duration::from_secs(2);

/// Client websocket frames tell the model "active" at most this often per connection.
const ACTIVITY_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Pre-encoded heartbeat-sized close frame for shutdown.
fn going_away() -> Bytes {
    ws::encode_close(ws::CloseCode::Away, "")
}

/// Counters, readable from any thread (tests, metrics).
#[derive(Debug, Default)]
pub struct ShardStats {
    pub accepted: AtomicU64,
    pub refused_over_limit: AtomicU64,
    pub refused_pending_handshakes: AtomicU64,
    pub refused_channel_limit: AtomicU64,
    pub closed_slow_consumer: AtomicU64,
    pub http_errors: AtomicU64,
    pub ws_protocol_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub inbox_full: AtomicU64,
    pub open: AtomicU64,
}

/// What all shards share, read-only (plus atomics).
pub struct Shared {
    pub cfg: Arc<Config>,
    pub inboxes: Vec<Arc<Inbox>>,
    pub stats: Vec<Arc<ShardStats>>,
    pub shutdown: AtomicBool,
}

impl Shared {
    /// Open connections over all shards (a few relaxed loads: only read on accept).
    pub fn open_connections(&self) -> usize {
        self.stats
            .iter()
            .map(|s| s.open.load(Ordering::Relaxed) as usize)
            .sum()
    }

    /// Every shard's counters, summed, in Prometheus text exposition format.
    pub fn metrics_text(&self) -> String {
        let sum = |f: fn(&ShardStats) -> &AtomicU64| -> u64 {
            self.stats
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        let inbox_full: u64 = self
            .inboxes
            .iter()
            .map(|i| i.full_events.load(Ordering::Relaxed))
            .sum();
        let rows: [(&str, &str, &str, u64); 11] = [
            (
                "herald_connections_open",
                "gauge",
                "Open client connections",
                sum(|s| &s.open),
            ),
            (
                "herald_connections_accepted_total",
                "counter",
                "Accepted connections",
                sum(|s| &s.accepted),
            ),
            (
                "herald_connections_refused_total",
                "counter",
                "Connections refused over --max-connections or --max-connections-total",
                sum(|s| &s.refused_over_limit),
            ),
            (
                "herald_handshakes_refused_total",
                "counter",
                "Connections refused over --max-pending-handshakes",
                sum(|s| &s.refused_pending_handshakes),
            ),
            (
                "herald_channel_limit_refused_total",
                "counter",
                "/connect and /subscribe answered 422 over --max-channels-per-connection",
                sum(|s| &s.refused_channel_limit),
            ),
            (
                "herald_slow_consumers_closed_total",
                "counter",
                "Websockets closed 1008 past --max-queued-bytes",
                sum(|s| &s.closed_slow_consumer),
            ),
            (
                "herald_http_errors_total",
                "counter",
                "HTTP responses with status >= 400",
                sum(|s| &s.http_errors),
            ),
            (
                "herald_ws_protocol_errors_total",
                "counter",
                "Websockets closed for protocol errors (1002/1007/1009)",
                sum(|s| &s.ws_protocol_errors),
            ),
            (
                "herald_timeouts_total",
                "counter",
                "Requests answered 408 (header timeout)",
                sum(|s| &s.timeouts),
            ),
            (
                "herald_inbox_full_total",
                "counter",
                "Cross-shard sends that found an inbox full (503 or spill)",
                inbox_full.max(sum(|s| &s.inbox_full)),
            ),
            (
                "herald_shards",
                "gauge",
                "Reactor threads",
                self.inboxes.len() as u64,
            ),
        ];
        let mut out = String::with_capacity(1024);
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        out
    }

    /// Ask every shard to shut down gracefully.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for inbox in &self.inboxes {
            let _ = inbox.send(ShardMsg::Shutdown);
        }
    }
}

/// Per-turn bookkeeping of connections, split from the rest of the shard so handlers can
/// borrow it alongside the read-only context.
struct Io {
    conns: Slab<Conn>,
    next_gen: u32,
    /// Connections with output to flush this turn.
    dirty: Vec<usize>,
    /// Connections to tear down after the batch.
    to_close: Vec<(usize, u32, CloseReason)>,
    /// Connections to run again next turn (read budget, unparked pipelined requests).
    again: Vec<usize>,
    /// Per-target-shard scratch for grouping deliveries.
    batches: Vec<Vec<LocalRef>>,
    /// Messages that found a full inbox: retried every turn, in order (never dropped).
    spill: Vec<VecDeque<ShardMsg>>,
    max_queued: usize,
    /// Connections whose first request head is still arriving (`Conn::handshake_pending`).
    pending_handshakes: usize,
    stats: Arc<ShardStats>,
    me: u16,
}

/// Everything a shard thread owns.
pub struct Shard {
    id: u16,
    poll: Poll,
    listener: Option<TcpListener>,
    shared: Arc<Shared>,
    inbox: Arc<Inbox>,
    signer: Signer,
    model: Option<Model>,
    trimmer: crate::mem::Trimmer,
    /// Every socket read lands here first (`Conn::read_available`).
    scratch: Box<[u8]>,
    io: Io,
    draining: bool,
    date: DateCache,
}

impl Shard {
    /// Build shard `id`. `poll` must be the one the inbox's waker was registered with.
    pub fn new(
        id: u16,
        poll: Poll,
        mut listener: TcpListener,
        shared: Arc<Shared>,
    ) -> io::Result<Shard> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let n = shared.inboxes.len();
        let cfg = shared.cfg.clone();
        let missing = || io::Error::new(io::ErrorKind::InvalidInput, "shard id out of range");
        let inbox = shared
            .inboxes
            .get(usize::from(id))
            .ok_or_else(missing)?
            .clone();
        let stats = shared
            .stats
            .get(usize::from(id))
            .ok_or_else(missing)?
            .clone();
        Ok(Shard {
            id,
            poll,
            listener: Some(listener),
            signer: Signer::new(&cfg.secret),
            model: (id == MODEL_SHARD).then(|| {
                let mut m = Model::new(chrono::Utc::now());
                m.set_max_channels_per_connection(cfg.limits.max_channels_per_connection);
                m
            }),
            trimmer: crate::mem::Trimmer::default(),
            scratch: vec![0; crate::conn::READ_SCRATCH].into_boxed_slice(),
            inbox,
            io: Io {
                conns: Slab::with_capacity(1024),
                next_gen: 1,
                dirty: Vec::new(),
                to_close: Vec::new(),
                again: Vec::new(),
                batches: vec![Vec::new(); n],
                spill: (0..n).map(|_| VecDeque::new()).collect(),
                max_queued: cfg.limits.max_queued_bytes,
                pending_handshakes: 0,
                stats,
                me: id,
            },
            shared,
            draining: false,
            date: DateCache::default(),
        })
    }

    /// The waker token every shard registers its inbox waker under.
    pub const fn waker_token() -> Token {
        WAKER
    }

    /// Run until shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let mut timeout = next_sweep.saturating_duration_since(now);
            if let Some(d) = self.model.as_ref().and_then(Model::next_deadline) {
                timeout = timeout.min(d.saturating_duration_since(now));
            }
            if !self.io.again.is_empty() || self.io.spill.iter().any(|s| !s.is_empty()) {
                timeout = Duration::ZERO;
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.date.refresh();
            let again = std::mem::take(&mut self.io.again);
            for key in again {
                self.on_ready(key, true);
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => self.drain_inbox(),
                    Token(key) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_ready(key, false);
                        }
                        if ev.is_writable() {
                            self.mark_dirty(key);
                        }
                    }
                }
            }
            let now = Instant::now();
            if let Some(model) = self.model.as_mut() {
                if model.next_deadline().is_some_and(|d| d <= now) {
                    let mut fx = Fx {
                        io: &mut self.io,
                        shared: &self.shared,
                        date: &self.date,
                    };
                    model.tick(now_pair(now), &mut fx);
                }
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_EVERY;
            }
            self.retry_spill();
            self.flush_dirty();
            self.reap_closed();

            if self.shared.shutdown.load(Ordering::SeqCst) && !self.draining {
                self.begin_drain();
                drain_deadline = Some(Instant::now() + Duration::from_secs(5));
            }
            if self.draining {
                let idle = self.io.conns.is_empty();
                if idle || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
            }
        }
    }

    fn accept_all(&mut self) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and retry on the next readiness event.
                    tracing::warn!(shard = self.id, error = %e, "accept failed");
                    return;
                }
            };
            let cfg = &self.shared.cfg;
            // Refused connections are accepted and closed at once (a RST-free FIN): leaving
            // them in the backlog would only make the client wait for a timeout.
            if self.io.conns.len() >= cfg.limits.max_connections_per_shard
                || self.shared.open_connections() >= cfg.limits.max_connections_total
            {
                self.io
                    .stats
                    .refused_over_limit
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(shard = self.id, %peer, "connection refused: connection limit");
                drop(stream);
                continue;
            }
            if self.io.pending_handshakes >= cfg.limits.max_pending_handshakes {
                self.io
                    .stats
                    .refused_pending_handshakes
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(shard = self.id, %peer, "connection refused: pending handshakes");
                drop(stream);
                continue;
            }
            crate::net::tune_accepted(&stream);
            let entry = self.io.conns.vacant_entry();
            let key = entry.key();
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            let gen = self.io.next_gen;
            self.io.next_gen = self.io.next_gen.wrapping_add(1);
            entry.insert(Conn::new(stream, peer, gen, Instant::now()));
            self.io.pending_handshakes += 1;
            self.io.stats.accepted.fetch_add(1, Ordering::Relaxed);
            self.io.stats.open.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection is readable (or was requeued): read, then run its protocol.
    fn on_ready(&mut self, key: usize, requeued: bool) {
        let lim = &self.shared.cfg.limits;
        let Some(conn) = self.io.conns.get_mut(key) else {
            return;
        };
        // Room for the largest acceptable unit plus what may follow it: the assembler rejects
        // a frame past the message limit as soon as its header is seen, and HTTP heads/bodies
        // past theirs, so a buffer this size always makes progress.
        let max_buf = match conn.phase {
            Phase::Http(_) => lim.max_head_bytes + lim.max_body_bytes,
            Phase::Ws(_) => lim.max_ws_message_bytes + ws::MAX_HEADER_LEN,
        } + 64 * 1024;
        let outcome = match conn.read_available(max_buf, &mut self.scratch) {
            Ok(o) => o,
            Err(_) => {
                let gen = conn.gen;
                self.io.to_close.push((key, gen, CloseReason::Io));
                return;
            }
        };
        let gen = conn.gen;
        if conn.linger_until.is_some() {
            if outcome == ReadOutcome::Eof {
                self.io.to_close.push((key, gen, CloseReason::PeerClosed));
            }
            return;
        }
        let _ = requeued;
        self.process(key);
        let max_queued = self.io.max_queued;
        let Some(conn) = self.io.conns.get_mut(key) else {
            return;
        };
        match outcome {
            ReadOutcome::Drained => {}
            // A connection that cannot consume its input right now (a request parked for the
            // model, output over its cap) is not requeued: that would spin. Whatever unblocks
            // it (the reply, a drained flush) requeues it while input is buffered.
            ReadOutcome::Budget if conn.input_blocked(max_queued) => {}
            ReadOutcome::Budget => self.io.again.push(key),
            ReadOutcome::Eof => {
                // Half-close: the peer sent everything it will send. Answer what is in flight
                // (a parked request, queued output), then close; otherwise close now.
                let parked = matches!(&conn.phase, Phase::Http(hp) if hp.parked.is_some());
                if parked || !conn.out.is_empty() {
                    conn.peer_eof = true;
                    if !parked {
                        conn.closing = true;
                    }
                } else {
                    self.io.to_close.push((key, gen, CloseReason::PeerClosed));
                }
            }
        }
    }

    /// Run the protocol over whatever is buffered.
    fn process(&mut self, key: usize) {
        let is_http = matches!(
            self.io.conns.get(key).map(|c| &c.phase),
            Some(Phase::Http(_))
        );
        if is_http {
            self.process_http(key);
        }
        let is_ws = matches!(self.io.conns.get(key).map(|c| &c.phase), Some(Phase::Ws(_)));
        if is_ws {
            self.process_ws(key);
        }
        if let Some(c) = self.io.conns.get_mut(key) {
            if c.rbuf.is_empty() {
                // Idle connections keep no read buffer and no assembler (memory per socket).
                // Unconditionally: an empty remainder of `split_to` has no capacity but still
                // holds the whole allocation it was split from.
                c.rbuf = BytesMut::new();
                if let Phase::Ws(wp) = &mut c.phase {
                    if wp
                        .asm
                        .as_ref()
                        .is_some_and(|a| !a.in_message() && !a.is_closed())
                    {
                        wp.asm = None;
                    }
                }
            }
        }
    }

    fn process_http(&mut self, key: usize) {
        let cfg = self.shared.cfg.clone();
        let limits = http::Limits {
            max_head: cfg.limits.max_head_bytes,
            max_headers: cfg.limits.max_headers,
            max_body: cfg.limits.max_body_bytes,
        };
        loop {
            let Some(conn) = self.io.conns.get_mut(key) else {
                return;
            };
            if conn.closing {
                return;
            }
            let Phase::Http(hp) = &mut conn.phase else {
                return;
            };
            if hp.parked.is_some() || conn.rbuf.is_empty() {
                return;
            }
            if conn.out.queued() > self.io.max_queued {
                // A client that pipelines without reading its responses: stop parsing until
                // it drains them (resumed from flush_dirty); TCP throttles it meanwhile.
                return;
            }
            let framed = http::parse_head(&conn.rbuf, &limits).and_then(|parsed| {
                let Some((head, head_len)) = parsed else {
                    return Ok(None);
                };
                // (bytes the body occupies, the de-chunked body if it had to be decoded)
                let body = match head.body {
                    BodyKind::None => Some((0, None)),
                    BodyKind::Length(n) => (conn.rbuf.len() >= head_len + n).then_some((n, None)),
                    BodyKind::Chunked => {
                        let rest = conn.rbuf.get(head_len..).unwrap_or(&[]);
                        http::decode_chunked(rest, limits.max_body)?
                            .map(|(b, used)| (used, Some(Bytes::from(b))))
                    }
                };
                Ok(Some((head, head_len, body)))
            });
            let (head, head_len, body) = match framed {
                Ok(Some(f)) => {
                    if conn.handshake_pending {
                        conn.handshake_pending = false;
                        self.io.pending_handshakes -= 1;
                    }
                    f
                }
                Ok(None) => return,
                Err(e) => {
                    self.io.stats.http_errors.fetch_add(1, Ordering::Relaxed);
                    let mut r =
                        Response::new(e.status(), ContentKind::Text, Bytes::from(e.to_string()));
                    r.close = true;
                    write_response(conn, &r, false, false, &self.date, &cfg);
                    self.mark_dirty(key);
                    return;
                }
            };
            let Some((body_len, decoded)) = body else {
                // Head complete, body still arriving.
                if head.expect_continue && !hp.sent_continue {
                    hp.sent_continue = true;
                    conn.out.push(Bytes::from_static(http::CONTINUE_100));
                    self.mark_dirty(key);
                }
                return;
            };
            // Content-Length bodies are zero-copy slices of the read buffer.
            let all = conn.rbuf.split_to(head_len + body_len).freeze();
            let body = decoded.unwrap_or_else(|| all.slice(head_len..));
            self.finish_request(key, &head, all.slice(..head_len), body);
        }
    }

    /// One complete request: ask the front what to do and do it.
    fn finish_request(
        &mut self,
        key: usize,
        head: &http::RequestHead,
        head_bytes: Bytes,
        body: Bytes,
    ) {
        let cfg = self.shared.cfg.clone();
        let Some(conn) = self.io.conns.get_mut(key) else {
            return;
        };
        if let Phase::Http(hp) = &mut conn.phase {
            hp.sent_continue = false;
        }
        conn.waiting_since = Instant::now();
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let req = Request {
            head,
            buf: &head_bytes,
            body: &body,
            peer: conn.peer.ip(),
            now: now_unix,
        };
        let front = Front {
            cfg: &cfg,
            signer: &self.signer,
        };
        let action = front.handle(&req);
        let cors = cors_allowed(&cfg, head.header(&head_bytes, "origin"));
        let keep_alive = head.keep_alive;
        let head_only = head.method == Method::Head;
        let gen = conn.gen;
        match action {
            FrontAction::Respond(r) => {
                if r.status >= 400 {
                    self.io.stats.http_errors.fetch_add(1, Ordering::Relaxed);
                }
                write_response(conn, &r, keep_alive, head_only, &self.date, &cfg);
                self.mark_dirty(key);
            }
            FrontAction::Model {
                cmd,
                cors: wants_cors,
            } => {
                let req_ref = ReqRef {
                    shard: self.id,
                    slot: key as u32,
                    gen,
                };
                if let Phase::Http(hp) = &mut conn.phase {
                    hp.parked = Some(Parked {
                        keep_alive,
                        head_only,
                        cors: wants_cors && cors,
                    });
                }
                if let Err(()) = self.send_to_model(Some(req_ref), cmd) {
                    let Some(conn) = self.io.conns.get_mut(key) else {
                        return;
                    };
                    if let Phase::Http(hp) = &mut conn.phase {
                        hp.parked = None;
                    }
                    write_response(
                        conn,
                        &Response::busy(),
                        keep_alive,
                        head_only,
                        &self.date,
                        &cfg,
                    );
                    self.mark_dirty(key);
                }
            }
            FrontAction::RespondThenModel(r, cmd) => {
                if self.send_to_model(None, cmd).is_err() {
                    write_response_at(
                        &mut self.io,
                        key,
                        &Response::busy(),
                        keep_alive,
                        head_only,
                        &self.date,
                        &cfg,
                    );
                } else {
                    let mut r = r;
                    r.cors = r.cors && cors;
                    write_response_at(
                        &mut self.io,
                        key,
                        &r,
                        keep_alive,
                        head_only,
                        &self.date,
                        &cfg,
                    );
                }
            }
            FrontAction::Metrics => {
                let body = self.shared.metrics_text();
                let r = Response::new(200, ContentKind::Text, body);
                write_response(conn, &r, keep_alive, head_only, &self.date, &cfg);
                self.mark_dirty(key);
            }
            FrontAction::Upgrade { accept, target } => {
                conn.out.push(Bytes::from(handshake::response_101(&accept)));
                let kind = match target {
                    WsTarget::Echo => WsKind::Echo,
                    WsTarget::Channelstream(Some(id)) => WsKind::Channelstream(id),
                    WsTarget::Channelstream(None) => {
                        // As the real server: handshake done, then the TCP connection is
                        // dropped without a close frame.
                        conn.closing = true;
                        self.mark_dirty(key);
                        return;
                    }
                };
                conn.phase = Phase::Ws(WsPhase {
                    asm: None,
                    kind,
                    last_activity_report: None,
                });
                self.mark_dirty(key);
                if let WsKind::Channelstream(conn_id) = kind {
                    let sock = SockRef {
                        shard: self.id,
                        slot: key as u32,
                        gen,
                    };
                    if self
                        .send_to_model(None, Command::WsOpen { conn_id, sock })
                        .is_err()
                    {
                        self.ws_close(key, ws::CloseCode::Again);
                    }
                }
            }
        }
    }

    fn process_ws(&mut self, key: usize) {
        loop {
            let Some(conn) = self.io.conns.get_mut(key) else {
                return;
            };
            if conn.closing {
                return;
            }
            let Phase::Ws(wp) = &mut conn.phase else {
                return;
            };
            if conn.out.queued() > self.io.max_queued {
                // Output back-pressure (echo replies, pongs): stop consuming input until the
                // peer drains what it was sent (resumed from flush_dirty), so the kernel's
                // window throttles the sender and nothing queues without bound.
                return;
            }
            let max_message = self.shared.cfg.limits.max_ws_message_bytes;
            let asm = wp
                .asm
                .get_or_insert_with(|| Box::new(ws::Assembler::new(max_message)));
            let ev = match asm.next_event(&mut conn.rbuf) {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                Err(e) => {
                    self.io
                        .stats
                        .ws_protocol_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %conn.peer, error = %e, "websocket protocol error");
                    self.ws_close(key, e.close_code());
                    return;
                }
            };
            let kind = wp.kind;
            match ev {
                ws::Event::Text(p) if kind == WsKind::Echo => {
                    conn.out.push(ws::encode_frame(ws::OpCode::Text, &p));
                    self.mark_dirty(key);
                }
                ws::Event::Binary(p) if kind == WsKind::Echo => {
                    conn.out.push(ws::encode_frame(ws::OpCode::Binary, &p));
                    self.mark_dirty(key);
                }
                ws::Event::Text(_) | ws::Event::Binary(_) => {
                    if let WsKind::Channelstream(conn_id) = kind {
                        let now = Instant::now();
                        let due = wp
                            .last_activity_report
                            .is_none_or(|t| now.duration_since(t) >= ACTIVITY_REPORT_EVERY);
                        if due {
                            wp.last_activity_report = Some(now);
                            let sock = SockRef {
                                shard: self.id,
                                slot: key as u32,
                                gen: conn.gen,
                            };
                            // Activity reports are advisory: a full inbox just skips one.
                            let _ = self.send_to_model(None, Command::WsActivity { conn_id, sock });
                        }
                    }
                }
                ws::Event::Ping(p) => {
                    conn.out.push(ws::encode_frame(ws::OpCode::Pong, &p));
                    self.mark_dirty(key);
                }
                ws::Event::Pong(_) => {}
                ws::Event::Close { code, .. } => {
                    // Answer with the peer's code (an empty close for an empty one); never
                    // the reserved 1005 that the real server sends.
                    conn.out.push(ws::encode_close_reply(code));
                    conn.closing = true;
                    self.mark_dirty(key);
                    return;
                }
            }
        }
    }

    /// Send a close frame and close after it is flushed.
    fn ws_close(&mut self, key: usize, code: ws::CloseCode) {
        if let Some(conn) = self.io.conns.get_mut(key) {
            if !conn.closing {
                conn.out.push(ws::encode_close(code, ""));
                conn.closing = true;
            }
            self.mark_dirty(key);
        }
    }

    /// Hand a command to the model: inline on the model shard, else through its inbox.
    fn send_to_model(&mut self, req: Option<ReqRef>, cmd: Command) -> Result<(), ()> {
        if let Some(model) = self.model.as_mut() {
            let mut fx = Fx {
                io: &mut self.io,
                shared: &self.shared,
                date: &self.date,
            };
            model.handle(req, cmd, now_pair(Instant::now()), &mut fx);
            publish_model_counters(model, &self.io.stats);
            return Ok(());
        }
        let Some(inbox) = self.shared.inboxes.get(usize::from(MODEL_SHARD)) else {
            return Err(());
        };
        match inbox.send(ShardMsg::Model {
            req,
            cmd: Box::new(cmd),
        }) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.io.stats.inbox_full.fetch_add(1, Ordering::Relaxed);
                Err(())
            }
        }
    }

    fn drain_inbox(&mut self) {
        let inbox = self.inbox.clone();
        inbox.drain(|msg| self.on_msg(msg));
    }

    fn on_msg(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Model { req, cmd } => {
                let Some(model) = self.model.as_mut() else {
                    tracing::error!(shard = self.id, "model command sent to a non-model shard");
                    return;
                };
                let mut fx = Fx {
                    io: &mut self.io,
                    shared: &self.shared,
                    date: &self.date,
                };
                model.handle(req, *cmd, now_pair(Instant::now()), &mut fx);
                publish_model_counters(model, &self.io.stats);
            }
            ShardMsg::Reply { req, reply } => {
                let cfg = self.shared.cfg.clone();
                apply_reply(&mut self.io, req, &reply, &self.date, &cfg);
            }
            ShardMsg::Deliver { frame, to } => {
                for r in to {
                    deliver_local(&mut self.io, r, &frame);
                }
            }
            ShardMsg::Close { to, code } => close_local(&mut self.io, to, code),
            ShardMsg::Shutdown => {}
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        mark_dirty(&mut self.io, key);
    }

    fn flush_dirty(&mut self) {
        let linger_until = Instant::now() + LINGER;
        // Unparked connections may have pipelined requests waiting.
        let dirty = std::mem::take(&mut self.io.dirty);
        for key in dirty {
            let Some(conn) = self.io.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            match conn.flush() {
                Ok(Flush::Drained) => {
                    if conn.closing && conn.peer_eof {
                        // The peer already half-closed: nothing to linger for.
                        let gen = conn.gen;
                        self.io.to_close.push((key, gen, CloseReason::PeerClosed));
                    } else if conn.closing && conn.linger_until.is_none() {
                        conn.begin_linger(linger_until);
                    } else if !conn.rbuf.is_empty() {
                        // Input may have been left unread behind output back-pressure.
                        self.io.again.push(key);
                    }
                }
                Ok(Flush::Blocked) => {}
                Err(_) => {
                    let gen = conn.gen;
                    self.io.to_close.push((key, gen, CloseReason::Io));
                }
            }
        }
    }

    /// Header timeouts (408), idle keep-alive timeouts, lingering-close deadlines; free heap
    /// back to the OS after a large drop in connections.
    fn sweep(&mut self, now: Instant) {
        self.trimmer.tick(self.io.conns.len(), now);
        let lim = &self.shared.cfg.limits;
        let (header_to, idle_to) = (lim.header_timeout, lim.keep_alive_timeout);
        let mut timed_out = Vec::new();
        for (key, conn) in self.io.conns.iter_mut() {
            conn.out.release_if_idle();
            if let Some(until) = conn.linger_until {
                if now >= until {
                    self.io.to_close.push((key, conn.gen, CloseReason::Timeout));
                }
                continue;
            }
            if conn.closing {
                // A peer that never reads cannot hold a closing connection open: its final
                // bytes get LINGER to leave, then the socket is dropped.
                match conn.close_deadline {
                    None => conn.close_deadline = Some(now + LINGER),
                    Some(d) if now >= d => {
                        self.io.to_close.push((key, conn.gen, CloseReason::Timeout));
                    }
                    Some(_) => {}
                }
                continue;
            }
            let Phase::Http(hp) = &conn.phase else {
                continue;
            };
            if hp.parked.is_some() || conn.closing {
                continue;
            }
            let waited = now.saturating_duration_since(conn.waiting_since);
            if !conn.rbuf.is_empty() && waited >= header_to {
                timed_out.push(key);
            } else if conn.rbuf.is_empty() && waited >= idle_to {
                self.io.to_close.push((key, conn.gen, CloseReason::Timeout));
            }
        }
        let cfg = self.shared.cfg.clone();
        for key in timed_out {
            self.io.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            if let Some(conn) = self.io.conns.get_mut(key) {
                conn.rbuf.clear();
                let mut r = Response::new(
                    408,
                    ContentKind::Text,
                    Bytes::from_static(b"Request Timeout"),
                );
                r.close = true;
                write_response(conn, &r, false, false, &self.date, &cfg);
                mark_dirty(&mut self.io, key);
            }
        }
    }

    fn retry_spill(&mut self) {
        for (queue, inbox) in self.io.spill.iter_mut().zip(&self.shared.inboxes) {
            while let Some(msg) = queue.pop_front() {
                if let Err(msg) = inbox.send(msg) {
                    queue.push_front(msg);
                    break;
                }
            }
        }
    }

    fn reap_closed(&mut self) {
        let to_close = std::mem::take(&mut self.io.to_close);
        for (key, gen, reason) in to_close {
            let Some(conn) = self.io.conns.get(key) else {
                continue;
            };
            if conn.gen != gen {
                continue;
            }
            let mut conn = self.io.conns.remove(key);
            if conn.handshake_pending {
                self.io.pending_handshakes -= 1;
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.io.stats.open.fetch_sub(1, Ordering::Relaxed);
            tracing::trace!(peer = %conn.peer, ?reason, "connection closed");
            if let Phase::Ws(WsPhase {
                kind: WsKind::Channelstream(conn_id),
                ..
            }) = conn.phase
            {
                let sock = SockRef {
                    shard: self.id,
                    slot: key as u32,
                    gen,
                };
                if self
                    .send_to_model(None, Command::WsClosed { conn_id, sock })
                    .is_err()
                {
                    // The model will still collect it: its GC closes idle connections.
                    tracing::warn!("model inbox full: socket close not reported");
                }
            }
        }
    }

    /// Graceful shutdown: stop accepting, close websockets with 1001, let HTTP finish.
    fn begin_drain(&mut self) {
        self.draining = true;
        if let Some(model) = self.model.as_mut() {
            let mut fx = Fx {
                io: &mut self.io,
                shared: &self.shared,
                date: &self.date,
            };
            model.finish_polls(&mut fx);
        }
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let frame = going_away();
        let keys: Vec<usize> = self.io.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.io.conns.get_mut(key) else {
                continue;
            };
            match &conn.phase {
                Phase::Ws(_) => {
                    if !conn.closing {
                        conn.out.push(frame.clone());
                        conn.closing = true;
                    }
                }
                Phase::Http(hp) => {
                    if hp.parked.is_none() && conn.out.is_empty() {
                        let gen = conn.gen;
                        self.io.to_close.push((key, gen, CloseReason::Shutdown));
                        continue;
                    }
                    conn.closing = hp.parked.is_none();
                }
            }
            mark_dirty(&mut self.io, key);
        }
    }
}

fn mark_dirty(io: &mut Io, key: usize) {
    if let Some(c) = io.conns.get_mut(key) {
        if !c.dirty {
            c.dirty = true;
            io.dirty.push(key);
        }
    }
}

fn now_pair(mono: Instant) -> Now {
    Now {
        mono,
        wall: chrono::Utc::now(),
    }
}

/// Push one frame to a local websocket, enforcing the slow-consumer cap.
fn deliver_local(io: &mut Io, r: LocalRef, frame: &Bytes) {
    let key = r.slot as usize;
    let max = io.max_queued;
    let Some(conn) = io.conns.get_mut(key) else {
        return;
    };
    if conn.gen != r.gen || conn.closing || !matches!(conn.phase, Phase::Ws(_)) {
        return;
    }
    if conn.out.queued() + frame.len() > max {
        // A burst (one large batch) can exceed the cap within one turn for a reader that
        // keeps up: write what the socket takes now before judging it slow.
        if conn.flush().is_err() {
            conn.out.clear();
            conn.closing = true;
            mark_dirty(io, key);
            return;
        }
    }
    if conn.out.queued() + frame.len() > max {
        // Slow consumer: it cannot keep up; close it rather than grow memory or stall the
        // channel. The close frame is best-effort (its queue is full by definition).
        io.stats
            .closed_slow_consumer
            .fetch_add(1, Ordering::Relaxed);
        conn.out.clear_unsent();
        conn.out
            .push(ws::encode_close(ws::CloseCode::Policy, "slow consumer"));
        conn.closing = true;
        mark_dirty(io, key);
        return;
    }
    conn.out.push(frame.clone());
    mark_dirty(io, key);
}

fn close_local(io: &mut Io, r: LocalRef, code: ws::CloseCode) {
    let key = r.slot as usize;
    let Some(conn) = io.conns.get_mut(key) else {
        return;
    };
    if conn.gen != r.gen || conn.closing {
        return;
    }
    conn.out.push(ws::encode_close(code, ""));
    conn.closing = true;
    mark_dirty(io, key);
}

fn apply_reply(io: &mut Io, req: ReqRef, reply: &Reply, date: &DateCache, cfg: &Config) {
    let key = req.slot as usize;
    let Some(conn) = io.conns.get_mut(key) else {
        return;
    };
    if conn.gen != req.gen {
        return;
    }
    let Phase::Http(HttpPhase { parked, .. }) = &mut conn.phase else {
        return;
    };
    let Some(p) = parked.take() else {
        return;
    };
    let mut r = Response::new(reply.status, reply.kind, reply.body.clone());
    r.cors = p.cors && reply.status == 200;
    r.close = reply.status == 500;
    let keep_alive = p.keep_alive && !conn.peer_eof;
    write_response(conn, &r, keep_alive, p.head_only, date, cfg);
    conn.waiting_since = Instant::now();
    mark_dirty(io, key);
    // Pipelined requests behind the parked one run next turn.
    if !conn_rbuf_empty(io, key) {
        io.again.push(key);
    }
}

fn conn_rbuf_empty(io: &Io, key: usize) -> bool {
    io.conns.get(key).is_none_or(|c| c.rbuf.is_empty())
}

fn write_response_at(
    io: &mut Io,
    key: usize,
    r: &Response,
    keep_alive: bool,
    head_only: bool,
    date: &DateCache,
    cfg: &Config,
) {
    if let Some(conn) = io.conns.get_mut(key) {
        write_response(conn, r, keep_alive, head_only, date, cfg);
        mark_dirty(io, key);
    }
}

const CORS_METHODS: &[u8] = b"GET, POST, OPTIONS, PUT, DELETE, PATCH";
const CORS_HEADERS: &[u8] = b"Content-Type, Depth, User-Agent, X-File-Size, X-Requested-With, If-Modified-Since, X-File-Name, Cache-Control, Pragma, Origin, Connection, Referer, Cookie";

/// `allow_cors` empty, or an entry is a substring of the request's Origin (spec §4.3).
fn cors_allowed(cfg: &Config, origin: Option<&[u8]>) -> bool {
    if cfg.allow_cors.is_empty() {
        return true;
    }
    let origin = origin.map(String::from_utf8_lossy).unwrap_or_default();
    cfg.allow_cors.iter().any(|a| origin.contains(a.as_str()))
}

/// Serialise a response into the connection's output queue.
fn write_response(
    conn: &mut Conn,
    r: &Response,
    keep_alive: bool,
    head_only: bool,
    date: &DateCache,
    _cfg: &Config,
) {
    let keep_alive = keep_alive && !r.close;
    let ctype: &[u8] = match r.kind {
        ContentKind::Json => b"application/json",
        ContentKind::Html => b"text/html; charset=UTF-8",
        ContentKind::Text => b"text/plain; charset=UTF-8",
    };
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(12);
    headers.push(("Date", date.get()));
    headers.push(("Content-Type", ctype));
    if r.cors {
        headers.push(("Access-Control-Allow-Origin", b"*"));
        headers.push(("XDomainRequestAllowed", b"1"));
        headers.push(("Access-Control-Allow-Methods", CORS_METHODS));
        headers.push(("Access-Control-Allow-Headers", CORS_HEADERS));
        headers.push(("Access-Control-Max-Age", b"86400"));
    }
    for (k, v) in &r.headers {
        headers.push((k, v.as_bytes()));
    }
    let mut out = BytesMut::with_capacity(256 + r.body.len());
    http::write_response(&mut out, r.status, &headers, &r.body, keep_alive, head_only);
    conn.out.push(out.freeze());
    if !keep_alive {
        conn.closing = true;
    }
}

/// Copy the model's own counters into the shard's metrics.
fn publish_model_counters(model: &Model, stats: &ShardStats) {
    stats
        .refused_channel_limit
        .store(model.stats().channel_limit_refused, Ordering::Relaxed);
}

/// The model's effects applied from a shard: local sockets directly, remote ones batched into
/// one `Deliver` per target shard (one frame `Bytes` shared by all of that shard's targets).
struct Fx<'a> {
    io: &'a mut Io,
    shared: &'a Shared,
    date: &'a DateCache,
}

impl Fx<'_> {
    fn send(&mut self, shard: u16, msg: ShardMsg) {
        let s = usize::from(shard);
        let Some(spill) = self.io.spill.get_mut(s) else {
            return;
        };
        let Some(inbox) = self.shared.inboxes.get(s) else {
            return;
        };
        if !spill.is_empty() {
            spill.push_back(msg);
            return;
        }
        if let Err(msg) = inbox.send(msg) {
            self.io.stats.inbox_full.fetch_add(1, Ordering::Relaxed);
            spill.push_back(msg);
        }
    }
}

impl Effects for Fx<'_> {
    fn reply(&mut self, req: ReqRef, reply: Reply) {
        if req.shard == self.io.me {
            let cfg = self.shared.cfg.clone();
            apply_reply(self.io, req, &reply, self.date, &cfg);
        } else {
            self.send(req.shard, ShardMsg::Reply { req, reply });
        }
    }

    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        let me = self.io.me;
        for s in to {
            let r = LocalRef {
                slot: s.slot,
                gen: s.gen,
            };
            if s.shard == me {
                deliver_local(self.io, r, frame);
            } else if let Some(b) = self.io.batches.get_mut(usize::from(s.shard)) {
                b.push(r);
            }
        }
        for shard in 0..self.io.batches.len() {
            let Some(batch) = self.io.batches.get_mut(shard).filter(|b| !b.is_empty()) else {
                continue;
            };
            let to = std::mem::take(batch);
            self.send(
                shard as u16,
                ShardMsg::Deliver {
                    frame: frame.clone(),
                    to,
                },
            );
        }
    }

    fn close(&mut self, sock: SockRef, code: ws::CloseCode) {
        let r = LocalRef {
            slot: sock.slot,
            gen: sock.gen,
        };
        if sock.shard == self.io.me {
            close_local(self.io, r, code);
        } else {
            self.send(sock.shard, ShardMsg::Close { to: r, code });
        }
    }
}

/// The `Date` header value, formatted once per second.
#[derive(Default)]
struct DateCache {
    secs: u64,
    value: Vec<u8>,
}

impl DateCache {
    fn refresh(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now != self.secs || self.value.is_empty() {
            self.secs = now;
            self.value = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .into_bytes();
        }
    }

    fn get(&self) -> &[u8] {
        &self.value
    }
}

/// Start `cfg.shards` shard threads, each with its own SO_REUSEPORT listener on the configured
/// address (port 0: the first shard's port is reused by the others). Listeners are bound
/// before this returns, so the server accepts connections as soon as it does.
pub fn spawn(cfg: Arc<Config>) -> io::Result<Running> {
    let n = cfg.shards.max(1);
    let mut addr = cfg.listen_addr()?;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let l = crate::net::bind_reuseport(addr)?;
        addr = l.local_addr()?;
        listeners.push(l);
    }
    spawn_on(cfg, listeners)
}

/// Start one shard per given listener. Tests use this with a separate port per shard to put a
/// client on a chosen shard and force cross-shard paths deterministically.
pub fn spawn_on(cfg: Arc<Config>, listeners: Vec<TcpListener>) -> io::Result<Running> {
    let n = listeners.len().max(1);
    let addr = match listeners.first() {
        Some(l) => l.local_addr()?,
        None => return Err(io::Error::other("no listener")),
    };
    let mut polls = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    let mut shard_addrs = Vec::with_capacity(n);
    for l in &listeners {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        inboxes.push(Inbox::new(INBOX_CAPACITY, waker));
        polls.push(poll);
        shard_addrs.push(l.local_addr()?);
    }
    let shared = Arc::new(Shared {
        cfg,
        inboxes,
        stats: (0..n).map(|_| Arc::new(ShardStats::default())).collect(),
        shutdown: AtomicBool::new(false),
    });
    let mut handles = Vec::with_capacity(n);
    for (i, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
        let shard = Shard::new(i as u16, poll, listener, shared.clone())?;
        let h = std::thread::Builder::new()
            .name(format!("herald-shard-{i}"))
            .spawn(move || shard.run())?;
        handles.push(h);
    }
    Ok(Running {
        shared,
        handles,
        addr,
        shard_addrs,
    })
}

/// A started server: its shared state, shard threads and the bound address.
pub struct Running {
    pub shared: Arc<Shared>,
    pub handles: Vec<std::thread::JoinHandle<io::Result<()>>>,
    pub addr: std::net::SocketAddr,
    /// The listening address of each shard (all equal under SO_REUSEPORT).
    pub shard_addrs: Vec<std::net::SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-connection memory is a product goal (≤ 1 KiB user space per idle subscribed
    /// websocket, measured by `herald-bench --scenario idle-10k`); this guards the fixed part.
    #[test]
    fn connection_record_stays_small() {
        let conn = std::mem::size_of::<Conn>();
        eprintln!(
            "Conn {conn} B (Phase {} B, Assembler {} B, OutQueue {} B)",
            std::mem::size_of::<Phase>(),
            std::mem::size_of::<ws::Assembler>(),
            std::mem::size_of::<crate::conn::out::OutQueue>()
        );
        assert!(conn <= 232, "Conn grew to {conn} bytes");
    }
}
