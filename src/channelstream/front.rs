//! The REST front door: turns one complete HTTP request into what the shard must do.
//!
//! Pure: it sees the parsed head, the body, the peer address and the time, and returns a
//! `FrontAction` — answer now, hand a command to the model and park the request until its
//! reply, upgrade to a websocket, or both answer now and hand a fire-and-forget command on
//! (`/message`: Channelstream answers with the echo before delivering).
//!
//! The order of checks copies Channelstream 0.7.1 (spec §3.1, §4): `/ws` never sees auth or
//! CORS; `enforce_https` refuses everything else with 406 unless it came over TLS; a present-but-bad signature from an
//! allowed IP is a 401 on *any* path; a wrong method is a 404 even without a secret; a missing
//! secret or a refused IP is a 403 on server-API routes; admin routes fall back to the API
//! signature. CORS headers go only on successful (200) responses, as Pyramid adds them to
//! `request.response` and not to error pages.

use super::admin::{self, Page};
use super::api::router::{route, Route};
use super::api::schema;
use super::api::types::SchemaError;
use super::model::Command;
use super::pages::{self, PageFormat};
use super::strict;
use crate::auth::{self, Signer};
use crate::config::Config;
use crate::dialect::{Header, HeaderValue, Request, Response};
use crate::proto::handshake;
use crate::proto::http::{query_param, Method};
use crate::py::json as pyjson;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use uuid::Uuid;

/// `Content-Type` of JSON answers.
pub const JSON: &str = "application/json";
/// `Content-Type` of HTML answers (long-poll bodies, Pyramid's error pages).
pub const HTML: &str = "text/html; charset=UTF-8";
/// `Content-Type` of plain-text answers (the CORS preflight's empty 200).
pub const TEXT: &str = "text/plain; charset=UTF-8";
/// `Content-Type` of gevent's own `500 Internal Server Error` page (no charset).
pub const TEXT_NO_CHARSET: &str = "text/plain";

/// The CORS header set (spec §4.3). Pages the front builds itself carry it always; answers
/// computed by the model carry it when `allow_cors` admits the request's origin
/// (`Front::cors`), which is how Herald has matched 0.7.1 in the differential suite.
pub const CORS: &[Header] = &[
    ("Access-Control-Allow-Origin", HeaderValue::Static(b"*")),
    ("XDomainRequestAllowed", HeaderValue::Static(b"1")),
    (
        "Access-Control-Allow-Methods",
        HeaderValue::Static(b"GET, POST, OPTIONS, PUT, DELETE, PATCH"),
    ),
    (
        "Access-Control-Allow-Headers",
        HeaderValue::Static(b"Content-Type, Depth, User-Agent, X-File-Size, X-Requested-With, If-Modified-Since, X-File-Name, Cache-Control, Pragma, Origin, Connection, Referer, Cookie"),
    ),
    ("Access-Control-Max-Age", HeaderValue::Static(b"86400")),
];

/// The CORS headers for a request from `origin`: all of them when `allow_cors` is empty or
/// one of its entries is a substring of the origin (spec §4.3), none otherwise.
pub fn cors_for(cfg: &Config, origin: Option<&[u8]>) -> &'static [Header] {
    if cfg.allow_cors.is_empty() {
        return CORS;
    }
    let origin = origin.map(String::from_utf8_lossy).unwrap_or_default();
    if cfg.allow_cors.iter().any(|a| origin.contains(a.as_str())) {
        CORS
    } else {
        &[]
    }
}

fn json(status: u16, v: &Value) -> Response {
    Response::new(status, JSON, pyjson::to_string_pretty(v))
}

/// `500 Internal Server Error`, `text/plain` without charset, connection closed (spec §4.2):
/// gevent's page for a crashed WSGI app.
pub fn internal_error() -> Response {
    let mut r = Response::new(
        500,
        TEXT_NO_CHARSET,
        Bytes::from_static(b"Internal Server Error"),
    );
    r.close = true;
    r
}

/// Which websocket handler an upgrade goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsTarget {
    /// Channelstream `/ws`: `None` when `conn_id` is missing or malformed — the real server
    /// completes the handshake and then drops the TCP connection without a close frame.
    Channelstream(Option<Uuid>),
    /// The Autobahn echo websocket at the configured `echo_path`.
    Echo,
}

