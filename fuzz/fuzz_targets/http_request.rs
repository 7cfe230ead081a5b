//! parse_request must never panic, must agree with parse_head + decode_chunked composed by
//! hand (the framing the reactor did inline), and every range it returns must lie in the input.
//!
//! Input layout: byte 0 picks the limits and `continue_sent`, the rest is the client's bytes.
#![no_main]
use herald::proto::http::{
    decode_chunked, parse_head, parse_request, Body, BodyKind, ParseLimits, RequestStatus,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let continue_sent = knobs & 1 != 0;
    // Small limits too, so the 431/413 paths are reached with short inputs.
    let limits = if knobs & 2 != 0 {
        ParseLimits {
            max_head: 256,
            max_headers: 4,
            max_body: usize::from(knobs >> 2) * 4,
        }
    } else {
        ParseLimits::default()
    };
    let got = parse_request(input, &limits, continue_sent);
    let head = parse_head(input, &limits);
    match got {
        Err(e) => {
            // Either the head failed, or the head is fine and the chunked body failed.
            match head {
                Err(h) => assert_eq!(e, h),
                Ok(Some((h, n))) => {
                    assert_eq!(h.body, BodyKind::Chunked);
                    let rest = input.get(n..).unwrap_or(&[]);
                    assert_eq!(decode_chunked(rest, limits.max_body), Err(e));
                }
                Ok(None) => panic!("error without a head error: {e:?}"),
            }
        }
        Ok(RequestStatus::Partial) => assert!(matches!(head, Ok(None))),
        Ok(RequestStatus::AwaitingBody { send_continue }) => {
            let Ok(Some((h, n))) = head else {
                panic!("awaiting a body without a head");
            };
            assert_eq!(send_continue, h.expect_continue && !continue_sent);
            match h.body {
                BodyKind::None => panic!("awaiting a body for a request without one"),
                BodyKind::Length(len) => assert!(input.len() < n + len),
                BodyKind::Chunked => {
                    let rest = input.get(n..).unwrap_or(&[]);
                    assert_eq!(decode_chunked(rest, limits.max_body), Ok(None));
                }
            }
        }
        Ok(RequestStatus::Complete(r)) => {
            let Ok(Some((h, n))) = head else {
                panic!("complete without a head");
            };
            assert_eq!(r.head_len, n);
            assert_eq!(r.head.body, h.body);
            assert!(r.head_len <= r.consumed && r.consumed <= input.len());
            assert!(r.body.len() <= limits.max_body);
            match &r.body {
                Body::InBuffer { start, end } => {
                    assert_eq!((*start, *end), (r.head_len, r.consumed));
                    let want = match h.body {
                        BodyKind::None => 0,
                        BodyKind::Length(len) => len,
                        BodyKind::Chunked => panic!("a chunked body must be decoded"),
                    };
                    assert_eq!(end - start, want);
                }
                Body::Decoded(body) => {
                    assert_eq!(h.body, BodyKind::Chunked);
                    let rest = input.get(n..).unwrap_or(&[]);
                    let want = decode_chunked(rest, limits.max_body);
                    assert_eq!(want, Ok(Some((body.clone(), r.consumed - n))));
                }
            }
            // Bytes after the request do not matter (pipelining).
            let exact = input.get(..r.consumed).unwrap_or(&[]);
            match parse_request(exact, &limits, continue_sent) {
                Ok(RequestStatus::Complete(again)) => {
                    assert_eq!(again.consumed, r.consumed);
                    assert_eq!(again.body.bytes(exact), r.body.bytes(input));
                }
                other => panic!("the exact request did not parse the same: {other:?}"),
            }
            // One byte less of a request with a body is merely incomplete.
            if r.consumed > r.head_len {
                let short = input.get(..r.consumed - 1).unwrap_or(&[]);
                assert!(matches!(
                    parse_request(short, &limits, continue_sent),
                    Ok(RequestStatus::AwaitingBody { .. })
                ));
            }
        }
    }
});
