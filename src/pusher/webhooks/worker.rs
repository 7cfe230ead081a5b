//! One sender thread: take events from its URL's queue, batch them (when the app batches),
//! POST each batch signed, and retry a failed one with exponential back-off.
//!
//! Why blocking `ureq` on a thread of its own: the thread has nothing else to do, so a blocking
//! client with per-attempt timeouts is the simplest correct thing, and `ureq` (rustls for
//! `https://`) brings no async runtime. Each request carries `Content-Type: application/json`
//! (exactly: the npm SDK compares it byte for byte), `X-Pusher-Key` and `X-Pusher-Signature:
//! hex(HMAC-SHA256(secret, body))`. A batch is retried from its first attempt for
//! `webhook_retry_secs` (first back-off `retry_initial`, doubled each time, at most
//! [`MAX_BACKOFF`]); then its events are dropped and counted. The next batch waits meanwhile:
//! one URL's requests stay in order.

use super::events::{self, Raised};
use super::hub::Stop;
use super::metrics::{HookCounter, WebhookMetrics};
use crate::config::WebhookSettings;
use crate::pusher::apps::AppIdx;
use crate::pusher::sign;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest back-off between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The most of a receiver's answer body that is read (then the connection is not reused).
const MAX_ANSWER: u64 = 64 * 1024;

/// Where one sender thread sends.
pub(super) struct Target {
    pub app: AppIdx,
    pub url: String,
    pub key: String,
    pub secret: String,
    pub settings: WebhookSettings,
}

/// The thread's body: runs until its queue closes and is flushed.
pub(super) fn run(t: Target, rx: Receiver<Arc<Raised>>, metrics: &WebhookMetrics, stop: &Stop) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(t.settings.timeout))
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut sender = Sender {
        t: &t,
        agent,
        metrics,
        stop,
        healthy: true,
    };
    let mut open = true;
    loop {
        let first = if open {
            match rx.recv() {
                Ok(e) => e,
                Err(_) => {
                    open = false;
                    continue;
                }
            }
        } else {
            match rx.try_recv() {
                Ok(e) => e,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        if t.settings.batching {
            let until = Instant::now() + t.settings.batch_window;
            while batch.len() < t.settings.batch_max {
                let left = until.saturating_duration_since(Instant::now());
                let got = if open {
                    rx.recv_timeout(left)
                } else {
                    rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
                };
                match got {
                    Ok(e) => batch.push(e),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
        }
        sender.deliver(&batch);
    }
    stop.finished();
}

struct Sender<'a> {
    t: &'a Target,
    agent: ureq::Agent,
    metrics: &'a WebhookMetrics,
    stop: &'a Stop,
    /// The last attempt succeeded (failures are logged on the change only).
    healthy: bool,
}

impl Sender<'_> {
    /// Send one batch, retrying until it succeeds, the retry window closes or the flush
    /// deadline passes.
    fn deliver(&mut self, batch: &[Arc<Raised>]) {
        let (app, n) = (self.t.app, batch.len() as u64);
        let body = events::body(batch.iter().map(|r| &**r));
        let signature = sign::hmac_hex(self.t.secret.as_bytes(), &body);
        let started = Instant::now();
        let mut backoff = self.t.settings.retry_initial;
        loop {
            let mut timeout = self.t.settings.timeout;
            if let Some(deadline) = self.stop.deadline() {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => timeout = timeout.min(left),
                    _ => return self.give_up(n, "shutdown flush deadline passed"),
                }
            }
            match self.post(&body, &signature, timeout) {
                Ok(()) => {
                    self.metrics.add(app, HookCounter::Sent, 1);
                    self.metrics.add(app, HookCounter::EventsSent, n);
                    if !self.healthy {
                        tracing::info!(url = %self.t.url, "webhook receiver answers again");
                        self.healthy = true;
                    }
                    return;
                }
                Err(why) => {
                    self.metrics.add(app, HookCounter::Failed, 1);
                    if self.healthy {
                        tracing::warn!(url = %self.t.url, error = %why, "webhook attempt failed; retrying with back-off");
                        self.healthy = false;
                    } else {
                        tracing::debug!(url = %self.t.url, error = %why, "webhook attempt failed");
                    }
                }
            }
            if started.elapsed() + backoff > self.t.settings.retry_for {
                return self.give_up(n, "retry window closed");
            }
            self.stop.sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn give_up(&self, n: u64, why: &str) {
        self.metrics.add(self.t.app, HookCounter::DroppedGaveUp, n);
        tracing::warn!(url = %self.t.url, events = n, reason = why, "webhook dropped");
    }

    /// One attempt: a 2xx answer is success; anything else (status, timeout, I/O) a failure.
    fn post(&self, body: &[u8], signature: &str, timeout: Duration) -> Result<(), String> {
        let answer = self
            .agent
            .post(&self.t.url)
            .header("Content-Type", "application/json")
            .header("X-Pusher-Key", &self.t.key)
            .header("X-Pusher-Signature", signature)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body);
        match answer {
            Ok(mut r) => {
                let status = r.status();
                let _ = r.body_mut().with_config().limit(MAX_ANSWER).read_to_vec();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("answered {status}"))
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
