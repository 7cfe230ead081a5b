//! A connection's socket: plain TCP, or TLS over TCP, driven by the reactor's edge-triggered
//! readiness and never blocking.
//!
//! The TLS side keeps three invariants the reactor depends on:
//! * **Reads drain rustls first.** `read` returns plaintext rustls already decrypted before it
//!   reads the socket again, and returns `WouldBlock` only when rustls holds no plaintext *and*
//!   the socket has nothing more. Under edge-triggered epoll a record that arrived with an
//!   earlier segment would otherwise wait for a readiness event that never comes.
//! * **Writes never strand output.** Handshake messages, alerts, session tickets and
//!   application records are pushed to the socket right after they are produced; what the
//!   kernel does not take stays in rustls, [`Stream::has_pending_output`] says so, and the
//!   connection is flushed again on WRITABLE. A write while TLS output is still pending
//!   returns `WouldBlock`, so at most one buffer limit (64 KiB) of records is ever held.
//! * **Closing sends `close_notify`.** `shutdown_write` queues the alert and shuts the TCP
//!   write side only after the alert is out.
//!
//! Plain HTTP sent to a TLS port (the first byte is an ASCII letter, not a TLS record's
//! 0x16) is answered with a canned 400 and closed; other garbage fails in rustls, which sends
//! its alert. Either way `read` returns an error and the connection is reaped; the shard
//! counts it as a failed handshake.

use crate::conn::Socket;
use mio::net::TcpStream;
use mio::{event, Interest, Registry, Token};
use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain HTTP request to a TLS port gets (as nginx does, without its HTML).
const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 47\r\n\
Connection: close\r\n\r\n\
This port speaks HTTPS: plain HTTP was refused\n";

/// A connection's socket.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: a rustls session is a few hundred bytes, a plain socket four).
    Tls(Box<TlsStream>),
}

/// A rustls server session over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// The first byte has been checked for a TLS record.
    sniffed: bool,
    /// `close_notify` is queued: shut the TCP write side once it is written.
    shutdown_pending: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("handshaking", &self.tls.is_handshaking())
            .finish()
    }
}

impl TlsStream {
    /// Wrap an accepted socket in a fresh server session.
    pub fn new(tcp: TcpStream, tls: ServerConnection) -> TlsStream {
        TlsStream {
            tcp,
            tls,
            sniffed: false,
            shutdown_pending: false,
        }
    }

    /// The rustls session (protocol version, ALPN, SNI, for logs and tests).
    pub fn session(&self) -> &ServerConnection {
        &self.tls
    }

    /// Write queued TLS records until the kernel stops taking them. `Ok` also when some
    /// remain (`wants_write` then says so); an error only when the socket failed.
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.shutdown_pending {
            self.shutdown_pending = false;
            let _ = self.tcp.shutdown(std::net::Shutdown::Write);
        }
        Ok(())
    }

    /// Before the first byte reaches rustls: is it a TLS record at all? Plain HTTP gets a
    /// readable 400 instead of an alert it cannot decode.
    fn sniff(&mut self) -> io::Result<()> {
        let mut first = [0u8; 1];
        let n = loop {
            match self.tcp.peek(&mut first) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.sniffed = true;
        if n == 0 || first[0] == TLS_HANDSHAKE || !first[0].is_ascii_uppercase() {
            return Ok(());
        }
        // Take what the client sent (so closing does not reset the connection and lose the
        // answer), answer, and shut the write side. Bounded: a few reads, no waiting.
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match self.tcp.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = self.tcp.write(PLAIN_HTTP_TO_TLS);
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "plain HTTP sent to a TLS port",
        ))
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                // `Ok(0)`: the peer's close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP EOF without close_notify: for HTTP and websockets, an EOF like any other
                // (both carry their own message framing).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.sniffed {
                self.sniff()?;
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert saying why; send it if the kernel takes it now.
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake flights, alerts, tickets, key updates.
            self.push()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypt as much as rustls's buffer limit takes (the slices are packed into full
    /// records, not one record per slice) and push it out.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.push()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write_vectored(bufs)?;
        self.push()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Push pending records; `WouldBlock` if some remain.
    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        if self.tls.wants_write() || self.shutdown_pending {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Socket for Stream {
    fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(s) => s.shutdown_write(),
            Stream::Tls(s) => {
                s.tls.send_close_notify();
                s.shutdown_pending = true;
                let _ = s.push();
            }
        }
    }

    fn has_pending_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.tls.wants_write() || s.shutdown_pending,
        }
    }

    fn establishing(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.tls.is_handshaking(),
        }
    }

    fn is_secure(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.tcp,
        }
    }

    fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &mut s.tcp,
        }
    }
}

impl event::Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.tcp_mut().register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.tcp_mut().reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.tcp_mut().deregister(r)
    }
}
