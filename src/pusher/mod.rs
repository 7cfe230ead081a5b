//! The Pusher Channels protocol 7 dialect: websockets on `/app/{key}` with public, private,
//! encrypted, presence and cache channels, client events, ping/pong, and the HTTP API.
//!
//! Why its own folder beside `channelstream`: it is a second wire dialect of the same reactor,
//! served on the same port through `dialect::Pair` (it claims `/app/` and `/apps/` paths).
//! Channel state is sharded by channel hash (`channels::owner`); `dialect.rs` routes
//! subscribes, unsubscribes, publishes and client events to the owner shard through
//! `Outbox::send`; the owner alone keeps subscribers (`channels`), presence members
//! (`presence`) and cached events (`cache`), and the socket's own shard checks signatures and
//! client-event rules (`sign`, `client_events`) before anything leaves it. The owner also
//! raises the app's webhooks (`webhooks`), which sender threads POST.

pub mod activity;
pub mod api;
pub mod app_metrics;
pub mod apps;
pub mod cache;
pub mod channels;
pub mod client_events;
pub mod dialect;
pub mod metrics;
pub mod presence;
pub mod protocol;
pub mod query;
pub mod sign;
pub mod socket_id;
pub mod users;
pub mod watchlist;
pub mod webhooks;

pub use dialect::{Pusher, PusherMsg, PusherSocket};
