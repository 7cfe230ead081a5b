//! Per-app Pusher metrics: `herald_pusher_app_*{app="<id>"}` families in `/metrics`.
//!
//! Why not `Dialect::counters`: those are static names, while an `app` label takes its values
//! from the configured app table. Each shard writes only its own padded row of relaxed
//! atomics (no cache line shared between shards on the hot path); `render` (a
//! `dialect::MetricsSource`, called from whichever shard serves `/metrics`) sums the rows.

use super::apps::{AppIdx, Apps};
use crate::dialect::MetricsSource;
use crate::ids::ShardId;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A per-app counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppCounter {
    /// Open websockets (a gauge).
    Connections,
    /// Frames received from the app's websockets.
    MessagesIn,
    /// Channel event frames sent to the app's subscribers (one per recipient).
    MessagesOut,
    /// HTTP API requests refused 401.
    RejectedUnauthorized,
    /// Sockets closed 4003 and HTTP API requests refused 403: the app is disabled.
    RejectedDisabled,
    /// Sockets closed 4004: over `max_connections`.
    RejectedOverQuota,
    /// HTTP API requests refused 413: event data over `max_event_size`.
    RejectedTooLarge,
    /// HTTP API requests refused 400/405, sockets closed 4006-4008 (bad or no protocol).
    RejectedBadRequest,
}

const K: usize = 8;

/// The rejection reasons, in `AppCounter` order from `RejectedUnauthorized`.
const REASONS: [(AppCounter, &str); 5] = [
    (AppCounter::RejectedUnauthorized, "unauthorized"),
    (AppCounter::RejectedDisabled, "disabled"),
    (AppCounter::RejectedOverQuota, "over_quota"),
    (AppCounter::RejectedTooLarge, "too_large"),
    (AppCounter::RejectedBadRequest, "bad_request"),
];

/// Every shard's per-app counters.
#[derive(Debug)]
pub struct AppMetrics {
    ids: Vec<String>,
    shards: usize,
    /// Values per shard row (apps × K, rounded up to a cache line of 8).
    stride: usize,
    values: Box<[AtomicU64]>,
}

impl AppMetrics {
    /// Zeroed counters for `apps` on `shards` shards.
    pub fn new(apps: &Apps, shards: usize) -> Self {
        let ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
        let shards = shards.max(1);
        let stride = (ids.len() * K).div_ceil(8) * 8;
        AppMetrics {
            ids,
            shards,
            stride,
            values: (0..stride * shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, shard: ShardId, app: AppIdx, c: AppCounter) -> Option<&AtomicU64> {
        if usize::from(app) >= self.ids.len() {
            return None;
        }
        let i = shard.index() * self.stride + usize::from(app) * K + c as usize;
        self.values.get(i)
    }

    /// Add `n` on `shard`.
    pub fn add(&self, shard: ShardId, app: AppIdx, c: AppCounter, n: u64) {
        if let Some(v) = self.slot(shard, app, c) {
            v.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Take one from a gauge on `shard` (a socket closes on the shard it opened on).
    pub fn dec(&self, shard: ShardId, app: AppIdx, c: AppCounter) {
        if let Some(v) = self.slot(shard, app, c) {
            let _ = v.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(1));
        }
    }

    /// The sum over shards.
    pub fn get(&self, app: AppIdx, c: AppCounter) -> u64 {
        (0..self.shards)
            .filter_map(|s| u16::try_from(s).ok())
            .filter_map(|s| self.slot(ShardId(s), app, c))
            .map(|v| v.load(Ordering::Relaxed))
            .sum()
    }

    /// Count an HTTP API refusal of `app` by its status.
    pub fn api_status(&self, shard: ShardId, app: AppIdx, status: u16) {
        let c = match status {
            401 => AppCounter::RejectedUnauthorized,
            403 => AppCounter::RejectedDisabled,
            413 => AppCounter::RejectedTooLarge,
            400 | 405 => AppCounter::RejectedBadRequest,
            _ => return,
        };
        self.add(shard, app, c, 1);
    }

    /// Count a websocket of `app` refused at open with this close code.
    pub fn refused_socket(&self, shard: ShardId, app: AppIdx, code: u16) {
        let c = match code {
            super::apps::CODE_APP_DISABLED => AppCounter::RejectedDisabled,
            super::apps::CODE_OVER_QUOTA => AppCounter::RejectedOverQuota,
            super::protocol::CODE_BAD_VERSION_FORMAT
            | super::protocol::CODE_BAD_PROTOCOL
            | super::protocol::CODE_NO_PROTOCOL => AppCounter::RejectedBadRequest,
            _ => return,
        };
        self.add(shard, app, c, 1);
    }
}

impl MetricsSource for AppMetrics {
    fn render(&self, out: &mut String) {
        let families = [
            (
                AppCounter::Connections,
                "herald_pusher_app_connections",
                "gauge",
                "Open Pusher websockets per app",
            ),
            (
                AppCounter::MessagesIn,
                "herald_pusher_app_messages_in_total",
                "counter",
                "Frames received from Pusher websockets per app",
            ),
            (
                AppCounter::MessagesOut,
                "herald_pusher_app_messages_out_total",
                "counter",
                "Channel event frames sent to Pusher subscribers per app",
            ),
        ];
        for (c, name, kind, help) in families {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            for (i, id) in self.ids.iter().enumerate() {
                let Ok(app) = AppIdx::try_from(i) else { break };
                let _ = writeln!(out, "{name}{{app=\"{}\"}} {}", escape(id), self.get(app, c));
            }
        }
        let name = "herald_pusher_app_rejections_total";
        let _ = write!(
            out,
            "# HELP {name} Pusher sockets and HTTP API requests refused per app, by reason\n# TYPE {name} counter\n"
        );
        for (i, id) in self.ids.iter().enumerate() {
            let Ok(app) = AppIdx::try_from(i) else { break };
            for (c, reason) in REASONS {
                let _ = writeln!(
                    out,
                    "{name}{{app=\"{}\",reason=\"{reason}\"}} {}",
                    escape(id),
                    self.get(app, c)
                );
            }
        }
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PusherApp};

    #[test]
    fn rows_sum_over_shards_and_render_per_app() {
        let cfg = Config {
            pusher_apps: vec![
                PusherApp::new("1", "a", "s"),
                PusherApp::new("x\"y", "b", "s"),
            ],
            ..Config::default()
        };
        let m = AppMetrics::new(&Apps::from_config(&cfg), 3);
        m.add(ShardId(0), 0, AppCounter::MessagesOut, 2);
        m.add(ShardId(2), 0, AppCounter::MessagesOut, 3);
        m.add(ShardId(1), 1, AppCounter::Connections, 1);
        m.dec(ShardId(1), 1, AppCounter::Connections);
        m.dec(ShardId(1), 1, AppCounter::Connections);
        m.add(ShardId(9), 0, AppCounter::MessagesIn, 1);
        m.add(ShardId(0), 7, AppCounter::MessagesIn, 1);
        m.api_status(ShardId(1), 1, 401);
        m.refused_socket(ShardId(0), 1, 4004);
        assert_eq!(m.get(0, AppCounter::MessagesOut), 5);
        assert_eq!(m.get(1, AppCounter::Connections), 0);
        let mut text = String::new();
        m.render(&mut text);
        assert!(
            text.contains("herald_pusher_app_messages_out_total{app=\"1\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("{app=\"x\\\"y\",reason=\"unauthorized\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("{app=\"x\\\"y\",reason=\"over_quota\"} 1\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE herald_pusher_app_rejections_total")
                .count(),
            1
        );
    }
}
