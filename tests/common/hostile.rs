//! The hostile-client tables' machinery (Herald issue 7): a table of malformed, oversized, forged and nonsensical
//! inputs, each with the exact answer the server must give, run against one shared server
//! while healthy clients stay connected.
//!
//! Why one shared server per table and not one per case: the property under test is not only
//! "this input gets that answer" (the unit tables beside each parser cover that) but "nothing
//! a hostile client sends disturbs anybody else". So every table keeps, for its whole run, an
//! echo websocket on each shard and two Channelstream subscribers, and after **every** case
//! checks that the echoes still come back and that a freshly published message still reaches
//! the subscriber. A case that wedges a shard, kills its thread or corrupts the model fails
//! there, named. At the end the server must stop cleanly (no shard thread panicked).
//!
//! Cases alternate between the two shards' ports (`Server::per_shard(2, ..)`), so both the
//! model shard (0) and a remote shard (1) parse hostile input.
//!
//! Expected answers come from the README's limits table ("Limits and what happens at each"),
//! the parsers' error texts, RFC 6455 §7.4 close codes and the Channelstream 0.7.1 spec
//! (§3 signatures, §4.2 error statuses, §4.5 validation messages, §5 endpoints).
//!
//! This module holds what the tables share: the shared server and its limits, the `Case`
//! type with its inputs and exact answers, the healthy clients checked after every case,
//! the runner, and the request builders. The tables themselves are `tests/hostile_http.rs`,
//! `tests/hostile_ws.rs` and `tests/hostile_api.rs`.

use super::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

/// Limits of the shared server: small, so "oversized" inputs stay cheap to send.
pub const MAX_HEAD: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 32;
pub const MAX_BODY: usize = 256 * 1024;
pub const MAX_WS_MESSAGE: usize = 64 * 1024;

/// A peer address outside the default `allow_posting_from` (`["127.0.0.1"]`), still loopback.
pub const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

pub fn hostile_server() -> Server {
    hostile_server_with(false)
}

/// The shared server, in strict mode (`strict = true`) or not.
pub fn hostile_server_with(strict: bool) -> Server {
    Server::per_shard(2, |c| {
        c.strict = strict;
        c.limits.max_head_bytes = MAX_HEAD;
        c.limits.max_headers = MAX_HEADERS;
        c.limits.max_body_bytes = MAX_BODY;
        c.limits.max_ws_message_bytes = MAX_WS_MESSAGE;
    })
}

// ---------------------------------------------------------------------------------------------
// The table machinery

/// What a case sends.
pub enum Input {
    /// These bytes on a fresh TCP connection from 127.0.0.1; one HTTP response is read.
    Raw(Vec<u8>),
    /// The same from another source address.
    RawFrom(IpAddr, Vec<u8>),
    /// A valid handshake on the echo route, then these bytes.
    Frames(Vec<u8>),
    /// A valid handshake on this path; then whatever the server does.
    Upgrade(String),
    /// These bytes (an upgrade request and whatever follows it in the same write); after the
    /// 101, whatever the server does.
    UpgradeRaw(Vec<u8>),
    /// A fresh Channelstream connection (`/connect` then `/ws?conn_id=`), then these bytes.
    CsFrames(Vec<u8>),
}

