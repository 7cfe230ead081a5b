//! Hostile clients (Herald issue 7): a table of malformed, oversized, forged and nonsensical
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

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

/// Limits of the shared server: small, so "oversized" inputs stay cheap to send.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
const MAX_BODY: usize = 256 * 1024;
const MAX_WS_MESSAGE: usize = 64 * 1024;

/// A peer address outside the default `allow_posting_from` (`["127.0.0.1"]`), still loopback.
const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn hostile_server() -> Server {
    Server::per_shard(2, |c| {
        c.limits.max_head_bytes = MAX_HEAD;
        c.limits.max_headers = MAX_HEADERS;
        c.limits.max_body_bytes = MAX_BODY;
        c.limits.max_ws_message_bytes = MAX_WS_MESSAGE;
    })
}

// ---------------------------------------------------------------------------------------------
// The table machinery

/// What a case sends.
enum Input {
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
enum Expect {
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
}

struct Case {
    name: String,
    input: Input,
    expect: Expect,
}

fn case(name: impl Into<String>, input: Input, expect: Expect) -> Case {
    Case {
        name: name.into(),
        input,
        expect,
    }
}

/// The clients that must not notice anything.
struct Healthy {
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
fn py(v: &Value) -> String {
    herald::py::json::to_string_pretty(v)
}

/// Write, tolerating the server closing early (it may answer before the body is sent).
fn send(s: &mut impl Write, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

/// A client socket plus bytes already read from it (what followed the 101 in the same read).
struct Peer {
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
fn closes(s: &mut impl Read) -> bool {
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

fn run_case(at: At, healthy: &mut Healthy, c: &Case) -> Result<(), String> {
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

fn check_http(
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

fn check_ws(s: &mut Peer, expect: &Expect) -> Result<(), String> {
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

fn describe(r: &WsRead) -> String {
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
fn run_table(cases: Vec<Case>) {
    let srv = hostile_server();
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
fn options_with(extra: &str) -> Vec<u8> {
    format!("OPTIONS / HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

/// A request with a raw body and the given token (no token when `None`).
fn req(method: &str, path: &str, token: Option<&str>, extra: &str, body: &[u8]) -> Vec<u8> {
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
fn signed(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    req(method, path, Some(&token()), "", body)
}

fn signed_json_raw(method: &str, path: &str, text: &str) -> Vec<u8> {
    signed(method, path, text.as_bytes())
}

fn signed_json(method: &str, path: &str, v: &Value) -> Vec<u8> {
    signed(method, path, v.to_string().as_bytes())
}

fn signer() -> herald::auth::Signer {
    herald::auth::Signer::new("secret")
}

fn bad_request(reason: &str) -> String {
    format!("malformed request: {reason}")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn fatal400(reason: &str) -> Expect {
    Expect::Fatal(400, leak(bad_request(reason)))
}

const INTERNAL: Expect = Expect::Fatal(500, "Internal Server Error");

fn schema_input_type() -> Expect {
    Expect::Json(422, json!({"_schema": ["Invalid input type."]}))
}

// ---------------------------------------------------------------------------------------------
// Table 1: HTTP framing — request lines, headers, lengths, chunked, sizes

fn http_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| v.push(case(name, Input::Raw(bytes), e));

    // Request lines.
    add(
        "control byte in method",
        b"GET\x01 / HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "HTTP/0.9 request line (no version)",
        b"GET /\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "HTTP/2.0 in an HTTP/1 request line",
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        Expect::Fatal(505, "HTTP version not supported"),
    );
    add(
        "HTTP/1.2",
        b"GET / HTTP/1.2\r\n\r\n".to_vec(),
        Expect::Fatal(505, "HTTP version not supported"),
    );
    add(
        "not HTTP at all",
        b"GET / FOO/1.1\r\n\r\n".to_vec(),
        fatal400("invalid HTTP version"),
    );
    add(
        "lower-case protocol name",
        b"GET / http/1.1\r\n\r\n".to_vec(),
        fatal400("invalid HTTP version"),
    );
    add(
        "NUL in the request target",
        b"GET /\x00 HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "two spaces between method and target",
        b"GET  / HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "TLS ClientHello on the plain port",
        vec![
            0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, b'\r', b'\n', b'\r',
            b'\n',
        ],
        fatal400("invalid request line"),
    );
    add(
        "empty lines before the request are skipped (RFC 9112 §2.2)",
        b"\r\n\r\nOPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );

    // Header syntax.
    add(
        "space inside a header name",
        options_with("Bad Header: 1\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "header line without a colon",
        options_with("NoColonHere\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "whitespace before the colon (smuggling vector)",
        options_with("Transfer-Encoding : chunked\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "obsolete line folding",
        options_with("X-A: 1\r\n  folded\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "control byte in a header value",
        options_with("X-A: a\x01b\r\n"),
        fatal400("invalid header value"),
    );
    add(
        "bare CR line ending",
        b"OPTIONS / HTTP/1.1\rHost: x\r\r".to_vec(),
        fatal400("invalid line ending"),
    );
    add(
        "non-UTF-8 (obs-text) header value is accepted",
        b"OPTIONS / HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\x80\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );

    // Content-Length and Transfer-Encoding.
    add(
        "Content-Length not a number",
        b"POST /connect HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "negative Content-Length",
        b"POST /connect HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "Content-Length with a plus sign",
        b"POST /connect HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "empty Content-Length",
        b"POST /connect HTTP/1.1\r\nContent-Length: \r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "Content-Length as a list",
        b"POST /connect HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "two different Content-Lengths",
        b"POST /connect HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x".to_vec(),
        fatal400("conflicting Content-Length"),
    );
    add(
        "Content-Length then Transfer-Encoding",
        b"POST /connect HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("both Content-Length and Transfer-Encoding"),
    );
    add(
        "Transfer-Encoding then Content-Length",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("both Content-Length and Transfer-Encoding"),
    );
    add(
        "gzip, chunked",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
        Expect::Fatal(501, "unsupported transfer encoding"),
    );
    add(
        "chunked, gzip (chunked not final)",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".to_vec(),
        fatal400("chunked is not the final coding"),
    );
    add(
        "chunked twice",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("chunked is not the final coding"),
    );
    add(
        "Transfer-Encoding in HTTP/1.0",
        b"POST /connect HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        fatal400("Transfer-Encoding in HTTP/1.0"),
    );
    add(
        "chunk size not hex",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        fatal400("chunk size is not hex"),
    );
    add(
        "chunk size overflows 64 bits",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n"
            .to_vec(),
        fatal400("chunk size overflows"),
    );
    add(
        "chunk data longer than its size",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("chunk data not followed by CRLF"),
    );

    // Sizes (README: 431 / 413, connection closed).
    add(
        "Content-Length of 2^64+",
        b"POST /connect HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        Expect::Fatal(413, "request body too large"),
    );
    add(
        "Content-Length one past the body limit",
        format!(
            "POST /connect HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .into_bytes(),
        Expect::Fatal(413, "request body too large"),
    );
    add(
        "Expect: 100-continue with an oversized body gets 413, not 100",
        format!(
            "POST /connect HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .into_bytes(),
        Expect::Fatal(413, "request body too large"),
    );
    let mut chunked = b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..=(MAX_BODY / 4096) {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 4096));
        chunked.extend_from_slice(b"\r\n");
    }
    add(
        "chunked body past the body limit",
        chunked,
        Expect::Fatal(413, "request body too large"),
    );
    let mut big_header = options_with("X-Pad: ");
    big_header.truncate(big_header.len() - 2);
    big_header.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    big_header.extend_from_slice(b"\r\n\r\n");
    add(
        "one header larger than the head limit",
        big_header,
        Expect::Fatal(431, "request header block too large"),
    );
    let mut long_line = b"GET /".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    long_line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    add(
        "request target longer than the head limit",
        long_line,
        Expect::Fatal(431, "request header block too large"),
    );
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
    add(
        "one header more than the header count limit",
        options_with(&many),
        Expect::Fatal(431, "request header block too large"),
    );
    add(
        "endless header without a line end, sent at once",
        {
            let mut b = b"GET / HTTP/1.1\r\nX: ".to_vec();
            b.extend(std::iter::repeat_n(b'z', 4 * MAX_HEAD));
            b
        },
        Expect::Fatal(431, "request header block too large"),
    );
    v
}

#[test]
fn hostile_http() {
    let cases = http_cases();
    assert!(cases.len() >= 35, "{}", cases.len());
    run_table(cases);
}

// ---------------------------------------------------------------------------------------------
// Table 2: websocket upgrades and frames

fn ws_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let upgrade = |extra: &str, version: &str, key: &str| {
        format!(
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        )
        .into_bytes()
    };
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const BAD_KEY: Expect = Expect::Fatal(400, "missing or invalid Sec-WebSocket-Key");
    const NOT_UPGRADE: Expect = Expect::Fatal(426, "not a websocket upgrade");
    const BAD_VERSION: Expect = Expect::Fatal(426, "unsupported Sec-WebSocket-Version");

    // Upgrades.
    let mut add_raw = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(format!("upgrade: {name}"), Input::Raw(bytes), e))
    };
    add_raw(
        "missing key",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        BAD_KEY,
    );
    add_raw(
        "key of 23 characters",
        upgrade("", "13", &KEY[1..]),
        BAD_KEY,
    );
    add_raw(
        "key of 24 characters that is not base64",
        upgrade("", "13", "!!!!!!!!!!!!!!!!!!!!!!!!"),
        BAD_KEY,
    );
    add_raw(
        "key decoding to 17 bytes",
        upgrade("", "13", "AAAAAAAAAAAAAAAAAAAAAAAA"),
        BAD_KEY,
    );
    add_raw("version 12", upgrade("", "12", KEY), BAD_VERSION);
    add_raw(
        "version 99999999999999999999",
        upgrade("", "99999999999999999999", KEY),
        BAD_VERSION,
    );
    add_raw(
        "no Connection: Upgrade",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "Upgrade: h2c instead of websocket",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "upgrade over HTTP/1.0",
        b"GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "upgrade with POST",
        b"POST /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "plain GET on /ws",
        b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );

    // Channelstream /ws conn_ids (spec §5.11): the handshake completes before the id is read.
    let mut add_up = |name: &str, path: String, e: Expect| {
        v.push(case(format!("/ws: {name}"), Input::Upgrade(path), e))
    };
    add_up(
        "no conn_id: dropped without a close frame",
        "/ws".into(),
        Expect::Dropped,
    );
    add_up(
        "garbage conn_id: dropped without a close frame",
        "/ws?conn_id=garbage".into(),
        Expect::Dropped,
    );
    add_up(
        "4 KB conn_id: dropped without a close frame",
        format!("/ws?conn_id={}", "f".repeat(4000)),
        Expect::Dropped,
    );
    add_up(
        "unknown well-formed conn_id: close 1000",
        format!("/ws?conn_id={}", uuid::Uuid::new_v4()),
        Expect::Close(1000),
    );

    // Frames on the echo route (RFC 6455 §5, §7.4; README: 1002 / 1007 / 1009).
    let f = ws_frame;
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(format!("frame: {name}"), Input::Frames(bytes), e))
    };
    add(
        "unmasked text frame",
        f(true, 1, b"unmasked", false),
        Expect::Close(1002),
    );
    add(
        "RSV1 without an extension",
        vec![0xC1, 0x80, 1, 2, 3, 4],
        Expect::Close(1002),
    );
    add("RSV2", vec![0xA1, 0x80, 1, 2, 3, 4], Expect::Close(1002));
    add("RSV3", vec![0x91, 0x80, 1, 2, 3, 4], Expect::Close(1002));
    add(
        "reserved data opcode 3",
        f(true, 3, b"", true),
        Expect::Close(1002),
    );
    add(
        "reserved data opcode 7",
        f(true, 7, b"x", true),
        Expect::Close(1002),
    );
    add(
        "reserved control opcode 0xB",
        f(true, 0xB, b"", true),
        Expect::Close(1002),
    );
    add(
        "reserved control opcode 0xF",
        f(true, 0xF, b"x", true),
        Expect::Close(1002),
    );
    add(
        "invalid UTF-8 text",
        f(true, 1, &[0xff, 0xfe], true),
        Expect::Close(1007),
    );
    add(
        "overlong UTF-8 encoding of '/'",
        f(true, 1, &[0xc0, 0xaf], true),
        Expect::Close(1007),
    );
    add(
        "UTF-16 surrogate encoded in UTF-8",
        f(true, 1, &[0xed, 0xa0, 0x80], true),
        Expect::Close(1007),
    );
    add(
        "code point above U+10FFFF",
        f(true, 1, &[0xf4, 0x90, 0x80, 0x80], true),
        Expect::Close(1007),
    );
    add(
        "invalid UTF-8 split across fragments",
        [f(false, 1, b"ok \xe2\x82", true), f(true, 0, b"\x28", true)].concat(),
        Expect::Close(1007),
    );
    add(
        "truncated UTF-8 at the end of a message",
        f(true, 1, b"snow \xe2\x98", true),
        Expect::Close(1007),
    );
    add(
        "invalid UTF-8 in a close reason",
        f(true, 8, &[0x03, 0xe8, 0xff], true),
        Expect::Close(1007),
    );
    add(
        "ping of 126 bytes (control frames max 125)",
        f(true, 9, &[b'p'; 126], true),
        Expect::Close(1002),
    );
    add(
        "close of 126 bytes",
        f(
            true,
            8,
            &[[0x03, 0xe8].as_slice(), &[b'r'; 124]].concat(),
            true,
        ),
        Expect::Close(1002),
    );
    add(
        "fragmented ping",
        f(false, 9, b"x", true),
        Expect::Close(1002),
    );
    add(
        "close with a 1-byte payload",
        f(true, 8, &[0x03], true),
        Expect::Close(1002),
    );
    add(
        "close code 1005 (reserved, never on the wire)",
        f(true, 8, &1005u16.to_be_bytes(), true),
        Expect::Close(1002),
    );
    add(
        "close code 999",
        f(true, 8, &999u16.to_be_bytes(), true),
        Expect::Close(1002),
    );
    add(
        "continuation without a start",
        f(true, 0, b"x", true),
        Expect::Close(1002),
    );
    add(
        "new text message inside a fragmented one",
        [f(false, 1, b"a", true), f(true, 1, b"b", true)].concat(),
        Expect::Close(1002),
    );
    add(
        "64-bit length with the top bit set",
        {
            let mut b = vec![0x82, 0xFF];
            b.extend_from_slice(&(1u64 << 63).to_be_bytes());
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        },
        Expect::Close(1002),
    );
    add(
        "declared 2^62-byte message",
        {
            let mut b = vec![0x82, 0xFF];
            b.extend_from_slice(&(1u64 << 62).to_be_bytes());
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        },
        Expect::Close(1009),
    );
    add(
        "one frame one byte past the message limit",
        f(true, 2, &vec![0u8; MAX_WS_MESSAGE + 1], true),
        Expect::Close(1009),
    );
    add(
        "fragments summing past the message limit",
        (0..=MAX_WS_MESSAGE / 1024)
            .map(|i| f(false, if i == 0 { 2 } else { 0 }, &[7u8; 1024], true))
            .collect::<Vec<_>>()
            .concat(),
        Expect::Close(1009),
    );

    // Storms that are legal: the exact message comes back.
    add(
        "storm of 20,000 empty continuation fragments",
        {
            let mut b = f(false, 1, b"start", true);
            for _ in 0..20_000 {
                b.extend(f(false, 0, b"", true));
            }
            b.extend(f(true, 0, b"-end", true));
            b
        },
        Expect::Frames(vec![(1, b"start-end".to_vec())]),
    );
    add(
        "a message in 8,000 one-byte fragments",
        {
            let text: Vec<u8> = (0..8000u32).map(|i| b'a' + (i % 26) as u8).collect();
            let mut b = Vec::new();
            for (i, byte) in text.iter().enumerate() {
                let op = if i == 0 { 1 } else { 0 };
                b.extend(f(i == text.len() - 1, op, &[*byte], true));
            }
            b
        },
        Expect::Frames(vec![(
            1,
            (0..8000u32).map(|i| b'a' + (i % 26) as u8).collect(),
        )]),
    );
    add(
        "1,000 pings between two fragments, each answered in order",
        {
            let mut b = f(false, 1, b"he", true);
            for i in 0..1000u32 {
                b.extend(f(true, 9, &i.to_be_bytes(), true));
            }
            b.extend(f(true, 0, b"llo", true));
            b
        },
        Expect::Frames(
            (0..1000u32)
                .map(|i| (0xA, i.to_be_bytes().to_vec()))
                .chain([(1, b"hello".to_vec())])
                .collect(),
        ),
    );
    add(
        "binary frame with bytes that are not UTF-8 is fine",
        f(true, 2, &[0xff, 0xfe, 0x00, 0xc0], true),
        Expect::Frames(vec![(2, vec![0xff, 0xfe, 0x00, 0xc0])]),
    );
    add(
        "unsolicited pong is ignored",
        [f(true, 0xA, b"unasked", true), f(true, 1, b"after", true)].concat(),
        Expect::Frames(vec![(1, b"after".to_vec())]),
    );
    add(
        "client close 4000 is echoed",
        f(true, 8, &4000u16.to_be_bytes(), true),
        Expect::Close(4000),
    );
    add(
        "frames after the client's close are ignored",
        [
            f(true, 8, &1000u16.to_be_bytes(), true),
            f(true, 1, b"too late", true),
        ]
        .concat(),
        Expect::Close(1000),
    );

    // Bytes pipelined behind the upgrade request, in the same write.
    v.push(case(
        "upgrade: a frame in the same packet as the upgrade is echoed",
        Input::UpgradeRaw([upgrade_request("/echo"), ws_frame(true, 1, b"early", true)].concat()),
        Expect::Frames(vec![(1, b"early".to_vec())]),
    ));
    v.push(case(
        "upgrade: an HTTP request pipelined behind the upgrade is a protocol error",
        Input::UpgradeRaw([upgrade_request("/echo"), b"GET / HTTP/1.1\r\n\r\n".to_vec()].concat()),
        Expect::Close(1002),
    ));
    v.push(case(
        "upgrade: a request body is consumed before the websocket starts",
        Input::UpgradeRaw(
            [
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
                ws_frame(true, 1, b"after body", true),
            ]
            .concat(),
        ),
        Expect::Frames(vec![(1, b"after body".to_vec())]),
    ));

    // The same protocol rules on real Channelstream sockets (the model is told of each close).
    let mut cs = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(
            format!("Channelstream socket: {name}"),
            Input::CsFrames(bytes),
            e,
        ))
    };
    cs(
        "unmasked frame",
        ws_frame(true, 1, b"x", false),
        Expect::Close(1002),
    );
    cs(
        "invalid UTF-8",
        ws_frame(true, 1, &[0xc3, 0x28], true),
        Expect::Close(1007),
    );
    cs(
        "message past the limit",
        ws_frame(true, 1, &vec![b'j'; MAX_WS_MESSAGE + 1], true),
        Expect::Close(1009),
    );
    cs(
        "reserved opcode",
        ws_frame(true, 0xC, b"", true),
        Expect::Close(1002),
    );
    cs(
        "text that is not JSON is accepted and ignored (spec §5.11)",
        [
            ws_frame(true, 1, b"this is not json", true),
            ws_frame(true, 1, br#"{"type": "heartbeat"}"#, true),
            ws_frame(true, 9, b"cs-ping", true),
        ]
        .concat(),
        Expect::Frames(vec![(0xA, b"cs-ping".to_vec())]),
    );
    cs(
        "binary frames are ignored",
        [
            ws_frame(true, 2, &[0, 1, 2, 0xff], true),
            ws_frame(true, 9, b"p2", true),
        ]
        .concat(),
        Expect::Frames(vec![(0xA, b"p2".to_vec())]),
    );
    cs(
        "client close 1000 is answered 1000",
        ws_frame(true, 8, &1000u16.to_be_bytes(), true),
        Expect::Close(1000),
    );
    v
}

#[test]
fn hostile_websocket() {
    let cases = ws_cases();
    assert!(cases.len() >= 45, "{}", cases.len());
    run_table(cases);
}

// ---------------------------------------------------------------------------------------------
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
    add(
        "lone surrogate escape (Python accepts it; not valid Unicode)",
        signed("POST", "/connect", br#"{"username": "sur\ud800"}"#),
        INTERNAL,
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
    add(
        "history_size 1e400: int(inf) raises OverflowError in marshmallow -> 500",
        signed_json_raw(
            "POST",
            "/channel_config",
            r#"{"huge1": {"history_size": 1e400}}"#,
        ),
        INTERNAL,
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
