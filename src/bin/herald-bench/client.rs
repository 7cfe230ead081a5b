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

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::http::{self, MessageTemplate};
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
    pub server_pid: Option<u32>,
    pub server_cores: Option<Vec<usize>>,
    pub source_ips: Vec<IpAddr>,
    pub connect_timeout_s: f64,
    /// Subscribers between `/connect` sent and websocket open, at most. Bounds the burst of
    /// SYNs the client creates: above the server's listen backlog, handshakes overflow the
    /// accept queue and then recover only through slow retransmits.
    pub connect_concurrency: u32,
    pub progress: bool,
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
    Open,
    Closed,
}

struct Sub {
    stream: TcpStream,
    chan: u32,
    state: SubState,
    /// Incomplete tail of the byte stream (empty almost always; capacity kept).
    rbuf: Vec<u8>,
    /// Pending client bytes (handshake request, pongs).
    wbuf: Vec<u8>,
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
    stream: TcpStream,
    role: Role,
    state: HttpState,
    inflight: Inflight,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
}

enum Slot {
    Sub(Sub),
    Http(HttpConn),
}

/// Per-message bookkeeping: deliveries seen, and whether the server accepted the POST.
#[derive(Clone, Copy, Default)]
struct MsgRec {
    count: u32,
    accepted: bool,
}

/// Counters that the event handlers update.
struct Stats {
    latency: Histogram<u64>,
    post_latency: Histogram<u64>,
    msgs: Vec<MsgRec>,
    deliveries: u64,
    deliveries_in_window: u64,
    unexpected: u64,
    heartbeats: u64,
    other_frames: u64,
    server_closes: u64,
    protocol_errors: u64,
    subs_open: u32,
    subs_failed: u32,
    subs_closed_early: u32,
    sent: u64,
    accepted: u64,
    publish_errors: u64,
    expected: u64,
    max_send_lag_ns: u64,
    reconnects: u32,
    errors: Vec<String>,
}

