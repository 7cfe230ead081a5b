//! Pusher socket ids: `"<prefix>.<n>"`, where `n` packs the socket's slot and generation and
//! `prefix` is the shard, plus the node's tag shifted left by 16 in cluster mode.
//!
//! Why derived from the `SockRef` instead of a random number: the HTTP API names the socket
//! to exclude from a publish by its socket id, and the owner shard of a channel must compare
//! it with its subscribers' `SockRef`s without a lookup table on any shard. The generation
//! makes ids unique over time even when a slot is reused. In cluster mode the node tag
//! (`cluster::node_tag`, never 0) makes them unique over nodes, so a node that receives a
//! publish from another one excludes the socket only if the id names one of its own; a single
//! node (tag 0) keeps the plain `"<shard>.<n>"`. Clients and SDKs only require `\d+\.\d+`.

use crate::ids::SockRef;

/// A socket of the cluster: the node's tag (0: not clustered) and the socket there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketId {
    /// The node's tag.
    pub node: u32,
    /// The socket on that node.
    pub sock: SockRef,
}

/// The socket id of `sock` on the node tagged `node`.
pub fn format(node: u32, sock: SockRef) -> String {
    let n = (u64::from(sock.gen.0) << 32) | u64::from(sock.slot.0);
    let prefix = (u64::from(node) << 16) | u64::from(sock.shard.0);
    format!("{prefix}.{n}")
}

/// The socket a socket id names, if it has our form.
pub fn parse(id: &str) -> Option<SocketId> {
    let (prefix, n) = id.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(prefix) || !ok(n) {
        return None;
    }
    let prefix: u64 = prefix.parse().ok()?;
    let node = u32::try_from(prefix >> 16).ok()?;
    let shard = (prefix & 0xffff) as u16;
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
            for node in [0, 1, u32::MAX] {
                assert_eq!(parse(&format(node, s)), Some(SocketId { node, sock: s }));
            }
        }
        assert_eq!(format(0, SockRef::new(1, 5, 0)), "1.5");
        assert_eq!(format(1, SockRef::new(1, 5, 0)), "65537.5");
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.-1",
            "1.2.3",
            "281474976710656.1",
            "1.99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
