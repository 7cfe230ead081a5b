//! The server as shipped: the reactor with two dialects on one port, Pusher (it claims
//! `/app/` and `/apps/` paths) and Channelstream (everything else, exactly as before), through
//! `dialect::Pair`. `main` and the integration tests start it from here; the reactor itself
//! names no dialect.

use crate::channelstream::{Channelstream, CsMsg};
use crate::cluster::{Backplane, Bridge};
use crate::config::Config;
use crate::dialect::{Either, Pair};
use crate::pusher::app_metrics::AppMetrics;
use crate::pusher::apps::{Apps, Quotas};
use crate::pusher::webhooks::{Hub, WebhookMetrics};
use crate::pusher::{Pusher, PusherMsg};
use crate::shard;
use mio::net::TcpListener;
use std::io;
use std::sync::Arc;

/// The dialects served.
pub type Served = Pair<Pusher, Channelstream>;
/// What the dialects' instances send each other.
pub type Msg = Either<PusherMsg, CsMsg>;
/// What the shards of this server share.
pub type Shared = shard::Shared<Msg>;
/// A started server.
pub type Running = shard::Running<Msg>;

/// What every shard's Pusher instance shares: connection quotas, per-app metrics, and the
/// webhook sender threads (stopped and flushed when the last shard drops its `Arc<Hub>`).
struct PusherShared {
    quotas: Quotas,
    metrics: Arc<AppMetrics>,
    webhook_metrics: Arc<WebhookMetrics>,
    webhooks: Option<Arc<Hub>>,
}

impl PusherShared {
    fn new(cfg: &Config, shards: usize) -> Self {
        let apps = Apps::from_config(cfg);
        let webhook_metrics = Arc::new(WebhookMetrics::new(&apps));
        PusherShared {
            quotas: Quotas::new(apps.len()),
            metrics: Arc::new(AppMetrics::new(&apps, shards)),
            webhooks: Hub::start(&apps, webhook_metrics.clone()),
            webhook_metrics,
        }
    }

    fn sources(&self) -> Vec<Arc<dyn crate::dialect::MetricsSource>> {
        vec![self.metrics.clone(), self.webhook_metrics.clone()]
    }
}

fn make(
    cfg: &Arc<Config>,
    p: &PusherShared,
    bp: &Option<Arc<Backplane>>,
    id: crate::ids::ShardId,
    shards: usize,
) -> Served {
    Pair::new(
        Pusher::sharing(cfg, shards, p.quotas.clone(), p.metrics.clone())
            .with_webhooks(p.webhooks.clone())
            .with_cluster(bp.clone(), id),
        Channelstream::new(cfg.clone(), id).with_cluster(bp.clone(), id),
    )
}

/// The backplane of cluster mode (`--cluster`), built but not started; `None` without it.
fn backplane(cfg: &Config) -> io::Result<Option<(Arc<Backplane>, Bridge)>> {
    cfg.cluster_config().map(Backplane::new).transpose()
}

/// Start the bridge thread once the shards (its destinations) run.
fn start_bridge(bridge: Option<Bridge>, running: &Running) -> io::Result<()> {
    if let Some(b) = bridge {
        // The thread exits by itself once shutdown is requested (`Sink::stopping`).
        b.start(running.shared.clone())?;
    }
    Ok(())
}

/// Start the configured number of shards on the configured address.
pub fn spawn(cfg: Arc<Config>) -> io::Result<Running> {
    let n = cfg.shards.max(1);
    let mut listeners = Vec::with_capacity(n);
    let mut addr = cfg.listen_addr()?;
    for _ in 0..n {
        let l = crate::net::bind_reuseport(addr)?;
        addr = l.local_addr()?;
        listeners.push(l);
    }
    spawn_on(cfg, listeners)
}

/// Start one shard per listener (tests: a port per shard puts a client on a chosen shard).
pub fn spawn_on(cfg: Arc<Config>, listeners: Vec<TcpListener>) -> io::Result<Running> {
    let dialect_cfg = cfg.clone();
    let p = PusherShared::new(&cfg, listeners.len().max(1));
    let mut sources = p.sources();
    let (bp, bridge) = backplane(&cfg)?.unzip();
    if let Some(bp) = &bp {
        sources.push(bp.clone());
    }
    let running = shard::spawn_on_with(cfg, listeners, sources, move |id, n| {
        make(&dialect_cfg, &p, &bp, id, n)
    })?;
    start_bridge(bridge, &running)?;
    Ok(running)
}

#[cfg(test)]
mod tests {
    /// The pair's message keeps an inbox slot at 64 B.
    #[test]
    fn message_fits_an_inbox_slot() {
        let n = std::mem::size_of::<super::Msg>();
        assert!(
            n <= crate::shard::inbox::MAX_DIALECT_MSG,
            "Msg is {n} bytes"
        );
    }
}