/// What the shard must do with one request.
#[derive(Debug)]
pub enum FrontAction {
    /// Answer now with this response; nothing goes to the model.
    Respond(Response),
    /// Send the command to the model and answer with its reply (CORS headers on a 200).
    Model(Command),
    /// Answer now and send `cmd` to the model without waiting.
    RespondThenModel(Response, Command),
    /// Complete the websocket handshake with this accept key.
    Upgrade {
        /// The `Sec-WebSocket-Accept` value derived from the client's key.
        accept: String,
        /// Which handler the upgraded socket is served by.
        target: WsTarget,
    },
    /// Answer with the server's counters (the shard owns them).
    Metrics,
}

/// Read-only context shared by all requests of a shard.
pub struct Front<'a> {
    /// The server configuration.
    pub cfg: &'a Config,
    /// Verifies `x-channelstream-secret` tokens with the configured `secret`.
    pub signer: &'a Signer,
    /// The CORS headers for this request's origin (empty when `allow_cors` refuses it),
    /// added to successful answers only, as Pyramid adds them to `request.response`.
    pub cors: &'static [Header],
}

/// The format of Pyramid's error pages for this request (`Accept`, see `pages::negotiate`).
fn page_format(req: &Request<'_>) -> PageFormat {
    pages::negotiate(req.header("accept"))
}

/// Authentication outcome for a Pyramid request (spec §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Allowed IP with a valid signature.
    Granted,
    /// No secret, or a refused IP: only public routes.
    Anonymous,
}

