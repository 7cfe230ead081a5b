//! Herald: a websocket push server, wire-compatible with Channelstream 0.7.1.
//!
//! See `ARCHITECTURE.md` for the thread model and the data flow of one publish. In short:
//! one single-threaded mio reactor per core (`shard`), each with its own SO_REUSEPORT listener
//! and slab of connections; pure parsers in `proto` (HTTP head/body, RFC 6455 frames); the
//! Channelstream model (`model`) is a pure state machine that owns users, channels and
//! connection records and turns commands into effects (replies, deliveries, closes); shards
//! talk only through bounded inboxes woken by a `mio::Waker`.
//!
//! Dependency direction: `proto`, `auth`, `config`, `py`, `api::{schema,types,router}` are
//! pure (no mio, no shard); `model` knows only ids and `Bytes`; `conn` knows one socket;
//! `shard` wires everything together.
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
pub mod py;
pub mod server;
pub mod shard;
pub mod signals;