impl Stats {
    fn new(capacity: usize) -> Stats {
        // 1 ns .. 10 min at 3 significant digits (~0.1 % resolution).
        let h = || {
            Histogram::new_with_bounds(1, 600_000_000_000, 3)
                .expect("Bug: constant histogram bounds are valid")
        };
        Stats {
            latency: h(),
            post_latency: h(),
            msgs: Vec::with_capacity(capacity),
            deliveries: 0,
            deliveries_in_window: 0,
            unexpected: 0,
            heartbeats: 0,
            other_frames: 0,
            server_closes: 0,
            protocol_errors: 0,
            subs_open: 0,
            subs_failed: 0,
            subs_closed_early: 0,
            sent: 0,
            accepted: 0,
            publish_errors: 0,
            expected: 0,
            max_send_lag_ns: 0,
            reconnects: 0,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
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
    chan_prefix: String,
    /// Open subscribers per channel: the expected fan-out of a message to that channel.
    chan_subs: Vec<u32>,
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
}

/// Run one scenario against one target and return its measurements.
pub fn run(cfg: &RunConfig<'_>, auth: &mut Auth) -> io::Result<RunResult> {
    let sc = cfg.scenario;
    let epoch = sys::now_ns();
    let (token, _) = auth.token(sys::unix_secs());
    let chan_prefix = format!("{}-c", cfg.tag);
    let tpl = MessageTemplate::new(&cfg.target.host, token, &chan_prefix, sc.channels, sc.size);
    let capacity = if sc.subs > 0 {
        sc.total_messages() as usize + 16
    } else {
        0
    };
    let mut e = Engine {
        cfg,
        auth,
        poll: Poll::new()?,
        slots: Slab::with_capacity(sc.subs as usize + 64),
        scratch: vec![0u8; SCRATCH],
        timer: TimerFd::new()?,
        epoch,
        phase: Phase::Connecting,
        stats: Stats::new(capacity),
        tpl,
        chan_prefix,
        chan_subs: vec![0; sc.channels as usize],
        next_sub: 0,
        pending_subs: 0,
        idle_controls: Vec::new(),
        idle_publishers: Vec::new(),
        next_seq: 0,
        total_msgs: sc.total_messages(),
        pub_start: 0,
        pong_mask: 0x5eed_1234,
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
        for _ in 0..CONTROL_CONNS.min(sc.subs as usize) {
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
        let stream = sys::connect_nonblocking(self.cfg.target.addr, None)?;
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        let mut conn = HttpConn {
            stream,
            role,
            state: HttpState::Connecting,
            inflight: Inflight::Idle,
            rbuf: Vec::new(),
            wbuf: Vec::with_capacity(if role == Role::Publisher {
                self.tpl.bytes.len()
            } else {
                512
            }),
            wpos: 0,
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

    // ---- subscribers ---------------------------------------------------------------------

    /// Returns true when the subscriber is finished and must be reaped.
    fn on_sub_event(&mut self, key: usize, readable: bool, writable: bool, hup: bool) -> bool {
        let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
            return false;
        };
        if sub.state == SubState::Closed {
            return false;
        }
        if sub.state == SubState::Connecting {
            match connect_result(&sub.stream) {
                ConnectState::Pending => return false,
                ConnectState::Failed(e) => {
                    let chan = sub.chan;
                    return self.sub_failed(key, chan, format!("ws connect: {e}"));
                }
                ConnectState::Connected => sub.state = SubState::Handshake,
            }
        }
        if writable || !sub.wbuf.is_empty() {
            if let Err(e) = flush_vec(&mut sub.stream, &mut sub.wbuf) {
                return self.sub_ended(key, format!("ws write: {e}"));
            }
        }
        if !readable {
            return false;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.read_sub(key, &mut scratch, hup);
        self.scratch = scratch;
        match r {
            Ok(()) => false,
            Err(why) => self.sub_ended(key, why),
        }
    }

    /// Drain the socket; parse what is complete. Err = the subscriber is finished.
    ///
    /// A read shorter than the scratch buffer ends the drain without the extra `read` that
    /// would return `WouldBlock`: on Linux every later arrival raises a new edge-triggered
    /// event, so nothing is stranded, and it saves one syscall per delivery at low fan-in.
    /// Only when the event also reported a hang-up do we read on to see the EOF, because no
    /// later edge would announce it.
    fn read_sub(&mut self, key: usize, scratch: &mut [u8], hup: bool) -> Result<(), String> {
        loop {
            let n = {
                let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
                    return Ok(());
                };
                match sub.stream.read(scratch) {
                    Ok(0) => return Err(String::new()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("ws read: {e}")),
                }
            };
            let now = self.rel_now();
            let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
                return Ok(());
            };
            let mut tail = std::mem::take(&mut sub.rbuf);
            let result = if tail.is_empty() {
                let chunk = scratch.get_mut(..n).unwrap_or_default();
                let r = self.process_sub_bytes(key, chunk, now);
                if let Ok(used) = r {
                    tail.extend_from_slice(chunk.get(used..).unwrap_or_default());
                }
                r
            } else {
                tail.extend_from_slice(scratch.get(..n).unwrap_or_default());
                let r = self.process_sub_bytes(key, &mut tail, now);
                if let Ok(used) = r {
                    tail.drain(..used.min(tail.len()));
                }
                r
            };
            if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                sub.rbuf = tail;
            }
            result?;
            if n < scratch.len() && !hup {
                return Ok(());
            }
        }
    }

    /// Handle the bytes of one subscriber: the 101 head first, then frames. Returns how many
    /// bytes were consumed (the rest is an incomplete head or frame).
    fn process_sub_bytes(&mut self, key: usize, buf: &mut [u8], now: u64) -> Result<usize, String> {
        let mut pos = 0usize;
        let state = match self.slots.get(key) {
            Some(Slot::Sub(s)) => s.state,
            _ => return Ok(0),
        };
        if state == SubState::Handshake {
            match http::parse_head(buf) {
                Ok(None) => return Ok(0),
                Ok(Some((101, n))) => {
                    pos = n;
                    self.sub_opened(key);
                }
                Ok(Some((code, _))) => {
                    let snippet =
                        String::from_utf8_lossy(buf.get(..buf.len().min(200)).unwrap_or_default())
                            .into_owned();
                    return Err(format!("ws handshake: HTTP {code}: {snippet}"));
                }
                Err(e) => return Err(format!("ws handshake: {e}")),
            }
        }
        loop {
            let rest = buf.get_mut(pos..).unwrap_or_default();
            let head = match wsframe::decode_head(rest) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(pos),
                Err(e) => {
                    self.stats.protocol_errors += 1;
                    return Err(format!("ws frame: {e}"));
                }
            };
            let Some(payload) = rest.get_mut(head.header_len..head.frame_len()) else {
                return Ok(pos);
            };
            if let Some(m) = head.mask {
                wsframe::unmask(payload, m);
            }
            match head.op {
                Op::Text | Op::Binary | Op::Continuation => self.on_data(payload, now),
                Op::Ping => self.queue_pong(key, payload),
                Op::Pong => {}
                Op::Close => {
                    self.stats.server_closes += 1;
                    return Err("server sent close".into());
                }
            }
            pos += head.frame_len();
        }
    }

    /// One data frame: a heartbeat, one of our messages, or something else (presence, …).
    fn on_data(&mut self, payload: &[u8], now: u64) {
        if wsframe::is_heartbeat(payload) {
            self.stats.heartbeats += 1;
            return;
        }
        let t = wsframe::find_u64_field(payload, b"\"t\"");
        let s = wsframe::find_u64_field(payload, b"\"s\"");
        let (Some(t), Some(s)) = (t, s) else {
            self.stats.other_frames += 1;
            return;
        };
        let st = &mut self.stats;
        st.latency.saturating_record(now.saturating_sub(t).max(1));
        st.deliveries += 1;
        if matches!(self.phase, Phase::Measuring { .. }) {
            st.deliveries_in_window += 1;
        }
        match usize::try_from(s).ok().and_then(|i| st.msgs.get_mut(i)) {
            Some(rec) => rec.count = rec.count.saturating_add(1),
            None => st.unexpected += 1,
        }
    }

    fn queue_pong(&mut self, key: usize, payload: &[u8]) {
        self.pong_mask = self.pong_mask.rotate_left(7) ^ 0x9e37_79b9;
        let mask = self.pong_mask.to_be_bytes();
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            wsframe::encode_masked(Op::Pong, payload, mask, &mut sub.wbuf);
            let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
        }
    }

