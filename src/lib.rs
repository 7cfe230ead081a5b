//! Herald: a websocket push server, wire-compatible with Channelstream 0.7.1.
//!
//! See `ARCHITECTURE.md` for the thread model, the dialect seam, the connection lifecycle and
//! the data flow of one publish. In short: one single-threaded mio reactor per core (`shard`),
//! each with its own SO_REUSEPORT listener and slab of connection state machines (`conn`);
//! pure parsers in `proto` (HTTP head/body, RFC 6455 frames); a wire dialect plugs into the
//! reactor through `dialect` — `channelstream`, whose model is a pure state machine
//! that turns commands into effects (replies, deliveries, closes); shards talk only through
//! bounded inboxes woken by a `mio::Waker`; and `pusher` (Pusher Channels protocol 7, first
//! slice) on the same port, its channel state sharded by channel hash.
//!
//! Dependency direction: `proto`, `auth`, `config`, `py`, `ids` are pure (no mio, no shard);
//! `dialect` is the seam and names no dialect; `conn` knows one socket; `shard` is the reactor
//! and never imports a dialect; `channelstream` and `pusher` never import `shard` or `conn`; `server`
//! wires the two together.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, deny(warnings))]
#![warn(missing_docs)]
// Nothing reachable from network bytes may panic: no unwrap/expect/panic and no unchecked
// indexing in the library (tests may).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod auth;
pub mod channelstream;
pub mod config;
pub mod conn;
pub mod dialect;
pub mod error;
pub mod ids;
pub mod mem;
pub mod net;
pub mod proto;
pub mod pusher;
pub mod pushi;
pub mod py;
pub mod server;
pub mod shard;
pub mod signals;
pub mod store;
pub mod tls;
