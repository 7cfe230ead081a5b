//! The Channelstream model: users, connections, channels, history, frames, presence, user
//! state, catch-up, long-poll queues, heartbeats and garbage collection.
//!
//! A pure, single-threaded state machine: `handle` and `tick` take commands and the time and
//! report their effects (HTTP replies, websocket deliveries, closes) through `Effects`. It
//! knows sockets only as `SockRef` ids and frames only as `Bytes`, so the same code runs on one
//! shard or behind inboxes, and tests drive it with no I/O at all. It never reads a clock:
//! every time comes from the `Now` it is given.
//!
//! Behaviour follows Channelstream 0.7.1 (spec §5-§9, §14.1), including its observable quirks;
//! where we deliberately differ (no crashes on collected users, a superseded long poll is
//! answered, a duplicated `conn_id` does not orphan the original) the code says so.
//!
//! Layout: `clock` (time line, periods), `msg` (stored messages and one-shot rendering),
//! `state` (records and timer queues), `deliver` (fan-out, presence, catch-up), `ops` (the
//! REST operations with typed entry points), `gc` (heartbeats, polls, GC passes), `persist`
//! (history changes for the store, restored history).
//!
//! Publish cost: one JSON render, one frame, one target list, one `Effects::deliver`; a
//! long-poll subscriber gets a refcounted slice of the same frame.

mod clock;
mod deliver;
mod gc;
mod msg;
mod ops;
mod persist;
mod state;
#[cfg(test)]
mod tests;

use crate::channelstream::api::schema;
use crate::channelstream::api::types::{DeleteCmd, EditCmd, MessageCmd, SchemaError, SubscribeCmd};
use crate::channelstream::pages::PageFormat;
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;
use slab::Slab;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

pub use crate::ids::{ReqRef, SockRef};
pub use persist::HistOp;

/// `schema::subscribe` or `schema::unsubscribe`.
type MembershipValidator =
    fn(&Value, Option<&str>, &dyn Fn(&Uuid) -> bool) -> Result<SubscribeCmd, SchemaError>;

/// The time, read once per loop turn by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time: drives timers, GC and heartbeats.
    pub mono: Instant,
    /// Wall-clock time: what message timestamps, `last_active` and uptime are made from.
    pub wall: DateTime<Utc>,
}

/// What the reply's `Content-Type` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// `application/json`
    Json,
    /// `text/html; charset=UTF-8` (long-poll bodies, Pyramid's HTML 401 page)
    Html,
    /// `text/plain` without charset (gevent's 500 "Internal Server Error")
    Text,
    /// `text/plain; charset=UTF-8` (Pyramid's plain-text error pages)
    Plain,
}

impl ContentKind {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            ContentKind::Json => "application/json",
            ContentKind::Html => "text/html; charset=UTF-8",
            ContentKind::Text => "text/plain",
            ContentKind::Plain => "text/plain; charset=UTF-8",
        }
    }
}

/// A complete HTTP answer to a command; the front adds headers (CORS, Content-Length, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Body type, which picks the `Content-Type` header.
    pub kind: ContentKind,
    /// The complete response body.
    pub body: Bytes,
}

