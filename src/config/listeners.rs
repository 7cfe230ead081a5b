//! Where Herald listens: the main listener (`host`/`port`, optionally TLS with `tls_cert` and
//! `tls_key`) and extra listeners from `[listener:NAME]` ini sections, each with its own
//! address and, optionally, its own certificate.
//!
//! Why sections: Pushi's deployment model is one process with an app port (REST) and a
//! server port (websockets), each optionally with its own certificate; a listener is the
//! unit that carries both, and a later dialect can route by listener name. Every shard binds
//! every listener (SO_REUSEPORT), so extra listeners cost one socket per shard and no thread.
//! Keys of a `[listener:NAME]` section: `port` (required), `host` (the main `host` if
//! absent), `tls_cert` and `tls_key` (both or neither).

use super::ini::Ini;
use super::values::py_int;
use super::ConfigError;
use std::path::PathBuf;

/// The ini section prefix naming an extra listener.
pub const SECTION_PREFIX: &str = "listener:";

/// A certificate chain and its key, as PEM files (`--tls-cert`, `--tls-key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// An extra listener (a `[listener:NAME]` section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The section's NAME (for logs; a dialect may route by it later).
    pub name: String,
    /// Address to listen on; `None`: the main listener's host.
    pub host: Option<String>,
    /// Port (0: an ephemeral port, the same on every shard).
    pub port: u16,
    /// The listener's certificate, if it speaks TLS.
    pub tls: Option<TlsFiles>,
}

/// `tls_cert` and `tls_key` must come together.
pub(super) fn tls_pair(
    cert: Option<String>,
    key: Option<String>,
    section: &str,
) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = cert.filter(|s| !s.is_empty());
    let key = key.filter(|s| !s.is_empty());
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(c),
            key: PathBuf::from(k),
        })),
        _ => Err(ConfigError::Listener {
            section: section.to_owned(),
            reason: "tls_cert and tls_key must be given together",
        }),
    }
}

/// The extra listeners of `[listener:NAME]` sections, in file order.
pub(super) fn read(ini: &Ini) -> Result<Vec<ListenerConfig>, ConfigError> {
    let mut out = Vec::new();
    for section in ini.sections() {
        let Some(name) = section.strip_prefix(SECTION_PREFIX) else {
            continue;
        };
        let err = |reason| ConfigError::Listener {
            section: section.to_owned(),
            reason,
        };
        let get = |k: &str| ini.get(section, k).map_err(|_| err("bad interpolation"));
        let port = get("port")?.ok_or_else(|| err("port is required"))?;
        let port = py_int(&port)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| err("port: expected a port number (0-65535)"))?;
        let host = get("host")?.filter(|h| !h.is_empty());
        let tls = tls_pair(get("tls_cert")?, get("tls_key")?, section)?;
        out.push(ListenerConfig {
            name: name.to_owned(),
            host,
            port,
            tls,
        });
    }
    Ok(out)
}
