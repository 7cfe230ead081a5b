//! How a connection's messages leave: `GET /listen` long polls (attach, supersede, abort) and
//! the `/ws` websocket (open, close, client activity). The model only records which socket
//! or parked request is attached; the shard does the I/O.

use super::{conn_by_id, poll_reply, unauthorized, Model, Now};
use crate::channelstream::model::clock::POLL_FIRST_WAIT;
use crate::channelstream::model::deliver::touch_user;
use crate::channelstream::model::state::{mark_for_gc, LongPoll, PendingPoll, Sock, Timer};
use crate::channelstream::model::{Effects, ReqRef, SockRef};
use crate::channelstream::pages::PageFormat;
use uuid::Uuid;

impl Model {
    /// `GET /listen`: attach a fresh queue (answering a poll it supersedes with what that poll
    /// had), push catch-up, and park until the first item (5 s) and then a 0.25 s gap.
    pub fn listen(
        &mut self,
        req: Option<ReqRef>,
        (conn_id, page): (Uuid, PageFormat),
        callback: Option<String>,
        now: Now,
        fx: &mut dyn Effects,
    ) {
        let now_t = self.clock_at(now);
        let Some((slot, conn)) = conn_by_id(&self.by_id, &mut self.conns, &conn_id) else {
            if let Some(r) = req {
                fx.reply(r, unauthorized(page));
            }
            return;
        };
        conn.poll_seq = conn.poll_seq.wrapping_add(1);
        let deadline = now_t.plus(POLL_FIRST_WAIT);
        let poll = PendingPoll {
            req,
            // Python tests `if cb:`, so an empty callback means plain JSON.
            callback: callback.filter(|c| !c.is_empty()),
            items: Vec::new(),
            seq: conn.poll_seq,
            first: true,
            deadline,
            armed: deadline,
        };
        let old = std::mem::replace(&mut conn.lp, LongPoll::Polling(Box::new(poll)));
        self.timers.at(
            deadline,
            Timer::Poll {
                slot,
                gen: conn.gen,
                seq: conn.poll_seq,
            },
        );
        // The superseded poll is answered but not counted as activity: catch-up below must
        // use the `last_active` the connection had when this `/listen` arrived.
        if let LongPoll::Polling(p) = old {
            if let Some(r) = p.req {
                fx.reply(r, poll_reply(&p));
            }
        }
        self.deliver_catchup(slot, now, fx);
    }

    /// The HTTP client of a parked poll left. The poll keeps running to its end (it still
    /// consumes items and marks the connection active, as the Python greenlet does) but
    /// answers nobody. `req`, when given, must be the poll's own request.
    pub fn listen_aborted(&mut self, req: Option<ReqRef>, conn_id: Uuid) {
        let Some((_, conn)) = conn_by_id(&self.by_id, &mut self.conns, &conn_id) else {
            return;
        };
        if let LongPoll::Polling(p) = &mut conn.lp {
            if req.is_none() || p.req == req {
                p.req = None;
            }
        }
    }

    /// A websocket upgraded on `/ws?conn_id=`: unknown id → close 1000 (strict mode: 4404, see
    /// `Model::set_unknown_conn_close`); otherwise attach
    /// (replacing any previous socket, which is simply orphaned) and send catch-up.
    pub fn ws_open(&mut self, conn_id: Uuid, sock: SockRef, now: Now, fx: &mut dyn Effects) {
        self.clock_at(now);
        let Some((slot, conn)) = conn_by_id(&self.by_id, &mut self.conns, &conn_id) else {
            fx.close(sock, self.unknown_conn_close);
            return;
        };
        conn.sock = Sock::Open(sock);
        self.deliver_catchup(slot, now, fx);
    }

    /// A websocket of `conn_id` closed (`ChatApplicationSocket.closed`): the connection is
    /// marked for GC and stays in the model (user, channel lists, `/disconnect` → `true`)
    /// until the next 1 s pass collects it. As in 0.7.1 this holds for any socket opened on
    /// the id, also one a later socket replaced; only the attached one becomes `Closed`, so
    /// a send or heartbeat to a live replacement before the pass revives the connection.
    pub fn ws_closed(&mut self, conn_id: Uuid, sock: SockRef, now: Now) {
        self.clock_at(now);
        if let Some((slot, conn)) = conn_by_id(&self.by_id, &mut self.conns, &conn_id) {
            if conn.sock == Sock::Open(sock) {
                conn.sock = Sock::Closed;
            }
            mark_for_gc(slot, conn, &mut self.timers);
        }
    }

    /// A client frame arrived (`received_message`): connection and user are active.
    pub fn ws_activity(&mut self, conn_id: Uuid, now: Now) {
        let now_t = self.clock_at(now);
        if let Some((_, conn)) = conn_by_id(&self.by_id, &mut self.conns, &conn_id) {
            conn.last_active = now_t;
            touch_user(&mut self.users, conn, now_t);
        }
    }
}
