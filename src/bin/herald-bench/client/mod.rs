//! The load engine: one thread, one `mio::Poll`, every socket in one slab.
//!
//! One run goes through five phases:
//!
//! ```text
//! Connecting ─▶ Settling ─▶ Measuring ─▶ Draining ─▶ Done
//!  /connect +     server      publish      wait for
//!  /ws per sub,   RSS, CPU    (open or     in-flight
//!  publishers     baseline    closed loop) deliveries
//! ```
//!
//! Subscribers are connected the Channelstream way: a small pool of keep-alive *control*
//! connections sends signed `POST /connect` (one channel each); each reply's `conn_id` opens a
//! websocket at once (`GET /ws?conn_id=`), which matters because Channelstream stops its
//! per-connection heartbeat if no socket is attached within 5 s of `/connect`.
//!
//! Publishers are keep-alive connections with one request in flight each (no pipelining: not
//! every server on this path supports it). In open-loop mode message `k` is *due* at
//! `start + k/R`; its payload carries that intended time, so when every publisher is busy the
//! wait shows up in the latency (no coordinated omission). A timerfd wakes the loop at the next
//! due time with sub-millisecond precision.
//!
//! Hot paths do not allocate: reads go into one shared scratch buffer and only an incomplete
//! tail is copied into the connection's retained buffer; the frame scan is a byte search; the
//! publish request is a template patched in place; per-message bookkeeping is a `Vec` sized up
//! front from rate × duration.
//!
//! Edge-triggered discipline: every handler reads or writes until `WouldBlock`. Sockets that
//! die are marked and reaped after the event batch, so a slab key is never reused while events
//! for its previous socket may still be pending in the same batch.
//!
//! Layout: this file has the run's configuration, the connection records, the engine and
//! its event loop; `subscriber` (websocket handshake and frames), `http_conn` (control and
//! publisher connections), `publisher` (pacing), `phases` (the phase machine) and `stats`
//! (counters and the result) add the engine's handlers by concern; `churn` adds presence
//! subscriptions (signed after `connection_established`), member events and churn pacing.

mod churn;
mod http_conn;
mod phases;
mod publisher;
mod stats;
mod subscriber;

use stats::{MsgRec, Stats};

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use crate::tls::BStream;
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::http::{self, MessageTemplate};
use crate::pusher::Publisher as PusherPublisher;
use crate::report::{CpuReport, Percentiles, RunResult};
use crate::scenario::{Mode, Scenario, Target};
use crate::sys::{self, TimerFd};
use crate::wsframe::{self, Op};

const TIMER: Token = Token(usize::MAX - 1);
/// Control connections used to send `/connect` in parallel.
const CONTROL_CONNS: usize = 16;
const SCRATCH: usize = 256 * 1024;
const SETTLE_NS: u64 = 500_000_000;
/// A dead control or publisher connection is replaced, but not forever against a dead server.
const MAX_RECONNECTS: u32 = 64;
const MAX_ERRORS_KEPT: usize = 20;

/// How the tool authenticates server-API calls.
pub enum Auth {
    /// No `X-Channelstream-Secret` header (for servers or tests that do not check).
    None,
    /// Sign with the shared secret; the token is refreshed every few seconds, well inside the
    /// server's 60 s `max_age`.
    Sign {
        signer: herald::auth::Signer,
        cached: Option<(u64, String)>,
    },
}

impl Auth {
    pub fn new(secret: Option<&str>) -> Auth {
        match secret {
            Some(s) => Auth::Sign {
                signer: herald::auth::Signer::new(s),
                cached: None,
            },
            None => Auth::None,
        }
    }

    /// The token for `now` (unix seconds) and whether it changed since the last call.
    fn token(&mut self, now: u64) -> (Option<&str>, bool) {
        match self {
            Auth::None => (None, false),
            Auth::Sign { signer, cached } => {
                let stale = match cached {
                    Some((at, _)) => now.saturating_sub(*at) >= 5,
                    None => true,
                };
                if stale {
                    *cached = Some((now, sign_token(signer, now)));
                }
                (cached.as_ref().map(|(_, t)| t.as_str()), stale)
            }
        }
    }
}

