//! Webhook counters per app in `/metrics`, beside the `herald_pusher_app_*` families:
//! requests sent (answered 2xx) and the events in them, failed attempts, and events dropped
//! (sender queue full, or retries given up).
//!
//! Why not `app_metrics`' per-shard rows: most writers are the sender threads, not shards, and
//! the shards write only when a queue is full (the rare path), so one row of relaxed atomics
//! per app is enough.

use crate::dialect::MetricsSource;
use crate::pusher::app_metrics::escape;
use crate::pusher::apps::{AppIdx, Apps};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A webhook counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookCounter {
    /// Requests answered 2xx.
    Sent,
    /// Events in requests answered 2xx.
    EventsSent,
    /// Attempts that failed: non-2xx, timeout, connection error.
    Failed,
    /// Events dropped because their URL's queue was full.
    DroppedQueueFull,
    /// Events dropped after their request failed for the whole retry window (or at shutdown).
    DroppedGaveUp,
}

const K: usize = 5;

/// Every app's webhook counters.
#[derive(Debug)]
pub struct WebhookMetrics {
    ids: Vec<String>,
    values: Box<[AtomicU64]>,
}

impl WebhookMetrics {
    /// Zeroed counters for `apps`.
    pub fn new(apps: &Apps) -> Self {
        let ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
        let values = (0..ids.len() * K).map(|_| AtomicU64::new(0)).collect();
        WebhookMetrics { ids, values }
    }

    /// Add `n`.
    pub fn add(&self, app: AppIdx, c: HookCounter, n: u64) {
        if let Some(v) = self.values.get(usize::from(app) * K + c as usize) {
            v.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current value.
    pub fn get(&self, app: AppIdx, c: HookCounter) -> u64 {
        self.values
            .get(usize::from(app) * K + c as usize)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }
}

impl MetricsSource for WebhookMetrics {
    fn render(&self, out: &mut String) {
        let families = [
            (
                HookCounter::Sent,
                "herald_pusher_app_webhooks_sent_total",
                "Webhook requests answered 2xx per app",
            ),
            (
                HookCounter::EventsSent,
                "herald_pusher_app_webhook_events_sent_total",
                "Webhook events in requests answered 2xx per app",
            ),
            (
                HookCounter::Failed,
                "herald_pusher_app_webhooks_failed_total",
                "Webhook attempts that failed (non-2xx, timeout, connection error) per app",
            ),
        ];
        let apps = || {
            self.ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| AppIdx::try_from(i).ok().map(|a| (a, escape(id))))
        };
        for (c, name, help) in families {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
            for (app, id) in apps() {
                let _ = writeln!(out, "{name}{{app=\"{id}\"}} {}", self.get(app, c));
            }
        }
        let name = "herald_pusher_app_webhook_events_dropped_total";
        let _ = write!(
            out,
            "# HELP {name} Webhook events dropped per app, by reason (queue_full, gave_up)\n# TYPE {name} counter\n"
        );
        for (app, id) in apps() {
            for (c, reason) in [
                (HookCounter::DroppedQueueFull, "queue_full"),
                (HookCounter::DroppedGaveUp, "gave_up"),
            ] {
                let v = self.get(app, c);
                let _ = writeln!(out, "{name}{{app=\"{id}\",reason=\"{reason}\"}} {v}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PusherApp};

    #[test]
    fn renders_per_app() {
        let cfg = Config {
            pusher_apps: vec![PusherApp::new("1", "a", "s"), PusherApp::new("2", "b", "s")],
            ..Config::default()
        };
        let m = WebhookMetrics::new(&Apps::from_config(&cfg));
        m.add(1, HookCounter::Sent, 2);
        m.add(1, HookCounter::DroppedGaveUp, 3);
        m.add(9, HookCounter::Sent, 1);
        let mut t = String::new();
        m.render(&mut t);
        assert!(
            t.contains("herald_pusher_app_webhooks_sent_total{app=\"2\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("herald_pusher_app_webhooks_sent_total{app=\"1\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("_dropped_total{app=\"2\",reason=\"gave_up\"} 3\n"),
            "{t}"
        );
    }
}
