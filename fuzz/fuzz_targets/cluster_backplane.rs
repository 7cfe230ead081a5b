//! Arbitrary bytes -> what the cluster bridge reads from Redis: a message envelope, and (as
//! text) a `--cluster` URL.
//! Properties: nothing panics; an envelope that decodes re-encodes to the same bytes; a URL
//! that parses has a host and a non-zero port.
#![no_main]
use bytes::Bytes;
use herald::cluster::{decode_envelope, encode_envelope, parse_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = Bytes::copy_from_slice(data);
    if let Some((origin, payload)) = decode_envelope(&msg) {
        // Origins are node ids (text); one that is not UTF-8 cannot be re-encoded as given.
        if let Ok(origin) = std::str::from_utf8(origin) {
            assert_eq!(encode_envelope(origin, &payload), data);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(u) = parse_url(s) {
            assert!(!u.host.is_empty() && u.port != 0);
        }
    }
});
