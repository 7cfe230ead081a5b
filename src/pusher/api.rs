//! The Pusher HTTP API, signed as the SDKs sign it: `POST /apps/{id}/events` and
//! `batch_events`, `GET /apps/{id}/channels`, `.../channels/{name}` and `.../users`, and
//! `POST /apps/{id}/users/{user}/terminate_connections`.
//!
//! Why apart from the dialect: this is a pure function from a request to an answer, a list of
//! publishes (one per channel, each with its frame already encoded), or publishes plus a
//! query to gather from the owner shards (`query::Ask`), so the dialect only routes.

use super::apps::{App, AppIdx, Apps};
use super::channels::{self, Kind};
use super::protocol;
use super::query::{Ask, Attrs, Filter, Shape};
use super::sign;
use super::socket_id;
use super::users;
use crate::dialect::{Request, Response};
use crate::ids::SockRef;
use crate::proto::http::{percent_decode, Method};
use bytes::Bytes;
use serde_json::{json, Value};

/// Most events in one `batch_events`.
pub const MAX_BATCH: usize = 10;
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
    /// Route these publishes, then answer with this (`{}`, or `batch_events`' answer).
    Publish(Vec<Publish>, Response),
    /// Route these publishes, then gather `Ask` from the owners and answer from it.
    Query(Vec<Publish>, Ask),
    /// Close every signed-in socket of this user (`users::UserMsg::Terminate` to its owner),
    /// then answer with this (`{}`).
    Terminate(AppIdx, Box<str>, Response),
}

/// A JSON answer.
pub fn json_response(status: u16, v: &Value) -> Response {
    Response::new(status, JSON, Bytes::from(v.to_string()))
}

fn error(status: u16, msg: &str) -> ApiAction {
    ApiAction::Respond(json_response(status, &json!({ "error": msg })))
}

type Refusal = (u16, &'static str);

/// An event's publishes, its distinct channels, and the `info` it asks.
type Event = (Vec<Publish>, Vec<Box<str>>, Attrs);

/// An endpoint under `/apps/{id}/`.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Events,
    Batch,
    Channels,
    Channel(String),
    Users(String),
    Terminate(String),
}

fn route(tail: &str) -> Option<(Method, Route)> {
    let dec = |s: &str| String::from_utf8_lossy(&percent_decode(s.as_bytes())).into_owned();
    let parts: Vec<&str> = tail.split('/').collect();
    Some(match parts.as_slice() {
        ["events"] => (Method::Post, Route::Events),
        ["batch_events"] => (Method::Post, Route::Batch),
        ["channels"] => (Method::Get, Route::Channels),
        ["channels", name] => (Method::Get, Route::Channel(dec(name))),
        ["channels", name, "users"] => (Method::Get, Route::Users(dec(name))),
        ["users", user, "terminate_connections"] => (Method::Post, Route::Terminate(dec(user))),
        _ => return None,
    })
}

/// Serve one `/apps/...` request.
pub fn handle(apps: &Apps, req: &Request<'_>) -> ApiAction {
    let path = String::from_utf8_lossy(req.path()).into_owned();
    if path.starts_with("/users/") {
        return sdk_terminate(apps, req, &path);
    }
    let rest = path.strip_prefix("/apps/").unwrap_or("");
    let Some((id, tail)) = rest.split_once('/') else {
        return error(404, "Not found");
    };
    let Some((method, route)) = route(tail) else {
        return error(404, "Not found");
    };
    if req.head.method != method {
        return error(405, "Method not allowed");
    }
    let Some((app_idx, app)) = apps.by_id(id) else {
        return error(404, "Unknown app");
    };
    if !app.enabled {
        return error(403, "App is disabled");
    }
    let m = if method == Method::Get { "GET" } else { "POST" };
    if let Err(e) = sign::verify_api(app, m, &path, req.query(), req.body, req.now_unix) {
        return error(401, e.message());
    }
    let info = req.query_param("info");
    let result = match route {
        Route::Events => events(app_idx, app, req.body),
        Route::Batch => batch(app_idx, app, req.body),
        Route::Channels => list(app_idx, info, req.query_param("filter_by_prefix")),
        Route::Channel(name) => one(app_idx, info, name),
        Route::Users(name) => users(app_idx, name),
        Route::Terminate(user) => terminate(app_idx, &user),
    };
    result.unwrap_or_else(|(status, msg)| error(status, msg))
}

