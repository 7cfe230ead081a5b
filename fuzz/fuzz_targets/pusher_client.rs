//! Arbitrary bytes -> the Pusher dialect's parsers: a client frame, a socket id, a channel
//! name, a presence `channel_data`, a sign-in `user_data`, an HTTP API query string with its body.
//! Properties: nothing panics; a parsed socket id formats back to an id naming the same
//! socket; a frame that parses is a JSON object; a member's user id is 1 to 128 bytes; a
//! signed-in user id is valid and a watchlist holds at most 100 valid ids.
#![no_main]
use herald::pusher::apps::App;
use herald::pusher::{channels, presence, protocol, sign, socket_id, users};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if protocol::parse(data).is_ok() {
        let v: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert!(v.is_object());
    }
    let text = String::from_utf8_lossy(data);
    if let Some(s) = socket_id::parse(&text) {
        assert_eq!(socket_id::parse(&socket_id::format(s)), Some(s));
    }
    let _ = channels::kind(&text);
    let _ = channels::owner(0, &text, 3);
    let _ = channels::is_cache(&text);
    if let Some(m) = presence::parse_channel_data(&text) {
        assert!(!m.user_id.is_empty() && m.user_id.len() <= presence::MAX_USER_ID);
    }
    if let Ok((u, _)) = users::parse_user_data(&text) {
        assert!(users::valid_id(&u.user));
        assert!(u.watchlist.len() <= users::MAX_WATCHLIST);
        assert!(u.watchlist.iter().all(|id| users::valid_id(id)));
    }
    let app = App::new("app-id", "app-key", "app-secret");
    let (query, body) = data.split_at(data.len() / 2);
    let _ = sign::verify_api(&app, "POST", "/apps/app-id/events", query, body, 1_700_000_000);
    let _ = sign::channel_auth_ok(&app, "1.2", "private-c", &text);
    let _ = sign::presence_auth_ok(&app, "1.2", "presence-c", &text, &text);
    let _ = sign::user_auth_ok(&app, "1.2", &text, &text);
});