/// The one place the tool signs (§3.2: sign the literal value `channelstream`).
fn sign_token(signer: &herald::auth::Signer, unix_ts: u64) -> String {
    signer.sign("channelstream", unix_ts)
}

/// Everything one run needs besides the scenario.
pub struct RunConfig<'a> {
    pub scenario: &'a Scenario,
    pub target: &'a Target,
    pub round: u32,
    /// Unique per run: prefixes user and channel names so runs never share server state.
    pub tag: String,
    /// Stamp messages with absolute CLOCK_MONOTONIC times, not times since this run began, so
    /// subscribers in other processes of one run (`--shared-tag`) measure the same latency.
    pub shared_clock: bool,
    pub server_pid: Option<u32>,
    pub server_cores: Option<Vec<usize>>,
    pub source_ips: Vec<IpAddr>,
    /// Where subscribers connect, round-robin (empty: the target).
    pub sub_addrs: Vec<std::net::SocketAddr>,
    pub connect_timeout_s: f64,
    /// Subscribers between `/connect` sent and websocket open, at most. Bounds the burst of
    /// SYNs the client creates: above the server's listen backlog, handshakes overflow the
    /// accept queue and then recover only through slow retransmits.
    pub connect_concurrency: u32,
    pub progress: bool,
    /// For `https://` targets: the client config (trusting `--tls-ca`).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Subscribers offer permessage-deflate and inflate RSV1 frames.
    pub deflate: bool,
    /// The Pusher app of `pusher-…` scenarios (id, key, secret).
    pub app: crate::pusher::App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Settling { until: u64 },
    Measuring { until: u64 },
    Draining { until: u64 },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    Connecting,
    Handshake,
    /// Pusher only: upgraded, `pusher:subscribe` sent, awaiting `subscription_succeeded`.
    Subscribing,
    Open,
    Closed,
}

