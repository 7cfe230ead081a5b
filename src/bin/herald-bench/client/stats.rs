//! What a run counts and reports: the per-message records and counters the event handlers
//! update, the progress line, and turning them into a `RunResult` (latency percentiles,
//! delivery ratios, throughput, server and client CPU).

use super::*;

/// Per-message bookkeeping: deliveries seen, and whether the server accepted the POST.
#[derive(Clone, Copy, Default)]
pub(super) struct MsgRec {
    pub(super) count: u32,
    pub(super) accepted: bool,
}

/// Counters that the event handlers update.
pub(super) struct Stats {
    pub(super) latency: Histogram<u64>,
    pub(super) post_latency: Histogram<u64>,
    pub(super) msgs: Vec<MsgRec>,
    pub(super) deliveries: u64,
    pub(super) deliveries_in_window: u64,
    pub(super) unexpected: u64,
    pub(super) heartbeats: u64,
    pub(super) other_frames: u64,
    pub(super) server_closes: u64,
    pub(super) protocol_errors: u64,
    pub(super) subs_open: u32,
    pub(super) subs_failed: u32,
    pub(super) subs_closed_early: u32,
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) publish_errors: u64,
    pub(super) expected: u64,
    pub(super) max_send_lag_ns: u64,
    pub(super) reconnects: u32,
    /// Control or publisher connections replaced after a `Connection: close` answer.
    pub(super) keepalive_closes: u64,
    pub(super) errors: Vec<String>,
    /// Presence: churners subscribed once, churn operations sent, member events the counted
    /// subscribers got (all, and in the window), what they should get, and those of churners.
    pub(super) churners_open: u32,
    pub(super) churners_failed: u32,
    pub(super) churn_ops: u64,
    pub(super) member_events: u64,
    pub(super) member_events_in_window: u64,
    pub(super) member_expected: u64,
    pub(super) churner_member_events: u64,
    /// Churn join (intended time) to `member_added` at a counted subscriber.
    pub(super) member_latency: Histogram<u64>,
}

impl Stats {
    pub(super) fn new(capacity: usize) -> Stats {
        // 1 ns .. 10 min at 3 significant digits (~0.1 % resolution).
        let h = || {
            Histogram::new_with_bounds(1, 600_000_000_000, 3)
                .expect("Bug: constant histogram bounds are valid")
        };
        Stats {
            latency: h(),
            post_latency: h(),
            msgs: Vec::with_capacity(capacity),
            deliveries: 0,
            deliveries_in_window: 0,
            unexpected: 0,
            heartbeats: 0,
            other_frames: 0,
            server_closes: 0,
            protocol_errors: 0,
            subs_open: 0,
            subs_failed: 0,
            subs_closed_early: 0,
            sent: 0,
            accepted: 0,
            publish_errors: 0,
            expected: 0,
            max_send_lag_ns: 0,
            reconnects: 0,
            keepalive_closes: 0,
            errors: Vec::new(),
            churners_open: 0,
            churners_failed: 0,
            churn_ops: 0,
            member_events: 0,
            member_events_in_window: 0,
            member_expected: 0,
            churner_member_events: 0,
            member_latency: h(),
        }
    }

