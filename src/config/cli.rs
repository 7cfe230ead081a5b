//! Herald's command line (clap): the Channelstream overrides, Herald's own flags, the limits,
//! the `make-config` subcommand, and layer 3 of the load order (flags win over everything).

use super::values::{parse_log_level, split_list};
use super::{Config, Limits, TlsFiles};
use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str =
    "Herald: a websocket push server, a drop-in replacement for Channelstream 0.7.1";

const LONG_ABOUT: &str = "\
Herald: a websocket push server, wire-compatible with Channelstream 0.7.1.

Your web application calls Herald's REST API (signed with the shared secret) to connect users,
subscribe them to channels and publish messages; browsers receive them over a websocket
(/ws?conn_id=...) or by long polling (/listen).

Settings come from, in increasing priority:
  1. built-in defaults (those of Channelstream, except --host);
  2. the [channelstream] section of the ini file given with -i/--ini or $CHANNELSTREAM_INI,
     OR, when there is no ini file, the CHANNELSTREAM_<KEY> environment variables
     (CHANNELSTREAM_PORT, CHANNELSTREAM_SECRET, ...). As in Channelstream, the environment is
     ignored entirely when an ini file is used;
  3. the command-line flags below.";

const AFTER_HELP: &str = "\
Ini keys and environment variables (Channelstream 0.7.1 compatible):
  debug, log_level, port, host, secret, admin_user, admin_secret, cookie_secret,
  allow_posting_from, allow_cors, validate_requests, enforce_https, http_scheme,
  signature_checker  (environment: CHANNELSTREAM_ + the key in upper case)
Herald's own keys: strict, ws_deflate, pusher_activity_timeout, pusher_pong_timeout, tls_cert, tls_key,
  cluster, node_id (environment: CHANNELSTREAM_ + the key in upper case, only without an ini
  file; HERALD_CLUSTER and HERALD_NODE_ID are read in either case and override the ini file)
Pusher default app: HERALD_DEFAULT_APP_ID, _KEY, _SECRET, _ENABLE_CLIENT_MESSAGES (false)
Extra listeners: [listener:NAME] sections with port, host, tls_cert, tls_key.
SIGHUP reloads every listener's certificate (a bad one is logged, the old one kept).

