//! Hostile clients, table 5: Pusher user sign-in and what hangs off it — forged `pusher:signin`
//! signatures, malformed `user_data`, oversized watchlists, a second identity on one socket,
//! other users' `#server-to-user-` channels, forged `terminate_connections`, and client events
//! on an app that does not enable them — each with its exact answer, against the shared server
//! of `common::hostile_pusher` while its healthy Pusher and Channelstream clients stay
//! undisturbed.
//!
//! Expected answers: the Pusher user-authentication docs (`pusher:error` 4009 and close 4009 on
//! a refused sign-in, 4302 over 100 watched ids), Herald's README ("User sign-in") for the rest.

mod common;
use common::hostile_pusher::*;
use common::*;
use serde_json::{json, Value};
use std::io::Write;

/// `<key>:HMAC(secret, "<socket_id>::user::<user_data>")` under the app's secret.
fn user_auth(sid: &str, user_data: &str) -> String {
    sign(&format!("{sid}::user::{user_data}"))
}

fn signin(auth: &str, user_data: &str) -> Vec<u8> {
    text(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}))
}

/// A correctly signed `pusher:signin` for this socket.
fn signed(sid: &str, user_data: &str) -> Vec<u8> {
    signin(&user_auth(sid, user_data), user_data)
}

fn success(user_data: &str) -> Value {
    json!({"event": "pusher:signin_success", "data": {"user_data": user_data}})
}

fn refused(message: &str) -> POut {
    POut::Close(vec![perr(4009, message)], 4009)
}

const SHAPE: &str = "user_data must be a JSON object with a non-empty string id";
const BAD_ID: &str = "user_data.id must be 1 to 128 characters, without control characters";
const BAD_LIST: &str = "user_data.watchlist must be an array of user ids";
const NOT_YOURS: &str = "Only the user signed in on this connection may subscribe";

