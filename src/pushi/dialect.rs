//! Pushi as a dialect of the reactor, on the Pusher core: the socket side here (each
//! socket's own shard checks signatures, subscriptions and eligibility, and keeps the socket's
//! channel list), the channel side on each channel's owner shard (`owner.rs`, reusing Pusher's
//! `channels::{owner, Registry}` and `presence::Presence`), the REST API in `rest.rs`, and the
//! store's answers coming back as [`PushiMsg::Stored`] (`answers.rs`).
//!
//! Why the socket list lives in the dialect (`socks`), not in the per-socket state: a
//! `personal-` subscription completes when the store answers (its aliases come from stored
//! subscriptions), in `on_message`, where the connection's own state is not lent.

use super::protocol::{self, ClientMsg, CODE_BAD_MESSAGE, CODE_BUSY, CODE_REFUSED};
use super::session::Sessions;
use super::webs::Webs;
use crate::config::Config;
use crate::dialect::{
    CounterDef, Dialect, Outbox, Request, RequestAction, Response, WsMessage, WsRole,
};
use crate::ids::{ReqRef, SockRef};
use crate::proto::handshake;
use crate::proto::ws::CloseCode;
use crate::pusher::apps::{AppIdx, Apps};
use crate::pusher::channels::{self, Registry};
use crate::pusher::presence::Presence;
use crate::pusher::sign;
use crate::store::{Done, NewEvent, Op, Store};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::num::NonZeroU16;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Events a `personal-` subscription returns in its `events` (Pushi's default count).
pub const PERSONAL_EVENTS: u32 = 10;

/// What Pushi instances (and the store thread) send a shard; boxed to fit an inbox slot.
#[derive(Debug)]
pub enum PushiMsg {
    /// Add a socket to a channel this shard owns.
    Subscribe(Box<SubOp>),
    /// Remove a socket from a channel this shard owns.
    Unsubscribe(Box<UnsubOp>),
    /// Deliver a frame to a channel this shard owns.
    Publish(Box<PubOp>),
    /// The store's answer to a request this shard made.
    Stored(Box<Done<Token>>),
    /// A session ended (`/logout` on some shard).
    Revoke(Box<str>),
    /// `GET /sockets` gathers (`sockets.rs`).
    Sockets(Box<super::sockets::SocketsMsg>),
    /// Answer a `pusher:latest` with the channel's members (the owner holds them).
    Latest(Box<LatestOp>),
}

/// A `pusher:latest` whose stored events the store answered, on its way to the owner.
#[derive(Debug)]
pub struct LatestOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The asking socket.
    pub sock: SockRef,
    /// `alias` and `events` of the payload.
    pub answer: SubAnswer,
}

/// How a subscribe is answered.
#[derive(Debug)]
pub struct SubAnswer {
    /// `alias` of the payload.
    pub alias: Vec<String>,
    /// `events` of the payload (a JSON array).
    pub events: Value,
}

/// A socket joining a channel.
#[derive(Debug)]
pub struct SubOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The socket.
    pub sock: SockRef,
    /// Presence: the user id and the whole `channel_data`.
    pub member: Option<(Box<str>, Value)>,
    /// `None`: silent (alias and peer subscriptions); else `subscription_succeeded`.
    pub answer: Option<SubAnswer>,
}

/// A socket leaving a channel.
#[derive(Debug)]
pub struct UnsubOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The socket.
    pub sock: SockRef,
    /// Answer `unsubscription_succeeded` with this `alias` (`None`: silent).
    pub answer: Option<Vec<String>>,
}

/// A frame for a channel's subscribers.
#[derive(Debug)]
pub struct PubOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The encoded frame.
    pub frame: Bytes,
    /// Not delivered to this socket (the sender of an event without `echo`).
    pub except: Option<SockRef>,
    /// The socket that sent it (socket events), checked against a `peer-` channel's pair.
    pub from: Option<SockRef>,
}

