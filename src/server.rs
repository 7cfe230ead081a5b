//! The server as shipped: the reactor with three dialects on one port through nested
//! `dialect::Pair`s — Pushi (in Pushi mode only: its socket paths `/{..}/{64 hex}` and its
//! REST routes; it claims nothing otherwise), Pusher (`/app/` and `/apps/` paths) and
//! Channelstream (everything else, exactly as before). In Pushi mode, or with
//! `--persist-history`, the durable store (`store`) is opened here before any shard starts
//! (an error there is an error to start), the stored Channelstream history is read (a
//! blocking read, before the shards run) for the model shard, and the store's answer sink is
//! wired to the shards' inboxes once they exist. `main` and the
//! integration tests start it from here; the reactor itself names no dialect.

use crate::channelstream::{Channelstream, CsMsg};
use crate::cluster::{Backplane, Bridge};
use crate::config::Config;
use crate::dialect::{Either, Pair};
use crate::pusher::app_metrics::AppMetrics;
use crate::pusher::apps::{Apps, Quotas};
use crate::pusher::webhooks::{Hub, WebhookMetrics};
use crate::pusher::{Pusher, PusherMsg};
use crate::pushi::session::Sessions;
use crate::pushi::webs::Webs;
use crate::pushi::{Pushi, PushiMsg, Token};
use crate::shard::{self, inbox::ShardMsg};
use crate::store::{self, Store};
use mio::net::TcpListener;
use std::io;
use std::sync::Arc;

/// The dialects served.
pub type Served = Pair<Pushi, Pair<Pusher, Channelstream>>;
/// What the dialects' instances send each other.
pub type Msg = Either<PushiMsg, Either<PusherMsg, CsMsg>>;
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

/// Stored Channelstream history rows `(channel, message)`, oldest first.
type Rows = Vec<(String, String)>;

/// What every shard's Pushi instance shares (Pushi mode): the store handle, the session key
/// and the web-hook sender. Nothing in Pushi mode off.
struct PushiShared {
    store: Option<Store<Token>>,
    key: [u8; 32],
    webs: Option<Webs>,
    /// `--persist-history`: the store's fire-and-forget handle for Channelstream, and the
    /// stored history for the model shard (taken by the first instance that asks).
    cs_history: Option<(store::Writer, std::sync::Mutex<Rows>)>,
}

impl PushiShared {
    fn new(cfg: &Config) -> io::Result<Self> {
        let key = Sessions::random_key();
        if !cfg.pushi.store_wanted() {
            return Ok(PushiShared {
                store: None,
                key,
                webs: None,
                cs_history: None,
            });
        }
        let p = &cfg.pushi;
        let settings = store::Settings {
            dir: p.data_dir.clone(),
            queue: p.store_queue,
            max_events_per_channel: p.max_events_per_channel,
            max_event_age: (p.max_event_age_secs > 0)
                .then(|| std::time::Duration::from_secs(p.max_event_age_secs)),
            sync_full: p.sync_full,
        };
        let fail = |e: store::OpenError| io::Error::other(e.to_string());
        let st: Store<Token> = Store::open(&settings).map_err(fail)?;
        let cs_history = if p.persist_history {
            let rows = store::read_cs_history(&settings).map_err(fail)?;
            Some((st.writer(), std::sync::Mutex::new(rows)))
        } else {
            None
        };
        if !p.enabled {
            // History only: no Pushi, so no answers are ever asked for.
            return Ok(PushiShared {
                store: None,
                key,
                webs: None,
                cs_history,
            });
        }
        let webs = Webs::start(
            store::read_webs(&settings).map_err(fail)?,
            store::read_subscriptions(&settings).map_err(fail)?,
        )?;
        Ok(PushiShared {
            store: Some(st),
            key,
            webs: Some(webs),
            cs_history,
        })
    }

    /// The history writer and (for the first caller, the model shard's instance) the rows.
    fn history_for(
        &self,
        id: crate::ids::ShardId,
    ) -> (Option<store::Writer>, Vec<(String, String)>) {
        let Some((w, rows)) = self.cs_history.as_ref() else {
            return (None, Vec::new());
        };
        if id != crate::channelstream::dialect::MODEL_SHARD {
            return (None, Vec::new());
        }
        let rows = rows
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        (Some(w.clone()), rows)
    }

    /// Send the store's answers to the shards' inboxes (once they exist).
    fn wire(store: Option<Store<Token>>, running: &Running) {
        let Some(st) = store else {
            return;
        };
        let inboxes = running.shared.inboxes.clone();
        st.set_sink(Box::new(move |to, done| {
            let inbox = inboxes.get(to.index())?;
            let msg = ShardMsg::Dialect(Either::First(PushiMsg::Stored(Box::new(done))));
            match inbox.send(msg) {
                Ok(()) => None,
                Err(ShardMsg::Dialect(Either::First(PushiMsg::Stored(d)))) => Some(*d),
                Err(_) => None,
            }
        }));
    }
}

fn make(
    cfg: &Arc<Config>,
    (p, q): (&PusherShared, &PushiShared),
    bp: &Option<Arc<Backplane>>,
    id: crate::ids::ShardId,
    shards: usize,
) -> Served {
    let sessions = Sessions::new(q.key);
    let (writer, restored) = q.history_for(id);
    Pair::new(
        Pushi::new(cfg, shards, q.store.clone(), sessions, q.webs.clone()),
        Pair::new(
            Pusher::sharing(cfg, shards, p.quotas.clone(), p.metrics.clone())
                .with_webhooks(p.webhooks.clone())
                .with_cluster(bp.clone(), id),
            Channelstream::new(cfg.clone(), id)
                .with_cluster(bp.clone(), id)
                .with_history(writer, restored),
        ),
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
    let q = PushiShared::new(&cfg)?;
    let store = q.store.clone();
    let p = PusherShared::new(&cfg, listeners.len().max(1));
    let mut sources = p.sources();
    let (bp, bridge) = backplane(&cfg)?.unzip();
    if let Some(bp) = &bp {
        sources.push(bp.clone());
    }
    let running = shard::spawn_on_with(cfg, listeners, sources, move |id, n| {
        make(&dialect_cfg, (&p, &q), &bp, id, n)
    })?;
    PushiShared::wire(store, &running);
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
