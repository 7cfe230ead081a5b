//! Pusher as a dialect of the reactor: the websocket protocol on each socket's own shard,
//! channel membership and fan-out on each channel's owner shard.
//!
//! Why this split: a socket's events (ping, subscribe) are answered where the socket lives,
//! with no hop; channel state lives only on the owner (`channels::owner`), so a publish is
//! one message to one shard, which delivers one encoded frame to all subscribers with one
//! `Outbox::deliver` (one refcount bump per subscriber, one message per other shard). The
//! owner, not the socket's shard, sends `subscription_succeeded`, so a client that saw it is
//! already in the table for every later publish (inbox order is preserved).

use super::activity::Activity;
use super::api::{self, ApiAction, Publish};
use super::app_metrics::{AppCounter, AppMetrics};
use super::apps::{self, AppIdx, Apps, Quotas};
use super::cache::Cache;
use super::channels::{self, Kind, Registry};
use super::client_events::{self, Rate};
use super::metrics::{self, Counter, Stats};
use super::presence::{self, Join, Member, Presence};
use super::protocol::{self, ClientMsg};
use super::query::{self, Gathers, Part, Query};
use super::sign;
use super::socket_id;
use super::users::{self, SignedIn, UserMsg};
use super::webhooks::{Hub, Webhooks};
use crate::config::Config;
use crate::dialect::{
    CounterDef, Dialect, Outbox, Request, RequestAction, Response, WsMessage, WsRole,
};
use crate::ids::SockRef;
use crate::proto::handshake;
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use std::collections::HashMap;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Instant;

/// What Pusher instances send each other (each boxed: an inbox slot holds 40 bytes).
#[derive(Debug)]
pub enum PusherMsg {
    /// Add a socket to a channel this shard owns, then tell it `subscription_succeeded`.
    Subscribe(Box<ChannelOp>),
    /// Remove a socket from a channel this shard owns.
    Unsubscribe(Box<ChannelOp>),
    /// Deliver an event to a channel this shard owns.
    Publish(Box<Publish>),
    /// Deliver a client event to a channel this shard owns, except to its sender.
    ClientEvent(Box<ClientEventOp>),
    /// An HTTP API query about the channels this shard owns (`query.rs`).
    Query(Box<Query>),
    /// A shard's answer to a query this shard gathers.
    Part(Box<Part>),
    /// Sign-in, sign-out, watchlists and terminations for a user this shard owns (`users`).
    User(Box<UserMsg>),
}

impl query::Carrier for PusherMsg {
    fn query(q: Query) -> Self {
        PusherMsg::Query(Box::new(q))
    }
    fn part(p: Part) -> Self {
        PusherMsg::Part(Box::new(p))
    }
}

/// A client event on its way to the channel's owner.
#[derive(Debug)]
pub struct ClientEventOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The sender (not delivered to; its presence `user_id` is added).
    pub sock: SockRef,
    /// The event name.
    pub event: Box<str>,
    /// The payload string.
    pub data: Box<str>,
}

/// A socket joining or leaving a channel.
#[derive(Debug)]
pub struct ChannelOp {
    /// The app.
    pub app: AppIdx,
    /// The channel.
    pub channel: Box<str>,
    /// The socket.
    pub sock: SockRef,
    /// On a presence subscribe: the member its `channel_data` names.
    pub member: Option<Member>,
}

/// A Pusher websocket's state.
#[derive(Debug)]
pub struct PusherSocket {
    app: AppIdx,
    /// A close code to refuse the socket with at open (unknown app, bad protocol).
    refuse: Option<NonZeroU16>,
    /// Its client events in the current second.
    rate: Rate,
    /// The channels it is subscribed to (unsubscribed at its owners when it closes).
    channels: Vec<Box<str>>,
    /// Counted as open (quota, metrics): set by `on_ws_open`, so a socket reaped before it
    /// opened is not uncounted.
    opened: bool,
}