/// The exact answer.
pub enum Expect {
    /// Status and exact text body; `Connection: close` and the server closes the connection.
    Fatal(u16, &'static str),
    /// Status and exact text body, connection kept.
    Text(u16, &'static str),
    /// Status and a JSON body identical, byte for byte, to Python's `json.dumps(v, indent=4)`
    /// of `v` (so key order and formatting are checked too).
    Json(u16, Value),
    /// The same with Python's default `json.dumps(v)` (Pyramid's own JSON error pages).
    JsonCompact(u16, Value),
    /// Status only (Pyramid-worded HTML pages).
    Status(u16),
    /// Status and the body contains this text (answers with generated ids or times).
    Contains(u16, &'static str),
    /// `POST /message` to the "hostile" channel: 200 whose body contains the needle, and the
    /// subscriber of that channel receives a frame containing the same needle.
    Delivered(&'static str),
    /// Websocket: a close frame with this code, then the TCP connection ends.
    Close(u16),
    /// Websocket: exactly these frames `(opcode, payload)` come back, and the socket stays open.
    Frames(Vec<(u8, Vec<u8>)>),
    /// Websocket: 101, then the TCP connection ends without any frame.
    Dropped,
    /// HTTP: this header with exactly this value, and the inner expectation.
    WithHeader(&'static str, &'static str, Box<Expect>),
}

pub struct Case {
    name: String,
    input: Input,
    expect: Expect,
}

pub fn case(name: impl Into<String>, input: Input, expect: Expect) -> Case {
    Case {
        name: name.into(),
        input,
        expect,
    }
}

/// The clients that must not notice anything.
pub struct Healthy {
    /// One echo websocket per shard.
    echo: Vec<Ws>,
    /// Subscriber of channel "healthy" (on shard 1; the model is on shard 0).
    sub: Ws,
    /// Subscriber of channel "hostile", which receives the hostile payloads of `Delivered`.
    victim: Ws,
    n: u64,
}

impl Healthy {
    fn new(srv: &Server) -> Healthy {
        let echo = (0..srv.shard_addrs.len())
            .map(|i| {
                let ws = ws_connect(&srv.shard(i), "/echo");
                set_timeout(&ws, Duration::from_secs(5));
                ws
            })
            .collect();
        let sub = cs_subscriber(&srv.shard(1), "healthy", &["healthy"]);
        let victim = cs_subscriber(&srv.shard(0), "victim", &["hostile"]);
        Healthy {
            echo,
            sub,
            victim,
            n: 0,
        }
    }

    /// Every healthy client still gets its messages, in order, promptly.
    fn check(&mut self, srv: &Server, after: &str) -> Result<(), String> {
        self.n += 1;
        let n = self.n;
        for (i, ws) in self.echo.iter_mut().enumerate() {
            let text = format!("echo {n} after {after}");
            ws.send(tungstenite::Message::text(text.clone()))
                .map_err(|e| format!("echo on shard {i}: send failed: {e}"))?;
            let got = ws_next_text(ws);
            if got.as_deref() != Some(text.as_str()) {
                return Err(format!("echo on shard {i}: got {got:?}"));
            }
        }
        let publish_on = srv.shard((n % 2) as usize);
        let msg = json!({"n": n});
        let r = api(
            &publish_on,
            "POST",
            "/message",
            &json!([{"channel": "healthy", "user": "probe", "message": msg}]),
        );
        if r.status != 200 {
            return Err(format!("publish: {} {}", r.status, r.text()));
        }
        match cs_next_item(&mut self.sub) {
            Some(item) if item["message"] == msg && item["channel"] == "healthy" => Ok(()),
            other => Err(format!("subscriber: expected message {msg}, got {other:?}")),
        }
    }
}

/// `json.dumps(v, indent=4)`, the way Channelstream renders every JSON body.
pub fn py(v: &Value) -> String {
    herald::py::json::to_string_pretty(v)
}

/// Write, tolerating the server closing early (it may answer before the body is sent).
pub fn send(s: &mut impl Write, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

/// A client socket plus bytes already read from it (what followed the 101 in the same read).
pub struct Peer {
    pre: std::io::Cursor<Vec<u8>>,
    s: TcpStream,
}

impl Peer {
    fn new(s: TcpStream, pre: Vec<u8>) -> Peer {
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        Peer {
            pre: std::io::Cursor::new(pre),
            s,
        }
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.pre.read(buf)? {
            0 => self.s.read(buf),
            n => Ok(n),
        }
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.s.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// Whether the peer has closed the connection (EOF or reset) within 5 s.
pub fn closes(s: &mut impl Read) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

pub fn run_case(at: At, healthy: &mut Healthy, c: &Case) -> Result<(), String> {
    match &c.input {
        Input::Raw(bytes) | Input::RawFrom(_, bytes) => {
            let mut s = match &c.input {
                Input::RawFrom(ip, _) => connect_from(&at, *ip),
                _ => at.connect(),
            };
            send(&mut s, bytes);
            let mut buf = Vec::new();
            let head_only = bytes.starts_with(b"HEAD ");
            let r = read_response(&mut s, &mut buf, head_only)
                .ok_or_else(|| "no HTTP response".to_string())?;
            check_http(&r, &c.expect, &mut s, healthy)
        }
        Input::Frames(bytes) => {
            let mut s = ws_handshake(&at, "/echo");
            send(&mut s, bytes);
            check_ws(&mut Peer::new(s, Vec::new()), &c.expect)
        }
        Input::CsFrames(bytes) => {
            let id = cs_connect(
                &at,
                &format!("cs-{}", uuid::Uuid::new_v4()),
                &["hostile-ws"],
            );
            let mut s = at.connect();
            send(&mut s, &upgrade_request(&format!("/ws?conn_id={id}")));
            let mut buf = Vec::new();
            let r = read_response(&mut s, &mut buf, false)
                .ok_or_else(|| "no handshake response".to_string())?;
            if r.status != 101 {
                return Err(format!("handshake answered {}", r.status));
            }
            send(&mut s, bytes);
            check_ws(&mut Peer::new(s, buf), &c.expect)
        }
        Input::Upgrade(_) | Input::UpgradeRaw(_) => {
            let bytes = match &c.input {
                Input::Upgrade(path) => upgrade_request(path),
                Input::UpgradeRaw(b) => b.clone(),
                _ => unreachable!("matched above"),
            };
            let mut s = at.connect();
            send(&mut s, &bytes);
            let mut buf = Vec::new();
            let r = read_response(&mut s, &mut buf, false)
                .ok_or_else(|| "no handshake response".to_string())?;
            if r.status != 101 {
                return check_http(&r, &c.expect, &mut s, healthy);
            }
            check_ws(&mut Peer::new(s, buf), &c.expect)
        }
    }
}

pub fn check_http(
    r: &Resp,
    expect: &Expect,
    s: &mut TcpStream,
    healthy: &mut Healthy,
) -> Result<(), String> {
    let status = |want: u16| {
        if r.status == want {
            Ok(())
        } else {
            Err(format!(
                "status {} (want {want}), body {:?}",
                r.status,
                r.text()
            ))
        }
    };
    match expect {
        Expect::WithHeader(name, value, inner) => {
            if r.header(name) != Some(*value) {
                return Err(format!(
                    "header {name}: {:?} (want {value:?})",
                    r.header(name)
                ));
            }
            check_http(r, inner, s, healthy)
        }
        Expect::Fatal(code, body) => {
            status(*code)?;
            if r.text() != *body {
                return Err(format!("body {:?} (want {body:?})", r.text()));
            }
            if r.header("Connection") != Some("close") {
                return Err(format!("Connection header {:?}", r.header("Connection")));
            }
            if !closes(s) {
                return Err("connection left open".into());
            }
            Ok(())
        }
        Expect::Text(code, body) => {
            status(*code)?;
            if r.text() != *body {
                return Err(format!("body {:?} (want {body:?})", r.text()));
            }
            Ok(())
        }
        Expect::Json(code, v) => {
            status(*code)?;
            if r.header("Content-Type") != Some("application/json") {
                return Err(format!("content type {:?}", r.header("Content-Type")));
            }
            if r.text() != py(v) {
                return Err(format!("body {:?} (want {:?})", r.text(), py(v)));
            }
            Ok(())
        }
        Expect::JsonCompact(code, v) => {
            status(*code)?;
            let want = herald::py::json::to_string_compact(v);
            if r.text() != want {
                return Err(format!("body {:?} (want {want:?})", r.text()));
            }
            Ok(())
        }
        Expect::Status(code) => status(*code),
        Expect::Contains(code, needle) => {
            status(*code)?;
            if !r.text().contains(needle) {
                return Err(format!("body {:?} lacks {needle:?}", r.text()));
            }
            Ok(())
        }
        Expect::Delivered(needle) => {
            status(200)?;
            if !r.text().contains(needle) {
                return Err(format!("echo {:?} lacks {needle:?}", r.text()));
            }
            match cs_next_frame(&mut healthy.victim) {
                Some(f) if f.contains(needle) => Ok(()),
                other => Err(format!("victim frame {other:?} lacks {needle:?}")),
            }
        }
        Expect::Close(_) | Expect::Frames(_) | Expect::Dropped => Err(format!(
            "HTTP {} {:?} instead of a websocket",
            r.status,
            r.text()
        )),
    }
}

pub fn check_ws(s: &mut Peer, expect: &Expect) -> Result<(), String> {
    match expect {
        Expect::Close(code) => {
            let mut seen = Vec::new();
            loop {
                match ws_read_frame(s) {
                    WsRead::Frame(_, 8, p) => {
                        if close_code(&p) != Some(*code) {
                            return Err(format!(
                                "close {:?} (want {code}) after {seen:?}",
                                close_code(&p)
                            ));
                        }
                        break;
                    }
                    WsRead::Frame(_, op, p) => {
                        seen.push((op, p.len()));
                        if seen.len() > 100_000 {
                            return Err("frames but no close".into());
                        }
                    }
                    other => return Err(format!("{other:?} instead of close {code}")),
                }
            }
            if !closes(s) {
                return Err("TCP left open after the close frame".into());
            }
            Ok(())
        }
        Expect::Frames(want) => {
            for (i, (op, payload)) in want.iter().enumerate() {
                match ws_read_frame(s) {
                    WsRead::Frame(true, o, p) if o == *op && p == *payload => {}
                    other => {
                        return Err(format!(
                            "frame {i}: {} (want op {op}, {} bytes)",
                            describe(&other),
                            payload.len()
                        ))
                    }
                }
            }
            // Still open: a ping is answered.
            send(s, &ws_frame(true, 9, b"alive?", true));
            match ws_read_frame(s) {
                WsRead::Frame(true, 0xA, p) if p == b"alive?" => Ok(()),
                other => Err(format!("after the frames: {}", describe(&other))),
            }
        }
        Expect::Dropped => match ws_read_frame(s) {
            WsRead::Eof => Ok(()),
            other => Err(format!("{} instead of a silent drop", describe(&other))),
        },
        _ => Err("websocket opened where HTTP was expected".into()),
    }
}

pub fn describe(r: &WsRead) -> String {
    match r {
        WsRead::Frame(fin, op, p) if p.len() > 64 => {
            format!("Frame(fin={fin}, op={op}, {} bytes)", p.len())
        }
        WsRead::Frame(fin, op, p) => format!(
            "Frame(fin={fin}, op={op}, {:?})",
            String::from_utf8_lossy(p)
        ),
        other => format!("{other:?}"),
    }
}

/// Run a table against a fresh shared server; every failure is collected and reported by name.
pub fn run_table(cases: Vec<Case>) {
    run_table_with(cases, false)
}

/// Run a table against a fresh shared server in strict mode (README "Strict mode").
pub fn run_strict_table(cases: Vec<Case>) {
    run_table_with(cases, true)
}

fn run_table_with(cases: Vec<Case>, strict: bool) {
    let srv = hostile_server_with(strict);
    let mut healthy = Healthy::new(&srv);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let at = srv.shard(i % 2);
        if let Err(e) = run_case(at, &mut healthy, c) {
            failures.push(format!("[{}] {}: {e}", i % 2, c.name));
        }
        if let Err(e) = healthy.check(&srv, &c.name) {
            // A broken server makes every later check fail too: stop at the first.
            failures.push(format!("HEALTHY CLIENT after {:?}: {e}", c.name));
            break;
        }
    }
    drop(healthy);
    let total = cases.len();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(srv.stop(), "a shard thread failed or panicked");
    eprintln!("{total} hostile cases passed");
}

// ---------------------------------------------------------------------------------------------
// Request builders

/// `OPTIONS /` with extra header lines: the simplest request every path answers 200.
pub fn options_with(extra: &str) -> Vec<u8> {
    format!("OPTIONS / HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

/// A request with a raw body and the given token (no token when `None`).
pub fn req(method: &str, path: &str, token: Option<&str>, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n");
    if let Some(t) = token {
        head.push_str(&format!("X-Channelstream-Secret: {t}\r\n"));
    }
    head.push_str(extra);
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut b = head.into_bytes();
    b.extend_from_slice(body);
    b
}

/// A signed request with a fresh token.
pub fn signed(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    req(method, path, Some(&token()), "", body)
}

pub fn signed_json_raw(method: &str, path: &str, text: &str) -> Vec<u8> {
    signed(method, path, text.as_bytes())
}

pub fn signed_json(method: &str, path: &str, v: &Value) -> Vec<u8> {
    signed(method, path, v.to_string().as_bytes())
}

pub fn signer() -> herald::auth::Signer {
    herald::auth::Signer::new("secret")
}

pub fn bad_request(reason: &str) -> String {
    format!("malformed request: {reason}")
}

pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

pub fn fatal400(reason: &str) -> Expect {
    Expect::Fatal(400, leak(bad_request(reason)))
}

pub const INTERNAL: Expect = Expect::Fatal(500, "Internal Server Error");

pub fn schema_input_type() -> Expect {
    Expect::Json(422, json!({"_schema": ["Invalid input type."]}))
}

/// `400 {field: [text]}`: a body refused before validation (README "Hostile input").
pub fn refused(field: &str, text: &str) -> Expect {
    Expect::Json(400, json!({ field: [text] }))
}

/// Strict mode's answer to a body that is not JSON: `"Invalid JSON: "` + the parser's message.
pub fn invalid_json(body: &[u8]) -> Expect {
    let msg = match serde_json::from_slice::<Value>(body) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("test body {body:?} is valid JSON"),
    };
    refused("_schema", &format!("Invalid JSON: {msg}"))
}

/// Both modes: an integer literal of `digits` digits (over 4300) in a body.
pub fn big_int_refused(digits: usize) -> Expect {
    refused(
        "_schema",
        &format!(
            "Exceeds the limit (4300) for integer string conversion: value has {digits} digits"
        ),
    )
}

/// Both modes: a lone surrogate escape in a body.
pub fn lone_surrogate_refused() -> Expect {
    refused(
        "_schema",
        "Lone surrogate (\\ud800-\\udfff) in a JSON string.",
    )
}
