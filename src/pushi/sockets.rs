//! `GET /sockets`: every Pushi socket of the session's app with its channels, gathered from
//! all shards (each shard knows only its own sockets, `Pushi::socks`).
//!
//! Why a gather like Pusher's `query.rs`: shards share nothing, so the shard that got the
//! request parks it, asks every other shard ([`PushiMsg::Sockets`]), adds its own part, and
//! answers when the last part arrives; a shard whose inbox is full fails it at once (503),
//! and a gather still waiting after [`TIMEOUT`] is answered 503 from `on_timer`. (Pushi's own
//! `GET /sockets` uses Python 2's `iteritems` and fails on Python 3: the shape here is
//! Herald's, `{"<socket_id>": ["channel", …]}`.)

use super::dialect::{Pushi, PushiMsg};
use super::rest::json_response;
use crate::dialect::{Outbox, Response};
use crate::ids::{ReqRef, ShardId};
use crate::pusher::apps::AppIdx;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a gather waits for its parts.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A shard's sockets of one app: `(socket id, channels)`.
pub type Part = Vec<(Box<str>, Vec<Box<str>>)>;

/// A question or an answer between shards.
#[derive(Debug)]
pub enum SocketsMsg {
    /// "Send me your sockets of `app` for the request `req`."
    Ask {
        /// The parked request (its shard is where the part goes).
        req: ReqRef,
        /// The app.
        app: AppIdx,
    },
    /// One shard's part.
    Part {
        /// The parked request.
        req: ReqRef,
        /// The sockets.
        part: Part,
    },
}

/// Gathers waiting on this shard.
#[derive(Debug, Default)]
pub struct Gathers {
    open: HashMap<ReqRef, (usize, Map<String, Value>, Instant)>,
}

impl Gathers {
    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|(_, _, d)| *d).min()
    }
}

impl Pushi {
    fn part_of(&self, app: AppIdx) -> Part {
        self.socks
            .values()
            .filter(|s| s.app == app)
            .map(|s| {
                (
                    s.id.clone(),
                    s.subs.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect()
    }

    /// Start a gather for `req`; `Err` is the answer to give now.
    pub(super) fn start_sockets(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        req: ReqRef,
        app: AppIdx,
    ) -> Result<(), Response> {
        for s in 0..self.shards {
            let to = ShardId(u16::try_from(s).unwrap_or(0));
            if to == out.shard() {
                continue;
            }
            let ask = SocketsMsg::Ask { req, app };
            if out.send(to, PushiMsg::Sockets(Box::new(ask))).is_err() {
                return Err(Response::busy());
            }
        }
        let mut map = Map::new();
        add(&mut map, self.part_of(app));
        let waiting = self.shards.saturating_sub(1);
        if waiting == 0 {
            return Err(json_response(200, &Value::Object(map)));
        }
        self.gathers
            .open
            .insert(req, (waiting, map, Instant::now() + TIMEOUT));
        Ok(())
    }

    /// A gather message arrived.
    pub(super) fn on_sockets(&mut self, out: &mut dyn Outbox<PushiMsg>, msg: SocketsMsg) {
        match msg {
            SocketsMsg::Ask { req, app } => {
                let part = SocketsMsg::Part {
                    req,
                    part: self.part_of(app),
                };
                if out
                    .send(req.shard, PushiMsg::Sockets(Box::new(part)))
                    .is_err()
                {
                    tracing::warn!("pushi: /sockets part lost (inbox full)");
                }
            }
            SocketsMsg::Part { req, part } => {
                let Some((left, map, _)) = self.gathers.open.get_mut(&req) else {
                    return;
                };
                add(map, part);
                *left -= 1;
                if *left == 0 {
                    if let Some((_, map, _)) = self.gathers.open.remove(&req) {
                        out.reply(req, json_response(200, &Value::Object(map)));
                    }
                }
            }
        }
    }

    /// Answer 503 to gathers past their deadline.
    pub(super) fn sockets_timer(&mut self, out: &mut dyn Outbox<PushiMsg>, now: Instant) {
        let late: Vec<ReqRef> = self
            .gathers
            .open
            .iter()
            .filter(|(_, (_, _, d))| *d <= now)
            .map(|(r, _)| *r)
            .collect();
        for r in late {
            self.gathers.open.remove(&r);
            out.reply(r, Response::busy());
        }
    }
}

fn add(map: &mut Map<String, Value>, part: Part) {
    for (id, chans) in part {
        let chans = chans.iter().map(|c| Value::from(&**c)).collect();
        map.insert(id.to_string(), Value::Array(chans));
    }
}
