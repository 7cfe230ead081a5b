//! A connection's output queue: shared `Bytes` chunks (a broadcast frame is one allocation
//! referenced by every subscriber's queue), flushed with one `writev` per loop turn.
//!
//! The queue counts its bytes so the shard can enforce the slow-consumer cap before pushing.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Most iovecs handed to one `writev` (Linux IOV_MAX is 1024; 64 covers any realistic batch
/// while keeping the stack array small).
const MAX_IOV: usize = 64;

/// Result of a flush attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued was written.
    Drained,
    /// The socket is full; wait for WRITABLE.
    Blocked,
}

/// A connection's queue of outgoing byte chunks, written in order with `writev`.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// The front chunk has been partly written: it must be finished before anything else.
    front_started: bool,
}

impl OutQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// True when no bytes are waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queue a chunk (a refcount bump for a shared frame).
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.queued += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Give the (empty) queue's buffer back to the allocator. Called for idle connections so
    /// an idle socket holds no output memory; busy ones keep their buffer between turns.
    pub fn release_if_idle(&mut self) {
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
    }

    /// Drop everything queued (used when a connection is being torn down).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.queued = 0;
        self.front_started = false;
    }

    /// Drop everything not yet started, keeping the rest of a partly written chunk so the
    /// byte stream stays well-formed (a close frame must not land inside another frame).
    pub fn clear_unsent(&mut self) {
        let keep = if self.front_started {
            self.chunks.pop_front()
        } else {
            None
        };
        self.clear();
        if let Some(front) = keep {
            self.push(front);
            self.front_started = true;
        }
    }

    /// Write as much as the socket takes, `MAX_IOV` chunks per `writev`.
    pub fn flush<W: Write>(&mut self, w: &mut W) -> io::Result<Flush> {
        while !self.chunks.is_empty() {
            let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (slot, chunk) in iov.iter_mut().zip(self.chunks.iter()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            let written = match w.write_vectored(iov.get(..n).unwrap_or_default()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.consume(written);
        }
        Ok(Flush::Drained)
    }

    fn consume(&mut self, mut n: usize) {
        self.queued = self.queued.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
                self.front_started = false;
            } else {
                front.advance(n);
                self.front_started = true;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `cap` bytes per call and then blocks after `limit`.
    struct Trickle {
        data: Vec<u8>,
        cap: usize,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.data.len() >= self.limit {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.cap - n).min(self.limit - self.data.len());
                self.data.extend_from_slice(&b[..take]);
                n += take;
                if n == self.cap || self.data.len() == self.limit {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_in_order() {
        let mut q = OutQueue::new();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b""));
        q.push(Bytes::from_static(b"world"));
        assert_eq!(q.queued(), 11);
        let mut w = Trickle {
            data: vec![],
            cap: 4,
            limit: 7,
            calls: 0,
        };
        assert_eq!(q.flush(&mut w).ok(), Some(Flush::Blocked));
        assert_eq!(q.queued(), 4);
        w.limit = 100;
        assert_eq!(q.flush(&mut w).ok(), Some(Flush::Drained));
        assert_eq!(w.data, b"hello world");
        assert!(q.is_empty());
    }

    #[test]
    fn clearing_keeps_a_partly_written_chunk() {
        let mut q = OutQueue::new();
        q.push(Bytes::from_static(b"abcdef"));
        q.push(Bytes::from_static(b"ghi"));
        let mut w = Trickle {
            data: vec![],
            cap: 4,
            limit: 4,
            calls: 0,
        };
        assert_eq!(q.flush(&mut w).ok(), Some(Flush::Blocked));
        q.clear_unsent();
        q.push(Bytes::from_static(b"X"));
        w.limit = 100;
        assert_eq!(q.flush(&mut w).ok(), Some(Flush::Drained));
        assert_eq!(w.data, b"abcdefX");
        // Nothing started: everything goes.
        q.push(Bytes::from_static(b"zz"));
        q.clear_unsent();
        assert!(q.is_empty());
    }

    #[test]
    fn many_chunks_go_out_in_few_writev_calls() {
        let mut q = OutQueue::new();
        let frame = Bytes::from_static(b"\x81\x02[]");
        for _ in 0..100 {
            q.push(frame.clone());
        }
        let mut w = Trickle {
            data: vec![],
            cap: usize::MAX / 2,
            limit: usize::MAX / 2,
            calls: 0,
        };
        assert_eq!(q.flush(&mut w).ok(), Some(Flush::Drained));
        assert_eq!(w.data.len(), 400);
        assert_eq!(w.calls, 2, "100 chunks = 2 writev calls of at most 64");
    }
}
