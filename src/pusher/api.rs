//! The Pusher HTTP API: `POST /apps/{id}/events`, signed as the SDKs sign it.
//!
//! Why apart from the dialect: this is a pure function from a request to either an answer or
//! a list of publishes (one per channel, each with its frame already encoded), so the
//! dialect's only job is routing each publish to the channel's owner shard. Other endpoints
//! (`batch_events`, channel queries, terminate) are not served yet (404).

use super::apps::{AppIdx, Apps};
use super::channels;
use super::protocol;
use super::sign;
use super::socket_id;
use crate::dialect::{Request, Response};
use crate::ids::SockRef;
use crate::proto::http::Method;
use bytes::Bytes;
use serde_json::{json, Value};

/// Most channels one publish may name.
pub const MAX_CHANNELS: usize = 100;
/// Largest `data` accepted, in bytes (Pusher's limit).
pub const MAX_DATA: usize = 10 * 1024;
/// Longest event name.
pub const MAX_EVENT_NAME: usize = 200;

const JSON: &str = "application/json";

/// One channel's share of a publish.
#[derive(Debug)]
pub struct Publish {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The event frame, encoded once for every subscriber.
    pub frame: Bytes,
    /// The socket not to deliver to (`socket_id` of the request).
    pub except: Option<SockRef>,
}

/// What an HTTP API request asks.
#[derive(Debug)]
pub enum ApiAction {
    /// Answer now.
    Respond(Response),
    /// Route these publishes, then answer `200 {}`.
    Publish(Vec<Publish>),
}

/// A JSON answer.
pub fn json_response(status: u16, v: &Value) -> Response {
    Response::new(status, JSON, Bytes::from(v.to_string()))
}

fn error(status: u16, msg: &str) -> ApiAction {
    ApiAction::Respond(json_response(status, &json!({ "error": msg })))
}

/// Serve one `/apps/...` request.
pub fn handle(apps: &Apps, req: &Request<'_>) -> ApiAction {
    let path = String::from_utf8_lossy(req.path()).into_owned();
    let rest = path.strip_prefix("/apps/").unwrap_or("");
    let Some((id, tail)) = rest.split_once('/') else {
        return error(404, "Not found");
    };
    if tail != "events" {
        return error(404, "Not found");
    }
    if req.head.method != Method::Post {
        return error(405, "Method not allowed");
    }
    let Some((app_idx, app)) = apps.by_id(id) else {
        return error(404, "Unknown app");
    };
    if let Err(e) = sign::verify_api(app, "POST", &path, req.query(), req.body, req.now_unix) {
        return error(401, e.message());
    }
    match events(app_idx, req.body) {
        Ok(p) => ApiAction::Publish(p),
        Err((status, msg)) => error(status, msg),
    }
}

/// The publishes of an `/events` body.
fn events(app: AppIdx, body: &[u8]) -> Result<Vec<Publish>, (u16, &'static str)> {
    let v: Value = serde_json::from_slice(body).map_err(|_| (400, "Invalid JSON body"))?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or((400, "name is required"))?;
    if name.is_empty() || name.len() > MAX_EVENT_NAME {
        return Err((400, "Invalid event name"));
    }
    // SDKs send a string; anything else is relayed as its JSON text.
    let data = match v.get("data") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return Err((400, "data is required")),
    };
    if data.len() > MAX_DATA {
        return Err((413, "data is larger than 10 KB"));
    }
    let mut names: Vec<&str> = match (v.get("channels"), v.get("channel")) {
        (Some(Value::Array(a)), _) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or((400, "channels must be strings"))?,
        (None, Some(Value::String(c))) => vec![c.as_str()],
        _ => return Err((400, "channel or channels is required")),
    };
    // A channel named twice gets the event once.
    let mut seen = std::collections::HashSet::new();
    names.retain(|c| seen.insert(*c));
    if names.is_empty() || names.len() > MAX_CHANNELS {
        return Err((400, "channels must name 1 to 100 channels"));
    }
    if names.iter().any(|c| channels::kind(c).is_none()) {
        return Err((400, "Invalid channel name"));
    }
    let except = v
        .get("socket_id")
        .and_then(Value::as_str)
        .and_then(socket_id::parse);
    Ok(names
        .into_iter()
        .map(|c| Publish {
            app,
            channel: c.into(),
            frame: protocol::channel_event(name, c, &data),
            except,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies() {
        let p = events(
            0,
            br#"{"name":"e","data":"x","channels":["a","b"],"socket_id":"1.2"}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(&*p[1].channel, "b");
        assert_eq!(p[0].except, Some(SockRef::new(1, 2, 0)));
        let p = events(0, br#"{"name":"e","data":{"a":1},"channel":"a"}"#).unwrap();
        assert_eq!(
            &p[0].frame[2..],
            br#"{"event":"e","channel":"a","data":"{\"a\":1}"}"#
        );
        assert_eq!(events(0, b"nope").unwrap_err().0, 400);
        assert_eq!(
            events(0, br#"{"data":"x","channel":"a"}"#).unwrap_err().0,
            400
        );
        assert_eq!(events(0, br#"{"name":"e","data":"x"}"#).unwrap_err().0, 400);
        let p = events(0, br#"{"name":"e","data":"x","channels":["a","b","a"]}"#).unwrap();
        assert_eq!(p.len(), 2);
        let body = br#"{"name":"e","data":"x","channels":["a",1]}"#;
        assert_eq!(events(0, body).unwrap_err().0, 400);
        assert_eq!(
            events(0, br#"{"name":"e","data":"x","channel":"a b"}"#)
                .unwrap_err()
                .0,
            400
        );
        let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let body = json!({"name":"e","data":"x","channels":many}).to_string();
        assert_eq!(events(0, body.as_bytes()).unwrap_err().0, 400);
        let big = json!({"name":"e","data":"x".repeat(MAX_DATA + 1),"channel":"a"}).to_string();
        assert_eq!(events(0, big.as_bytes()).unwrap_err().0, 413);
    }
}
