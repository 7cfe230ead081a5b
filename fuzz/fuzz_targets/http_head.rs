//! parse_head must never panic; a parsed head must stay inside the input.
#![no_main]
use herald::proto::http::{parse_head, BodyKind, ParseLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits too, so the 431/413 paths are reached with short inputs.
    let small = ParseLimits {
        max_head: 256,
        max_headers: 4,
        max_body: 64,
    };
    for limits in [ParseLimits::default(), small] {
        let Ok(Some((head, consumed))) = parse_head(data, &limits) else {
            continue;
        };
        assert!(consumed <= data.len() && consumed <= limits.max_head);
        assert!(head.header_count() <= limits.max_headers);
        let spans = [Some(head.path), head.query].into_iter().flatten();
        for span in spans {
            assert!(span.start <= span.end && span.end as usize <= consumed);
        }
        for (name, value) in head.headers(data) {
            assert!(!name.is_empty());
            let _ = value;
            assert!(head
                .header(data, std::str::from_utf8(name).unwrap_or(""))
                .is_some());
        }
        if let BodyKind::Length(n) = head.body {
            assert!(n <= limits.max_body);
        }
        // A complete head parses the same with any trailing bytes (pipelining).
        let again = parse_head(data.get(..consumed).unwrap_or(&[]), &limits);
        assert!(matches!(again, Ok(Some((_, n))) if n == consumed));
    }
});
