//! TLS on the reactor (README "TLS"): HTTP and websockets over rustls on the main listener,
//! TLS 1.3 and 1.2 with ALPN `http/1.1`, the Channelstream `/ws` and Pusher `/app/` routes over
//! `wss://`, a stalled handshake reaped by the header timeout while another TLS client is
//! served, extra listeners with their own certificates, and SIGHUP reloading the certificate
//! of the real binary without dropping its connections.
//!
//! The CA and server certificates are made with rcgen at set-up (`common::tls::Pki`); the
//! clients are rustls clients trusting only that CA.

mod common;
use common::pusher as p;
use common::tls::*;
use common::*;
use herald::config::ListenerConfig;
use md5::Digest as _;
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::Message;

fn tls_server(pki: &Pki, f: impl FnOnce(&mut herald::config::Config)) -> Server {
    let files = pki.files();
    Server::with(|c| {
        c.tls = Some(files);
        f(c);
    })
}

/// A request with a body over a fresh TLS connection.
fn tls_request(pki: &Pki, addr: SocketAddr, head: &str, body: &[u8]) -> Resp {
    let mut s = pki.connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s, &mut Vec::new(), false).expect("an answer over TLS")
}

/// A signed Channelstream API call over TLS.
fn tls_api(pki: &Pki, addr: SocketAddr, path: &str, body: &Value) -> Resp {
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nX-Channelstream-Secret: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        token(),
        body.len()
    );
    tls_request(pki, addr, &head, body.as_bytes())
}

#[test]
fn http_over_tls13_and_tls12_with_alpn() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    for (version, expect) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let config = std::sync::Arc::new(pki.client(&[version]));
        let mut s = connect_with(server.addr, config);
        assert_eq!(s.conn.protocol_version(), Some(expect));
        assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let certs = s.conn.peer_certificates().expect("server certificate");
        assert_eq!(certs[0], pki.leaf_der, "the configured certificate");
        // Two requests on one keep-alive TLS connection.
        let mut buf = Vec::new();
        for _ in 0..2 {
            let r = tls_ask(
                &mut s,
                &mut buf,
                "OPTIONS / HTTP/1.1\r\nHost: localhost\r\n\r\n",
            );
            assert_eq!(r.expect("answer").status, 200, "{expect:?}");
        }
    }
    let m = metrics(&pki, server.addr);
    assert!(metric(&m, "herald_tls_handshakes_total") >= 3, "{m}");
    assert_eq!(metric(&m, "herald_tls_handshake_failures_total"), 0, "{m}");
}

#[test]
fn client_offering_only_h2_is_refused_and_counted() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut c = pki.client(rustls::ALL_VERSIONS);
    c.alpn_protocols = vec![b"h2".to_vec()];
    let err = try_connect(server.addr, std::sync::Arc::new(c)).err();
    assert!(
        err.is_some(),
        "a handshake without a common protocol must fail"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        server.stat(|s| {
            s.tls_handshake_failures
                .load(std::sync::atomic::Ordering::Relaxed)
        }) == 1
    }));
    // No ALPN at all is fine (curl --no-alpn, old clients).
    let mut c = pki.client(rustls::ALL_VERSIONS);
    c.alpn_protocols.clear();
    let mut s = connect_with(server.addr, std::sync::Arc::new(c));
    let r = tls_ask(
        &mut s,
        &mut Vec::new(),
        "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.expect("answer").status, 200);
}

