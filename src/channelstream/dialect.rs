//! Channelstream as a dialect of the reactor: requests go through the front (`front.rs`),
//! commands to the model, the model's effects out through the shard's `Outbox`.
//!
//! All Channelstream state has one owner, the model on `MODEL_SHARD` (ARCHITECTURE.md says
//! why). The instance on that shard holds the `Model` and runs commands inline; the others
//! forward each command through the model shard's inbox (`CsMsg::Command`) and park the
//! request; answers, deliveries and closes come back as the reactor's own effects, so nothing
//! here crosses threads except `CsMsg`.
//!
//! In cluster mode the model shard of one node owns the model for the whole cluster; the
//! model shards of the others forward to it (`cluster.rs`).

use super::cluster::{Change, CsCluster};
use super::front::{self, Front, FrontAction, WsTarget};
use super::model::{Command, ContentKind, Effects, HistOp, Model, Now, Reply, ReqRef, SockRef};
use super::pages;
use super::strict;
use crate::auth::Signer;
use crate::cluster::{Backplane, Incoming};
use crate::config::Config;
use crate::dialect::{
    CounterDef, Dialect, Outbox, Request, RequestAction, Response, WsMessage, WsRole,
};
use crate::ids::ShardId;
use crate::proto::ws::CloseCode;
use crate::store;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The shard that owns the Channelstream model.
pub const MODEL_SHARD: ShardId = ShardId(0);

/// Client websocket frames tell the model "active" at most this often per connection.
const ACTIVITY_REPORT_EVERY: Duration = Duration::from_secs(1);

/// What Channelstream instances send each other.
#[derive(Debug)]
pub enum CsMsg {
    /// A command for the model (to the model shard); its reply, if any, goes to `req`.
    /// Boxed: commands are large and rare next to deliveries.
    Command {
        /// The parked request the reply is for.
        req: Option<ReqRef>,
        /// The command.
        cmd: Box<Command>,
    },
}

/// A Channelstream websocket's state: its connection id and activity throttle.
#[derive(Clone, Copy, Debug)]
pub struct CsSocket {
    conn_id: Uuid,
    /// When the model was last told about client activity.
    last_activity_report: Option<Instant>,
}

/// The Channelstream dialect, one per shard.
pub struct Channelstream {
    cfg: Arc<Config>,
    signer: Signer,
    /// Only on `MODEL_SHARD`.
    model: Option<Model>,
    /// Cluster mode's backplane and this dialect's topic (`None`: a single node).
    cluster: Option<(Arc<Backplane>, Bytes)>,
    /// Cluster mode, model shard only: the model's owner node, forwarding, stand-ins.
    route: Option<CsCluster>,
    /// `--persist-history`: where history changes go (model shard only).
    history: Option<HistoryOut>,
}

/// The store's fire-and-forget handle and the history writes skipped on a full queue.
#[derive(Debug)]
struct HistoryOut {
    writer: store::Writer,
    skipped: u64,
}

impl Channelstream {
    /// The instance for `shard`.
    pub fn new(cfg: Arc<Config>, shard: ShardId) -> Self {
        let model = (shard == MODEL_SHARD).then(|| new_model(&cfg));
        Channelstream {
            signer: Signer::new(&cfg.secret),
            cfg,
            model,
            cluster: None,
            route: None,
            history: None,
        }
    }

    /// The same instance with `--persist-history`: on the model shard, `restored` (the
    /// store's `(channel, message)` rows, oldest first, read at start) goes into the model,
    /// and every history change is then sent to the store with `Writer::try_write` (never
    /// waiting; a full queue skips the write, counted and logged).
    pub fn with_history(
        mut self,
        writer: Option<store::Writer>,
        restored: Vec<(String, String)>,
    ) -> Self {
        let (Some(writer), Some(model)) = (writer, self.model.as_mut()) else {
            return self;
        };
        model.enable_history_log();
        let bad = restored
            .iter()
            .filter(|(ch, msg)| !model.restore_history(ch, msg))
            .count();
        if bad > 0 {
            tracing::warn!(
                bad,
                "store: stored Channelstream history rows that do not decode were skipped"
            );
        }
        self.history = Some(HistoryOut { writer, skipped: 0 });
        self
    }

