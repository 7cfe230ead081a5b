//! The sender side: one bounded queue and one sender thread per (app, URL), shared by every
//! shard through an `Arc<Hub>`.
//!
//! Why a thread per URL: sending is blocking HTTP, so it never runs on a shard; and one thread
//! per receiver means a slow or dead receiver (each attempt bounded by `webhook_timeout_ms`,
//! then back-off) holds back only its own queue, never another URL's or another app's.
//! Requests to one URL go one at a time, in order, so a receiver never sees
//! `channel_vacated` before the `channel_occupied` that it follows, even across retries.
//!
//! **Full-queue policy**: a shard hands an event over with a non-blocking `try_send` on a
//! bounded `std::sync::mpsc::sync_channel` (`webhook_queue` events per URL); when the queue is
//! full the event is dropped for that URL and counted
//! (`herald_pusher_app_webhook_events_dropped_total{reason="queue_full"}`). A shard never
//! waits for the sender: `try_send` is a slot write plus, when the thread sleeps, its wake-up
//! (the channel's internal waker list is the only lock, held for that moment).
//!
//! **Shutdown**: when the last shard drops its `Arc<Hub>`, the queues close; each sender thread
//! sends what is queued, retrying only until [`FLUSH_BOUND`] has passed, counts the rest as
//! given up, and exits. The drop waits for the threads at most [`FLUSH_BOUND`] plus one second
//! (an attempt already under way is cut by its own timeout), so a dead receiver cannot hang
//! the process at exit.

use super::events::Raised;
use super::metrics::{HookCounter, WebhookMetrics};
use super::worker::{self, Target};
use crate::config::WebhookSettings;
use crate::pusher::apps::{AppIdx, Apps};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the sender threads may keep sending after shutdown begins.
pub const FLUSH_BOUND: Duration = Duration::from_secs(3);

/// One app's settings and its URLs' queues.
struct AppHooks {
    settings: WebhookSettings,
    queues: Vec<SyncSender<Arc<Raised>>>,
}

/// The webhook sender threads and their queues.
pub struct Hub {
    apps: Vec<AppHooks>,
    metrics: Arc<WebhookMetrics>,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Start a sender thread per configured URL; `None` if no app has webhooks.
    pub fn start(apps: &Apps, metrics: Arc<WebhookMetrics>) -> Option<Arc<Hub>> {
        if !apps.iter().any(|a| a.webhooks.enabled()) {
            return None;
        }
        let stop = Arc::new(Stop::default());
        let mut hub = Hub {
            apps: Vec::with_capacity(apps.len()),
            metrics: metrics.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for (i, app) in apps.iter().enumerate() {
            let mut queues = Vec::new();
            let idx = AppIdx::try_from(i).unwrap_or(AppIdx::MAX);
            for (n, url) in app.webhooks.urls.iter().enumerate() {
                let (tx, rx) = mpsc::sync_channel(app.webhooks.queue);
                let target = Target {
                    app: idx,
                    url: url.clone(),
                    key: app.key.clone(),
                    secret: app.secret.clone(),
                    settings: app.webhooks.clone(),
                };
                let (m, s) = (metrics.clone(), stop.clone());
                stop.started();
                let spawned = std::thread::Builder::new()
                    .name(format!("herald-webhook-{i}-{n}"))
                    .spawn(move || worker::run(target, rx, &m, &s));
                match spawned {
                    Ok(h) => {
                        hub.threads.push(h);
                        queues.push(tx);
                    }
                    Err(e) => {
                        stop.finished();
                        tracing::error!(app = %app.id, error = %e, "cannot start a webhook sender thread; that URL gets no webhooks");
                    }
                }
            }
            hub.apps.push(AppHooks {
                settings: app.webhooks.clone(),
                queues,
            });
        }
        Some(Arc::new(hub))
    }

    /// The app's settings, if it sends webhooks.
    pub fn settings(&self, app: AppIdx) -> Option<&WebhookSettings> {
        self.apps
            .get(usize::from(app))
            .map(|a| &a.settings)
            .filter(|s| s.enabled())
    }

    /// Queue an event for each of the app's URLs (never blocks; a full queue drops it there).
    pub fn push(&self, app: AppIdx, raised: Raised) {
        let Some(hooks) = self.apps.get(usize::from(app)) else {
            return;
        };
        let raised = Arc::new(raised);
        for q in &hooks.queues {
            match q.try_send(raised.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.metrics.add(app, HookCounter::DroppedQueueFull, 1);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let deadline = Instant::now() + FLUSH_BOUND;
        self.stop.begin(deadline);
        // Closing the queues tells each thread to flush and exit.
        self.apps.clear();
        if !self.stop.wait_finished(deadline + Duration::from_secs(1)) {
            tracing::warn!("webhook senders still busy at exit; their last events are lost");
            return;
        }
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// Shutdown signalling between the hub and its threads: the flush deadline, and how many
/// threads still run. Only the sender threads and the hub's drop take this lock, never a
/// shard.
#[derive(Debug, Default)]
pub(super) struct Stop {
    state: Mutex<StopState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct StopState {
    deadline: Option<Instant>,
    running: usize,
}

impl Stop {
    fn lock(&self) -> std::sync::MutexGuard<'_, StopState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn started(&self) {
        self.lock().running += 1;
    }

    /// A sender thread is done.
    pub(super) fn finished(&self) {
        let mut s = self.lock();
        s.running = s.running.saturating_sub(1);
        self.cv.notify_all();
    }

    fn begin(&self, deadline: Instant) {
        self.lock().deadline = Some(deadline);
        self.cv.notify_all();
    }

    /// The flush deadline, once shutdown began.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    /// Sleep for `d` (a back-off), or less if shutdown begins (or its deadline comes) first.
    pub(super) fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            let end = s.deadline.map_or(until, |dl| dl.min(until));
            if now >= end {
                return;
            }
            let had_deadline = s.deadline.is_some();
            s = match self.cv.wait_timeout(s, end - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
            if !had_deadline && s.deadline.is_some() {
                // Shutdown began: the caller retries at once, within the flush deadline.
                return;
            }
        }
    }

    fn wait_finished(&self, until: Instant) -> bool {
        let mut s = self.lock();
        while s.running > 0 {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            s = match self.cv.wait_timeout(s, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}
