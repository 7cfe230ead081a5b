//! RFC 6455 frames: pure decode over `&[u8]`, encode into `Bytes` once for broadcast.
//! STUB: owned by the websocket work; the signatures below are the contract.
#![allow(unused_variables, dead_code)]

use bytes::{Bytes, BytesMut};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    #[error("message too big")]
    TooBig,
}

impl WsError {
    /// The close code to send for this error (1002, 1007, 1009).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidUtf8 => 1007,
            WsError::TooBig => 1009,
        }
    }
}

/// A complete event for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// `code` is None for an empty close payload.
    Close {
        code: Option<u16>,
        reason: Bytes,
    },
}

/// Decode one frame header. `Ok(None)` = incomplete.
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, WsError> {
    todo!()
}

/// XOR `buf` with the mask, as if `buf` started at payload offset 0.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A complete unmasked server frame (FIN set), encoded once and shareable.
pub fn encode_frame(op: OpCode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    let opb: u8 = match op {
        OpCode::Continue => 0,
        OpCode::Text => 1,
        OpCode::Binary => 2,
        OpCode::Close => 8,
        OpCode::Ping => 9,
        OpCode::Pong => 10,
    };
    out.extend_from_slice(&[0x80 | opb]);
    let n = payload.len();
    if n < 126 {
        out.extend_from_slice(&[n as u8]);
    } else if n <= u16::MAX as usize {
        out.extend_from_slice(&[126]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[127]);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.freeze()
}

/// `encode_frame(OpCode::Text, payload)`.
pub fn encode_text(payload: &[u8]) -> Bytes {
    encode_frame(OpCode::Text, payload)
}

/// A close frame with a status code and reason.
pub fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    encode_frame(OpCode::Close, &p)
}

/// Reassembles messages from frames: validates masking, opcodes, fragmentation, control
/// frame rules, UTF-8 (incrementally, failing fast) and the message size limit.
#[derive(Debug)]
pub struct Assembler {
    max_message: usize,
}

impl Assembler {
    pub fn new(max_message: usize) -> Self {
        Assembler { max_message }
    }

    /// Consume bytes from the front of `buf` and return the next complete event, if any.
    pub fn next_event(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        todo!()
    }
}
