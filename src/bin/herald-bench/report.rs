//! Results of runs and their three renderings: JSON (machine-readable, one object per run plus
//! ratios), a Markdown table (for BENCHMARKS.md), and an SVG plot written by hand (latency
//! percentiles on a log axis and deliveries/s, per scenario and target).
//!
//! Ratios compare each target with the first one, per scenario, using the median over rounds:
//! on a shared, noisy machine only ratios taken in one interleaved run mean anything.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::scenario::{Mode, Scenario};

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn from_hist(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Percentiles {
            count: h.len(),
            mean: h.mean() / 1e6,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuReport {
    /// Busy % of every core over the measurement window (`/proc/stat`).
    pub per_core_busy_pct: Vec<f64>,
    /// Server CPU time over the window in µs, by `server_cpu_method`.
    pub server_cpu_us: Option<f64>,
    pub server_cpu_method: String,
    /// utime+stime of `--server-pid` (undercounts loopback softirq work; a cross-check only).
    pub server_proc_cpu_us: Option<f64>,
    /// This client's own CPU use in % of one core: near 100 means the client is the bottleneck.
    pub client_cpu_pct: f64,
}

/// Everything measured in one run of one scenario against one target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub scenario: Scenario,
    pub target: String,
    pub url: String,
    pub round: u32,
    pub subs_connected: u32,
    pub subs_failed: u32,
    pub subs_closed_early: u32,
    pub connect_s: f64,
    pub connect_rate_per_s: Option<f64>,
    pub window_s: f64,
    pub offered_rate: f64,
    pub messages_intended: u64,
    pub messages_sent: u64,
    pub messages_accepted: u64,
    pub publish_errors: u64,
    pub achieved_publish_rate: f64,
    pub max_send_lag_ms: f64,
    pub publish_saturated: bool,
    pub delivery_saturated: bool,
    pub saturated: bool,
    pub expected_deliveries: u64,
    /// Deliveries of accepted messages, at most one per subscriber of the channel.
    pub delivered: u64,
    /// Every frame that carried our `t`/`s`, duplicates included.
    pub deliveries_total: u64,
    pub duplicates: u64,
    /// expected − delivered after the drain (includes deliveries still queued at the cut-off
    /// when saturated).
    pub lost: u64,
    pub loss_pct: f64,
    pub unexpected_deliveries: u64,
    pub deliveries_in_window: u64,
    pub deliveries_per_s: f64,
    pub offered_deliveries_per_s: f64,
    pub heartbeats: u64,
    pub other_frames: u64,
    pub server_closes: u64,
    pub protocol_errors: u64,
    pub reconnects: u32,
    /// HTTP connections the server ended with `Connection: close` (replaced, not errors).
    #[serde(default)]
    pub keepalive_closes: u64,
    /// Publish (intended send time) to delivery.
    pub latency_ms: Option<Percentiles>,
    /// POST /message round trip.
    pub post_latency_ms: Option<Percentiles>,
    pub cpu: CpuReport,
    pub cpu_us_per_delivery: Option<f64>,
    pub cpu_us_per_publish: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_per_conn_bytes: Option<f64>,
    /// Presence scenarios only.
    #[serde(default)]
    pub presence: Option<PresenceReport>,
    pub errors: Vec<String>,
}

/// What a presence run adds: churn and member events.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PresenceReport {
    /// Churners that joined once (they are not in `subs_connected`).
    pub churners: u32,
    /// Leaves and joins sent in the window.
    pub churn_ops: u64,
    /// `member_added` / `member_removed` the counted subscribers got after the window opened.
    pub member_events: u64,
    /// What they should have got: one per churn operation per counted member of its channel.
    pub member_expected: u64,
    pub member_events_per_s: f64,
    /// Member events the churners themselves got (not checked).
    pub churner_member_events: u64,
    /// Churn join (intended time) to `member_added` at a counted subscriber.
    pub member_latency_ms: Option<Percentiles>,
}

/// One metric of one target relative to the baseline target, per scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ratio {
    pub scenario: String,
    pub target: String,
    pub baseline: String,
    pub metric: &'static str,
    pub value: f64,
    pub baseline_value: f64,
    pub ratio: f64,
}

/// The runs of a saved report (`--from-json`); ratios are recomputed.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SavedReport {
    pub runs: Vec<RunResult>,
}

