//! A Pushi client for the tests: a Herald in Pushi mode with a fresh data directory, raw
//! Pushi frames over a websocket (text compared as Pushi writes it), Pushi's channel auth
//! (`app_key:HMAC(secret, socket_id:channel)`), and the session-based REST API.

use super::{request, set_timeout, ws_connect, ws_next_text, Resp, Server, Target, Ws};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::PathBuf;
use std::time::Duration;
use tungstenite::Message;

/// The test app's id (Pushi's are 64 hex digits; any id works in Herald).
pub const APP_ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// The test app's key: 64 hex digits, as the Pushi websocket path needs.
pub const KEY: &str = "936f7e1c2b5a4d3e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c24e3";
/// The test app's secret.
pub const SECRET: &str = "a286c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0052a6";

/// A fresh, empty data directory under the system temp dir.
pub fn data_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "herald-pushi-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Configure Pushi mode with the test app in `dir`.
pub fn pushi_config(c: &mut herald::config::Config, dir: &std::path::Path) {
    c.pushi.enabled = true;
    c.pushi.data_dir = dir.to_path_buf();
    c.default_app_id = APP_ID.into();
    c.default_app_key = KEY.into();
    c.default_app_secret = SECRET.into();
}

/// A data directory removed when dropped.
pub struct DataDir(pub PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A one-shard Herald in Pushi mode (data in a fresh directory, removed with the guard).
pub fn server(name: &str) -> (Server, DataDir) {
    let dir = data_dir(name);
    let d = dir.clone();
    (Server::with(move |c| pushi_config(c, &d)), DataDir(dir))
}

/// `app_key:HMAC-SHA256(secret, socket_id:channel)`.
pub fn auth(socket_id: &str, channel: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{socket_id}:{channel}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{KEY}:{hex}")
}

/// The next text frame, as sent.
pub fn text(ws: &mut Ws) -> String {
    ws_next_text(ws).expect("a text frame")
}

/// The next frame, parsed.
pub fn next(ws: &mut Ws) -> Value {
    serde_json::from_str(&text(ws)).expect("JSON")
}

/// A JSON-string field, decoded.
pub fn inner(v: &Value, field: &str) -> Value {
    serde_json::from_str(v[field].as_str().expect("a string field")).expect("JSON inside")
}

/// Connect to `/{KEY}`; the socket and its UUID socket id.
pub fn connect(target: &impl Target) -> (Ws, String) {
    let mut ws = ws_connect(target, &format!("/{KEY}"));
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:connection_established");
    let id = inner(&v, "data")["socket_id"].as_str().unwrap().to_owned();
    (ws, id)
}

/// Send a JSON message.
pub fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// Subscribe as pushi.js does (signed unless public); the next frame.
pub fn subscribe(ws: &mut Ws, sid: &str, channel: &str, channel_data: Option<Value>) -> Value {
    let mut data = json!({"channel": channel});
    if ["private-", "presence-", "peer-", "personal-"]
        .iter()
        .any(|p| channel.starts_with(p))
    {
        data["auth"] = auth(sid, channel).into();
    }
    if let Some(cd) = channel_data {
        data["channel_data"] = cd;
    }
    send(
        ws,
        json!({"event": "pusher:subscribe", "data": data, "echo": false, "persist": true}),
    );
    next(ws)
}

/// Nothing arrives within 300 ms.
pub fn assert_silent(ws: &mut Ws) {
    set_timeout(ws, Duration::from_millis(300));
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    set_timeout(ws, Duration::from_secs(5));
}

/// `GET /login`: the session id.
pub fn login(target: &impl Target) -> String {
    let r = request(
        target,
        "GET",
        &format!("/login?app_id={APP_ID}&app_key={KEY}&app_secret={SECRET}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

/// A JSON request with the session in `?sid=`.
pub fn rest(target: &impl Target, method: &str, path: &str, sid: &str, body: &Value) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    request(
        target,
        method,
        &format!("{path}{sep}sid={sid}"),
        &[("Content-Type", "application/json")],
        &body,
    )
}