/// The Pusher dialect, one per shard.
pub struct Pusher {
    apps: Apps,
    shards: usize,
    registry: Registry,
    presence: Presence,
    cache: Cache,
    max_channels: usize,
    /// What client event rate windows count seconds from.
    epoch: Instant,
    gathers: Gathers,
    stats: Stats,
    quotas: Quotas,
    app_metrics: Arc<AppMetrics>,
    /// The users this shard owns (`users`).
    users: users::Registry,
    /// This shard's signed-in sockets (`signin`).
    signed: HashMap<SockRef, SignedIn>,
    /// This shard's sockets' last messages (`activity`).
    activity: Activity,
    /// Announced as `activity_timeout`, in seconds.
    activity_secs: u64,
    webhooks: Webhooks,
    /// This node's base in socket ids (`socket_id`: the process's, or the cluster node's).
    node_tag: u32,
    /// Cluster mode's state (`cluster.rs`); `None`: a single node.
    cluster: Option<cluster::Clustered>,
}

#[path = "signin.rs"]
mod signin;

#[path = "cluster.rs"]
mod cluster;

#[path = "cluster_presence.rs"]
mod cluster_presence;

#[path = "cluster_cache.rs"]
mod cluster_cache;
#[path = "cluster_occupancy.rs"]
mod cluster_occupancy;
#[path = "cluster_query.rs"]
mod cluster_query;
#[path = "cluster_users.rs"]
mod cluster_users;

impl Pusher {
    /// The instance for one of `shards` shards, counting connections on its own.
    pub fn new(cfg: &Config, shards: usize) -> Self {
        let apps = Apps::from_config(cfg);
        let metrics = Arc::new(AppMetrics::new(&apps, shards));
        Pusher::sharing(cfg, shards, Quotas::new(apps.len()), metrics)
    }

    /// The instance for one of `shards` shards, counting each app's connections in `quotas`
    /// and its per-app metrics in `app_metrics` (both the same for every shard).
    pub fn sharing(
        cfg: &Config,
        shards: usize,
        quotas: Quotas,
        app_metrics: Arc<AppMetrics>,
    ) -> Self {
        Pusher {
            quotas,
            app_metrics,
            apps: Apps::from_config(cfg),
            shards,
            registry: Registry::default(),
            presence: Presence::default(),
            cache: Cache::default(),
            max_channels: cfg.limits.max_channels_per_connection,
            epoch: Instant::now(),
            gathers: Gathers::default(),
            stats: Stats::default(),
            users: users::Registry::default(),
            signed: HashMap::new(),
            activity: Activity::new(
                cfg.pusher_activity_timeout,
                cfg.pusher_pong_timeout,
                Instant::now(),
            ),
            activity_secs: cfg.pusher_activity_timeout.as_secs(),
            webhooks: Webhooks::default(),
            node_tag: socket_id::process_base(),
            cluster: None,
        }
    }

    /// The same instance, raising its apps' webhooks through `hub` (shared by every shard).
    pub fn with_webhooks(mut self, hub: Option<Arc<Hub>>) -> Self {
        self.webhooks = Webhooks::new(hub);
        self
    }

    /// Run `msg` on the shard that owns its channel: inline if that is this one.
    fn route(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app: AppIdx,
        channel: &str,
        msg: PusherMsg,
    ) -> Result<(), ()> {
        let owner = channels::owner(app, channel, self.shards);
        if owner == out.shard() {
            self.on_message(out, msg);
            Ok(())
        } else {
            out.send(owner, msg).map_err(drop)
        }
    }

    fn handle_upgrade(&self, req: &Request<'_>) -> RequestAction<PusherSocket> {
        let accept = match handshake::validate(req.head, req.buf) {
            Ok(a) => a,
            Err(e) => {
                let mut r = Response::new(e.status(), "text/plain", Bytes::from(e.to_string()));
                r.close = true;
                return RequestAction::Respond(r);
            }
        };
        let path = String::from_utf8_lossy(req.path()).into_owned();
        let key = path.strip_prefix("/app/").unwrap_or("");
        let found = self.apps.by_key(key);
        let app = found.map(|(i, _)| i);
        let disabled = found.is_some_and(|(_, a)| !a.enabled);
        let refuse = match app {
            None => Some(protocol::CODE_NO_APP),
            _ if disabled => Some(apps::CODE_APP_DISABLED),
            _ => protocol::protocol_refusal(req.query_param("protocol").as_deref()),
        }
        .and_then(NonZeroU16::new);
        RequestAction::Upgrade {
            accept,
            role: Some(WsRole::Dialect(PusherSocket {
                app: app.unwrap_or(0),
                refuse,
                rate: Rate::default(),
                channels: Vec::new(),
                opened: false,
            })),
        }
    }