impl Front<'_> {
    /// Decide what to do with one complete request.
    pub fn handle(&self, req: &Request<'_>) -> FrontAction {
        if let Some(resp) = self.cfg.strict.then(|| strict::check_host(req)).flatten() {
            return FrontAction::Respond(resp);
        }
        let raw_path = req.head.path.get(req.buf);
        let prefix = req.header("x-script-name").unwrap_or(&[]);
        let path = strip_prefix(raw_path, prefix);
        let echo = self.cfg.echo_path.as_deref().map(str::as_bytes);
        let r = route(req.head.method, path, echo);

        // `/ws` (and the echo route) are dispatched before Pyramid: no auth, no CORS.
        if matches!(r, Route::Ws | Route::Echo) {
            return self.upgrade(req, r);
        }
        if self.cfg.enforce_https && !req.secure {
            return FrontAction::Respond(pages::error_page(
                406,
                "",
                "SSL is required",
                page_format(req),
            ));
        }
        if r == Route::Options {
            return FrontAction::Respond(Response::new(200, TEXT, Bytes::new()).with_headers(CORS));
        }
        let auth = match self.authenticate(req) {
            Ok(a) => a,
            Err(resp) => return FrontAction::Respond(resp),
        };
        match r {
            Route::NotFound => FrontAction::Respond(not_found(req, path, None)),
            Route::MethodMismatch(view) => {
                FrontAction::Respond(not_found(req, path, Some((view, req.head.method))))
            }
            r if r.is_server_api() && auth != Auth::Granted && !self.admin_session_api(req) => {
                FrontAction::Respond(forbidden(req))
            }
            r if r.is_admin() && auth != Auth::Granted && !self.admin_cookie_ok(req) => {
                if matches!(r, Route::OpenApi | Route::Metrics) {
                    FrontAction::Respond(forbidden(req))
                } else {
                    FrontAction::Respond(self.redirect(req, prefix, "/admin/sign_in"))
                }
            }
            r if self.cfg.strict => match strict::before_dispatch(r, req) {
                Some(resp) => FrontAction::Respond(resp),
                None => strict::after_dispatch(self.dispatch(req, r, prefix), r, req),
            },
            r => self.dispatch(req, r, prefix),
        }
    }

    fn authenticate(&self, req: &Request<'_>) -> Result<Auth, Response> {
        if !auth::ip_allowed(&self.cfg.allow_posting_from, &req.peer) {
            return Ok(Auth::Anonymous);
        }
        let token = match req.header("x-channelstream-secret") {
            Some(h) => Some(h.to_vec()),
            None => req.param("secret").map(String::into_bytes),
        };
        match token {
            Some(t) if !t.is_empty() => {
                let max_age = if self.cfg.validate_requests {
                    Some(auth::SIGNATURE_MAX_AGE)
                } else {
                    None
                };
                match self.signer.verify(&t, req.now_unix, max_age) {
                    Ok(()) => Ok(Auth::Granted),
                    Err(e) => {
                        tracing::debug!(peer = %req.peer, reason = %e, "bad signature");
                        Err(json(401, &serde_json::json!({"request": "Bad Signature"})))
                    }
                }
            }
            _ => Ok(Auth::Anonymous),
        }
    }

    fn upgrade(&self, req: &Request<'_>, r: Route) -> FrontAction {
        if let Some(resp) = self
            .cfg
            .strict
            .then(|| strict::check_ws_version(req))
            .flatten()
        {
            return FrontAction::Respond(resp);
        }
        match handshake::validate(req.head, req.buf) {
            Ok(accept) => {
                let target = if r == Route::Echo {
                    WsTarget::Echo
                } else {
                    let id = req
                        .query_param("conn_id")
                        .and_then(|s| Uuid::parse_str(s.trim()).ok());
                    WsTarget::Channelstream(id)
                };
                FrontAction::Upgrade { accept, target }
            }
            Err(e) => {
                let mut resp = Response::new(e.status(), TEXT, Bytes::from(e.to_string()));
                resp.close = true;
                if e.status() == 426 {
                    resp.headers.push(("Sec-WebSocket-Version", "13".into()));
                    resp.headers.push(("Upgrade", "websocket".into()));
                }
                FrontAction::Respond(resp)
            }
        }
    }

    fn dispatch(&self, req: &Request<'_>, r: Route, prefix: &[u8]) -> FrontAction {
        let model = FrontAction::Model;
        match r {
            Route::Connect => with_json(req.body, |v| model(Command::Connect(v))),
            Route::Subscribe => with_json(req.body, |body| {
                model(Command::Subscribe {
                    body,
                    query_conn_id: req.query_param("conn_id"),
                })
            }),
            Route::Unsubscribe => with_json(req.body, |body| {
                model(Command::Unsubscribe {
                    body,
                    query_conn_id: req.query_param("conn_id"),
                })
            }),
            Route::UserState => with_json(req.body, |v| model(Command::UserState(v))),
            Route::ChannelConfig => with_json(req.body, |v| model(Command::ChannelConfig(v))),
            Route::Info if req.body.is_empty() => model(Command::Info(None)),
            Route::Info => with_json(req.body, |v| model(Command::Info(Some(v)))),
            Route::MessagePost => with_json(req.body, |v| {
                batch(
                    schema::messages(&v),
                    schema::message_echo,
                    Command::Messages,
                    self.cors,
                )
            }),
            Route::MessagePatch => with_json(req.body, |v| {
                batch(
                    schema::edits(&v),
                    schema::edit_echo,
                    Command::Edits,
                    self.cors,
                )
            }),
            Route::MessageDelete => with_json(req.body, |v| {
                batch(
                    schema::deletes(&v),
                    schema::delete_echo,
                    Command::Deletes,
                    self.cors,
                )
            }),
            Route::Listen => match req.query_param("conn_id") {
                None => FrontAction::Respond(internal_error()),
                Some(s) => match Uuid::parse_str(s.trim()) {
                    Ok(conn_id) => model(Command::Listen {
                        conn_id,
                        page: page_format(req),
                        callback: req.query_param("callback"),
                    }),
                    Err(_) => {
                        FrontAction::Respond(json(422, &serde_json::json!(["Wrong UUID format"])))
                    }
                },
            },
            Route::Disconnect => {
                let conn_id = if req.head.method == Method::Post {
                    match strict::parse_body(req.body, false) {
                        Ok(Value::Object(mut m)) => m.remove("conn_id"),
                        Ok(_) => return FrontAction::Respond(internal_error()),
                        Err(e) => return FrontAction::Respond(strict::body_error(e, false)),
                    }
                } else {
                    req.query_param("conn_id").map(Value::String)
                };
                match schema::disconnect(conn_id.as_ref()) {
                    Ok(id) => model(Command::Disconnect(id)),
                    Err(e) => FrontAction::Respond(schema_error(e)),
                }
            }
            Route::AdminJson => model(Command::AdminJson),
            Route::OpenApi => FrontAction::Respond(
                Response::new(
                    200,
                    JSON,
                    Bytes::from_static(include_bytes!("../../assets/openapi.json")),
                )
                .with_headers(CORS),
            ),
            Route::AdminConnections => model(Command::AdminConnections),
            Route::AdminPage => {
                FrontAction::Respond(admin::page(Page::Dashboard).with_headers(CORS))
            }
            Route::ApiExplorer => FrontAction::Respond(admin::page(Page::Explorer)),
            Route::Static => FrontAction::Respond(
                admin::static_asset(req.head.path.get(req.buf), req.query_param("v").as_deref())
                    .unwrap_or_else(|| not_found(req, req.head.path.get(req.buf), None)),
            ),
            Route::AdminSignIn => self.sign_in(req, prefix),
            Route::Metrics => FrontAction::Metrics,
            Route::AdminSignOut => {
                let mut resp = self.redirect(req, prefix, "/admin/sign_in");
                resp.headers
                    .push(("Set-Cookie", "auth_tkt=; Max-Age=0; Path=/".into()));
                FrontAction::Respond(resp)
            }
            _ => FrontAction::Respond(not_found(req, req.head.path.get(req.buf), None)),
        }
    }

    fn sign_in(&self, req: &Request<'_>, prefix: &[u8]) -> FrontAction {
        if req.head.method == Method::Post {
            let user = query_param(req.body, "username").unwrap_or_default();
            let pass = query_param(req.body, "password").unwrap_or_default();
            let user_ok = constant_eq(user.trim().as_bytes(), self.cfg.admin_user.as_bytes());
            let pass_ok = constant_eq(pass.trim().as_bytes(), self.cfg.admin_secret.as_bytes());
            if user_ok & pass_ok {
                let mut resp = self.redirect(req, prefix, "/admin");
                let cookie =
                    make_admin_cookie(&self.cfg.cookie_secret, &self.cfg.admin_user, req.now_unix);
                resp.headers.push((
                    "Set-Cookie",
                    format!("auth_tkt={cookie}; Max-Age={ADMIN_COOKIE_AGE}; Path=/; SameSite=Lax")
                        .into(),
                ));
                return FrontAction::Respond(resp);
            }
            tracing::info!(peer = %req.peer, "admin sign-in refused");
        }
        let failed = req.head.method == Method::Post;
        FrontAction::Respond(admin::page(Page::SignIn { failed }).with_headers(CORS))
    }

    /// A server-API call from the admin pages: the admin cookie together with
    /// `X-Herald-Admin` (see `admin`), in place of a signature.
    fn admin_session_api(&self, req: &Request<'_>) -> bool {
        req.header(admin::ADMIN_API_HEADER)
            .is_some_and(|v| !v.is_empty())
            && self.admin_cookie_ok(req)
    }

    fn admin_cookie_ok(&self, req: &Request<'_>) -> bool {
        let Some(cookies) = req.header("cookie") else {
            return false;
        };
        String::from_utf8_lossy(cookies)
            .split(';')
            .filter_map(|c| c.trim().strip_prefix("auth_tkt="))
            .any(|v| check_admin_cookie(&self.cfg.cookie_secret, v, req.now_unix))
    }

    fn redirect(&self, req: &Request<'_>, prefix: &[u8], to: &str) -> Response {
        let scheme = if !self.cfg.http_scheme.is_empty() {
            self.cfg.http_scheme.as_str()
        } else if req.secure {
            "https"
        } else {
            "http"
        };
        let host = req
            .header("host")
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_else(|| format!("{}:{}", self.cfg.host, self.cfg.port));
        let prefix = String::from_utf8_lossy(prefix);
        admin::found(
            req.header("accept"),
            &format!("{scheme}://{host}{prefix}{to}"),
        )
    }
}

