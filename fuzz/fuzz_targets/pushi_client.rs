//! Arbitrary bytes -> the Pushi dialect's pure parsers: a client frame, a websocket path, a
//! REST path, a channel kind, a session id.
//! Properties: nothing panics; a frame that parses is a JSON object; a `pusher:latest`
//! count never exceeds the cap; a forged sid never checks.
#![no_main]
use herald::pushi::dialect::{is_socket_path, kind};
use herald::pushi::protocol::{self, ClientMsg};
use herald::pushi::rest::is_route;
use herald::pushi::session::Sessions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match protocol::parse(data) {
        Ok(m) => {
            let v: serde_json::Value = serde_json::from_slice(data).unwrap();
            assert!(v.is_object());
            if let ClientMsg::Latest { count, .. } = m {
                assert!(count <= protocol::MAX_LATEST);
            }
        }
        Err(e) => assert!(!e.0.is_empty()),
    }
    let _ = is_socket_path(data);
    let _ = is_route(data);
    let text = String::from_utf8_lossy(data);
    let _ = kind(&text);
    let s = Sessions::new([7; 32]);
    assert_eq!(s.check(&text), None);
});