#[test]
fn channelstream_websocket_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| c.shards = 2);
    let r = tls_api(
        &pki,
        server.addr,
        "/connect",
        &json!({"username": "alice", "channels": ["room"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let conn_id = r.json()["conn_id"].as_str().expect("conn_id").to_owned();
    let mut ws = wss(&pki, server.addr, &format!("/ws?conn_id={conn_id}"));
    for i in 0..3 {
        let r = tls_api(
            &pki,
            server.addr,
            "/message",
            &json!([{"channel": "room", "user": "bob", "message": {"n": i}}]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let frame = loop {
            let t = next_text(&mut ws).expect("a frame over wss");
            if t.trim() != "[]" {
                break t;
            }
        };
        let v: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v[0]["message"]["n"], i, "{frame}");
        assert_eq!(v[0]["channel"], "room");
    }
    ws.close(None).unwrap();
}

#[test]
fn pusher_websocket_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| c.shards = 2);
    let mut ws = wss(&pki, server.addr, p::APP_PATH);
    let hello: Value = serde_json::from_str(&next_text(&mut ws).unwrap()).unwrap();
    assert_eq!(hello["event"], "pusher:connection_established");
    ws.send(Message::text(
        json!({"event":"pusher:subscribe","data":{"channel":"news"}}).to_string(),
    ))
    .unwrap();
    let ok: Value = serde_json::from_str(&next_text(&mut ws).unwrap()).unwrap();
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    // Publish through the HTTP API, over TLS too.
    let body = json!({"name":"flash","channel":"news","data":"{\"x\":1}"}).to_string();
    let md5 = p::hex(&md5::Md5::digest(body.as_bytes()));
    let path = "/apps/app-id/events";
    let q = format!(
        "auth_key={}&auth_timestamp={}&auth_version=1.0&body_md5={md5}",
        p::KEY,
        unix_now()
    );
    let sig = p::hmac_hex(&format!("POST\n{path}\n{q}"));
    let head = format!(
        "POST {path}?{q}&auth_signature={sig} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let r = tls_request(&pki, server.addr, &head, body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let ev: Value = serde_json::from_str(&next_text(&mut ws).unwrap()).unwrap();
    assert_eq!(ev["event"], "flash");
    assert_eq!(ev["channel"], "news");
    assert_eq!(ev["data"], "{\"x\":1}");
}

#[test]
fn large_and_many_websocket_messages_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut ws = wss(&pki, server.addr, "/echo");
    // Larger than one TLS record (16 KiB) and than rustls's 64 KiB output buffer limit.
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(b) => assert!(b[..] == big[..], "echo differs"),
        m => panic!("unexpected {m:?}"),
    }
    // Many small messages written back to back: frames share records both ways.
    for i in 0..500 {
        ws.write(Message::text(format!("m{i}"))).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..500 {
        assert_eq!(next_text(&mut ws).as_deref(), Some(&*format!("m{i}")));
    }
}

#[test]
fn enforce_https_admits_requests_that_came_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| {
        c.enforce_https = true;
        c.listeners = vec![ListenerConfig {
            name: "plain".into(),
            host: None,
            port: 0,
            tls: None,
        }];
    });
    let plain = server.extra_addrs[0];
    let r = request(&At(plain), "OPTIONS", "/", &[], b"");
    assert_eq!(r.status, 406, "plain HTTP is refused: {}", r.text());
    let r = tls_request(
        &pki,
        server.addr,
        "OPTIONS / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"",
    );
    assert_eq!(r.status, 200, "TLS is https: {}", r.text());
}

#[test]
fn extra_listener_with_its_own_certificate() {
    let main = Pki::new();
    let other = Pki::new();
    let server = tls_server(&main, |c| {
        c.listeners = vec![ListenerConfig {
            name: "server".into(),
            host: Some("127.0.0.1".into()),
            port: 0,
            tls: Some(other.files()),
        }];
    });
    let extra = server.extra_addrs[0];
    assert_ne!(extra, server.addr);
    let s = other.connect(extra);
    assert_eq!(s.conn.peer_certificates().unwrap()[0], other.leaf_der);
    // The main CA does not vouch for the extra listener's certificate, and vice versa.
    assert!(try_connect(extra, main.default_client()).is_err());
    assert!(try_connect(server.addr, other.default_client()).is_err());
    let mut ws = wss(&other, extra, "/echo");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_text(&mut ws).as_deref(), Some("hi"));
    // A reload (what SIGHUP calls) reaches each listener's own store: the extra listener's
    // new certificate is served, the main one's is unchanged, the websocket stays.
    let mut other = other;
    other.issue("extra listener, second");
    assert!(server.shared.reload_tls().is_empty());
    let s = other.connect(extra);
    assert_eq!(s.conn.peer_certificates().unwrap()[0], other.leaf_der);
    let s = main.connect(server.addr);
    assert_eq!(s.conn.peer_certificates().unwrap()[0], main.leaf_der);
    ws.send(Message::text("still")).unwrap();
    assert_eq!(next_text(&mut ws).as_deref(), Some("still"));
}

/// The first bytes of a real ClientHello (a rustls client's first flight).
pub fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(pki.default_client(), name).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out
}

