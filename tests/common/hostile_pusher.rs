//! The hostile-client table for the Pusher surface (`tests/hostile_pusher.rs`): forged and
//! stale signatures, bad bodies and frames, oversized events and frames, unknown apps, channel
//! name abuse, floods. Each case has its exact answer (status and JSON body, or the exact
//! events and close code), and after every case a healthy Pusher connection on each shard and a
//! healthy Channelstream subscriber must still get their messages (the same property as
//! `common::hostile`, for the second dialect on the same port).
//!
//! Why raw frames and raw HTTP: a hostile client does not use an SDK, and the answers must be
//! checked byte-exactly; the only client library here is tungstenite for the healthy sockets.
//!
//! The server: two shards on their own ports (cases alternate between them, so both the
//! socket's shard and a channel's remote owner meet hostile input), `common::hostile`'s small
//! limits (64 KiB websocket messages, 256 KiB bodies), and two Pusher apps: `app-id` /
//! `app-key` / `app-secret` with client events enabled explicitly, and `quiet-id` /
//! `quiet-key` / `quiet-secret` without them.

use super::hostile::{closes, MAX_BODY, MAX_HEAD, MAX_HEADERS, MAX_WS_MESSAGE};
use super::pusher::{data, hex, hmac_hex, next, KEY};
use super::*;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tungstenite::Message;

/// The app's id (its key and secret are `common::pusher`'s).
pub const APP_ID: &str = "app-id";
/// A second app, without client events.
pub const QUIET_ID: &str = "quiet-id";
/// Its key.
pub const QUIET_KEY: &str = "quiet-key";
/// Its secret.
pub const QUIET_SECRET: &str = "quiet-secret";

/// Hex HMAC-SHA256 of `msg` under the quiet app's secret.
pub fn quiet_hmac(msg: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(QUIET_SECRET.as_bytes())
        .expect("any key length");
    hmac::Mac::update(&mut mac, msg.as_bytes());
    hex(&hmac::Mac::finalize(mac).into_bytes())
}

/// The pusher-js path with the protocol query.
pub const PROTO: &str = "?protocol=7&client=js&version=8.6.0&flash=false";

/// The shared server of the table.
pub fn pusher_hostile_server() -> Server {
    Server::per_shard(2, |c| {
        c.limits.max_head_bytes = MAX_HEAD;
        c.limits.max_headers = MAX_HEADERS;
        c.limits.max_body_bytes = MAX_BODY;
        c.limits.max_ws_message_bytes = MAX_WS_MESSAGE;
        let mut app = herald::config::PusherApp::new(APP_ID, KEY, super::pusher::SECRET);
        app.client_events = true;
        let quiet = herald::config::PusherApp::new(QUIET_ID, QUIET_KEY, QUIET_SECRET);
        c.pusher_apps = vec![app, quiet];
    })
}

/// Frame bytes built from the socket id.
pub type Frames = Box<dyn Fn(&str) -> Vec<u8>>;

/// A case that checks itself.
pub type Check = Box<dyn Fn(At) -> Result<(), String>>;

/// What a case sends.
pub enum PIn {
    /// These bytes on a fresh TCP connection; one HTTP response is read.
    Http(Vec<u8>),
    /// An upgrade to this path (no `connection_established` is awaited).
    Upgrade(String),
    /// An upgrade to the app; after `connection_established`, the frame bytes this builds from
    /// the socket id, in one write.
    Ws(Frames),
    /// A case of several sockets, checked by itself.
    Custom(Check),
}

