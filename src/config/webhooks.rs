//! A Pusher app's webhook settings: where its webhooks go, which events, batching, the grace
//! delay of `channel_vacated`/`member_removed`, retries and the sender's queue bound.
//!
//! Why here (the pure configuration layer) and not in `pusher::webhooks`: the same keys are read
//! from a `[pusher_app:NAME]` section of the ini file and, for the default app, from
//! `HERALD_DEFAULT_APP_WEBHOOK*` variables, and both readers live in `config`. The settings are
//! plain data; `pusher::webhooks` acts on them. Keys (all optional; no URL: no webhooks):
//!
//! | ini key | default-app variable | default |
//! |---|---|---|
//! | `webhooks` | `HERALD_DEFAULT_APP_WEBHOOKS` | none: URLs, comma- or space-separated, `http://` or `https://` |
//! | `webhook_event_types` | `HERALD_DEFAULT_APP_WEBHOOK_EVENT_TYPES` | all six kinds |
//! | `webhook_batching` | `HERALD_DEFAULT_APP_WEBHOOK_BATCHING` | false (one event per request) |
//! | `webhook_batch_ms` / `webhook_batch_max` | `..._WEBHOOK_BATCH_MS` / `..._WEBHOOK_BATCH_MAX` | 250 ms / 20 events (Pusher's) |
//! | `webhook_vacated_delay_ms` | `..._WEBHOOK_VACATED_DELAY_MS` | 3000 (Pusher: up to 3 s) |
//! | `webhook_retry_secs` | `..._WEBHOOK_RETRY_SECS` | 300 (Pusher retries for 5 min) |
//! | `webhook_timeout_ms` | `..._WEBHOOK_TIMEOUT_MS` | 4000 (Pusher expects a 2xx within 4 s) |
//! | `webhook_queue` | `..._WEBHOOK_QUEUE` | 10000 events per URL |

use super::values::{asbool, py_int};
use std::time::Duration;

/// The webhook events Pusher defines (and Herald raises).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    /// A channel got its first subscriber.
    ChannelOccupied,
    /// A channel lost its last subscriber (after the grace delay).
    ChannelVacated,
    /// A presence channel got a user's first connection.
    MemberAdded,
    /// A presence channel lost a user's last connection (after the grace delay).
    MemberRemoved,
    /// A client sent a `client-` event.
    ClientEvent,
    /// A subscribe to a cache channel found no cached event.
    CacheMiss,
}

impl WebhookKind {
    /// Every kind, in the order of [`WebhookKind::bit`].
    pub const ALL: [WebhookKind; 6] = [
        WebhookKind::ChannelOccupied,
        WebhookKind::ChannelVacated,
        WebhookKind::MemberAdded,
        WebhookKind::MemberRemoved,
        WebhookKind::ClientEvent,
        WebhookKind::CacheMiss,
    ];

    /// The event's `name` in a webhook body.
    pub fn name(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
            WebhookKind::CacheMiss => "cache_miss",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its bit in a [`WebhookSettings::kinds`] mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// One app's webhook settings (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where to POST; empty: the app sends no webhooks.
    pub urls: Vec<String>,
    /// The kinds sent, as a mask of [`WebhookKind::bit`]s.
    pub kinds: u8,
    /// Several events per request (within `batch_window`, at most `batch_max`).
    pub batching: bool,
    /// How long a batch waits for more events after its first.
    pub batch_window: Duration,
    /// Most events in one request.
    pub batch_max: usize,
    /// How long `channel_vacated` / `member_removed` wait for the channel / member to return.
    pub vacated_delay: Duration,
    /// How long a failing request is retried (from its first attempt), then dropped.
    pub retry_for: Duration,
    /// The first back-off between attempts (doubled after each failure, capped at 60 s).
    pub retry_initial: Duration,
    /// One attempt's time limit (connect, send, answer).
    pub timeout: Duration,
    /// Events queued per URL before new ones are dropped.
    pub queue: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            urls: Vec::new(),
            kinds: WebhookKind::ALL.iter().fold(0, |m, k| m | k.bit()),
            batching: false,
            batch_window: Duration::from_millis(250),
            batch_max: 20,
            vacated_delay: Duration::from_millis(3000),
            retry_for: Duration::from_secs(300),
            retry_initial: Duration::from_secs(1),
            timeout: Duration::from_millis(4000),
            queue: 10_000,
        }
    }
}

impl WebhookSettings {
    /// Whether the app sends webhooks at all.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }

    /// Whether events of `kind` are sent.
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.enabled() && self.kinds & kind.bit() != 0
    }
}