    /// Send the model's history changes to the store.
    fn flush_history(&mut self) {
        let (Some(h), Some(model)) = (self.history.as_mut(), self.model.as_mut()) else {
            return;
        };
        for op in model.take_history_ops() {
            let op = match op {
                HistOp::Append {
                    channel,
                    uuid,
                    msg,
                    keep,
                } => store::Op::CsAppend {
                    channel,
                    uuid,
                    msg,
                    keep,
                },
                HistOp::Edit { channel, uuid, msg } => store::Op::CsEdit { channel, uuid, msg },
                HistOp::Delete { channel, uuid } => store::Op::CsDelete { channel, uuid },
            };
            if h.writer.try_write(op).is_err() {
                h.skipped += 1;
                if h.skipped % 1000 == 1 {
                    tracing::warn!(
                        skipped = h.skipped,
                        "store queue full: Channelstream history write skipped"
                    );
                }
            }
        }
    }

    /// The same instance in cluster mode: `/message` (POST, PATCH, DELETE) batches accepted
    /// here are published on the topic `herald:<db>:cs`, which every node's model shard
    /// subscribes to at start; a node that receives one runs the same validated batch (same
    /// uuids and timestamps) through its own model, which stores it (every node keeps the
    /// history) and delivers it to the subscribers it holds. Every other model command runs on
    /// the one node owning the model (`cluster.rs`), forwarded there by the others.
    pub fn with_cluster(mut self, bp: Option<Arc<Backplane>>, shard: ShardId) -> Self {
        if let Some(bp) = bp {
            let topic = Bytes::from(format!("{}cs", bp.prefix()));
            if shard == MODEL_SHARD {
                self.route = Some(CsCluster::new(bp.clone(), shard));
            }
            self.cluster = Some((bp, topic));
        }
        self
    }

    /// Publish a `/message` batch to the other nodes; `Err`: answer 503, do nothing.
    fn cluster_publish(&self, echo: &Bytes, cmd: &Command) -> Result<(), ()> {
        let Some((bp, topic)) = self.cluster.as_ref() else {
            return Ok(());
        };
        let kind = match cmd {
            Command::Messages(_) => b'm',
            Command::Edits(_) => b'e',
            Command::Deletes(_) => b'd',
            _ => return Ok(()),
        };
        let mut p = Vec::with_capacity(1 + echo.len());
        p.push(kind);
        p.extend_from_slice(echo);
        bp.publish(topic.clone(), Bytes::from(p)).map_err(drop)
    }
}

/// A batch another node accepted, validated again from its echo (which carries the uuids and
/// timestamps it was given there). `None` if it does not validate (dropped, logged).
fn remote_command(payload: &[u8]) -> Option<Command> {
    let (&kind, json) = payload.split_first()?;
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    use super::api::schema;
    match kind {
        b'm' => schema::messages(&v).ok().map(Command::Messages),
        b'e' => schema::edits(&v).ok().map(Command::Edits),
        b'd' => schema::deletes(&v).ok().map(Command::Deletes),
        _ => None,
    }
}

impl Channelstream {
    /// Hand a command to the model: inline on the model shard, else through its inbox.
    /// `Err` when the model's inbox is full (the caller answers 503 or gives up).
    fn send_to_model(
        &mut self,
        out: &mut dyn Outbox<CsMsg>,
        req: Option<ReqRef>,
        cmd: Command,
    ) -> Result<(), ()> {
        if self.model.is_some() {
            self.model_cmd(out, req, cmd);
            return Ok(());
        }
        let msg = CsMsg::Command {
            req,
            cmd: Box::new(cmd),
        };
        out.send(MODEL_SHARD, msg).map_err(drop)
    }

    /// On the model shard: run a command here, or through the cluster's owner.
    fn model_cmd(&mut self, out: &mut dyn Outbox<CsMsg>, req: Option<ReqRef>, cmd: Command) {
        let Some(model) = self.model.as_mut() else {
            return tracing::error!(
                shard = out.shard().0,
                "model command sent to a non-model shard"
            );
        };
        match self.route.as_mut() {
            Some(cl) => cl.dispatch(model, out, req, cmd),
            None => run_model(model, out, req, cmd),
        }
        self.flush_history();
    }
}

/// A model with the configured limits.
fn new_model(cfg: &Config) -> Model {
    let mut m = Model::new(chrono::Utc::now());
    m.set_max_channels_per_connection(cfg.limits.max_channels_per_connection);
    if cfg.strict {
        m.set_unknown_conn_close(strict::UNKNOWN_CONN_CLOSE);
    }
    m
}

fn run_model(model: &mut Model, out: &mut dyn Outbox<CsMsg>, req: Option<ReqRef>, cmd: Command) {
    model.handle(
        req,
        cmd,
        now_pair(Instant::now()),
        &mut ModelEffects { out },
    );
    out.set_counter(0, model.stats().channel_limit_refused);
}