#[test]
fn stalled_handshake_is_reaped_by_the_header_timeout_while_others_are_served() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| {
        c.limits.header_timeout = Duration::from_secs(1);
    });
    let hello = client_hello(&pki);
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    let t0 = Instant::now();
    // Meanwhile another TLS client is served, repeatedly.
    let mut s = pki.connect(server.addr);
    let mut buf = Vec::new();
    for _ in 0..5 {
        let r = tls_ask(&mut s, &mut buf, "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.expect("served during the stall").status, 200);
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let waited = t0.elapsed();
    assert!(rest.is_empty(), "nothing is sent to a half ClientHello");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected the 1 s header timeout"
    );
    assert!(wait_until(Duration::from_secs(2), || {
        server.stat(|s| {
            s.tls_handshake_failures
                .load(std::sync::atomic::Ordering::Relaxed)
        }) == 1
    }));
    // The served client is still fine.
    let r = tls_ask(&mut s, &mut buf, "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.expect("still served").status, 200);
}

// ------------------------------------------------------------------ SIGHUP on the real binary

struct Herald {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Herald {
    fn spawn(pki: &Pki) -> Herald {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--shards", "2", "--echo-path", "/echo"])
            .arg("--tls-cert")
            .arg(&pki.cert)
            .arg("--tls-key")
            .arg(&pki.key)
            .env_remove("CHANNELSTREAM_INI")
            .env("HERALD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut h = Herald { child, addr, lines };
        h.wait_for("Herald serving on https://");
        h
    }

    /// Wait for a log line containing `needle` (the server's own word that it acted).
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no log line with {needle:?}");
    }

    fn hup(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    let mut pki = Pki::new();
    let mut h = Herald::spawn(&pki);
    let first = pki.leaf_der.clone();
    // A websocket and a keep-alive HTTP connection made with the first certificate.
    let mut ws = wss(&pki, h.addr, "/echo");
    ws.send(Message::text("before")).unwrap();
    assert_eq!(next_text(&mut ws).as_deref(), Some("before"));
    let mut keep = pki.connect(h.addr);
    let mut buf = Vec::new();
    let opt = "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(tls_ask(&mut keep, &mut buf, opt).unwrap().status, 200);

    pki.issue("herald test server, second");
    assert_ne!(pki.leaf_der, first);
    h.hup();
    h.wait_for("certificates reloaded");
    let s = pki.connect(h.addr);
    assert_eq!(
        s.conn.peer_certificates().unwrap()[0],
        pki.leaf_der,
        "a new handshake sees the new certificate"
    );
    // The old connections are untouched.
    ws.send(Message::text("after")).unwrap();
    assert_eq!(next_text(&mut ws).as_deref(), Some("after"));
    assert_eq!(tls_ask(&mut keep, &mut buf, opt).unwrap().status, 200);

    // A bad certificate is refused and the current one kept.
    let good = pki.leaf_der.clone();
    std::fs::write(&pki.cert, b"-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    h.hup();
    h.wait_for("certificate not reloaded");
    let s = pki.connect(h.addr);
    assert_eq!(s.conn.peer_certificates().unwrap()[0], good);
    ws.send(Message::text("still")).unwrap();
    assert_eq!(next_text(&mut ws).as_deref(), Some("still"));
}

#[test]
fn closing_sends_close_notify() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut s = pki.connect(server.addr);
    let r = tls_ask(
        &mut s,
        &mut Vec::new(),
        "OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.expect("answer").status, 200);
    // A clean TLS end is Ok(0); a TCP FIN without close_notify would be UnexpectedEof.
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest).expect("close_notify, then EOF");
    assert_eq!(n, 0);
    // A websocket close handshake ends the same way.
    let mut ws = wss(&pki, server.addr, "/echo");
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("not a clean close: {e}"),
        }
    }
    let mut rest = Vec::new();
    assert_eq!(
        ws.get_mut().read_to_end(&mut rest).expect("close_notify"),
        0
    );
}

#[test]
fn sessions_resume_on_the_shard_that_issued_them() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| c.shards = 1);
    // One client config: rustls keeps the tickets it was sent in it.
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = std::sync::Arc::new(pki.client(&[version]));
        let opt = "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut first = connect_with(server.addr, config.clone());
        // Read an answer, so TLS 1.3 tickets (sent after the handshake) have arrived.
        assert_eq!(
            tls_ask(&mut first, &mut Vec::new(), opt).unwrap().status,
            200
        );
        assert_eq!(
            first.conn.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        drop(first);
        let mut again = connect_with(server.addr, config);
        assert_eq!(
            again.conn.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}"
        );
        assert_eq!(
            tls_ask(&mut again, &mut Vec::new(), opt).unwrap().status,
            200
        );
    }
}
