//! Per-shard counters, readable from any thread, and their Prometheus text rendering.
//!
//! Each shard bumps its own `ShardStats` with relaxed atomics (no shared cache line between
//! shards on the hot path); `/metrics` sums them. A dialect declares its own counters
//! (`Dialect::counters`) and sets this shard's values through the `Outbox`; the core renders
//! them without knowing what they count.

use crate::dialect::CounterDef;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Accepted connections.
    pub accepted: AtomicU64,
    /// Connections refused over `--max-connections` or `--max-connections-total`.
    pub refused_over_limit: AtomicU64,
    /// Connections refused over `--max-pending-handshakes`.
    pub refused_pending_handshakes: AtomicU64,
    /// Websockets closed 1008 past `--max-queued-bytes`.
    pub closed_slow_consumer: AtomicU64,
    /// HTTP responses with status >= 400.
    pub http_errors: AtomicU64,
    /// Websockets closed for protocol errors.
    pub ws_protocol_errors: AtomicU64,
    /// Compressed websocket messages that inflated past `--max-ws-message-bytes` (closed 1009).
    pub ws_inflate_too_big: AtomicU64,
    /// Messages this shard compressed (permessage-deflate), each once per window size.
    pub ws_deflated: AtomicU64,
    /// Deliveries that went out compressed (a shared frame each).
    pub ws_deflated_deliveries: AtomicU64,
    /// Requests answered 408.
    pub timeouts: AtomicU64,
    /// Cross-shard sends that found an inbox full.
    pub inbox_full: AtomicU64,
    /// Open connections (a gauge).
    pub open: AtomicU64,
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// TLS connections closed before their handshake completed: garbage or plain HTTP instead
    /// of a ClientHello, a refused or malformed handshake, a peer that left or stalled past
    /// the header timeout.
    pub tls_handshake_failures: AtomicU64,
    /// The dialect's counters, in `Dialect::counters` order.
    pub dialect: Box<[AtomicU64]>,
}

impl ShardStats {
    /// Counters for a shard whose dialect declares `n` counters of its own.
    pub fn new(n: usize) -> Self {
        ShardStats {
            dialect: (0..n).map(|_| AtomicU64::new(0)).collect(),
            ..ShardStats::default()
        }
    }
}

/// Every shard's counters, summed, in Prometheus text exposition format. `inbox_full` is
/// the inboxes' own count of refused sends (the larger of it and the shards' is reported).
pub fn render(
    stats: &[std::sync::Arc<ShardStats>],
    inbox_full: u64,
    dialect: &[CounterDef],
) -> String {
    let sum = |f: &dyn Fn(&ShardStats) -> &AtomicU64| -> u64 {
        stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    };
    let core: [(&str, &str, &str, u64); 15] = [
        (
            "herald_connections_open",
            "gauge",
            "Open client connections",
            sum(&|s| &s.open),
        ),
        (
            "herald_connections_accepted_total",
            "counter",
            "Accepted connections",
            sum(&|s| &s.accepted),
        ),
        (
            "herald_connections_refused_total",
            "counter",
            "Connections refused over --max-connections or --max-connections-total",
            sum(&|s| &s.refused_over_limit),
        ),
        (
            "herald_handshakes_refused_total",
            "counter",
            "Connections refused over --max-pending-handshakes",
            sum(&|s| &s.refused_pending_handshakes),
        ),
        (
            "herald_slow_consumers_closed_total",
            "counter",
            "Websockets closed 1008 past --max-queued-bytes",
            sum(&|s| &s.closed_slow_consumer),
        ),
        (
            "herald_http_errors_total",
            "counter",
            "HTTP responses with status >= 400",
            sum(&|s| &s.http_errors),
        ),
        (
            "herald_ws_protocol_errors_total",
            "counter",
            "Websockets closed for protocol errors (1002/1007/1009)",
            sum(&|s| &s.ws_protocol_errors),
        ),
        (
            "herald_ws_inflate_too_big_total",
            "counter",
            "Compressed websocket messages that inflated past --max-ws-message-bytes (1009)",
            sum(&|s| &s.ws_inflate_too_big),
        ),
        (
            "herald_ws_deflated_messages_total",
            "counter",
            "Server messages compressed (permessage-deflate; once per message and window size)",
            sum(&|s| &s.ws_deflated),
        ),
        (
            "herald_ws_deflated_deliveries_total",
            "counter",
            "Websocket deliveries sent compressed (sharing one frame per message and window)",
            sum(&|s| &s.ws_deflated_deliveries),
        ),
        (
            "herald_timeouts_total",
            "counter",
            "Requests answered 408 (header timeout)",
            sum(&|s| &s.timeouts),
        ),
        (
            "herald_inbox_full_total",
            "counter",
            "Cross-shard sends that found an inbox full (503 or spill)",
            inbox_full.max(sum(&|s| &s.inbox_full)),
        ),
        (
            "herald_tls_handshakes_total",
            "counter",
            "TLS handshakes completed",
            sum(&|s| &s.tls_handshakes),
        ),
        (
            "herald_tls_handshake_failures_total",
            "counter",
            "TLS connections closed before their handshake completed (bad ClientHello, plain HTTP, alert, EOF, header timeout)",
            sum(&|s| &s.tls_handshake_failures),
        ),
        (
            "herald_shards",
            "gauge",
            "Reactor threads",
            stats.len() as u64,
        ),
    ];
    let mut out = String::with_capacity(1024);
    let mut row = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    };
    for (name, kind, help, v) in core {
        row(name, kind, help, v);
    }
    for (i, def) in dialect.iter().enumerate() {
        let v = stats
            .iter()
            .filter_map(|s| s.dialect.get(i))
            .map(|a| a.load(Ordering::Relaxed))
            .sum();
        row(def.name, def.kind, def.help, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_over_shards_and_renders_dialect_counters() {
        let a = Arc::new(ShardStats::new(1));
        let b = Arc::new(ShardStats::new(1));
        a.open.store(2, Ordering::Relaxed);
        b.open.store(3, Ordering::Relaxed);
        b.dialect[0].store(7, Ordering::Relaxed);
        let defs = [CounterDef {
            name: "x_total",
            kind: "counter",
            help: "X",
        }];
        let text = render(&[a, b], 4, &defs);
        assert!(text.contains("\nherald_connections_open 5\n"), "{text}");
        assert!(text.contains("\nherald_inbox_full_total 4\n"), "{text}");
        assert!(text.contains("\nherald_shards 2\n"), "{text}");
        assert!(
            text.contains("# TYPE x_total counter\nx_total 7\n"),
            "{text}"
        );
    }
}
