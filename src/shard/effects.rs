//! Applying effects: the shard's connection bookkeeping for one turn, and the `Outbox` a
//! dialect acts through.
//!
//! Local targets are served directly (a delivery is a refcount bump and a queue push); remote
//! ones are grouped into one inbox message per target shard, carrying the same `Bytes`.
//! Effects that find an inbox full are kept in a per-target spill list and retried every turn,
//! in order: a reply, delivery or close is never dropped. A dialect's own messages are not
//! spilled: `send` gives them back and the dialect answers 503.

use super::inbox::ShardMsg;
use super::{date::DateCache, metrics::ShardStats, Shared};
use crate::conn::{Conn, Delivery, Next};
use crate::dialect::{InboxFull, Outbox, Response};
use crate::error::CloseReason;
use crate::ids::{Gen, LocalRef, ReqRef, ShardId, SockRef};
use crate::proto::deflate::{Codec, DeflateConfig};
use crate::proto::ws::CloseCode;
use crate::shard::frame::OutFrame;
use crate::tls::Stream;
use bytes::Bytes;
use slab::Slab;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A shard's connections and their bookkeeping for the turn (what to flush, requeue and reap),
/// split from the rest of the shard so handlers can borrow it alongside the dialect.
pub(super) struct ConnTable<W> {
    pub slab: Slab<Conn<Stream, W>>,
    pub next_gen: Gen,
    /// Connections with output to flush this turn.
    pub dirty: Vec<usize>,
    /// Connections to tear down after the batch.
    pub to_close: Vec<(usize, Gen, CloseReason)>,
    /// Connections to run again next turn (read budget, unparked pipelined requests).
    pub again: Vec<usize>,
    /// Per-target-shard scratch for grouping deliveries.
    pub batches: Vec<Vec<LocalRef>>,
    pub max_queued: usize,
    /// Connections whose first request head is still arriving (`Conn::handshake_pending`).
    pub pending_handshakes: usize,
    /// The request being handed to the dialect right now, and an answer it gave inline
    /// before the request was parked (`Shard::dispatch_request`).
    pub dispatching: Option<LocalRef>,
    pub early_reply: Option<Response>,
    pub stats: Arc<ShardStats>,
    pub shard_id: ShardId,
    /// permessage-deflate settings, and the shard's compressors and inflater.
    pub deflate: DeflateConfig,
    pub codec: Codec,
}

impl<W> ConnTable<W> {
    /// Schedule what a connection's handler returned.
    pub fn apply(&mut self, key: usize, next: Next) {
        match next {
            Next::Continue | Next::Flush => self.mark_dirty_if_needed(key),
            Next::Requeue => {
                self.again.push(key);
                self.mark_dirty_if_needed(key);
            }
            Next::Reap(reason) => {
                if let Some(c) = self.slab.get(key) {
                    self.to_close.push((key, c.gen, reason));
                }
            }
        }
    }

