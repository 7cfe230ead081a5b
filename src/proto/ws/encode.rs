//! Server frame encoders: each frame is built once, in one allocation of its exact size, as
//! `Bytes`, so a broadcast can clone it to every subscriber without copying.
//!
//! Why a separate module: encoding is the write path (heartbeats, deliveries, closes) and shares
//! nothing with the read path but the header writer.
//!
//! Invariants: server frames are never masked and always have FIN set; close frames always stay
//! valid control frames (the reason is cut to [`MAX_CLOSE_REASON`] bytes on a char boundary).
//! [`encode_masked`] exists for tests and clients only.

use super::close::{CloseCode, MAX_CLOSE_REASON};
use super::frame::{header_len, put_header, OpCode};
use super::mask::apply_mask;
use bytes::{BufMut, Bytes, BytesMut};

/// A complete unmasked server frame (FIN set), encoded once and shareable.
///
/// One allocation of exactly header + payload bytes: `Bytes::from(Vec)` with `len == capacity`
/// takes the buffer over without reallocating.
pub fn encode_frame(op: OpCode, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(header_len(payload.len(), false) + payload.len());
    put_header(&mut out, op, true, payload.len(), None);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Append a complete unmasked server frame (FIN set) to `out`, e.g. to batch several frames
/// into one write.
pub fn encode_frame_into(op: OpCode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(header_len(payload.len(), false) + payload.len());
    put_header(out, op, true, payload.len(), None);
    out.extend_from_slice(payload);
}

/// `encode_frame(OpCode::Text, payload)`.
pub fn encode_text(payload: &[u8]) -> Bytes {
    encode_frame(OpCode::Text, payload)
}

/// A close frame with a status code and reason.
///
/// The reason is cut to [`MAX_CLOSE_REASON`] bytes (at a char boundary) so the frame stays a
/// valid control frame whatever the caller passes.
pub fn encode_close(code: CloseCode, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1; // terminates: 0 is always a char boundary
    }
    let reason = reason.as_bytes().get(..end).unwrap_or_default();
    let len = 2 + reason.len();
    let mut out = Vec::with_capacity(header_len(len, false) + len);
    put_header(&mut out, OpCode::Close, true, len, None);
    out.put_u16(u16::from(code));
    out.extend_from_slice(reason);
    Bytes::from(out)
}

/// The reply to a client's close frame: echo its code (RFC 6455 §5.5.1), or an empty close
/// frame if it sent none.
pub fn encode_close_reply(code: Option<CloseCode>) -> Bytes {
    match code {
        Some(code) => encode_close(code, ""),
        None => encode_frame(OpCode::Close, &[]),
    }
}

/// A masked client frame, for tests and the bench client (the server never masks).
pub fn encode_masked(op: OpCode, payload: &[u8], mask: [u8; 4], fin: bool) -> Vec<u8> {
    let hlen = header_len(payload.len(), true);
    let mut out = Vec::with_capacity(hlen + payload.len());
    put_header(&mut out, op, fin, payload.len(), Some(mask));
    out.extend_from_slice(payload);
    if let Some(body) = out.get_mut(hlen..) {
        apply_mask(body, mask);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Event;
    use super::*;

    #[test]
    fn encode_frame_headers() {
        for (len, head) in [
            (0usize, vec![0x81, 0x00]),
            (125, vec![0x81, 0x7d]),
            (126, vec![0x81, 0x7e, 0x00, 0x7e]),
            (65535, vec![0x81, 0x7e, 0xff, 0xff]),
            (65536, vec![0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![b'x'; len];
            let frame = encode_text(&payload);
            assert_eq!(frame.len(), head.len() + len);
            assert_eq!(&frame[..head.len()], &head[..], "len {len}");
            assert_eq!(&frame[head.len()..], &payload[..]);
            assert_eq!(header_len(len, false), head.len());
            let mut into = BytesMut::from(&b"prefix"[..]);
            encode_frame_into(OpCode::Text, &payload, &mut into);
            assert_eq!(&into[6..], &frame[..]);
        }
        // The heartbeat frame from the spec: 0x81 0x02 5b 5d.
        assert_eq!(&encode_text(b"[]")[..], &[0x81, 0x02, 0x5b, 0x5d]);
        assert_eq!(
            &encode_frame(OpCode::Pong, b"hi")[..],
            &[0x8a, 2, b'h', b'i']
        );
        assert_eq!(
            &encode_close(CloseCode::Normal, "")[..],
            &[0x88, 0x02, 0x03, 0xe8]
        );
        assert_eq!(
            &encode_close(CloseCode::Away, "bye")[..],
            b"\x88\x05\x03\xe9bye"
        );
        assert_eq!(&encode_close_reply(None)[..], &[0x88, 0x00]);
        assert_eq!(
            &encode_close_reply(Some(CloseCode::Library(4000)))[..],
            &[0x88, 0x02, 0x0f, 0xa0]
        );
        // Reasons are cut at 123 bytes, on a char boundary.
        let long = "é".repeat(100);
        let frame = encode_close(CloseCode::Normal, &long);
        assert_eq!(frame[1] as usize, 2 + 122);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
        assert_eq!(
            encode_close(CloseCode::Normal, &"a".repeat(200))[1] as usize,
            125
        );
    }

    #[test]
    fn encode_masked_round_trips_through_the_assembler() {
        for len in [0usize, 1, 7, 8, 9, 125, 126, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let wire = masked(OpCode::Binary, &payload, true);
            assert_eq!(wire.len(), header_len(len, true) + len);
            let (events, err, rest) = run(1 << 20, &wire);
            assert_eq!(err, None);
            assert_eq!(rest, 0);
            assert_eq!(
                events,
                vec![Event::Binary(Bytes::from(payload))],
                "len {len}"
            );
        }
    }

    #[test]
    fn tungstenite_client_reads_our_frames() {
        use tungstenite::Message;
        let big = "x".repeat(70_000);
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode_text(b"[]"));
        wire.extend_from_slice(&encode_text(big.as_bytes()));
        wire.extend_from_slice(&encode_frame(OpCode::Binary, &[0u8; 300]));
        wire.extend_from_slice(&encode_frame(OpCode::Ping, b"hb"));
        wire.extend_from_slice(&encode_close(CloseCode::Normal, "done"));
        let mut ws = tungstenite_client(wire);
        assert_eq!(ws.read().ok(), Some(Message::text("[]")));
        assert_eq!(ws.read().ok(), Some(Message::text(big)));
        assert_eq!(ws.read().ok(), Some(Message::binary(vec![0u8; 300])));
        assert_eq!(
            ws.read().ok(),
            Some(Message::Ping(Bytes::from_static(b"hb")))
        );
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1000);
                assert_eq!(frame.reason.as_str(), "done");
            }
            other => panic!("expected close, got {other:?}"),
        }
    }
}
