//! The RFC 6455 opening handshake: validate an upgrade request, compute the accept key.
//! STUB: owned by the websocket work; the signatures below are the contract.
#![allow(unused_variables)]

use super::http::RequestHead;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a websocket upgrade")]
    NotUpgrade,
    #[error("missing or invalid Sec-WebSocket-Key")]
    BadKey,
    #[error("unsupported Sec-WebSocket-Version")]
    BadVersion,
}

impl HandshakeError {
    /// 400, or 426 (with `Sec-WebSocket-Version: 13`) for a bad version / missing upgrade.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::NotUpgrade | HandshakeError::BadVersion => 426,
            HandshakeError::BadKey => 400,
        }
    }
}

/// Validate a websocket upgrade request; on success return the `Sec-WebSocket-Accept` value.
pub fn validate(head: &RequestHead, buf: &[u8]) -> Result<String, HandshakeError> {
    todo!()
}

/// Whether the request asks for a websocket upgrade at all (`Upgrade: websocket`).
pub fn is_upgrade(head: &RequestHead, buf: &[u8]) -> bool {
    todo!()
}

/// The 101 response, header order as the real Channelstream (ws4py) sends it.
pub fn response_101(accept: &str) -> Vec<u8> {
    todo!()
}
