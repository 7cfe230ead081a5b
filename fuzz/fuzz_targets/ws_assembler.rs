//! Arbitrary bytes, delivered in arbitrary chunk sizes, into an `Assembler` with a small
//! message limit: it never panics, never consumes more than it was given, and every event it
//! returns respects the limits and UTF-8 rules.
//!
//! Input layout: byte 0 seeds the chunk sizes, byte 1 sets `max_message` (0..=255 * 2), the
//! rest is the client's byte stream.
#![no_main]
use bytes::BytesMut;
use herald::proto::ws::{Assembler, CloseCode, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seed, max, stream) = match data {
        [s, m, rest @ ..] => (*s as usize, *m as usize * 2, rest),
        _ => return,
    };
    let mut asm = Assembler::new(max);
    let mut buf = BytesMut::new();
    let mut given = 0usize;
    let mut consumed = 0usize;
    let mut chunk = 1 + seed % 17;
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(chunk.min(rest.len()));
        rest = tail;
        chunk = 1 + (chunk * 7 + seed) % 23;
        buf.extend_from_slice(piece);
        given += piece.len();
        loop {
            let before = buf.len();
            let result = asm.next_event(&mut buf);
            assert!(buf.len() <= before, "the assembler grew the buffer");
            consumed += before - buf.len();
            assert!(consumed <= given);
            match result {
                Ok(Some(event)) => match event {
                    Event::Text(t) => {
                        assert!(t.len() <= max);
                        assert!(std::str::from_utf8(&t).is_ok());
                    }
                    Event::Binary(b) => assert!(b.len() <= max),
                    // Only with permessage-deflate negotiated (the ws_inflate target).
                    Event::Deflated { .. } => panic!("compressed message without the extension"),
                    Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
                    Event::Close { code, reason } => {
                        assert!(reason.len() <= 123);
                        assert!(code.is_some() || reason.is_empty());
                        assert!(code.is_none_or(CloseCode::is_allowed_on_wire));
                        assert!(std::str::from_utf8(&reason).is_ok());
                        // Nothing is read after a close.
                        let len = buf.len();
                        assert_eq!(asm.next_event(&mut buf), Ok(None));
                        assert_eq!(buf.len(), len);
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(
                        e.close_code(),
                        CloseCode::Protocol | CloseCode::Invalid | CloseCode::Size
                    ));
                    // Errors are sticky.
                    assert_eq!(asm.next_event(&mut buf), Err(e));
                    return;
                }
            }
        }
    }
});