fn now_pair(mono: Instant) -> Now {
    Now {
        mono,
        wall: chrono::Utc::now(),
    }
}

/// The model's effects, through the shard's outbox.
struct ModelEffects<'a, 'o> {
    out: &'a mut (dyn Outbox<CsMsg> + 'o),
}

impl Effects for ModelEffects<'_, '_> {
    fn reply(&mut self, req: ReqRef, reply: Reply) {
        self.out.reply(req, to_response(reply));
    }

    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        self.out.deliver(frame, to);
    }

    fn close(&mut self, sock: SockRef, code: CloseCode) {
        self.out.close(sock, code);
    }
}

/// A model reply on the wire, with WebOb's reason phrase. A 500 closes the connection, as
/// the real server's does.
pub(super) fn to_response(reply: Reply) -> Response {
    let mut r = Response::new(reply.status, reply.kind.content_type(), reply.body);
    r.close = reply.status == 500;
    finish(r)
}

/// The last touch on every answer of the dialect: WebOb's reason phrase (`422 Unprocessable
/// Entity`), and `Content-Type` first on HTML 200s (the long poll and the jinja2 pages set
/// their type before the CORS headers are added; JSON renderers type their answer last).
fn finish(mut r: Response) -> Response {
    r.type_first = r.status == 200 && r.content_type == ContentKind::Html.content_type();
    pages::with_reason(r)
}

impl Dialect for Channelstream {
    type Msg = CsMsg;
    type Ws = CsSocket;
    fn counters() -> Vec<CounterDef> {
        vec![CounterDef {
            name: "herald_channel_limit_refused_total",
            kind: "counter",
            help: "/connect and /subscribe answered 422 over --max-channels-per-connection",
        }]
    }

    fn on_request(
        &mut self,
        out: &mut dyn Outbox<CsMsg>,
        req: &Request<'_>,
    ) -> RequestAction<CsSocket> {
        let cors = front::cors_for(&self.cfg, req.head.header(req.buf, "origin"));
        let action = Front {
            cfg: &self.cfg,
            signer: &self.signer,
            cors,
        }
        .handle(req);
        let action = match action {
            FrontAction::Respond(r) => RequestAction::Respond(r),
            FrontAction::Model(cmd) => match self.send_to_model(out, Some(req.at), cmd) {
                Ok(()) => RequestAction::Park {
                    success_headers: cors,
                },
                Err(()) => RequestAction::Respond(Response::busy()),
            },
            // `/message`: Channelstream answers with the echo before delivering.
            FrontAction::RespondThenModel(r, cmd) => {
                if self.cluster_publish(&r.body, &cmd).is_err() {
                    RequestAction::Respond(Response::busy())
                } else {
                    match self.send_to_model(out, None, cmd) {
                        Ok(()) => RequestAction::Respond(r),
                        Err(()) => RequestAction::Respond(Response::busy()),
                    }
                }
            }
            FrontAction::Metrics => {
                RequestAction::Respond(Response::new(200, front::TEXT, out.metrics_text()))
            }
            FrontAction::Upgrade { accept, target } => RequestAction::Upgrade {
                accept,
                role: match target {
                    WsTarget::Echo => Some(WsRole::Echo),
                    WsTarget::Channelstream(Some(conn_id)) => Some(WsRole::Dialect(CsSocket {
                        conn_id,
                        last_activity_report: None,
                    })),
                    // Strict mode: opened with the nil id, which `on_ws_open` closes with 4404.
                    WsTarget::Channelstream(None) if self.cfg.strict => {
                        Some(WsRole::Dialect(CsSocket {
                            conn_id: Uuid::nil(),
                            last_activity_report: None,
                        }))
                    }
                    // As the real server: handshake done, then the TCP connection is dropped
                    // without a close frame.
                    WsTarget::Channelstream(None) => None,
                },
            },
        };
        match action {
            RequestAction::Respond(r) => RequestAction::Respond(finish(r)),
            other => other,
        }
    }

    fn on_ws_open(
        &mut self,
        out: &mut dyn Outbox<CsMsg>,
        sock: SockRef,
        ws: &mut CsSocket,
    ) -> Result<(), CloseCode> {
        // Strict mode: a missing or malformed `conn_id` (or the nil UUID, never a connection
        // in strict mode) gets a close frame instead of a dropped TCP connection.
        if self.cfg.strict && ws.conn_id.is_nil() {
            return Err(strict::UNKNOWN_CONN_CLOSE);
        }
        let cmd = Command::WsOpen {
            conn_id: ws.conn_id,
            sock,
        };
        self.send_to_model(out, None, cmd)
            .map_err(|()| CloseCode::Again)
    }

