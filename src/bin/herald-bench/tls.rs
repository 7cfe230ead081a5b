//! `https://` targets: every socket of the run (subscribers, control and publisher
//! connections) is a rustls client over the non-blocking TCP socket, driven by the same
//! readiness events as a plain one, so the TLS-vs-plain comparison measures only TLS.
//!
//! Two rules keep the engine's assumptions true over TLS:
//! * a `read` shorter than the buffer means the socket returned `WouldBlock` (the subscriber
//!   reader stops on a short read; rustls may hold decrypted bytes, so `read` keeps copying
//!   them out and reading the socket until the buffer is full or the socket is empty);
//! * `flush` pushes TLS records rustls still holds (handshake flights, the tail of a write the
//!   kernel did not take); the engine calls it on every writable event.
//!
//! The certificate is verified against `--tls-ca` for the target's IP address (the server's
//! certificate needs an IP SAN such as `IP:127.0.0.1`).

use mio::net::TcpStream;
use mio::{event, Interest, Registry, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, IoSlice, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// A client config trusting the CA certificates in the PEM file `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    #[allow(deprecated)] // ring, as the server: no post-quantum key exchange
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// A benchmark socket: plain TCP or a rustls client over it.
pub enum BStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsClient>),
}

/// A rustls client session over a non-blocking TCP socket.
pub struct TlsClient {
    tcp: TcpStream,
    tls: ClientConnection,
}

impl BStream {
    /// Wrap a connecting socket; with `tls`, start a client session for `ip`.
    pub fn new(tcp: TcpStream, tls: Option<&Arc<ClientConfig>>, ip: IpAddr) -> io::Result<Self> {
        match tls {
            None => Ok(BStream::Plain(tcp)),
            Some(cfg) => {
                let tls = ClientConnection::new(cfg.clone(), ServerName::IpAddress(ip.into()))
                    .map_err(io::Error::other)?;
                Ok(BStream::Tls(Box::new(TlsClient { tcp, tls })))
            }
        }
    }

    /// The TCP socket underneath (connect status).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            BStream::Plain(s) => s,
            BStream::Tls(t) => &t.tcp,
        }
    }

    fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            BStream::Plain(s) => s,
            BStream::Tls(t) => &mut t.tcp,
        }
    }
}

impl TlsClient {
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Still connecting: the writable event that completes it flushes again.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        loop {
            match self.tls.reader().read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) if n == buf.len() => return Ok(n),
                Ok(0) => return Ok(n), // close_notify
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        return Ok(n);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(n),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.push()?;
        }
    }
}

impl Read for BStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BStream::Plain(s) => s.read(buf),
            BStream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for BStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            BStream::Plain(s) => s.write_vectored(bufs),
            BStream::Tls(t) => {
                t.push()?;
                if t.tls.wants_write() && !t.tls.is_handshaking() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = t.tls.writer().write_vectored(bufs)?;
                t.push()?;
                if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BStream::Plain(_) => Ok(()),
            BStream::Tls(t) => t.push(),
        }
    }
}

impl event::Source for BStream {
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
