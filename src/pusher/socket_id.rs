//! Pusher socket ids: `"<shard>.<n>"`, where `n` packs the socket's slot and generation.
//!
//! Why derived from the `SockRef` instead of a random number: the HTTP API names the socket
//! to exclude from a publish by its socket id, and the owner shard of a channel must compare
//! it with its subscribers' `SockRef`s without a lookup table on any shard. The generation
//! makes ids unique over time even when a slot is reused. Clients and SDKs only require the
//! form `\d+\.\d+`.

use crate::ids::SockRef;

/// The socket id of `sock`.
pub fn format(sock: SockRef) -> String {
    let n = (u64::from(sock.gen.0) << 32) | u64::from(sock.slot.0);
    format!("{}.{n}", sock.shard.0)
}

/// The socket a socket id names, if it is one of ours.
pub fn parse(id: &str) -> Option<SockRef> {
    let (shard, n) = id.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(shard) || !ok(n) {
        return None;
    }
    let shard: u16 = shard.parse().ok()?;
    let n: u64 = n.parse().ok()?;
    let slot = u32::try_from(n & u64::from(u32::MAX)).ok()?;
    let gen = u32::try_from(n >> 32).ok()?;
    Some(SockRef::new(shard, slot, gen))
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
            assert_eq!(parse(&format(s)), Some(s));
        }
        assert_eq!(format(SockRef::new(1, 5, 0)), "1.5");
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.-1",
            "1.2.3",
            "70000.1",
            "1.99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
