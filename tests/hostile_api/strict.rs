//! Table 3 in strict mode (README "Strict mode"): the same shared server and healthy
//! clients (`common::hostile`), started with `strict = true`.

use super::common::hostile::*;
use super::{digits, message_body, nested};
use serde_json::json;

// Table 3, strict mode (README "Strict mode"): where 0.7.1 answers 500, a 400 with a JSON
// body; what 0.7.1 answers with a 4xx or 200 keeps that answer.
pub fn strict_api_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| v.push(case(name, Input::Raw(bytes), e));
    let not_json: &[(&str, &str, &[u8])] = &[
        ("/connect: truncated JSON", "/connect", b"{not json"),
        ("/connect: empty body", "/connect", b""),
        (
            "/connect: JSON followed by garbage",
            "/connect",
            br#"{"username": "a"} x"#,
        ),
        (
            "/message: single quotes",
            "/message",
            b"[{'channel': 'c', 'user': 'u'}]",
        ),
        (
            "/message: invalid UTF-8",
            "/message",
            b"[{\"channel\": \"c\", \"user\": \"\xff\"}]",
        ),
        (
            "/message: NaN literal",
            "/message",
            br#"[{"channel": "c", "user": "u", "message": {"x": NaN}}]"#,
        ),
        ("/user_state: empty body", "/user_state", b""),
        ("/channel_config: truncated", "/channel_config", b"{\"a\": "),
    ];
    for (name, path, body) in not_json {
        add(name, signed("POST", path, body), invalid_json(body));
    }
    add(
        "POST /disconnect: not JSON",
        req("POST", "/disconnect", None, "", b"nope"),
        invalid_json(b"nope"),
    );
    let input_type = || refused("_schema", "Invalid input type.");
    add(
        "/channel_config: a JSON array",
        signed("POST", "/channel_config", b"[]"),
        input_type(),
    );
    add(
        "/subscribe: a non-object body",
        signed("POST", "/subscribe", b"[1]"),
        input_type(),
    );
    add(
        "/unsubscribe: a string body",
        signed("POST", "/unsubscribe", b"\"x\""),
        input_type(),
    );
    add(
        "POST /disconnect: an array body",
        req("POST", "/disconnect", None, "", b"[1]"),
        input_type(),
    );
    // 0.7.1's 422s for wrong types stay as they are.
    add(
        "/connect: array body is still 0.7.1's 422",
        signed_json("POST", "/connect", &json!([1, 2])),
        schema_input_type(),
    );
    add(
        "GET /listen without conn_id",
        b"GET /listen HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        refused("conn_id", "Missing data for required field."),
    );
    add(
        "GET /listen with a malformed conn_id is still 0.7.1's 422",
        b"GET /listen?conn_id=zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Expect::Json(422, json!(["Wrong UUID format"])),
    );
    let too_deep = || refused("_schema", "JSON nested deeper than 64 levels.");
    add(
        "100,000-deep array",
        signed("POST", "/message", nested(100_000, "[", "]", "").as_bytes()),
        too_deep(),
    );
    add(
        "65 levels: a 63-deep payload inside [{\"message\": ...}]",
        signed(
            "POST",
            "/message",
            &message_body(&nested(63, r#"{"a":"#, "}", "1")),
        ),
        too_deep(),
    );
    add(
        "64 levels (the limit) are delivered",
        signed(
            "POST",
            "/message",
            &message_body(&nested(62, r#"{"a":"#, "}", "\"deep64\"")),
        ),
        Expect::Delivered("\"deep64\""),
    );
    add(
        "brackets inside strings do not count as depth",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"s": "{}"}}"#, "[{".repeat(100))),
        ),
        Expect::Delivered("[{[{[{"),
    );
    // The both-modes refusals are the same in strict mode.
    add(
        "/message: a 5,000-digit integer",
        signed(
            "POST",
            "/message",
            &message_body(&format!(r#"{{"n": {}}}"#, digits(5000))),
        ),
        big_int_refused(5000),
    );
    add(
        "/connect: lone surrogate username",
        signed("POST", "/connect", br#"{"username": "\ud800"}"#),
        lone_surrogate_refused(),
    );
    add(
        "history_size 1e400",
        signed_json_raw(
            "POST",
            "/channel_config",
            r#"{"s": {"history_size": 1e400}}"#,
        ),
        Expect::Json(422, json!({"history_size": ["Not a valid integer."]})),
    );
    add(
        "a valid /message is still echoed and delivered",
        signed("POST", "/message", &message_body(r#"{"ok": "strict"}"#)),
        Expect::Delivered("\"ok\": \"strict\""),
    );
    v
}

#[test]
fn hostile_api_strict() {
    let cases = strict_api_cases();
    assert!(cases.len() >= 24, "{}", cases.len());
    run_strict_table(cases);
}