/// Commands the model accepts. Bodies that need model lookups to validate ("Unknown
/// connection", "Unknown user") travel as parsed JSON and are validated here; message
/// batches are validated where they arrive and come typed.
#[derive(Clone, Debug)]
pub enum Command {
    /// `POST /connect` with its JSON body.
    Connect(Value),
    /// `POST /subscribe`.
    Subscribe {
        /// The JSON request body.
        body: Value,
        /// The `conn_id` query parameter, used when the body has no `conn_id` key.
        query_conn_id: Option<String>,
    },
    /// `POST /unsubscribe`.
    Unsubscribe {
        /// The JSON request body.
        body: Value,
        /// The `conn_id` query parameter, used when the body has no `conn_id` key.
        query_conn_id: Option<String>,
    },
    /// `POST /user_state` with its JSON body.
    UserState(Value),
    /// `POST /channel_config` with its JSON body.
    ChannelConfig(Value),
    /// `None` = empty body.
    Info(Option<Value>),
    /// Fire and forget: the front already answered with the echo.
    Messages(Vec<MessageCmd>),
    /// `PATCH /message`, validated; fire and forget like `Messages`.
    Edits(Vec<EditCmd>),
    /// `DELETE /message`, validated; fire and forget like `Messages`.
    Deletes(Vec<DeleteCmd>),
    /// `/disconnect` (any method) for this connection id.
    Disconnect(Uuid),
    /// `GET /admin/admin.json`: the server, user and channel dump.
    AdminJson,
    /// `GET /admin/connections.json` (Herald): every connection with its transport.
    AdminConnections,
    /// `GET /listen`: the reply is sent when the poll completes.
    Listen {
        /// The polling connection.
        conn_id: Uuid,
        /// JSONP callback name from the `callback` query parameter, if any.
        callback: Option<String>,
        /// The format of the 401 page for an unknown connection (the request's `Accept`).
        page: PageFormat,
    },
    /// The HTTP client of a pending `/listen` went away.
    ListenAborted {
        /// The connection whose poll was pending.
        conn_id: Uuid,
    },
    /// A websocket for `conn_id` completed its handshake on `sock`.
    WsOpen {
        /// The Channelstream connection the socket attaches to.
        conn_id: Uuid,
        /// The socket now carrying it.
        sock: SockRef,
    },
    /// The websocket `sock` of `conn_id` closed.
    WsClosed {
        /// The Channelstream connection the socket was attached to.
        conn_id: Uuid,
        /// The socket that closed.
        sock: SockRef,
    },
    /// A client frame (any data frame) arrived on the socket: marks activity.
    WsActivity {
        /// The connection the socket is attached to.
        conn_id: Uuid,
        /// The socket the frame came on.
        sock: SockRef,
    },
}

/// Where the model's effects go. The shard implements it by pushing into local output queues
/// and batching per target shard; tests implement it by recording.
pub trait Effects {
    /// Send the HTTP reply for request `req`.
    fn reply(&mut self, req: ReqRef, reply: Reply);
    /// Send one already-encoded websocket frame to every socket in `to`.
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]);
    /// Close a socket with this close code (GC, unknown `conn_id`).
    fn close(&mut self, sock: SockRef, code: CloseCode);
}

/// Global counters (`server_state.stats`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connection deliveries, attached or not.
    pub total_messages: u64,
    /// Messages passed to delivery, including those to unknown channels.
    pub total_unique_messages: u64,
    /// `/connect` and `/subscribe` refused over the channels-per-connection limit (Herald's
    /// own counter; not in admin.json).
    pub channel_limit_refused: u64,
}

/// The whole Channelstream state of one server.
#[derive(Debug)]
pub struct Model {
    started: DateTime<Utc>,
    clock: clock::Clock,
    /// Users in creation order (admin.json and `get_channels` walk them in that order).
    users: IndexMap<Arc<str>, state::User>,
    /// Channels in creation order; never removed, so an index is a stable id.
    channels: IndexMap<String, state::Channel>,
    conns: Slab<state::ConnRecord>,
    /// `server_state.connections`: the first object registered for each id.
    by_id: HashMap<Uuid, state::ConnSlot>,
    timers: state::Timers,
    stats: Stats,
    /// Counters handing out user epochs and connection generations.
    epoch: u64,
    gen: u64,
    /// Most channels one connection may be in (`--max-channels-per-connection`).
    max_channels_per_conn: usize,
    /// The close code for a websocket opened with an unknown `conn_id` (1000 as 0.7.1; strict
    /// mode's 4404).
    unknown_conn_close: crate::proto::ws::CloseCode,
    /// Scratch space reused by every delivery.
    targets: Vec<SockRef>,
    buf: Vec<u8>,
    slots: Vec<state::ConnSlot>,
    /// History changes for the store and restored history (`--persist-history` only).
    hist: Option<persist::HistLog>,
}

impl Model {
    /// An empty model; `started` is the server start time shown in admin.json.
    pub fn new(started: DateTime<Utc>) -> Self {
        Model {
            started,
            clock: clock::Clock::default(),
            users: IndexMap::new(),
            channels: IndexMap::new(),
            conns: Slab::new(),
            by_id: HashMap::new(),
            timers: state::Timers::default(),
            stats: Stats::default(),
            epoch: 0,
            gen: 0,
            max_channels_per_conn: crate::config::Limits::default().max_channels_per_connection,
            unknown_conn_close: crate::proto::ws::CloseCode::Normal,
            targets: Vec::new(),
            buf: Vec::new(),
            slots: Vec::new(),
            hist: None,
        }
    }