/// The keys read, without the `webhook` prefix's variable spelling (`HERALD_DEFAULT_APP_` +
/// the key in upper case is the default app's variable).
pub const KEYS: [&str; 9] = [
    "webhooks",
    "webhook_event_types",
    "webhook_batching",
    "webhook_batch_ms",
    "webhook_batch_max",
    "webhook_vacated_delay_ms",
    "webhook_retry_secs",
    "webhook_timeout_ms",
    "webhook_queue",
];

/// Read the settings through `get(key)` (an ini section's value or a variable); `Err((key,
/// reason))` names the bad key.
pub fn read(
    get: &dyn Fn(&'static str) -> Option<String>,
) -> Result<WebhookSettings, (&'static str, &'static str)> {
    let mut w = WebhookSettings::default();
    let list = |v: &str| -> Vec<String> {
        v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(v) = get("webhooks") {
        w.urls = list(&v);
        if let Some(_bad) = w.urls.iter().find(|u| !url_ok(u)) {
            return Err((
                "webhooks",
                "webhooks: each URL must be http://host[:port][/path] or https://…",
            ));
        }
    }
    if let Some(v) = get("webhook_event_types") {
        let mut mask = 0;
        for name in list(&v) {
            let kind = WebhookKind::parse(&name).ok_or((
                "webhook_event_types",
                "webhook_event_types: names are channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss",
            ))?;
            mask |= kind.bit();
        }
        w.kinds = mask;
    }
    if let Some(v) = get("webhook_batching") {
        w.batching = asbool(&v);
    }
    let num = |key: &'static str, min: i128| -> Result<Option<u64>, (&'static str, &'static str)> {
        match get(key) {
            None => Ok(None),
            Some(v) => py_int(&v)
                .filter(|n| *n >= min)
                .and_then(|n| u64::try_from(n).ok())
                .map(Some)
                .ok_or((key, "a webhook_* number is not an integer or out of range")),
        }
    };
    if let Some(n) = num("webhook_batch_ms", 0)? {
        w.batch_window = Duration::from_millis(n);
    }
    if let Some(n) = num("webhook_batch_max", 1)? {
        w.batch_max = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = num("webhook_vacated_delay_ms", 0)? {
        w.vacated_delay = Duration::from_millis(n);
    }
    if let Some(n) = num("webhook_retry_secs", 0)? {
        w.retry_for = Duration::from_secs(n);
    }
    if let Some(n) = num("webhook_timeout_ms", 1)? {
        w.timeout = Duration::from_millis(n);
    }
    if let Some(n) = num("webhook_queue", 1)? {
        w.queue = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(w)
}

/// `http://` or `https://`, then a host (the HTTP client checks the rest when it sends).
fn url_ok(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    rest.and_then(|r| r.split(['/', '?', '#']).next())
        .is_some_and(|host| !host.is_empty() && !host.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(
        pairs: &[(&'static str, &str)],
    ) -> Result<WebhookSettings, (&'static str, &'static str)> {
        let m: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        read(&|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_keys() {
        let w = parse(&[]).unwrap();
        assert!(!w.enabled() && !w.wants(WebhookKind::ChannelOccupied));
        let w = parse(&[
            (
                "webhooks",
                "http://127.0.0.1:9/a, https://example.com/h\nhttp://h",
            ),
            ("webhook_event_types", "channel_occupied,member_added"),
            ("webhook_batching", "yes"),
            ("webhook_vacated_delay_ms", "100"),
            ("webhook_retry_secs", "0"),
            ("webhook_queue", "5"),
        ])
        .unwrap();
        assert_eq!(w.urls.len(), 3);
        assert!(w.wants(WebhookKind::ChannelOccupied) && w.wants(WebhookKind::MemberAdded));
        assert!(!w.wants(WebhookKind::ChannelVacated) && !w.wants(WebhookKind::CacheMiss));
        assert!(w.batching);
        assert_eq!(w.vacated_delay, Duration::from_millis(100));
        assert_eq!(w.retry_for, Duration::ZERO);
        assert_eq!(w.queue, 5);
        for k in WebhookKind::ALL {
            assert_eq!(WebhookKind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        for (pairs, key) in [
            (vec![("webhooks", "ftp://x")], "webhooks"),
            (vec![("webhooks", "http://")], "webhooks"),
            (vec![("webhooks", "http://:80/x")], "webhooks"),
            (
                vec![("webhook_event_types", "channel_occupied,nope")],
                "webhook_event_types",
            ),
            (vec![("webhook_queue", "0")], "webhook_queue"),
            (vec![("webhook_batch_ms", "-1")], "webhook_batch_ms"),
            (vec![("webhook_timeout_ms", "soon")], "webhook_timeout_ms"),
        ] {
            assert_eq!(parse(&pairs).unwrap_err().0, key, "{pairs:?}");
        }
    }
}
