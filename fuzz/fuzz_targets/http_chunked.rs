//! decode_chunked must never panic; it consumes at most the input and honours max_body.
#![no_main]
use herald::proto::http::decode_chunked;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the body limit, so small limits are hit by small inputs.
    let (max_body, input) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b) * 4, rest),
        None => (0, data),
    };
    if let Ok(Some((body, consumed))) = decode_chunked(input, max_body) {
        assert!(consumed <= input.len());
        assert!(body.len() <= max_body);
        assert!(body.len() < consumed || consumed == 0);
        // Nothing after the message matters, and every prefix is merely incomplete.
        let exact = input.get(..consumed).unwrap_or(&[]);
        assert_eq!(decode_chunked(exact, max_body), Ok(Some((body, consumed))));
        let short = input.get(..consumed - 1).unwrap_or(&[]);
        assert_eq!(decode_chunked(short, max_body), Ok(None));
    }
});