    fn on_ws_message(
        &mut self,
        out: &mut dyn Outbox<CsMsg>,
        sock: SockRef,
        ws: &mut CsSocket,
        _msg: WsMessage<'_>,
        now: Instant,
    ) {
        // Channelstream ignores what clients send; a frame only marks the connection active.
        let due = ws
            .last_activity_report
            .is_none_or(|t| now.duration_since(t) >= ACTIVITY_REPORT_EVERY);
        if due {
            ws.last_activity_report = Some(now);
            let cmd = Command::WsActivity {
                conn_id: ws.conn_id,
                sock,
            };
            // Activity reports are advisory: a full inbox just skips one.
            let _ = self.send_to_model(out, None, cmd);
        }
    }

    fn on_ws_closed(&mut self, out: &mut dyn Outbox<CsMsg>, sock: SockRef, ws: CsSocket) {
        if self.cfg.strict && ws.conn_id.is_nil() {
            return; // never reported as open
        }
        let cmd = Command::WsClosed {
            conn_id: ws.conn_id,
            sock,
        };
        if self.send_to_model(out, None, cmd).is_err() {
            // The model will still collect it: its GC closes idle connections.
            tracing::warn!("model inbox full: socket close not reported");
        }
    }

    fn on_message(&mut self, out: &mut dyn Outbox<CsMsg>, msg: CsMsg) {
        let CsMsg::Command { req, cmd } = msg;
        self.model_cmd(out, req, *cmd);
    }

    fn on_cluster(&mut self, out: &mut dyn Outbox<CsMsg>, msg: &Incoming) {
        let (Some(cl), Some(model)) = (self.route.as_mut(), self.model.as_mut()) else {
            return;
        };
        match msg {
            Incoming::Message { topic, payload }
                if *topic == cl.cs_topic && matches!(payload.first(), Some(b'Q' | b'A')) =>
            {
                cl.on_node_message(model, out, payload)
            }
            Incoming::Message { topic, payload } if *topic == cl.cs_topic => {
                match remote_command(payload) {
                    Some(cmd) => cl.run(model, out, None, cmd),
                    None => {
                        let c = &cl.bp().counters.malformed;
                        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            "backplane: a Channelstream batch from another node did not validate"
                        )
                    }
                }
            }
            Incoming::Message { topic, payload } if cl.is_own_topic(topic) => {
                cl.on_node_message(model, out, payload)
            }
            Incoming::Subscribed { topic, .. } if *topic == cl.cs_topic => {
                cl.ask_lease(out.shard(), Instant::now())
            }
            Incoming::Subscribed { topic, .. } if cl.is_own_topic(topic) => {
                cl.own_topic_ready(model, out)
            }
            Incoming::Reply { id, value } => {
                if cl.on_reply(model, out, *id, value) == Change::SteppedDown {
                    *model = new_model(&self.cfg);
                    if self.history.is_some() {
                        model.enable_history_log();
                    }
                }
            }
            _ => return,
        }
        self.flush_history();
    }

    fn next_deadline(&self) -> Option<Instant> {
        let model = self.model.as_ref().and_then(Model::next_deadline);
        match (model, self.route.as_ref().map(CsCluster::next_deadline)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, out: &mut dyn Outbox<CsMsg>, now: Instant) {
        let Some(model) = self.model.as_mut() else {
            return;
        };
        match self.route.as_mut() {
            None => model.tick(now_pair(now), &mut ModelEffects { out }),
            Some(cl) => {
                if model.next_deadline().is_some_and(|d| d <= now) {
                    cl.tick_model(model, out);
                }
                cl.on_timer(out, now);
            }
        }
    }

    fn on_shutdown(&mut self, out: &mut dyn Outbox<CsMsg>) {
        if let Some(model) = self.model.as_mut() {
            match self.route.as_mut() {
                None => model.finish_polls(&mut ModelEffects { out }),
                Some(cl) => cl.shutdown(model, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// An inbox slot stays at 64 B only while the dialect message fits.
    #[test]
    fn message_fits_an_inbox_slot() {
        let n = std::mem::size_of::<super::CsMsg>();
        assert!(
            n <= crate::shard::inbox::MAX_DIALECT_MSG,
            "CsMsg is {n} bytes"
        );
    }

    /// The per-socket state is paid by every websocket.
    #[test]
    fn socket_state_is_small() {
        assert!(std::mem::size_of::<super::CsSocket>() <= 32);
    }
}
