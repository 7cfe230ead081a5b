//! The only door between shards: a bounded lock-free MPMC queue (crossbeam `ArrayQueue`) per
//! shard plus that shard's `mio::Waker`.
//!
//! Wake coalescing: a sender wakes the receiver only when it flips `armed` from false to true;
//! the receiver disarms before draining the whole queue, so one eventfd write covers any burst
//! of messages and no message is ever left behind (a push that races the drain either is seen
//! by it, or finds `armed` false and wakes again).
//!
//! Ordering: `ArrayQueue` is linearizable, so messages from one sender thread arrive in the
//! order they were sent. This is what keeps each channel's messages in order per subscriber.
//!
//! Full queue: `send` gives the message back. Callers apply the stated policy: a REST request
//! is answered 503 with `Retry-After`; the model shard keeps undeliverable effects in a local
//! spill list and retries every loop turn (never silent loss).

use crate::channelstream::model::{Command, Reply, ReqRef};
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A socket on the receiving shard, by slab slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalRef {
    pub slot: u32,
    pub gen: u32,
}

/// Everything that crosses shards. Only `Send` data: frames as `Bytes`, ids, parsed commands.
#[derive(Debug)]
pub enum ShardMsg {
    /// A command for the model (sent to the model shard). Boxed: commands are large and
    /// rare next to deliveries, and every inbox slot is sized for the largest variant.
    Model {
        req: Option<ReqRef>,
        cmd: Box<Command>,
    },
    /// The model's answer to a request parked on the receiving shard.
    Reply { req: ReqRef, reply: Reply },
    /// One encoded frame for several local sockets (one message per shard per publish).
    Deliver { frame: Bytes, to: Vec<LocalRef> },
    /// Close a local websocket with this code.
    Close { to: LocalRef, code: CloseCode },
    /// Stop accepting, close websockets with 1001, finish and exit.
    Shutdown,
}

/// The receiving end's shared half: queue, waker and counters.
pub struct Inbox {
    queue: ArrayQueue<ShardMsg>,
    armed: AtomicBool,
    waker: mio::Waker,
    /// Messages refused because the queue was full.
    pub full_events: AtomicU64,
}

impl Inbox {
    pub fn new(capacity: usize, waker: mio::Waker) -> Arc<Self> {
        Arc::new(Inbox {
            queue: ArrayQueue::new(capacity.max(1)),
            armed: AtomicBool::new(false),
            waker,
            full_events: AtomicU64::new(0),
        })
    }

    /// Enqueue and wake the receiver if it was not already woken. `Err(msg)` if full.
    pub fn send(&self, msg: ShardMsg) -> Result<(), ShardMsg> {
        if let Err(msg) = self.queue.push(msg) {
            self.full_events.fetch_add(1, Ordering::Relaxed);
            return Err(msg);
        }
        if !self.armed.swap(true, Ordering::SeqCst) {
            // A failed wake means the eventfd is gone: the shard is exiting anyway.
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Receiver side: disarm, then take messages until the queue is empty.
    pub fn drain(&self, mut f: impl FnMut(ShardMsg)) {
        self.armed.store(false, Ordering::SeqCst);
        while let Some(msg) = self.queue.pop() {
            f(msg);
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_is_one_wake_and_order_is_kept() {
        let mut poll = mio::Poll::new().expect("poll");
        let waker = mio::Waker::new(poll.registry(), mio::Token(7)).expect("waker");
        let inbox = Inbox::new(8, waker);
        for i in 0..8u32 {
            let msg = ShardMsg::Close {
                to: LocalRef { slot: i, gen: 0 },
                code: CloseCode::Normal,
            };
            assert!(inbox.send(msg).is_ok());
        }
        // The ninth does not fit: it comes back and is counted.
        let extra = ShardMsg::Shutdown;
        assert!(matches!(inbox.send(extra), Err(ShardMsg::Shutdown)));
        assert_eq!(inbox.full_events.load(Ordering::Relaxed), 1);

        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("poll");
        assert_eq!(events.iter().count(), 1);
        let mut seen = vec![];
        inbox.drain(|m| {
            if let ShardMsg::Close { to, .. } = m {
                seen.push(to.slot)
            }
        });
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
        // After a drain the next send wakes again.
        assert!(inbox.send(ShardMsg::Shutdown).is_ok());
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("poll");
        assert_eq!(events.iter().count(), 1);
    }
}

#[cfg(test)]
mod size_tests {
    /// Inbox slots are allocated up front (capacity × slot size per shard): keep them small.
    #[test]
    fn message_is_small() {
        let n = std::mem::size_of::<super::ShardMsg>();
        eprintln!("ShardMsg {n} B");
        assert!(n <= 64, "ShardMsg grew to {n} bytes");
    }
}
