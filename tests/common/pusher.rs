//! A Pusher protocol 7 client for the tests: connect to the default app, read and send events,
//! sign private and presence subscriptions, publish through the signed HTTP API.

use super::{request, set_timeout, unix_now, ws_connect, ws_next_text, Resp, Target, Ws};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tungstenite::Message;

/// The default app's key.
pub const KEY: &str = "app-key";
/// The default app's secret.
pub const SECRET: &str = "app-secret";
/// The path pusher-js 8.6 connects to.
pub const APP_PATH: &str = "/app/app-key?protocol=7&client=js&version=8.6.0&flash=false";

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HMAC-SHA256 of `msg` with the default secret, in hex.
pub fn hmac_hex(msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The auth string for a private (or encrypted) channel.
pub fn private_auth(socket_id: &str, channel: &str) -> String {
    format!("{KEY}:{}", hmac_hex(&format!("{socket_id}:{channel}")))
}

/// The auth string for a presence channel with this `channel_data`.
pub fn presence_auth(socket_id: &str, channel: &str, channel_data: &str) -> String {
    format!(
        "{KEY}:{}",
        hmac_hex(&format!("{socket_id}:{channel}:{channel_data}"))
    )
}

/// The auth string of a `pusher:signin` with this `user_data`.
pub fn user_auth(socket_id: &str, user_data: &str) -> String {
    format!(
        "{KEY}:{}",
        hmac_hex(&format!("{socket_id}::user::{user_data}"))
    )
}

/// Sign in as `user_data` (signed for `socket_id`) and return the first answer.
pub fn signin(ws: &mut Ws, socket_id: &str, user_data: &str) -> Value {
    let auth = user_auth(socket_id, user_data);
    send(
        ws,
        json!({"event":"pusher:signin","data":{"auth":auth,"user_data":user_data}}),
    );
    next(ws)
}

/// Next Pusher event (JSON) from a websocket.
pub fn next(ws: &mut Ws) -> Value {
    let t = ws_next_text(ws).expect("a text frame");
    serde_json::from_str(&t).expect("JSON")
}

/// The `data` of an event, decoded if it is a JSON string.
pub fn data(v: &Value) -> Value {
    match &v["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        d => d.clone(),
    }
}

/// Connect and read `connection_established`; returns the socket and its socket id.
pub fn connect(target: &impl Target) -> (Ws, String) {
    let mut ws = ws_connect(target, APP_PATH);
    set_timeout(&ws, Duration::from_secs(5));
    let v = next(&mut ws);
    assert_eq!(v["event"], "pusher:connection_established");
    let d = data(&v);
    (ws, d["socket_id"].as_str().unwrap().to_owned())
}

/// Send one event.
pub fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// Subscribe and return the first answer.
pub fn subscribe(ws: &mut Ws, channel: &str, auth: &str) -> Value {
    send(
        ws,
        json!({"event":"pusher:subscribe","data":{"auth":auth,"channel":channel}}),
    );
    next(ws)
}

/// Subscribe to a presence channel as `channel_data`, signed for `socket_id`.
pub fn join(ws: &mut Ws, socket_id: &str, channel: &str, channel_data: &str) -> Value {
    let auth = presence_auth(socket_id, channel, channel_data);
    send(
        ws,
        json!({"event":"pusher:subscribe",
               "data":{"auth":auth,"channel":channel,"channel_data":channel_data}}),
    );
    next(ws)
}

/// A signed `POST /apps/app-id/events`, as the npm `pusher` SDK sends it.
pub fn publish(target: &impl Target, body: &Value) -> Resp {
    post_api(target, "events", body)
}

/// A signed `POST /apps/app-id/<endpoint>` with a JSON body.
pub fn post_api(target: &impl Target, endpoint: &str, body: &Value) -> Resp {
    post_signed(target, &format!("/apps/app-id/{endpoint}"), body)
}

/// A `POST` to `path` with a JSON body, signed with the default app's key and secret.
pub fn post_signed(target: &impl Target, path: &str, body: &Value) -> Resp {
    let body = body.to_string();
    let md5 = hex(&Md5::digest(body.as_bytes()));
    let q = format!(
        "auth_key={KEY}&auth_timestamp={}&auth_version=1.0&body_md5={md5}",
        unix_now()
    );
    let sig = hmac_hex(&format!("POST\n{path}\n{q}"));
    request(
        target,
        "POST",
        &format!("{path}?{q}&auth_signature={sig}"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// A signed `GET` of `path` with the extra query parameters `query` (`k=v&…`, unescaped),
/// signed over the sorted parameters as the SDKs sign it.
pub fn get_signed(target: &impl Target, path: &str, query: &str) -> Resp {
    let ts = unix_now().to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("auth_key", KEY),
        ("auth_timestamp", &ts),
        ("auth_version", "1.0"),
    ];
    params.extend(query.split('&').filter_map(|kv| kv.split_once('=')));
    params.sort_unstable();
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let q = q.join("&");
    let sig = hmac_hex(&format!("GET\n{path}\n{q}"));
    request(
        target,
        "GET",
        &format!("{path}?{q}&auth_signature={sig}"),
        &[],
        b"",
    )
}

/// Assert nothing arrives within 300 ms.
pub fn assert_silent(ws: &mut Ws) {
    set_timeout(ws, Duration::from_millis(300));
    let got = ws_next_text(ws);
    set_timeout(ws, Duration::from_secs(5));
    assert!(got.is_none(), "expected no frame, got {got:?}");
}

/// The close code the server closes with (skipping other frames).
pub fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