    /// Put the connection on this turn's flush list if it has output (once).
    pub fn mark_dirty_if_needed(&mut self, key: usize) {
        if let Some(c) = self.slab.get_mut(key) {
            if !c.dirty && c.needs_flush() {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// The live connection a reference was made for (`None` if its slot moved on).
    fn get(&mut self, r: LocalRef) -> Option<&mut Conn<Stream, W>> {
        self.slab.get_mut(r.slot.key()).filter(|c| c.gen == r.gen)
    }

    /// Push one frame to a local websocket under the slow-consumer cap: the compressed form
    /// for a socket that negotiated permessage-deflate (made here on first need), else plain.
    pub fn deliver_local(&mut self, r: LocalRef, frame: &OutFrame) {
        let max = self.max_queued;
        let Some(conn) = self.slab.get_mut(r.slot.key()).filter(|c| c.gen == r.gen) else {
            return;
        };
        let window = conn.deflate().and_then(|a| a.compress_window());
        let mut made = 0;
        let (bytes, compressed) = frame.for_window(window, &mut self.codec, &mut made);
        if made > 0 {
            self.stats.ws_deflated.fetch_add(made, Ordering::Relaxed);
        }
        let delivery = conn.deliver(bytes, max);
        if compressed && delivery == Delivery::Queued {
            self.stats
                .ws_deflated_deliveries
                .fetch_add(1, Ordering::Relaxed);
        }
        match delivery {
            Delivery::Skipped => return,
            Delivery::SlowConsumer => {
                self.stats
                    .closed_slow_consumer
                    .fetch_add(1, Ordering::Relaxed);
            }
            Delivery::Queued | Delivery::Failed => {}
        }
        self.mark_dirty_if_needed(r.slot.key());
    }

    /// Close a local websocket with `code`.
    pub fn close_local(&mut self, r: LocalRef, code: CloseCode) {
        if let Some(conn) = self.get(r) {
            conn.send_close(code);
            self.mark_dirty_if_needed(r.slot.key());
        }
    }

    /// Answer a request parked here.
    pub fn reply_local(&mut self, r: LocalRef, response: Response, date: &DateCache) {
        if self.dispatching == Some(r) {
            self.early_reply = Some(response);
            return;
        }
        if let Some(conn) = self.get(r) {
            let next = conn.on_reply(response, date.get(), Instant::now());
            self.apply(r.slot.key(), next);
        }
    }
}

/// The shard's links to the other shards: their inboxes and what waits to enter them.
pub(super) struct Links<M> {
    pub shared: Arc<Shared<M>>,
    /// Effects that found a full inbox, per target shard, in order.
    pub spill: Vec<VecDeque<ShardMsg<M>>>,
}

impl<M> Links<M> {
    /// Send an effect: straight into the inbox, or behind what already waits for it.
    fn send_effect(&mut self, stats: &ShardStats, to: ShardId, msg: ShardMsg<M>) {
        let (Some(spill), Some(inbox)) = (
            self.spill.get_mut(to.index()),
            self.shared.inboxes.get(to.index()),
        ) else {
            return;
        };
        if !spill.is_empty() {
            spill.push_back(msg);
            return;
        }
        if let Err(msg) = inbox.send(msg) {
            stats.inbox_full.fetch_add(1, Ordering::Relaxed);
            spill.push_back(msg);
        }
    }

    /// Move spilled effects into their inboxes while they take them.
    pub fn retry_spill(&mut self) {
        for (queue, inbox) in self.spill.iter_mut().zip(&self.shared.inboxes) {
            while let Some(msg) = queue.pop_front() {
                if let Err(msg) = inbox.send(msg) {
                    queue.push_front(msg);
                    break;
                }
            }
        }
    }

    /// Whether effects wait for a full inbox (the loop then polls without sleeping).
    pub fn has_spill(&self) -> bool {
        self.spill.iter().any(|s| !s.is_empty())
    }
}

/// What a dialect acts through on this shard.
pub(super) struct ShardOutbox<'a, W, M> {
    pub table: &'a mut ConnTable<W>,
    pub links: &'a mut Links<M>,
    pub date: &'a DateCache,
}

impl<W, M> Outbox<M> for ShardOutbox<'_, W, M> {
    fn shard(&self) -> ShardId {
        self.table.shard_id
    }

    fn reply(&mut self, req: ReqRef, response: Response) {
        if req.shard == self.table.shard_id {
            self.table.reply_local(req.local(), response, self.date);
        } else {
            let msg = ShardMsg::Reply {
                req,
                response: Box::new(response),
            };
            self.links.send_effect(&self.table.stats, req.shard, msg);
        }
    }

    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        let cfg = self.table.deflate;
        let frame = OutFrame::new(frame, cfg.enabled, cfg.min_bytes);
        let frame = &frame;
        let this_shard = self.table.shard_id;
        for s in to {
            if s.shard == this_shard {
                self.table.deliver_local(s.local(), frame);
            } else if let Some(b) = self.table.batches.get_mut(s.shard.index()) {
                b.push(s.local());
            }
        }
        for shard in 0..self.table.batches.len() {
            let Some(batch) = self.table.batches.get_mut(shard).filter(|b| !b.is_empty()) else {
                continue;
            };
            let to = std::mem::take(batch);
            let msg = ShardMsg::Deliver {
                frame: frame.clone(),
                to,
            };
            self.links
                .send_effect(&self.table.stats, ShardId(shard as u16), msg);
        }
    }

    fn close(&mut self, sock: SockRef, code: CloseCode) {
        if sock.shard == self.table.shard_id {
            self.table.close_local(sock.local(), code);
        } else {
            let msg = ShardMsg::Close {
                to: sock.local(),
                code,
            };
            self.links.send_effect(&self.table.stats, sock.shard, msg);
        }
    }

    fn send(&mut self, to: ShardId, msg: M) -> Result<(), InboxFull> {
        let Some(inbox) = self.links.shared.inboxes.get(to.index()) else {
            return Err(InboxFull);
        };
        // Behind spilled effects for the same shard the message would overtake them.
        if self
            .links
            .spill
            .get(to.index())
            .is_some_and(|s| !s.is_empty())
        {
            return Err(InboxFull);
        }
        inbox.send(ShardMsg::Dialect(msg)).map_err(|_| {
            self.table.stats.inbox_full.fetch_add(1, Ordering::Relaxed);
            InboxFull
        })
    }

    fn set_counter(&mut self, index: usize, value: u64) {
        if let Some(c) = self.table.stats.dialect.get(index) {
            c.store(value, Ordering::Relaxed);
        }
    }

    fn metrics_text(&self) -> String {
        self.links.shared.metrics_text()
    }
}
