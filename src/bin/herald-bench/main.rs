//! `herald-bench`: a Channelstream-protocol load client for Herald (and any server that speaks
//! Channelstream 0.7.1's API), built to produce the figures of `shared/perf/targets.md`.
//!
//! Why its own client instead of `wrk` + a websocket tool: a delivery is only meaningful end to
//! end (signed `/connect`, `GET /ws?conn_id=`, signed `POST /message`, the frame on every
//! subscriber), and latency must be counted from the *intended* send time of an open-loop
//! schedule, which off-the-shelf tools do not do. One thread and one `mio::Poll` keep the
//! client's own CPU small and predictable, so on a 2-core machine the other core is the
//! server's.
//!
//! Scenarios named `pusher-…` speak Pusher protocol 7 instead (see `pusher.rs`): subscribers
//! open `GET /app/<key>?protocol=7` and send `pusher:subscribe` (presence scenarios: signed,
//! with churners leaving and joining), publishers send signed `POST /apps/<id>/events`. The app
//! is Herald's default (`app-id` / `app-key` / `app-secret`) unless `--pusher-app-id`,
//! `--pusher-key`, `--pusher-secret` name another server's.
//!
//! Side-by-side mode runs the same scenarios against several targets interleaved
//! (A B A B …) and prints ratios, the only comparison that survives a noisy shared machine.

mod client;
mod http;
mod pusher;
mod report;
mod scenario;
mod sys;
mod tls;
mod wsframe;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use scenario::{Overrides, Target};