/// Parse a JSON body; invalid (or empty) JSON is a 500, as in Channelstream; a body Python
/// cannot read back is a 400 (`strict::parse_body`; strict mode refines the 500s).
fn with_json(body: &[u8], f: impl FnOnce(Value) -> FrontAction) -> FrontAction {
    match strict::parse_body(body, false) {
        Ok(v) => f(v),
        Err(e) => FrontAction::Respond(strict::body_error(e, false)),
    }
}

/// `/message` POST/PATCH/DELETE: answer with the echo now, deliver afterwards.
fn batch<T>(
    parsed: Result<Vec<T>, SchemaError>,
    echo: fn(&T) -> Value,
    cmd: fn(Vec<T>) -> Command,
    cors: &'static [Header],
) -> FrontAction {
    match parsed {
        Ok(items) => {
            let body = Value::Array(items.iter().map(echo).collect());
            FrontAction::RespondThenModel(json(200, &body).with_headers(cors), cmd(items))
        }
        Err(e) => FrontAction::Respond(schema_error(e)),
    }
}

/// Map a validation failure to its response (422 body, or 500 where Channelstream crashes).
pub fn schema_error(e: SchemaError) -> Response {
    match e {
        SchemaError::Invalid(v) => json(422, &v),
        SchemaError::Crash => internal_error(),
    }
}

fn strip_prefix<'a>(path: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    if let Some(rest) = path.strip_prefix(prefix).filter(|_| !prefix.is_empty()) {
        if rest.is_empty() {
            return b"/";
        }
        if rest.starts_with(b"/") {
            return rest;
        }
    }
    path
}

fn forbidden(req: &Request<'_>) -> Response {
    pages::error_page(403, pages::FORBIDDEN, "", page_format(req))
}