struct Sub {
    stream: BStream,
    chan: u32,
    state: SubState,
    /// Incomplete tail of the byte stream (empty almost always; capacity kept).
    rbuf: Vec<u8>,
    /// Pending client bytes (handshake request, pongs).
    wbuf: Vec<u8>,
    /// Presence churn: this socket leaves and joins (not a counted subscriber).
    churner: bool,
    /// Presence: whether the last churn operation was a join (churners only).
    joined: bool,
    /// Presence: the socket id of `connection_established`, which the auth signs.
    socket_id: Option<Box<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Control,
    Publisher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpState {
    Connecting,
    Ready,
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inflight {
    Idle,
    Connect { sub: u32 },
    Message { seq: u64, chan: u32, sent_ns: u64 },
}

struct HttpConn {
    stream: BStream,
    role: Role,
    state: HttpState,
    inflight: Inflight,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// The last answer said `Connection: close`: replace the connection once it ends.
    closing: bool,
}

enum Slot {
    Sub(Sub),
    Http(HttpConn),
}

/// The engine of one run.
struct Engine<'a> {
    cfg: &'a RunConfig<'a>,
    auth: &'a mut Auth,
    poll: Poll,
    slots: Slab<Slot>,
    scratch: Vec<u8>,
    timer: TimerFd,
    epoch: u64,
    phase: Phase,
    stats: Stats,
    tpl: MessageTemplate,
    /// The Pusher wire (scenarios named `pusher-…`): subscribe frames, signed publishes.
    pusher: Option<PusherPublisher>,
    /// The delivery's `t` and `s` keys as they appear on the wire.
    t_key: &'static [u8],
    s_key: &'static [u8],
    chan_prefix: String,
    /// Open subscribers per channel: the expected fan-out of a message to that channel.
    chan_subs: Vec<u32>,
    /// Presence churn: the slab key of each churner (by churner index), and the next
    /// operation of the open-loop churn schedule.
    churner_keys: Vec<usize>,
    next_churn: u64,
    next_sub: u32,
    pending_subs: u32,
    idle_controls: Vec<usize>,
    idle_publishers: Vec<usize>,
    next_seq: u64,
    total_msgs: u64,
    pub_start: u64,
    pong_mask: u32,
    // Samples taken at phase edges.
    connect_start: u64,
    connect_end: u64,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    cores_start: Vec<sys::CoreTimes>,
    cores_end: Vec<sys::CoreTimes>,
    self_cpu_start: u64,
    self_cpu_end: u64,
    proc_ticks_start: Option<u64>,
    proc_ticks_end: Option<u64>,
    window_start: u64,
    window_end: u64,
    last_progress: u64,
    progress_tty: bool,
    /// permessage-deflate: the inflater (reset per message: the server negotiates no context
    /// takeover) and its output buffer.
    inflater: Option<flate2::Decompress>,
    inflated: Vec<u8>,
}

/// Run one scenario against one target and return its measurements.
pub fn run(cfg: &RunConfig<'_>, auth: &mut Auth) -> io::Result<RunResult> {
    let sc = cfg.scenario;
    // CLOCK_MONOTONIC is one clock for every process of the machine.
    let epoch = if cfg.shared_clock { 0 } else { sys::now_ns() };
    let (token, _) = auth.token(sys::unix_secs());
    let chan_prefix = if sc.presence {
        format!("presence-{}-c", cfg.tag)
    } else {
        format!("{}-c", cfg.tag)
    };
    let tpl = MessageTemplate::new(&cfg.target.host, token, &chan_prefix, sc.channels, sc.size);
    let pusher = sc.is_pusher().then(|| {
        PusherPublisher::new(
            &cfg.target.host,
            &cfg.app,
            &chan_prefix,
            sc.channels,
            sc.size,
        )
    });
    let (t_key, s_key): (&'static [u8], &'static [u8]) = if pusher.is_some() {
        (crate::pusher::T_KEY, crate::pusher::S_KEY)
    } else {
        (b"\"t\"", b"\"s\"")
    };
    let capacity = if sc.subs > 0 {
        sc.total_messages() as usize + 16
    } else {
        0
    };
    let mut e = Engine {
        cfg,
        auth,
        poll: Poll::new()?,
        slots: Slab::with_capacity((sc.subs + sc.churners) as usize + 64),
        scratch: vec![0u8; SCRATCH],
        timer: TimerFd::new()?,
        epoch,
        phase: Phase::Connecting,
        stats: Stats::new(capacity),
        tpl,
        pusher,
        t_key,
        s_key,
        chan_prefix,
        chan_subs: vec![0; sc.channels as usize],
        churner_keys: Vec::with_capacity(sc.churners as usize),
        next_churn: 0,
        next_sub: 0,
        pending_subs: 0,
        idle_controls: Vec::new(),
        idle_publishers: Vec::new(),
        next_seq: 0,
        total_msgs: sc.total_messages(),
        pub_start: 0,
        pong_mask: 0x5eed_1234,
        inflater: cfg
            .deflate
            .then(|| flate2::Decompress::new_with_window_bits(false, 15)),
        inflated: Vec::new(),
        connect_start: 0,
        connect_end: 0,
        rss_before: None,
        rss_after: None,
        cores_start: Vec::new(),
        cores_end: Vec::new(),
        self_cpu_start: 0,
        self_cpu_end: 0,
        proc_ticks_start: None,
        proc_ticks_end: None,
        window_start: 0,
        window_end: 0,
        last_progress: 0,
        progress_tty: sys::stderr_is_tty(),
    };
    let raw_timer = e.timer.raw();
    e.poll
        .registry()
        .register(&mut SourceFd(&raw_timer), TIMER, Interest::READABLE)?;
    e.start()?;
    e.event_loop()?;
    Ok(e.finish())
}

impl Engine<'_> {
    fn rel_now(&self) -> u64 {
        sys::now_ns().saturating_sub(self.epoch)
    }

    fn start(&mut self) -> io::Result<()> {
        let sc = self.cfg.scenario;
        self.rss_before = self.cfg.server_pid.and_then(sys::read_vmrss_kib);
        self.connect_start = self.rel_now();
        // Pusher subscribers need no `/connect`: they open their websocket directly.
        let controls = if self.pusher.is_some() {
            0
        } else {
            CONTROL_CONNS
        };
        for _ in 0..controls.min(sc.subs as usize) {
            self.open_http(Role::Control)?;
        }
        if sc.mode != Mode::Idle {
            for _ in 0..sc.publishers {
                self.open_http(Role::Publisher)?;
            }
        }
        Ok(())
    }