Strict mode (--strict or strict = true; off by default: default answers are 0.7.1's):
  request                               default (0.7.1)     strict
  body not JSON (empty, truncated...)   500, close          400 {\"_schema\": [\"Invalid JSON: ...\"]}
  JSON nested deeper than 64 levels     200; 500 over 128   400 {\"_schema\": [\"JSON nested ...\"]}
  non-object body to /subscribe,
    /unsubscribe, /channel_config,
    POST /disconnect                    500, close          400 {\"_schema\": [\"Invalid input type.\"]}
  GET /listen without conn_id           500, close          400 {\"conn_id\": [\"Missing data ...\"]}
  HTTP/1.1 without Host, or two Hosts   served              400 malformed request, close
  websocket version 8                   101 (as ws4py)      426, Sec-WebSocket-Version: 13
  /ws, conn_id missing or malformed     101, TCP dropped    101, close frame 4404
  /ws, conn_id unknown                  101, close 1000     101, close frame 4404
Both modes: an integer of over 4300 digits or a lone surrogate (\\ud800) in a body is a
400 {\"_schema\": [...]}; history_size 1e400 is a 422 \"Not a valid integer.\". README.md has
the details (\"Strict mode\", \"Hostile input\").

Write a starter ini file with:  herald make-config -o herald.ini";

#[derive(Parser, Debug)]
#[command(
    name = "herald",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Option<CliCommand>,

    /// Print the version and exit
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub(super) version: bool,

    /// Channelstream ini file to read [env: CHANNELSTREAM_INI]
    ///
    /// Its [channelstream] section is read; other sections and unknown keys are ignored.
    /// With an ini file, CHANNELSTREAM_<KEY> variables are not consulted.
    #[arg(
        short = 'i',
        long = "ini",
        value_name = "FILE",
        help_heading = "Configuration file"
    )]
    pub(super) ini: Option<PathBuf>,

    #[command(flatten)]
    channelstream: ChannelstreamFlags,

    #[command(flatten)]
    herald: HeraldFlags,

    #[command(flatten)]
    limits: LimitFlags,
}

/// Overrides for the Channelstream keys; `None` keeps the ini/environment value.
#[derive(Args, Debug)]
#[command(next_help_heading = "Server (override the ini file and CHANNELSTREAM_* variables)")]
pub(super) struct ChannelstreamFlags {
    /// Address to listen on [default: 127.0.0.1; Channelstream's is 0.0.0.0]
    ///
    /// Herald listens on loopback only unless told otherwise, because the default secrets are
    /// public. Pass --host 0.0.0.0 (or set host in the ini file) to listen on every interface.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,

    /// Port for HTTP and websockets [default: 8000]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// Secret that signs server-API requests [default: secret]
    ///
    /// Command-line arguments are visible to other local users (ps): prefer the ini file.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,

    /// Admin panel user name [default: admin]
    #[arg(long, value_name = "USER")]
    admin_user: Option<String>,

    /// Admin panel password [default: admin_secret]
    #[arg(long, value_name = "SECRET")]
    admin_secret: Option<String>,

    /// IPs allowed to call the server API, comma-separated [default: 127.0.0.1]
    ///
    /// Exact match on the peer address; 0.0.0.0 in the list allows every address.
    #[arg(long, value_name = "LIST")]
    allow_posting_from: Option<String>,

    /// Origins allowed by CORS, comma-separated; empty allows all [default: empty]
    #[arg(long, value_name = "LIST")]
    allow_cors: Option<String>,

    /// Reject signed requests older than 60 s (true/false) [default: true]
    #[arg(long, value_name = "BOOL", value_parser = parse_flag_bool)]
    validate_requests: Option<bool>,

    /// Refuse plain-http requests with 406 (true/false) [default: false]
    #[arg(long, value_name = "BOOL", value_parser = parse_flag_bool)]
    enforce_https: Option<bool>,

    /// Scheme of generated URLs: http, https or empty (the request's) [default: empty]
    #[arg(long, value_name = "SCHEME", value_parser = parse_flag_scheme)]
    http_scheme: Option<String>,

    /// DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET [default: INFO]
    #[arg(long, value_name = "LEVEL", value_parser = parse_flag_log_level)]
    log_level: Option<String>,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Herald")]
pub(super) struct HeraldFlags {
    /// Event-loop threads [default: number of CPU cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: Option<u16>,

    /// Serve a websocket echo on PATH, for Autobahn runs [default: off]
    #[arg(long, value_name = "PATH", value_parser = parse_flag_echo_path)]
    echo_path: Option<String>,

    /// Strict mode: 400/426/close 4404 where 0.7.1 crashes or drops (table below) [ini: strict]
    ///
    /// Off by default, so the default answers stay those of Channelstream 0.7.1. Also set by
    /// `strict = true` in the ini file or CHANNELSTREAM_STRICT=true without one.
    #[arg(long, action = ArgAction::SetTrue)]
    strict: bool,

    /// Serve the Pushi dialect and open the durable store [env: HERALD_MODE=pushi; ini: mode]
    ///
    /// Pushi's websockets on /{64-hex app key} and its REST API (/login, /events, ...); in this
    /// mode SERVER_HOST / SERVER_PORT set the listen address when given.
    #[arg(long, action = ArgAction::SetTrue)]
    pushi: bool,

    /// Keep Channelstream channel histories in the store across restarts [env:
    /// HERALD_PERSIST_HISTORY; ini: persist_history]
    ///
    /// Off by default (then nothing is written and no data directory appears).
    #[arg(long, action = ArgAction::SetTrue)]
    persist_history: bool,

    /// The durable store's directory [default: herald-data; env: HERALD_DATA_DIR; ini: data_dir]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it [ini: ws_deflate]
    ///
    /// Off by default. Herald always answers server_no_context_takeover and
    /// client_no_context_takeover, so a broadcast is compressed once per window size and shared
    /// by every subscriber, and no connection keeps compression state between messages.
    #[arg(long, action = ArgAction::SetTrue)]
    ws_deflate: bool,

    /// With --ws-deflate: server messages shorter than this are sent uncompressed
    #[arg(long, value_name = "BYTES",
          default_value_t = crate::proto::deflate::DEFAULT_MIN_BYTES)]
    ws_deflate_min_bytes: usize,

    /// Pusher: seconds of client silence before the server sends pusher:ping; announced as
    /// activity_timeout [default: 120] [ini: pusher_activity_timeout]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pusher_activity_timeout: Option<u64>,

    /// Pusher: seconds a pinged socket has to answer before it is closed with 4201
    /// [default: 30] [ini: pusher_pong_timeout]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pusher_pong_timeout: Option<u64>,

    /// PEM certificate chain: the main listener speaks TLS only (https://, wss://)
    /// [ini: tls_cert]
    ///
    /// Needs --tls-key. SIGHUP re-reads both files: new handshakes get the new certificate,
    /// open connections keep theirs; a bad file is logged and the old certificate kept.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1) [ini: tls_key]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Cluster mode: join the nodes sharing this Redis (or Valkey) backplane
    /// [default: off] [ini: cluster; env: HERALD_CLUSTER]
    #[arg(long, value_name = "redis://HOST:PORT[/DB]", value_parser = parse_flag_cluster)]
    cluster: Option<crate::cluster::RedisUrl>,

    /// Cluster mode: this node's id, the origin of what it publishes
    /// [default: random at start] [ini: node_id; env: HERALD_NODE_ID]
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
}

fn parse_flag_cluster(s: &str) -> Result<crate::cluster::RedisUrl, String> {
    crate::cluster::parse_url(s).map_err(str::to_owned)
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Limits")]
pub(super) struct LimitFlags {
    /// Open connections per shard (new ones refused beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_shard,
          value_parser = positive_usize)]
    max_connections: usize,

    /// Open connections over all shards (new ones refused beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_total,
          value_parser = positive_usize)]
    max_connections_total: usize,

    /// Connections per shard still sending their first request head, e.g. a websocket
    /// upgrade (new ones refused beyond; a slowloris defence next to --header-timeout-secs)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_pending_handshakes,
          value_parser = positive_usize)]
    max_pending_handshakes: usize,

    /// Channels one connection may be subscribed to (/connect and /subscribe answer 422 beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_channels_per_connection,
          value_parser = positive_usize)]
    max_channels_per_connection: usize,

    /// Bytes of an HTTP request head (431 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_head_bytes,
          value_parser = positive_usize)]
    max_head_bytes: usize,

    /// Header lines in an HTTP request (431 beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_headers,
          value_parser = positive_usize)]
    max_headers: usize,

    /// Bytes of an HTTP request body (413 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes,
          value_parser = positive_usize)]
    max_body_bytes: usize,

    /// Bytes of an incoming websocket message (close 1009 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_ws_message_bytes,
          value_parser = positive_usize)]
    max_ws_message_bytes: usize,

    /// Bytes queued for a slow client before it is disconnected
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_queued_bytes,
          value_parser = positive_usize)]
    max_queued_bytes: usize,

    /// Seconds to receive a complete request head
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,

    /// Seconds an idle keep-alive HTTP connection is kept
    #[arg(long, value_name = "SECS",
          default_value_t = Limits::default().keep_alive_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
