//! The server as shipped: the reactor with the Channelstream dialect plugged in. `main` and
//! the integration tests start it from here; the reactor itself names no dialect.

use crate::channelstream::{Channelstream, CsMsg};
use crate::config::Config;
use crate::shard;
use mio::net::TcpListener;
use std::io;
use std::sync::Arc;

/// What the shards of this server share.
pub type Shared = shard::Shared<CsMsg>;
/// A started server.
pub type Running = shard::Running<CsMsg>;

/// Start the configured number of shards on the configured address.
pub fn spawn(cfg: Arc<Config>) -> io::Result<Running> {
    let dialect_cfg = cfg.clone();
    shard::spawn(cfg, move |id, _| {
        Channelstream::new(dialect_cfg.clone(), id)
    })
}

/// Start one shard per listener (tests: a port per shard puts a client on a chosen shard).
pub fn spawn_on(cfg: Arc<Config>, listeners: Vec<TcpListener>) -> io::Result<Running> {
    let dialect_cfg = cfg.clone();
    shard::spawn_on(cfg, listeners, move |id, _| {
        Channelstream::new(dialect_cfg.clone(), id)
    })
}
