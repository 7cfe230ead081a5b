//! Configuration: Channelstream's `[channelstream]` ini file and `CHANNELSTREAM_*` variables,
//! plus Herald's own flags; parsed once at start and shared read-only.
//!
//! Herald is a drop-in replacement, so an ini file or environment that works with Channelstream
//! 0.7.1 must give the same settings here (spec §2). Three layers, applied in this order:
//!
//! 1. defaults (Channelstream's `SHARED_DEFAULTS`, except `host`: see [`DEFAULT_HOST`]);
//! 2. **either** the `[channelstream]` section of the ini file (`-i/--ini`, else
//!    `CHANNELSTREAM_INI`) **or**, when there is no ini file, the `CHANNELSTREAM_<KEY>`
//!    variables. Channelstream ignores the environment completely once an ini file is given,
//!    and so do we;
//! 3. Herald's command-line flags, which override both.
//!
//! Layer 2 is parsed with Channelstream's rules (`utils.set_config_types`): `asbool`, the
//! comma-list splitting, `int()` ports, the `http_scheme` filter. The ini reader
//! ([`parse_ini`]) follows Python's `configparser` defaults, because real files rely on its
//! continuation lines (`allow_posting_from` as written by `make_config`), on `[DEFAULT]` and on
//! `%%` interpolation (a literal `%` in a secret must be written `%%`).
//!
//! Everything is pure: [`load`] receives the arguments, an environment lookup and a file reader,
//! so tests cover precedence without touching the process. The only impurities are the uuid4
//! `cookie_secret` generated when none is configured and the CPU count behind `--shards`.
//!
//! Layout: `values` types the strings, `ini` reads the file, `cli` parses the flags,
//! `load` applies the three layers, `make_config` writes an ini file, `pusher_apps` reads the
//! Pusher apps and `webhooks` their webhook settings.

mod cli;
mod ini;
mod listeners;
mod load;
mod make_config;
mod pusher_apps;
pub mod pushi;
#[cfg(test)]
mod tests;
mod values;
mod webhooks;

pub use ini::{parse_ini, Ini, IniError};
pub use listeners::{ListenerConfig, TlsFiles};
pub use load::{env_name, load, version_line, Action, ConfigError};
pub use make_config::{render_make_config, MakeConfigVars};
pub use pusher_apps::PusherApp;
pub use values::{asbool, parse_log_level, split_list};
pub use webhooks::{WebhookKind, WebhookSettings};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The Channelstream release whose behaviour Herald reproduces.
pub const CHANNELSTREAM_VERSION: &str = "0.7.1";

/// The keys Channelstream reads from the ini file and the environment (`CONFIGURABLE_PARAMS`).
pub const CONFIGURABLE_PARAMS: [&str; 14] = [
    "debug",
    "log_level",
    "port",
    "host",
    "secret",
    "admin_user",
    "admin_secret",
    "cookie_secret",
    "allow_posting_from",
    "allow_cors",
    "validate_requests",
    "enforce_https",
    "http_scheme",
    "signature_checker",
];

/// Herald's own keys, read like Channelstream's: from the `[channelstream]` section of the ini
/// file, or (without an ini file) from `CHANNELSTREAM_<KEY>` variables.
pub const HERALD_PARAMS: [&str; 13] = [
    "strict",
    "ws_deflate",
    "pusher_activity_timeout",
    "pusher_pong_timeout",
    "tls_cert",
    "tls_key",
    "mode",
    "data_dir",
    "store_sync",
    "max_events_per_channel",
    "max_event_age",
    "store_queue",
    "pushi_admin_secret",
];

/// The only `signature_checker` Herald implements (itsdangerous `TimestampSigner`).
pub const DEFAULT_SIGNATURE_CHECKER: &str = "channelstream.utils.DefaultSigner";

/// Herald listens on loopback unless told otherwise. Channelstream's default is `0.0.0.0`;
/// exposing a server whose default secrets are `secret`/`admin_secret` to the network by
/// default is a footgun we deliberately do not copy.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Name of the ini section Channelstream reads.
pub const INI_SECTION: &str = "channelstream";

/// Env var naming the ini file when `-i` is absent.
pub const INI_ENV: &str = "CHANNELSTREAM_INI";