fn cases() -> Vec<PCase> {
    let mut v = Vec::new();
    let mut add =
        |name: &str, f: Frames, e: POut| v.push(pcase(format!("signin: {name}"), PIn::Ws(f), e));
    let ud = r#"{"id":"u1"}"#;
    add(
        "signature of another socket",
        Box::new(move |_| signin(&user_auth("1.1", ud), ud)),
        refused("Invalid signature"),
    );
    add(
        "signature of other user_data",
        Box::new(move |sid| signin(&user_auth(sid, r#"{"id":"u2"}"#), ud)),
        refused("Invalid signature"),
    );
    add(
        "signature under another key",
        Box::new(move |sid| signin(&user_auth(sid, ud).replacen("app-key", "other", 1), ud)),
        refused("Invalid signature"),
    );
    add(
        "no auth",
        Box::new(move |_| text(&json!({"event": "pusher:signin", "data": {"user_data": ud}}))),
        refused("Invalid signature"),
    );
    add(
        "no data at all",
        Box::new(|_| text(&json!({"event": "pusher:signin"}))),
        refused("Invalid signature"),
    );
    for (name, data, msg) in [
        ("user_data not JSON", "not json".to_string(), SHAPE),
        ("user_data an array", "[1]".to_string(), SHAPE),
        (
            "user_data without id",
            r#"{"user_info":{}}"#.to_string(),
            SHAPE,
        ),
        ("numeric id", r#"{"id":7}"#.to_string(), SHAPE),
        ("empty id", r#"{"id":""}"#.to_string(), BAD_ID),
        (
            "129-byte id",
            json!({"id": "i".repeat(129)}).to_string(),
            BAD_ID,
        ),
        (
            "id with a newline",
            json!({"id": "a\nb"}).to_string(),
            BAD_ID,
        ),
        (
            "watchlist an object",
            r#"{"id":"u1","watchlist":{}}"#.to_string(),
            BAD_LIST,
        ),
        (
            "watchlist of numbers",
            r#"{"id":"u1","watchlist":[1]}"#.to_string(),
            BAD_LIST,
        ),
    ] {
        add(
            &format!("signed, {name}"),
            Box::new(move |sid| signed(sid, &data)),
            refused(msg),
        );
    }
    let ids: Vec<String> = (0..150).map(|i| format!("w{i}")).collect();
    let long = json!({"id": "watcher", "watchlist": ids}).to_string();
    let long2 = long.clone();
    add(
        "watchlist of 150 ids: 4302, the first 100 kept, signed in",
        Box::new(move |sid| signed(sid, &long)),
        POut::Events(vec![
            perr(
                4302,
                "Watchlist limit exceeded: only the first 100 user ids are watched",
            ),
            success(&long2),
        ]),
    );
    let (a, b) = (r#"{"id":"alice"}"#, r#"{"id":"mallory"}"#);
    add(
        "a second identity on one socket",
        Box::new(move |sid| [signed(sid, a), signed(sid, b)].concat()),
        POut::Events(vec![
            success(a),
            perr(4009, "This connection is already signed in as another user"),
        ]),
    );
    add(
        "the same identity twice is answered twice",
        Box::new(move |sid| [signed(sid, a), signed(sid, a)].concat()),
        POut::Events(vec![success(a), success(a)]),
    );
    let theirs = "#server-to-user-alice";
    add(
        "#server-to-user- without signing in",
        Box::new(move |_| text(&sub(theirs, Some(""), None))),
        POut::Events(vec![sub_err(theirs, "AuthError", NOT_YOURS, 4009)]),
    );
    add(
        "#server-to-user- of another user",
        Box::new(move |sid| [signed(sid, b), text(&sub(theirs, Some(""), None))].concat()),
        POut::Events(vec![
            success(b),
            sub_err(theirs, "AuthError", NOT_YOURS, 4009),
        ]),
    );
    let forged = Sig {
        secret: "not-the-secret".into(),
        ..Sig::default()
    };
    let terminate = |user: &str, s: &Sig| {
        let endpoint = format!("users/{user}/terminate_connections");
        api_req("POST", APP_ID, &endpoint, "", b"{}", s)
    };
    v.push(pcase(
        "http: terminate_connections with a forged signature",
        PIn::Http(terminate("alice", &forged)),
        err(401, "Invalid signature"),
    ));
    let long_id = "i".repeat(129);
    v.push(pcase(
        "http: terminate_connections of a 129-byte user id",
        PIn::Http(terminate(&long_id, &Sig::default())),
        err(400, "Invalid user id"),
    ));
    v.push(pcase(
        "ws: client event on an app without client events",
        PIn::Custom(Box::new(client_events_off)),
        POut::Checked,
    ));
    v
}

/// A member of `private-q` on the app without client events sends one: `pusher:error` 4301,
/// the socket stays, nothing is relayed.
fn client_events_off(at: At) -> Result<(), String> {
    let ch = "private-q";
    let mut s = raw_upgrade(&at, &format!("/app/{QUIET_KEY}{PROTO}"))?;
    let v = read_event(&mut s)?;
    let sid = common::pusher::data(&v)["socket_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or(format!("no socket id in {v}"))?;
    let auth = format!("{QUIET_KEY}:{}", quiet_hmac(&format!("{sid}:{ch}")));
    let ev = json!({"event": "client-x", "channel": ch, "data": {}});
    let bytes = [text(&sub(ch, Some(&auth), None)), text(&ev)].concat();
    s.write_all(&bytes).map_err(|e| e.to_string())?;
    let want = [
        succeeded(ch),
        perr(4301, "The app does not have client messaging enabled."),
    ];
    let mut got = vec![read_event(&mut s)?, read_event(&mut s)?];
    got.sort_by_key(|v| v.to_string());
    let mut want = want.to_vec();
    want.sort_by_key(|v| v.to_string());
    match got == want {
        true => Ok(()),
        false => Err(format!("got {got:?}, want {want:?}")),
    }
}

#[test]
fn hostile_pusher_users_table() {
    run_pusher_table(cases());
}
