//! Named scenario presets (the rows of `shared/perf/targets.md`), their overrides and limits,
//! and the target address guard.
//!
//! Every run is bounded: at most 120 s of load, at most 19,000 subscribers per process (the fd
//! limit is 20,000 and the client also needs control and publisher sockets), and only to
//! addresses in 127.0.0.0/8 — the tool refuses anything else before opening a socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const MAX_DURATION_S: f64 = 120.0;
pub const MAX_SUBS: u32 = 19_000;
pub const MAX_PUBLISHERS: u32 = 256;
pub const MAX_SIZE: usize = 1 << 20;
pub const MAX_RATE: f64 = 1_000_000.0;

/// How messages are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Publish at a fixed rate whatever the server does; latency counts from the intended
    /// send time, so queueing in the publisher is charged to the server (no coordinated
    /// omission).
    OpenLoop,
    /// `wrk`-style: every publisher connection sends its next request as soon as the previous
    /// answer arrives. Measures REST ingest capacity.
    ClosedLoop,
    /// Connect, then only hold the connections (memory per connection, heartbeats).
    Idle,
}

/// One fully resolved scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scenario {
    pub name: String,
    pub subs: u32,
    pub channels: u32,
    /// Messages per second over all channels (round-robin over channels).
    pub rate: f64,
    /// Approximate length of the serialized `message` object in bytes.
    pub size: usize,
    pub duration_s: f64,
    pub publishers: u32,
    pub mode: Mode,
    /// How long to wait after the last publish for outstanding deliveries.
    pub drain_s: f64,
    /// Pusher only: subscribers join `presence-` channels (signed `channel_data`, one user
    /// each) instead of public ones.
    #[serde(default)]
    pub presence: bool,
    /// Presence churn: extra members (one user each, spread over the channels) that leave and
    /// join again while messages are published; not counted as subscribers.
    #[serde(default)]
    pub churners: u32,
    /// Churn operations (one leave or one join) per second over all churners, open loop.
    #[serde(default)]
    pub churn_rate: f64,
}

/// Per-run overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub subs: Option<u32>,
    pub channels: Option<u32>,
    pub rate: Option<f64>,
    pub size: Option<usize>,
    pub duration_s: Option<f64>,
    pub publishers: Option<u32>,
    pub drain_s: Option<f64>,
    pub churners: Option<u32>,
    pub churn_rate: Option<f64>,
}

/// The preset names, in the order of `targets.md`.
pub const PRESETS: &[&str] = &[
    "idle-10k",
    "fanout-1k-r5",
    "fanout-1k-r25",
    "fanout-10k-r2",
    "fanout-1k-4KiB-r10",
    "channels-1000x10-r2000",
    "fanout-1k-r200-sat",
    "publish-rest",
    "pusher-fanout-1k-r25",
    "pusher-fanout-10k-r5",
    "pusher-fanout-1k-r200-sat",
    "pusher-presence-churn",
    "pusher-publish-rest",
];