#[derive(Parser, Debug)]
#[command(
    name = "herald-bench",
    about = "Channelstream-protocol load client: fan-out latency, deliveries/s, loss, CPU and RSS per connection",
    after_help = "Scenarios: idle-10k, fanout-1k-r5, fanout-1k-r25, fanout-10k-r2, fanout-1k-4KiB-r10, \
channels-1000x10-r2000, fanout-1k-r200-sat, publish-rest, pusher-fanout-1k-r25, \
pusher-fanout-10k-r5, pusher-fanout-1k-r200-sat, pusher-presence-churn, pusher-publish-rest, custom, all.\n\
Scenarios named pusher-* speak the Pusher dialect (default app app-id / app-key / app-secret; \
see --pusher-app-id, --pusher-key, --pusher-secret).\n\
Only 127.0.0.0/8 targets are accepted. Example (A/B, server pinned to cpu0, client to cpu1):\n  \
herald-bench --target A=http://127.0.0.1:8000 --target B=http://127.0.0.1:8001 \\\n    \
--server-pid A=1234 --server-pid B=1235 --server-cores 0 --pin-cpu 1 \\\n    \
--scenario fanout-1k-r25,fanout-1k-r200-sat --rounds 2 --out-dir bench-out"
)]
struct Cli {
    /// Server to measure, `[LABEL=]http://127.x.y.z:PORT`; repeat for side-by-side mode.
    #[arg(long = "target", default_value = "http://127.0.0.1:8000")]
    targets: Vec<String>,
    /// Comma-separated scenario names (or `all`).
    #[arg(long, default_value = "fanout-1k-r5")]
    scenario: String,
    /// Override: number of websocket subscribers (max 19,000).
    #[arg(long)]
    subs: Option<u32>,
    /// Override: number of channels (subscribers are spread round-robin, one channel each).
    #[arg(long)]
    channels: Option<u32>,
    /// Override: messages per second, open loop (0 = idle, or closed loop without subscribers).
    #[arg(long)]
    rate: Option<f64>,
    /// Override: approximate size of the `message` object in bytes.
    #[arg(long)]
    size: Option<usize>,
    /// Override: measurement duration in seconds (max 120).
    #[arg(long)]
    duration: Option<f64>,
    /// Override: publisher keep-alive connections.
    #[arg(long)]
    publishers: Option<u32>,
    /// Override: seconds to wait for outstanding deliveries after publishing stops.
    #[arg(long)]
    drain: Option<f64>,
    /// Override (presence scenarios): churners, extra members that leave and join again.
    #[arg(long)]
    churners: Option<u32>,
    /// Override (presence scenarios): churn operations (a leave or a join) per second.
    #[arg(long)]
    churn_rate: Option<f64>,
    /// Pusher scenarios: the app id of the HTTP API path (`/apps/<id>/events`).
    #[arg(long, env = "HERALD_BENCH_PUSHER_APP_ID", default_value = "app-id")]
    pusher_app_id: String,
    /// Pusher scenarios: the app key (`/app/<key>`, and the `auth_key` of signed requests).
    #[arg(long, env = "HERALD_BENCH_PUSHER_KEY", default_value = "app-key")]
    pusher_key: String,
    /// Pusher scenarios: the app secret that signs API requests and channel auth.
    #[arg(long, env = "HERALD_BENCH_PUSHER_SECRET", default_value = "app-secret")]
    pusher_secret: String,
    /// Rounds per scenario and target; targets are interleaved within each round.
    #[arg(long)]
    rounds: Option<u32>,
    /// Secret for `X-Channelstream-Secret` signatures.
    #[arg(long, env = "HERALD_BENCH_SECRET", default_value = "secret")]
    secret: String,
    /// Send no signature (servers or test doubles that do not check).
    #[arg(long)]
    no_sign: bool,
    /// Server process id for RSS per connection, `[LABEL=]PID` (repeat per target).
    #[arg(long = "server-pid")]
    server_pids: Vec<String>,
    /// Cores the server runs on (e.g. `0` or `0,1`): their /proc/stat busy time is the server
    /// CPU. Default: all cores minus this client's own CPU time.
    #[arg(long, value_delimiter = ',')]
    server_cores: Option<Vec<usize>>,
    /// Pin this client to one CPU.
    #[arg(long)]
    pin_cpu: Option<usize>,
    /// Spread subscriber sockets over source IPs 127.0.0.1..=127.0.0.N.
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Seconds allowed for connecting all subscribers.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// Spread the websocket subscribers round-robin over these servers (`http://127.x.y.z:PORT`,
    /// comma-separated: the nodes of a cluster); publishers stay on the target.
    #[arg(long = "subs-at", value_delimiter = ',')]
    subs_at: Vec<String>,
    /// Name channels (and users) with this tag instead of one unique to the process, so that
    /// several bench processes share them: one publishes, the others subscribe with
    /// `--rate 0` and count what reaches them (more sockets than one process may hold).
    #[arg(long)]
    shared_tag: Option<String>,
    /// Subscribers being connected at once (keep it at or below the server's listen backlog).
    #[arg(long, default_value_t = 128)]
    connect_concurrency: u32,
    /// Seconds to pause between runs (lets the server collect closed connections).
    #[arg(long, default_value_t = 2.0)]
    pause: f64,
    /// Write the JSON report here (`-` = stdout, and then nothing else goes to stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the SVG plot here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write report.json, report.md and report.svg into this directory.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Render Markdown/SVG/ratios from saved JSON reports instead of running (repeat to merge
    /// runs from several processes or sessions).
    #[arg(long = "from-json")]
    from_json: Vec<PathBuf>,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
    /// PEM file of the CA that signed the servers' certificates (`https://` targets; the
    /// certificate must name the target's IP, e.g. `subjectAltName=IP:127.0.0.1`).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Subscribers offer permessage-deflate (`permessage-deflate; client_max_window_bits`, as
    /// browsers do) and inflate compressed deliveries.
    #[arg(long)]
    deflate: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode, String> {
    let overrides = Overrides {
        subs: cli.subs,
        channels: cli.channels,
        rate: cli.rate,
        size: cli.size,
        duration_s: cli.duration,
        publishers: cli.publishers,
        drain_s: cli.drain,
        churners: cli.churners,
        churn_rate: cli.churn_rate,
    };
    let app = pusher::App {
        id: cli.pusher_app_id.clone(),
        key: cli.pusher_key.clone(),
        secret: cli.pusher_secret.clone(),
    };
    let scenarios = scenario::resolve(&cli.scenario, &overrides).map_err(|e| e.to_string())?;
    let targets: Vec<Target> = cli
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| scenario::parse_target(t, &default_label(i)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut labels: Vec<&str> = targets.iter().map(|t| t.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    if labels.len() != targets.len() {
        return Err("target labels must be unique".into());
    }
    let pids = parse_pids(&cli.server_pids, &targets)?;
    if !(0.0..=60.0).contains(&cli.pause) || !(1.0..=600.0).contains(&cli.connect_timeout) {
        return Err("--pause must be in [0, 60] and --connect-timeout in [1, 600]".into());
    }
    if !(1..=4096).contains(&cli.connect_concurrency) {
        return Err("--connect-concurrency must be in 1..=4096".into());
    }
    let rounds = cli.rounds.unwrap_or(if targets.len() > 1 { 2 } else { 1 });
    if rounds == 0 || rounds > 20 {
        return Err("--rounds must be in 1..=20".into());
    }
    if let Some(cpu) = cli.pin_cpu {
        sys::pin_to_cpu(cpu).map_err(|e| format!("--pin-cpu {cpu}: {e}"))?;
    }
    let json_stdout = cli.json.as_deref() == Some(std::path::Path::new("-"));
    let mut auth = client::Auth::new((!cli.no_sign).then_some(cli.secret.as_str()));
    let started_unix = sys::unix_secs();
    let source_ips = scenario::source_ips(cli.source_ips);
    let tls = match (&cli.tls_ca, targets.iter().any(|t| t.tls)) {
        (Some(ca), true) => Some(tls::client_config(ca)?),
        (None, true) => return Err("https:// targets need --tls-ca FILE".into()),
        (_, false) => None,
    };
    let sub_addrs = cli
        .subs_at
        .iter()
        .map(|spec| scenario::parse_target(spec, "S").map(|t| t.addr))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--subs-at: {e}"))?;

    let mut runs = Vec::new();
    for p in &cli.from_json {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let saved: report::SavedReport =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        runs.extend(saved.runs);
    }
    let scenarios = if cli.from_json.is_empty() {
        scenarios
    } else {
        Vec::new()
    };
    let mut first = true;
    for sc in &scenarios {
        for round in 1..=rounds {
            for target in &targets {
                if !first && cli.pause > 0.0 {
                    std::thread::sleep(std::time::Duration::from_secs_f64(cli.pause));
                }
                first = false;
                // Unique per process too: concurrent clients must not share channels or users.
                let tag = cli.shared_tag.clone().unwrap_or_else(|| {
                    format!(
                        "hb{:x}p{}-{}",
                        started_unix & 0xff_ffff,
                        std::process::id(),
                        runs.len()
                    )
                });
                let cfg = client::RunConfig {
                    scenario: sc,
                    target,
                    round,
                    tag,
                    shared_clock: cli.shared_tag.is_some(),
                    server_pid: pids.get(&target.label).copied(),
                    server_cores: cli.server_cores.clone(),
                    source_ips: source_ips.clone(),
                    sub_addrs: sub_addrs.clone(),
                    connect_timeout_s: cli.connect_timeout,
                    connect_concurrency: cli.connect_concurrency,
                    progress: !cli.quiet,
                    tls: target.tls.then(|| tls.clone()).flatten(),
                    deflate: cli.deflate,
                    app: app.clone(),
                };
                let r = client::run(&cfg, &mut auth)
                    .map_err(|e| format!("{} against {}: {e}", sc.name, target.url))?;
                if !cli.quiet {
                    for e in &r.errors {
                        eprintln!("  ! {e}");
                    }
                }
                runs.push(r);
            }
        }
    }

    let ratios = report::ratios(&runs);
    let md = report::markdown(&runs, &ratios);
    let rep = report::Report {
        tool: "herald-bench",
        started_unix,
        runs,
        ratios,
    };
    let json = serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?;
    let svg = report::svg(&rep.runs);
    if let Some(dir) = &cli.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_file(&dir.join("report.json"), &json)?;
        write_file(&dir.join("report.md"), &md)?;
        write_file(&dir.join("report.svg"), &svg)?;
    }
    match &cli.json {
        Some(_) if json_stdout => println!("{json}"),
        Some(p) => write_file(p, &json)?,
        None => {}
    }
    if let Some(p) = &cli.markdown {
        write_file(p, &md)?;
    }
    if let Some(p) = &cli.svg {
        write_file(p, &svg)?;
    }
    if !json_stdout {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{md}");
    }
    Ok(ExitCode::SUCCESS)
}

fn default_label(i: usize) -> String {
    // A, B, C, … then T26, T27, …
    match u8::try_from(i).ok().filter(|i| *i < 26) {
        Some(i) => char::from(b'A' + i).to_string(),
        None => format!("T{i}"),
    }
}

/// `PID` (only with one target) or `LABEL=PID`.
fn parse_pids(specs: &[String], targets: &[Target]) -> Result<HashMap<String, u32>, String> {
    let mut out = HashMap::new();
    for s in specs {
        let (label, pid) = match s.split_once('=') {
            Some((l, p)) => (l.to_string(), p),
            None if targets.len() == 1 => (
                targets.first().map(|t| t.label.clone()).unwrap_or_default(),
                s.as_str(),
            ),
            None => {
                return Err(format!(
                    "--server-pid {s}: use LABEL=PID with several targets"
                ))
            }
        };
        if !targets.iter().any(|t| t.label == label) {
            return Err(format!("--server-pid {s}: no target labelled {label}"));
        }
        let pid: u32 = pid
            .parse()
            .map_err(|_| format!("--server-pid {s}: bad pid"))?;
        out.insert(label, pid);
    }
    Ok(out)
}

fn write_file(p: &std::path::Path, s: &str) -> Result<(), String> {
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))
}