    /// Apply one command. `req` is where the reply goes (None for fire-and-forget commands).
    /// Bodies are validated here (the validators need the model for "Unknown connection" /
    /// "Unknown user"); each operation also has a typed entry point (`connect`, ...).
    pub fn handle(&mut self, req: Option<ReqRef>, cmd: Command, now: Now, fx: &mut dyn Effects) {
        let reply = match cmd {
            Command::Connect(body) => Some(match schema::connect(&body) {
                Ok(c) => self.connect(c, now, fx),
                Err(e) => ops::schema_error(e),
            }),
            Command::Subscribe {
                body,
                query_conn_id,
            } => Some(
                match self.membership_cmd(schema::subscribe, &body, query_conn_id.as_deref()) {
                    Ok(c) => self.subscribe(c, now, fx),
                    Err(e) => ops::schema_error(e),
                },
            ),
            Command::Unsubscribe {
                body,
                query_conn_id,
            } => Some(
                match self.membership_cmd(schema::unsubscribe, &body, query_conn_id.as_deref()) {
                    Ok(c) => self.unsubscribe(c, now, fx),
                    Err(e) => ops::schema_error(e),
                },
            ),
            Command::UserState(body) => {
                let users = &self.users;
                let known = |u: &str| users.contains_key(u);
                Some(match schema::user_state(&body, &known) {
                    Ok(c) => self.user_state(c, now, fx),
                    Err(e) => ops::schema_error(e),
                })
            }
            Command::ChannelConfig(body) => Some(match schema::channel_config(&body) {
                Ok(c) => self.channel_config(c, now),
                Err(e) => ops::schema_error(e),
            }),
            Command::Info(body) => Some(match schema::info(body.as_ref()) {
                Ok(res) => {
                    self.clock_at(now);
                    self.info(&res)
                }
                Err(e) => ops::schema_error(e),
            }),
            Command::Messages(m) => {
                self.messages(m, now, fx);
                None
            }
            Command::Edits(e) => {
                self.edits(e, now, fx);
                None
            }
            Command::Deletes(d) => {
                self.deletes(d, now, fx);
                None
            }
            Command::Disconnect(id) => Some(self.disconnect(id, now)),
            Command::AdminJson => {
                self.clock_at(now);
                Some(self.admin_json(now))
            }
            Command::AdminConnections => Some(self.admin_connections()),
            Command::Listen {
                conn_id,
                callback,
                page,
            } => {
                self.listen(req, (conn_id, page), callback, now, fx);
                None
            }
            Command::ListenAborted { conn_id } => {
                self.listen_aborted(req, conn_id);
                None
            }
            Command::WsOpen { conn_id, sock } => {
                self.ws_open(conn_id, sock, now, fx);
                None
            }
            Command::WsClosed { conn_id, sock } => {
                self.ws_closed(conn_id, sock, now);
                None
            }
            Command::WsActivity { conn_id, sock: _ } => {
                self.ws_activity(conn_id, now);
                None
            }
        };
        if let (Some(req), Some(reply)) = (req, reply) {
            fx.reply(req, reply);
        }
    }

    /// A `/subscribe` or `/unsubscribe` body through its validator, which needs to know the
    /// connection ids ("Unknown connection").
    fn membership_cmd(
        &self,
        validate: MembershipValidator,
        body: &Value,
        query_conn_id: Option<&str>,
    ) -> Result<SubscribeCmd, SchemaError> {
        validate(body, query_conn_id, &|id: &Uuid| {
            self.by_id.contains_key(id)
        })
    }

    /// Whether a connection id is known (used by tests and diagnostics).
    pub fn has_connection(&self, conn_id: &Uuid) -> bool {
        self.by_id.contains_key(conn_id)
    }

    /// Set the channels-per-connection limit (Channelstream has none; Herald refuses a
    /// `/connect` or `/subscribe` that would pass it with a 422, changing nothing).
    pub fn set_max_channels_per_connection(&mut self, n: usize) {
        self.max_channels_per_conn = n;
    }

    /// Set the close code sent to a websocket opened with an unknown `conn_id` (default 1000,
    /// as 0.7.1; strict mode sets `strict::UNKNOWN_CONN_CLOSE`).
    pub fn set_unknown_conn_close(&mut self, code: crate::proto::ws::CloseCode) {
        self.unknown_conn_close = code;
    }

    /// The global counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Command>();
    is_send::<Reply>();
    is_send::<Model>();
    let _ = Bytes::new();
}
