//! Hostile clients, table 3 (Herald issue 7): the Channelstream API — JSON, types, numbers,
//! nesting, signatures, source IPs, conn_ids — each with the answer Channelstream 0.7.1
//! gives (spec §3, §4.2, §4.5, §5), against one shared server while healthy clients stay
//! connected (see `common::hostile`).

mod common;
#[path = "hostile_api/strict.rs"]
mod strict;
use common::hostile::*;
use common::*;
use serde_json::json;

// Table 3: the Channelstream API — JSON, types, numbers, nesting, signatures, IPs, conn_ids

fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// An integer literal of `n` digits.
fn digits(n: usize) -> String {
    format!("1{}", "0".repeat(n - 1))
}

/// A `POST /message` body for the "hostile" channel with a raw JSON payload text.
fn message_body(payload: &str) -> Vec<u8> {
    format!(r#"[{{"channel": "hostile", "user": "mallory", "message": {payload}}}]"#).into_bytes()
}

fn api_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| v.push(case(name, Input::Raw(bytes), e));
    let unknown = uuid::Uuid::new_v4().to_string();

    // JSON that is not JSON (spec §4.2: 500 text/plain, connection closed).
    add(
        "/connect: truncated JSON",
        signed("POST", "/connect", b"{not json"),
        INTERNAL,
    );
    add(
        "/connect: empty body",
        signed("POST", "/connect", b""),
        INTERNAL,
    );
    add(
        "/connect: JSON followed by garbage",
        signed("POST", "/connect", br#"{"username": "a"} trailing"#),
        INTERNAL,
    );
    add(
        "/message: invalid UTF-8 inside a JSON string",
        signed(
            "POST",
            "/message",
            b"[{\"channel\": \"c\", \"user\": \"\xff\xfe\"}]",
        ),
        INTERNAL,
    );
    add(
        "/message: single quotes",
        signed("POST", "/message", b"[{'channel': 'c', 'user': 'u'}]"),
        INTERNAL,
    );
    add(
        "/channel_config: a JSON array (spec §5.8)",
        signed("POST", "/channel_config", b"[]"),
        INTERNAL,
    );
    add(
        "/subscribe: a non-object body (spec §5.2)",
        signed("POST", "/subscribe", b"[1]"),
        INTERNAL,
    );
    add(
        "POST /disconnect: not JSON (spec §5.12)",
        req("POST", "/disconnect", None, "", b"nope"),
        INTERNAL,
    );
    add(
        "/listen without conn_id (spec §5.10)",
        b"GET /listen HTTP/1.1\r\n\r\n".to_vec(),
        INTERNAL,
    );

    // Deep nesting: serde_json's recursion limit (128) turns it into a parse error → 500;
    // Python's json would also fail (RecursionError) at this depth. The server must not
    // overflow its stack.
    add(
        "100,000-deep array",
        signed("POST", "/message", nested(100_000, "[", "]", "").as_bytes()),
        INTERNAL,
    );
    add(
        "30,000-deep object inside a message payload",
        signed(
            "POST",
            "/message",
            &message_body(&nested(30_000, r#"{"a":"#, "}", "1")),
        ),
        INTERNAL,
    );
    add(
        "40,000-deep array as a /connect username",
        signed(
            "POST",
            "/connect",
            format!(r#"{{"username": {}}}"#, nested(40_000, "[", "]", "")).as_bytes(),
        ),
        INTERNAL,
    );
    add(
        "100-deep payload (legal) is echoed and delivered intact",
        signed(
            "POST",
            "/message",
            &message_body(&nested(100, r#"{"a":"#, "}", "\"deep\"")),
        ),
        Expect::Delivered("\"deep\""),
    );

    // Wrong top-level types and wrong field types (spec §4.5, §5).
    add(
        "/connect: array body",
        signed_json("POST", "/connect", &json!([1, 2])),
        schema_input_type(),
    );
    add(
        "/connect: string body",
        signed_json("POST", "/connect", &json!("alice")),
        schema_input_type(),
    );
    add(
        "/connect: number body",
        signed("POST", "/connect", b"42"),
        schema_input_type(),
    );
    add(
        "/message: object instead of array",
        signed_json("POST", "/message", &json!({})),
        schema_input_type(),
    );
    add(
        "DELETE /message: object instead of array",
        signed_json("DELETE", "/message", &json!({"uuid": unknown})),
        schema_input_type(),
    );
    add(
        "/user_state: array body",
        signed_json("POST", "/user_state", &json!([1])),
        schema_input_type(),
    );
    add(
        "/info: array body (\"Invalid type.\", spec §5.9)",
        signed_json("POST", "/info", &json!([])),
        Expect::Json(422, json!({"_schema": ["Invalid type."]})),
    );
    add(
        "/info: {} (info is required)",
        signed_json("POST", "/info", &json!({})),
        Expect::Json(422, json!({"info": ["Missing data for required field."]})),
    );
    add(
        "/connect: username is a number",
        signed_json("POST", "/connect", &json!({"username": 123})),
        Expect::Json(422, json!({"username": ["Not a valid string."]})),
    );
    add(
        "/connect: username of 513 characters",
        signed_json("POST", "/connect", &json!({"username": "u".repeat(513)})),
        Expect::Json(
            422,
            json!({"username": ["Length must be between 1 and 512."]}),
        ),
    );
    add(
        "/connect: bad conn_id and channels (spec §5.1)",
        signed_json(
            "POST",
            "/connect",
            &json!({"username": "x", "conn_id": "not-a-uuid", "channels": "notalist"}),
        ),
        Expect::Json(
            422,
            json!({"conn_id": ["Not a valid UUID."], "channels": ["Not a valid list."]}),
        ),
    );
    add(
        "/connect: nested state value, list as fresh state (spec §5.1)",
        signed_json(
            "POST",
            "/connect",
            &json!({"username": "x", "user_state": {"a": {"nested": 1}}, "fresh_user_state": [1]}),
        ),
        Expect::Json(
            422,
            json!({"fresh_user_state": ["Not a valid mapping type."],
                   "user_state": {"a": {"value": ["Value is not type of string, integer, boolean or float."]}}}),
        ),
    );
    add(
        "/connect: bad channel config (spec §5.1)",
        signed_json(
            "POST",
            "/connect",
            &json!({"username": "x", "channel_configs": {"c": {"history_size": -1, "notify_presence": "maybe"}}}),
        ),
        Expect::Json(
            422,
            json!({"channel_configs": {"c": {"value": {"notify_presence": ["Not a valid boolean."],
                                                         "history_size": ["Must be at least 0."]}}}}),
        ),
    );
    add(
        "/message: missing user",
        signed_json("POST", "/message", &json!([{"channel": "room"}])),
        Expect::Json(
            422,
            json!({"0": {"user": ["Missing data for required field."]}}),
        ),
    );
    add(
        "/message: bad uuid, timestamp and payload type (spec §5.5)",
        signed_json(
            "POST",
            "/message",
            &json!([{"user": "x", "channel": "room", "message": "not-a-dict", "uuid": "zzz",
                     "timestamp": "yesterday"}]),
        ),
        Expect::Json(
            422,
            json!({"0": {"uuid": ["Not a valid UUID."], "timestamp": ["Not a valid datetime."],
                         "message": ["Not a valid mapping type."]}}),
        ),
    );
    add(
        "/message: null payload and user as an array, second item",
        signed_json(
            "POST",
            "/message",
            &json!([{"user": "ok", "channel": "c"}, {"user": ["x"], "channel": "c", "message": null}]),
        ),
        Expect::Json(
            422,
            json!({"1": {"user": ["Not a valid string."], "message": ["Field may not be null."]}}),
        ),
    );
    add(
        "/channel_config: history_size not an integer (spec §5.8, not nested)",
        signed_json(
            "POST",
            "/channel_config",
            &json!({"room": {"history_size": "big"}}),
        ),
        Expect::Json(422, json!({"history_size": ["Not a valid integer."]})),
    );
    add(
        "PATCH /message: missing uuid",
        signed_json("PATCH", "/message", &json!([{"channel": "room"}])),
        Expect::Json(
            422,
            json!({"0": {"uuid": ["Missing data for required field."]}}),
        ),
    );

    // Huge numbers in payloads: Python's json.loads makes 1e400 a float infinity and prints it
    // `Infinity`; big integers keep every digit. Neither may crash anything.
    add(
        "1e400 in a payload",
        signed("POST", "/message", &message_body(r#"{"big": 1e400}"#)),
        Expect::Delivered("\"big\": Infinity"),
    );
    add(
        "-1e400 in a payload",
        signed("POST", "/message", &message_body(r#"{"neg": -1e400}"#)),
        Expect::Delivered("\"neg\": -Infinity"),
    );
    add(
        "a 401-digit integer (10**400) in a payload",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"huge": 1{}}}"#, "0".repeat(400))),
        ),
        Expect::Delivered(leak(format!("\"huge\": 1{}", "0".repeat(400)))),
    );
    add(
        "exponent beyond i64 (1e99999999999999999999)",
        signed(
            "POST",
            "/message",
            &message_body(r#"{"e": 1e99999999999999999999}"#),
        ),
        Expect::Delivered("\"e\": Infinity"),
    );
    add(
        "5e-400 underflows to 0.0",
        signed("POST", "/message", &message_body(r#"{"tiny": 5e-400}"#)),
        Expect::Delivered("\"tiny\": 0.0"),
    );
    // Integers over 4300 digits: Python 3.11+ (and 0.7.1's 3.8.18) refuse to read them; 0.7.1
    // answers 500, Herald 400 (README "Hostile input").
    add(
        "/message: a 5,000-digit integer in the payload",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"n": {}}}"#, digits(5000))),
        ),
        big_int_refused(5000),
    );
    add(
        "/message: a 4,301-digit negative integer deep in the payload",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"a": [1, {{"b": -{}}}]}}"#, digits(4301))),
        ),
        big_int_refused(4301),
    );
    add(
        "/message: a 4,300-digit integer (the limit) is delivered",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"n": {}}}"#, digits(4300))),
        ),
        Expect::Delivered(leak(format!("\"n\": {}", digits(4300)))),
    );
    add(
        "/message: a 5,000-digit float literal is a float (Python reads it)",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"f": {}.5}}"#, digits(5000))),
        ),
        Expect::Delivered("\"f\": Infinity"),
    );
    add(
        "/connect: a 5,000-digit integer as a user_state value",
        signed(
            "POST",
            "/connect",
            format!(
                r#"{{"username": "big", "user_state": {{"n": {}}}}}"#,
                digits(5000)
            )
            .as_bytes(),
        ),
        big_int_refused(5000),
    );

    // Signatures (spec §3.2).
    let s = signer();
    let now = unix_now();
    add(
        "signature made with another secret",
        req(
            "POST",
            "/info",
            Some(&herald::auth::Signer::new("guess").sign("channelstream", now)),
            "",
            b"",
        ),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "signature 61 s old",
        req(
            "POST",
            "/info",
            Some(&s.sign("channelstream", now - 61)),
            "",
            b"",
        ),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    let good = s.sign("channelstream", now);
    let (signed_part, sig) = good.rsplit_once('.').expect("token has a signature");
    add(
        "signature with a '!' inserted",
        req(
            "POST",
            "/info",
            Some(&format!("{signed_part}.!{sig}")),
            "",
            b"",
        ),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "signature truncated by one character",
        req("POST", "/info", Some(&good[..good.len() - 1]), "", b""),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "value changed under a valid signature",
        req(
            "POST",
            "/info",
            Some(&format!("channelstreaM{}", &good["channelstream".len()..])),
            "",
            b"",
        ),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "garbage token",
        req("POST", "/info", Some("garbage"), "", b""),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "4 KB token of dots",
        req("POST", "/info", Some(&".".repeat(4000)), "", b""),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    add(
        "bad signature on an unknown path is 401 too",
        req("GET", "/nonexistent", Some("x.y.z"), "", b""),
        Expect::Json(401, json!({"request": "Bad Signature"})),
    );
    // Replay: itsdangerous' TimestampSigner has no nonce, so Channelstream accepts the same
    // token as often as it likes within its 60 s. Herald is wire-compatible: both uses succeed.
    let replayed = s.sign("channelstream", now);
    let info = json!({"info": {"channels": ["healthy"], "include_history": false}});
    for n in ["first", "second (replayed)"] {
        add(
            &format!("replayed token, {n} use"),
            req(
                "POST",
                "/info",
                Some(&replayed),
                "",
                info.to_string().as_bytes(),
            ),
            Expect::Status(200),
        );
    }
    add(
        "token from 100,000 s in the future is accepted (itsdangerous 1.1.0)",
        req(
            "POST",
            "/info",
            Some(&s.sign("channelstream", now + 100_000)),
            "",
            info.to_string().as_bytes(),
        ),
        Expect::Status(200),
    );
    add(
        "no secret at all",
        req("POST", "/info", None, "Accept: application/json\r\n", b""),
        Expect::JsonCompact(
            403,
            json!({"message": "Access was denied to this resource.\n\n\n\n\n",
                   "code": "403 Forbidden", "title": "Forbidden"}),
        ),
    );

    // Unknown and garbage conn_ids.
    add(
        "/listen: garbage conn_id",
        b"GET /listen?conn_id=garbage HTTP/1.1\r\n\r\n".to_vec(),
        Expect::Json(422, json!(["Wrong UUID format"])),
    );
    add(
        "/listen: percent-encoded NUL and invalid escapes",
        b"GET /listen?conn_id=%00%ZZ%ff HTTP/1.1\r\n\r\n".to_vec(),
        Expect::Json(422, json!(["Wrong UUID format"])),
    );
    add(
        "/listen: unknown conn_id",
        format!("GET /listen?conn_id={unknown} HTTP/1.1\r\n\r\n").into_bytes(),
        Expect::Status(401),
    );
    add(
        "/disconnect: garbage conn_id",
        b"GET /disconnect?conn_id=zzz HTTP/1.1\r\n\r\n".to_vec(),
        Expect::Json(422, json!({"conn_id": ["Not a valid UUID."]})),
    );
    add(
        "/disconnect: unknown conn_id",
        format!("GET /disconnect?conn_id={unknown} HTTP/1.1\r\n\r\n").into_bytes(),
        Expect::Text(200, "false"),
    );
    add(
        "/subscribe: unknown conn_id, empty channel list (spec §5.2)",
        signed_json(
            "POST",
            "/subscribe",
            &json!({"conn_id": unknown, "channels": []}),
        ),
        Expect::Json(
            422,
            json!({"conn_id": ["Unknown connection"], "channels": ["Shorter than minimum length 1."]}),
        ),
    );
    add(
        "/subscribe: garbage conn_id",
        signed_json(
            "POST",
            "/subscribe",
            &json!({"conn_id": "zzz", "channels": ["a"]}),
        ),
        Expect::Json(422, json!({"conn_id": ["Not a valid UUID."]})),
    );
    add(
        "/user_state: unknown user",
        signed_json("POST", "/user_state", &json!({"user": "nobody"})),
        Expect::Json(422, json!({"user": ["Unknown user"]})),
    );

    // JSON corners where Python's json module is laxer than RFC 8259. Herald parses strict
    // JSON, so these get the "not JSON" answer (500) where Channelstream would answer 200:
    // a deliberate, documented difference (clients only see that a malformed body fails).
    add(
        "duplicate keys: the last one wins, as in Python",
        signed(
            "POST",
            "/connect",
            br#"{"username": "a", "username": "dup-b"}"#,
        ),
        Expect::Contains(200, "\"username\": \"dup-b\""),
    );
    // A lone surrogate: 0.7.1 accepts it (200) and echoes it; Herald cannot hold it in a
    // string (nor can Python encode it to UTF-8): 400 in both modes.
    add(
        "lone surrogate escape in a username (0.7.1: 200)",
        signed("POST", "/connect", br#"{"username": "sur\ud800"}"#),
        lone_surrogate_refused(),
    );
    add(
        "lone trailing surrogate in a /message payload",
        signed("POST", "/message", &message_body(r#"{"t": "\udc00"}"#)),
        lone_surrogate_refused(),
    );
    add(
        "a surrogate pair is one character, delivered",
        signed(
            "POST",
            "/message",
            &message_body(r#"{"t": "\ud83d\ude00"}"#),
        ),
        Expect::Delivered("\"t\": \"\\ud83d\\ude00\""),
    );
    add(
        "NaN literal in a payload (Python accepts it; not JSON)",
        signed("POST", "/message", &message_body(r#"{"x": NaN}"#)),
        INTERNAL,
    );
    add(
        "-Infinity literal in a payload (Python accepts it; not JSON)",
        signed("POST", "/message", &message_body(r#"{"x": -Infinity}"#)),
        INTERNAL,
    );
    // 0.7.1 crashes (int(inf): OverflowError, 500); Herald answers as marshmallow does NaN.
    add(
        "history_size 1e400: 422, not 0.7.1's 500",
        signed_json_raw(
            "POST",
            "/channel_config",
            r#"{"huge1": {"history_size": 1e400}}"#,
        ),
        Expect::Json(422, json!({"history_size": ["Not a valid integer."]})),
    );
    add(
        "/connect: channel_configs history_size -1e400",
        signed_json_raw(
            "POST",
            "/connect",
            r#"{"username": "inf", "channel_configs": {"c": {"history_size": -1e400}}}"#,
        ),
        Expect::Json(
            422,
            json!({"channel_configs": {"c": {"value": {"history_size": ["Not a valid integer."]}}}}),
        ),
    );
    // Python keeps the exact integer; Herald saturates to u64::MAX, which means the same
    // thing for a history length (more than will ever be stored).
    add(
        "history_size of 401 digits saturates",
        signed_json_raw(
            "POST",
            "/channel_config",
            &format!(r#"{{"huge2": {{"history_size": 1{}}}}}"#, "0".repeat(400)),
        ),
        Expect::Contains(200, "\"history_size\": 18446744073709551615,"),
    );
    add(
        "/connect with 5,000 channels",
        signed_json(
            "POST",
            "/connect",
            &json!({"username": "many", "channels": (0..5000).map(|i| format!("c{i}")).collect::<Vec<_>>()}),
        ),
        Expect::Contains(422, "Too many channels for one connection (at most 1000)."),
    );
    add(
        "/connect with 1,000 channels (the limit)",
        signed_json(
            "POST",
            "/connect",
            &json!({"username": "many", "channels": (0..1000).map(|i| format!("c{i}")).collect::<Vec<_>>()}),
        ),
        Expect::Contains(200, "\"c999\""),
    );
    add(
        "/message: channel name of 257 characters",
        signed_json(
            "POST",
            "/message",
            &json!([{"user": "u", "channel": "c".repeat(257)}]),
        ),
        Expect::Json(
            422,
            json!({"0": {"channel": ["Length must be between 1 and 256."]}}),
        ),
    );
    add(
        "/info: channels as a string",
        signed_json("POST", "/info", &json!({"info": {"channels": "room"}})),
        Expect::Json(422, json!({"info": {"channels": ["Not a valid list."]}})),
    );

    // Disallowed IPs (spec §3.1): a valid signature from 127.0.0.2 is still refused, and a bad
    // one is never even checked.
    let jsonly = "Accept: application/json\r\n";
    let forbidden = || {
        Expect::JsonCompact(
            403,
            json!({"message": "Access was denied to this resource.\n\n\n\n\n",
                   "code": "403 Forbidden", "title": "Forbidden"}),
        )
    };
    for (name, bytes) in [
        (
            "disallowed IP with a valid signature: /connect",
            req(
                "POST",
                "/connect",
                Some(&token()),
                jsonly,
                br#"{"username": "intruder"}"#,
            ),
        ),
        (
            "disallowed IP with a valid signature: /message",
            req(
                "POST",
                "/message",
                Some(&token()),
                jsonly,
                br#"[{"channel": "healthy", "user": "intruder", "message": {"n": -1}}]"#,
            ),
        ),
        (
            "disallowed IP with a bad signature: 403, not 401",
            req("POST", "/info", Some("garbage"), jsonly, b""),
        ),
    ] {
        v.push(case(name, Input::RawFrom(OTHER_IP, bytes), forbidden()));
    }
    v
}

#[test]
fn hostile_api() {
    let cases = api_cases();
    assert!(cases.len() >= 55, "{}", cases.len());
    run_table(cases);
}
