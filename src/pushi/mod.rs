//! The Pushi 0.6.10 dialect (hivesolutions/pushi) on the Pusher core: websockets on
//! `/{anything}/{64-hex app key}`, Pushi's frames byte-for-byte, `personal-` alias channels
//! and `peer-` channels, free-form socket events with `echo`/`persist`, history
//! (`pusher:latest`), and Pushi's session-based REST API — with events, offline subscriptions,
//! per-user inboxes and web-hook subscriptions kept in the durable store (`crate::store`).
//!
//! Why its own folder beside `pusher`: the wire differs everywhere (socket ids, frames, auth
//! strings, channel kinds, REST), but the core is the same, so it reuses Pusher's app table
//! (`pusher::apps`, the same `[pusher_app:*]` configuration), channel owner hash and
//! subscriber registry (`pusher::channels`), presence member table (`pusher::presence`) and
//! signatures (`pusher::sign`). Served only in Pushi mode (`--pushi`), first in the server's
//! dialect pair, claiming its socket paths and REST routes (`rest::is_route`).
//!
//! Deliberate differences from Pushi: the app key is the last path segment *without* the
//! query string; errors are `pusher:error` frames (close 4001 for an unknown key) instead of a
//! dropped TCP connection; `pusher:ping` is answered with `pusher:pong`; apps come from
//! Herald's configuration (`POST /apps` needs the admin secret and returns the section to
//! add); a session sees only its own app.

pub mod answers;
pub mod dialect;
pub mod owner;
pub mod protocol;
pub mod rest;
pub mod session;
pub mod sockets;
pub mod webs;

pub use dialect::{Pushi, PushiMsg, PushiSocket, Token};
