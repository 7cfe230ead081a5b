//! Hostile input: the request-body screen (both modes) and strict mode's answers.
//!
//! **Both modes.** Every JSON request body goes through [`parse_body`]. Two kinds of legal (or
//! Python-legal) JSON are refused with `400 {"_schema": [<why>]}`, because the Python
//! backends that call Herald could not read them back:
//!
//! * an integer literal of more than [`MAX_INT_DIGITS`] (4,300) digits — Python 3.11+ (and
//!   3.8.14+) refuse to convert it (`sys.get_int_max_str_digits()`); 0.7.1 itself crashes on
//!   it (500);
//! * a lone UTF-16 surrogate escape (`"\ud800"`) — a Rust string cannot hold it, and Python's
//!   `str.encode()` refuses it too; 0.7.1 accepts it (200) and echoes it.
//!
//! 400 rather than 422 because the body is refused before any schema sees it; the body has
//! the marshmallow shape of a whole-body error so clients that print 422 bodies print these.
//!
//! **Strict mode** (`Config::strict`, off by default): the answers 0.7.1 gives as a crash
//! (500), a dropped socket or a lenient accept become explicit — bodies that are not JSON
//! or nest deeper than [`STRICT_MAX_DEPTH`], wrong body types where 0.7.1 crashes, `/listen`
//! without `conn_id` → 400 with a JSON body; an HTTP/1.1 request without `Host` or with two
//! → 400 (text, connection closed, as the parser's other malformed requests); a websocket
//! version other than 13 → 426; a `/ws` with a missing, malformed or unknown `conn_id` →
//! close frame [`UNKNOWN_CONN_CLOSE`] (4404). README "Strict mode" has the table.
//!
//! How it plugs into the front (kept to a few lines there): [`check_host`] and
//! [`check_ws_version`] run first; [`before_dispatch`] looks at the body bytes only (depth, and
//! the first byte where an object is required); [`after_dispatch`] turns the default 500s into
//! their 400s, re-parsing the body only on that failure path, so a valid request costs strict
//! mode one byte scan. The websocket answers live in `dialect.rs` and the model
//! (`Model::set_unknown_conn_close`).

use super::api::router::Route;
use super::front::{internal_error, FrontAction, JSON, TEXT};
use crate::dialect::{Request, Response};
use crate::proto::http::Method;
use crate::proto::ws::CloseCode;
use crate::py::json as pyjson;
use bytes::Bytes;
use serde_json::{Map, Value};

/// Longest integer literal accepted, in digits (Python's `sys.int_info.default_max_str_digits`).
pub const MAX_INT_DIGITS: usize = 4300;

/// Deepest nesting of arrays and objects strict mode accepts (serde_json's own limit, 128,
/// still applies in default mode, as a 500).
pub const STRICT_MAX_DEPTH: usize = 64;

/// Strict mode's close code for a `/ws` whose `conn_id` is missing, malformed, nil or unknown:
/// a private code (RFC 6455 §7.4.2) modelled on HTTP 404, so a client can tell "connect
/// again" from the 1000 of a normal close.
pub const UNKNOWN_CONN_CLOSE: CloseCode = CloseCode::Library(4404);

/// Why a request body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (serde_json's message): a 500 by default, as 0.7.1; 400 in strict mode.
    Invalid(String),
    /// Strict mode: nested deeper than [`STRICT_MAX_DEPTH`].
    TooDeep,
    /// A `\uD800`-`\uDFFF` escape not part of a pair (both modes: 400).
    LoneSurrogate,
    /// An integer literal of this many digits, over [`MAX_INT_DIGITS`] (both modes: 400).
    BigInt(usize),
}

/// Parse a request body as JSON, refusing what the Python backends cannot read (module docs).
pub fn parse_body(body: &[u8], strict: bool) -> Result<Value, BodyError> {
    if strict && too_deep(body, STRICT_MAX_DEPTH) {
        return Err(BodyError::TooDeep);
    }
    let v = serde_json::from_slice::<Value>(body).map_err(|e| {
        let msg = e.to_string();
        // serde_json's two messages for an unpaired surrogate escape (read.rs).
        if msg.starts_with("lone leading surrogate") || msg.starts_with("unexpected end of hex") {
            BodyError::LoneSurrogate
        } else {
            BodyError::Invalid(msg)
        }
    })?;
    // No literal can be longer than the body.
    if body.len() > MAX_INT_DIGITS {
        if let Some(n) = big_int(&v) {
            return Err(BodyError::BigInt(n));
        }
    }
    Ok(v)
}