    pub(super) fn error(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

impl Engine<'_> {
    pub(super) fn progress(&mut self, now: u64, last: bool) {
        if !self.cfg.progress || (!last && now.saturating_sub(self.last_progress) < 1_000_000_000) {
            return;
        }
        self.last_progress = now;
        let st = &self.stats;
        let sc = self.cfg.scenario;
        let head = format!("[{} {}#{}]", sc.name, self.cfg.target.label, self.cfg.round);
        let line = match self.phase {
            Phase::Connecting | Phase::Settling { .. } => {
                let secs = (now.saturating_sub(self.connect_start)) as f64 / 1e9;
                format!(
                    "{head} connecting {}/{} subs ({:.0}/s), {} failed",
                    st.subs_open,
                    sc.subs,
                    f64::from(st.subs_open) / secs.max(1e-9),
                    st.subs_failed
                )
            }
            _ => {
                let secs = (now.saturating_sub(self.window_start)) as f64 / 1e9;
                let p99 = st.latency.value_at_quantile(0.99) as f64 / 1e6;
                format!(
                    "{head} t={secs:.0}s pub {}/{} ok, backlog {} | deliv {} ({:.0}/s) of {} expected | p99 {p99:.2} ms | hb {} | closed {}",
                    st.accepted,
                    st.sent,
                    self.due(now).saturating_sub(self.next_seq),
                    st.deliveries,
                    st.deliveries_in_window as f64 / secs.max(1e-9),
                    st.expected,
                    st.heartbeats,
                    st.subs_closed_early
                )
            }
        };
        let mut err = io::stderr().lock();
        if self.progress_tty && !last {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else if self.progress_tty {
            let _ = writeln!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    pub(super) fn finish(mut self) -> RunResult {
        let sc = self.cfg.scenario;
        let now = self.rel_now();
        self.close_window(now);
        let st = &self.stats;
        let window_s = (self.window_end.saturating_sub(self.window_start)) as f64 / 1e9;
        // Loss and duplicates per accepted message against its channel's fan-out.
        let (mut lost, mut dups, mut delivered_unique) = (0u64, 0u64, 0u64);
        for (seq, rec) in st.msgs.iter().enumerate() {
            if !rec.accepted {
                continue;
            }
            let fan = u64::from(
                self.chan_subs
                    .get(seq % sc.channels as usize)
                    .copied()
                    .unwrap_or(0),
            );
            let got = u64::from(rec.count);
            lost += fan.saturating_sub(got);
            dups += got.saturating_sub(fan);
            delivered_unique += got.min(fan);
        }
        let connect_s = (self.connect_end.saturating_sub(self.connect_start)) as f64 / 1e9;
        let cpu = self.cpu_report(window_s);
        let deliveries_per_s = st.deliveries_in_window as f64 / window_s.max(1e-9);
        let offered_deliveries_per_s =
            sc.rate * f64::from(st.subs_open) / f64::from(sc.channels.max(1));
        let publish_saturated =
            sc.mode == Mode::OpenLoop && (st.sent as f64) < 0.95 * self.total_msgs as f64;
        let delivery_saturated = sc.mode == Mode::OpenLoop
            && st.expected > 0
            && (st.deliveries_in_window as f64) < 0.9 * st.expected as f64;
        let conns = st.subs_open + st.churners_open;
        let rss_per_conn = match (self.rss_before, self.rss_after) {
            (Some(b), Some(a)) if conns > 0 => {
                Some((a as f64 - b as f64) * 1024.0 / f64::from(conns))
            }
            _ => None,
        };
        let presence = sc.presence.then(|| crate::report::PresenceReport {
            churners: st.churners_open,
            churn_ops: st.churn_ops,
            member_events: st.member_events,
            member_expected: st.member_expected,
            member_events_per_s: st.member_events_in_window as f64 / window_s.max(1e-9),
            churner_member_events: st.churner_member_events,
            member_latency_ms: Percentiles::from_hist(&st.member_latency),
        });
        let cpu_us_per_delivery = cpu
            .server_cpu_us
            .filter(|_| st.deliveries_in_window > 0)
            .map(|us| us / st.deliveries_in_window as f64);
        let cpu_us_per_publish = cpu
            .server_cpu_us
            .filter(|_| st.accepted > 0)
            .map(|us| us / st.accepted as f64);
        RunResult {
            scenario: sc.clone(),
            target: self.cfg.target.label.clone(),
            url: self.cfg.target.url.clone(),
            round: self.cfg.round,
            subs_connected: st.subs_open,
            subs_failed: st.subs_failed,
            subs_closed_early: st.subs_closed_early,
            connect_s,
            connect_rate_per_s: (st.subs_open > 0)
                .then(|| f64::from(st.subs_open) / connect_s.max(1e-9)),
            window_s,
            offered_rate: sc.rate,
            messages_intended: self.total_msgs,
            messages_sent: st.sent,
            messages_accepted: st.accepted,
            publish_errors: st.publish_errors,
            achieved_publish_rate: st.accepted as f64 / window_s.max(1e-9),
            max_send_lag_ms: st.max_send_lag_ns as f64 / 1e6,
            publish_saturated,
            delivery_saturated,
            saturated: publish_saturated || delivery_saturated,
            expected_deliveries: st.expected,
            delivered: delivered_unique,
            deliveries_total: st.deliveries,
            duplicates: dups,
            lost,
            loss_pct: if st.expected > 0 {
                lost as f64 * 100.0 / st.expected as f64
            } else {
                0.0
            },
            unexpected_deliveries: st.unexpected,
            deliveries_in_window: st.deliveries_in_window,
            deliveries_per_s,
            offered_deliveries_per_s,
            heartbeats: st.heartbeats,
            other_frames: st.other_frames,
            server_closes: st.server_closes,
            protocol_errors: st.protocol_errors,
            reconnects: st.reconnects,
            keepalive_closes: st.keepalive_closes,
            latency_ms: Percentiles::from_hist(&st.latency),
            post_latency_ms: Percentiles::from_hist(&st.post_latency),
            cpu,
            cpu_us_per_delivery,
            cpu_us_per_publish,
            rss_before_kib: self.rss_before,
            rss_after_kib: self.rss_after,
            rss_per_conn_bytes: rss_per_conn,
            presence,
            errors: st.errors.clone(),
        }
    }

    pub(super) fn cpu_report(&self, window_s: f64) -> CpuReport {
        let tick_us = 1e6 / sys::clock_ticks_per_sec() as f64;
        let deltas: Vec<(u64, u64)> = self
            .cores_start
            .iter()
            .zip(&self.cores_end)
            .map(|(a, b)| {
                (
                    b.busy.saturating_sub(a.busy),
                    b.total.saturating_sub(a.total),
                )
            })
            .collect();
        let per_core_busy_pct: Vec<f64> = deltas
            .iter()
            .map(|(b, t)| {
                if *t > 0 {
                    *b as f64 * 100.0 / *t as f64
                } else {
                    0.0
                }
            })
            .collect();
        let client_cpu_us = self.self_cpu_end.saturating_sub(self.self_cpu_start) as f64;
        let (server_cpu_us, method) = match &self.cfg.server_cores {
            Some(cores) => {
                let busy: u64 = cores
                    .iter()
                    .filter_map(|&c| deltas.get(c))
                    .map(|(b, _)| b)
                    .sum();
                (
                    Some(busy as f64 * tick_us),
                    format!("busy time of cores {cores:?} from /proc/stat"),
                )
            }
            None if !deltas.is_empty() => {
                let busy: u64 = deltas.iter().map(|(b, _)| b).sum();
                let est = (busy as f64 * tick_us - client_cpu_us).max(0.0);
                (Some(est), "busy time of all cores minus this client's CPU time (pin for a cleaner figure)".to_string())
            }
            None => (None, "unavailable".to_string()),
        };
        let server_proc_cpu_us = match (self.proc_ticks_start, self.proc_ticks_end) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * tick_us),
            _ => None,
        };
        CpuReport {
            per_core_busy_pct,
            server_cpu_us,
            server_cpu_method: method,
            server_proc_cpu_us,
            client_cpu_pct: client_cpu_us / 1e4 / window_s.max(1e-9),
        }
    }
}