    fn subscribe(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        ws: &mut PusherSocket,
        channel: String,
        auth: Option<String>,
        channel_data: Option<String>,
    ) {
        let reply = |out: &mut dyn Outbox<PusherMsg>, f: Bytes| out.deliver(&f, &[sock]);
        let Some(app) = self.apps.get(ws.app) else {
            return;
        };
        let mut member = None;
        match channels::kind(&channel) {
            None => {
                let f = protocol::subscription_error(
                    &channel,
                    "InvalidChannel",
                    "Invalid channel name",
                    400,
                );
                return reply(out, f);
            }
            Some(Kind::Presence) => {
                let sid = socket_id::format(self.node_tag, sock);
                let data = channel_data.as_deref().unwrap_or("");
                let auth = auth.as_deref().unwrap_or("");
                if !sign::presence_auth_ok(app, &sid, &channel, data, auth) {
                    let f = protocol::subscription_error(
                        &channel,
                        "AuthError",
                        "Invalid signature",
                        401,
                    );
                    return reply(out, f);
                }
                match presence::parse_channel_data(data) {
                    Some(m) => member = Some(m),
                    None => {
                        let f = protocol::subscription_error(
                            &channel,
                            "InvalidChannelData",
                            "channel_data must be a JSON object with a user_id",
                            400,
                        );
                        return reply(out, f);
                    }
                }
            }
            Some(Kind::Private | Kind::Encrypted) => {
                let sid = socket_id::format(self.node_tag, sock);
                if !sign::channel_auth_ok(app, &sid, &channel, auth.as_deref().unwrap_or("")) {
                    let f = protocol::subscription_error(
                        &channel,
                        "AuthError",
                        "Invalid signature",
                        401,
                    );
                    return reply(out, f);
                }
            }
            Some(Kind::Public) => {}
            Some(Kind::User) if self.may_join_user_channel(sock, &channel) => {}
            Some(Kind::User) => {
                let f = protocol::subscription_error(
                    &channel,
                    "AuthError",
                    "Only the user signed in on this connection may subscribe",
                    protocol::CODE_UNAUTHORIZED,
                );
                return reply(out, f);
            }
        }
        let already = ws.channels.iter().any(|c| **c == *channel);
        if !already && ws.channels.len() >= self.max_channels {
            let f = protocol::error(
                protocol::CODE_TOO_MANY_CHANNELS,
                "Too many channels on this connection",
            );
            return reply(out, f);
        }
        let op = ChannelOp {
            app: ws.app,
            channel: channel.as_str().into(),
            sock,
            member,
        };
        if self
            .route(out, ws.app, &channel, PusherMsg::Subscribe(Box::new(op)))
            .is_err()
        {
            let f = protocol::error(protocol::CODE_OVER_CAPACITY, "Over capacity, try again");
            return reply(out, f);
        }
        if !already {
            ws.channels.push(channel.into());
        }
    }

    fn unsubscribe(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        app: AppIdx,
        channel: &str,
    ) {
        let op = ChannelOp {
            app,
            channel: channel.into(),
            sock,
            member: None,
        };
        if self
            .route(out, app, channel, PusherMsg::Unsubscribe(Box::new(op)))
            .is_err()
        {
            // The owner keeps a dead `SockRef`: deliveries to it are dropped by generation.
            tracing::warn!("pusher: owner inbox full, unsubscribe lost");
        }
    }

