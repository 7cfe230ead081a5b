//! Starting the shards: one poll, inbox and thread each, one socket per listener each, and
//! what they share.
//!
//! `Shared` is everything the shards share: the configuration, every shard's inbox and
//! counters, and the shutdown flag — read-only apart from atomics. The dialect instances are
//! made per shard by the caller's factory, on the spawning thread, then moved into their
//! shard; nothing of a dialect is shared.

use super::inbox::{Inbox, ShardMsg};
use super::metrics::{self, ShardStats};
use super::{Listener, Shard, INBOX_CAPACITY, MAX_LISTENERS, WAKER};
use crate::config::Config;
use crate::dialect::{CounterDef, Dialect, MetricsSource};
use crate::ids::ShardId;
use crate::tls::{CertStore, ShardTls, TlsError};
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
    /// The certificate of each TLS listener (SIGHUP reloads them).
    pub tls: Vec<Arc<CertStore>>,
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

    /// Re-read every TLS listener's certificate and key; each one that loads replaces its
    /// listener's config for new handshakes, each one that fails is returned (its listener
    /// keeps the old config). Runs on the signal thread, never on a shard.
    pub fn reload_tls(&self) -> Vec<TlsError> {
        self.tls.iter().filter_map(|s| s.reload().err()).collect()
    }

    /// Ask every shard to shut down gracefully.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for inbox in &self.inboxes {
            let _ = inbox.send(ShardMsg::Shutdown);
        }
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
    /// The extra listeners' addresses (`Config::listeners` order).
    pub extra_addrs: Vec<SocketAddr>,
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
    let listeners = bind_per_shard(cfg.listen_addr()?, cfg.shards.max(1))?;
    spawn_on_with(cfg, listeners, extra_metrics, make)
}

/// Bind `addr` once per shard (port 0: the first shard's port is reused by the others).
fn bind_per_shard(mut addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let l = crate::net::bind_reuseport(addr)?;
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

fn load_store(files: &crate::config::TlsFiles) -> io::Result<Arc<CertStore>> {
    CertStore::load(files.clone())
        .map(Arc::new)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
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

/// [`spawn_on`], with metrics the dialects render themselves appended to `/metrics`. The
/// given listeners are the main listener's (TLS if `cfg.tls`); the extra listeners of
/// `cfg.listeners` are bound here, once per shard. Certificates are loaded before any shard
/// starts: a bad one fails the start.
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
    if cfg.listeners.len() + 1 > MAX_LISTENERS {
        return Err(io::Error::other("too many listeners"));
    }
    // Per listener: its certificate (if TLS) and, for extra listeners, one socket per shard.
    let main_tls = cfg.tls.as_ref().map(load_store).transpose()?;
    let mut extra = Vec::with_capacity(cfg.listeners.len());
    let mut extra_addrs = Vec::with_capacity(cfg.listeners.len());
    for l in &cfg.listeners {
        let tls = l.tls.as_ref().map(load_store).transpose()?;
        let socks = bind_per_shard(cfg.listener_addr(l)?, n)?;
        extra_addrs.push(socks.first().map_or(Ok(addr), |s| s.local_addr())?);
        extra.push((socks, tls));
    }
    let stores: Vec<Arc<CertStore>> = main_tls
        .iter()
        .chain(extra.iter().filter_map(|(_, t)| t.as_ref()))
        .cloned()
        .collect();
    let mut per_shard: Vec<Vec<Listener>> = listeners
        .into_iter()
        .map(|tcp| {
            vec![Listener {
                tcp,
                tls: main_tls.clone().map(ShardTls::new),
            }]
        })
        .collect();
    for (socks, tls) in extra {
        for (shard, tcp) in per_shard.iter_mut().zip(socks) {
            shard.push(Listener {
                tcp,
                tls: tls.clone().map(ShardTls::new),
            });
        }
    }
    let mut polls = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    let mut shard_addrs = Vec::with_capacity(n);
    for l in per_shard.iter().filter_map(|ls| ls.first()) {
        let l = &l.tcp;
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
        tls: stores,
    });
    let mut handles = Vec::with_capacity(n);
    for (i, (poll, listeners)) in polls.into_iter().zip(per_shard).enumerate() {
        let id = ShardId(i as u16);
        let shard = Shard::new(id, poll, listeners, shared.clone(), make(id, n))?;
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
        extra_addrs,
    })
}
