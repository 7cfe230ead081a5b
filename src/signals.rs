//! Signals: graceful shutdown on SIGTERM/SIGINT, certificate reload on SIGHUP.
//!
//! The first SIGTERM/SIGINT asks every shard to drain (stop accepting, finish in-flight HTTP
//! responses and long polls, close websockets with 1001); a second one exits at once.
//! SIGHUP re-reads every TLS listener's certificate and key on this (the main) thread, never
//! on a shard: each that loads is used for new handshakes, each that fails is logged and its
//! listener keeps the old one; open connections are untouched either way.
//!
//! Handlers are installed before any listener is bound, so a signal that arrives during
//! start-up is never the default "terminate now".

use crate::shard::Shared;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;

/// Take over SIGTERM, SIGINT and SIGHUP. Call before starting the shards.
pub fn install() -> std::io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM, SIGHUP])
}

/// SIGHUP: reload every certificate, logging the outcome.
pub fn reload_certificates<M>(shared: &Shared<M>) {
    if shared.tls.is_empty() {
        tracing::info!("SIGHUP: no TLS listener, nothing to reload");
        return;
    }
    let errors = shared.reload_tls();
    for e in &errors {
        tracing::error!(error = %e, "SIGHUP: certificate not reloaded, keeping the old one");
    }
    tracing::info!(
        reloaded = shared.tls.len() - errors.len(),
        failed = errors.len(),
        "SIGHUP: certificates reloaded for new handshakes"
    );
}

/// Block until the first SIGTERM/SIGINT (reloading certificates on each SIGHUP meanwhile),
/// start the drain, and arm the second-signal exit. Returns so the caller can join the shard
/// threads.
pub fn wait_for_shutdown<M: Send + Sync + 'static>(mut signals: Signals, shared: &Arc<Shared<M>>) {
    for sig in signals.forever() {
        if sig == SIGHUP {
            reload_certificates(shared);
            continue;
        }
        tracing::info!(signal = sig, "shutting down: draining connections");
        shared.request_shutdown();
        break;
    }
    std::thread::spawn(move || {
        if signals.forever().any(|s| s != SIGHUP) {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    });
}