    /// A client event from `sock`: checked here, fanned out by the channel's owner.
    fn client_event(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        ws: &mut PusherSocket,
        ev: (String, String, String),
        now: Instant,
    ) {
        let (event, channel, data) = ev;
        if !self.apps.get(ws.app).is_some_and(|a| a.client_events) {
            let f = protocol::error(
                protocol::CODE_CLIENT_EVENT,
                "The app does not have client messaging enabled.",
            );
            return out.deliver(&f, &[sock]);
        }
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        if !ws.rate.allow(secs) {
            let f = protocol::error(
                protocol::CODE_RATE_LIMIT,
                "The rate limit for sending client events exceeded the quota.",
            );
            out.deliver(&f, &[sock]);
            return out.close(sock, CloseCode::from(protocol::CODE_RATE_LIMIT));
        }
        let subscribed = ws.channels.iter().any(|c| **c == *channel);
        if let Err(msg) = client_events::check(channels::kind(&channel), subscribed, &event, &data)
        {
            return out.deliver(&protocol::error(protocol::CODE_CLIENT_EVENT, msg), &[sock]);
        }
        let op = ClientEventOp {
            app: ws.app,
            channel: channel.as_str().into(),
            sock,
            event: event.into(),
            data: data.into(),
        };
        if self
            .route(out, ws.app, &channel, PusherMsg::ClientEvent(Box::new(op)))
            .is_err()
        {
            let f = protocol::error(protocol::CODE_OVER_CAPACITY, "Over capacity, try again");
            out.deliver(&f, &[sock]);
        }
    }

    /// On the owner: add a socket to a channel (in cluster mode once the node is subscribed
    /// to the channel's topic), answer it, tell the other members.
    fn owner_subscribe(&mut self, out: &mut dyn Outbox<PusherMsg>, op: ChannelOp) {
        if let Some(op) = self.cluster_hold(out, op) {
            self.owner_subscribe_now(out, op);
        }
    }

    fn owner_subscribe_now(&mut self, out: &mut dyn Outbox<PusherMsg>, op: ChannelOp) {
        let (app, channel, sock) = (op.app, &*op.channel, op.sock);
        let first = self.registry.subscribers(app, channel).is_empty();
        let mut added = None;
        if let Some(member) = op.member {
            let info = member.user_info.clone();
            let uid = member.user_id.clone();
            // The app's `max_presence_members`: one user more is refused with
            // `subscription_error` status 4100 (soketi's shape), as Pusher's member limit.
            let max = self.apps.get(app).map_or(0, |a| a.max_presence_members);
            let joined = self.presence.join(app, channel, sock, member, max);
            let local_added = matches!(joined, Join::Added);
            let at = (app, channel, sock);
            if !matches!(joined, Join::Full)
                && self.cluster_join(out, at, (&uid, &info), local_added, first)
            {
                return; // answered when Redis has counted the user over the nodes
            }
            match joined {
                Join::Full => {
                    let f = protocol::subscription_error(
                        channel,
                        "LimitReached",
                        "The maximum members amount has been reached",
                        4100,
                    );
                    return out.deliver(&f, &[sock]);
                }
                Join::Added => {
                    let f = protocol::member_added(channel, &uid, &info);
                    let subs = self.registry.subscribers(app, channel);
                    channels::deliver_except(out, &f, subs, Some(sock));
                    added = Some(uid);
                }
                Join::Again => {}
            }
            self.registry.subscribe(app, channel, sock);
            self.cluster_subs_changed(app, channel);
            let snap = self.presence.snapshot(app, channel);
            out.deliver(&protocol::presence_succeeded(channel, &snap), &[sock]);
        } else {
            self.registry.subscribe(app, channel, sock);
            self.cluster_subs_changed(app, channel);
            out.deliver(&protocol::subscription_succeeded(channel), &[sock]);
        }
        // Clustered, occupancy is decided over the nodes (`cluster_occupancy`).
        let first = first && self.cluster.is_none();
        self.webhooks
            .subscribed(app, channel, first, added.as_deref());
        self.send_cached(out, app, channel, sock);
    }