/// What a store request continues with when its answer arrives.
#[derive(Debug)]
pub enum Token {
    /// Answer a parked REST request.
    Reply(ReqRef, super::rest::Then),
    /// Complete a `personal-` subscription.
    Personal {
        /// The socket.
        sock: SockRef,
        /// `personal-{user_id}`.
        channel: Box<str>,
    },
    /// Answer a `pusher:latest`.
    Latest {
        /// The socket.
        sock: SockRef,
        /// The channel.
        channel: Box<str>,
    },
    /// Nothing waits (a socket event's persist).
    Ignore,
}

/// Channel kinds, by prefix (Pushi's `state.subscribe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anything else: no auth.
    Public,
    /// `private-`.
    Private,
    /// `presence-`: members.
    Presence,
    /// `peer-{base}:{a}&{b}`.
    Peer,
    /// `personal-{user_id}`: an alias of the user's stored subscriptions.
    Personal,
}

/// The kind of a channel name.
pub fn kind(channel: &str) -> Kind {
    if channel.starts_with("private-") {
        Kind::Private
    } else if channel.starts_with("presence-") {
        Kind::Presence
    } else if channel.starts_with("peer-") {
        Kind::Peer
    } else if channel.starts_with("personal-") {
        Kind::Personal
    } else {
        Kind::Public
    }
}

/// A Pushi websocket's own state (the rest is in `Pushi::socks`).
#[derive(Debug)]
pub struct PushiSocket {
    app: AppIdx,
    refuse: Option<NonZeroU16>,
}

/// One channel a socket is in, as its shard knows it.
#[derive(Debug)]
pub(super) struct Sub {
    pub(super) name: Box<str>,
    /// Presence: the user id it joined as.
    pub(super) user: Option<Box<str>>,
    /// `personal-`: the channels it stands for (known once the store answered).
    pub(super) alias: Vec<Box<str>>,
}

/// A socket on this shard.
#[derive(Debug)]
pub(super) struct SockInfo {
    pub(super) app: AppIdx,
    pub(super) id: Box<str>,
    pub(super) subs: Vec<Sub>,
}

impl SockInfo {
    /// Whether the socket is in `channel` (directly or through a personal alias).
    pub(super) fn is_in(&self, channel: &str) -> bool {
        self.subs
            .iter()
            .any(|s| &*s.name == channel || s.alias.iter().any(|a| &**a == channel))
    }

    /// Pushi's `is_eligible`: a `peer-{base}:{a}&{b}` channel whose pair holds the user the
    /// socket joined `presence-{base}` as.
    pub(super) fn is_peer_of(&self, channel: &str) -> bool {
        let Some(rest) = channel.strip_prefix("peer-") else {
            return false;
        };
        let Some((base, pair)) = rest.rsplit_once(':') else {
            return false;
        };
        let presence = format!("presence-{base}");
        self.subs.iter().any(|s| {
            *s.name == *presence
                && s.user
                    .as_deref()
                    .is_some_and(|u| pair.split('&').any(|p| p == u))
        })
    }
}

/// The Pushi dialect, one per shard.
pub struct Pushi {
    pub(super) apps: Apps,
    pub(super) shards: usize,
    pub(super) registry: Registry,
    pub(super) presence: Presence,
    pub(super) socks: HashMap<SockRef, SockInfo>,
    pub(super) store: Option<Store<Token>>,
    pub(super) sessions: Sessions,
    pub(super) webs: Option<Webs>,
    pub(super) admin_secret: String,
    pub(super) gathers: super::sockets::Gathers,
    max_channels: usize,
}

/// Unix time in seconds, as a float.
pub fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether a path (without query) is a Pushi websocket path: any prefix, then a last segment
/// of 64 hex digits, but never Pusher's `/app/...`.
pub fn is_socket_path(path: &[u8]) -> bool {
    if path.starts_with(b"/app/") {
        return false;
    }
    let last = path.rsplit(|b| *b == b'/').next().unwrap_or(&[]);
    last.len() == 64 && last.iter().all(u8::is_ascii_hexdigit)
}

