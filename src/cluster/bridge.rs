//! The bridge thread: the only code that talks to Redis.
//!
//! Why one thread with its own `mio::Poll` (not a shard, not an async runtime): it owns two
//! non-blocking connections — the **subscriber** connection (SUBSCRIBE / UNSUBSCRIBE, and the
//! messages Redis pushes) and the **command** connection (PUBLISH, EVAL, SELECT, the liveness
//! key) — plus the waker
//! of the shards' command queue, and multiplexes them in one loop, so a command from a shard
//! is written the moment it arrives and a message from Redis is handed on the moment it is
//! read. RESP is encoded and decoded by the `redis-protocol` crate (pure, over byte slices).
//!
//! Topics: the bridge keeps, per Redis channel, the shards that want it (a count per shard:
//! each subscribe is matched by one unsubscribe). Redis is told SUBSCRIBE on the first and
//! UNSUBSCRIBE on the last; a subscribe is confirmed to its shard (`Incoming::Subscribed`) when
//! Redis answers it, so a dialect that waits for the confirmation misses nothing published
//! after. An UNSUBSCRIBE that overtakes its own SUBSCRIBE's answer is remembered (`skip`) so a
//! later re-subscribe is not confirmed by the stale answer.
//!
//! Liveness: while up, every 3 s, `SET herald:<db>:alive:<incarnation> 1 PX 10000` and
//! `SADD herald:<db>:nodes <incarnation>` (the dialects' shared state names its owner by
//! incarnation; see `pusher/cluster_presence.rs` for the sweep of dead ones).
//!
//! Link loss (EOF, error, protocol error): both connections are dropped, `up` goes false (the
//! shards then refuse publishes: 503), every subscribe waiting for Redis is confirmed at once
//! (local delivery goes on), and reconnects are tried with doubling back-off, 100 ms to 5 s.
//! On reconnect every wanted topic is SUBSCRIBEd again, and what other nodes published
//! meanwhile is read back from the topic's short stream (ARCHITECTURE.md, "Recovery from a
//! stream"): each publish is a script that XADDs then PUBLISHes `<stream id>\n<envelope>`,
//! and the bridge hands on each id once, in order.

use super::backplane::{Backplane, Cmd, Sink};
use super::{decode_envelope, encode_envelope, Incoming, Value};
use crate::ids::ShardId;
use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shards' queue waker.
pub(super) const WAKER: Token = Token(0);
const SUB: Token = Token(1);
const CMD: Token = Token(2);

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Unwritten command bytes past which publishes are dropped (Redis not reading).
const MAX_UNWRITTEN: usize = 64 << 20;
/// Topics per SUBSCRIBE command when resubscribing.
const SUBSCRIBE_BATCH: usize = 256;

struct Topic {
    /// One entry per subscribe not yet matched by an unsubscribe.
    shards: Vec<ShardId>,
    /// Redis answered our SUBSCRIBE.
    confirmed: bool,
    /// Subscribes to confirm when Redis answers.
    waiting: Vec<(ShardId, u64)>,
    /// The stream id of the last message handed on (or seen from this node).
    last: Option<StreamId>,
    /// While the stream is read after a reconnect: messages that came meanwhile.
    recovering: Option<Vec<(StreamId, Bytes)>>,
}

/// A Redis stream entry id, `<ms>-<seq>`.
type StreamId = (u64, u64);

fn parse_id(b: &[u8]) -> Option<StreamId> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// PUBLISH with a copy in a short stream (`herald:<db>:s:<topic>`, ~100 entries, 60 s idle
/// expiry), atomically, so the message carries its stream id: `<id>\n<envelope>`.
const PUB: &str = r"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100', '*', 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], 60000)
redis.call('PUBLISH', KEYS[2], id .. '\n' .. ARGV[1])
return id
";