    /// On the owner: remove a socket from a channel; `member_removed` on its user's last.
    fn owner_unsubscribe(&mut self, out: &mut dyn Outbox<PusherMsg>, op: &ChannelOp) {
        let (app, channel, sock) = (op.app, &*op.channel, op.sock);
        let vacated = self.registry.unsubscribe(app, channel, sock);
        self.cluster_subs_changed(app, channel);
        let mut removed = None;
        if channels::kind(channel) == Some(Kind::Presence) {
            if let Some(uid) = self.presence.leave(app, channel, sock) {
                // Clustered: Redis decides if it was the user's last node (event and webhook).
                if !self.cluster_leave(out, app, channel, &uid) {
                    let f = protocol::member_removed(channel, &uid);
                    out.deliver(&f, self.registry.subscribers(app, channel));
                    removed = Some(uid);
                }
            }
        }
        let now = Instant::now();
        let local_vacated = vacated && self.cluster.is_none();
        self.webhooks
            .unsubscribed(app, channel, removed.as_deref(), local_vacated, now);
        self.cluster_left(out.shard(), op, vacated);
    }

    /// On the owner: a client event to every subscriber but its sender.
    fn owner_client_event(&mut self, out: &mut dyn Outbox<PusherMsg>, op: &ClientEventOp) {
        let (app, channel) = (op.app, &*op.channel);
        let subs = self.registry.subscribers(app, channel);
        if !subs.contains(&op.sock) {
            return;
        }
        let user = match channels::kind(channel) {
            Some(Kind::Presence) => self.presence.user_of(app, channel, op.sock),
            _ => None,
        };
        let f = protocol::client_event(&op.event, channel, &op.data, user);
        channels::deliver_except(out, &f, subs, Some(op.sock));
        self.cluster_client_event(app, channel, &f, op.sock);
        let ev = (&*op.event, &*op.data);
        let sid = socket_id::SocketId {
            node: self.node_tag,
            sock: op.sock,
        };
        self.webhooks.client_event(app, channel, ev, sid, user);
    }

    /// Count `n` deliveries out, in total and for the app.
    fn count_out(&mut self, out: &mut dyn Outbox<PusherMsg>, app: AppIdx, n: usize) {
        let n = n as u64;
        self.stats.add(out, Counter::MessagesOut, n);
        let c = AppCounter::MessagesOut;
        self.app_metrics.add(out.shard(), app, c, n);
    }

    /// The known app an HTTP API path names (`/apps/{id}/…`), for refusal counts.
    fn api_app(&self, req: &Request<'_>) -> Option<AppIdx> {
        let path = std::str::from_utf8(req.path()).ok()?;
        let id = path.strip_prefix("/apps/")?.split('/').next()?;
        self.apps.by_id(id).map(|(i, _)| i)
    }

    fn publish(&mut self, out: &mut dyn Outbox<PusherMsg>, p: &Publish) {
        if p.cache && channels::is_cache(&p.channel) {
            self.cache
                .put(p.app, &p.channel, p.frame.clone(), Instant::now());
        }
        let subs = self.registry.subscribers(p.app, &p.channel);
        let except = p.except.filter(|e| e.node == self.node_tag).map(|e| e.sock);
        let n = channels::deliver_except(out, &p.frame, subs, except);
        self.count_out(out, p.app, n);
    }
}

impl Dialect for Pusher {
    type Msg = PusherMsg;
    type Ws = PusherSocket;

    fn counters() -> Vec<CounterDef> {
        metrics::defs()
    }

    fn claims(&self, req: &Request<'_>) -> bool {
        let p = req.path();
        p.starts_with(b"/app/") || p.starts_with(b"/apps/") || api::is_sdk_terminate(p)
    }

