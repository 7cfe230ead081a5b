//! TLS termination on the reactor: rustls (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`),
//! so `wss://` and `https://` need no proxy in front of Herald.
//!
//! Why here and not in a proxy: one hop less per delivery, and the reactor already owns the
//! socket's readiness. The HTTP and websocket layers never learn whether a socket is TLS: a
//! connection's socket is a [`Stream`], plain TCP or a `rustls::ServerConnection` over it,
//! and both are just a `conn::Socket` (read, write, flush, shut down).
//!
//! * [`load_server_config`]: a PEM certificate chain and private key → a `ServerConfig`.
//! * [`CertStore`]: the listener's current `Arc<ServerConfig>` behind an `ArcSwap`. SIGHUP
//!   calls [`CertStore::reload`], which swaps in a freshly loaded config; a bad file is logged
//!   by the caller and the old config kept. Shards read the store at accept only, so existing
//!   connections keep the config they were accepted with.
//! * [`ShardTls`]: a shard's own copy of the current config, with a session cache of its own
//!   (rustls's default cache is shared behind a mutex; shards share nothing). A resumption
//!   that lands on another shard (SO_REUSEPORT hashes the 4-tuple) is a full handshake.
//! * [`stream`]: the non-blocking handshake and record layer driven by readiness.

pub mod stream;

pub use crate::config::TlsFiles;
pub use stream::{Stream, TlsStream};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Session-cache entries per shard (TLS 1.2 session ids and TLS 1.3 stateful tickets).
pub const SESSION_CACHE_PER_SHARD: usize = 1024;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file has no usable PEM section of the expected kind.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or malformed.
        what: String,
    },
    /// rustls refused the chain or the key (e.g. the key does not match the certificate).
    #[error("certificate {} with key {}: {source}", files.cert.display(), files.key.display())]
    Rustls {
        /// The files.
        files: TlsFiles,
        /// rustls's reason.
        source: rustls::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parse a PEM chain and key into certificate and key DER (pure: bytes in, DER out).
pub fn parse_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no CERTIFICATE section".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("bad key PEM: {e}"))?;
    Ok((chain, key))
}

/// Build a server config from a certificate chain and key: TLS 1.3 and 1.2 with ring's cipher
/// suites, no client authentication, ALPN `http/1.1` (a client offering only other protocols,
/// e.g. `h2` alone, is refused with `no_application_protocol`).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    // ring builds in seconds here; it has no post-quantum key exchange, which is why rustls
    // deprecated this constructor (aws-lc-rs has X25519MLKEM768: swapping providers is this
    // one line plus the Cargo feature).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Read `files` and build their server config.
pub fn load_server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let cert = read(&files.cert)?;
    let key = read(&files.key)?;
    let (chain, key) = parse_pem(&cert, &key).map_err(|what| TlsError::Pem {
        path: if what.contains("key") {
            files.key.clone()
        } else {
            files.cert.clone()
        },
        what,
    })?;
    server_config(chain, key).map_err(|source| TlsError::Rustls {
        files: files.clone(),
        source,
    })
}

/// One listener's certificate: the files it came from and the config built from them,
/// swapped whole by [`CertStore::reload`].
pub struct CertStore {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl CertStore {
    /// Load `files`; fails if they do not make a valid config.
    pub fn load(files: TlsFiles) -> Result<CertStore, TlsError> {
        let cfg = load_server_config(&files)?;
        Ok(CertStore {
            files,
            current: ArcSwap::from_pointee(cfg),
        })
    }

    /// The files this store reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Read the files again and, if they make a valid config, use it for new handshakes.
    /// On error the current config stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = load_server_config(&self.files)?;
        self.current.store(Arc::new(cfg));
        Ok(())
    }

    /// The config new handshakes use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }
}

/// A shard's view of a [`CertStore`]: its own copy of the current config with its own
/// session cache, refreshed at accept when the store's config changed.
pub struct ShardTls {
    store: Arc<CertStore>,
    source: Arc<ServerConfig>,
    local: Arc<ServerConfig>,
}

impl ShardTls {
    /// A shard's view of `store`.
    pub fn new(store: Arc<CertStore>) -> ShardTls {
        let source = store.current();
        let local = Arc::new(Self::localise(&source));
        ShardTls {
            store,
            source,
            local,
        }
    }

    fn localise(cfg: &ServerConfig) -> ServerConfig {
        let mut c = cfg.clone();
        c.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_PER_SHARD);
        c
    }

    /// A server-side TLS session for a socket accepted now (with the config current now).
    pub fn accept(&mut self) -> Result<rustls::ServerConnection, rustls::Error> {
        {
            let now = self.store.current.load();
            if !Arc::ptr_eq(&now, &self.source) {
                self.local = Arc::new(Self::localise(&now));
                self.source = arc_swap::Guard::into_inner(now);
            }
        }
        rustls::ServerConnection::new(self.local.clone())
    }
}

#[cfg(test)]
mod tests;