/// The complete server configuration: Channelstream's ini keys plus Herald's own settings.
#[derive(Clone)]
pub struct Config {
    // --- Channelstream keys (§2.2 of the spec) ---
    /// Channelstream's `debug` key; accepted and kept, it changes nothing in Herald.
    pub debug: bool,
    /// Canonical Python level name: DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET.
    pub log_level: String,
    /// Address to listen on (`host`); defaults to loopback, see [`DEFAULT_HOST`].
    pub host: String,
    /// TCP port to listen on (`port`, default 8000).
    pub port: u16,
    /// Shared secret that signs the `x-channelstream-secret` token of server-API calls.
    pub secret: String,
    /// User name for the admin login form (`admin_user`).
    pub admin_user: String,
    /// Password for the admin login form (`admin_secret`).
    pub admin_secret: String,
    /// Never empty after [`load`]: a uuid4 is generated when none is configured.
    pub cookie_secret: String,
    /// Peer IPs allowed to call the server API (`allow_posting_from`).
    pub allow_posting_from: Vec<String>,
    /// Origin substrings that get CORS headers (`allow_cors`); empty admits every origin.
    pub allow_cors: Vec<String>,
    /// Check the signature's timestamp too: tokens older than 60 s are refused.
    pub validate_requests: bool,
    /// Answer every request except `/ws` with 406 "SSL is required", unless it came over TLS.
    pub enforce_https: bool,
    /// `"http"`, `"https"` or `""` (use the request's scheme).
    pub http_scheme: String,
    // --- Herald ---
    /// Number of reactor threads, each with its own SO_REUSEPORT listener (`--shards`).
    pub shards: usize,
    /// Serve a websocket echo on this path (Autobahn conformance); off by default.
    pub echo_path: Option<String>,
    /// Strict mode (`strict` key, `CHANNELSTREAM_STRICT`, `--strict`): answers that 0.7.1
    /// gives as a 500 crash, a dropped socket or a lenient accept become 400/426/close 4404
    /// (README "Strict mode"). Off by default, so the default stays 0.7.1-compatible.
    pub strict: bool,
    /// permessage-deflate (`--ws-deflate`, ini `ws_deflate`; off by default) and its threshold
    /// (`--ws-deflate-min-bytes`).
    pub deflate: crate::proto::deflate::DeflateConfig,
    /// Resource limits (the `--max-*` and timeout flags).
    pub limits: Limits,
    /// The main listener's certificate and key (`--tls-cert`/`--tls-key`, ini `tls_cert` and
    /// `tls_key`, `CHANNELSTREAM_TLS_CERT`/`_KEY` without an ini file): it then speaks only
    /// TLS (`https://`, `wss://`).
    pub tls: Option<TlsFiles>,
    /// Extra listeners (`[listener:NAME]` ini sections), served like the main one.
    pub listeners: Vec<ListenerConfig>,
    /// The Pusher dialect's default app id (`HERALD_DEFAULT_APP_ID`; soketi's default).
    pub default_app_id: String,
    /// The Pusher dialect's default app key (`HERALD_DEFAULT_APP_KEY`).
    pub default_app_key: String,
    /// The Pusher dialect's default app secret (`HERALD_DEFAULT_APP_SECRET`).
    pub default_app_secret: String,
    /// Whether the default app accepts `client-` events
    /// (`HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES`; off, as in Pusher).
    pub default_app_client_events: bool,
    /// Pusher: announced as `activity_timeout`; a socket silent that long gets a `pusher:ping`
    /// (`pusher_activity_timeout` key, `--pusher-activity-timeout`; 120 s).
    pub pusher_activity_timeout: Duration,
    /// Pusher: how long a pinged socket has to send anything before it is closed with 4201
    /// (`pusher_pong_timeout` key, `--pusher-pong-timeout`; 30 s).
    pub pusher_pong_timeout: Duration,
    /// The default app's webhooks (`HERALD_DEFAULT_APP_WEBHOOK*`; see `config::webhooks`).
    pub default_app_webhooks: WebhookSettings,
    /// The Pusher apps of the ini file's `[pusher_app:NAME]` sections; empty: the default
    /// app alone.
    pub pusher_apps: Vec<PusherApp>,
    /// The Pushi dialect and the durable store (`config::pushi`).
    pub pushi: pushi::PushiConfig,
    /// The ini file the settings came from, if any (for the start-up log).
    pub ini_path: Option<PathBuf>,
}

