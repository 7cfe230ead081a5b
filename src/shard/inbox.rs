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

use crate::dialect::Response;
use crate::ids::{LocalRef, ReqRef};
use crate::proto::ws::CloseCode;
use crate::shard::frame::OutFrame;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The largest dialect message (bytes) that keeps an inbox slot at 64 B; dialects assert it.
pub const MAX_DIALECT_MSG: usize = 40;

/// Everything that crosses shards. Only `Send` data: frames as `Bytes`, ids, the dialect's
/// own messages (`M`, which the reactor carries without reading).
#[derive(Debug)]
pub enum ShardMsg<M> {
    /// A message for the receiving shard's dialect instance.
    Dialect(M),
    /// The answer to a request parked on the receiving shard. Boxed: answers are rare next
    /// to deliveries, and every inbox slot is sized for the largest variant.
    Reply {
        /// The parked request.
        req: ReqRef,
        /// Its answer.
        response: Box<Response>,
    },
    /// One encoded frame for several local sockets (one message per shard per publish).
    Deliver {
        /// The frame, shared by every target (and its compressed forms, shared likewise).
        frame: OutFrame,
        /// The targets on the receiving shard.
        to: Vec<LocalRef>,
    },
    /// Close a local websocket with this code.
    Close {
        /// The websocket.
        to: LocalRef,
        /// The close code.
        code: CloseCode,
    },
    /// Stop accepting, close websockets with 1001, finish and exit.
    Shutdown,
}

/// The receiving end's shared half: queue, waker and counters.
pub struct Inbox<M> {
    queue: ArrayQueue<ShardMsg<M>>,
    armed: AtomicBool,
    waker: mio::Waker,
    /// Messages refused because the queue was full.
    pub full_events: AtomicU64,
}

impl<M> Inbox<M> {
    /// An inbox of `capacity` messages woken through `waker`.
    pub fn new(capacity: usize, waker: mio::Waker) -> Arc<Self> {
        Arc::new(Inbox {
            queue: ArrayQueue::new(capacity.max(1)),
            armed: AtomicBool::new(false),
            waker,
            full_events: AtomicU64::new(0),
        })
    }

    /// Enqueue and wake the receiver if it was not already woken. `Err(msg)` if full.
    pub fn send(&self, msg: ShardMsg<M>) -> Result<(), ShardMsg<M>> {
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
    pub fn drain(&self, mut f: impl FnMut(ShardMsg<M>)) {
        self.armed.store(false, Ordering::SeqCst);
        while let Some(msg) = self.queue.pop() {
            f(msg);
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no message waits.
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
        let inbox = Inbox::<()>::new(8, waker);
        for i in 0..8u32 {
            let msg = ShardMsg::Close {
                to: LocalRef {
                    slot: crate::ids::Slot(i),
                    gen: crate::ids::Gen(0),
                },
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
                seen.push(to.slot.0)
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
    /// A dialect message of up to `MAX_DIALECT_MSG` bytes keeps a slot at 64 B.
    #[test]
    fn message_is_small() {
        let n = std::mem::size_of::<super::ShardMsg<[u64; super::MAX_DIALECT_MSG / 8]>>();
        eprintln!("ShardMsg {n} B");
        assert!(n <= 64, "ShardMsg grew to {n} bytes");
    }
}
