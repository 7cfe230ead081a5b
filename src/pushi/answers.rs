//! The store's answers, back on the shard that asked (`PushiMsg::Stored`): a parked REST
//! request is answered, a `personal-` subscription completes (its aliases are subscribed
//! silently on their owners, then the personal channel itself answers with `alias` and the
//! user's newest stored `events`), a `pusher:latest` is answered.

use super::dialect::{LatestOp, Pushi, PushiMsg, SubAnswer, SubOp, Token};
use super::protocol;
use super::rest::{self, Then};
use crate::dialect::Outbox;
use crate::ids::SockRef;
use crate::store::{Answer, Done};
use serde_json::json;

impl Pushi {
    /// A store answer arrived.
    pub(super) fn on_stored(&mut self, out: &mut dyn Outbox<PushiMsg>, done: Done<Token>) {
        match done.token {
            Token::Ignore => {
                if let Answer::Failed(e) = &done.answer {
                    tracing::warn!(error = %e, "pushi: a socket event was not stored");
                }
            }
            Token::Reply(req, then) => {
                if let (Some(w), Answer::Done(_)) = (&self.webs, &done.answer) {
                    match &then {
                        Then::WebAdded(app, url, event) => w.add(app, url, event),
                        Then::WebRemoved(app, url, event) => w.remove(app, url, event.as_deref()),
                        Then::Subscription(app, user, event, added) => {
                            w.alias(app, user, event, *added)
                        }
                        _ => {}
                    }
                }
                out.reply(req, rest::answer(&then, &done.answer));
            }
            Token::Latest { sock, channel } => self.latest_stored(out, sock, channel, &done.answer),
            Token::Personal { sock, channel } => self.personal(out, sock, &channel, done.answer),
        }
    }

    /// A `pusher:latest`'s events are read: the channel's owner answers it, with the members
    /// (as Pushi's `get_channel`) and, for a `personal-` channel, the socket's alias list.
    fn latest_stored(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        channel: Box<str>,
        answer: &Answer,
    ) {
        let Some(info) = self.socks.get(&sock) else {
            return; // the socket left meanwhile
        };
        let events = match answer {
            Answer::Events(es) => rest::events_json(es),
            _ => json!([]),
        };
        let alias = info
            .subs
            .iter()
            .find(|s| s.name == channel)
            .map(|s| s.alias.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        let app = info.app;
        let op = LatestOp {
            app,
            channel: channel.clone(),
            sock,
            answer: SubAnswer { alias, events },
        };
        if self
            .route(out, app, &channel, PushiMsg::Latest(Box::new(op)))
            .is_err()
        {
            Self::refuse(out, sock, protocol::CODE_BUSY, "Over capacity, try again");
        }
    }

    fn personal(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        channel: &str,
        answer: Answer,
    ) {
        let Answer::Personal { alias, events } = answer else {
            let f = protocol::error(
                protocol::CODE_BUSY,
                "Store error, personal channel not subscribed",
            );
            out.deliver(&f, &[sock]);
            if let Some(info) = self.socks.get_mut(&sock) {
                info.subs.retain(|s| &*s.name != channel);
            }
            return;
        };
        // The socket may have closed or left the channel while the store answered.
        let Some(info) = self.socks.get_mut(&sock) else {
            return;
        };
        let app = info.app;
        let Some(sub) = info.subs.iter_mut().find(|s| &*s.name == channel) else {
            return;
        };
        sub.alias = alias.iter().map(|a| a.as_str().into()).collect();
        for a in &alias {
            let op = SubOp {
                app,
                channel: a.as_str().into(),
                sock,
                member: None,
                answer: None,
            };
            if self
                .route(out, app, a, PushiMsg::Subscribe(Box::new(op)))
                .is_err()
            {
                tracing::warn!(channel = %a, "pushi: owner inbox full, alias not subscribed");
            }
        }
        let op = SubOp {
            app,
            channel: channel.into(),
            sock,
            member: None,
            answer: Some(SubAnswer {
                alias,
                events: rest::events_json(&events),
            }),
        };
        if self
            .route(out, app, channel, PushiMsg::Subscribe(Box::new(op)))
            .is_err()
        {
            let f = protocol::error(protocol::CODE_BUSY, "Over capacity, try again");
            out.deliver(&f, &[sock]);
        }
    }
}
