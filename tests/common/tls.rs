//! TLS test helpers: a throw-away CA and server certificate made with rcgen at set-up (PEM
//! files in a fresh temporary directory), and rustls clients that trust only that CA.

use super::{read_response, token, Resp};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A client TLS stream over a blocking socket.
pub type TlsConn = StreamOwned<ClientConnection, TcpStream>;

/// A websocket over TLS.
pub type Wss = tungstenite::WebSocket<TlsConn>;

/// A test CA and the server certificate it signed, written to `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// DER of the CA certificate (clients trust it).
    pub ca_der: CertificateDer<'static>,
    /// DER of the server certificate now in `cert`.
    pub leaf_der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("herald-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Herald test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let ca_der = ca.der().clone();
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        let mut pki = Pki {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            ca,
            ca_der,
            leaf_der: CertificateDer::from(Vec::new()),
        };
        pki.issue("herald test server");
        pki
    }

    /// Sign a new server certificate (localhost, 127.0.0.1) named `cn` and write it and its
    /// key over the files.
    pub fn issue(&mut self, cn: &str) {
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        std::fs::write(&self.cert, cert.pem()).expect("write cert");
        std::fs::write(&self.key, key.serialize_pem()).expect("write key");
        self.leaf_der = cert.der().clone();
    }

    /// The server's TLS settings for this certificate.
    pub fn files(&self) -> herald::config::TlsFiles {
        herald::config::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    /// A client config trusting only this CA, for the given versions, ALPN `http/1.1`.
    pub fn client(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("add CA");
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        c
    }

    /// A TLS 1.3 or 1.2 client (whatever the server picks).
    pub fn default_client(&self) -> Arc<ClientConfig> {
        Arc::new(self.client(rustls::ALL_VERSIONS))
    }

    /// Connect and complete the handshake (to `localhost`, verified against the CA).
    pub fn connect(&self, addr: SocketAddr) -> TlsConn {
        connect_with(addr, self.default_client())
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connect with `config` and finish the handshake; panics if it fails.
pub fn connect_with(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsConn {
    try_connect(addr, config).expect("TLS handshake")
}

/// Connect with `config` and finish the handshake.
pub fn try_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsConn> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One HTTP request on an open TLS connection; its response.
pub fn tls_ask(s: &mut TlsConn, buf: &mut Vec<u8>, req: &str) -> Option<Resp> {
    s.write_all(req.as_bytes()).ok()?;
    s.flush().ok()?;
    read_response(s, buf, req.starts_with("HEAD "))
}

/// A signed GET of `/metrics` over TLS; the text.
pub fn metrics(pki: &Pki, addr: SocketAddr) -> String {
    let mut s = pki.connect(addr);
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Channelstream-Secret: {}\r\n\r\n",
        token()
    );
    let r = tls_ask(&mut s, &mut Vec::new(), &req).expect("metrics answer");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The value of one metric line.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

/// A websocket over TLS to `path`, read timeout 5 s.
pub fn wss(pki: &Pki, addr: SocketAddr, path: &str) -> Wss {
    let s = pki.connect(addr);
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, resp) = tungstenite::client(url, s).expect("websocket handshake over TLS");
    assert_eq!(resp.status().as_u16(), 101);
    ws.get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    ws
}

/// Next text message, skipping pings/pongs.
pub fn next_text(ws: &mut Wss) -> Option<String> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return Some(t.to_string()),
            Ok(tungstenite::Message::Ping(_)) | Ok(tungstenite::Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}
