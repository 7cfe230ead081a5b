//! Accepting connections on a shard's listeners: the main one and the extra ones
//! (`[listener:NAME]`), each plain or TLS.
//!
//! A TLS listener's accepted socket gets a fresh rustls session from the shard's copy of the
//! listener's current certificate (`tls::ShardTls`, refreshed here when SIGHUP swapped it), so
//! a reload reaches new handshakes at once and never touches an open connection. The
//! handshake itself runs later, on readiness, like any read (`tls::Stream`); until it
//! completes the connection counts against `--max-pending-handshakes` and the header timeout.

use super::Shard;
use crate::conn::Conn;
use crate::dialect::Dialect;
use crate::tls::{ShardTls, Stream, TlsStream};
use mio::net::TcpListener;
use mio::{Interest, Token};
use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Most listeners one server may have (their tokens sit just below the waker's).
pub const MAX_LISTENERS: usize = 64;

/// Token of the `i`-th listener.
pub(super) fn token(i: usize) -> Token {
    Token(usize::MAX - 3 - i)
}

/// Which listener a token names, if any.
pub(super) fn listener_index(t: Token) -> Option<usize> {
    let i = (usize::MAX - 3).checked_sub(t.0)?;
    (i < MAX_LISTENERS).then_some(i)
}

/// One of a shard's listening sockets and, for a TLS listener, its certificate.
pub struct Listener {
    /// This shard's SO_REUSEPORT socket.
    pub tcp: TcpListener,
    /// The shard's view of the listener's certificate; `None`: plain TCP.
    pub tls: Option<ShardTls>,
}

impl<D: Dialect> Shard<D> {
    /// Accept on listener `i` until WouldBlock.
    pub(super) fn accept_all(&mut self, i: usize) {
        loop {
            let Some(listener) = self.listeners.get_mut(i) else {
                return;
            };
            let (mut tcp, peer) = match listener.tcp.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and retry on the next readiness event.
                    tracing::warn!(shard = self.id.0, error = %e, "accept failed");
                    return;
                }
            };
            let lim = &self.shared.cfg.limits;
            let stats = &self.table.stats;
            // Refused connections are accepted and closed at once (a RST-free FIN): leaving
            // them in the backlog would only make the client wait for a timeout.
            if self.table.slab.len() >= lim.max_connections_per_shard
                || self.shared.open_connections() >= lim.max_connections_total
            {
                stats.refused_over_limit.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(shard = self.id.0, %peer, "connection refused: connection limit");
                continue;
            }
            if self.table.pending_handshakes >= lim.max_pending_handshakes {
                stats
                    .refused_pending_handshakes
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(shard = self.id.0, %peer, "connection refused: pending handshakes");
                continue;
            }
            crate::net::tune_accepted(&tcp);
            let entry = self.table.slab.vacant_entry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut tcp, Token(entry.key()), interest)
                .is_err()
            {
                continue;
            }
            let stream = match listener.tls.as_mut().map(ShardTls::accept) {
                None => Stream::Plain(tcp),
                Some(Ok(session)) => Stream::Tls(Box::new(TlsStream::new(tcp, session))),
                Some(Err(e)) => {
                    let _ = self.poll.registry().deregister(&mut tcp);
                    tracing::warn!(shard = self.id.0, error = %e, "cannot start a TLS session");
                    continue;
                }
            };
            let gen = self.table.next_gen;
            self.table.next_gen = gen.next();
            entry.insert(Conn::new(stream, peer, gen, Instant::now()));
            self.table.pending_handshakes += 1;
            self.table.stats.accepted.fetch_add(1, Ordering::Relaxed);
            self.table.stats.open.fetch_add(1, Ordering::Relaxed);
        }
    }
}
