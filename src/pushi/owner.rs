//! The channel side of Pushi, on each channel's owner shard (`pusher::channels::owner`):
//! subscribers in Pusher's `Registry`, presence members in Pusher's `Presence` (a member's
//! "info" is Pushi's whole `channel_data`, so the members map of Pushi's payloads is the
//! presence snapshot's `hash`), and `peer-` channels made from presence members.
//!
//! Why here: as for Pusher, the owner alone knows who is in a channel, so it sends the
//! subscription answers (a client that saw `subscription_succeeded` is already in the table
//! for every later publish) and the member events.

use super::dialect::{LatestOp, PubOp, Pushi, PushiMsg, SubOp, UnsubOp};
use super::protocol;
use crate::dialect::Outbox;
use crate::ids::SockRef;
use crate::pusher::apps::AppIdx;
use crate::pusher::channels::deliver_except;
use crate::pusher::presence::{Join, Member};
use serde_json::{json, Value};

/// `peer-{base}:{a}&{b}` with the two user ids sorted (Pushi's `subscribe_peer`).
pub fn peer_channel(base: &str, u1: &str, u2: &str) -> String {
    let (a, b) = if u1 <= u2 { (u1, u2) } else { (u2, u1) };
    format!("peer-{base}:{a}&{b}")
}

fn wants_peer(channel_data: &Value) -> bool {
    channel_data.get("peer") == Some(&Value::Bool(true))
}

impl Pushi {
    fn members(&self, app: AppIdx, channel: &str) -> Value {
        if channel.starts_with("presence-") {
            self.presence
                .snapshot(app, channel)
                .get("hash")
                .cloned()
                .unwrap_or_else(|| json!({}))
        } else {
            json!({})
        }
    }

    /// The other member sockets of a presence channel with their user ids.
    fn others(&self, app: AppIdx, channel: &str, sock: SockRef) -> Vec<(SockRef, Box<str>)> {
        self.registry
            .subscribers(app, channel)
            .iter()
            .filter(|s| **s != sock)
            .filter_map(|s| Some((*s, self.presence.user_of(app, channel, *s)?.into())))
            .collect()
    }

    fn silent(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        app: AppIdx,
        channel: &str,
        sock: SockRef,
        join: bool,
    ) {
        let msg = if join {
            PushiMsg::Subscribe(Box::new(SubOp {
                app,
                channel: channel.into(),
                sock,
                member: None,
                answer: None,
            }))
        } else {
            PushiMsg::Unsubscribe(Box::new(UnsubOp {
                app,
                channel: channel.into(),
                sock,
                answer: None,
            }))
        };
        if self.route(out, app, channel, msg).is_err() {
            tracing::warn!(
                channel,
                "pushi: owner inbox full, peer subscription change lost"
            );
        }
    }

    /// Add a socket to a channel; tell the other members; answer it.
    pub(super) fn owner_subscribe(&mut self, out: &mut dyn Outbox<PushiMsg>, op: SubOp) {
        let (app, channel, sock) = (op.app, &*op.channel, op.sock);
        if let Some((uid, cd)) = op.member {
            let member = Member {
                user_id: uid.clone(),
                user_info: cd.clone(),
            };
            // The app's `max_presence_members` (as for Pusher); Pushi itself has no limit.
            let max = self.apps.get(app).map_or(0, |a| a.max_presence_members);
            match self.presence.join(app, channel, sock, member, max) {
                Join::Full => {
                    let f = protocol::error(protocol::CODE_REFUSED, "The channel is full");
                    return out.deliver(&f, &[sock]);
                }
                Join::Added => {
                    let f = protocol::member(true, channel, &cd);
                    let subs = self.registry.subscribers(app, channel);
                    deliver_except(out, &f, subs, Some(sock));
                }
                Join::Again => {}
            }
            if wants_peer(&cd) {
                let base = channel.strip_prefix("presence-").unwrap_or("").to_owned();
                for (other, ouid) in self.others(app, channel, sock) {
                    if *ouid == *uid {
                        continue;
                    }
                    let p = peer_channel(&base, &uid, &ouid);
                    self.silent(out, app, &p, sock, true);
                    self.silent(out, app, &p, other, true);
                }
            }
        }
        self.registry.subscribe(app, channel, sock);
        if let Some(a) = op.answer {
            let info =
                protocol::channel_info(channel, self.members(app, channel), &a.alias, a.events);
            let f = protocol::channel_answer("subscription_succeeded", channel, &info);
            out.deliver(&f, &[sock]);
        }
    }

    /// Remove a socket from a channel; `member_removed` on its user's last connection; its
    /// peer channels go with it.
    pub(super) fn owner_unsubscribe(&mut self, out: &mut dyn Outbox<PushiMsg>, op: UnsubOp) {
        let (app, channel, sock) = (op.app, &*op.channel, op.sock);
        self.registry.unsubscribe(app, channel, sock);
        if channel.starts_with("presence-") {
            let uid: Option<Box<str>> = self.presence.user_of(app, channel, sock).map(Into::into);
            if let Some(uid) = uid {
                let cd = self.presence.info_of(app, channel, &uid).cloned();
                let removed = self.presence.leave(app, channel, sock).is_some();
                let others = self.others(app, channel, sock);
                if removed {
                    let f = protocol::member(false, channel, &cd.clone().unwrap_or(Value::Null));
                    out.deliver(&f, self.registry.subscribers(app, channel));
                }
                if cd.as_ref().is_some_and(wants_peer) {
                    let base = channel.strip_prefix("presence-").unwrap_or("").to_owned();
                    for (other, ouid) in others {
                        if *ouid == *uid {
                            continue;
                        }
                        let p = peer_channel(&base, &uid, &ouid);
                        self.silent(out, app, &p, sock, false);
                        if removed {
                            self.silent(out, app, &p, other, false);
                        }
                    }
                }
            }
        }
        if let Some(alias) = op.answer {
            let info =
                protocol::channel_info(channel, self.members(app, channel), &alias, json!([]));
            let f = protocol::channel_answer("unsubscription_succeeded", channel, &info);
            out.deliver(&f, &[sock]);
        }
    }

    /// Answer a `pusher:latest` (`pusher_internal:latest`, the subscription payload's shape).
    pub(super) fn owner_latest(&mut self, out: &mut dyn Outbox<PushiMsg>, op: LatestOp) {
        let a = op.answer;
        let info = protocol::channel_info(
            &op.channel,
            self.members(op.app, &op.channel),
            &a.alias,
            a.events,
        );
        out.deliver(
            &protocol::channel_answer("latest", &op.channel, &info),
            &[op.sock],
        );
    }

    /// Deliver a frame to a channel's subscribers.
    pub(super) fn owner_publish(&mut self, out: &mut dyn Outbox<PushiMsg>, op: &PubOp) {
        let subs = self.registry.subscribers(op.app, &op.channel);
        if let Some(from) = op
            .from
            .filter(|f| op.channel.starts_with("peer-") && !subs.contains(f))
        {
            // The pair broke up (a member left the presence channel): Pushi refuses the sender
            // (it drops the socket); nothing is delivered.
            out.deliver(
                &protocol::error(protocol::CODE_REFUSED, "Not subscribed to that channel"),
                &[from],
            );
            return;
        }
        deliver_except(out, &op.frame, subs, op.except);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_names_sort_the_pair() {
        assert_eq!(super::peer_channel("room", "u2", "u1"), "peer-room:u1&u2");
        assert_eq!(super::peer_channel("room", "a", "b"), "peer-room:a&b");
    }
}