/// Whether `path` is `/users/{user}/terminate_connections`, the path the PyPI `pusher` SDK
/// (3.3.4) signs and sends for `terminate_user_connections` — without `/apps/{id}` (its bug;
/// the npm SDK sends `/apps/{id}/users/...`). Claimed so that the official Python SDK works.
pub fn is_sdk_terminate(path: &[u8]) -> bool {
    path.starts_with(b"/users/") && path.ends_with(b"/terminate_connections")
}

/// `POST /users/{user}/terminate_connections` ([`is_sdk_terminate`]): the app is the one
/// whose key is `auth_key`; the signature covers the path as sent.
fn sdk_terminate(apps: &Apps, req: &Request<'_>, path: &str) -> ApiAction {
    let tail = path.strip_prefix('/').unwrap_or("");
    let Some((method, Route::Terminate(user))) = route(tail) else {
        return error(404, "Not found");
    };
    if req.head.method != method {
        return error(405, "Method not allowed");
    }
    let key = req.query_param("auth_key").unwrap_or_default();
    let Some((app_idx, app)) = apps.by_key(&key) else {
        return error(401, sign::ApiAuthError::WrongKey.message());
    };
    if !app.enabled {
        return error(403, "App is disabled");
    }
    if let Err(e) = sign::verify_api(app, "POST", path, req.query(), req.body, req.now_unix) {
        return error(401, e.message());
    }
    terminate(app_idx, &user).unwrap_or_else(|(status, msg)| error(status, msg))
}

/// The attributes of an `info` list.
fn attrs(info: Option<&str>) -> Result<Attrs, Refusal> {
    let mut a = Attrs::default();
    for attr in info.unwrap_or("").split(',').map(str::trim) {
        match attr {
            "" => {}
            "subscription_count" => a.subscription_count = true,
            "user_count" => a.user_count = true,
            "cache" => a.cache = true,
            _ => return Err((400, "Unknown info attribute")),
        }
    }
    Ok(a)
}

fn asks(a: Attrs) -> bool {
    a.subscription_count || a.user_count
}

/// `POST /events`.
fn events(app: AppIdx, limits: &App, body: &[u8]) -> Result<ApiAction, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|_| (400, "Invalid JSON body"))?;
    let (ps, names, a) = event(app, limits, &v)?;
    if !asks(a) {
        return Ok(ApiAction::Publish(ps, json_response(200, &json!({}))));
    }
    let ask = Ask {
        app,
        filter: Filter::Names(names.clone()),
        users: false,
        shape: Shape::Events(names, a),
    };
    Ok(ApiAction::Query(ps, ask))
}

/// `POST /batch_events`: `{}` without `info`, else one item per event.
fn batch(app: AppIdx, limits: &App, body: &[u8]) -> Result<ApiAction, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|_| (400, "Invalid JSON body"))?;
    let items = v
        .get("batch")
        .and_then(Value::as_array)
        .ok_or((400, "batch is required"))?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err((400, "batch must hold 1 to 10 events"));
    }
    let mut all = Vec::new();
    let mut shape = Vec::new();
    let mut names = Vec::new();
    for item in items {
        let (ps, chans, a) = event(app, limits, item)?;
        all.extend(ps);
        let first = chans.into_iter().next();
        match first {
            Some(c) if asks(a) => {
                names.push(c.clone());
                shape.push(Some((c, a)));
            }
            _ => shape.push(None),
        }
    }
    if names.is_empty() {
        return Ok(ApiAction::Publish(all, json_response(200, &json!({}))));
    }
    let ask = Ask {
        app,
        filter: Filter::Names(names),
        users: false,
        shape: Shape::Batch(shape),
    };
    Ok(ApiAction::Query(all, ask))
}

