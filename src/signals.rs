//! Graceful shutdown on SIGTERM/SIGINT: the first signal asks every shard to drain (stop
//! accepting, finish in-flight HTTP responses and long polls, close websockets with 1001); a
//! second signal exits at once.
//!
//! Handlers are installed before any listener is bound, so a signal that arrives during
//! start-up is never the default "terminate now".

use crate::shard::Shared;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;

/// Take over SIGTERM and SIGINT. Call before starting the shards.
pub fn install() -> std::io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM])
}

/// Block until the first signal, start the drain, and arm the second-signal exit. Returns so
/// the caller can join the shard threads.
pub fn wait_for_shutdown<M>(mut signals: Signals, shared: &Arc<Shared<M>>) {
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down: draining connections");
        shared.request_shutdown();
    }
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    });
}
