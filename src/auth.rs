//! Server-API authentication: itsdangerous 1.1.0 `TimestampSigner` tokens and the IP allow-list.
//! STUB: owned by the auth/config work; the signatures below are the contract.
#![allow(unused_variables, dead_code)]

/// Why a token was refused (the server answers 401 `{"request": "Bad Signature"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("malformed token")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    #[error("signature expired")]
    Expired,
}

/// Signs and verifies with the derived key of one secret.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 20],
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        let _ = secret;
        Signer { key: [0; 20] }
    }

    /// `TimestampSigner(secret).sign(value)` at unix time `ts`.
    pub fn sign(&self, value: &str, ts: u64) -> String {
        todo!()
    }

    /// Verify a token received in `x-channelstream-secret` (or `?secret=`).
    pub fn verify(&self, token: &[u8], now: u64, max_age: Option<u64>) -> Result<(), BadSignature> {
        todo!()
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// `allow_posting_from`: `0.0.0.0` in the list allows every address; otherwise exact match
/// on the textual peer address.
pub fn ip_allowed(allow: &[String], peer: &std::net::IpAddr) -> bool {
    todo!()
}
