//! Cluster mode: several Herald nodes behind a load balancer, joined through a Redis (or
//! Valkey) backplane (`--cluster redis://HOST:PORT[/DB]`).
//!
//! Why a separate core module: the backplane is shared by every dialect, and the reactor must
//! stay free of blocking I/O. One **bridge thread** per node (`bridge.rs`, not a shard) owns
//! the two Redis connections (a subscriber connection and a command connection) and is the
//! only code that touches Redis; shards hand it commands through a bounded lock-free queue
//! (`Backplane`, `backplane.rs`) and never wait for it; it hands what Redis sends back to the
//! shards that subscribed, through their inboxes, as `ShardMsg::Cluster(Incoming)` — a core
//! message the reactor passes to `Dialect::on_cluster` without reading it.
//!
//! This file holds the pure parts: the configuration value and its URL parser, the node tag
//! that makes socket ids unique over nodes, the envelope every published message carries
//! (the origin node's id, so the origin never delivers its own message twice), and the
//! `Incoming` message. Without `--cluster` none of this is built and Redis is never touched.

pub mod backplane;
mod bridge;

pub use backplane::{Backplane, Bridge, Refused, Sink};

use bytes::Bytes;
use std::fmt;

/// Where the backplane is and who this node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis server.
    pub url: RedisUrl,
    /// This node's id (`--node-id`, else random at start): the origin of what it publishes.
    pub node_id: String,
}

/// `redis://HOST:PORT[/DB]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (6379 when absent).
    pub port: u16,
    /// Database number (0 when absent); also part of every channel name, since Redis
    /// pub/sub channels are not per database.
    pub db: u32,
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

/// Parse `redis://HOST[:PORT][/DB]` (also `valkey://`). User names, passwords and TLS are not
/// supported yet: refused with a message rather than ignored.
pub fn parse_url(s: &str) -> Result<RedisUrl, &'static str> {
    let rest = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("valkey://"))
        .ok_or("expected redis://HOST:PORT[/DB]")?;
    if rest.contains('@') {
        return Err("credentials in the URL are not supported yet");
    }
    let (hostport, db) = match rest.split_once('/') {
        Some((hp, "")) => (hp, 0),
        Some((hp, db)) => (hp, db.parse::<u32>().map_err(|_| "bad database number")?),
        None => (rest, 0),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| "bad port")?)
        }
        _ => (hostport, 6379),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host");
    }
    if port == 0 {
        return Err("bad port");
    }
    Ok(RedisUrl {
        host: host.to_owned(),
        port,
        db,
    })
}

/// A random node id (12 hex digits of a uuid4).
pub fn random_node_id() -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(12);
    s
}

/// The 32-bit tag of a node's id or incarnation, from which Pusher derives the base of its
/// socket ids (`pusher::socket_id::node_base`), so that a `socket_id` names one socket in the
/// whole cluster. FNV-1a: stable over builds and nodes; never 0.
pub fn node_tag(node_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in node_id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// Envelope version byte.
const ENVELOPE_V1: u8 = 1;

/// Wrap `payload` for the backplane: `[1][origin length][origin][payload]`.
pub fn encode_envelope(origin: &str, payload: &[u8]) -> Vec<u8> {
    let b = origin.as_bytes();
    let o = b.get(..b.len().min(255)).unwrap_or_default();
    let mut v = Vec::with_capacity(2 + o.len() + payload.len());
    v.push(ENVELOPE_V1);
    v.push(o.len() as u8);
    v.extend_from_slice(o);
    v.extend_from_slice(payload);
    v
}

/// Split an envelope into (origin, payload); `None` if it is not one (ignored, counted).
pub fn decode_envelope(msg: &Bytes) -> Option<(&[u8], Bytes)> {
    let (&v, rest) = msg.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if v != ENVELOPE_V1 || rest.len() < usize::from(n) {
        return None;
    }
    let origin = rest.get(..usize::from(n))?;
    Some((origin, msg.slice(2 + usize::from(n)..)))
}

/// A Redis answer, as handed to the shard that asked (`Backplane::eval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Nil.
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or simple string.
    Bulk(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// A Redis error, or the link was lost before the answer (`"link lost"`).
    Error(String),
}

/// What the bridge hands a shard (boxed in `ShardMsg::Cluster`).
#[derive(Debug)]
pub enum Incoming {
    /// A message another node published on a channel this shard subscribed to.
    Message {
        /// The Redis channel.
        topic: Bytes,
        /// What the publisher's dialect put in (the envelope removed).
        payload: Bytes,
    },
    /// The answer to `Backplane::eval` number `id`.
    Reply {
        /// From `Backplane::eval`.
        id: u64,
        /// Redis's answer.
        value: Value,
    },
    /// The subscription asked with this sequence number is in place (Redis confirmed it, or
    /// the backplane is down and it will be made on reconnect).
    Subscribed {
        /// The Redis channel.
        topic: Bytes,
        /// From `Backplane::subscribe`.
        seq: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 2));
        let u = parse_url("redis://localhost").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("localhost", 6379, 0));
        let u = parse_url("valkey://[::1]:7000/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 0));
        for bad in [
            "http://x",
            "redis://",
            "redis://h:0",
            "redis://h:x",
            "redis://h/x",
            "redis://u:p@h",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn envelope_round_trip_and_garbage() {
        let e = Bytes::from(encode_envelope("node-a", b"payload"));
        let (o, p) = decode_envelope(&e).unwrap();
        assert_eq!((o, &p[..]), (&b"node-a"[..], &b"payload"[..]));
        for bad in [&b""[..], b"\x01", b"\x02\x00", b"\x01\x09abc"] {
            assert!(decode_envelope(&Bytes::copy_from_slice(bad)).is_none());
        }
        // An origin that is not UTF-8 (found by the fuzzer) is handed back as raw bytes.
        let raw = Bytes::from_static(b"\x01\x03\xf1\xa2\xa2body");
        let (o, p) = decode_envelope(&raw).unwrap();
        assert_eq!((o, &p[..]), (&b"\xf1\xa2\xa2"[..], &b"body"[..]));
    }

    #[test]
    fn tags_are_stable_and_never_zero() {
        assert_eq!(node_tag("a"), node_tag("a"));
        assert_ne!(node_tag("a"), node_tag("b"));
        assert_ne!(node_tag(""), 0);
        assert_eq!(random_node_id().len(), 12);
    }
}
