//! Configuration: Channelstream's `[channelstream]` ini file and `CHANNELSTREAM_*` variables,
//! plus Herald's own flags; parsed once at start and shared read-only.
//! STUB: owned by the auth/config work; the fields below are the contract.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    // --- Channelstream keys (§2.2 of the spec) ---
    pub debug: bool,
    pub log_level: String,
    pub host: String,
    pub port: u16,
    pub secret: String,
    pub admin_user: String,
    pub admin_secret: String,
    pub cookie_secret: String,
    pub allow_posting_from: Vec<String>,
    pub allow_cors: Vec<String>,
    pub validate_requests: bool,
    pub enforce_https: bool,
    pub http_scheme: String,
    // --- Herald ---
    pub shards: usize,
    /// Serve a websocket echo on this path (Autobahn conformance); off by default.
    pub echo_path: Option<String>,
    pub limits: Limits,
}

/// Resource limits; each has a stated behaviour when hit (see README).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections_per_shard: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    pub max_ws_message_bytes: usize,
    pub max_queued_bytes: usize,
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_shard: 100_000,
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
            host: "127.0.0.1".into(),
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
            limits: Limits::default(),
        }
    }
}

impl Config {
    pub fn listen_addr(&self) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for host"))
    }
}
