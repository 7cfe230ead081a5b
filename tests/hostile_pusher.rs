//! Hostile clients, table 4: the Pusher surface — forged and stale HTTP API signatures, wrong
//! `body_md5`, bad JSON bodies and frames, oversized events and frames, unknown apps, channel
//! name abuse, forged channel auth, thousands of subscribes on one socket, client-event floods,
//! binary frames — each with its exact answer, against one shared server while a healthy
//! Pusher socket on each shard and a Channelstream subscriber stay undisturbed (see
//! `common::hostile_pusher`).
//!
//! Expected answers come from the Pusher protocol and HTTP API docs (close and error codes,
//! statuses) and Herald's README ("Pusher clients"); message texts are Herald's own.

mod common;
use common::hostile::{MAX_BODY, MAX_WS_MESSAGE};
use common::hostile_pusher::*;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

const UNSIGNED: &str = "Invalid signature";
const EXPIRED: &str = "auth_timestamp is more than 600 s from the server's time";
const MD5: &str = "body_md5 does not match the body";
const BAD_JSON: &str = "Invalid JSON body";
const BAD_NAME: &str = "Invalid channel name";
const TOO_LARGE: &str = "data is larger than the app's event size limit";

fn ev(channel: &str, data: &str) -> String {
    json!({"name": "e", "channel": channel, "data": data}).to_string()
}

