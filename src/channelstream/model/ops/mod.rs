//! The REST operations (`operations.py` and the views of `wsgi_views/server.py`), each with a
//! typed entry point taking the validated command, plus the JSON bodies they answer with.
//!
//! Key order in every body follows the real server's dicts; the JSON text itself comes from
//! `pyjson`, so only the structure is decided here.
//!
//! Layout: this file holds the reply constructors (one per kind of answer) and the model's
//! clock entry; `connect` (users and connections), `subscribe` (channel membership),
//! `messages` (publish, edit, delete), `info` (info, channel config, admin), `admin` (the dashboard's connection list) and `transport`
//! (long polls and websockets) hold the operations.

mod admin;
mod connect;
mod info;
mod messages;
mod subscribe;
mod transport;

#[cfg(test)]
pub(crate) use info::uptime_string;

use super::clock::MonoTime;
use super::msg::poll_body;
use super::state::{ConnRecord, ConnSlot, PendingPoll};
use super::{ContentKind, Model, Now, Reply};
use crate::channelstream::api::types::SchemaError;
use crate::channelstream::pages::{self, PageFormat};
use crate::py::json as pyjson;
use bytes::Bytes;
use serde_json::{json, Value};
use slab::Slab;
use std::collections::HashMap;
use uuid::Uuid;

// One constructor per kind of answer; the operations use these and never build a `Reply`.

/// A JSON answer rendered the way Channelstream renders it (`json.dumps(v, indent=4)`).
pub(crate) fn json_reply(status: u16, v: &Value) -> Reply {
    Reply {
        status,
        kind: ContentKind::Json,
        body: Bytes::from(pyjson::to_string_pretty(v)),
    }
}

/// 200 with a JSON body: the answer of every operation that succeeds.
fn ok(v: &Value) -> Reply {
    json_reply(200, v)
}

/// 422 in marshmallow's shape for one field with one message: `{"field": ["message"]}`.
fn invalid(field: &str, message: &str) -> Reply {
    json_reply(422, &json!({ field: [message] }))
}

/// 500 `text/plain`, the page of a crashed view.
pub(crate) fn internal_error() -> Reply {
    Reply {
        status: 500,
        kind: ContentKind::Text,
        body: Bytes::from_static(b"Internal Server Error"),
    }
}

/// A validation failure: 422 with marshmallow's error object, or the 500 of a crash.
pub(crate) fn schema_error(e: SchemaError) -> Reply {
    match e {
        SchemaError::Invalid(v) => json_reply(422, &v),
        SchemaError::Crash => internal_error(),
    }
}

/// 401 with Pyramid's `HTTPUnauthorized` page in the format the request's `Accept` chose, as
/// `/listen` sends it for an unknown `conn_id`.
fn unauthorized(page: PageFormat) -> Reply {
    let (_, body) = pages::render(401, pages::UNAUTHORIZED, "", page);
    Reply {
        status: 401,
        kind: match page {
            PageFormat::Html => ContentKind::Html,
            PageFormat::Json => ContentKind::Json,
            PageFormat::Plain => ContentKind::Plain,
        },
        body: Bytes::from(body),
    }
}

/// A finished (or superseded) poll's answer: 200, `text/html`, the collected items.
pub(crate) fn poll_reply(p: &PendingPoll) -> Reply {
    Reply {
        status: 200,
        kind: ContentKind::Html,
        body: poll_body(&p.items, p.callback.as_deref()),
    }
}

/// The connection record `conn_id` names, with its slot. It takes the two fields rather than
/// the model, so that the caller may still use the model's other fields (timers, users)
/// while it holds the record.
fn conn_by_id<'a>(
    by_id: &HashMap<Uuid, ConnSlot>,
    conns: &'a mut Slab<ConnRecord>,
    conn_id: &Uuid,
) -> Option<(ConnSlot, &'a mut ConnRecord)> {
    let slot = *by_id.get(conn_id)?;
    conns.get_mut(slot.0).map(|conn| (slot, conn))
}

impl Model {
    fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// A time on the model's line for `now` (also starts the GC grids on first use, and
    /// keeps the connection GC grid current: see `Timers::catch_up_gc_grid`).
    pub(crate) fn clock_at(&mut self, now: Now) -> MonoTime {
        let now_t = self.clock.at(now.mono);
        if self.timers.gc_next.is_none() {
            self.timers.gc_next = Some(now_t.plus(super::clock::GC_EVERY));
            self.timers.user_gc_next = Some(now_t.plus(super::clock::USER_GC_EVERY));
        }
        self.timers.catch_up_gc_grid(now_t);
        now_t
    }
}
