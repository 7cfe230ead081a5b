//! Starting the shards: one listener, poll, inbox and thread each, and what they share.
//!
//! `Shared` is everything the shards share: the configuration, every shard's inbox and
//! counters, and the shutdown flag — read-only apart from atomics. The dialect instances are
//! made per shard by the caller's factory, on the spawning thread, then moved into their
//! shard; nothing of a dialect is shared.

use super::inbox::{Inbox, ShardMsg};
use super::metrics::{self, ShardStats};
use super::{Shard, INBOX_CAPACITY, WAKER};
use crate::config::Config;
use crate::dialect::{CounterDef, Dialect, MetricsSource};
use crate::ids::ShardId;
use mio::net::TcpListener;
use mio::Poll;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What all shards share, read-only (plus atomics).
pub struct Shared<M> {
    /// The configuration.
    pub cfg: Arc<Config>,
    /// Every shard's inbox, by shard index.
    pub inboxes: Vec<Arc<Inbox<M>>>,
    /// Every shard's counters, by shard index.
    pub stats: Vec<Arc<ShardStats>>,
    /// Set once shutdown was requested.
    pub shutdown: AtomicBool,
    /// The dialect's counter names (`Dialect::counters`).
    pub dialect_counters: Vec<CounterDef>,
    /// Metrics the dialects render themselves (labelled families).
    pub extra_metrics: Vec<Arc<dyn MetricsSource>>,
}

impl<M> Shared<M> {
    /// Open connections over all shards (a few relaxed loads: only read on accept).
    pub fn open_connections(&self) -> usize {
        self.stats
            .iter()
            .map(|s| s.open.load(Ordering::Relaxed) as usize)
            .sum()
    }

    /// Every shard's counters, summed, in Prometheus text exposition format.
    pub fn metrics_text(&self) -> String {
        let inbox_full = self
            .inboxes
            .iter()
            .map(|i| i.full_events.load(Ordering::Relaxed))
            .sum();
        let mut out = metrics::render(&self.stats, inbox_full, &self.dialect_counters);
        for m in &self.extra_metrics {
            m.render(&mut out);
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

/// The cluster bridge delivers into the shards' inboxes.
impl<M: Send + 'static> crate::cluster::Sink for Shared<M> {
    fn deliver(
        &self,
        shard: ShardId,
        msg: crate::cluster::Incoming,
    ) -> Result<(), crate::cluster::Incoming> {
        let Some(inbox) = self.inboxes.get(shard.index()) else {
            return Err(msg);
        };
        inbox
            .send(ShardMsg::Cluster(Box::new(msg)))
            .map_err(|m| match m {
                ShardMsg::Cluster(inc) => *inc,
                _ => crate::cluster::Incoming::Subscribed {
                    topic: bytes::Bytes::new(),
                    seq: 0,
                },
            })
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// A started server: its shared state, shard threads and the bound address.
pub struct Running<M> {
    /// What the shards share.
    pub shared: Arc<Shared<M>>,
    /// The shard threads.
    pub handles: Vec<JoinHandle<io::Result<()>>>,
    /// The listening address.
    pub addr: SocketAddr,
    /// The listening address of each shard (all equal under SO_REUSEPORT).
    pub shard_addrs: Vec<SocketAddr>,
}

/// Start `cfg.shards` shard threads, each with its own SO_REUSEPORT listener on the configured
/// address (port 0: the first shard's port is reused by the others), and a dialect instance
/// from `make(shard, shards)`. Listeners are bound before this returns, so the server accepts
/// connections as soon as it does.
pub fn spawn<D: Dialect + Send>(
    cfg: Arc<Config>,
    make: impl FnMut(ShardId, usize) -> D,
) -> io::Result<Running<D::Msg>> {
    spawn_with(cfg, Vec::new(), make)
}

/// [`spawn`], with metrics the dialects render themselves appended to `/metrics`.
pub fn spawn_with<D: Dialect + Send>(
    cfg: Arc<Config>,
    extra_metrics: Vec<Arc<dyn MetricsSource>>,
    make: impl FnMut(ShardId, usize) -> D,
) -> io::Result<Running<D::Msg>> {
    let n = cfg.shards.max(1);
    let mut addr = cfg.listen_addr()?;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let l = crate::net::bind_reuseport(addr)?;
        addr = l.local_addr()?;
        listeners.push(l);
    }
    spawn_on_with(cfg, listeners, extra_metrics, make)
}

/// Start one shard per given listener. Tests use this with a separate port per shard to put a
/// client on a chosen shard and force cross-shard paths deterministically.
pub fn spawn_on<D: Dialect + Send>(
    cfg: Arc<Config>,
    listeners: Vec<TcpListener>,
    make: impl FnMut(ShardId, usize) -> D,
) -> io::Result<Running<D::Msg>> {
    spawn_on_with(cfg, listeners, Vec::new(), make)
}

/// [`spawn_on`], with metrics the dialects render themselves appended to `/metrics`.
pub fn spawn_on_with<D: Dialect + Send>(
    cfg: Arc<Config>,
    listeners: Vec<TcpListener>,
    extra_metrics: Vec<Arc<dyn MetricsSource>>,
    mut make: impl FnMut(ShardId, usize) -> D,
) -> io::Result<Running<D::Msg>> {
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
    let counters = D::counters();
    let shared = Arc::new(Shared {
        cfg,
        inboxes,
        stats: (0..n)
            .map(|_| Arc::new(ShardStats::new(counters.len())))
            .collect(),
        shutdown: AtomicBool::new(false),
        dialect_counters: counters,
        extra_metrics,
    });
    let mut handles = Vec::with_capacity(n);
    for (i, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
        let id = ShardId(i as u16);
        let shard = Shard::new(id, poll, listener, shared.clone(), make(id, n))?;
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
