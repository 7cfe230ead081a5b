//! Pusher socket ids: `"<base + shard>.<n>"`, where `n` packs the socket's slot and
//! generation and `base` is a multiple of [`SHARDS_PER_BASE`] naming this node's run: drawn at
//! random once per process ([`process_base`]), or in cluster mode derived from the node's
//! incarnation ([`node_base`]).
//!
//! Why derived from the `SockRef` instead of a random number: the HTTP API names the socket
//! to exclude from a publish by its socket id, and the owner shard of a channel must compare
//! it with its subscribers' `SockRef`s without a lookup table on any shard. The generation
//! makes ids unique over time even when a slot is reused; the base makes them unique across
//! restarts, so a backend still holding an id from the previous process (a rolling restart:
//! pusher-js reconnects at once) excludes nobody instead of a stranger, and, in cluster mode,
//! across nodes: a node that receives another node's publish excludes the socket only if the
//! id's base is its own. Clients and SDKs only require the form `\d+\.\d+`.

use crate::ids::SockRef;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// How many shard numbers one base spans (more than any shard count).
pub const SHARDS_PER_BASE: u32 = 1024;

/// Bases are below 2^31.
const BASES: u32 = (1 << 31) / SHARDS_PER_BASE;

/// A socket of the cluster: its node's base and the socket there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketId {
    /// The base of the node (run) the socket is on.
    pub node: u32,
    /// The socket on that node.
    pub sock: SockRef,
}

/// This process's base: a random multiple of [`SHARDS_PER_BASE`] below 2^31.
pub fn process_base() -> u32 {
    static BASE: OnceLock<u32> = OnceLock::new();
    *BASE.get_or_init(|| {
        // std's RandomState is seeded from the OS's random source once per process.
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        (r as u32 % BASES) * SHARDS_PER_BASE
    })
}

/// The base of a cluster node from its tag (`cluster::node_tag` of its incarnation): the same
/// on every node, so any node can tell whose socket an id names.
pub fn node_base(tag: u32) -> u32 {
    (tag % BASES) * SHARDS_PER_BASE
}

/// The socket id of `sock` on the node whose base is `base`.
pub fn format(base: u32, sock: SockRef) -> String {
    let n = (u64::from(sock.gen.0) << 32) | u64::from(sock.slot.0);
    format!("{}.{n}", u64::from(base) + u64::from(sock.shard.0))
}

/// The socket a socket id names, with its node's base, if it has our form.
pub fn parse(id: &str) -> Option<SocketId> {
    let (prefix, n) = id.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(prefix) || !ok(n) {
        return None;
    }
    let prefix = prefix.parse::<u32>().ok().filter(|p| *p < 1 << 31)?;
    let node = prefix / SHARDS_PER_BASE * SHARDS_PER_BASE;
    let shard = u16::try_from(prefix % SHARDS_PER_BASE).ok()?;
    let n: u64 = n.parse().ok()?;
    let slot = u32::try_from(n & u64::from(u32::MAX)).ok()?;
    let gen = u32::try_from(n >> 32).ok()?;
    Some(SocketId {
        node,
        sock: SockRef::new(shard, slot, gen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            SockRef::new(0, 0, 0),
            SockRef::new(3, 17, 2),
            SockRef::new(1, u32::MAX, u32::MAX),
        ] {
            for node in [0, SHARDS_PER_BASE, process_base(), node_base(u32::MAX)] {
                assert_eq!(parse(&format(node, s)), Some(SocketId { node, sock: s }));
            }
        }
        let b = process_base();
        assert_eq!(format(b, SockRef::new(1, 5, 0)), format!("{}.5", b + 1));
        assert_eq!(format(SHARDS_PER_BASE, SockRef::new(1, 5, 0)), "1025.5");
        // another process's id (another base) names none of ours
        let other = b.wrapping_add(SHARDS_PER_BASE) % (1 << 31);
        assert_ne!(parse(&format!("{other}.5")).map(|s| s.node), Some(b));
        assert_eq!(node_base(7), 7 * SHARDS_PER_BASE);
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.-1",
            "1.2.3",
            "2147483648.1",
            "99999999999.1",
            "1.99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
