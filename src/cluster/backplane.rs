//! The shards' side of the backplane: a bounded command queue to the bridge thread, the
//! link state, and the counters `/metrics` shows.
//!
//! Why a queue and not a call: a shard must never block on Redis. `publish`, `subscribe` and
//! `unsubscribe` are a lock-free push (`crossbeam` `ArrayQueue`, 16,384 commands) plus a
//! coalesced `mio::Waker` wake of the bridge, from any shard thread.
//!
//! Full policy: publishes may use only three quarters of the queue (the rest is headroom for
//! subscribes and unsubscribes, which must not be crowded out by traffic); a publish refused
//! for room, or while the link is down, is counted (`herald_cluster_publish_refused_total`)
//! and returned as `Refused` — the HTTP API answers 503 + `Retry-After`, client events are
//! then delivered on this node only. A subscribe refused because the queue is full is returned
//! too (the Pusher owner answers its socket "over capacity"); an unsubscribe that does not fit
//! is counted and lost (the node then stays subscribed to a channel it needs no more: wasted
//! traffic, dropped on arrival, never a wrong delivery). An `eval` (a Lua script whose answer
//! goes back to the asking shard) is refused while the link is down or the queue is full, and
//! answered `Value::Error("link lost")` if the link breaks before Redis answers: the caller
//! falls back to local state at once, never waits for a reconnect.

use super::bridge;
use super::{ClusterConfig, Incoming};
use crate::dialect::MetricsSource;
use crate::ids::ShardId;
use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Commands the bridge can hold.
pub const QUEUE_CAPACITY: usize = 16_384;

/// Why a command was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The link to Redis is down (reconnecting).
    Down,
    /// The queue to the bridge has no room.
    Full,
}

/// A command for the bridge thread.
#[derive(Debug)]
pub(super) enum Cmd {
    Publish {
        topic: Bytes,
        payload: Bytes,
    },
    Subscribe {
        topic: Bytes,
        shard: ShardId,
        seq: u64,
    },
    Unsubscribe {
        topic: Bytes,
        shard: ShardId,
    },
    Eval {
        script: &'static str,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        shard: ShardId,
        id: u64,
    },
}

/// Where the bridge delivers (implemented by the reactor's shared state).
pub trait Sink: Send + Sync + 'static {
    /// Hand `msg` to shard `shard`'s inbox; `Err` if that inbox is full.
    fn deliver(&self, shard: ShardId, msg: Incoming) -> Result<(), Incoming>;
    /// Whether the server is shutting down (the bridge then exits).
    fn stopping(&self) -> bool;
}

/// Counters of the backplane (relaxed atomics).
#[derive(Default, Debug)]
pub struct Counters {
    /// PUBLISH commands written to Redis.
    pub published: AtomicU64,
    /// Publishes refused at the queue (down or full).
    pub publish_refused: AtomicU64,
    /// Publishes taken but lost when the link broke before they were written.
    pub publish_lost: AtomicU64,
    /// Messages from other nodes handed to shards.
    pub received: AtomicU64,
    /// Messages from other nodes dropped because the shard's inbox was full.
    pub inbox_full: AtomicU64,
    /// Messages that were not Herald envelopes.
    pub malformed: AtomicU64,
    /// Successful (re)connections to Redis.
    pub connects: AtomicU64,
    /// Lost links.
    pub disconnects: AtomicU64,
    /// Unsubscribes lost to a full queue.
    pub unsubscribe_lost: AtomicU64,
    /// Sum of PUBLISH round trips (microseconds).
    pub rtt_us_sum: AtomicU64,
    /// PUBLISH round trips measured.
    pub rtt_count: AtomicU64,
    /// Largest PUBLISH round trip seen (microseconds).
    pub rtt_us_max: AtomicU64,
    /// Redis channels this node is subscribed to.
    pub topics: AtomicU64,
    /// Messages read back from a topic's stream after a reconnect.
    pub recovered: AtomicU64,
    /// Stream reads that found the stream gone or trimmed past the last message seen
    /// (something may have been lost).
    pub recovery_gaps: AtomicU64,
}

/// The shards' handle on the backplane (shared by every shard).
pub struct Backplane {
    pub(super) cfg: ClusterConfig,
    pub(super) queue: ArrayQueue<Cmd>,
    armed: AtomicBool,
    waker: mio::Waker,
    pub(super) up: AtomicBool,
    seq: AtomicU64,
    prefix: String,
    incarnation: String,
    /// The counters.
    pub counters: Counters,
}

/// The bridge thread, built but not started (it needs the shards' inboxes).
pub struct Bridge {
    bp: Arc<Backplane>,
    poll: mio::Poll,
}

