//! The Pusher dialect's counters in `/metrics` (summed over shards by the core).
//!
//! Why here and not per app yet: `Dialect::counters` is a static list of names without
//! labels, so these are totals over all apps; an `app` label needs the core's counter
//! definitions to carry label values known at start (see ARCHITECTURE, "Pusher metrics").

use crate::dialect::{CounterDef, Outbox};

/// A Pusher counter (its index in [`defs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Channels with subscribers on their owner shard (a gauge).
    Channels,
    /// Open Pusher websockets (a gauge).
    Connections,
    /// Frames received from Pusher websockets.
    MessagesIn,
    /// Channel event frames sent to subscribers (one per recipient).
    MessagesOut,
    /// Websockets refused at open (unknown app 4001, disabled 4003, bad or no protocol 4006-4008).
    RefusedSockets,
    /// HTTP API requests refused 401 (signature, key, timestamp, body_md5).
    ApiUnauthorized,
    /// HTTP API requests refused 403 (app disabled).
    ApiDisabled,
    /// HTTP API requests refused 404 (unknown app or route).
    ApiNotFound,
    /// HTTP API requests refused 400 or 405 (bad request, limits on channels and batches).
    ApiBadRequest,
    /// HTTP API requests refused 413 (event data over the app's limit).
    ApiTooLarge,
}

const ALL: [(Counter, &str, &str, &str); 10] = [
    (
        Counter::Channels,
        "herald_pusher_channels",
        "gauge",
        "Pusher channels with subscribers, on their owner shards",
    ),
    (
        Counter::Connections,
        "herald_pusher_connections",
        "gauge",
        "Open Pusher websockets",
    ),
    (
        Counter::MessagesIn,
        "herald_pusher_messages_in_total",
        "counter",
        "Frames received from Pusher websockets",
    ),
    (
        Counter::MessagesOut,
        "herald_pusher_messages_out_total",
        "counter",
        "Channel event frames sent to Pusher subscribers (one per recipient)",
    ),
    (
        Counter::RefusedSockets,
        "herald_pusher_sockets_refused_total",
        "counter",
        "Pusher websockets refused at open (4001 unknown app, 4003 disabled, 4006-4008 protocol)",
    ),
    (
        Counter::ApiUnauthorized,
        "herald_pusher_api_unauthorized_total",
        "counter",
        "Pusher HTTP API requests refused 401",
    ),
    (
        Counter::ApiDisabled,
        "herald_pusher_api_disabled_total",
        "counter",
        "Pusher HTTP API requests refused 403 (app disabled)",
    ),
    (
        Counter::ApiNotFound,
        "herald_pusher_api_not_found_total",
        "counter",
        "Pusher HTTP API requests refused 404 (unknown app or route)",
    ),
    (
        Counter::ApiBadRequest,
        "herald_pusher_api_bad_request_total",
        "counter",
        "Pusher HTTP API requests refused 400 or 405",
    ),
    (
        Counter::ApiTooLarge,
        "herald_pusher_api_too_large_total",
        "counter",
        "Pusher HTTP API requests refused 413 (event data over the app's limit)",
    ),
];

/// The counter definitions, in index order.
pub fn defs() -> Vec<CounterDef> {
    ALL.iter()
        .map(|(_, name, kind, help)| CounterDef { name, kind, help })
        .collect()
}

/// This shard's values.
#[derive(Debug, Default)]
pub struct Stats {
    values: [u64; ALL.len()],
}

impl Stats {
    /// Set a gauge and publish it.
    pub fn set<M>(&mut self, out: &mut dyn Outbox<M>, c: Counter, v: u64) {
        let i = c as usize;
        if let Some(slot) = self.values.get_mut(i) {
            *slot = v;
            out.set_counter(i, v);
        }
    }

    /// Add to a counter (or a gauge, negative through [`Stats::sub`]) and publish it.
    pub fn add<M>(&mut self, out: &mut dyn Outbox<M>, c: Counter, n: u64) {
        let v = self.get(c).saturating_add(n);
        self.set(out, c, v);
    }

    /// Take from a gauge and publish it.
    pub fn sub<M>(&mut self, out: &mut dyn Outbox<M>, c: Counter, n: u64) {
        let v = self.get(c).saturating_sub(n);
        self.set(out, c, v);
    }

    /// The current value.
    pub fn get(&self, c: Counter) -> u64 {
        self.values.get(c as usize).copied().unwrap_or(0)
    }

    /// Count an HTTP API refusal by its status.
    pub fn api_status<M>(&mut self, out: &mut dyn Outbox<M>, status: u16) {
        let c = match status {
            401 => Counter::ApiUnauthorized,
            403 => Counter::ApiDisabled,
            404 => Counter::ApiNotFound,
            400 | 405 => Counter::ApiBadRequest,
            413 => Counter::ApiTooLarge,
            _ => return,
        };
        self.add(out, c, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_definitions() {
        for (i, (c, ..)) in ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        assert_eq!(defs()[0].name, "herald_pusher_channels");
    }
}
