//! Graceful shutdown on SIGTERM/SIGINT: the first signal asks every shard to drain (stop
//! accepting, finish in-flight HTTP responses, close websockets with 1001); a second signal
//! exits at once.

use crate::shard::Shared;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;

/// Block until the first SIGTERM/SIGINT, start the drain, and arm the second-signal exit.
/// Returns so the caller can join the shard threads.
pub fn wait_for_shutdown(shared: &Arc<Shared>) {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return;
        }
    };
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