impl Pushi {
    /// The instance for one of `shards` shards; `store: None` serves nothing (Pushi mode off).
    pub fn new(
        cfg: &Config,
        shards: usize,
        store: Option<Store<Token>>,
        sessions: Sessions,
        webs: Option<Webs>,
    ) -> Self {
        Pushi {
            apps: Apps::from_config(cfg),
            shards,
            registry: Registry::default(),
            presence: Presence::default(),
            socks: HashMap::new(),
            store,
            sessions,
            webs,
            admin_secret: cfg.pushi.admin_secret.clone(),
            gathers: super::sockets::Gathers::default(),
            max_channels: cfg.limits.max_channels_per_connection,
        }
    }

    /// Run `msg` on the shard that owns `channel`: inline if that is this one.
    pub(super) fn route(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        app: AppIdx,
        channel: &str,
        msg: PushiMsg,
    ) -> Result<(), ()> {
        let owner = channels::owner(app, channel, self.shards);
        if owner == out.shard() {
            self.on_message(out, msg);
            Ok(())
        } else {
            out.send(owner, msg).map_err(drop)
        }
    }

    /// Queue a store request; `false` when the store is busy (or absent).
    pub(super) fn ask_store(&self, out: &dyn Outbox<PushiMsg>, token: Token, op: Op) -> bool {
        match &self.store {
            Some(s) => s.try_send(out.shard(), token, op).is_ok(),
            None => false,
        }
    }

    fn handle_upgrade(&self, req: &Request<'_>) -> RequestAction<PushiSocket> {
        let accept = match handshake::validate(req.head, req.buf) {
            Ok(a) => a,
            Err(e) => {
                let mut r = Response::new(e.status(), "text/plain", Bytes::from(e.to_string()));
                r.close = true;
                return RequestAction::Respond(r);
            }
        };
        let path = String::from_utf8_lossy(req.path()).into_owned();
        let key = path.rsplit('/').next().unwrap_or("");
        let app = self
            .apps
            .by_key(key)
            .filter(|(_, a)| a.enabled)
            .map(|(i, _)| i);
        RequestAction::Upgrade {
            accept,
            role: Some(WsRole::Dialect(PushiSocket {
                app: app.unwrap_or(0),
                refuse: match app {
                    Some(_) => None,
                    None => NonZeroU16::new(protocol::CODE_NO_APP),
                },
            })),
        }
    }

    pub(super) fn refuse(out: &mut dyn Outbox<PushiMsg>, sock: SockRef, code: u16, msg: &str) {
        out.deliver(&protocol::error(code, msg), &[sock]);
    }

