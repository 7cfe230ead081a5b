//! Pushi's REST API (appier's controllers, `§1.5`) on Herald's main port, in Pushi mode.
//!
//! Sessions: `/login` with `app_id`, `app_key`, `app_secret` (query, form or JSON body)
//! answers `{"token": sid}`; the sid then travels as `sid` (query, form, cookie) or
//! `X-Session-Id` (`session.rs`). Writes to the store park the request and are answered when
//! the store thread has committed them (`answers.rs`); a full store queue is a 503 JSON error
//! at once. Routes Pushi has but Herald does not serve (APN, SMTP, Web Push, direct messaging)
//! answer 501 JSON.

use super::dialect::{now_f64, PubOp, Pushi, PushiMsg, PushiSocket, Token};
use super::protocol;
use crate::dialect::{HeaderValue, Outbox, Request, RequestAction, Response};
use crate::ids::ShardId;
use crate::proto::http::{percent_decode, Method};
use crate::pusher::apps::AppIdx;
use crate::py::json::to_string_compact;
use crate::store::{NewEvent, Op};
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// What a parked REST request answers once the store has.
#[derive(Debug)]
pub enum Then {
    /// `{"result": "success"}`.
    Success,
    /// A list of stored events.
    Events,
    /// A list of `{"user_id", "event"}`.
    Subscriptions,
    /// The subscription created or deleted (`app`, `user_id`, `event`, created?); the web-hook
    /// sender's alias index learns it too.
    Subscription(String, String, String, bool),
    /// A list of `{"url", "event"}`.
    Webs,
    /// A web subscription added (the sender learns it too).
    WebAdded(String, String, String),
    /// Web subscriptions removed (`app`, `url`, `event`).
    WebRemoved(String, String, Option<String>),
}

const JSON: &str = "application/json";

/// Path prefixes and exact paths Pushi serves (see README "Pushi": the route rule).
pub fn is_route(path: &[u8]) -> bool {
    const EXACT: [&[u8]; 8] = [
        b"/login",
        b"/logout",
        b"/events",
        b"/subscriptions",
        b"/webs",
        b"/sockets",
        b"/apps",
        b"/vapid_key",
    ];
    const PREFIX: [&[u8]; 9] = [
        b"/subscriptions/",
        b"/webs/",
        b"/sockets/",
        b"/health",
        b"/apns",
        b"/smtps",
        b"/web_pushes",
        b"/messaging/",
        b"/events/",
    ];
    if EXACT.contains(&path) || PREFIX.iter().any(|p| path.starts_with(p)) {
        return true;
    }
    // `/apps/ping`, `/apps/{ident}`, `/apps/{ident}/subscribe|unsubscribe` (Pusher keeps
    // every other `/apps/{id}/...` path).
    match path.strip_prefix(b"/apps/") {
        Some(rest) => {
            let segs: Vec<&[u8]> = rest.split(|b| *b == b'/').collect();
            match segs.as_slice() {
                [one] => !one.is_empty(),
                [_, last] => *last == b"subscribe" || *last == b"unsubscribe",
                _ => false,
            }
        }
        None => false,
    }
}

/// A JSON answer rendered as Pushi's `json.dumps`.
pub fn json_response(status: u16, v: &Value) -> Response {
    Response::new(status, JSON, Bytes::from(to_string_compact(v)))
}

/// An error as appier renders one (`"result": "error"`), plus Herald's `error` text and code.
fn error(status: u16, msg: &str) -> Response {
    json_response(
        status,
        &json!({"result": "error", "error": msg, "code": status}),
    )
}

/// The store queue was full: 503 JSON, nothing done.
pub fn store_busy() -> Response {
    let mut r = error(503, "Store busy, try again");
    r.headers.push(("Retry-After", HeaderValue::Static(b"1")));
    r
}

fn success() -> Response {
    json_response(200, &json!({"result": "success"}))
}

/// The request's parameters: its query, then a form or JSON object body.
struct Params<'r, 'a> {
    req: &'r Request<'a>,
    body: Option<Map<String, Value>>,
}

impl<'r, 'a> Params<'r, 'a> {
    fn new(req: &'r Request<'a>) -> Self {
        let body = match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
        Params { req, body }
    }

    fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.req.param(name) {
            return Some(v);
        }
        match self.body.as_ref()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(to_string_compact(other)),
        }
    }
}

fn cookie_sid(req: &Request<'_>) -> Option<String> {
    let c = std::str::from_utf8(req.header("cookie")?).ok()?;
    c.split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "sid")
        .map(|(_, v)| v.to_owned())
}