/// The exact answer.
pub enum POut {
    /// Status and JSON body (compared as JSON values); the connection stays usable.
    Json(u16, Value),
    /// A core answer: status, exact text body, `Connection: close`, and the TCP end.
    Fatal(u16, &'static str),
    /// These text frames (JSON values) in this order, then the socket still answers a ping.
    Events(Vec<Value>),
    /// These text frames in any order (some come from a channel's owner shard, some from the
    /// socket's own), then the socket still answers a ping.
    AnyOrder(Vec<Value>),
    /// These text frames, then a close frame with this code, then the TCP end.
    Close(Vec<Value>, u16),
    /// Whatever `PIn::Custom` checked.
    Checked,
}

/// One row of the table.
pub struct PCase {
    name: String,
    input: PIn,
    expect: POut,
}

/// A row.
pub fn pcase(name: impl Into<String>, input: PIn, expect: POut) -> PCase {
    PCase {
        name: name.into(),
        input,
        expect,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and frames

/// How to sign an HTTP API request; `Sig::default()` signs it right, now.
#[derive(Clone)]
pub struct Sig {
    pub key: String,
    pub secret: String,
    /// Seconds relative to now.
    pub skew: i64,
    /// A literal `auth_timestamp` (overrides `skew`).
    pub timestamp: Option<String>,
    pub version: String,
    /// `None`: MD5 of the body when there is one; `Some(None)`: no `body_md5`; `Some(Some(x))`:
    /// this value.
    pub md5: Option<Option<String>>,
    /// A literal `auth_signature` instead of the right one.
    pub signature: Option<String>,
    /// Sign this body, send the real one.
    pub signed_body: Option<Vec<u8>>,
}

impl Default for Sig {
    fn default() -> Sig {
        Sig {
            key: KEY.into(),
            secret: super::pusher::SECRET.into(),
            skew: 0,
            timestamp: None,
            version: "1.0".into(),
            md5: None,
            signature: None,
            signed_body: None,
        }
    }
}

/// A signed HTTP API request for `/apps/{app}/{endpoint}` with an extra query and a raw body.
pub fn api_req(
    method: &str,
    app: &str,
    endpoint: &str,
    query: &str,
    body: &[u8],
    s: &Sig,
) -> Vec<u8> {
    let path = format!("/apps/{app}/{endpoint}");
    let signed_body = s.signed_body.as_deref().unwrap_or(body);
    let ts = s
        .timestamp
        .clone()
        .unwrap_or_else(|| (unix_now() as i64 + s.skew).to_string());
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    params.push(("auth_key".into(), s.key.clone()));
    params.push(("auth_timestamp".into(), ts));
    params.push(("auth_version".into(), s.version.clone()));
    let md5 = match &s.md5 {
        None if !signed_body.is_empty() || method == "POST" => Some(hex(&Md5::digest(signed_body))),
        None => None,
        Some(m) => m.clone(),
    };
    if let Some(m) = md5 {
        params.push(("body_md5".into(), m));
    }
    params.sort();
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let q = q.join("&");
    let want = {
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(s.secret.as_bytes())
            .expect("any key length");
        hmac::Mac::update(&mut mac, format!("{method}\n{path}\n{q}").as_bytes());
        hex(&hmac::Mac::finalize(mac).into_bytes())
    };
    let sig = s.signature.clone().unwrap_or(want);
    let mut r = format!(
        "{method} {path}?{q}&auth_signature={sig} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A correctly signed `POST /apps/app-id/{endpoint}` of this JSON text.
pub fn post(endpoint: &str, body: &str) -> Vec<u8> {
    api_req(
        "POST",
        APP_ID,
        endpoint,
        "",
        body.as_bytes(),
        &Sig::default(),
    )
}

/// `POST /apps/app-id/events` signed with `sig`.
pub fn post_with(body: &str, sig: Sig) -> Vec<u8> {
    api_req("POST", APP_ID, "events", "", body.as_bytes(), &sig)
}

/// A small valid event body.
pub const EVENT: &str = r#"{"name":"e","channel":"hostile","data":"x"}"#;

/// `{"error": msg}`.
pub fn err(status: u16, msg: &str) -> POut {
    POut::Json(status, json!({ "error": msg }))
}

/// One masked client text frame of this JSON value.
pub fn text(v: &Value) -> Vec<u8> {
    ws_frame(true, 1, v.to_string().as_bytes(), true)
}

/// One masked client text frame of these raw bytes.
pub fn raw_text(b: &[u8]) -> Vec<u8> {
    ws_frame(true, 1, b, true)
}

/// `pusher:subscribe`.
pub fn sub(channel: &str, auth: Option<&str>, channel_data: Option<&str>) -> Value {
    let mut d = json!({ "channel": channel });
    if let Some(a) = auth {
        d["auth"] = json!(a);
    }
    if let Some(cd) = channel_data {
        d["channel_data"] = json!(cd);
    }
    json!({"event": "pusher:subscribe", "data": d})
}

/// `pusher:error` with this code and message.
pub fn perr(code: u16, message: &str) -> Value {
    json!({"event": "pusher:error", "data": {"code": code, "message": message}})
}

/// `pusher:subscription_error` as Herald sends it.
pub fn sub_err(channel: &str, kind: &str, error: &str, status: u16) -> Value {
    json!({"event": "pusher:subscription_error", "channel": channel,
           "data": {"type": kind, "error": error, "status": status}})
}

/// `pusher_internal:subscription_succeeded` of a public or private channel.
pub fn succeeded(channel: &str) -> Value {
    json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
}

/// The auth string of `socket_id:channel` (private channels).
pub fn auth(sid: &str, channel: &str) -> String {
    super::pusher::private_auth(sid, channel)
}

/// A raw client socket and the bytes that came with the 101 (the server writes its first
/// event at once, often in the same segment).
pub struct Raw {
    pre: std::io::Cursor<Vec<u8>>,
    s: std::net::TcpStream,
}

impl std::io::Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match std::io::Read::read(&mut self.pre, buf)? {
            0 => std::io::Read::read(&mut self.s, buf),
            n => Ok(n),
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.s.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

impl Raw {
    /// A read timeout on the socket.
    pub fn set_read_timeout(&self, d: Duration) {
        self.s.set_read_timeout(Some(d)).ok();
    }
}

/// A websocket upgrade on `path` (asserting the 101), with a 5 s read timeout.
pub fn raw_upgrade(at: &At, path: &str) -> Result<Raw, String> {
    let mut s = at.connect();
    s.write_all(&upgrade_request(path))
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).ok_or("no handshake response")?;
    if r.status != 101 {
        return Err(format!("handshake answered {} {:?}", r.status, r.text()));
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    Ok(Raw {
        pre: std::io::Cursor::new(buf),
        s,
    })
}

/// A raw websocket on the app: the stream, positioned after `connection_established`, and the
/// socket id.
pub fn raw_pusher(at: &At) -> Result<(Raw, String), String> {
    let mut s = raw_upgrade(at, &format!("/app/{KEY}{PROTO}"))?;
    match ws_read_frame(&mut s) {
        WsRead::Frame(true, 1, p) => {
            let v: Value = serde_json::from_slice(&p).map_err(|e| format!("established: {e}"))?;
            let sid = data(&v)["socket_id"].as_str().map(str::to_owned);
            sid.map(|sid| (s, sid))
                .ok_or_else(|| format!("no socket id in {v}"))
        }
        other => Err(format!("{other:?} instead of connection_established")),
    }
}

/// The next text frame of a raw socket as JSON.
pub fn read_event(s: &mut impl std::io::Read) -> Result<Value, String> {
    match ws_read_frame(s) {
        WsRead::Frame(true, 1, p) => {
            serde_json::from_slice(&p).map_err(|e| format!("frame is not JSON ({e})"))
        }
        other => Err(super::hostile::describe(&other)),
    }
}

// ---------------------------------------------------------------------------------------------
// The healthy clients and the runner

/// The clients that must not notice anything: a Pusher socket per shard on the public channel
/// "healthy", and a Channelstream subscriber of "healthy".
pub struct PHealthy {
    pusher: Vec<Ws>,
    cs: Ws,
    n: u64,
}

impl PHealthy {
    pub fn new(srv: &Server) -> PHealthy {
        let pusher = (0..srv.shard_addrs.len())
            .map(|i| {
                let (mut ws, _) = super::pusher::connect(&srv.shard(i));
                let v = super::pusher::subscribe(&mut ws, "healthy", "");
                assert_eq!(v["event"], "pusher_internal:subscription_succeeded");
                ws
            })
            .collect();
        let cs = cs_subscriber(&srv.shard(1), "healthy", &["healthy"]);
        PHealthy { pusher, cs, n: 0 }
    }

    /// Every healthy client still gets its messages, promptly.
    pub fn check(&mut self, srv: &Server) -> Result<(), String> {
        self.n += 1;
        let n = self.n.to_string();
        let at = srv.shard((self.n % 2) as usize);
        let body = json!({"name": "probe", "channel": "healthy", "data": n});
        let r = super::pusher::publish(&at, &body);
        if r.status != 200 {
            return Err(format!("pusher publish: {} {}", r.status, r.text()));
        }
        let want = json!({"event": "probe", "channel": "healthy", "data": n});
        for (i, ws) in self.pusher.iter_mut().enumerate() {
            let got = ws_next_text(ws).and_then(|t| serde_json::from_str::<Value>(&t).ok());
            if got.as_ref() != Some(&want) {
                return Err(format!("pusher socket on shard {i}: got {got:?}"));
            }
            super::pusher::send(ws, json!({"event": "pusher:ping", "data": {}}));
            let pong = next(ws);
            if pong["event"] != "pusher:pong" {
                return Err(format!(
                    "pusher socket on shard {i}: {pong} instead of a pong"
                ));
            }
        }
        let msg = json!({ "n": n });
        cs_publish(&at, "healthy", &msg);
        match cs_next_item(&mut self.cs) {
            Some(item) if item["message"] == msg => Ok(()),
            other => Err(format!("channelstream subscriber: got {other:?}")),
        }
    }
}

fn run_case(at: At, c: &PCase) -> Result<(), String> {
    match &c.input {
        PIn::Http(bytes) => {
            let mut s = at.connect();
            let _ = s.write_all(bytes);
            let mut buf = Vec::new();
            let r = read_response(&mut s, &mut buf, false).ok_or("no HTTP response")?;
            check_http(&r, &c.expect, &mut s)
        }
        PIn::Upgrade(path) => check_frames(&mut raw_upgrade(&at, path)?, &c.expect),
        PIn::Ws(build) => {
            let (mut s, sid) = raw_pusher(&at)?;
            let _ = s.write_all(&build(&sid));
            check_frames(&mut s, &c.expect)
        }
        PIn::Custom(f) => f(at),
    }
}

fn check_http(r: &Resp, expect: &POut, s: &mut std::net::TcpStream) -> Result<(), String> {
    let status = |want: u16| match r.status == want {
        true => Ok(()),
        false => Err(format!(
            "status {} (want {want}), body {:?}",
            r.status,
            r.text()
        )),
    };
    match expect {
        POut::Json(code, v) => {
            status(*code)?;
            if r.header("Content-Type") != Some("application/json") {
                return Err(format!("content type {:?}", r.header("Content-Type")));
            }
            match serde_json::from_slice::<Value>(&r.body) {
                Ok(got) if got == *v => Ok(()),
                _ => Err(format!("body {:?} (want {v})", r.text())),
            }
        }
        POut::Fatal(code, body) => {
            status(*code)?;
            if r.text() != *body {
                return Err(format!("body {:?} (want {body:?})", r.text()));
            }
            if r.header("Connection") != Some("close") || !closes(s) {
                return Err("connection not closed".into());
            }
            Ok(())
        }
        _ => Err(format!(
            "HTTP {} {:?} instead of a websocket answer",
            r.status,
            r.text()
        )),
    }
}

fn check_frames(s: &mut Raw, expect: &POut) -> Result<(), String> {
    let (events, close, ordered) = match expect {
        POut::Events(e) => (e, None, true),
        POut::AnyOrder(e) => (e, None, false),
        POut::Close(e, code) => (e, Some(*code), true),
        _ => return Err("a websocket where HTTP was expected".into()),
    };
    let mut left: Vec<&Value> = events.iter().collect();
    for i in 0..events.len() {
        let got = read_event(s).map_err(|e| format!("event {i}: {e} (want {:?})", left))?;
        let at = match ordered {
            true => (left[0] == &got).then_some(0),
            false => left.iter().position(|w| **w == got),
        };
        match at {
            Some(j) => drop(left.remove(j)),
            None => return Err(format!("event {i}: {got} (want one of {left:?})")),
        }
    }
    match close {
        None => {
            let _ = s.write_all(&ws_frame(true, 9, b"alive?", true));
            match ws_read_frame(s) {
                WsRead::Frame(true, 0xA, p) if p == b"alive?" => Ok(()),
                other => Err(format!(
                    "after the events: {}",
                    super::hostile::describe(&other)
                )),
            }
        }
        Some(code) => match ws_read_frame(s) {
            WsRead::Frame(_, 8, p) if close_code(&p) == Some(code) => match closes(s) {
                true => Ok(()),
                false => Err("TCP left open after the close frame".into()),
            },
            other => Err(format!(
                "{} instead of close {code}",
                super::hostile::describe(&other)
            )),
        },
    }
}

/// Run the table against a fresh shared server; every failure is reported by name.
pub fn run_pusher_table(cases: Vec<PCase>) {
    let srv = pusher_hostile_server();
    let mut healthy = PHealthy::new(&srv);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if let Err(e) = run_case(srv.shard(i % 2), c) {
            failures.push(format!("[{}] {}: {e}", i % 2, c.name));
        }
        if let Err(e) = healthy.check(&srv) {
            failures.push(format!("HEALTHY CLIENTS after {:?}: {e}", c.name));
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
    eprintln!("{total} hostile Pusher cases passed");
}

/// `Message` for the tungstenite peers of custom cases.
pub fn msg(v: &Value) -> Message {
    Message::text(v.to_string())
}

/// The HMAC of `msg` under the app's secret (for presence auth strings).
pub fn sign(msg: &str) -> String {
    format!("{KEY}:{}", hmac_hex(msg))
}