    fn on_request(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        req: &Request<'_>,
    ) -> RequestAction<PusherSocket> {
        if req.path().starts_with(b"/app/") {
            return self.handle_upgrade(req);
        }
        let (ps, then) = match api::handle(&self.apps, req) {
            ApiAction::Respond(r) => {
                self.stats.api_status(out, r.status);
                if let Some(app) = self.api_app(req) {
                    self.app_metrics.api_status(out.shard(), app, r.status);
                }
                return RequestAction::Respond(r);
            }
            ApiAction::Publish(ps, r) => (ps, Ok(r)),
            ApiAction::Query(ps, ask) => (ps, Err(ask)),
            ApiAction::Terminate(app, user, r) => return self.terminate_user(out, app, &user, r),
        };
        let Ok(cached) = self.cluster_publish(out.shard(), &ps) else {
            return RequestAction::Respond(Response::busy());
        };
        for p in ps {
            let (app, channel) = (p.app, p.channel.clone());
            if self
                .route(out, app, &channel, PusherMsg::Publish(Box::new(p)))
                .is_err()
            {
                return RequestAction::Respond(Response::busy());
            }
        }
        match (then, cached) {
            (Ok(r), Some(id)) => self.ack_after(id, req.at, r),
            (Ok(r), None) => RequestAction::Respond(r),
            (Err(ask), _) => {
                let owned = query::Owned {
                    registry: &self.registry,
                    presence: Some(&self.presence),
                    cache: Some(&self.cache),
                };
                let global = self.cluster.is_some();
                let id = query::start(
                    &mut self.gathers,
                    owned,
                    out,
                    req.at,
                    &ask,
                    self.shards,
                    global,
                );
                if global && !self.cluster_query(out.shard(), id, &ask) {
                    // The link is down: this node's answer.
                    query::on_global(&mut self.gathers, out, id, None);
                }
                RequestAction::Park {
                    success_headers: &[],
                }
            }
        }
    }

    fn on_ws_open(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        ws: &mut PusherSocket,
    ) -> Result<(), CloseCode> {
        if let Some(code) = ws.refuse.map(NonZeroU16::get) {
            let msg = match code {
                protocol::CODE_NO_APP => "App key does not exist",
                apps::CODE_APP_DISABLED => "App is disabled",
                apps::CODE_OVER_QUOTA => "Over connection quota",
                c => protocol::protocol_refusal_message(c),
            };
            out.deliver(&protocol::error(code, msg), &[sock]);
            self.stats.add(out, Counter::RefusedSockets, 1);
            if code != protocol::CODE_NO_APP {
                self.app_metrics.refused_socket(out.shard(), ws.app, code);
            }
            return Err(CloseCode::from(code));
        }
        let max = self.apps.get(ws.app).map_or(0, |a| a.max_connections);
        if !self.quotas.try_open(ws.app, max) {
            ws.refuse = NonZeroU16::new(apps::CODE_OVER_QUOTA);
            return self.on_ws_open(out, sock, ws);
        }
        let sid = socket_id::format(self.node_tag, sock);
        let f = protocol::connection_established(&sid, self.activity_secs);
        out.deliver(&f, &[sock]);
        self.activity.open(sock, Instant::now());
        ws.opened = true;
        self.stats.add(out, Counter::Connections, 1);
        let c = AppCounter::Connections;
        self.app_metrics.add(out.shard(), ws.app, c, 1);
        Ok(())
    }

    fn on_ws_message(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        sock: SockRef,
        ws: &mut PusherSocket,
        msg: WsMessage<'_>,
        now: Instant,
    ) {
        self.activity.seen(sock, now);
        self.stats.add(out, Counter::MessagesIn, 1);
        let c = AppCounter::MessagesIn;
        self.app_metrics.add(out.shard(), ws.app, c, 1);
        let WsMessage::Text(text) = msg else {
            let f = protocol::error(
                protocol::CODE_BAD_MESSAGE,
                "Binary frames are not supported",
            );
            return out.deliver(&f, &[sock]);
        };
        match protocol::parse(text) {
            Err(e) => out.deliver(
                &protocol::error(protocol::CODE_BAD_MESSAGE, e.message()),
                &[sock],
            ),
            Ok(ClientMsg::Ping) => out.deliver(&protocol::pong(), &[sock]),
            Ok(ClientMsg::Subscribe {
                channel,
                auth,
                channel_data,
            }) => self.subscribe(out, sock, ws, channel, auth, channel_data),
            Ok(ClientMsg::Unsubscribe { channel }) => {
                if let Some(i) = ws.channels.iter().position(|c| **c == *channel) {
                    ws.channels.swap_remove(i);
                    self.unsubscribe(out, sock, ws.app, &channel);
                }
            }
            Ok(ClientMsg::ClientEvent {
                event,
                channel,
                data,
            }) => self.client_event(out, sock, ws, (event, channel, data), now),
            Ok(ClientMsg::Signin { auth, user_data }) => {
                self.signin(out, sock, ws.app, &auth, &user_data)
            }
            Ok(ClientMsg::Other(_)) => {}
        }
    }

