//! The Channelstream model: users, connections, channels, history, frames, presence, user
//! state, catch-up, long-poll queues, heartbeats and garbage collection.
//!
//! A pure, single-threaded state machine: `handle` and `tick` take commands and the time and
//! report their effects (HTTP replies, websocket deliveries, closes) through `Effects`. It
//! knows sockets only as `SockRef` ids and frames only as `Bytes`, so the same code runs on one
//! shard or behind inboxes, and tests drive it with no I/O at all.
//! STUB: owned by the model work; the signatures below are the contract.
#![allow(unused_variables)]

use crate::api::types::{DeleteCmd, EditCmd, MessageCmd};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Instant;
use uuid::Uuid;

/// A websocket attached on some shard: `slot` is the shard's slab key, `gen` its generation,
/// so a delivery to a socket that has since closed (and whose slot was reused) is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockRef {
    pub shard: u16,
    pub slot: u32,
    pub gen: u32,
}

/// An HTTP request parked on some shard, waiting for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReqRef {
    pub shard: u16,
    pub slot: u32,
    pub gen: u32,
}

/// The time, read once per loop turn by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

/// What the reply's `Content-Type` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// `application/json`
    Json,
    /// `text/html; charset=UTF-8` (long-poll bodies, Pyramid's 401 page)
    Html,
    /// `text/plain` (500 "Internal Server Error")
    Text,
}

/// A complete HTTP answer to a command; the front adds headers (CORS, Content-Length, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub kind: ContentKind,
    pub body: Bytes,
}

/// Commands the model accepts. Bodies that need model lookups to validate ("Unknown
/// connection", "Unknown user") travel as parsed JSON and are validated here; message
/// batches are validated where they arrive and come typed.
#[derive(Clone, Debug)]
pub enum Command {
    Connect(Value),
    Subscribe {
        body: Value,
        query_conn_id: Option<String>,
    },
    Unsubscribe {
        body: Value,
        query_conn_id: Option<String>,
    },
    UserState(Value),
    ChannelConfig(Value),
    /// `None` = empty body.
    Info(Option<Value>),
    /// Fire and forget: the front already answered with the echo.
    Messages(Vec<MessageCmd>),
    Edits(Vec<EditCmd>),
    Deletes(Vec<DeleteCmd>),
    Disconnect(Uuid),
    AdminJson,
    /// `GET /listen`: the reply is sent when the poll completes.
    Listen {
        conn_id: Uuid,
        callback: Option<String>,
    },
    /// The HTTP client of a pending `/listen` went away.
    ListenAborted {
        conn_id: Uuid,
    },
    WsOpen {
        conn_id: Uuid,
        sock: SockRef,
    },
    WsClosed {
        conn_id: Uuid,
        sock: SockRef,
    },
    /// A client frame (any data frame) arrived on the socket: marks activity.
    WsActivity {
        conn_id: Uuid,
        sock: SockRef,
    },
}

/// Where the model's effects go. The shard implements it by pushing into local output queues
/// and batching per target shard; tests implement it by recording.
pub trait Effects {
    fn reply(&mut self, req: ReqRef, reply: Reply);
    /// Send one already-encoded websocket frame to every socket in `to`.
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]);
    /// Close a socket with this close code (GC, unknown `conn_id`).
    fn close(&mut self, sock: SockRef, code: u16);
}

#[derive(Debug)]
pub struct Model {}

impl Model {
    pub fn new(started: DateTime<Utc>) -> Self {
        Model {}
    }

    /// Apply one command. `req` is where the reply goes (None for fire-and-forget commands).
    pub fn handle(&mut self, req: Option<ReqRef>, cmd: Command, now: Now, fx: &mut dyn Effects) {
        todo!()
    }

    /// Run due timers: heartbeats, connection GC, user GC, long-poll completion.
    pub fn tick(&mut self, now: Now, fx: &mut dyn Effects) {
        todo!()
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Whether a connection id is known (used by tests and diagnostics).
    pub fn has_connection(&self, conn_id: &Uuid) -> bool {
        false
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Command>();
    is_send::<Reply>();
    let _ = Bytes::new();
}