/// `GET /channels`: `user_count` only with a `presence-` prefix.
fn list(app: AppIdx, info: Option<String>, prefix: Option<String>) -> Result<ApiAction, Refusal> {
    let a = attrs(info.as_deref())?;
    if a.subscription_count || a.cache {
        return Err((400, "Only user_count may be requested for a channel list"));
    }
    let prefix = prefix.unwrap_or_default();
    if a.user_count && !prefix.starts_with("presence-") {
        return Err((400, "user_count needs filter_by_prefix=presence-"));
    }
    Ok(ApiAction::Query(
        Vec::new(),
        Ask {
            app,
            filter: Filter::Prefix(prefix.into()),
            users: false,
            shape: Shape::Channels(a),
        },
    ))
}

/// `GET /channels/{name}`: `user_count` only for presence channels; `cache` answers a cache
/// channel's live cached event as `{"data", "ttl"}` (absent when none).
fn one(app: AppIdx, info: Option<String>, name: String) -> Result<ApiAction, Refusal> {
    let a = attrs(info.as_deref())?;
    let kind = channels::kind(&name).ok_or((400, "Invalid channel name"))?;
    if a.user_count && kind != Kind::Presence {
        return Err((400, "user_count is only for presence channels"));
    }
    let name: Box<str> = name.into();
    Ok(ApiAction::Query(
        Vec::new(),
        Ask {
            app,
            filter: Filter::Names(vec![name.clone()]),
            users: false,
            shape: Shape::Channel(name, a),
        },
    ))
}

/// `GET /channels/{name}/users`: presence channels only.
fn users(app: AppIdx, name: String) -> Result<ApiAction, Refusal> {
    if channels::kind(&name) != Some(Kind::Presence) {
        return Err((400, "Users can only be listed for presence channels"));
    }
    let name: Box<str> = name.into();
    Ok(ApiAction::Query(
        Vec::new(),
        Ask {
            app,
            filter: Filter::Names(vec![name.clone()]),
            users: true,
            shape: Shape::Users(name),
        },
    ))
}

/// `POST /users/{user}/terminate_connections`: the user's owner shard closes its signed-in
/// sockets (`users`); answered `{}` without waiting.
fn terminate(app: AppIdx, user: &str) -> Result<ApiAction, Refusal> {
    if !users::valid_id(user) {
        return Err((400, "Invalid user id"));
    }
    let ok = json_response(200, &json!({}));
    Ok(ApiAction::Terminate(app, user.into(), ok))
}

/// One event object (`/events` body or a batch item): its publishes, its distinct channels,
/// and the `info` it asks.
fn event(app: AppIdx, limits: &App, v: &Value) -> Result<Event, Refusal> {
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
    if data.len() > limits.max_event_size {
        return Err((413, "data is larger than the app's event size limit"));
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
    if names.is_empty() || names.len() > limits.max_channels_per_event {
        return Err((400, "too many or no channels"));
    }
    if names.iter().any(|c| channels::kind(c).is_none()) {
        return Err((400, "Invalid channel name"));
    }
    let a = attrs(v.get("info").and_then(Value::as_str))?;
    if a.cache {
        return Err((
            400,
            "cache may only be requested for one channel (GET /channels/{name})",
        ));
    }
    let except = v
        .get("socket_id")
        .and_then(Value::as_str)
        .and_then(socket_id::parse);
    let publishes = names
        .iter()
        .map(|c| Publish {
            app,
            channel: (*c).into(),
            frame: protocol::channel_event(name, c, &data),
            except,
        })
        .collect();
    Ok((publishes, names.into_iter().map(Into::into).collect(), a))
}

#[cfg(test)]
#[path = "tests/api.rs"]
mod tests;
