//! `Sec-WebSocket-Extensions` values: `parse_extensions` never panics and stays within its
//! limits, the negotiation never panics and only ever agrees to a window of 8 to 15 bits, and
//! Herald's answer always parses back as one valid permessage-deflate element.
//!
//! Input layout: the bytes are split at `\n` into header lines (the header may repeat).
#![no_main]
use herald::proto::deflate::offer::{MAX_EXTENSIONS, MAX_PARAMS};
use herald::proto::deflate::{negotiate, parse_extensions, DeflateOffer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        if let Ok(exts) = parse_extensions(line) {
            assert!(exts.len() <= MAX_EXTENSIONS);
            for e in &exts {
                assert!(!e.name.is_empty());
                assert!(e.params.len() <= MAX_PARAMS);
                if let Some(o) = DeflateOffer::from_extension(e) {
                    assert!(o.server_max_window_bits.is_none_or(|b| (8..=15).contains(&b)));
                }
            }
        }
    }
    if let Some(a) = negotiate(data.split(|&b| b == b'\n')) {
        assert!((8..=15).contains(&a.server_window_bits));
        assert!(a.compress_window().is_none_or(|w| (9..=15).contains(&w)));
        let answer = a.response_value();
        let parsed = parse_extensions(answer.as_bytes()).expect("the answer parses");
        assert_eq!(parsed.len(), 1);
        let back = parsed.first().and_then(DeflateOffer::from_extension);
        assert!(back.is_some_and(|o| o.server_no_context_takeover && o.client_no_context_takeover));
    }
});