    fn open_http(&mut self, role: Role) -> io::Result<usize> {
        let tcp = sys::connect_nonblocking(self.cfg.target.addr, None)?;
        let stream = BStream::new(tcp, self.cfg.tls.as_ref(), self.cfg.target.addr.ip())?;
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        let mut conn = HttpConn {
            stream,
            role,
            state: HttpState::Connecting,
            inflight: Inflight::Idle,
            rbuf: Vec::new(),
            wbuf: Vec::with_capacity(if role == Role::Publisher {
                match &self.pusher {
                    Some(p) => p.request_len_hint(),
                    None => self.tpl.bytes.len(),
                }
            } else {
                512
            }),
            wpos: 0,
            closing: false,
        };
        self.poll.registry().register(
            &mut conn.stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Slot::Http(conn));
        Ok(key)
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let sc = self.cfg.scenario;
        let mut events = Events::with_capacity(1024);
        let mut reap: Vec<usize> = Vec::new();
        // Hard stop, whatever happens: connect budget + settle + load + drain + slack.
        let hard_stop = self.rel_now()
            + secs_ns(self.cfg.connect_timeout_s + sc.duration_s + sc.drain_s + 10.0);
        while self.phase != Phase::Done {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                if ev.token() == TIMER {
                    self.timer.drain();
                    continue;
                }
                let key = ev.token().0;
                let is_sub = matches!(self.slots.get(key), Some(Slot::Sub(_)));
                let dead = if is_sub {
                    self.on_sub_event(
                        key,
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        ev.is_writable(),
                        ev.is_read_closed() || ev.is_error(),
                    )
                } else {
                    self.on_http_event(
                        key,
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        ev.is_writable(),
                    )
                };
                if dead {
                    reap.push(key);
                }
            }
            for key in reap.drain(..) {
                self.reap(key);
            }
            let now = self.rel_now();
            self.feed_controls();
            self.pump_publishers(now);
            self.pump_churn(now);
            self.advance_phase(now);
            if now >= hard_stop {
                self.stats
                    .error("hard time limit reached; results are partial".into());
                self.close_window(now);
                self.phase = Phase::Done;
            }
            self.progress(now, false);
        }
        self.progress(self.rel_now(), true);
        Ok(())
    }

    fn poll_timeout(&self) -> Duration {
        let now = self.rel_now();
        let deadline = match self.phase {
            Phase::Settling { until } | Phase::Measuring { until } | Phase::Draining { until } => {
                until
            }
            _ => now + 100_000_000,
        };
        Duration::from_nanos(deadline.saturating_sub(now).clamp(0, 100_000_000))
    }

    fn reap(&mut self, key: usize) {
        if let Some(slot) = self.slots.try_remove(key) {
            let _ = match slot {
                Slot::Sub(mut s) => self.poll.registry().deregister(&mut s.stream),
                Slot::Http(mut c) => self.poll.registry().deregister(&mut c.stream),
            };
        }
    }
}

enum ConnectState {
    Pending,
    Connected,
    Failed(io::Error),
}

/// mio's recipe for a non-blocking connect: a writable (or error) event, then `take_error`
/// and `peer_addr` tell whether it completed.
fn connect_result(stream: &BStream) -> ConnectState {
    let stream = stream.tcp();
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return ConnectState::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => ConnectState::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => ConnectState::Pending,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => ConnectState::Pending,
        Err(e) => ConnectState::Failed(e),
    }
}

/// Write `buf[*pos..]` until done or `WouldBlock`.
/// Then push what the transport holds (TLS records).
fn flush_pos(stream: &mut BStream, buf: &[u8], pos: &mut usize) -> io::Result<()> {
    while let Some(rest) = buf.get(*pos..).filter(|r| !r.is_empty()) {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

/// Write a small pending buffer; what was written is removed (rare path: handshake, pongs).
fn flush_vec(stream: &mut BStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut pos = 0;
    let r = flush_pos(stream, buf, &mut pos);
    buf.drain(..pos.min(buf.len()));
    r
}

fn secs_ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}
