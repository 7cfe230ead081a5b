//! The Pusher Channels protocol 7 dialect (first slice): websockets on `/app/{key}` with
//! public and private channels, ping/pong, and the HTTP API's `POST /apps/{id}/events`.
//!
//! Why its own folder beside `channelstream`: it is a second wire dialect of the same reactor,
//! served on the same port through `dialect::Pair` (it claims `/app/` and `/apps/` paths).
//! Channel state is sharded by channel hash (`channels::owner`); `dialect.rs` routes
//! subscribes, unsubscribes and publishes to the owner shard through `Outbox::send`.

pub mod api;
pub mod app_metrics;
pub mod apps;
pub mod channels;
pub mod dialect;
pub mod metrics;
pub mod protocol;
pub mod query;
pub mod sign;
pub mod socket_id;

pub use dialect::{Pusher, PusherMsg, PusherSocket};
