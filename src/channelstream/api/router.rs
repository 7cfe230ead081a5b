//! The route table: `(method, path)` → `Route`. Pure, no I/O.
//!
//! Mirrors Channelstream 0.7.1's Pyramid routes (spec §5). Two things are decided before any
//! authentication, as in the real server: `/ws` is split off to the websocket handler, and a
//! wrong method on a method-restricted route is a 404 ("predicate mismatch") even without a
//! secret.

use crate::proto::http::Method;

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// CORS preflight on any path.
    Options,
    /// `GET /ws?conn_id=` (Channelstream websocket).
    Ws,
    /// The Autobahn echo websocket (only when configured).
    Echo,
    /// `POST /connect`.
    Connect,
    /// `POST /subscribe`.
    Subscribe,
    /// `POST /unsubscribe`.
    Unsubscribe,
    /// `POST /user_state`.
    UserState,
    /// `POST /message`: publish.
    MessagePost,
    /// `PATCH /message`: edit.
    MessagePatch,
    /// `DELETE /message`: delete.
    MessageDelete,
    /// `POST /channel_config`.
    ChannelConfig,
    /// `/info`, any method.
    Info,
    /// `GET` or `HEAD /listen` (long poll).
    Listen,
    /// `/disconnect`, any method.
    Disconnect,
    /// `GET` or `POST /admin/admin.json`.
    AdminJson,
    /// `GET /admin/connections.json` (Herald): connections with their transport, for the
    /// dashboard.
    AdminConnections,
    /// `/api-explorer`: the API explorer page (admin rights).
    ApiExplorer,
    /// `GET` or `HEAD /static/...`: an embedded asset of the admin pages (no rights).
    Static,
    /// `/admin`: the admin HTML page.
    AdminPage,
    /// `/admin/sign_in`: the admin login form and its submission.
    AdminSignIn,
    /// `/admin/sign_out`: drops the admin cookie.
    AdminSignOut,
    /// `/openapi.json`: the API description (admin rights).
    OpenApi,
    /// Herald's counters in Prometheus text format (admin rights).
    Metrics,
    /// Unknown path.
    NotFound,
    /// Known path, wrong method: 404 with a "predicate mismatch" body naming the view.
    MethodMismatch(&'static str),
}

impl Route {
    /// Server-API routes need a valid signature from an allowed IP.
    pub fn is_server_api(self) -> bool {
        matches!(
            self,
            Route::Connect
                | Route::Subscribe
                | Route::Unsubscribe
                | Route::UserState
                | Route::MessagePost
                | Route::MessagePatch
                | Route::MessageDelete
                | Route::ChannelConfig
                | Route::Info
        )
    }

    /// Routes that need admin rights (admin cookie, or the server-API signature).
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            Route::AdminJson
                | Route::AdminConnections
                | Route::AdminPage
                | Route::ApiExplorer
                | Route::OpenApi
                | Route::Metrics
        )
    }
}

/// Match a request. `echo_path` is the configured echo route, if any.
pub fn route(method: Method, path: &[u8], echo_path: Option<&[u8]>) -> Route {
    use Method::*;
    if echo_path == Some(path) {
        return Route::Echo;
    }
    if path == b"/ws" {
        return Route::Ws;
    }
    if method == Options {
        return Route::Options;
    }
    let post_only = |r: Route, view: &'static str| {
        if method == Post {
            r
        } else {
            Route::MethodMismatch(view)
        }
    };
    match path {
        b"/connect" => post_only(Route::Connect, "connect"),
        b"/subscribe" => post_only(Route::Subscribe, "subscribe"),
        b"/unsubscribe" => post_only(Route::Unsubscribe, "unsubscribe"),
        b"/user_state" => post_only(Route::UserState, "user_state"),
        b"/channel_config" => post_only(Route::ChannelConfig, "channel_config"),
        b"/message" => match method {
            Post => Route::MessagePost,
            Patch => Route::MessagePatch,
            Delete => Route::MessageDelete,
            _ => Route::MethodMismatch("message"),
        },
        b"/info" => Route::Info,
        b"/listen" => match method {
            Get | Head => Route::Listen,
            _ => Route::MethodMismatch("listen"),
        },
        b"/disconnect" => Route::Disconnect,
        b"/admin/admin.json" => match method {
            Get | Post => Route::AdminJson,
            _ => Route::MethodMismatch("admin_json"),
        },
        b"/admin/connections.json" => match method {
            Get | Head => Route::AdminConnections,
            _ => Route::MethodMismatch("admin_connections"),
        },
        b"/api-explorer" => Route::ApiExplorer,
        p if p.starts_with(b"/static/") => match method {
            Get | Head => Route::Static,
            _ => Route::MethodMismatch("static"),
        },
        b"/admin" => Route::AdminPage,
        b"/admin/sign_in" => Route::AdminSignIn,
        b"/admin/sign_out" => Route::AdminSignOut,
        b"/openapi.json" => Route::OpenApi,
        b"/metrics" => match method {
            Get | Head => Route::Metrics,
            _ => Route::MethodMismatch("metrics"),
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    #[test]
    fn table() {
        let echo = Some(&b"/echo"[..]);
        let cases: &[(Method, &str, Route)] = &[
            (Post, "/connect", Route::Connect),
            (Get, "/connect", Route::MethodMismatch("connect")),
            (Options, "/connect", Route::Options),
            (Options, "/no/such/path", Route::Options),
            (Get, "/ws", Route::Ws),
            (Post, "/ws", Route::Ws),
            (Get, "/ws/", Route::NotFound),
            (Get, "/echo", Route::Echo),
            (Post, "/message", Route::MessagePost),
            (Patch, "/message", Route::MessagePatch),
            (Delete, "/message", Route::MessageDelete),
            (Get, "/message", Route::MethodMismatch("message")),
            (Put, "/info", Route::Info),
            (Get, "/info", Route::Info),
            (Get, "/listen", Route::Listen),
            (Head, "/listen", Route::Listen),
            (Post, "/listen", Route::MethodMismatch("listen")),
            (Delete, "/disconnect", Route::Disconnect),
            (Get, "/admin/admin.json", Route::AdminJson),
            (Get, "/admin/connections.json", Route::AdminConnections),
            (Get, "/api-explorer", Route::ApiExplorer),
            (Get, "/static/herald/admin.js", Route::Static),
            (
                Post,
                "/static/herald/admin.js",
                Route::MethodMismatch("static"),
            ),
            (
                Put,
                "/admin/admin.json",
                Route::MethodMismatch("admin_json"),
            ),
            (Get, "/admin/foo", Route::NotFound),
            (Get, "/", Route::NotFound),
            (Get, "/demo", Route::NotFound),
            (Get, "/openapi.json", Route::OpenApi),
            (Get, "/metrics", Route::Metrics),
            (Post, "/metrics", Route::MethodMismatch("metrics")),
        ];
        for (m, p, want) in cases {
            assert_eq!(route(*m, p.as_bytes(), echo), *want, "{m:?} {p}");
        }
        assert_eq!(route(Get, b"/echo", None), Route::NotFound);
        assert!(Route::Info.is_server_api());
        assert!(!Route::Listen.is_server_api());
        assert!(Route::OpenApi.is_admin());
    }
}
