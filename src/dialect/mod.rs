//! The seam between the reactor and a wire dialect.
//!
//! The reactor (`shard`) owns sockets, HTTP and websocket framing, output queues,
//! back-pressure, timers and the inboxes between shards; a dialect (Channelstream today,
//! Pusher and Pushi beside it) owns what a request or a websocket message means. The reactor
//! is generic over one `Dialect` per shard and calls it with complete requests and messages;
//! the dialect acts through an `Outbox`: answer a parked request, deliver one encoded frame to
//! many sockets on any shard, close a socket, or send one of its own messages to another
//! shard's instance. A dialect never sees the slab, the poll or a socket, and this module
//! names no dialect: `main` (through `server`) plugs them in.
//!
//! Every call is made on the shard thread, between socket events, so a dialect needs no lock;
//! what it shares across shards it shares by message.

pub mod pair;
pub mod response;

pub use pair::{Either, Pair};
pub use response::{Header, HeaderValue, Response};

use crate::ids::{ReqRef, ShardId, SockRef};
use crate::proto::http::{query_param, RequestHead};
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

/// One complete HTTP request, as the reactor parsed it.
pub struct Request<'a> {
    /// The parsed head; its spans index into `buf`.
    pub head: &'a RequestHead,
    /// The bytes the head was parsed from.
    pub buf: &'a [u8],
    /// The body, de-chunked.
    pub body: &'a [u8],
    /// The client's address.
    pub peer: IpAddr,
    /// Unix time in seconds (signature ages).
    pub now_unix: u64,
    /// The request came over TLS (its scheme is `https`, a websocket's `wss`).
    pub secure: bool,
    /// Where an answer given later (`RequestAction::Park`) must be sent.
    pub at: ReqRef,
}

impl Request<'_> {
    /// The request path, undecoded, without the query string.
    pub fn path(&self) -> &[u8] {
        self.head.path.get(self.buf)
    }

    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(self.buf, name)
    }

    /// The raw query string (after `?`), empty if none.
    pub fn query(&self) -> &[u8] {
        self.head.query.map(|s| s.get(self.buf)).unwrap_or(&[])
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query(), name).map(|c| c.into_owned())
    }

    /// Whether the body is `application/x-www-form-urlencoded`.
    pub fn is_form(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.get(..33)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"application/x-www-form-urlencoded"))
        })
    }

    /// A parameter from the query string, else from a form-encoded body (Pyramid's
    /// `request.params`, WebOb's order).
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_param(name).or_else(|| {
            if self.is_form() {
                query_param(self.body, name).map(|c| c.into_owned())
            } else {
                None
            }
        })
    }
}

/// What becomes of one request.
#[derive(Debug)]
pub enum RequestAction<W> {
    /// Answer now.
    Respond(Response),
    /// The answer comes later through `Outbox::reply` to `Request::at`. Pipelined requests
    /// behind it wait, so answers leave in request order. `success_headers` are added to a
    /// 200 answer (a policy decided from this request, such as CORS).
    Park {
        /// Headers for a 200 answer.
        success_headers: &'static [Header],
    },
    /// Complete the websocket handshake with this `Sec-WebSocket-Accept` value.
    Upgrade {
        /// The accept key.
        accept: String,
        /// Who serves the socket; `None`: drop the TCP connection right after the 101.
        role: Option<WsRole<W>>,
    },
}

impl<W> RequestAction<W> {
    /// The same action with the per-socket state mapped (used by `Pair`).
    pub fn map_ws<V>(self, f: impl FnOnce(W) -> V) -> RequestAction<V> {
        match self {
            RequestAction::Respond(r) => RequestAction::Respond(r),
            RequestAction::Park { success_headers } => RequestAction::Park { success_headers },
            RequestAction::Upgrade { accept, role } => RequestAction::Upgrade {
                accept,
                role: role.map(|r| match r {
                    WsRole::Echo => WsRole::Echo,
                    WsRole::Dialect(w) => WsRole::Dialect(f(w)),
                }),
            },
        }
    }
}

/// Who serves an upgraded websocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsRole<W> {
    /// The reactor's own echo route (`--echo-path`, for Autobahn|Testsuite).
    Echo,
    /// The dialect, with its per-socket state.
    Dialect(W),
}

/// A complete data message from a client.
#[derive(Clone, Copy, Debug)]
pub enum WsMessage<'a> {
    /// A text message (valid UTF-8).
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
}