/// The whole report written as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub started_unix: u64,
    pub runs: Vec<RunResult>,
    pub ratios: Vec<Ratio>,
}

type Metric = (&'static str, fn(&RunResult) -> Option<f64>);

/// Metrics compared between targets (higher is better for rates, lower for the rest).
const METRICS: &[Metric] = &[
    ("deliveries_per_s", |r| {
        (r.deliveries_in_window > 0).then_some(r.deliveries_per_s)
    }),
    ("latency_p50_ms", |r| r.latency_ms.map(|p| p.p50)),
    ("latency_p99_ms", |r| r.latency_ms.map(|p| p.p99)),
    ("latency_p999_ms", |r| r.latency_ms.map(|p| p.p999)),
    ("publish_per_s", |r| {
        (r.messages_accepted > 0).then_some(r.achieved_publish_rate)
    }),
    ("post_p99_ms", |r| r.post_latency_ms.map(|p| p.p99)),
    ("cpu_us_per_delivery", |r| r.cpu_us_per_delivery),
    ("cpu_us_per_publish", |r| r.cpu_us_per_publish),
    ("rss_per_conn_bytes", |r| r.rss_per_conn_bytes),
    ("connect_per_s", |r| r.connect_rate_per_s),
    ("member_events_per_s", |r| {
        r.presence.as_ref().map(|p| p.member_events_per_s)
    }),
    ("member_p99_ms", |r| {
        r.presence
            .as_ref()
            .and_then(|p| p.member_latency_ms.map(|l| l.p99))
    }),
];

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Targets in first-seen order.
fn target_order(runs: &[RunResult]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        if !out.contains(&r.target) {
            out.push(r.target.clone());
        }
    }
    out
}

fn scenario_order(runs: &[RunResult]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        if !out.contains(&r.scenario.name) {
            out.push(r.scenario.name.clone());
        }
    }
    out
}

/// Median of one metric for (scenario, target) over its rounds.
fn median_of(
    runs: &[RunResult],
    scenario: &str,
    target: &str,
    f: fn(&RunResult) -> Option<f64>,
) -> Option<f64> {
    median(
        runs.iter()
            .filter(|r| r.scenario.name == scenario && r.target == target)
            .filter_map(f)
            .collect(),
    )
}

pub fn ratios(runs: &[RunResult]) -> Vec<Ratio> {
    let targets = target_order(runs);
    let Some((base, others)) = targets.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sc in scenario_order(runs) {
        for t in others {
            for (metric, f) in METRICS {
                let (Some(v), Some(b)) =
                    (median_of(runs, &sc, t, *f), median_of(runs, &sc, base, *f))
                else {
                    continue;
                };
                if b == 0.0 {
                    continue;
                }
                out.push(Ratio {
                    scenario: sc.clone(),
                    target: t.clone(),
                    baseline: base.clone(),
                    metric,
                    value: v,
                    baseline_value: b,
                    ratio: v / b,
                });
            }
        }
    }
    out
}

fn opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.prec$}"),
        _ => "–".to_string(),
    }
}

/// The results table (one row per run) and, with two or more targets, the ratio table.
pub fn markdown(runs: &[RunResult], ratios: &[Ratio]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | target | round | subs | deliv/s | expected | delivered | loss % | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | pub/s (offered) | SAT | POST p99 ms | µs CPU/deliv | core busy % | RSS B/conn | conn/s |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|");
    for r in runs {
        let l = r.latency_ms;
        let offered = match r.scenario.mode {
            Mode::OpenLoop => format!("{:.0}", r.offered_rate),
            Mode::ClosedLoop => "closed".into(),
            Mode::Idle => "idle".into(),
        };
        let busy: Vec<String> = r
            .cpu
            .per_core_busy_pct
            .iter()
            .map(|b| format!("{b:.0}"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {:.0} ({}) | {} | {} | {} | {} | {} | {} |",
            r.scenario.name,
            r.target,
            r.round,
            r.subs_connected,
            r.deliveries_per_s,
            r.expected_deliveries,
            r.delivered,
            r.loss_pct,
            opt(l.map(|p| p.p50), 2),
            opt(l.map(|p| p.p90), 2),
            opt(l.map(|p| p.p99), 2),
            opt(l.map(|p| p.p999), 2),
            opt(l.map(|p| p.max), 2),
            r.achieved_publish_rate,
            offered,
            if r.saturated { "**SAT**" } else { "" },
            opt(r.post_latency_ms.map(|p| p.p99), 2),
            opt(r.cpu_us_per_delivery, 2),
            busy.join("/"),
            opt(r.rss_per_conn_bytes, 0),
            opt(r.connect_rate_per_s, 0),
        );
    }
    presence_table(&mut s, runs);
    if !ratios.is_empty() {
        let _ = writeln!(s, "\nRatios (median over rounds; target ÷ baseline):\n");
        let _ = writeln!(
            s,
            "| scenario | metric | target | value | baseline | value | ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---|---:|---:|");
        for q in ratios {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {} | {:.3} | **{:.2}x** |",
                q.scenario, q.metric, q.target, q.value, q.baseline, q.baseline_value, q.ratio
            );
        }
    }
    s
}

