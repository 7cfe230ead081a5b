//! The dialect's side of user sign-in, server-to-user channels, `terminate_connections` and
//! the activity timeout: what runs on the socket's (or request's) shard, before anything goes
//! to a user's owner shard (`users`).
//!
//! Why a child module of `dialect` rather than code in `dialect.rs`: these are `Pusher`
//! methods (they need its app table, its map of signed-in sockets and its routing), but they
//! are one feature, and `dialect.rs` keeps only the hooks that call them.

use super::{Pusher, PusherMsg};
use crate::dialect::{Outbox, RequestAction, Response};
use crate::ids::SockRef;
use crate::proto::ws::CloseCode;
use crate::pusher::activity;
use crate::pusher::apps::AppIdx;
use crate::pusher::channels::USER_PREFIX;
use crate::pusher::protocol::{self, CODE_OVER_CAPACITY, CODE_UNAUTHORIZED};
use crate::pusher::users::{self, UserMsg};
use crate::pusher::{sign, socket_id, watchlist};
use bytes::Bytes;
use serde_json::json;
use std::time::Instant;

/// `pusher:signin_success`, echoing the signed `user_data` string (pusher-js parses it and
/// subscribes to `#server-to-user-<id>`).
pub fn signin_success(user_data: &str) -> Bytes {
    let v = json!({"event": "pusher:signin_success", "data": {"user_data": user_data}});
    crate::proto::ws::encode_text(v.to_string().as_bytes())
}

/// Why a sign-in was refused: `pusher:error` 4009, then the close code 4009.
fn refuse(out: &mut dyn Outbox<PusherMsg>, sock: SockRef, msg: &str) {
    out.deliver(&protocol::error(CODE_UNAUTHORIZED, msg), &[sock]);
    out.close(sock, CloseCode::from(CODE_UNAUTHORIZED));
}

impl Pusher {
    /// Run `msg` on the owner shard of `user`: inline if that is this one.
    pub(super) fn route_user(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        user: &str,
        msg: UserMsg,
    ) -> Result<(), ()> {
        let owner = users::owner(app, user, self.shards);
        if owner == out.shard() {
            self.user_msg(out, msg);
            Ok(())
        } else {
            out.send(owner, PusherMsg::User(Box::new(msg)))
                .map_err(drop)
        }
    }

    /// `pusher:signin` from `sock`: check the signature and `user_data`, register the socket
    /// with its user's owner, answer `signin_success`, register its watchlist.
    pub(super) fn signin(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        app: AppIdx,
        auth: &str,
        user_data: &str,
    ) {
        let Some(a) = self.apps.get(app) else {
            return;
        };
        if !sign::user_auth_ok(a, &socket_id::format(self.node_tag, sock), user_data, auth) {
            return refuse(out, sock, "Invalid signature");
        }
        let (signed, cut) = match users::parse_user_data(user_data) {
            Ok(parsed) => parsed,
            Err(msg) => return refuse(out, sock, msg),
        };
        if let Some(prev) = self.signed.get(&sock) {
            if prev.user == signed.user {
                // The same user again: answered, nothing registered twice.
                return out.deliver(&signin_success(user_data), &[sock]);
            }
            let f = protocol::error(
                CODE_UNAUTHORIZED,
                "This connection is already signed in as another user",
            );
            return out.deliver(&f, &[sock]);
        }
        if cut {
            let f = protocol::error(
                protocol::CODE_WATCHLIST_LIMIT,
                "Watchlist limit exceeded: only the first 100 user ids are watched",
            );
            out.deliver(&f, &[sock]);
        }
        let online = UserMsg::Online {
            app,
            user: signed.user.clone(),
            sock,
        };
        if self.route_user(out, app, &signed.user, online).is_err() {
            let f = protocol::error(CODE_OVER_CAPACITY, "Over capacity, try again");
            return out.deliver(&f, &[sock]);
        }
        out.deliver(&signin_success(user_data), &[sock]);
        for (owner, ids) in watchlist::by_owner(app, &signed.watchlist, self.shards) {
            let msg = UserMsg::Watch { app, sock, ids };
            let sent = if owner == out.shard() {
                self.user_msg(out, msg);
                Ok(())
            } else {
                out.send(owner, PusherMsg::User(Box::new(msg)))
            };
            if sent.is_err() {
                tracing::warn!("pusher: owner inbox full, part of a watchlist not registered");
            }
        }
        self.signed.insert(sock, signed);
    }

    /// Whether `sock` may subscribe to the server-to-user channel `channel`: only its own.
    pub(super) fn may_join_user_channel(&self, sock: SockRef, channel: &str) -> bool {
        let id = channel.strip_prefix(USER_PREFIX);
        self.signed.get(&sock).is_some_and(|s| id == Some(&*s.user))
    }

    /// A socket closed: if it was signed in, tell its user's owner and its watched users'.
    pub(super) fn user_socket_closed(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        app: AppIdx,
    ) {
        self.activity.close(sock);
        let Some(signed) = self.signed.remove(&sock) else {
            return;
        };
        let user = signed.user;
        let offline = UserMsg::Offline {
            app,
            user: user.clone(),
            sock,
        };
        let mut lost = self.route_user(out, app, &user, offline).is_err();
        for (owner, ids) in watchlist::by_owner(app, &signed.watchlist, self.shards) {
            let msg = UserMsg::Unwatch { app, sock, ids };
            if owner == out.shard() {
                self.user_msg(out, msg);
            } else {
                lost |= out.send(owner, PusherMsg::User(Box::new(msg))).is_err();
            }
        }
        if lost {
            // The owner keeps a dead `SockRef`: deliveries and closes to it are dropped by
            // generation, but the user may look online to its watchers.
            tracing::warn!("pusher: owner inbox full, sign-out lost");
        }
    }

    /// `POST /apps/{id}/users/{user}/terminate_connections`: the user's owner closes every
    /// signed-in socket of the user; answered at once (`{}`), 503 if that inbox is full.
    pub(super) fn terminate_user(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        user: &str,
        answer: Response,
    ) -> RequestAction<super::PusherSocket> {
        if self.cluster_terminate(app, user).is_err() {
            return RequestAction::Respond(Response::busy());
        }
        let msg = UserMsg::Terminate {
            app,
            user: user.into(),
        };
        match self.route_user(out, app, user, msg) {
            Ok(()) => RequestAction::Respond(answer),
            Err(()) => RequestAction::Respond(Response::busy()),
        }
    }

    /// The activity sweep (`on_timer`): ping silent sockets, close those that did not answer
    /// with `pusher:error` 4201 and the close code 4201.
    pub(super) fn activity_tick(&mut self, out: &mut dyn Outbox<PusherMsg>, now: Instant) {
        let due = self.activity.sweep(out.shard(), now);
        if !due.ping.is_empty() {
            out.deliver(&activity::ping(), &due.ping);
        }
        if !due.dead.is_empty() {
            let code = protocol::CODE_PONG_TIMEOUT;
            let f = protocol::error(code, "Pong reply not received in time");
            out.deliver(&f, &due.dead);
            for s in due.dead {
                out.close(s, CloseCode::from(code));
            }
        }
    }
}
