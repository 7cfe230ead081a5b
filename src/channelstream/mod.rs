//! The Channelstream 0.7.1 dialect: its REST and client API (`api`: routes, signatures,
//! marshmallow-shaped schemas, Python-identical JSON) and its model (`model`: users,
//! connections, channels, history, presence, timers), and `admin`, the embedded admin web app.
//!
//! Everything Channelstream-specific lives under this folder; the reactor (`shard`), the
//! connection state machines (`conn`) and the codecs (`proto`) know nothing of it.

pub mod admin;
pub mod api;
mod cluster;
mod cluster_wire;
pub mod dialect;
pub mod front;
pub mod model;
pub mod pages;
pub mod strict;

pub use dialect::{Channelstream, CsMsg};