/// Presence runs: churn and member events (join → `member_added` latency).
fn presence_table(s: &mut String, runs: &[RunResult]) {
    let rows: Vec<(&RunResult, &PresenceReport)> = runs
        .iter()
        .filter_map(|r| r.presence.as_ref().map(|p| (r, p)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nPresence (member events at the counted subscribers):\n"
    );
    let _ = writeln!(s, "| scenario | target | round | churners | churn ops | member events / expected | events/s | join→member_added p50 ms | p99 ms | max ms |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, p) in rows {
        let l = p.member_latency_ms;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} | {:.0} | {} | {} | {} |",
            r.scenario.name,
            r.target,
            r.round,
            p.churners,
            p.churn_ops,
            p.member_events,
            p.member_expected,
            p.member_events_per_s,
            opt(l.map(|x| x.p50), 2),
            opt(l.map(|x| x.p99), 2),
            opt(l.map(|x| x.max), 2),
        );
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Two panels, one group per scenario and one colour per target (median over rounds):
/// top, latency p50/p90/p99/p99.9 as bars of rising opacity on a log axis; bottom,
/// deliveries/s (or publishes/s for REST-only scenarios) on a linear axis.
pub fn svg(runs: &[RunResult]) -> String {
    let targets = target_order(runs);
    let scenarios = scenario_order(runs);
    let nt = targets.len().max(1);
    let (bar, gap, left, top) = (7.0f64, 28.0f64, 70.0f64, 64.0f64);
    let group_w = bar * 4.0 * nt as f64 + 6.0 * (nt as f64 - 1.0);
    let plot_w = (group_w + gap) * scenarios.len().max(1) as f64;
    // Wide enough for the title even with a single scenario.
    let width = (left + plot_w + 30.0).max(560.0);
    let (lat_h, rate_h, label_h) = (260.0f64, 200.0f64, 90.0f64);
    let rate_top = top + lat_h + label_h;
    let height = rate_top + rate_h + label_h + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">herald-bench: latency percentiles (ms, log) and deliveries/s</text>"#
    );
    // Legend: one row under the title.
    let mut x = left;
    for (i, t) in targets.iter().enumerate() {
        let y = 30.0;
        let c = COLORS[i % COLORS.len()];
        let label_w = 24.0 + 7.0 * t.chars().count() as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            x + 14.0,
            y + 9.0,
            xml_escape(t)
        );
        x += label_w;
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{}" fill="#555">bars per target: p50, p90, p99, p99.9 (darker = higher)</text>"##,
        top - 4.0
    );

    // Latency panel, log10 axis from the smallest to the largest value.
    let lat: Vec<(usize, usize, [f64; 4])> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(si, sc)| {
            let targets = &targets;
            targets.iter().enumerate().filter_map(move |(ti, t)| {
                let q = |k: usize| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter(|r| &r.scenario.name == sc && &r.target == t)
                        .filter_map(|r| r.latency_ms.map(|p| [p.p50, p.p90, p.p99, p.p999][k]))
                        .collect();
                    median(v)
                };
                Some((si, ti, [q(0)?, q(1)?, q(2)?, q(3)?]))
            })
        })
        .collect();
    let vals = lat
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .filter(|v| *v > 0.0);
    let lo = vals.clone().fold(f64::INFINITY, f64::min);
    let hi = vals.fold(0.0f64, f64::max);
    let (lo_d, hi_d) = if lo.is_finite() && hi > 0.0 {
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    } else {
        (-1.0, 2.0)
    };
    let y_lat =
        |v: f64| top + lat_h - (v.max(10f64.powf(lo_d)).log10() - lo_d) / (hi_d - lo_d) * lat_h;
    axis(&mut s, left, top, plot_w, lat_h);
    let mut d = lo_d;
    while d <= hi_d {
        let v = 10f64.powf(d);
        let y = y_lat(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 4.0,
            y + 4.0,
            fmt_num(v)
        );
        d += 1.0;
    }
    for (si, ti, v) in &lat {
        let gx = left + gap / 2.0 + (group_w + gap) * *si as f64 + (bar * 4.0 + 6.0) * *ti as f64;
        let c = COLORS[ti % COLORS.len()];
        for (k, val) in v.iter().enumerate() {
            let y = y_lat(*val);
            let op = [0.35, 0.55, 0.8, 1.0][k];
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{bar}" height="{:.1}" fill="{c}" fill-opacity="{op}"><title>{} {} p{}: {:.3} ms</title></rect>"#,
                gx + bar * k as f64,
                (top + lat_h - y).max(0.0),
                xml_escape(&scenarios[*si]),
                xml_escape(&targets[*ti]),
                ["50", "90", "99", "99.9"][k],
                val
            );
        }
    }
    labels(&mut s, &scenarios, left, gap, group_w, top + lat_h);

    // Rate panel: deliveries/s, or publishes/s where nothing is delivered (publish-rest).
    let rates: Vec<(usize, usize, f64, bool)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(si, sc)| {
            let targets = &targets;
            targets.iter().enumerate().filter_map(move |(ti, t)| {
                let d = median_of(runs, sc, t, |r| {
                    (r.deliveries_in_window > 0).then_some(r.deliveries_per_s)
                });
                match d {
                    Some(v) => Some((si, ti, v, false)),
                    None => median_of(runs, sc, t, |r| {
                        (r.messages_accepted > 0).then_some(r.achieved_publish_rate)
                    })
                    .map(|v| (si, ti, v, true)),
                }
            })
        })
        .collect();
    let (step, ticks) = nice_step(rates.iter().map(|r| r.2).fold(0.0, f64::max));
    let rmax = step * f64::from(ticks);
    axis(&mut s, left, rate_top, plot_w, rate_h);
    for k in 0..=ticks {
        let v = step * f64::from(k);
        let y = rate_top + rate_h - rate_h * f64::from(k) / f64::from(ticks);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 4.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{}" fill="#555">deliveries/s (outlined = REST publishes/s where nothing is delivered)</text>"##,
        rate_top - 4.0
    );
    for (si, ti, v, is_pub) in &rates {
        let w = bar * 4.0;
        let gx = left + gap / 2.0 + (group_w + gap) * *si as f64 + (w + 6.0) * *ti as f64;
        let h = if rmax > 0.0 { v / rmax * rate_h } else { 0.0 };
        let c = COLORS[ti % COLORS.len()];
        let style = if *is_pub {
            format!(r#"fill="white" stroke="{c}" stroke-width="2""#)
        } else {
            format!(r#"fill="{c}""#)
        };
        let _ = writeln!(
            s,
            r#"<rect x="{gx:.1}" y="{:.1}" width="{w}" height="{h:.1}" {style}><title>{} {}: {:.0}/s</title></rect>"#,
            rate_top + rate_h - h,
            xml_escape(&scenarios[*si]),
            xml_escape(&targets[*ti]),
            v
        );
    }
    labels(&mut s, &scenarios, left, gap, group_w, rate_top + rate_h);
    s.push_str("</svg>\n");
    s
}

fn axis(s: &mut String, x: f64, y: f64, w: f64, h: f64) {
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="{y}" x2="{x}" y2="{}" stroke="#333"/><line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##,
        y + h,
        y + h,
        x + w,
        y + h
    );
}