    fn on_ws_closed(&mut self, out: &mut dyn Outbox<PusherMsg>, sock: SockRef, ws: PusherSocket) {
        if ws.opened {
            self.stats.sub(out, Counter::Connections, 1);
            self.quotas.close(ws.app);
            let c = AppCounter::Connections;
            self.app_metrics.dec(out.shard(), ws.app, c);
        }
        for c in &ws.channels {
            self.unsubscribe(out, sock, ws.app, c);
        }
        self.user_socket_closed(out, sock, ws.app);
    }

    fn on_message(&mut self, out: &mut dyn Outbox<PusherMsg>, msg: PusherMsg) {
        match msg {
            PusherMsg::Subscribe(op) => self.owner_subscribe(out, *op),
            PusherMsg::Unsubscribe(op) => self.owner_unsubscribe(out, &op),
            PusherMsg::Publish(p) => self.publish(out, &p),
            PusherMsg::ClientEvent(op) => self.owner_client_event(out, &op),
            PusherMsg::Query(q) => {
                let owned = query::Owned {
                    registry: &self.registry,
                    presence: Some(&self.presence),
                    cache: Some(&self.cache),
                };
                query::on_query(owned, out, *q)
            }
            PusherMsg::Part(p) => query::on_part(&mut self.gathers, out, *p),
            PusherMsg::User(m) => self.user_msg(out, *m),
        }
        let n = u64::try_from(self.registry.len()).unwrap_or(u64::MAX);
        self.stats.set(out, Counter::Channels, n);
    }

    fn on_cluster(&mut self, out: &mut dyn Outbox<PusherMsg>, msg: &crate::cluster::Incoming) {
        self.cluster_incoming(out, msg);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let (g, w) = (self.gathers.next_deadline(), self.webhooks.next_deadline());
        let a = self.activity.next_deadline();
        let c = self
            .cluster_deadline()
            .into_iter()
            .chain(self.cluster_subs_due());
        g.into_iter().chain(w).chain(a).chain(c).min()
    }

    fn on_timer(&mut self, out: &mut dyn Outbox<PusherMsg>, now: Instant) {
        query::on_timer(&mut self.gathers, out, now);
        self.activity_tick(out, now);
        self.webhooks.on_timer(now);
        self.cluster_tick(out, now);
        self.cluster_subs_flush(out.shard());
    }

    fn on_shutdown(&mut self, out: &mut dyn Outbox<PusherMsg>) {
        query::on_shutdown(&mut self.gathers, out);
        self.cluster_shutdown(out);
        self.webhooks.on_shutdown();
    }

    /// 4200 (Pusher: "generic reconnect immediately"; soketi's "server closing"), so pusher-js
    /// reconnects at once (to the next process on the port) instead of backing off.
    fn shutdown_close(&self, _ws: &PusherSocket) -> CloseCode {
        CloseCode::from(protocol::CODE_RECONNECT)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_fits_an_inbox_slot() {
        let n = std::mem::size_of::<super::PusherMsg>();
        assert!(
            n <= crate::shard::inbox::MAX_DIALECT_MSG,
            "PusherMsg is {n} bytes"
        );
    }

    #[test]
    fn socket_state_is_small() {
        // 33 bytes of fields (app, refuse code, rate window, channel list, opened) pad to 40.
        assert!(std::mem::size_of::<super::PusherSocket>() <= 40);
    }
}