/// A preset by name (`custom` is a small open-loop default meant to be overridden).
pub fn preset(name: &str) -> Option<Scenario> {
    let s = |subs, channels, rate, size, dur, publishers, mode, drain| Scenario {
        name: name.to_string(),
        subs,
        channels,
        rate,
        size,
        duration_s: dur,
        publishers,
        mode,
        drain_s: drain,
        presence: false,
        churners: 0,
        churn_rate: 0.0,
    };
    use Mode::*;
    Some(match name {
        "idle-10k" => s(10_000, 1, 0.0, 64, 5.0, 0, Idle, 0.0),
        "fanout-1k-r5" => s(1_000, 1, 5.0, 64, 20.0, 4, OpenLoop, 3.0),
        "fanout-1k-r25" => s(1_000, 1, 25.0, 64, 20.0, 4, OpenLoop, 3.0),
        "fanout-10k-r2" => s(10_000, 1, 2.0, 64, 20.0, 4, OpenLoop, 5.0),
        "fanout-1k-4KiB-r10" => s(1_000, 1, 10.0, 4096, 20.0, 4, OpenLoop, 3.0),
        "channels-1000x10-r2000" => s(10_000, 1_000, 2_000.0, 64, 20.0, 16, OpenLoop, 3.0),
        "fanout-1k-r200-sat" => s(1_000, 1, 200.0, 64, 10.0, 8, OpenLoop, 5.0),
        "publish-rest" => s(0, 1, 0.0, 64, 10.0, 32, ClosedLoop, 1.0),
        // The Pusher dialect (subscribe over the websocket, signed `POST /apps/{id}/events`).
        "pusher-fanout-1k-r25" => s(1_000, 1, 25.0, 64, 20.0, 4, OpenLoop, 3.0),
        "pusher-fanout-10k-r5" => s(10_000, 1, 5.0, 64, 20.0, 4, OpenLoop, 5.0),
        "pusher-fanout-1k-r200-sat" => s(1_000, 1, 200.0, 64, 10.0, 8, OpenLoop, 5.0),
        // 1,000 members in 20 presence channels of 50, 20 messages/s (1,000 deliveries/s), and
        // 100 more members (5 per channel) leaving or joining 200 times a second: each churn
        // operation is one member_added or member_removed to the 50 members of its channel.
        "pusher-presence-churn" => Scenario {
            presence: true,
            churners: 100,
            churn_rate: 200.0,
            ..s(1_000, 20, 20.0, 64, 20.0, 4, OpenLoop, 3.0)
        },
        "pusher-publish-rest" => s(0, 1, 0.0, 64, 10.0, 32, ClosedLoop, 1.0),
        "custom" => s(100, 1, 10.0, 64, 5.0, 4, OpenLoop, 2.0),
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown scenario {0:?} (known: {known}, custom)", known = PRESETS.join(", "))]
    UnknownScenario(String),
    #[error("{0}")]
    Limit(String),
    #[error("bad target {0:?}: {1}")]
    Target(String, &'static str),
    #[error("refusing target {0}: only 127.0.0.0/8 is allowed")]
    NotLoopback(String),
}

impl Scenario {
    /// Apply overrides, then enforce the limits.
    pub fn with(mut self, o: &Overrides) -> Result<Scenario, ConfigError> {
        if let Some(v) = o.subs {
            self.subs = v;
        }
        if let Some(v) = o.channels {
            self.channels = v;
        }
        if let Some(v) = o.rate {
            self.rate = v;
            self.mode = match (v > 0.0, self.subs) {
                (true, _) => Mode::OpenLoop,
                (false, 0) => Mode::ClosedLoop,
                (false, _) => Mode::Idle,
            };
        }
        if let Some(v) = o.size {
            self.size = v;
        }
        if let Some(v) = o.duration_s {
            self.duration_s = v;
        }
        if let Some(v) = o.publishers {
            self.publishers = v;
        }
        if let Some(v) = o.drain_s {
            self.drain_s = v;
        }
        if let Some(v) = o.churners {
            self.churners = v;
        }
        if let Some(v) = o.churn_rate {
            self.churn_rate = v;
        }
        if self.mode == Mode::Idle && self.subs == 0 {
            self.mode = Mode::ClosedLoop;
        }
        if self.mode != Mode::Idle && self.publishers == 0 {
            self.publishers = 4;
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let lim = |m: String| Err(ConfigError::Limit(m));
        if !(self.duration_s > 0.0 && self.duration_s <= MAX_DURATION_S) {
            return lim(format!("duration must be in (0, {MAX_DURATION_S}] s"));
        }
        if !(0.0..=10.0).contains(&self.drain_s) {
            return lim("drain must be in [0, 10] s".into());
        }
        if self.subs.saturating_add(self.churners) > MAX_SUBS {
            return lim(format!(
                "at most {MAX_SUBS} subscribers and churners per process (fd limit)"
            ));
        }
        if (self.churners > 0 || self.churn_rate > 0.0) && !(self.presence && self.is_pusher()) {
            return lim("churn needs a Pusher presence scenario".into());
        }
        if !(0.0..=MAX_RATE).contains(&self.churn_rate) || self.churn_rate.is_nan() {
            return lim(format!("churn rate must be in [0, {MAX_RATE}]"));
        }
        if self.churn_rate > 0.0 && self.churners == 0 {
            return lim("a churn rate needs churners".into());
        }
        if self.channels == 0 || (self.subs > 0 && self.channels > self.subs) {
            return lim("channels must be >= 1 and <= subs".into());
        }
        if !(0.0..=MAX_RATE).contains(&self.rate) || self.rate.is_nan() {
            return lim(format!("rate must be in [0, {MAX_RATE}]"));
        }
        if self.size > MAX_SIZE {
            return lim(format!("size must be <= {MAX_SIZE}"));
        }
        if self.publishers > MAX_PUBLISHERS {
            return lim(format!("at most {MAX_PUBLISHERS} publisher connections"));
        }
        Ok(())
    }

    /// Whether the run speaks Pusher (names `pusher-…`) instead of the Channelstream API.
    pub fn is_pusher(&self) -> bool {
        self.name.starts_with(crate::pusher::PREFIX)
    }

    /// Messages the open-loop schedule offers over the whole run.
    pub fn total_messages(&self) -> u64 {
        match self.mode {
            Mode::OpenLoop => (self.rate * self.duration_s).floor() as u64,
            _ => 0,
        }
    }
}

/// Resolve a comma-separated list of scenario names (`all` = every preset).
pub fn resolve(list: &str, o: &Overrides) -> Result<Vec<Scenario>, ConfigError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "all" {
            for p in PRESETS {
                out.push(
                    preset(p)
                        .ok_or_else(|| ConfigError::UnknownScenario(p.to_string()))?
                        .with(o)?,
                );
            }
            continue;
        }
        let s = preset(name).ok_or_else(|| ConfigError::UnknownScenario(name.to_string()))?;
        out.push(s.with(o)?);
    }
    Ok(out)
}

/// One server to measure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    pub label: String,
    pub url: String,
    #[serde(skip)]
    pub addr: SocketAddr,
    /// `Host:` header value.
    #[serde(skip)]
    pub host: String,
    /// `https://`: every socket speaks TLS (`--tls-ca` names the CA to trust).
    #[serde(skip)]
    pub tls: bool,
}

/// Parse `[LABEL=]http[s]://HOST:PORT[/]`. HOST must be an IPv4 literal in 127.0.0.0/8 or
/// `localhost`; no name resolution happens, so nothing outside loopback can be reached.
pub fn parse_target(spec: &str, default_label: &str) -> Result<Target, ConfigError> {
    let (label, url) = match spec.split_once('=') {
        Some((l, u)) if !l.contains('/') && !l.contains(':') => (l.to_string(), u),
        _ => (default_label.to_string(), spec),
    };
    let bad = |why| ConfigError::Target(spec.to_string(), why);
    let rest = match url.split_once("://") {
        Some(("http", r)) | Some(("https", r)) => r,
        Some(_) => return Err(bad("only http:// and https:// are supported")),
        None => url,
    };
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains('/') || hostport.contains('?') || hostport.contains('@') {
        return Err(bad("no path, query or userinfo allowed"));
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| bad("missing :port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let ip: Ipv4Addr = if host.eq_ignore_ascii_case("localhost") {
        Ipv4Addr::LOCALHOST
    } else {
        host.parse()
            .map_err(|_| ConfigError::NotLoopback(url.to_string()))?
    };
    if !is_allowed(IpAddr::V4(ip)) || port == 0 {
        return Err(ConfigError::NotLoopback(url.to_string()));
    }
    Ok(Target {
        label,
        url: url.to_string(),
        addr: SocketAddr::new(IpAddr::V4(ip), port),
        host: format!("{ip}:{port}"),
        tls: url.starts_with("https://"),
    })
}

/// The single rule every socket the tool opens goes through.
pub fn is_allowed(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 127)
}

/// Source addresses for subscriber sockets: `n` = 1 means "let the kernel choose" (127.0.0.1);
/// more spreads subscribers over 127.0.0.1..=127.0.0.n.
pub fn source_ips(n: u8) -> Vec<IpAddr> {
    if n <= 1 {
        return Vec::new();
    }
    (1..=n)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_table() {
        let ok = [
            ("http://127.0.0.1:8000", "A", "127.0.0.1:8000"),
            ("B=http://127.0.0.1:8001/", "B", "127.0.0.1:8001"),
            ("127.1.2.3:9", "A", "127.1.2.3:9"),
            ("x=localhost:80", "x", "127.0.0.1:80"),
        ];
        for (spec, label, addr) in ok {
            let t = parse_target(spec, "A").unwrap();
            assert_eq!(
                (t.label.as_str(), t.addr.to_string().as_str()),
                (label, addr),
                "{spec}"
            );
        }
        let refused = [
            "http://10.0.0.1:80",
            "http://192.168.1.1:80",
            "http://8.8.8.8:53",
            "http://example.com:80",
            "http://[::1]:80",
            "http://128.0.0.1:80",
            "http://0.0.0.0:80",
        ];
        for spec in refused {
            assert!(
                matches!(parse_target(spec, "A"), Err(ConfigError::NotLoopback(_))),
                "{spec}"
            );
        }
        let t = parse_target("T=https://127.0.0.1:8443", "A").unwrap();
        assert!(t.tls && t.addr.port() == 8443);
        assert!(!parse_target("http://127.0.0.1:1", "A").unwrap().tls);
        for spec in [
            "ftp://127.0.0.1:1",
            "http://127.0.0.1",
            "http://127.0.0.1:1/x",
            "http://127.0.0.1:0",
        ] {
            assert!(parse_target(spec, "A").is_err(), "{spec}");
        }
    }

    #[test]
    fn presets_are_valid_and_bounded() {
        for name in PRESETS {
            let s = preset(name).unwrap().with(&Overrides::default()).unwrap();
            assert!(
                s.duration_s <= MAX_DURATION_S && s.subs <= MAX_SUBS,
                "{name}"
            );
        }
        let all = resolve("all", &Overrides::default()).unwrap();
        assert_eq!(all.len(), PRESETS.len());
        let ch = preset("channels-1000x10-r2000").unwrap();
        assert_eq!((ch.subs / ch.channels, ch.rate), (10, 2000.0));
        // Presence members per channel stay under the 100 that Herald and sockudo allow.
        let p = preset("pusher-presence-churn").unwrap();
        assert!(p.presence && p.is_pusher() && p.churn_rate > 0.0);
        assert!((p.subs + p.churners).div_ceil(p.channels) < 100);
    }

    #[test]
    fn churn_needs_a_presence_scenario() {
        let churn = Overrides {
            churners: Some(5),
            churn_rate: Some(10.0),
            ..Default::default()
        };
        for name in ["pusher-fanout-1k-r25", "fanout-1k-r5"] {
            assert!(matches!(
                preset(name).unwrap().with(&churn),
                Err(ConfigError::Limit(_))
            ));
        }
        let no_churners = Overrides {
            churners: Some(0),
            ..Default::default()
        };
        assert!(preset("pusher-presence-churn")
            .unwrap()
            .with(&no_churners)
            .is_err());
        let too_many = Overrides {
            subs: Some(18_990),
            channels: Some(1),
            churners: Some(11),
            ..Default::default()
        };
        assert!(preset("pusher-presence-churn")
            .unwrap()
            .with(&too_many)
            .is_err());
    }

    #[test]
    fn overrides_and_limits() {
        let o = Overrides {
            subs: Some(50),
            rate: Some(0.0),
            ..Default::default()
        };
        assert_eq!(
            preset("fanout-1k-r5").unwrap().with(&o).unwrap().mode,
            Mode::Idle
        );
        let o = Overrides {
            rate: Some(100.0),
            ..Default::default()
        };
        let s = preset("publish-rest").unwrap().with(&o).unwrap();
        assert_eq!((s.mode, s.total_messages()), (Mode::OpenLoop, 1000));
        for o in [
            Overrides {
                duration_s: Some(121.0),
                ..Default::default()
            },
            Overrides {
                subs: Some(19_001),
                ..Default::default()
            },
            Overrides {
                channels: Some(0),
                ..Default::default()
            },
            Overrides {
                subs: Some(5),
                channels: Some(6),
                ..Default::default()
            },
            Overrides {
                rate: Some(-1.0),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(
                    preset("custom").unwrap().with(&o),
                    Err(ConfigError::Limit(_))
                ),
                "{o:?}"
            );
        }
        assert!(matches!(
            resolve("nope", &Overrides::default()),
            Err(ConfigError::UnknownScenario(_))
        ));
    }

    #[test]
    fn source_ip_spread() {
        assert!(source_ips(1).is_empty());
        let v = source_ips(3);
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|ip| is_allowed(*ip)));
    }
}