/// A counter a dialect keeps per shard, summed over shards in `/metrics`.
#[derive(Clone, Copy, Debug)]
pub struct CounterDef {
    /// Prometheus metric name.
    pub name: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// Help text.
    pub help: &'static str,
}

/// Metrics a dialect renders itself, appended to `/metrics` after the core's and the
/// `Dialect::counters` (for labelled families, such as one sample per configured app, whose
/// label values the static `CounterDef`s cannot name). Called from whichever shard serves
/// `/metrics`, so it reads atomics, never a shard's state.
pub trait MetricsSource: Send + Sync {
    /// Append Prometheus text exposition lines (`# HELP`, `# TYPE`, samples).
    fn render(&self, out: &mut String);
}

/// A shard's inbox was full: the message was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxFull;

/// How a dialect acts on the server. Implemented by the shard.
pub trait Outbox<M> {
    /// The shard this call runs on.
    fn shard(&self) -> ShardId;
    /// Answer a parked request (on any shard). Ignored if it is gone.
    fn reply(&mut self, req: ReqRef, response: Response);
    /// Send one encoded websocket frame to every socket in `to` (on any shard): local sockets
    /// get a clone of `frame` each, every other shard one message with its share of `to`.
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]);
    /// Send a close frame with this code to a websocket (on any shard), then close it.
    fn close(&mut self, sock: SockRef, code: CloseCode);
    /// Hand `msg` to shard `to`'s dialect (inline when `to` is this shard is the caller's
    /// business: this always queues). `Err(InboxFull)` when that shard's inbox is full: the
    /// message is dropped and the caller applies its policy (503, skip an advisory report).
    fn send(&mut self, to: ShardId, msg: M) -> Result<(), InboxFull>;
    /// Set this shard's value of the dialect counter `index` (into `Dialect::counters`).
    fn set_counter(&mut self, index: usize, value: u64);
    /// The server's counters in Prometheus text format.
    fn metrics_text(&self) -> String;
}

/// A wire dialect, one instance per shard.
pub trait Dialect: 'static {
    /// What the dialect's instances send each other through the inboxes.
    type Msg: Send + fmt::Debug + 'static;
    /// Per-websocket state kept in the connection (small: it is paid per socket).
    type Ws: fmt::Debug + Send + 'static;
    /// Counters this dialect reports in `/metrics` (indices for `Outbox::set_counter`).
    fn counters() -> Vec<CounterDef>;

    /// Whether this dialect serves `req` (a server speaking several dialects on one port
    /// routes each request to the first that claims it; see `Pair`).
    fn claims(&self, req: &Request<'_>) -> bool {
        let _ = req;
        true
    }

    /// A complete request arrived.
    fn on_request(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        req: &Request<'_>,
    ) -> RequestAction<Self::Ws>;

    /// A websocket served by the dialect finished its handshake. `Err(code)` closes it with
    /// that close code.
    fn on_ws_open(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        sock: SockRef,
        ws: &mut Self::Ws,
    ) -> Result<(), CloseCode>;

    /// A complete data message arrived on one of the dialect's websockets.
    fn on_ws_message(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        sock: SockRef,
        ws: &mut Self::Ws,
        msg: WsMessage<'_>,
        now: Instant,
    );

    /// One of the dialect's websockets ended: called once, when the close handshake is done
    /// or the protocol failed (the connection may still linger to flush its close frame), or
    /// else when it is reaped (its slot may be reused after this).
    fn on_ws_closed(&mut self, out: &mut dyn Outbox<Self::Msg>, sock: SockRef, ws: Self::Ws);

    /// A message from another shard's instance arrived.
    fn on_message(&mut self, out: &mut dyn Outbox<Self::Msg>, msg: Self::Msg);

    /// When `on_timer` wants to run next (`None`: no timer).
    fn next_deadline(&self) -> Option<Instant>;

    /// The deadline passed.
    fn on_timer(&mut self, out: &mut dyn Outbox<Self::Msg>, now: Instant);

    /// The server is shutting down: answer what waits (long polls), before websockets are
    /// closed with [`Dialect::shutdown_close`].
    fn on_shutdown(&mut self, out: &mut dyn Outbox<Self::Msg>);

    /// The close code a websocket of this dialect gets when the server shuts down (1001 unless
    /// the protocol names another: Pusher's 4200 tells its clients to reconnect at once).
    fn shutdown_close(&self, _ws: &Self::Ws) -> CloseCode {
        CloseCode::Away
    }
}