/// Resource limits; each has a stated behaviour when hit (see README).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per shard; more are accepted and closed at once (`--max-connections`).
    pub max_connections_per_shard: usize,
    /// Open connections across all shards; more are closed at once (`--max-connections-total`).
    pub max_connections_total: usize,
    /// Per shard: connections whose first request head has not fully arrived.
    pub max_pending_handshakes: usize,
    /// Channels one connection may join; `/connect` or `/subscribe` past it get a 422.
    pub max_channels_per_connection: usize,
    /// Longest request head in bytes; more is a 431 (`--max-head-bytes`).
    pub max_head_bytes: usize,
    /// Most header lines in one request head; more is a 431 (capped at `MAX_HEADERS`).
    pub max_headers: usize,
    /// Largest request body in bytes; more is a 413 (`--max-body-bytes`).
    pub max_body_bytes: usize,
    /// Largest reassembled websocket message in bytes; more closes with 1009.
    pub max_ws_message_bytes: usize,
    /// Bytes queued for one slow connection before it is closed with 1008 (`--max-queued-bytes`).
    pub max_queued_bytes: usize,
    /// Time allowed for a request head to arrive in full; then 408 and close.
    pub header_timeout: Duration,
    /// How long an idle keep-alive HTTP connection stays open (`--idle-timeout-secs`).
    pub keep_alive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_shard: 100_000,
            max_connections_total: 1_000_000,
            max_pending_handshakes: 10_000,
            max_channels_per_connection: 1_000,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            max_ws_message_bytes: 1024 * 1024,
            max_queued_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debug: false,
            log_level: "INFO".into(),
            host: DEFAULT_HOST.into(),
            port: 8000,
            secret: "secret".into(),
            admin_user: "admin".into(),
            admin_secret: "admin_secret".into(),
            cookie_secret: String::new(),
            allow_posting_from: vec!["127.0.0.1".into()],
            allow_cors: Vec::new(),
            validate_requests: true,
            enforce_https: false,
            http_scheme: String::new(),
            shards: 1,
            echo_path: None,
            strict: false,
            deflate: crate::proto::deflate::DeflateConfig::default(),
            limits: Limits::default(),
            tls: None,
            listeners: Vec::new(),
            default_app_id: "app-id".into(),
            default_app_key: "app-key".into(),
            default_app_secret: "app-secret".into(),
            default_app_client_events: false,
            pusher_activity_timeout: Duration::from_secs(120),
            pusher_pong_timeout: Duration::from_secs(30),
            default_app_webhooks: WebhookSettings::default(),
            pusher_apps: Vec::new(),
            pushi: pushi::PushiConfig::default(),
            ini_path: None,
        }
    }
}

impl Config {
    /// The first socket address `host:port` resolves to.
    pub fn listen_addr(&self) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for host"))
    }

    /// The address of an extra listener (its own host, else the main one's).
    pub fn listener_addr(&self, l: &ListenerConfig) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (l.host.as_deref().unwrap_or(&self.host), l.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for host"))
    }

    /// `max_age` for [`crate::auth::Signer::verify`]: tokens expire after 60 s when
    /// `validate_requests` is on; otherwise only the HMAC is checked.
    pub fn signer_max_age(&self) -> Option<u64> {
        self.validate_requests.then_some(60)
    }

    /// An `EnvFilter`-style directive for `log_level` (NOTSET means "everything", as for
    /// Python's root logger).
    pub fn log_directive(&self) -> &'static str {
        match self.log_level.as_str() {
            "NOTSET" => "trace",
            "DEBUG" => "debug",
            "WARNING" => "warn",
            "ERROR" | "CRITICAL" => "error",
            _ => "info",
        }
    }

    /// True when the API secret is still Channelstream's well-known default (main warns).
    pub fn uses_default_secret(&self) -> bool {
        self.secret == "secret"
    }

    /// True when the admin password is still Channelstream's well-known default (main warns).
    pub fn uses_default_admin_secret(&self) -> bool {
        self.admin_secret == "admin_secret"
    }
}

/// Secrets are redacted: configs get logged at debug level and in panics.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const R: &str = "<redacted>";
        f.debug_struct("Config")
            .field("debug", &self.debug)
            .field("log_level", &self.log_level)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &R)
            .field("admin_user", &self.admin_user)
            .field("admin_secret", &R)
            .field("cookie_secret", &R)
            .field("allow_posting_from", &self.allow_posting_from)
            .field("allow_cors", &self.allow_cors)
            .field("validate_requests", &self.validate_requests)
            .field("enforce_https", &self.enforce_https)
            .field("http_scheme", &self.http_scheme)
            .field("shards", &self.shards)
            .field("echo_path", &self.echo_path)
            .field("strict", &self.strict)
            .field("deflate", &self.deflate)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .field("listeners", &self.listeners)
            .field("default_app_client_events", &self.default_app_client_events)
            .field("pusher_activity_timeout", &self.pusher_activity_timeout)
            .field("pusher_pong_timeout", &self.pusher_pong_timeout)
            .field("ini_path", &self.ini_path)
            .finish()
    }
}