pub(super) enum CliCommand {
    /// Write a Channelstream ini file (as `channelstream_utils make_config`)
    #[command(
        name = "make-config",
        alias = "make_config",
        long_about = "Write a Channelstream-style ini file, byte for byte what \
                      `channelstream_utils make_config` writes.\n\n\
                      Without -j, CHANNELSTREAM_* variables override the defaults and a random \
                      cookie_secret is generated. With -j, every key whose JSON value is truthy \
                      overrides the default, as is (cookie_secret stays empty unless given)."
    )]
    MakeConfig {
        /// Write to FILE instead of standard output
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Settings as a JSON object, e.g. '{"secret": "s3cret", "port": 8001}'
        #[arg(short = 'j', long = "json", value_name = "JSON")]
        json: Option<String>,
    },
}

/// Strict booleans on the command line (a typo should not silently mean false, unlike
/// Channelstream's `asbool` for ini/environment values, which we keep for compatibility).
pub(super) fn parse_flag_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub(super) fn parse_flag_scheme(s: &str) -> Result<String, String> {
    match s {
        "" | "http" | "https" => Ok(s.to_owned()),
        _ => Err("expected http, https or an empty string".into()),
    }
}

pub(super) fn parse_flag_log_level(s: &str) -> Result<String, String> {
    parse_log_level(s)
        .map(str::to_owned)
        .ok_or_else(|| "expected DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET".into())
}