    fn subscribe(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        channel: String,
        auth: Option<String>,
        channel_data: Option<Map<String, Value>>,
    ) {
        let Some(info) = self.socks.get(&sock) else {
            return;
        };
        let Some(app) = self.apps.get(info.app) else {
            return;
        };
        let k = kind(&channel);
        if k != Kind::Public {
            let ok = auth
                .as_deref()
                .is_some_and(|a| sign::channel_auth_ok(app, &info.id, &channel, a));
            if !ok {
                return Self::refuse(out, sock, CODE_REFUSED, "Invalid signature");
            }
        }
        // Without channel_data Pushi subscribes the socket but adds no member (members {});
        // channel_data without a user_id raises there (the socket is dropped): refused here.
        let member = if let (Kind::Presence, Some(cd)) = (k, channel_data) {
            let uid = match cd.get("user_id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    let m = "A presence channel needs channel_data with a user_id";
                    return Self::refuse(out, sock, CODE_REFUSED, m);
                }
            };
            Some((uid.into_boxed_str(), Value::Object(cd)))
        } else {
            None
        };
        let app_idx = info.app;
        let app_id = app.id.clone();
        if info.subs.iter().any(|s| *s.name == *channel) {
            // Pushi: a second subscribe unsubscribes first.
            self.leave(out, sock, &channel, false);
        }
        let Some(info) = self.socks.get_mut(&sock) else {
            return;
        };
        if info.subs.len() >= self.max_channels {
            return Self::refuse(
                out,
                sock,
                CODE_REFUSED,
                "Too many channels on this connection",
            );
        }
        if k == Kind::Personal {
            let user_id = channel.strip_prefix("personal-").unwrap_or("").to_owned();
            let token = Token::Personal {
                sock,
                channel: channel.as_str().into(),
            };
            let op = Op::Personal {
                app: app_id,
                user_id,
                count: PERSONAL_EVENTS,
            };
            if !self.ask_store(out, token, op) {
                return Self::refuse(out, sock, CODE_BUSY, "Store busy, try again");
            }
            if let Some(info) = self.socks.get_mut(&sock) {
                info.subs.push(Sub {
                    name: channel.into(),
                    user: None,
                    alias: Vec::new(),
                });
            }
            return;
        }
        info.subs.push(Sub {
            name: channel.as_str().into(),
            user: member.as_ref().map(|(u, _)| u.clone()),
            alias: Vec::new(),
        });
        let op = SubOp {
            app: app_idx,
            channel: channel.as_str().into(),
            sock,
            member,
            answer: Some(SubAnswer {
                alias: Vec::new(),
                events: Value::Array(Vec::new()),
            }),
        };
        if self
            .route(out, app_idx, &channel, PushiMsg::Subscribe(Box::new(op)))
            .is_err()
        {
            if let Some(info) = self.socks.get_mut(&sock) {
                info.subs.retain(|s| *s.name != *channel);
            }
            Self::refuse(out, sock, CODE_BUSY, "Over capacity, try again");
        }
    }

    /// Leave `channel` (and, for a personal channel, its aliases); `answer`: send
    /// `unsubscription_succeeded`.
    pub(super) fn leave(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        channel: &str,
        answer: bool,
    ) {
        let Some(info) = self.socks.get_mut(&sock) else {
            return;
        };
        let Some(i) = info.subs.iter().position(|s| &*s.name == channel) else {
            return;
        };
        let app = info.app;
        let sub = info.subs.swap_remove(i);
        let alias: Vec<String> = sub.alias.iter().map(|a| a.to_string()).collect();
        for a in &sub.alias {
            self.unsubscribe_at_owner(out, app, a, sock, None);
        }
        self.unsubscribe_at_owner(out, app, channel, sock, answer.then_some(alias));
    }

    pub(super) fn unsubscribe_at_owner(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        app: AppIdx,
        channel: &str,
        sock: SockRef,
        answer: Option<Vec<String>>,
    ) {
        let op = UnsubOp {
            app,
            channel: channel.into(),
            sock,
            answer,
        };
        if self
            .route(out, app, channel, PushiMsg::Unsubscribe(Box::new(op)))
            .is_err()
        {
            // The owner keeps a dead `SockRef`: deliveries to it are dropped by generation.
            tracing::warn!("pushi: owner inbox full, unsubscribe lost");
        }
    }

    fn latest(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        (channel, skip, count): (String, u32, u32),
    ) {
        let Some(info) = self.socks.get(&sock) else {
            return;
        };
        if !info.is_in(&channel) && !info.is_peer_of(&channel) {
            return Self::refuse(out, sock, CODE_REFUSED, "Not subscribed to that channel");
        }
        let Some(app) = self.apps.get(info.app) else {
            return;
        };
        let op = Op::Latest {
            app: app.id.clone(),
            channel: channel.clone(),
            skip,
            count,
        };
        let token = Token::Latest {
            sock,
            channel: channel.into(),
        };
        if !self.ask_store(out, token, op) {
            Self::refuse(out, sock, CODE_BUSY, "Store busy, try again");
        }
    }

    fn event(&mut self, out: &mut dyn Outbox<PushiMsg>, sock: SockRef, msg: ClientMsg) {
        let ClientMsg::Event {
            event,
            channel,
            data,
            echo,
            persist,
        } = msg
        else {
            return;
        };
        let Some(info) = self.socks.get(&sock) else {
            return;
        };
        if !info.is_in(&channel) && !info.is_peer_of(&channel) {
            return Self::refuse(out, sock, CODE_REFUSED, "Not subscribed to that channel");
        }
        let Some(app) = self.apps.get(info.app) else {
            return;
        };
        let (app_idx, app_id) = (info.app, app.id.clone());
        let mid = persist.then(|| uuid::Uuid::new_v4().to_string());
        let ts = now_f64();
        let m = protocol::event_message(&channel, &event, &data, mid.as_deref().map(|m| (m, ts)));
        let (text, frame) = protocol::message_frame(&m);
        // Room in the store now, the write after the delivery is routed (see `post_events`).
        let stored = match mid {
            None => None,
            Some(mid) => {
                let Some(Ok(room)) = self.store.as_ref().map(Store::reserve) else {
                    return Self::refuse(out, sock, CODE_BUSY, "Store busy, event not sent");
                };
                let ev = NewEvent {
                    mid,
                    app: app_id.clone(),
                    channel: channel.clone(),
                    owner: Some(info.id.to_string()),
                    timestamp: ts,
                    payload: text.clone(),
                };
                Some((room, ev))
            }
        };
        if let Some(w) = &self.webs {
            w.notify(&app_id, &channel, &text);
        }
        let op = PubOp {
            app: app_idx,
            channel: channel.as_str().into(),
            frame,
            except: (!echo).then_some(sock),
            from: Some(sock),
        };
        if self
            .route(out, app_idx, &channel, PushiMsg::Publish(Box::new(op)))
            .is_err()
        {
            // Refused, so not stored either (the reservation is given back).
            return Self::refuse(out, sock, CODE_BUSY, "Over capacity, try again");
        }
        if let Some((room, ev)) = stored {
            if room
                .send(out.shard(), Token::Ignore, Op::Insert(vec![ev]))
                .is_err()
            {
                tracing::warn!(channel = %channel, "pushi: store gone, event not persisted");
            }
        }
    }
}