fn decode(seg: &[u8]) -> String {
    String::from_utf8_lossy(&percent_decode(seg)).into_owned()
}

fn stored_event_json(e: &crate::store::StoredEvent) -> Value {
    let data = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
    json!({
        "mid": e.mid,
        "channel": e.channel,
        "owner_id": e.owner,
        "timestamp": protocol::timestamp(e.timestamp),
        "data": data,
    })
}

/// Stored events as Pushi's `events` list.
pub fn events_json(events: &[crate::store::StoredEvent]) -> Value {
    Value::Array(events.iter().map(stored_event_json).collect())
}

impl Pushi {
    fn session(&self, req: &Request<'_>, p: &Params<'_, '_>) -> Option<AppIdx> {
        let sid = p.get("sid").or_else(|| cookie_sid(req)).or_else(|| {
            req.header("x-session-id")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })?;
        self.sessions.check(sid.trim())
    }

    /// Park `req` until the store answers `op`, or answer 503 now.
    fn park(
        &self,
        out: &dyn Outbox<PushiMsg>,
        req: &Request<'_>,
        then: Then,
        op: Op,
    ) -> RequestAction<PushiSocket> {
        if self.ask_store(out, Token::Reply(req.at, then), op) {
            RequestAction::Park {
                success_headers: &[],
            }
        } else {
            RequestAction::Respond(store_busy())
        }
    }

    /// Serve one REST request.
    pub(super) fn rest(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        req: &Request<'_>,
    ) -> RequestAction<PushiSocket> {
        let path = req.path().to_vec();
        let method = req.head.method;
        let p = Params::new(req);
        let respond = RequestAction::Respond;
        // Open routes.
        if path.starts_with(b"/health") {
            // Pushi's shape (monitoring checks may read service/version): Herald answers as the
            // Pushi version it is compatible with.
            let v = json!({"status": "ok", "service": "pushi", "version": "0.6.10"});
            return respond(json_response(200, &v));
        }
        if path == b"/login" {
            return respond(self.login(&p));
        }
        let not_supported = [
            &b"/apns"[..],
            b"/smtps",
            b"/web_pushes",
            b"/vapid_key",
            b"/messaging/",
        ];
        if not_supported.iter().any(|r| path.starts_with(r)) {
            return respond(error(501, "Not supported by Herald (APN, SMTP, Web Push and direct messaging are not implemented)"));
        }
        if path == b"/apps" && method == Method::Post {
            return respond(self.create_app(req, &p));
        }
        let Some(app) = self.session(req, &p) else {
            return respond(error(
                403,
                "Not authorized: log in first (/login), then pass the sid",
            ));
        };
        let Some(app_id) = self.apps.get(app).map(|a| a.id.clone()) else {
            return respond(error(403, "Not authorized"));
        };
        let segs: Vec<String> = path.split(|b| *b == b'/').skip(1).map(decode).collect();
        let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (method, seg.as_slice()) {
            (_, ["logout"]) => {
                self.logout(out, req, &p);
                respond(success())
            }
            (Method::Post, ["events"]) => self.post_events(out, req, app, &app_id),
            (Method::Get, ["events"]) => {
                let count = p.get("count").and_then(|c| c.parse().ok()).unwrap_or(10u32);
                let op = Op::Recent {
                    app: app_id,
                    count: count.min(protocol::MAX_LATEST),
                };
                self.park(out, req, Then::Events, op)
            }
            (Method::Get, ["subscriptions"]) => {
                let op = Op::Subscriptions {
                    app: app_id,
                    user_id: p.get("user_id"),
                    event: p.get("event"),
                };
                self.park(out, req, Then::Subscriptions, op)
            }
            (Method::Post, ["subscriptions"]) | (_, ["apps", _, "subscribe"]) => {
                if let ["apps", id, _] = seg.as_slice() {
                    if *id != app_id {
                        return respond(error(403, "The session is for another app"));
                    }
                }
                self.subscription(out, req, &p, app_id, true)
            }
            (Method::Delete, ["subscriptions", user, event]) => {
                let (u, e) = (user.to_string(), event.to_string());
                let op = Op::Unsubscribe {
                    app: app_id.clone(),
                    user_id: u.clone(),
                    event: e.clone(),
                };
                self.park(out, req, Then::Subscription(app_id, u, e, false), op)
            }
            (_, ["apps", id, "unsubscribe"]) => {
                if *id != app_id {
                    return respond(error(403, "The session is for another app"));
                }
                self.subscription(out, req, &p, app_id, false)
            }
            (Method::Get, ["webs"]) => {
                let op = Op::Webs { app: Some(app_id) };
                self.park(out, req, Then::Webs, op)
            }
            (Method::Post, ["webs"]) => {
                let (Some(url), Some(event)) = (p.get("url"), p.get("event")) else {
                    return respond(error(400, "url and event are required"));
                };
                let op = Op::AddWeb {
                    app: app_id.clone(),
                    url: url.clone(),
                    event: event.clone(),
                };
                self.park(out, req, Then::WebAdded(app_id, url, event), op)
            }
            (Method::Delete, ["webs", rest @ ..]) if !rest.is_empty() => {
                let (url, event) = web_target(rest);
                let op = Op::RemoveWeb {
                    app: app_id.clone(),
                    url: url.clone(),
                    event: event.clone(),
                };
                self.park(
                    out,
                    req,
                    Then::WebRemoved(app_id, url.to_string(), event),
                    op,
                )
            }
            (Method::Get, ["apps"]) => respond(json_response(200, &json!([self.app_map(app)]))),
            (Method::Get, ["apps", "ping"]) => {
                let m = protocol::event_message("global", "ping", "ping", None);
                let (_, frame) = protocol::message_frame(&m);
                self.publish(out, app, "global", frame);
                respond(success())
            }
            (Method::Get, ["apps", id]) if *id == app_id => {
                respond(json_response(200, &self.app_map(app)))
            }
            (_, ["apps", _]) => respond(error(
                403,
                "Herald's apps come from its configuration; a session sees only its own app",
            )),
            (Method::Get, ["sockets"]) => match self.start_sockets(out, req.at, app) {
                Ok(()) => RequestAction::Park {
                    success_headers: &[],
                },
                Err(r) => respond(r),
            },
            (_, ["sockets", ..]) => {
                respond(error(501, "Not supported by Herald (POST /sockets/{id})"))
            }
            _ => respond(error(404, "No such route")),
        }
    }