    fn sub_opened(&mut self, key: usize) {
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Open;
            if let Some(c) = self.chan_subs.get_mut(sub.chan as usize) {
                *c += 1;
            }
            self.stats.subs_open += 1;
            self.pending_subs = self.pending_subs.saturating_sub(1);
        }
    }

    /// Before open: a connect failure. Returns true (reap).
    fn sub_failed(&mut self, key: usize, _chan: u32, why: String) -> bool {
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Closed;
        }
        self.stats.subs_failed += 1;
        self.pending_subs = self.pending_subs.saturating_sub(1);
        self.stats.error(why);
        true
    }

    /// Any end of a subscriber; dispatches on whether it had opened.
    fn sub_ended(&mut self, key: usize, why: String) -> bool {
        let (state, chan) = match self.slots.get(key) {
            Some(Slot::Sub(s)) => (s.state, s.chan),
            _ => return false,
        };
        match state {
            SubState::Connecting | SubState::Handshake => {
                let why = if why.is_empty() {
                    "ws: closed before 101".into()
                } else {
                    why
                };
                self.sub_failed(key, chan, why)
            }
            SubState::Open => {
                if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                    sub.state = SubState::Closed;
                }
                if !matches!(self.phase, Phase::Done) {
                    self.stats.subs_closed_early += 1;
                    if !why.is_empty() {
                        self.stats.error(why);
                    }
                }
                true
            }
            SubState::Closed => false,
        }
    }

    fn open_sub(&mut self, idx: u32, conn_id: &str) {
        let chan = idx % self.cfg.scenario.channels;
        let src = match self.cfg.source_ips.len() {
            0 => None,
            n => self.cfg.source_ips.get(idx as usize % n).copied(),
        };
        let stream = match sys::connect_nonblocking(self.cfg.target.addr, src) {
            Ok(s) => s,
            Err(e) => {
                self.stats.subs_failed += 1;
                self.pending_subs = self.pending_subs.saturating_sub(1);
                self.stats.error(format!("ws socket: {e}"));
                return;
            }
        };
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        let mut sub = Sub {
            stream,
            chan,
            state: SubState::Connecting,
            rbuf: Vec::new(),
            wbuf: http::ws_request(&self.cfg.target.host, conn_id),
        };
        if let Err(e) = self.poll.registry().register(
            &mut sub.stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.stats.subs_failed += 1;
            self.pending_subs = self.pending_subs.saturating_sub(1);
            self.stats.error(format!("register: {e}"));
            return;
        }
        entry.insert(Slot::Sub(sub));
    }

    // ---- control and publisher connections ------------------------------------------------

    fn on_http_event(&mut self, key: usize, readable: bool, writable: bool) -> bool {
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if c.state == HttpState::Dead {
            return false;
        }
        if c.state == HttpState::Connecting {
            match connect_result(&c.stream) {
                ConnectState::Pending => return false,
                ConnectState::Failed(e) => return self.http_died(key, format!("connect: {e}")),
                ConnectState::Connected => {
                    c.state = HttpState::Ready;
                    match c.role {
                        Role::Control => self.idle_controls.push(key),
                        Role::Publisher => self.idle_publishers.push(key),
                    }
                }
            }
        }
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if writable && c.wpos < c.wbuf.len() {
            if let Err(e) = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos) {
                return self.http_died(key, format!("write: {e}"));
            }
        }
        if !readable {
            return false;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.read_http(key, &mut scratch);
        self.scratch = scratch;
        match r {
            Ok(()) => false,
            Err(why) => self.http_died(key, why),
        }
    }

    fn read_http(&mut self, key: usize, scratch: &mut [u8]) -> Result<(), String> {
        loop {
            let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
                return Ok(());
            };
            let n = match c.stream.read(scratch) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            let mut buf = std::mem::take(&mut c.rbuf);
            let chunk = scratch.get(..n).unwrap_or_default();
            let result = if buf.is_empty() {
                let r = self.process_http_bytes(key, chunk);
                if let Ok(used) = r {
                    buf.extend_from_slice(chunk.get(used..).unwrap_or_default());
                }
                r
            } else {
                buf.extend_from_slice(chunk);
                let r = self.process_http_bytes(key, &buf);
                if let Ok(used) = r {
                    buf.drain(..used.min(buf.len()));
                }
                r
            };
            if let Some(Slot::Http(c)) = self.slots.get_mut(key) {
                c.rbuf = buf;
            }
            result?;
        }
    }

    fn process_http_bytes(&mut self, key: usize, buf: &[u8]) -> Result<usize, String> {
        let mut pos = 0usize;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let resp = match http::parse_response(rest) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(pos),
                Err(e) => return Err(format!("response: {e}")),
            };
            let inflight = match self.slots.get_mut(key) {
                Some(Slot::Http(c)) => std::mem::replace(&mut c.inflight, Inflight::Idle),
                _ => return Ok(pos),
            };
            let raw = rest.get(..resp.total_len).unwrap_or_default();
            match inflight {
                Inflight::Idle => return Err("response without a request".into()),
                Inflight::Connect { sub } => self.on_connect_reply(sub, raw, &resp),
                Inflight::Message { seq, chan, sent_ns } => {
                    self.on_message_reply(seq, chan, sent_ns, raw, &resp)
                }
            }
            if let Some(Slot::Http(c)) = self.slots.get(key) {
                match c.role {
                    Role::Control => self.idle_controls.push(key),
                    Role::Publisher => self.idle_publishers.push(key),
                }
            }
            pos += resp.total_len;
        }
    }

    fn on_connect_reply(&mut self, sub: u32, raw: &[u8], resp: &http::Response) {
        let body = http::body_bytes(raw, resp).unwrap_or_default();
        let conn_id =
            http::find_string_field(&body, "conn_id").and_then(|b| std::str::from_utf8(b).ok());
        match (resp.status, conn_id) {
            (200, Some(id)) => {
                let id = id.to_string();
                self.open_sub(sub, &id);
            }
            (status, _) => {
                self.stats.subs_failed += 1;
                self.pending_subs = self.pending_subs.saturating_sub(1);
                let snippet =
                    String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default())
                        .into_owned();
                self.stats
                    .error(format!("POST /connect -> {status}: {snippet}"));
            }
        }
    }

    fn on_message_reply(
        &mut self,
        seq: u64,
        chan: u32,
        sent_ns: u64,
        raw: &[u8],
        resp: &http::Response,
    ) {
        let now = self.rel_now();
        self.stats
            .post_latency
            .saturating_record(now.saturating_sub(sent_ns).max(1));
        if resp.status == 200 {
            self.stats.accepted += 1;
            if let Some(rec) = usize::try_from(seq)
                .ok()
                .and_then(|i| self.stats.msgs.get_mut(i))
            {
                rec.accepted = true;
                self.stats.expected +=
                    u64::from(self.chan_subs.get(chan as usize).copied().unwrap_or(0));
            }
        } else {
            self.stats.publish_errors += 1;
            if self.stats.errors.len() < MAX_ERRORS_KEPT {
                let body = http::body_bytes(raw, resp).unwrap_or_default();
                let snippet =
                    String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default())
                        .into_owned();
                self.stats
                    .error(format!("POST /message -> {}: {snippet}", resp.status));
            }
        }
    }

    /// A control or publisher connection failed: account for its request, replace it.
    fn http_died(&mut self, key: usize, why: String) -> bool {
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        c.state = HttpState::Dead;
        let role = c.role;
        match std::mem::replace(&mut c.inflight, Inflight::Idle) {
            Inflight::Idle => {}
            Inflight::Connect { .. } => {
                self.stats.subs_failed += 1;
                self.pending_subs = self.pending_subs.saturating_sub(1);
            }
            Inflight::Message { .. } => self.stats.publish_errors += 1,
        }
        self.stats.error(format!("{role:?} connection: {why}"));
        if self.phase != Phase::Done && self.stats.reconnects < MAX_RECONNECTS {
            self.stats.reconnects += 1;
            if let Err(e) = self.open_http(role) {
                self.stats.error(format!("reconnect: {e}"));
            }
        }
        true
    }

    fn reap(&mut self, key: usize) {
        if let Some(slot) = self.slots.try_remove(key) {
            let _ = match slot {
                Slot::Sub(mut s) => self.poll.registry().deregister(&mut s.stream),
                Slot::Http(mut c) => self.poll.registry().deregister(&mut c.stream),
            };
        }
    }

    /// Hand the next `/connect` to every idle control connection.
    fn feed_controls(&mut self) {
        let subs = self.cfg.scenario.subs;
        while self.next_sub < subs && self.pending_subs < self.cfg.connect_concurrency {
            let Some(key) = self.idle_controls.pop() else {
                break;
            };
            let idx = self.next_sub;
            let username = format!("{}-u{idx}", self.cfg.tag);
            let chan = http::channel_name(
                &self.chan_prefix,
                idx % self.cfg.scenario.channels,
                self.cfg.scenario.channels,
            );
            let (token, _) = self.auth.token(sys::unix_secs());
            let req = http::connect_request(&self.cfg.target.host, token, &username, &chan);
            let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
                continue;
            };
            if c.state != HttpState::Ready || c.inflight != Inflight::Idle {
                continue;
            }
            c.wbuf = req;
            c.wpos = 0;
            c.inflight = Inflight::Connect { sub: idx };
            self.next_sub += 1;
            self.pending_subs += 1;
            if let Err(e) = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos) {
                self.http_died(key, format!("write: {e}"));
                self.reap(key);
            }
        }
    }

    /// Send every message that is due, on idle publisher connections.
    fn pump_publishers(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Measuring { .. }) {
            return;
        }
        let sc = self.cfg.scenario;
        let (token, changed) = self.auth.token(sys::unix_secs());
        if changed {
            self.tpl = MessageTemplate::new(
                &self.cfg.target.host,
                token,
                &self.chan_prefix,
                sc.channels,
                sc.size,
            );
        }
        match sc.mode {
            Mode::Idle => {}
            Mode::ClosedLoop => {
                while let Some(key) = self.idle_publishers.pop() {
                    let seq = self.next_seq;
                    if self.send_message(key, seq, now) {
                        self.next_seq += 1;
                    }
                }
            }
            Mode::OpenLoop => {
                let due = self.due(now);
                while self.next_seq < due {
                    let Some(key) = self.idle_publishers.pop() else {
                        break;
                    };
                    let seq = self.next_seq;
                    let intended = self.intended(seq);
                    if self.send_message(key, seq, intended) {
                        self.stats.max_send_lag_ns =
                            self.stats.max_send_lag_ns.max(now.saturating_sub(intended));
                        self.next_seq += 1;
                    }
                }
                if self.next_seq < self.total_msgs && !self.idle_publishers.is_empty() {
                    let at = self.epoch + self.intended(self.next_seq);
                    if let Err(e) = self.timer.arm_at(at) {
                        self.stats.error(format!("timerfd: {e}"));
                    }
                }
            }
        }
    }

    /// How many messages of the open-loop schedule are due at `now` (0 outside it).
    fn due(&self, now: u64) -> u64 {
        if self.cfg.scenario.mode != Mode::OpenLoop
            || !matches!(self.phase, Phase::Measuring { .. })
        {
            return 0;
        }
        let elapsed = now.saturating_sub(self.pub_start) as f64;
        ((elapsed * self.cfg.scenario.rate / 1e9).floor() as u64 + 1).min(self.total_msgs)
    }

    fn intended(&self, seq: u64) -> u64 {
        self.pub_start + (seq as f64 * 1e9 / self.cfg.scenario.rate) as u64
    }

    /// Write message `seq` stamped with `t` on publisher `key`. False if the connection was
    /// not usable (it is then skipped, not retried).
    fn send_message(&mut self, key: usize, seq: u64, t: u64) -> bool {
        let channels = self.cfg.scenario.channels;
        let chan = (seq % u64::from(channels)) as u32;
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if c.state != HttpState::Ready || c.inflight != Inflight::Idle {
            return false;
        }
        self.tpl.write_into(&mut c.wbuf, chan, t, seq);
        c.wpos = 0;
        c.inflight = Inflight::Message {
            seq,
            chan,
            sent_ns: sys::now_ns().saturating_sub(self.epoch),
        };
        let flushed = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos);
        if self.cfg.scenario.subs > 0 {
            self.stats.msgs.push(MsgRec::default());
        }
        self.stats.sent += 1;
        if let Err(e) = flushed {
            self.http_died(key, format!("write: {e}"));
            self.reap(key);
        }
        true
    }

    // ---- phases -----------------------------------------------------------------------------

    fn advance_phase(&mut self, now: u64) {
        let sc = self.cfg.scenario;
        match self.phase {
            Phase::Connecting => {
                let subs_done = self.stats.subs_open + self.stats.subs_failed >= sc.subs;
                // The slab scan runs only once subscribers are done, not on every iteration
                // of a 10,000-subscriber connect phase.
                let pubs_ready = subs_done
                    && self.slots.iter().all(|(_, s)| match s {
                        Slot::Http(c) => {
                            c.role != Role::Publisher || c.state != HttpState::Connecting
                        }
                        Slot::Sub(_) => true,
                    });
                let timed_out =
                    now.saturating_sub(self.connect_start) > secs_ns(self.cfg.connect_timeout_s);
                if (subs_done && pubs_ready) || timed_out {
                    if timed_out && !subs_done {
                        let missing = sc.subs - self.stats.subs_open - self.stats.subs_failed;
                        let stuck = self.stuck_summary();
                        self.stats.error(format!(
                            "connect timeout: {missing} subscribers not connected ({stuck})"
                        ));
                        self.stats.subs_failed += missing;
                    }
                    self.connect_end = now;
                    self.phase = Phase::Settling {
                        until: now + if sc.subs > 0 { SETTLE_NS } else { 50_000_000 },
                    };
                }
            }
            Phase::Settling { until } if now >= until => {
                self.rss_after = self.cfg.server_pid.and_then(sys::read_vmrss_kib);
                self.open_window(now);
                self.pub_start = now;
                self.phase = Phase::Measuring {
                    until: now + secs_ns(sc.duration_s),
                };
                self.pump_publishers(now);
            }
            Phase::Measuring { until } if now >= until => {
                self.close_window(now);
                self.phase = match sc.mode {
                    Mode::Idle => Phase::Done,
                    _ => Phase::Draining {
                        until: now + secs_ns(sc.drain_s),
                    },
                };
            }
            Phase::Draining { until } => {
                let in_flight = self.slots.iter().any(|(_, s)| {
                    matches!(s, Slot::Http(c) if matches!(c.inflight, Inflight::Message { .. }) && c.state == HttpState::Ready)
                });
                let all_delivered = self.stats.deliveries >= self.stats.expected;
                if now >= until || (!in_flight && all_delivered) {
                    self.phase = Phase::Done;
                }
            }
            _ => {}
        }
    }

    /// Where unfinished subscribers are stuck, for the connect-timeout message.
    fn stuck_summary(&self) -> String {
        let (mut tcp, mut ws, mut connect) = (0u32, 0u32, 0u32);
        for (_, slot) in &self.slots {
            match slot {
                Slot::Sub(s) if s.state == SubState::Connecting => tcp += 1,
                Slot::Sub(s) if s.state == SubState::Handshake => ws += 1,
                Slot::Http(c) if matches!(c.inflight, Inflight::Connect { .. }) => connect += 1,
                _ => {}
            }
        }
        let unsent = self.cfg.scenario.subs.saturating_sub(self.next_sub);
        format!(
            "{connect} awaiting a /connect reply, {tcp} in TCP connect, {ws} awaiting 101, \
             {unsent} never started; a server listen backlog below --connect-concurrency \
             overflows (see nstat TcpExtListenOverflows)"
        )
    }

    fn open_window(&mut self, now: u64) {
        self.window_start = now;
        self.cores_start = sys::read_core_times();
        self.self_cpu_start = sys::self_cpu_us();
        self.proc_ticks_start = self.cfg.server_pid.and_then(sys::read_proc_cpu_ticks);
    }

    fn close_window(&mut self, now: u64) {
        if self.window_end != 0 {
            return;
        }
        self.window_end = now.max(self.window_start + 1);
        self.cores_end = sys::read_core_times();
        self.self_cpu_end = sys::self_cpu_us();
        self.proc_ticks_end = self.cfg.server_pid.and_then(sys::read_proc_cpu_ticks);
    }

    fn progress(&mut self, now: u64, last: bool) {
        if !self.cfg.progress || (!last && now.saturating_sub(self.last_progress) < 1_000_000_000) {
            return;
        }
        self.last_progress = now;
        let st = &self.stats;
        let sc = self.cfg.scenario;
        let head = format!("[{} {}#{}]", sc.name, self.cfg.target.label, self.cfg.round);
        let line = match self.phase {
            Phase::Connecting | Phase::Settling { .. } => {
                let secs = (now.saturating_sub(self.connect_start)) as f64 / 1e9;
                format!(
                    "{head} connecting {}/{} subs ({:.0}/s), {} failed",
                    st.subs_open,
                    sc.subs,
                    f64::from(st.subs_open) / secs.max(1e-9),
                    st.subs_failed
                )
            }
            _ => {
                let secs = (now.saturating_sub(self.window_start)) as f64 / 1e9;
                let p99 = st.latency.value_at_quantile(0.99) as f64 / 1e6;
                format!(
                    "{head} t={secs:.0}s pub {}/{} ok, backlog {} | deliv {} ({:.0}/s) of {} expected | p99 {p99:.2} ms | hb {} | closed {}",
                    st.accepted,
                    st.sent,
                    self.due(now).saturating_sub(self.next_seq),
                    st.deliveries,
                    st.deliveries_in_window as f64 / secs.max(1e-9),
                    st.expected,
                    st.heartbeats,
                    st.subs_closed_early
                )
            }
        };
        let mut err = io::stderr().lock();
        if self.progress_tty && !last {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else if self.progress_tty {
            let _ = writeln!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    // ---- results -----------------------------------------------------------------------------

    fn finish(mut self) -> RunResult {
        let sc = self.cfg.scenario;
        let now = self.rel_now();
        self.close_window(now);
        let st = &self.stats;
        let window_s = (self.window_end.saturating_sub(self.window_start)) as f64 / 1e9;
        // Loss and duplicates per accepted message against its channel's fan-out.
        let (mut lost, mut dups, mut delivered_unique) = (0u64, 0u64, 0u64);
        for (seq, rec) in st.msgs.iter().enumerate() {
            if !rec.accepted {
                continue;
            }
            let fan = u64::from(
                self.chan_subs
                    .get(seq % sc.channels as usize)
                    .copied()
                    .unwrap_or(0),
            );
            let got = u64::from(rec.count);
            lost += fan.saturating_sub(got);
            dups += got.saturating_sub(fan);
            delivered_unique += got.min(fan);
        }
        let connect_s = (self.connect_end.saturating_sub(self.connect_start)) as f64 / 1e9;
        let cpu = self.cpu_report(window_s);
        let deliveries_per_s = st.deliveries_in_window as f64 / window_s.max(1e-9);
        let offered_deliveries_per_s =
            sc.rate * f64::from(st.subs_open) / f64::from(sc.channels.max(1));
        let publish_saturated =
            sc.mode == Mode::OpenLoop && (st.sent as f64) < 0.95 * self.total_msgs as f64;
        let delivery_saturated = sc.mode == Mode::OpenLoop
            && st.expected > 0
            && (st.deliveries_in_window as f64) < 0.9 * st.expected as f64;
        let rss_per_conn = match (self.rss_before, self.rss_after) {
            (Some(b), Some(a)) if st.subs_open > 0 => {
                Some((a as f64 - b as f64) * 1024.0 / f64::from(st.subs_open))
            }
            _ => None,
        };
        let cpu_us_per_delivery = cpu
            .server_cpu_us
            .filter(|_| st.deliveries_in_window > 0)
            .map(|us| us / st.deliveries_in_window as f64);
        let cpu_us_per_publish = cpu
            .server_cpu_us
            .filter(|_| st.accepted > 0)
            .map(|us| us / st.accepted as f64);
        RunResult {
            scenario: sc.clone(),
            target: self.cfg.target.label.clone(),
            url: self.cfg.target.url.clone(),
            round: self.cfg.round,
            subs_connected: st.subs_open,
            subs_failed: st.subs_failed,
            subs_closed_early: st.subs_closed_early,
            connect_s,
            connect_rate_per_s: (st.subs_open > 0)
                .then(|| f64::from(st.subs_open) / connect_s.max(1e-9)),
            window_s,
            offered_rate: sc.rate,
            messages_intended: self.total_msgs,
            messages_sent: st.sent,
            messages_accepted: st.accepted,
            publish_errors: st.publish_errors,
            achieved_publish_rate: st.accepted as f64 / window_s.max(1e-9),
            max_send_lag_ms: st.max_send_lag_ns as f64 / 1e6,
            publish_saturated,
            delivery_saturated,
            saturated: publish_saturated || delivery_saturated,
            expected_deliveries: st.expected,
            delivered: delivered_unique,
            deliveries_total: st.deliveries,
            duplicates: dups,
            lost,
            loss_pct: if st.expected > 0 {
                lost as f64 * 100.0 / st.expected as f64
            } else {
                0.0
            },
            unexpected_deliveries: st.unexpected,
            deliveries_in_window: st.deliveries_in_window,
            deliveries_per_s,
            offered_deliveries_per_s,
            heartbeats: st.heartbeats,
            other_frames: st.other_frames,
            server_closes: st.server_closes,
            protocol_errors: st.protocol_errors,
            reconnects: st.reconnects,
            latency_ms: Percentiles::from_hist(&st.latency),
            post_latency_ms: Percentiles::from_hist(&st.post_latency),
            cpu,
            cpu_us_per_delivery,
            cpu_us_per_publish,
            rss_before_kib: self.rss_before,
            rss_after_kib: self.rss_after,
            rss_per_conn_bytes: rss_per_conn,
            errors: st.errors.clone(),
        }
    }

    fn cpu_report(&self, window_s: f64) -> CpuReport {
        let tick_us = 1e6 / sys::clock_ticks_per_sec() as f64;
        let deltas: Vec<(u64, u64)> = self
            .cores_start
            .iter()
            .zip(&self.cores_end)
            .map(|(a, b)| {
                (
                    b.busy.saturating_sub(a.busy),
                    b.total.saturating_sub(a.total),
                )
            })
            .collect();
        let per_core_busy_pct: Vec<f64> = deltas
            .iter()
            .map(|(b, t)| {
                if *t > 0 {
                    *b as f64 * 100.0 / *t as f64
                } else {
                    0.0
                }
            })
            .collect();
        let client_cpu_us = self.self_cpu_end.saturating_sub(self.self_cpu_start) as f64;
        let (server_cpu_us, method) = match &self.cfg.server_cores {
            Some(cores) => {
                let busy: u64 = cores
                    .iter()
                    .filter_map(|&c| deltas.get(c))
                    .map(|(b, _)| b)
                    .sum();
                (
                    Some(busy as f64 * tick_us),
                    format!("busy time of cores {cores:?} from /proc/stat"),
                )
            }
            None if !deltas.is_empty() => {
                let busy: u64 = deltas.iter().map(|(b, _)| b).sum();
                let est = (busy as f64 * tick_us - client_cpu_us).max(0.0);
                (Some(est), "busy time of all cores minus this client's CPU time (pin for a cleaner figure)".to_string())
            }
            None => (None, "unavailable".to_string()),
        };
        let server_proc_cpu_us = match (self.proc_ticks_start, self.proc_ticks_end) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * tick_us),
            _ => None,
        };
        CpuReport {
            per_core_busy_pct,
            server_cpu_us,
            server_cpu_method: method,
            server_proc_cpu_us,
            client_cpu_pct: client_cpu_us / 1e4 / window_s.max(1e-9),
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
fn connect_result(stream: &TcpStream) -> ConnectState {
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
fn flush_pos(stream: &mut TcpStream, buf: &[u8], pos: &mut usize) -> io::Result<()> {
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
    Ok(())
}

/// Write a small pending buffer; what was written is removed (rare path: handshake, pongs).
fn flush_vec(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut pos = 0;
    let r = flush_pos(stream, buf, &mut pos);
    buf.drain(..pos.min(buf.len()));
    r
}

fn secs_ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}