impl Dialect for Pushi {
    type Msg = PushiMsg;
    type Ws = PushiSocket;

    fn counters() -> Vec<CounterDef> {
        Vec::new()
    }

    fn claims(&self, req: &Request<'_>) -> bool {
        self.store.is_some() && (is_socket_path(req.path()) || super::rest::is_route(req.path()))
    }

    fn on_request(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        req: &Request<'_>,
    ) -> RequestAction<PushiSocket> {
        if is_socket_path(req.path()) && req.header("upgrade").is_some() {
            return self.handle_upgrade(req);
        }
        self.rest(out, req)
    }

    fn on_ws_open(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        ws: &mut PushiSocket,
    ) -> Result<(), CloseCode> {
        if let Some(code) = ws.refuse.map(NonZeroU16::get) {
            Self::refuse(out, sock, code, "Invalid app key");
            return Err(CloseCode::from(code));
        }
        let id = uuid::Uuid::new_v4().to_string();
        out.deliver(&protocol::connection_established(&id), &[sock]);
        self.socks.insert(
            sock,
            SockInfo {
                app: ws.app,
                id: id.into(),
                subs: Vec::new(),
            },
        );
        Ok(())
    }

    fn on_ws_message(
        &mut self,
        out: &mut dyn Outbox<PushiMsg>,
        sock: SockRef,
        _ws: &mut PushiSocket,
        msg: WsMessage<'_>,
        _now: Instant,
    ) {
        let text = match msg {
            WsMessage::Text(t) => t,
            WsMessage::Binary(b) => b,
        };
        match protocol::parse(text) {
            Err(e) => Self::refuse(out, sock, CODE_BAD_MESSAGE, e.0),
            Ok(ClientMsg::Ping) => out.deliver(&protocol::pong(), &[sock]),
            Ok(ClientMsg::Subscribe {
                channel,
                auth,
                channel_data,
            }) => self.subscribe(out, sock, channel, auth, channel_data),
            Ok(ClientMsg::Unsubscribe { channel }) => {
                let known = self
                    .socks
                    .get(&sock)
                    .is_some_and(|i| i.subs.iter().any(|s| *s.name == *channel));
                if known {
                    self.leave(out, sock, &channel, true);
                } else {
                    Self::refuse(out, sock, CODE_REFUSED, "Not subscribed to that channel");
                }
            }
            Ok(ClientMsg::Latest {
                channel,
                skip,
                count,
            }) => self.latest(out, sock, (channel, skip, count)),
            Ok(m @ ClientMsg::Event { .. }) => self.event(out, sock, m),
        }
    }