    fn app_map(&self, app: AppIdx) -> Value {
        match self.apps.get(app) {
            Some(a) => json!({"name": a.id, "ident": a.id, "key": a.key, "secret": a.secret}),
            None => Value::Null,
        }
    }

    fn login(&self, p: &Params<'_, '_>) -> Response {
        let (Some(id), Some(key), Some(secret)) =
            (p.get("app_id"), p.get("app_key"), p.get("app_secret"))
        else {
            return error(403, "app_id, app_key and app_secret are required");
        };
        let found = self.apps.by_id(&id).filter(|(_, a)| {
            crate::pusher::sign::ct_eq(a.key.as_bytes(), key.as_bytes())
                && crate::pusher::sign::ct_eq(a.secret.as_bytes(), secret.as_bytes())
        });
        match found {
            Some((idx, _)) => json_response(200, &json!({"token": self.sessions.issue(idx)})),
            // Pushi: App.get finds no app with those credentials: 404.
            None => error(404, "Invalid app credentials"),
        }
    }

    fn logout(&mut self, out: &mut dyn Outbox<PushiMsg>, req: &Request<'_>, p: &Params<'_, '_>) {
        let Some(sid) = p.get("sid").or_else(|| cookie_sid(req)).or_else(|| {
            req.header("x-session-id")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        }) else {
            return;
        };
        self.sessions.revoke(&sid);
        for s in 0..self.shards {
            let to = ShardId(u16::try_from(s).unwrap_or(0));
            if to != out.shard() && out.send(to, PushiMsg::Revoke(sid.as_str().into())).is_err() {
                tracing::warn!(shard = s, "pushi: inbox full, logout not seen by a shard");
            }
        }
    }

