//! The `Date` header value, formatted once per second per shard instead of per response.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current `Date` value, refreshed once per loop turn.
#[derive(Default)]
pub struct DateCache {
    secs: u64,
    value: Vec<u8>,
}

impl DateCache {
    /// Re-format if the second changed.
    pub fn refresh(&mut self) {
        let now = unix_now();
        if now != self.secs || self.value.is_empty() {
            self.secs = now;
            self.value = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .into_bytes();
        }
    }

    /// The value (`Sun, 06 Dec 2026 21:00:00 GMT`).
    pub fn get(&self) -> &[u8] {
        &self.value
    }
}

/// Unix time in whole seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