/// The answer to a refused body.
pub fn body_error(e: BodyError, strict: bool) -> Response {
    match e {
        BodyError::Invalid(_) if !strict => internal_error(),
        BodyError::Invalid(msg) => bad_request("_schema", &format!("Invalid JSON: {msg}")),
        BodyError::TooDeep => bad_request(
            "_schema",
            &format!("JSON nested deeper than {STRICT_MAX_DEPTH} levels."),
        ),
        BodyError::LoneSurrogate => bad_request(
            "_schema",
            "Lone surrogate (\\ud800-\\udfff) in a JSON string.",
        ),
        BodyError::BigInt(n) => bad_request(
            "_schema",
            &format!(
                "Exceeds the limit ({MAX_INT_DIGITS}) for integer string conversion: value has {n} digits"
            ),
        ),
    }
}

/// `400 {field: [text]}`, pretty-printed as Channelstream's JSON answers; the connection stays
/// open (the body was read in full).
pub fn bad_request(field: &str, text: &str) -> Response {
    let mut m = Map::new();
    m.insert(field.into(), Value::Array(vec![Value::String(text.into())]));
    Response::new(400, JSON, pyjson::to_string_pretty(&Value::Object(m)))
}

/// Whether the route reads its body as JSON (`/info` only when there is one; `/disconnect`
/// only on POST).
fn reads_json(r: Route, req: &Request<'_>) -> bool {
    match r {
        Route::Connect
        | Route::Subscribe
        | Route::Unsubscribe
        | Route::UserState
        | Route::ChannelConfig
        | Route::MessagePost
        | Route::MessagePatch
        | Route::MessageDelete => true,
        Route::Info => !req.body.is_empty(),
        Route::Disconnect => req.head.method == Method::Post,
        _ => false,
    }
}

/// The routes whose body 0.7.1 crashes on (500) unless it is an object.
fn needs_object(r: Route) -> bool {
    matches!(
        r,
        Route::Subscribe | Route::Unsubscribe | Route::ChannelConfig | Route::Disconnect
    )
}

/// Strict mode, before the route runs (bytes only on the happy path): too deep a body, or a
/// non-object body where 0.7.1 would crash.
pub fn before_dispatch(r: Route, req: &Request<'_>) -> Option<Response> {
    if !reads_json(r, req) {
        return None;
    }
    if too_deep(req.body, STRICT_MAX_DEPTH) {
        return Some(body_error(BodyError::TooDeep, true));
    }
    let first = req.body.iter().find(|b| !b.is_ascii_whitespace());
    if needs_object(r) && first != Some(&b'{') {
        return Some(match parse_body(req.body, true) {
            Err(e) => body_error(e, true),
            Ok(_) => bad_request("_schema", "Invalid input type."),
        });
    }
    None
}

/// Strict mode, after the route ran: the 500s of 0.7.1's crashes get their 400 (a failure
/// path only, so the body is parsed again only then).
pub fn after_dispatch(action: FrontAction, r: Route, req: &Request<'_>) -> FrontAction {
    let FrontAction::Respond(resp) = action else {
        return action;
    };
    if resp.status != 500 {
        return FrontAction::Respond(resp);
    }
    if r == Route::Listen && req.query_param("conn_id").is_none() {
        return FrontAction::Respond(bad_request("conn_id", "Missing data for required field."));
    }
    if !reads_json(r, req) {
        return FrontAction::Respond(resp);
    }
    FrontAction::Respond(match parse_body(req.body, true) {
        Err(e) => body_error(e, true),
        Ok(v) if needs_object(r) && !v.is_object() => bad_request("_schema", "Invalid input type."),
        Ok(_) => resp,
    })
}