    fn on_ws_closed(&mut self, out: &mut dyn Outbox<PushiMsg>, sock: SockRef, _ws: PushiSocket) {
        let Some(info) = self.socks.get(&sock) else {
            return;
        };
        let names: Vec<Box<str>> = info.subs.iter().map(|s| s.name.clone()).collect();
        for n in names {
            self.leave(out, sock, &n, false);
        }
        self.socks.remove(&sock);
    }

    fn on_message(&mut self, out: &mut dyn Outbox<PushiMsg>, msg: PushiMsg) {
        match msg {
            PushiMsg::Subscribe(op) => self.owner_subscribe(out, *op),
            PushiMsg::Unsubscribe(op) => self.owner_unsubscribe(out, *op),
            PushiMsg::Publish(op) => self.owner_publish(out, &op),
            PushiMsg::Stored(done) => self.on_stored(out, *done),
            PushiMsg::Revoke(sid) => self.sessions.revoke(&sid),
            PushiMsg::Sockets(m) => self.on_sockets(out, *m),
            PushiMsg::Latest(op) => self.owner_latest(out, *op),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.gathers.next_deadline()
    }

    fn on_timer(&mut self, out: &mut dyn Outbox<PushiMsg>, now: Instant) {
        self.sockets_timer(out, now);
    }

    fn on_shutdown(&mut self, out: &mut dyn Outbox<PushiMsg>) {
        self.sockets_timer(out, Instant::now() + super::sockets::TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_fits_an_inbox_slot() {
        let n = std::mem::size_of::<PushiMsg>();
        assert!(
            n <= crate::shard::inbox::MAX_DIALECT_MSG,
            "PushiMsg is {n} bytes"
        );
    }

    #[test]
    fn socket_paths_and_kinds() {
        let key = "a".repeat(64);
        assert!(is_socket_path(format!("/{key}").as_bytes()));
        assert!(is_socket_path(format!("/any/prefix/{key}").as_bytes()));
        assert!(!is_socket_path(format!("/app/{key}").as_bytes()));
        assert!(!is_socket_path(format!("/{}", "g".repeat(64)).as_bytes()));
        assert!(!is_socket_path(b"/ws"));
        assert_eq!(kind("personal-u1"), Kind::Personal);
        assert_eq!(kind("peer-room:a&b"), Kind::Peer);
        assert_eq!(kind("global"), Kind::Public);
    }

    #[test]
    fn peer_eligibility_follows_the_presence_user() {
        let info = SockInfo {
            app: 0,
            id: "x".into(),
            subs: vec![Sub {
                name: "presence-room".into(),
                user: Some("u1".into()),
                alias: Vec::new(),
            }],
        };
        assert!(info.is_peer_of("peer-room:u1&u2"));
        assert!(!info.is_peer_of("peer-room:u2&u3"));
        assert!(!info.is_peer_of("peer-other:u1&u2"));
        assert!(!info.is_in("peer-room:u1&u2"));
    }
}