    /// `POST /apps`: with the admin secret, fresh credentials and the ini section to add
    /// (Herald's apps come from its configuration); refused without it.
    fn create_app(&self, req: &Request<'_>, p: &Params<'_, '_>) -> Response {
        let given = p
            .get("admin_secret")
            .or_else(|| {
                req.header("x-admin-secret")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .unwrap_or_default();
        if self.admin_secret.is_empty()
            || !crate::pusher::sign::ct_eq(given.as_bytes(), self.admin_secret.as_bytes())
        {
            return error(
                403,
                "Creating apps needs the admin secret (pushi_admin_secret)",
            );
        }
        let Some(name) = p.get("name").filter(|n| !n.is_empty()) else {
            return error(400, "name is required");
        };
        let hex = || {
            let u = uuid::Uuid::new_v4().to_string();
            crate::pusher::sign::hex(&<sha2::Sha256 as sha2::Digest>::digest(u.as_bytes()))
        };
        let (ident, key, secret) = (hex(), hex(), hex());
        let ini =
            format!("[pusher_app:{name}]\napp_id = {ident}\nkey = {key}\nsecret = {secret}\n");
        json_response(
            201,
            &json!({"name": name, "ident": ident, "key": key, "secret": secret,
                    "note": "add this section to the ini file and restart: Herald's apps come from its configuration",
                    "ini": ini}),
        )
    }

    fn subscription(
        &self,
        out: &dyn Outbox<PushiMsg>,
        req: &Request<'_>,
        p: &Params<'_, '_>,
        app_id: String,
        add: bool,
    ) -> RequestAction<PushiSocket> {
        let (Some(u), Some(e)) = (p.get("user_id"), p.get("event")) else {
            return RequestAction::Respond(error(400, "user_id and event are required"));
        };
        if e.is_empty()
            || !e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return RequestAction::Respond(error(400, "event must match [.\\w-]+"));
        }
        let then = Then::Subscription(app_id.clone(), u.clone(), e.clone(), add);
        let op = if add {
            Op::Subscribe {
                app: app_id,
                user_id: u.clone(),
                event: e.clone(),
            }
        } else {
            Op::Unsubscribe {
                app: app_id,
                user_id: u.clone(),
                event: e.clone(),
            }
        };
        self.park(out, req, then, op)
    }

    /// Route one frame to a channel's owner.
    fn publish(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        app: AppIdx,
        channel: &str,
        frame: Bytes,
    ) -> bool {
        let op = PubOp {
            app,
            channel: channel.into(),
            frame,
            except: None,
            from: None,
        };
        self.route(out, app, channel, PushiMsg::Publish(Box::new(op)))
            .is_ok()
    }

    /// `POST /events`: one message per channel (extra body keys copied), persisted in one
    /// store request unless `persist` is false, delivered by each channel's owner.
    fn post_events(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        req: &Request<'_>,
        app: AppIdx,
        app_id: &str,
    ) -> RequestAction<PushiSocket> {
        let body = match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(m)) => m,
            _ => return RequestAction::Respond(error(400, "The body must be a JSON object")),
        };
        let Some(data) = body.get("data") else {
            return RequestAction::Respond(error(400, "data is required"));
        };
        let data = match data {
            Value::String(s) => s.clone(),
            other => to_string_compact(other),
        };
        let channels: Vec<String> = match body.get("channel") {
            None | Some(Value::Null) => vec!["global".into()],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                return RequestAction::Respond(error(400, "channel must be a string or a list"))
            }
        };
        if channels.is_empty() || channels.iter().any(String::is_empty) {
            return RequestAction::Respond(error(400, "channel must not be empty"));
        }
        let persist = body.get("persist").is_none_or(crate::py::value::truthy);
        let ts = now_f64();
        // The message without its channel, built once (the body's `channel` list is replaced
        // here, so a POST to N channels copies N small maps, not N lists of N names); the
        // steps are the ones each channel's message had, so the keys keep their order.
        let mut base = body;
        base.insert("data".into(), data.into());
        base.entry("event").or_insert_with(|| "message".into());
        base.insert("channel".into(), Value::Null);
        base.remove("mid");
        base.remove("timestamp");
        let mut frames = Vec::with_capacity(channels.len());
        let mut events = Vec::new();
        for ch in &channels {
            let mut m = base.clone();
            if let Some(c) = m.get_mut("channel") {
                *c = ch.as_str().into();
            }
            let mid = persist.then(|| uuid::Uuid::new_v4().to_string());
            protocol::add_stored(&mut m, mid.as_deref().map(|id| (id, ts)));
            let (text, frame) = protocol::message_frame(&Value::Object(m));
            if let Some(w) = &self.webs {
                w.notify(app_id, ch, &text);
            }
            if let Some(mid) = mid {
                events.push(NewEvent {
                    mid,
                    app: app_id.to_owned(),
                    channel: ch.clone(),
                    owner: None,
                    timestamp: ts,
                    payload: text,
                });
            }
            frames.push((ch, frame));
        }
        // Room in the store first (a full store refuses the whole POST, delivering nothing),
        // then the frames to their owners, and only then the store thread's wake-up: the
        // delivery gets a free core before the write does.
        let room = if events.is_empty() {
            None
        } else {
            match self.store.as_ref().map(crate::store::Store::reserve) {
                Some(Ok(room)) => Some(room),
                _ => return RequestAction::Respond(store_busy()),
            }
        };
        let mut delivered = true;
        for (ch, frame) in frames {
            if !self.publish(out, app, ch, frame) {
                tracing::warn!(channel = %ch, "pushi: owner inbox full, event not delivered");
                delivered = false;
            }
        }
        match room {
            None if delivered => RequestAction::Respond(success()),
            None => RequestAction::Respond(Response::busy()),
            Some(room) => {
                let token = Token::Reply(req.at, Then::Success);
                match room.send(out.shard(), token, Op::Insert(events)) {
                    Ok(()) => RequestAction::Park {
                        success_headers: &[],
                    },
                    Err(_) => RequestAction::Respond(store_busy()),
                }
            }
        }
    }
}