impl Backplane {
    /// The handle and its (not yet started) bridge.
    pub fn new(cfg: ClusterConfig) -> io::Result<(Arc<Backplane>, Bridge)> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), bridge::WAKER)?;
        let prefix = format!("herald:{}:", cfg.url.db);
        let incarnation = format!("{}.{}", cfg.node_id, super::random_node_id());
        let bp = Arc::new(Backplane {
            cfg,
            queue: ArrayQueue::new(QUEUE_CAPACITY),
            armed: AtomicBool::new(false),
            waker,
            up: AtomicBool::new(false),
            seq: AtomicU64::new(1),
            prefix,
            incarnation,
            counters: Counters::default(),
        });
        Ok((bp.clone(), Bridge { bp, poll }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// This run of this node: `<node id>.<random>`. Messages carry it as their origin, and
    /// shared state (presence entries, the liveness key) is keyed by it, so a node restarted
    /// with the same `--node-id` never inherits, nor keeps alive, its previous run's entries.
    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    /// `herald:<db>:`, the start of every Redis channel Herald uses.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the link to Redis is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether `n` publishes would be taken now (checked before a multi-channel request, so
    /// a batch is refused whole rather than half sent).
    pub fn can_publish(&self, n: usize) -> Result<(), Refused> {
        if !self.is_up() {
            self.counters
                .publish_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Down);
        }
        if self.queue.len() + n > QUEUE_CAPACITY * 3 / 4 {
            self.counters
                .publish_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        Ok(())
    }

    /// Publish `payload` on `topic` to the other nodes (wrapped with this node's id).
    pub fn publish(&self, topic: Bytes, payload: Bytes) -> Result<(), Refused> {
        self.can_publish(1)?;
        self.push(Cmd::Publish { topic, payload }).map_err(|_| {
            self.counters
                .publish_refused
                .fetch_add(1, Ordering::Relaxed);
            Refused::Full
        })
    }

    /// Ask for `topic` on behalf of `shard`; the answer is an `Incoming::Subscribed` with the
    /// returned sequence number, sent to `shard` once the subscription is in place.
    pub fn subscribe(&self, topic: Bytes, shard: ShardId) -> Result<u64, Refused> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.push(Cmd::Subscribe { topic, shard, seq })
            .map(|()| seq)
            .map_err(|_| Refused::Full)
    }

    /// Run a Lua `script` (EVAL) with `keys` and `args`; its answer comes back to `shard` as
    /// `Incoming::Reply` with the returned id (`Value::Error("link lost")` if the link broke
    /// first). Refused while the link is down, so callers fall back at once.
    pub fn eval(
        &self,
        script: &'static str,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        shard: ShardId,
    ) -> Result<u64, Refused> {
        if !self.is_up() {
            return Err(Refused::Down);
        }
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        let cmd = Cmd::Eval {
            script,
            keys,
            args,
            shard,
            id,
        };
        self.push(cmd).map(|()| id).map_err(|_| Refused::Full)
    }

    /// `shard` no longer needs `topic` (Redis unsubscribes when no shard does).
    pub fn unsubscribe(&self, topic: Bytes, shard: ShardId) {
        if self.push(Cmd::Unsubscribe { topic, shard }).is_err() {
            self.counters
                .unsubscribe_lost
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn push(&self, cmd: Cmd) -> Result<(), Cmd> {
        self.queue.push(cmd)?;
        if !self.armed.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Bridge side: disarm before draining (same coalescing as a shard inbox).
    pub(super) fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Bridge {
    /// Start the bridge thread, delivering to `sink`. It runs until `sink.stopping()`.
    pub fn start(self, sink: Arc<dyn Sink>) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("herald-backplane".into())
            .spawn(move || bridge::run(self.bp, self.poll, sink))
    }
}

impl MetricsSource for Backplane {
    fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 15] = [
            (
                "herald_cluster_recovered_total",
                "counter",
                "messages read back from a stream after a reconnect",
                get(&c.recovered),
            ),
            (
                "herald_cluster_recovery_gaps_total",
                "counter",
                "stream reads after a reconnect that found the stream gone or trimmed",
                get(&c.recovery_gaps),
            ),
            (
                "herald_cluster_up",
                "gauge",
                "1 while the link to Redis is up",
                u64::from(self.is_up()),
            ),
            (
                "herald_cluster_published_total",
                "counter",
                "PUBLISH commands written to Redis",
                get(&c.published),
            ),
            (
                "herald_cluster_publish_refused_total",
                "counter",
                "publishes refused: link down or queue full",
                get(&c.publish_refused),
            ),
            (
                "herald_cluster_publish_lost_total",
                "counter",
                "publishes taken but lost when the link broke",
                get(&c.publish_lost),
            ),
            (
                "herald_cluster_received_total",
                "counter",
                "messages from other nodes handed to shards",
                get(&c.received),
            ),
            (
                "herald_cluster_inbox_full_total",
                "counter",
                "messages from other nodes dropped: shard inbox full",
                get(&c.inbox_full),
            ),
            (
                "herald_cluster_malformed_total",
                "counter",
                "messages that were not Herald envelopes",
                get(&c.malformed),
            ),
            (
                "herald_cluster_connects_total",
                "counter",
                "successful connections to Redis",
                get(&c.connects),
            ),
            (
                "herald_cluster_disconnects_total",
                "counter",
                "links to Redis lost",
                get(&c.disconnects),
            ),
            (
                "herald_cluster_unsubscribe_lost_total",
                "counter",
                "unsubscribes lost to a full queue",
                get(&c.unsubscribe_lost),
            ),
            (
                "herald_cluster_topics",
                "gauge",
                "Redis channels this node is subscribed to",
                get(&c.topics),
            ),
            (
                "herald_cluster_publish_rtt_microseconds_sum",
                "counter",
                "sum of PUBLISH round trips",
                get(&c.rtt_us_sum),
            ),
            (
                "herald_cluster_publish_rtt_microseconds_count",
                "counter",
                "PUBLISH round trips measured",
                get(&c.rtt_count),
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let max = "herald_cluster_publish_rtt_microseconds_max";
        let _ = writeln!(
            out,
            "# HELP {max} largest PUBLISH round trip\n# TYPE {max} gauge\n{max} {}",
            get(&c.rtt_us_max)
        );
    }
}