fn http_cases() -> Vec<PCase> {
    let mut v = Vec::new();
    let mut add = |name: &str, req: Vec<u8>, e: POut| {
        v.push(pcase(format!("http: {name}"), PIn::Http(req), e))
    };
    let sig = Sig::default;

    // Forged signatures (the HTTP API's "Authentication").
    let forged = Sig {
        secret: "not-the-secret".into(),
        ..sig()
    };
    add(
        "signed with another secret",
        post_with(EVENT, forged),
        err(401, UNSIGNED),
    );
    let zeros = Sig {
        signature: Some("0".repeat(64)),
        ..sig()
    };
    add(
        "auth_signature of zeros",
        post_with(EVENT, zeros),
        err(401, UNSIGNED),
    );
    let empty = Sig {
        signature: Some(String::new()),
        ..sig()
    };
    add(
        "empty auth_signature",
        post_with(EVENT, empty),
        err(401, UNSIGNED),
    );
    let upper = Sig {
        signature: None,
        ..sig()
    };
    let mut req = post_with(EVENT, upper);
    let at = find(&req, b"auth_signature=").unwrap() + 15;
    req[at..at + 64].make_ascii_uppercase();
    add("auth_signature in upper-case hex", req, err(401, UNSIGNED));
    let other_key = Sig {
        key: "other-key".into(),
        ..sig()
    };
    add(
        "another auth_key",
        post_with(EVENT, other_key),
        err(401, "Unknown auth_key"),
    );
    let v2 = Sig {
        version: "2.0".into(),
        ..sig()
    };
    add(
        "auth_version 2.0",
        post_with(EVENT, v2),
        err(401, "auth_version must be 1.0"),
    );
    let no_auth = format!(
        "POST /apps/{APP_ID}/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{EVENT}",
        EVENT.len()
    );
    add(
        "no auth parameters",
        no_auth.into_bytes(),
        err(401, "Missing authentication parameters"),
    );

    // Stale and replayed timestamps (±600 s; margins of 10 s and more, so a slow run stays
    // on the same side of the window).
    add(
        "590 s old is still accepted",
        post_with(
            EVENT,
            Sig {
                skew: -590,
                ..sig()
            },
        ),
        POut::Json(200, json!({})),
    );
    add(
        "replayed request signed 610 s ago",
        post_with(
            EVENT,
            Sig {
                skew: -610,
                ..sig()
            },
        ),
        err(401, EXPIRED),
    );
    add(
        "signed 700 s in the future",
        post_with(EVENT, Sig { skew: 700, ..sig() }),
        err(401, EXPIRED),
    );
    add(
        "replayed request signed a day ago",
        post_with(
            EVENT,
            Sig {
                skew: -86_400,
                ..sig()
            },
        ),
        err(401, EXPIRED),
    );
    for ts in ["-1", "1e9", "99999999999999999999999", "", "now"] {
        let s = Sig {
            timestamp: Some(ts.into()),
            ..sig()
        };
        add(
            &format!("auth_timestamp {ts:?}"),
            post_with(EVENT, s),
            err(401, EXPIRED),
        );
    }

    // body_md5.
    add(
        "wrong body_md5",
        post_with(
            EVENT,
            Sig {
                md5: Some(Some("0".repeat(32))),
                ..sig()
            },
        ),
        err(401, MD5),
    );
    add(
        "no body_md5 with a body",
        post_with(
            EVENT,
            Sig {
                md5: Some(None),
                ..sig()
            },
        ),
        err(401, MD5),
    );
    let right = hex_md5(EVENT.as_bytes()).to_ascii_uppercase();
    add(
        "body_md5 in upper-case hex",
        post_with(
            EVENT,
            Sig {
                md5: Some(Some(right)),
                ..sig()
            },
        ),
        err(401, MD5),
    );
    let swapped = Sig {
        signed_body: Some(ev("hostile", "signed").into_bytes()),
        ..sig()
    };
    add(
        "body swapped after signing",
        post_with(&ev("hostile", "swapped"), swapped),
        err(401, MD5),
    );
    let get = |md5: Option<Option<String>>| {
        let s = Sig { md5, ..sig() };
        api_req(
            "GET",
            APP_ID,
            "channels",
            "filter_by_prefix=healthy",
            b"",
            &s,
        )
    };
    let listed = POut::Json(200, json!({"channels": {"healthy": {}}}));
    add(
        "GET with body_md5 of the empty body (PyPI SDK)",
        get(Some(Some("d41d8cd98f00b204e9800998ecf8427e".into()))),
        listed,
    );
    add(
        "GET with a wrong body_md5",
        get(Some(Some("0".repeat(32)))),
        err(401, MD5),
    );

    // Bad JSON bodies, correctly signed.
    let nested = "[".repeat(20_000);
    let bodies: Vec<(&str, Vec<u8>, POut)> = vec![
        ("not JSON", b"{not json".to_vec(), err(400, BAD_JSON)),
        ("an array", b"[]".to_vec(), err(400, "name is required")),
        ("null", b"null".to_vec(), err(400, "name is required")),
        (
            "20,000 nested arrays",
            nested.into_bytes(),
            err(400, BAD_JSON),
        ),
        (
            "invalid UTF-8",
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            err(400, BAD_JSON),
        ),
        (
            "NaN",
            br#"{"name":"e","channel":"c","data":NaN}"#.to_vec(),
            err(400, BAD_JSON),
        ),
        (
            "lone surrogate",
            br#"{"name":"e","channel":"c","data":"\ud800"}"#.to_vec(),
            err(400, BAD_JSON),
        ),
        (
            "no data",
            br#"{"name":"e","channel":"c"}"#.to_vec(),
            err(400, "data is required"),
        ),
        (
            "numeric name",
            br#"{"name":5,"channel":"c","data":"x"}"#.to_vec(),
            err(400, "name is required"),
        ),
        (
            "empty name",
            br#"{"name":"","channel":"c","data":"x"}"#.to_vec(),
            err(400, "Invalid event name"),
        ),
        (
            "channels of numbers",
            br#"{"name":"e","channels":[1,2],"data":"x"}"#.to_vec(),
            err(400, "channels must be strings"),
        ),
        (
            "no channels",
            br#"{"name":"e","channels":[],"data":"x"}"#.to_vec(),
            err(400, "too many or no channels"),
        ),
        (
            "numeric channel",
            br#"{"name":"e","channel":5,"data":"x"}"#.to_vec(),
            err(400, "channel or channels is required"),
        ),
    ];
    for (name, body, e) in bodies {
        let req = api_req("POST", APP_ID, "events", "", &body, &sig());
        add(&format!("events body: {name}"), req, e);
    }
    let item = ev("hostile", "x");
    let eleven = format!("{{\"batch\":[{}]}}", [item.as_str(); 11].join(","));
    add(
        "batch of 11",
        post("batch_events", &eleven),
        err(400, "batch must hold 1 to 10 events"),
    );
    add(
        "batch as an object",
        post("batch_events", r#"{"batch":{}}"#),
        err(400, "batch is required"),
    );
    let bad_item =
        format!("{{\"batch\":[{item},{{\"name\":\"e\",\"channel\":\"a b\",\"data\":\"x\"}}]}}");
    add(
        "batch with a bad channel in its second event",
        post("batch_events", &bad_item),
        err(400, BAD_NAME),
    );

    // Oversized events (413) and bodies.
    add(
        "data of 10 KB + 1",
        post("events", &ev("hostile", &"x".repeat(10 * 1024 + 1))),
        err(413, TOO_LARGE),
    );
    add(
        "data of 200 KB",
        post("events", &ev("hostile", &"x".repeat(200 * 1024))),
        err(413, TOO_LARGE),
    );
    let big_item = ev("hostile", &"y".repeat(10 * 1024 + 1));
    add(
        "batch with one oversized event",
        post(
            "batch_events",
            &format!("{{\"batch\":[{item},{big_item}]}}"),
        ),
        err(413, TOO_LARGE),
    );
    let huge = ev("hostile", &"z".repeat(MAX_BODY));
    add(
        "body over the server's body limit",
        post("events", &huge),
        POut::Fatal(413, "request body too large"),
    );
    let chans: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let many = json!({"name": "e", "channels": chans, "data": "x"}).to_string();
    add(
        "101 channels",
        post("events", &many),
        err(400, "too many or no channels"),
    );

    // Unknown apps and paths.
    add(
        "unknown app id",
        api_req("POST", "999", "events", "", EVENT.as_bytes(), &sig()),
        err(404, "Unknown app"),
    );
    add(
        "app id with a NUL",
        api_req("POST", "%00", "events", "", EVENT.as_bytes(), &sig()),
        err(404, "Unknown app"),
    );
    add(
        "unknown endpoint",
        post("nope", EVENT),
        err(404, "Not found"),
    );
    add(
        "GET on events",
        api_req("GET", APP_ID, "events", "", b"", &sig()),
        err(405, "Method not allowed"),
    );
    let bare = b"POST /apps/app-id HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec();
    add("no endpoint after the app id", bare, err(404, "Not found"));

    // Channel-name abuse.
    for (name, ch) in [
        ("165-byte channel", "x".repeat(165)),
        ("'#' channel", "#x".into()),
        ("channel with a space", "a b".into()),
        ("channel with a NUL", "a\u{0}b".into()),
        ("non-ASCII channel", "caf\u{e9}".into()),
        ("empty channel", String::new()),
    ] {
        add(
            &format!("event to a {name}"),
            post("events", &ev(&ch, "x")),
            err(400, BAD_NAME),
        );
    }
    for path in ["channels/a%20b", "channels/%FF%FE", "channels/%23x/users"] {
        let r = api_req("GET", APP_ID, path, "", b"", &sig());
        let want = match path.ends_with("users") {
            true => "Users can only be listed for presence channels",
            false => BAD_NAME,
        };
        add(&format!("GET {path}"), r, err(400, want));
    }
    v
}

fn hex_md5(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    common::pusher::hex(&Md5::digest(b))
}

fn ws_cases() -> Vec<PCase> {
    let mut v = Vec::new();
    let refused = |code: u16, msg: &str| POut::Close(vec![perr(code, msg)], code);
    for (name, path, e) in [
        (
            "unknown key",
            format!("/app/no-such-key{PROTO}"),
            refused(4001, "App key does not exist"),
        ),
        (
            "4 KB key",
            format!("/app/{}{PROTO}", "k".repeat(4096)),
            refused(4001, "App key does not exist"),
        ),
        (
            "key with a NUL",
            format!("/app/app-key%00{PROTO}"),
            refused(4001, "App key does not exist"),
        ),
        (
            "no key",
            format!("/app/{PROTO}"),
            refused(4001, "App key does not exist"),
        ),
        (
            "protocol 99999999999999999999",
            "/app/app-key?protocol=99999999999999999999".into(),
            refused(4006, "Invalid version string format"),
        ),
    ] {
        v.push(pcase(format!("upgrade: {name}"), PIn::Upgrade(path), e));
    }
    let mut add =
        |name: &str, f: Frames, e: POut| v.push(pcase(format!("ws: {name}"), PIn::Ws(f), e));
    let bad = |m: &str| perr(4200, m);
    let not_json = "Invalid message: not a JSON object";
    let no_chan = "Invalid message: data.channel is required";

    // Bad frames: answered, the socket stays.
    add(
        "not JSON",
        Box::new(|_| raw_text(b"not json")),
        POut::Events(vec![bad(not_json)]),
    );
    add(
        "three bad frames in one write",
        Box::new(|_| [raw_text(b"[1]"), raw_text(b"{\"data\":1}"), raw_text(b"{}")].concat()),
        POut::Events(vec![
            bad(not_json),
            bad("Invalid message: no event"),
            bad("Invalid message: no event"),
        ]),
    );
    add(
        "20,000 nested arrays",
        Box::new(|_| raw_text("[".repeat(20_000).as_bytes())),
        POut::Events(vec![bad(not_json)]),
    );
    add(
        "subscribe without data",
        Box::new(|_| text(&json!({"event": "pusher:subscribe"}))),
        POut::Events(vec![bad(no_chan)]),
    );
    add(
        "subscribe to a numeric channel",
        Box::new(|_| text(&json!({"event": "pusher:subscribe", "data": {"channel": 5}}))),
        POut::Events(vec![bad(no_chan)]),
    );
    add(
        "subscribe with data as a broken JSON string",
        Box::new(|_| text(&json!({"event": "pusher:subscribe", "data": "{bad"}))),
        POut::Events(vec![bad(no_chan)]),
    );
    add(
        "client event without a channel",
        Box::new(|_| text(&json!({"event": "client-x", "data": {}}))),
        POut::Events(vec![bad(no_chan)]),
    );
    add(
        "unknown event is ignored",
        Box::new(|_| text(&json!({"event": "pusher:nonsense", "data": {}}))),
        POut::Events(vec![]),
    );
    add(
        "unsubscribe from a channel never joined",
        Box::new(|_| text(&json!({"event": "pusher:unsubscribe", "data": {"channel": "never"}}))),
        POut::Events(vec![]),
    );
    add(
        "binary frame",
        Box::new(|_| ws_frame(true, 2, b"\x00\x01\x02", true)),
        POut::Events(vec![bad("Binary frames are not supported")]),
    );
    add(
        "text frame over the message limit",
        Box::new(|_| raw_text(&vec![b'a'; MAX_WS_MESSAGE + 1])),
        POut::Close(vec![], 1009),
    );
    add(
        "message over the limit in two fragments",
        Box::new(|_| {
            [
                ws_frame(false, 1, &vec![b'a'; MAX_WS_MESSAGE / 2 + 1], true),
                ws_frame(true, 0, &vec![b'a'; MAX_WS_MESSAGE / 2 + 1], true),
            ]
            .concat()
        }),
        POut::Close(vec![], 1009),
    );
    add(
        "invalid UTF-8 text",
        Box::new(|_| raw_text(b"{\"event\":\"\xff\"}")),
        POut::Close(vec![], 1007),
    );

    // Channel-name abuse.
    for (name, ch) in [
        ("165 bytes", "x".repeat(165)),
        (
            "private- and 160 more bytes",
            format!("private-{}", "p".repeat(160)),
        ),
        ("'#x'", "#x".into()),
        ("a space", "a b".into()),
        ("a NUL", "a\u{0}b".into()),
        ("non-ASCII", "caf\u{e9}".into()),
        ("empty", String::new()),
    ] {
        let want = sub_err(&ch, "InvalidChannel", BAD_NAME, 400);
        let c2 = ch.clone();
        add(
            &format!("subscribe to a channel name with {name}"),
            Box::new(move |_| text(&sub(&c2, Some(""), None))),
            POut::Events(vec![want]),
        );
    }

    // Forged channel auth.
    let denied = |ch: &str| POut::Events(vec![sub_err(ch, "AuthError", UNSIGNED, 401)]);
    add(
        "private auth of another socket",
        Box::new(|_| text(&sub("private-h", Some(&auth("1.1", "private-h")), None))),
        denied("private-h"),
    );
    add(
        "private auth for another channel",
        Box::new(|sid| text(&sub("private-h", Some(&auth(sid, "private-other")), None))),
        denied("private-h"),
    );
    add(
        "private auth under another key",
        Box::new(|sid| {
            let a = auth(sid, "private-h").replacen("app-key", "other-key", 1);
            text(&sub("private-h", Some(&a), None))
        }),
        denied("private-h"),
    );
    add(
        "private auth in upper-case hex",
        Box::new(|sid| {
            let a = auth(sid, "private-h");
            let (k, h) = a.split_once(':').unwrap();
            text(&sub(
                "private-h",
                Some(&format!("{k}:{}", h.to_ascii_uppercase())),
                None,
            ))
        }),
        denied("private-h"),
    );
    add(
        "private without auth",
        Box::new(|_| text(&sub("private-h", None, None))),
        denied("private-h"),
    );
    add(
        "encrypted auth of another socket",
        Box::new(|_| {
            text(&sub(
                "private-encrypted-h",
                Some(&auth("2.2", "private-encrypted-h")),
                None,
            ))
        }),
        denied("private-encrypted-h"),
    );
    add(
        "presence user spoofed after signing",
        Box::new(|sid| {
            let signed = r#"{"user_id":"1"}"#;
            let a = sign(&format!("{sid}:presence-h:{signed}"));
            text(&sub("presence-h", Some(&a), Some(r#"{"user_id":"admin"}"#)))
        }),
        denied("presence-h"),
    );
    let invalid_data = |ch: &str| {
        POut::Events(vec![sub_err(
            ch,
            "InvalidChannelData",
            "channel_data must be a JSON object with a user_id",
            400,
        )])
    };
    for (name, cd) in [
        ("channel_data not JSON", "not json".to_string()),
        (
            "a 129-byte user_id",
            json!({"user_id": "u".repeat(129)}).to_string(),
        ),
        (
            "channel_data over 1 KB",
            json!({"user_id": "u", "user_info": "i".repeat(1100)}).to_string(),
        ),
        ("an object user_id", r#"{"user_id":{}}"#.to_string()),
    ] {
        add(
            &format!("presence, signed, {name}"),
            Box::new(move |sid| {
                let a = sign(&format!("{sid}:presence-h:{cd}"));
                text(&sub("presence-h", Some(&a), Some(&cd)))
            }),
            invalid_data("presence-h"),
        );
    }

    // Client-event abuse on a channel the socket joined (the app enables client events).
    let joined = |ev: Value| -> Frames {
        Box::new(move |sid| {
            [
                text(&sub("private-ce", Some(&auth(sid, "private-ce")), None)),
                text(&ev),
            ]
            .concat()
        })
    };
    let refused_ce = |m: &str| POut::AnyOrder(vec![succeeded("private-ce"), perr(4301, m)]);
    add(
        "client event over 10 KB",
        joined(
            json!({"event": "client-big", "channel": "private-ce", "data": "d".repeat(10 * 1024 + 1)}),
        ),
        refused_ce("The event data should be less than 10 KB"),
    );
    add(
        "client event name of 201 bytes",
        joined(
            json!({"event": format!("client-{}", "n".repeat(194)), "channel": "private-ce", "data": {}}),
        ),
        refused_ce("Event name is too long (exceeds 200 characters)"),
    );
    add(
        "client event to a channel not joined",
        joined(json!({"event": "client-x", "channel": "private-other", "data": {}})),
        refused_ce("The connection is not subscribed to this channel"),
    );
    add(
        "client event on a public channel",
        Box::new(|_| {
            [
                text(&sub("pub-ce", Some(""), None)),
                text(&json!({"event": "client-x", "channel": "pub-ce", "data": {}})),
            ]
            .concat()
        }),
        POut::AnyOrder(vec![
            succeeded("pub-ce"),
            perr(
                4301,
                "Client events are only allowed on private and presence channels",
            ),
        ]),
    );
    v
}

/// 2,500 subscribes to distinct channels in one write: the first 1,000 (the per-connection
/// limit) succeed, the rest get 4302; then 2,000 subscribes to one channel all succeed.
fn thousands_of_subscribes(at: At) -> Result<(), String> {
    let (mut s, _) = raw_pusher(&at)?;
    let frames: Vec<u8> = (0..2500)
        .flat_map(|i| text(&sub(&format!("many-{i}"), Some(""), None)))
        .collect();
    s.write_all(&frames).map_err(|e| e.to_string())?;
    let (mut ok, mut over) = (0, 0);
    let too_many = perr(4302, "Too many channels on this connection");
    for i in 0..2500 {
        let v = read_event(&mut s).map_err(|e| format!("answer {i}: {e}"))?;
        match v["event"].as_str() {
            Some("pusher_internal:subscription_succeeded") => ok += 1,
            _ if v == too_many => over += 1,
            _ => return Err(format!("answer {i}: {v}")),
        }
    }
    if (ok, over) != (1000, 1500) {
        return Err(format!("{ok} succeeded, {over} refused (want 1000, 1500)"));
    }
    let (mut s2, _) = raw_pusher(&at)?;
    let same: Vec<u8> = (0..2000)
        .flat_map(|_| text(&sub("one-channel", Some(""), None)))
        .collect();
    s2.write_all(&same).map_err(|e| e.to_string())?;
    for i in 0..2000 {
        let v = read_event(&mut s2).map_err(|e| format!("same channel, answer {i}: {e}"))?;
        if v != succeeded("one-channel") {
            return Err(format!("same channel, answer {i}: {v}"));
        }
    }
    Ok(())
}

/// 50 client events in one write: the peer gets the first 10, the sender `pusher:error` 4301
/// and close 4301.
fn client_event_flood(at: At) -> Result<(), String> {
    let ch = "private-flood";
    let (mut peer, psid) = raw_pusher(&at)?;
    peer.write_all(&text(&sub(ch, Some(&auth(&psid, ch)), None)))
        .map_err(|e| e.to_string())?;
    let got = read_event(&mut peer)?;
    if got != succeeded(ch) {
        return Err(format!("peer subscribe: {got}"));
    }
    let (mut s, sid) = raw_pusher(&at)?;
    s.write_all(&text(&sub(ch, Some(&auth(&sid, ch)), None)))
        .map_err(|e| e.to_string())?;
    let got = read_event(&mut s)?;
    if got != succeeded(ch) {
        return Err(format!("flooder subscribe: {got}"));
    }
    let burst: Vec<u8> = (0..50)
        .flat_map(|i| text(&json!({"event": "client-n", "channel": ch, "data": i.to_string()})))
        .collect();
    s.write_all(&burst).map_err(|e| e.to_string())?;
    let limit = perr(
        4301,
        "The rate limit for sending client events exceeded the quota.",
    );
    match read_event(&mut s) {
        Ok(v) if v == limit => {}
        other => return Err(format!("flooder: {other:?} instead of {limit}")),
    }
    match ws_read_frame(&mut s) {
        WsRead::Frame(_, 8, p) if close_code(&p) == Some(4301) => {}
        other => return Err(format!("flooder: {other:?} instead of close 4301")),
    }
    for i in 0..10 {
        let want = json!({"event": "client-n", "channel": ch, "data": i.to_string()});
        match read_event(&mut peer) {
            Ok(v) if v == want => {}
            other => return Err(format!("peer event {i}: {other:?} (want {want})")),
        }
    }
    peer.set_read_timeout(Duration::from_millis(300));
    match ws_read_frame(&mut peer) {
        WsRead::Timeout => Ok(()),
        other => Err(format!("peer got an 11th frame: {other:?}")),
    }
}

#[test]
fn hostile_pusher_table() {
    let mut cases = http_cases();
    cases.extend(ws_cases());
    cases.push(pcase(
        "ws: 2,500 subscribes on one socket",
        PIn::Custom(Box::new(thousands_of_subscribes)),
        POut::Checked,
    ));
    cases.push(pcase(
        "ws: client-event flood",
        PIn::Custom(Box::new(client_event_flood)),
        POut::Checked,
    ));
    run_pusher_table(cases);
}
