//! Pusher socket ids: `"<base + shard>.<n>"`, where `n` packs the socket's slot and
//! generation and `base` is a random multiple of [`SHARDS_PER_BASE`] drawn once per process.
//!
//! Why derived from the `SockRef` instead of a random number: the HTTP API names the socket
//! to exclude from a publish by its socket id, and the owner shard of a channel must compare
//! it with its subscribers' `SockRef`s without a lookup table on any shard. The generation
//! makes ids unique over time even when a slot is reused; the per-process base makes them
//! unique across restarts, so a backend still holding an id from the previous process (a
//! rolling restart: pusher-js reconnects at once) excludes nobody instead of a stranger.
//! Clients and SDKs only require the form `\d+\.\d+`.

use crate::ids::SockRef;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// How many shard numbers one process's base spans (more than any shard count).
pub const SHARDS_PER_BASE: u32 = 1024;

/// This process's base: a random multiple of [`SHARDS_PER_BASE`] below 2^31.
fn base() -> u32 {
    static BASE: OnceLock<u32> = OnceLock::new();
    *BASE.get_or_init(|| {
        // std's RandomState is seeded from the OS's random source once per process.
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        (r as u32 % ((1 << 31) / SHARDS_PER_BASE)) * SHARDS_PER_BASE
    })
}

/// The socket id of `sock`.
pub fn format(sock: SockRef) -> String {
    let n = (u64::from(sock.gen.0) << 32) | u64::from(sock.slot.0);
    format!("{}.{n}", base() + u32::from(sock.shard.0))
}

/// The socket a socket id names, if it is one of ours.
pub fn parse(id: &str) -> Option<SockRef> {
    let (shard, n) = id.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(shard) || !ok(n) {
        return None;
    }
    let shard = shard.parse::<u32>().ok()?.checked_sub(base())?;
    if shard >= SHARDS_PER_BASE {
        return None; // another process's socket
    }
    let shard = u16::try_from(shard).ok()?;
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
        assert_eq!(format(SockRef::new(1, 5, 0)), format!("{}.5", base() + 1));
        // another process's id (another base) names none of ours
        let other = base().wrapping_add(SHARDS_PER_BASE) % (1 << 31);
        assert_eq!(parse(&format!("{other}.5")), None);
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.-1",
            "1.2.3",
            "70000.1",
            "99999999999.1",
            "1.99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
