//! The inflater path of a connection that negotiated permessage-deflate: arbitrary client
//! bytes through `Assembler::with_deflate`, every compressed message through the shard's
//! `Codec::inflate` under a small limit, as `conn::ws` does. Nothing panics, no inflated
//! message is ever larger than the limit, and a compressed message that inflates is then
//! compressed again by the server's side and inflates back to the same bytes.
//!
//! Input layout: byte 0 seeds the chunk sizes, byte 1 sets the limit (0..=255 * 64 bytes),
//! byte 2's low bit feeds the rest straight to the inflater instead (raw deflate data), the
//! rest is the client's byte stream.
#![no_main]
use bytes::BytesMut;
use herald::proto::deflate::{Codec, InflateError};
use herald::proto::ws::{Assembler, Event, OpCode};
use libfuzzer_sys::fuzz_target;

fn check_inflated(codec: &mut Codec, payload: &[u8], max: usize) {
    match codec.inflate(payload, max) {
        Ok(data) => {
            assert!(data.len() <= max);
            if let Some(frame) = codec.deflate(15, OpCode::Binary, &data) {
                let (h, n) = herald::proto::ws::decode_header(&frame)
                    .expect("our frame decodes")
                    .expect("complete");
                assert!(h.rsv1 && h.fin);
                let back = codec.inflate(frame.get(n..).unwrap_or_default(), max);
                assert_eq!(back.as_deref(), Ok(&data[..]));
            }
        }
        Err(InflateError::TooBig) | Err(InflateError::Invalid) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (seed, max, raw, stream) = match data {
        [s, m, r, rest @ ..] => (*s as usize, *m as usize * 64, r & 1 == 1, rest),
        _ => return,
    };
    let mut codec = Codec::new(0);
    if raw {
        check_inflated(&mut codec, stream, max);
        return;
    }
    let mut asm = Assembler::with_deflate(max, true);
    let mut buf = BytesMut::new();
    let mut chunk = 1 + seed % 17;
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(chunk.min(rest.len()));
        rest = tail;
        chunk = 1 + (chunk * 7 + seed) % 23;
        buf.extend_from_slice(piece);
        loop {
            match asm.next_event(&mut buf) {
                Ok(Some(Event::Deflated { payload, .. })) => {
                    assert!(payload.len() <= max);
                    check_inflated(&mut codec, &payload, max);
                }
                Ok(Some(Event::Close { .. })) | Err(_) => return,
                Ok(Some(_)) => {}
                Ok(None) => break,
            }
        }
    }
});