pub(super) fn parse_flag_echo_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.contains(['?', '#']) || s.chars().any(char::is_whitespace) {
        return Err("expected an absolute path such as /echo".into());
    }
    if s == "/ws" {
        return Err("/ws is Channelstream's websocket endpoint; choose another path".into());
    }
    Ok(s.to_owned())
}

pub(super) fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Layer 3: every flag given on the command line wins.
pub(super) fn apply_flags(cfg: &mut Config, cli: Cli) {
    let c = cli.channelstream;
    if let Some(v) = c.host {
        cfg.host = v;
    }
    if let Some(v) = c.port {
        cfg.port = v;
    }
    if let Some(v) = c.secret {
        cfg.secret = v;
    }
    if let Some(v) = c.admin_user {
        cfg.admin_user = v;
    }
    if let Some(v) = c.admin_secret {
        cfg.admin_secret = v;
    }
    if let Some(v) = c.allow_posting_from {
        cfg.allow_posting_from = split_list(&v);
    }
    if let Some(v) = c.allow_cors {
        cfg.allow_cors = split_list(&v);
    }
    if let Some(v) = c.validate_requests {
        cfg.validate_requests = v;
    }
    if let Some(v) = c.enforce_https {
        cfg.enforce_https = v;
    }
    if let Some(v) = c.http_scheme {
        cfg.http_scheme = v;
    }
    if let Some(v) = c.log_level {
        cfg.log_level = v;
    }
    let h = cli.herald;
    if let Some(n) = h.shards {
        cfg.shards = usize::from(n);
    }
    cfg.echo_path = h.echo_path;
    cfg.strict |= h.strict;
    cfg.pushi.enabled |= h.pushi;
    cfg.pushi.persist_history |= h.persist_history;
    if let Some(d) = h.data_dir {
        cfg.pushi.data_dir = d;
    }
    cfg.deflate.enabled |= h.ws_deflate;
    cfg.deflate.min_bytes = h.ws_deflate_min_bytes;
    if let Some(s) = h.pusher_activity_timeout {
        cfg.pusher_activity_timeout = Duration::from_secs(s);
    }
    if let Some(s) = h.pusher_pong_timeout {
        cfg.pusher_pong_timeout = Duration::from_secs(s);
    }
    if let (Some(cert), Some(key)) = (h.tls_cert, h.tls_key) {
        cfg.tls = Some(TlsFiles { cert, key });
    }
    if let Some(u) = h.cluster {
        cfg.cluster = Some(u);
    }
    if let Some(id) = h.node_id.filter(|s| !s.is_empty()) {
        cfg.node_id = id;
    }
    let l = cli.limits;
    cfg.limits = Limits {
        max_connections_per_shard: l.max_connections,
        max_connections_total: l.max_connections_total,
        max_pending_handshakes: l.max_pending_handshakes,
        max_channels_per_connection: l.max_channels_per_connection,
        max_head_bytes: l.max_head_bytes,
        max_headers: l.max_headers,
        max_body_bytes: l.max_body_bytes,
        max_ws_message_bytes: l.max_ws_message_bytes,
        max_queued_bytes: l.max_queued_bytes,
        header_timeout: Duration::from_secs(l.header_timeout_secs),
        keep_alive_timeout: Duration::from_secs(l.idle_timeout_secs),
    };
}