/// Strict mode: an HTTP/1.1 request must carry exactly one `Host` (RFC 9112 §3.2); 400 and
/// close otherwise, worded as the parser's other malformed requests.
pub fn check_host(req: &Request<'_>) -> Option<Response> {
    if req.head.minor_version != 1 {
        return None;
    }
    let hosts = req
        .head
        .headers(req.buf)
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"host"))
        .count();
    let why = match hosts {
        1 => return None,
        0 => "malformed request: missing Host header",
        _ => "malformed request: more than one Host header",
    };
    Some(Response::text_and_close(
        400,
        Bytes::from_static(why.as_bytes()),
    ))
}

/// Strict mode: only `Sec-WebSocket-Version: 13` (RFC 6455); 0.7.1 (ws4py) also takes 8.
/// `None` lets the handshake's own checks decide (a missing upgrade is still theirs).
pub fn check_ws_version(req: &Request<'_>) -> Option<Response> {
    let v = req.header("sec-websocket-version")?;
    if v.trim_ascii() == b"13" {
        return None;
    }
    let mut resp = Response::new(
        426,
        TEXT,
        Bytes::from_static(b"unsupported Sec-WebSocket-Version"),
    );
    resp.close = true;
    resp.headers.push(("Sec-WebSocket-Version", "13".into()));
    resp.headers.push(("Upgrade", "websocket".into()));
    Some(resp)
}

/// Whether arrays/objects nest deeper than `limit` (strings skipped; invalid JSON is left to
/// the parser).
fn too_deep(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The digit count of the first integer literal longer than [`MAX_INT_DIGITS`], if any.
/// Recursion is bounded by serde_json's nesting limit (128).
fn big_int(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => {
            let s = n.as_str();
            let digits = s.strip_prefix('-').unwrap_or(s);
            let is_int = digits.bytes().all(|b| b.is_ascii_digit());
            (is_int && digits.len() > MAX_INT_DIGITS).then_some(digits.len())
        }
        Value::Array(a) => a.iter().find_map(big_int),
        Value::Object(o) => o.values().find_map(big_int),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_of(digits: usize) -> String {
        format!("1{}", "0".repeat(digits - 1))
    }

    #[test]
    fn integer_digit_limit_is_pythons() {
        for (text, want) in [
            (int_of(4300), None),
            (format!("-{}", int_of(4300)), None),
            (int_of(4301), Some(4301)),
            (format!("-{}", int_of(4301)), Some(4301)),
            (format!("{}.0", int_of(4301)), None),
            (format!("{}e0", int_of(4301)), None),
        ] {
            let body = format!(r#"[{{"m": {{"a": [1, {text}]}}}}]"#);
            let got = parse_body(body.as_bytes(), false).err();
            assert_eq!(got, want.map(BodyError::BigInt), "{} digits", text.len());
        }
    }

    #[test]
    fn lone_surrogates_are_refused_pairs_are_not() {
        for bad in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
        ] {
            assert_eq!(
                parse_body(bad.as_bytes(), false),
                Err(BodyError::LoneSurrogate),
                "{bad}"
            );
        }
        assert_eq!(
            parse_body(br#""\ud83d\ude00""#, true),
            Ok(Value::String("\u{1f600}".into()))
        );
    }

    #[test]
    fn depth_limit_only_in_strict_mode() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_body(deep(64).as_bytes(), true).is_ok());
        assert_eq!(
            parse_body(deep(65).as_bytes(), true),
            Err(BodyError::TooDeep)
        );
        assert!(parse_body(deep(65).as_bytes(), false).is_ok());
        // Brackets inside strings do not count.
        let s = format!(r#"["{}\"{}"]"#, "[".repeat(100), "{".repeat(100));
        assert!(parse_body(s.as_bytes(), true).is_ok());
    }

    #[test]
    fn invalid_json_is_500_by_default_400_when_strict() {
        let e = parse_body(b"{not json", false).unwrap_err();
        assert!(matches!(e, BodyError::Invalid(_)));
        assert_eq!(body_error(e, false).status, 500);
        let e = parse_body(b"", true).unwrap_err();
        let r = body_error(e, true);
        assert_eq!(r.status, 400);
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            "{\n    \"_schema\": [\n        \"Invalid JSON: EOF while parsing a value at line 1 column 0\"\n    ]\n}"
        );
    }
}
