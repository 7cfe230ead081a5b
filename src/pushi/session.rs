//! Pushi REST sessions (`/login` → `{"token": sid}`), without a table shared by the shards.
//!
//! Why signed tokens: any shard may receive the next request of a session, and shards share
//! nothing. A sid is 64 hex digits — the app's index (4), a random nonce (28) and an
//! HMAC-SHA256 (32, truncated) of both under a key drawn at start — so every shard checks it
//! alone. The key lives only in memory: sessions end with the process (as Pushi's in-memory
//! appier sessions do). `/logout` revokes a sid by telling every shard (`PushiMsg::Revoke`);
//! each keeps a bounded set of revoked sids.

use crate::pusher::apps::AppIdx;
use crate::pusher::sign::{ct_eq, hex, hmac_hex};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Revoked sids remembered per shard (the oldest is forgotten beyond: a forgotten revoked
/// sid would be valid again, so this is large).
pub const MAX_REVOKED: usize = 100_000;

/// Signs and checks sids (one key per process, shared read-only).
#[derive(Clone, Debug)]
pub struct Sessions {
    key: Arc<[u8; 32]>,
    revoked: HashSet<Box<str>>,
    order: VecDeque<Box<str>>,
}

impl Sessions {
    /// Sessions under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Sessions {
            key: Arc::new(key),
            revoked: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// A fresh random key.
    pub fn random_key() -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k
    }

    /// A new sid for `app`.
    pub fn issue(&self, app: AppIdx) -> String {
        let nonce = hex(&uuid::Uuid::new_v4().as_bytes()[..14]);
        let head = format!("{app:04x}{nonce}");
        let mac = hmac_hex(&self.key[..], head.as_bytes());
        format!("{head}{}", mac.get(..32).unwrap_or(""))
    }

    /// The app of a valid, unrevoked sid.
    pub fn check(&self, sid: &str) -> Option<AppIdx> {
        if sid.len() != 64 || !sid.is_ascii() || self.revoked.contains(sid) {
            return None;
        }
        let (head, mac) = sid.split_at(32);
        let want = hmac_hex(&self.key[..], head.as_bytes());
        if !ct_eq(want.get(..32)?.as_bytes(), mac.as_bytes()) {
            return None;
        }
        u16::from_str_radix(head.get(..4)?, 16).ok()
    }

    /// Forget `sid` on this shard.
    pub fn revoke(&mut self, sid: &str) {
        if self.revoked.insert(sid.into()) {
            self.order.push_back(sid.into());
            if self.order.len() > MAX_REVOKED {
                if let Some(old) = self.order.pop_front() {
                    self.revoked.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_checked_without_a_table_and_revocable() {
        let mut s = Sessions::new(Sessions::random_key());
        let sid = s.issue(3);
        assert_eq!(sid.len(), 64);
        assert_eq!(s.check(&sid), Some(3));
        let other = Sessions::new(Sessions::random_key());
        assert_eq!(other.check(&sid), None, "another process's key");
        let mut forged = sid.clone().into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.check(std::str::from_utf8(&forged).unwrap()), None);
        assert_eq!(s.check("short"), None);
        s.revoke(&sid);
        assert_eq!(s.check(&sid), None);
    }
}
