//! Frames and drivers shared by the websocket codec's unit tests (compiled for tests only).

use super::{encode_masked, Assembler, Event, OpCode, WsError};
use bytes::{Bytes, BytesMut};

pub(super) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub(super) fn masked(op: OpCode, payload: &[u8], fin: bool) -> Vec<u8> {
    encode_masked(op, payload, MASK, fin)
}

/// Feed `input` whole and collect events until `Ok(None)` or an error.
pub(super) fn run(max: usize, input: &[u8]) -> (Vec<Event>, Option<WsError>, usize) {
    let mut asm = Assembler::new(max);
    let mut buf = BytesMut::from(input);
    let mut events = Vec::new();
    loop {
        match asm.next_event(&mut buf) {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None, buf.len()),
            Err(e) => return (events, Some(e), buf.len()),
        }
    }
}

/// Feed `input` in chunks of `chunk` bytes, draining events after each chunk.
pub(super) fn run_chunked(max: usize, input: &[u8], chunk: usize) -> (Vec<Event>, Option<WsError>) {
    let mut asm = Assembler::new(max);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match asm.next_event(&mut buf) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

pub(super) fn text(s: &str) -> Event {
    Event::Text(Bytes::copy_from_slice(s.as_bytes()))
}

/// An in-memory stream for tungstenite: reads from `input`, writes to `output`.
pub(super) struct Duplex {
    pub(super) input: std::io::Cursor<Vec<u8>>,
    pub(super) output: Vec<u8>,
}

impl std::io::Read for Duplex {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(b)
    }
}

impl std::io::Write for Duplex {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.output.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn tungstenite_client(input: Vec<u8>) -> tungstenite::WebSocket<Duplex> {
    let stream = Duplex {
        input: std::io::Cursor::new(input),
        output: Vec::new(),
    };
    tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None)
}