/// The URL and optional event of `DELETE /webs/<url>[/<event>]`. The URL is one segment when
/// percent-encoded (Pushi's form); the PyPI `pushi` client sends it raw
/// (`/webs/http://host:port/path/EVENT`), so a raw URL (`scheme:` then an empty segment) spans
/// every segment but the last, which is the event (Pushi itself answers that form 404).
fn web_target(rest: &[&str]) -> (String, Option<String>) {
    match rest {
        [scheme, "", _, ..] if scheme.ends_with(':') && rest.len() > 3 => {
            let (event, url) = rest.split_last().map_or(("", rest), |(e, u)| (*e, u));
            (url.join("/"), Some(event.to_string()))
        }
        [url, event, ..] => (url.to_string(), Some(event.to_string())),
        [url] => (url.to_string(), None),
        [] => (String::new(), None),
    }
}

/// The answer for `then` from the store's `answer`.
pub fn answer(then: &Then, answer: &crate::store::Answer) -> Response {
    use crate::store::Answer as A;
    match (then, answer) {
        (_, A::Failed(e)) => error(500, &format!("Store error: {e}")),
        (Then::Success, _) => success(),
        // Pushi's list answers are objects: {"events": [...]}, {"subscriptions": [...]}.
        (Then::Events, A::Events(es)) => json_response(200, &json!({ "events": events_json(es) })),
        (Then::Subscriptions, A::Rows(rows)) => json_response(
            200,
            &json!({ "subscriptions": rows
                .iter()
                .map(|(_, u, e)| json!({"user_id": u, "event": e}))
                .collect::<Vec<_>>() }),
        ),
        (Then::Subscription(_, u, e, _), _) => {
            json_response(200, &json!({"user_id": u, "event": e}))
        }
        // Pushi names the web-hook list "subscriptions" too.
        (Then::Webs, A::Rows(rows)) => json_response(
            200,
            &json!({ "subscriptions": rows
                .iter()
                .map(|(_, u, e)| json!({"url": u, "event": e}))
                .collect::<Vec<_>>() }),
        ),
        (Then::WebAdded(_, u, e), _) => json_response(200, &json!({"url": u, "event": e})),
        (Then::WebRemoved(_, u, e), _) => json_response(200, &json!({"url": u, "event": e})),
        _ => error(500, "Unexpected store answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_route, web_target};

    #[test]
    fn web_targets_encoded_and_raw() {
        let enc = ["http%3A%2F%2Fh%3A1%2Fhook"];
        assert_eq!(web_target(&enc), ("http%3A%2F%2Fh%3A1%2Fhook".into(), None));
        assert_eq!(web_target(&["u", "e"]), ("u".into(), Some("e".into())));
        let raw = ["http:", "", "127.0.0.1:9", "hook", "orders"];
        let want = (
            "http://127.0.0.1:9/hook".to_string(),
            Some("orders".to_string()),
        );
        assert_eq!(web_target(&raw), want);
    }

    #[test]
    fn routes_pushi_claims_and_leaves_alone() {
        for p in [
            "/login",
            "/events",
            "/subscriptions/u1/news",
            "/webs",
            "/health/live",
            "/apps",
            "/apps/ping",
            "/apps/abc",
            "/apps/abc/subscribe",
        ] {
            assert!(is_route(p.as_bytes()), "{p}");
        }
        for p in [
            "/apps/abc/events",
            "/apps/abc/channels",
            "/app/key",
            "/connect",
            "/message",
            "/info",
            "/subscribe",
            "/ws",
            "/apps/",
        ] {
            assert!(!is_route(p.as_bytes()), "{p}");
        }
    }
}
