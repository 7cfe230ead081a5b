//! RFC 6455 frames, server side: a pure header decoder over `&[u8]`, an [`Assembler`] that turns
//! the bytes a client sent into complete [`Event`]s, and encoders that build each server frame
//! once as a `Bytes` so a broadcast can clone it to every subscriber without copying.
//!
//! Why our own codec rather than tungstenite: the reactor owns the socket and a `BytesMut` read
//! buffer per connection, and wants (a) no intermediate copies of client payloads — the
//! assembler unmasks in place and hands out `split_to(..).freeze()` slices of that buffer — and
//! (b) encoded frames as `Bytes` it can share. tungstenite stays a dev-dependency and is used in
//! the tests as an independent client to cross-check both directions.
//!
//! One concern per file: [`frame`] (header decode/encode, opcodes), [`mask`], [`utf8`]
//! (incremental validation), [`assembler`] (frames → events), [`close`] ([`CloseCode`], close
//! payloads) and [`encode`] (server frames as `Bytes`).
//!
//! Invariants and policy:
//! * No extensions are negotiated, so any RSV bit is a protocol error ([`CloseCode::Protocol`]).
//! * Client frames must be masked (RFC 6455 §5.1); server frames are never masked.
//! * Errors are sticky: once `next_event` returned `Err`, it keeps returning that error. The
//!   reactor answers with a close frame carrying [`WsError::close_code`] and closes.
//! * Failing fast (Autobahn 6.4.x): text payload is validated as it arrives, even inside a
//!   frame whose tail is still on the wire, and a message that would exceed `max_message` is
//!   rejected as soon as its header is seen, before any of its payload is buffered.
//! * After a Close event the assembler is finished: it returns `Ok(None)` and consumes nothing
//!   more (RFC 6455 §5.5.1: no data after a close).

pub mod assembler;
pub mod close;
pub mod encode;
pub mod frame;
pub mod mask;
pub mod utf8;

#[cfg(test)]
mod fixtures;

pub use assembler::Assembler;
pub use close::{CloseCode, MAX_CLOSE_REASON};
pub use encode::{
    encode_close, encode_close_reply, encode_frame, encode_frame_into, encode_masked, encode_text,
};
pub use frame::{
    decode_header, header_len, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
pub use mask::{apply_mask, apply_mask_at};

use bytes::Bytes;

/// Why a websocket stream was refused; each maps to a close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A violation of RFC 6455 framing rules (close 1002); the text says which.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message, or a close reason, that is not valid UTF-8 (close 1007).
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    /// A message larger than `max_ws_message_bytes` (close 1009).
    #[error("message too big")]
    TooBig,
}

impl WsError {
    /// The close code to send for this error (1002, 1007, 1009).
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::Protocol(_) => CloseCode::Protocol,
            WsError::InvalidUtf8 => CloseCode::Invalid,
            WsError::TooBig => CloseCode::Size,
        }
    }
}

/// A complete event for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete text message; its UTF-8 has been validated.
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A complete compressed message (permessage-deflate, RSV1): still deflated and, for text,
    /// not yet UTF-8-checked; the receiver inflates it (`proto::deflate`) and checks it then.
    Deflated {
        /// A text message (else binary).
        text: bool,
        /// The compressed payload of all its frames, without the 4-byte trailer.
        payload: Bytes,
    },
    /// A ping with its payload (at most 125 bytes).
    Ping(Bytes),
    /// A pong with its payload (at most 125 bytes).
    Pong(Bytes),
    /// `code` is None for an empty close payload.
    Close {
        /// The status code from the payload's first two bytes.
        code: Option<CloseCode>,
        /// The close reason, valid UTF-8, possibly empty.
        reason: Bytes,
    },
}