/// Pyramid's 404. The detail is the path when no route matched; empty when a route matched
/// but none of its several views did (Pyramid's `MultiView` raises without one: `/message`
/// with another method, `/admin/{action}` with an unknown action); Pyramid's predicate
/// mismatch message for a single view with another method.
fn not_found(req: &Request<'_>, path: &[u8], mismatch: Option<(&str, Method)>) -> Response {
    let detail = match mismatch {
        Some(("message", _)) => String::new(),
        Some((view, m)) => {
            let (view, methods) = view_methods(view, m);
            format!("predicate mismatch for view {view} (request_method = {methods})")
        }
        None if is_admin_action(path) => String::new(),
        None => pages::path_info(path),
    };
    pages::error_page(404, pages::NOT_FOUND, &detail, page_format(req))
}

/// `/admin/{action}`: one non-empty segment under `/admin/` (the known actions are routed
/// before this; an unknown one matches the route but none of its views).
fn is_admin_action(path: &[u8]) -> bool {
    path.strip_prefix(b"/admin/")
        .is_some_and(|a| !a.is_empty() && !a.contains(&b'/'))
}

/// The view name and allowed methods Pyramid names in a predicate mismatch.
fn view_methods(view: &str, _m: Method) -> (&str, &'static str) {
    match view {
        "listen" => (view, "GET,HEAD"),
        // The admin JSON view is a method of the `ServerViews` class, which Pyramid names.
        "admin_json" => ("ServerViews", "GET,HEAD,POST"),
        "admin_connections" | "static" => (view, "GET,HEAD"),
        _ => (view, "POST"),
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// 30 days, as Channelstream's `AuthTktAuthenticationPolicy(max_age=2592000)`.
const ADMIN_COOKIE_AGE: u64 = 2_592_000;

/// Admin cookie: `<hex hmac-sha1(cookie_secret, ts!user)><ts hex 8>!<user>`. Only Herald reads
/// it, so the format need not be Pyramid's AuthTkt (spec §3.3).
fn make_admin_cookie(secret: &str, user: &str, now: u64) -> String {
    let ts = format!("{:08x}", now as u32);
    format!(
        "{}{ts}!{}",
        cookie_mac(secret, &ts, user),
        hex_encode(user.as_bytes())
    )
}

fn check_admin_cookie(secret: &str, value: &str, now: u64) -> bool {
    let (Some(mac), Some(ts), Some(rest)) = (value.get(..40), value.get(40..48), value.get(48..))
    else {
        return false;
    };
    let Some(user_hex) = rest.strip_prefix('!') else {
        return false;
    };
    let Some(user) = hex_decode(user_hex).and_then(|u| String::from_utf8(u).ok()) else {
        return false;
    };
    let Ok(t) = u32::from_str_radix(ts, 16) else {
        return false;
    };
    let fresh = (now as u32).wrapping_sub(t) as u64 <= ADMIN_COOKIE_AGE;
    fresh && constant_eq(mac.as_bytes(), cookie_mac(secret, ts, &user).as_bytes())
}

fn cookie_mac(secret: &str, ts: &str, user: &str) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(ts.as_bytes());
    mac.update(b"!");
    mac.update(user.as_bytes());
    hex_encode(&mac.finalize().into_bytes())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_stripping() {
        assert_eq!(strip_prefix(b"/cs/info", b"/cs"), b"/info");
        assert_eq!(strip_prefix(b"/cs/info", b"/cs/"), b"/info");
        assert_eq!(strip_prefix(b"/csinfo", b"/cs"), b"/csinfo");
        assert_eq!(strip_prefix(b"/cs", b"/cs"), b"/");
        assert_eq!(strip_prefix(b"/info", b""), b"/info");
    }

    #[test]
    fn admin_cookie_round_trip() {
        let c = make_admin_cookie("k", "admin", 1_700_000_000);
        assert!(check_admin_cookie("k", &c, 1_700_000_000));
        assert!(check_admin_cookie(
            "k",
            &c,
            1_700_000_000 + ADMIN_COOKIE_AGE
        ));
        assert!(!check_admin_cookie(
            "k",
            &c,
            1_700_000_001 + ADMIN_COOKIE_AGE
        ));
        assert!(!check_admin_cookie("other", &c, 1_700_000_000));
        assert!(!check_admin_cookie("k", "garbage", 1_700_000_000));
        assert!(!check_admin_cookie("k", "", 0));
        let mut forged = c.clone();
        forged.replace_range(0..1, if c.starts_with('0') { "1" } else { "0" });
        assert!(!check_admin_cookie("k", &forged, 1_700_000_000));
    }
}