/// What a topic's stream holds after `ARGV[1]`: `{oldest id, entries}`, `{-1}` if it is gone.
const RECOVER: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
return {first[1][1], redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
";

struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

impl Conn {
    fn open(addr: std::net::SocketAddr, poll: &Poll, token: Token) -> io::Result<Conn> {
        let s = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        s.set_nodelay(true)?;
        // A Redis host that vanishes (no FIN) is noticed within ~25 s instead of never.
        let ka = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(Duration::from_secs(5))
            .with_retries(3);
        socket2::SockRef::from(&s).set_tcp_keepalive(&ka)?;
        s.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(s);
        poll.registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
        })
    }

    /// Read what is there; `Err` on EOF or error.
    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self
                    .rbuf
                    .extend_from_slice(tmp.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Write what the socket takes.
    fn flush(&mut self) -> io::Result<()> {
        let mut done = 0;
        while done < self.wbuf.len() {
            match self.stream.write(self.wbuf.get(done..).unwrap_or_default()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.drain(..done);
        Ok(())
    }

    /// Decode the complete frames read so far.
    fn frames(&mut self) -> io::Result<Vec<OwnedFrame>> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            let rest = self.rbuf.get(pos..).unwrap_or_default();
            match decode(rest) {
                Ok(Some((f, used))) => {
                    pos += used;
                    out.push(f);
                }
                Ok(None) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
        self.rbuf.drain(..pos);
        Ok(out)
    }
}

/// Append one command (an array of bulk strings) to `buf`.
/// `herald:<db>:s:<topic without the prefix>`.
fn stream_key(prefix: &str, topic: &[u8]) -> Vec<u8> {
    let rest = topic.strip_prefix(prefix.as_bytes()).unwrap_or(topic);
    let mut k = Vec::with_capacity(prefix.len() + 2 + rest.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(b"s:");
    k.extend_from_slice(rest);
    k
}

/// A Redis answer as the shards see it.
fn value_of(f: OwnedFrame) -> Value {
    match f {
        OwnedFrame::SimpleString(s) | OwnedFrame::BulkString(s) => Value::Bulk(Bytes::from(s)),
        OwnedFrame::Error(e) => Value::Error(e),
        OwnedFrame::Integer(i) => Value::Int(i),
        OwnedFrame::Array(a) => Value::Array(a.into_iter().map(value_of).collect()),
        OwnedFrame::Null => Value::Nil,
    }
}

fn encode_cmd(buf: &mut Vec<u8>, args: &[&[u8]]) {
    let parts: Vec<BorrowedFrame<'_>> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&parts);
    let start = buf.len();
    buf.resize(start + frame.encode_len(false), 0);
    if let Some(dst) = buf.get_mut(start..) {
        if encode_borrowed(dst, &frame, false).is_err() {
            buf.truncate(start);
        }
    }
}

/// An unanswered command on the command connection.
enum Sent {
    /// A PUBLISH, written then.
    Publish(Instant),
    /// An EVAL whose answer goes to this shard under this id.
    Eval(ShardId, u64),
    /// The read of a topic's stream after a reconnect.
    Recover(Bytes),
    /// SELECT, the heartbeat.
    Other,
}

struct Link {
    sub: Conn,
    cmd: Conn,
    inflight: VecDeque<Sent>,
    /// When the liveness key is refreshed next.
    next_beat: Instant,
}

/// The node's liveness key lives this long; refreshed every `BEAT`.
const ALIVE_MS: &str = "10000";
const BEAT: Duration = Duration::from_secs(3);

struct State {
    bp: Arc<Backplane>,
    sink: Arc<dyn Sink>,
    topics: HashMap<Bytes, Topic>,
    skip: HashMap<Bytes, u32>,
    link: Option<Link>,
    backoff: Duration,
    retry_at: Instant,
}

/// The thread's body.
pub(super) fn run(bp: Arc<Backplane>, mut poll: Poll, sink: Arc<dyn Sink>) {
    let mut st = State {
        bp,
        sink,
        topics: HashMap::new(),
        skip: HashMap::new(),
        link: None,
        backoff: BACKOFF_MIN,
        retry_at: Instant::now(),
    };
    let mut events = Events::with_capacity(16);
    while !st.sink.stopping() {
        let now = Instant::now();
        if st.link.is_none() && now >= st.retry_at {
            st.connect(&poll);
        }
        let mut timeout = Duration::from_millis(250);
        if st.link.is_none() {
            timeout = timeout.min(st.retry_at.saturating_duration_since(now));
        }
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::error!(error = %e, "backplane: poll failed, bridge stops");
                break;
            }
        }
        let mut failed = None;
        for ev in events.iter() {
            let r = match ev.token() {
                SUB => st.on_sub_readable(),
                CMD => st.on_cmd_readable(),
                _ => Ok(()),
            };
            if let Err(e) = r {
                failed = Some(e);
            }
        }
        st.bp.disarm();
        while let Some(cmd) = st.bp.queue.pop() {
            st.on_cmd(cmd);
        }
        st.beat(Instant::now());
        if failed.is_none() {
            if let Some(l) = st.link.as_mut() {
                failed = l.sub.flush().and_then(|()| l.cmd.flush()).err();
            }
        }
        if let Some(e) = failed {
            st.lost(&e);
        }
    }
    st.bp.up.store(false, Ordering::SeqCst);
}

impl State {
    fn confirm(&self, shard: ShardId, topic: &Bytes, seq: u64) {
        let msg = Incoming::Subscribed {
            topic: topic.clone(),
            seq,
        };
        if self.sink.deliver(shard, msg).is_err() {
            // The shard's inbox is full: its sockets wait until it is subscribed again.
            self.bp.counters.inbox_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connect(&mut self, poll: &Poll) {
        let url = &self.bp.cfg.url;
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next());
        let opened = addr
            .ok_or_else(|| io::Error::other("cannot resolve the Redis host"))
            .and_then(|a| Ok((Conn::open(a, poll, SUB)?, Conn::open(a, poll, CMD)?)));
        let (sub, cmd) = match opened {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, url = %url, retry_ms = self.backoff.as_millis() as u64, "backplane: cannot connect");
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                return;
            }
        };
        let mut link = Link {
            sub,
            cmd,
            inflight: VecDeque::new(),
            next_beat: Instant::now(),
        };
        if url.db != 0 {
            let db = url.db.to_string();
            encode_cmd(&mut link.cmd.wbuf, &[b"SELECT", db.as_bytes()]);
            link.inflight.push_back(Sent::Other);
        }
        // Named, so an operator (or a test) can tell the connections apart in CLIENT LIST.
        let inc = self.bp.incarnation();
        let (sub_name, cmd_name) = (format!("herald-sub-{inc}"), format!("herald-cmd-{inc}"));
        encode_cmd(
            &mut link.sub.wbuf,
            &[b"CLIENT", b"SETNAME", sub_name.as_bytes()],
        );
        encode_cmd(
            &mut link.cmd.wbuf,
            &[b"CLIENT", b"SETNAME", cmd_name.as_bytes()],
        );
        link.inflight.push_back(Sent::Other);
        let topics: Vec<Bytes> = self.topics.keys().cloned().collect();
        for chunk in topics.chunks(SUBSCRIBE_BATCH) {
            let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
            args.extend(chunk.iter().map(|t| &t[..]));
            encode_cmd(&mut link.sub.wbuf, &args);
        }
        for t in self.topics.values_mut() {
            t.confirmed = false;
        }
        self.skip.clear();
        self.link = Some(link);
        self.backoff = BACKOFF_MIN;
        self.bp.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.bp.up.store(true, Ordering::SeqCst);
        tracing::info!(url = %url, node = %self.bp.cfg.node_id, topics = topics.len(), "backplane: connected");
    }

    fn lost(&mut self, e: &io::Error) {
        let Some(link) = self.link.take() else {
            return;
        };
        self.bp.up.store(false, Ordering::SeqCst);
        let unanswered = link
            .inflight
            .iter()
            .filter(|t| matches!(t, Sent::Publish(_)))
            .count() as u64;
        for t in &link.inflight {
            if let Sent::Eval(shard, id) = t {
                self.answer(*shard, *id, Value::Error("link lost".into()));
            }
        }
        self.bp
            .counters
            .publish_lost
            .fetch_add(unanswered, Ordering::Relaxed);
        self.bp.counters.disconnects.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, unanswered, "backplane: link to Redis lost, reconnecting");
        let mut confirms = Vec::new();
        for t in self.topics.values_mut() {
            // Not advanced past: the next read of the stream covers them again.
            t.recovering = None;
        }
        for (name, t) in self.topics.iter_mut() {
            for (shard, seq) in t.waiting.drain(..) {
                confirms.push((shard, name.clone(), seq));
            }
        }
        for (shard, name, seq) in confirms {
            self.confirm(shard, &name, seq);
        }
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Publish { topic, payload } => {
                let Some(link) = self.link.as_mut() else {
                    self.bp
                        .counters
                        .publish_lost
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                };
                if link.cmd.wbuf.len() > MAX_UNWRITTEN {
                    self.bp
                        .counters
                        .publish_lost
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let env = encode_envelope(self.bp.incarnation(), &payload);
                let stream = stream_key(self.bp.prefix(), &topic);
                let args: [&[u8]; 6] = [b"EVAL", PUB.as_bytes(), b"2", &stream, &topic, &env];
                encode_cmd(&mut link.cmd.wbuf, &args);
                link.inflight.push_back(Sent::Publish(Instant::now()));
                self.bp.counters.published.fetch_add(1, Ordering::Relaxed);
            }
            Cmd::Eval {
                script,
                keys,
                args,
                shard,
                id,
            } => {
                let Some(link) = self.link.as_mut() else {
                    return self.answer(shard, id, Value::Error("link lost".into()));
                };
                let n = keys.len().to_string();
                let mut parts: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), n.as_bytes()];
                parts.extend(keys.iter().map(|k| &k[..]));
                parts.extend(args.iter().map(|a| &a[..]));
                encode_cmd(&mut link.cmd.wbuf, &parts);
                link.inflight.push_back(Sent::Eval(shard, id));
            }
            Cmd::Subscribe { topic, shard, seq } => {
                let up = self.link.is_some();
                match self.topics.get_mut(&topic) {
                    Some(t) => {
                        t.shards.push(shard);
                        if t.confirmed || !up {
                            self.confirm(shard, &topic, seq);
                        } else {
                            t.waiting.push((shard, seq));
                        }
                    }
                    None => {
                        let mut t = Topic {
                            shards: vec![shard],
                            confirmed: false,
                            waiting: Vec::new(),
                            last: None,
                            recovering: None,
                        };
                        if let Some(link) = self.link.as_mut() {
                            encode_cmd(&mut link.sub.wbuf, &[b"SUBSCRIBE", &topic]);
                            t.waiting.push((shard, seq));
                        } else {
                            self.confirm(shard, &topic, seq);
                        }
                        self.topics.insert(topic, t);
                    }
                }
            }
            Cmd::Unsubscribe { topic, shard } => {
                let Some(t) = self.topics.get_mut(&topic) else {
                    return;
                };
                if let Some(i) = t.shards.iter().position(|s| *s == shard) {
                    t.shards.swap_remove(i);
                }
                if !t.shards.is_empty() {
                    return;
                }
                let confirmed = t.confirmed;
                self.topics.remove(&topic);
                if let Some(link) = self.link.as_mut() {
                    encode_cmd(&mut link.sub.wbuf, &[b"UNSUBSCRIBE", &topic]);
                    if !confirmed {
                        *self.skip.entry(topic).or_insert(0) += 1;
                    }
                }
            }
        }
        let n = self.topics.len() as u64;
        self.bp.counters.topics.store(n, Ordering::Relaxed);
    }

    fn on_sub_readable(&mut self) -> io::Result<()> {
        let frames = match self.link.as_mut() {
            Some(l) => {
                l.sub.fill()?;
                l.sub.frames()?
            }
            None => return Ok(()),
        };
        for f in frames {
            self.on_push(f);
        }
        Ok(())
    }

    fn on_push(&mut self, f: OwnedFrame) {
        let OwnedFrame::Array(parts) = f else {
            if let OwnedFrame::Error(e) = f {
                tracing::warn!(error = %e, "backplane: Redis refused a subscriber command");
            }
            return;
        };
        let mut it = parts.into_iter();
        let (Some(OwnedFrame::BulkString(kind)), Some(OwnedFrame::BulkString(ch))) =
            (it.next(), it.next())
        else {
            return;
        };
        let topic = Bytes::from(ch);
        match (&kind[..], it.next()) {
            (b"message", Some(OwnedFrame::BulkString(msg))) => {
                let msg = Bytes::from(msg);
                let nl = msg.iter().position(|b| *b == b'\n');
                let Some(id) = nl.and_then(|i| parse_id(msg.get(..i)?)) else {
                    self.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let env = msg.slice(nl.map_or(0, |i| i + 1)..);
                let Some(t) = self.topics.get_mut(&topic) else {
                    return;
                };
                if let Some(buf) = t.recovering.as_mut() {
                    buf.push((id, env));
                    return;
                }
                self.hand_on(&topic, id, &env);
            }
            (b"subscribe", _) => {
                if let Some(n) = self.skip.get_mut(&topic) {
                    *n -= 1;
                    if *n == 0 {
                        self.skip.remove(&topic);
                    }
                    return;
                }
                let Some(t) = self.topics.get_mut(&topic) else {
                    return;
                };
                t.confirmed = true;
                if let (Some(last), Some(link)) = (t.last, self.link.as_mut()) {
                    // Resubscribed after a lost link: read what the stream kept since.
                    t.recovering = Some(Vec::new());
                    let from = format!("{}-{}", last.0, last.1);
                    let stream = stream_key(self.bp.prefix(), &topic);
                    let args: [&[u8]; 5] =
                        [b"EVAL", RECOVER.as_bytes(), b"1", &stream, from.as_bytes()];
                    encode_cmd(&mut link.cmd.wbuf, &args);
                    link.inflight.push_back(Sent::Recover(topic.clone()));
                }
                let waiting = std::mem::take(&mut t.waiting);
                for (shard, seq) in waiting {
                    self.confirm(shard, &topic, seq);
                }
            }
            _ => {}
        }
    }

    /// Hand one message on to the topic's shards, in stream order, once.
    fn hand_on(&mut self, topic: &Bytes, id: StreamId, env: &Bytes) {
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        if t.last.is_some_and(|l| l >= id) {
            return; // already handed on (read from the stream and pushed again)
        }
        t.last = Some(id);
        let Some((origin, payload)) = decode_envelope(env) else {
            self.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if origin == self.bp.incarnation().as_bytes() {
            return;
        }
        let mut shards = t.shards.clone();
        shards.sort_unstable();
        shards.dedup();
        for s in shards {
            let m = Incoming::Message {
                topic: topic.clone(),
                payload: payload.clone(),
            };
            let c = &self.bp.counters;
            match self.sink.deliver(s, m) {
                Ok(()) => c.received.fetch_add(1, Ordering::Relaxed),
                Err(_) => c.inbox_full.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    /// The stream read after a reconnect answered: hand on what was missed, then what came
    /// meanwhile, in order.
    fn recovered(&mut self, topic: &Bytes, f: OwnedFrame) {
        let Some(buffered) = self.topics.get_mut(topic).and_then(|t| t.recovering.take()) else {
            return;
        };
        let last = self.topics.get(topic).and_then(|t| t.last);
        let c = &self.bp.counters;
        let mut entries = Vec::new();
        match f {
            OwnedFrame::Array(parts) => {
                let mut it = parts.into_iter();
                let oldest = match it.next() {
                    Some(OwnedFrame::BulkString(id)) => parse_id(&id),
                    _ => None,
                };
                if oldest.is_none_or(|o| last.is_some_and(|l| o > l)) {
                    // The stream is gone (Redis restarted) or was trimmed past our position.
                    c.recovery_gaps.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(OwnedFrame::Array(list)) = it.next() {
                    for e in list {
                        let OwnedFrame::Array(e) = e else { continue };
                        let mut e = e.into_iter();
                        let (Some(OwnedFrame::BulkString(id)), Some(OwnedFrame::Array(kv))) =
                            (e.next(), e.next())
                        else {
                            continue;
                        };
                        let Some(id) = parse_id(&id) else { continue };
                        if let Some(OwnedFrame::BulkString(env)) = kv.into_iter().nth(1) {
                            entries.push((id, Bytes::from(env)));
                        }
                    }
                }
            }
            _ => {
                c.recovery_gaps.fetch_add(1, Ordering::Relaxed);
            }
        }
        c.recovered
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        for (id, env) in entries.into_iter().chain(buffered) {
            self.hand_on(topic, id, &env);
        }
    }

    fn on_cmd_readable(&mut self) -> io::Result<()> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        link.cmd.fill()?;
        let c = &self.bp.counters;
        let mut pending_recover = Vec::new();
        for f in link.cmd.frames()? {
            if let OwnedFrame::Error(e) = &f {
                tracing::warn!(error = %e, "backplane: Redis refused a command");
            }
            match link.inflight.pop_front() {
                Some(Sent::Publish(at)) => {
                    let us = at.elapsed().as_micros() as u64;
                    c.rtt_us_sum.fetch_add(us, Ordering::Relaxed);
                    c.rtt_count.fetch_add(1, Ordering::Relaxed);
                    c.rtt_us_max.fetch_max(us, Ordering::Relaxed);
                }
                Some(Sent::Eval(shard, id)) => {
                    let msg = Incoming::Reply {
                        id,
                        value: value_of(f),
                    };
                    if self.sink.deliver(shard, msg).is_err() {
                        c.inbox_full.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Sent::Recover(topic)) => {
                    pending_recover.push((topic, f));
                }
                Some(Sent::Other) | None => {}
            }
        }
        for (topic, f) in pending_recover {
            self.recovered(&topic, f);
        }
        Ok(())
    }

    fn answer(&self, shard: ShardId, id: u64, value: Value) {
        if self
            .sink
            .deliver(shard, Incoming::Reply { id, value })
            .is_err()
        {
            self.bp.counters.inbox_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refresh this node's liveness key (`herald:<db>:alive:<node>`, 10 s) and its entry in
    /// `herald:<db>:nodes`, every 3 s while the link is up.
    fn beat(&mut self, now: Instant) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if now < link.next_beat {
            return;
        }
        link.next_beat = now + BEAT;
        let id = self.bp.incarnation().as_bytes();
        let alive = format!("{}alive:{}", self.bp.prefix(), self.bp.incarnation());
        let nodes = format!("{}nodes", self.bp.prefix());
        let c = &mut link.cmd.wbuf;
        encode_cmd(
            c,
            &[b"SET", alive.as_bytes(), b"1", b"PX", ALIVE_MS.as_bytes()],
        );
        encode_cmd(c, &[b"SADD", nodes.as_bytes(), id]);
        link.inflight.push_back(Sent::Other);
        link.inflight.push_back(Sent::Other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_resp_arrays() {
        let mut b = Vec::new();
        encode_cmd(&mut b, &[b"PUBLISH", b"t", b"\x00\r\n"]);
        assert_eq!(b, b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$3\r\n\x00\r\n\r\n");
    }
}