fn labels(s: &mut String, scenarios: &[String], left: f64, gap: f64, group_w: f64, y: f64) {
    for (i, name) in scenarios.iter().enumerate() {
        let x = left + gap / 2.0 + (group_w + gap) * i as f64 + group_w / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" transform="rotate(30 {x:.1} {:.1})">{}</text>"#,
            y + 14.0,
            y + 14.0,
            xml_escape(name)
        );
    }
}

/// A round tick step (1, 2 or 5 × 10^k) and a tick count (≤ 6) whose product covers `v`.
fn nice_step(v: f64) -> (f64, u32) {
    if v <= 0.0 || !v.is_finite() {
        return (1.0, 1);
    }
    let p = 10f64.powf((v / 6.0).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|st| v / st <= 6.0)
        .unwrap_or(10.0 * p);
    (step, ((v / step).ceil() as u32).max(1))
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::preset;

    fn run(sc: &str, target: &str, dps: f64, p50: f64) -> RunResult {
        RunResult {
            scenario: preset(sc).unwrap(),
            target: target.into(),
            url: "http://127.0.0.1:1".into(),
            round: 1,
            subs_connected: 10,
            subs_failed: 0,
            subs_closed_early: 0,
            connect_s: 1.0,
            connect_rate_per_s: Some(10.0),
            window_s: 1.0,
            offered_rate: 5.0,
            messages_intended: 5,
            messages_sent: 5,
            messages_accepted: 5,
            publish_errors: 0,
            achieved_publish_rate: 5.0,
            max_send_lag_ms: 0.0,
            publish_saturated: false,
            delivery_saturated: false,
            saturated: false,
            expected_deliveries: 50,
            delivered: 50,
            deliveries_total: 50,
            duplicates: 0,
            lost: 0,
            loss_pct: 0.0,
            unexpected_deliveries: 0,
            deliveries_in_window: 50,
            deliveries_per_s: dps,
            offered_deliveries_per_s: 50.0,
            heartbeats: 0,
            other_frames: 0,
            server_closes: 0,
            protocol_errors: 0,
            reconnects: 0,
            latency_ms: Some(Percentiles {
                count: 50,
                mean: p50,
                p50,
                p90: p50 * 2.0,
                p99: p50 * 3.0,
                p999: p50 * 4.0,
                max: p50 * 5.0,
            }),
            post_latency_ms: None,
            cpu: CpuReport {
                per_core_busy_pct: vec![10.0, 20.0],
                server_cpu_us: Some(100.0),
                server_cpu_method: "x".into(),
                server_proc_cpu_us: None,
                client_cpu_pct: 1.0,
            },
            cpu_us_per_delivery: Some(2.0),
            cpu_us_per_publish: None,
            rss_before_kib: None,
            rss_after_kib: None,
            rss_per_conn_bytes: None,
            presence: None,
            keepalive_closes: 0,
            errors: vec![],
        }
    }

    #[test]
    fn ratios_use_medians_per_target() {
        let runs = vec![
            run("fanout-1k-r5", "A", 100.0, 1.0),
            run("fanout-1k-r5", "B", 150.0, 2.0),
            run("fanout-1k-r5", "A", 120.0, 1.0),
            run("fanout-1k-r5", "B", 170.0, 2.0),
        ];
        let q = ratios(&runs);
        let d = q.iter().find(|r| r.metric == "deliveries_per_s").unwrap();
        assert_eq!((d.target.as_str(), d.baseline.as_str()), ("B", "A"));
        assert!((d.ratio - 160.0 / 110.0).abs() < 1e-9);
        let p = q.iter().find(|r| r.metric == "latency_p50_ms").unwrap();
        assert!((p.ratio - 2.0).abs() < 1e-9);
        assert!(
            ratios(&runs[..1]).is_empty(),
            "one target: nothing to compare"
        );
    }

    #[test]
    fn markdown_and_svg_render() {
        let runs = vec![
            run("fanout-1k-r5", "A", 100.0, 1.0),
            run("fanout-1k-r5", "B<&>", 150.0, 2.0),
        ];
        let md = markdown(&runs, &ratios(&runs));
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| fanout-1k-r5 | "))
                .count(),
            2 + 7
        );
        assert!(md.contains("**1.50x**"));
        let svg = svg(&runs);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("B&lt;&amp;&gt;") && !svg.contains("B<&>"));
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 2 + 8 + 2,
            "background, legend, 8 latency bars, 2 rate bars"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![]), None);
        assert_eq!(nice_step(130_000.0), (50_000.0, 3));
        assert_eq!(nice_step(20_833.0), (5_000.0, 5));
        assert_eq!(nice_step(999.0), (200.0, 5));
        assert_eq!(nice_step(0.0), (1.0, 1));
        assert_eq!(fmt_num(2500.0), "2.5k");
        assert_eq!(fmt_num(0.1), "0.1");
    }
}
