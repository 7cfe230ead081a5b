//! Hostile TLS clients (README "TLS"): garbage instead of a ClientHello, truncated and
//! corrupted records, plain HTTP to the TLS port, a client that stops mid-handshake, client-
//! initiated TLS 1.2 renegotiation, many concurrent handshakes. Each one closes (or answers)
//! that connection only, is counted, and a websocket and a keep-alive client served next to
//! it stay undisturbed.

mod common;
use common::tls::*;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

const OPT: &str = "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";

fn tls_server(pki: &Pki, f: impl FnOnce(&mut herald::config::Config)) -> Server {
    let files = pki.files();
    Server::with(|c| {
        c.tls = Some(files);
        c.shards = 2;
        f(c);
    })
}

fn failures(server: &Server) -> u64 {
    server.stat(|s| s.tls_handshake_failures.load(Ordering::Relaxed))
}

/// A websocket and a keep-alive HTTPS client that must stay undisturbed.
struct Bystanders {
    ws: Wss,
    keep: TlsConn,
    buf: Vec<u8>,
    n: usize,
}

impl Bystanders {
    fn new(pki: &Pki, server: &Server) -> Bystanders {
        let mut b = Bystanders {
            ws: wss(pki, server.addr, "/echo"),
            keep: pki.connect(server.addr),
            buf: Vec::new(),
            n: 0,
        };
        b.check();
        b
    }

    fn check(&mut self) {
        self.n += 1;
        let m = format!("ping {}", self.n);
        self.ws.send(Message::text(m.clone())).expect("ws send");
        assert_eq!(next_text(&mut self.ws), Some(m), "websocket disturbed");
        let r = tls_ask(&mut self.keep, &mut self.buf, OPT).expect("keep-alive disturbed");
        assert_eq!(r.status, 200);
    }
}

/// Send `bytes` on a raw TCP connection and wait for the server to close it; returns what
/// it sent back and how long closing took.
fn send_and_wait_close(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    s.write_all(bytes).expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed after {:?}: {e}", t0.elapsed()),
        }
    }
    (got, t0.elapsed())
}

/// A real ClientHello (a rustls client's first flight).
fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(pki.default_client(), name).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out
}

#[test]
fn garbage_instead_of_a_client_hello() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut by = Bystanders::new(&pki, &server);
    let hello = client_hello(&pki);
    let mut with_app_data = hello.clone();
    with_app_data.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]);
    let mut bad_tail = hello[..20].to_vec();
    bad_tail.extend_from_slice(&[0xAA; 300]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary noise", b"\x00\x01\x02\x03\xfe\xff noise".to_vec()),
        ("oversized record", {
            let mut v = vec![0x16, 0x03, 0x01, 0xff, 0xff];
            v.extend_from_slice(&[0x42; 200]);
            v
        }),
        (
            "unknown handshake type",
            vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x63, 0, 0, 0],
        ),
        (
            "SSLv2 hello",
            vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00],
        ),
        ("mangled ClientHello", bad_tail),
        ("application data before the handshake", with_app_data),
        (
            "alert record",
            vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        ),
    ];
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let (_, took) = send_and_wait_close(server.addr, bytes);
        assert!(
            took < Duration::from_secs(5),
            "{what}: closed after {took:?}"
        );
        assert!(
            wait_until(Duration::from_secs(2), || failures(&server) == i as u64 + 1),
            "{what}: not counted ({} failures)",
            failures(&server)
        );
        by.check();
    }
}

#[test]
fn plain_http_to_the_tls_port_is_answered_400_and_closed() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut by = Bystanders::new(&pki, &server);
    let (got, took) = send_and_wait_close(
        server.addr,
        b"GET /ws?conn_id=x HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    assert!(text.ends_with("plain HTTP was refused\n"), "{text}");
    assert!(took < Duration::from_secs(2));
    assert!(wait_until(Duration::from_secs(2), || failures(&server) == 1));
    by.check();
}

#[test]
fn truncated_and_corrupted_records() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut by = Bystanders::new(&pki, &server);

    // Half a ClientHello, then EOF: closed at once, not after the header timeout.
    let hello = client_hello(&pki);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let _ = s.read_to_end(&mut Vec::new());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(wait_until(Duration::from_secs(2), || failures(&server) == 1));
    by.check();

    // After a handshake: the first bytes of a record, then EOF.
    let mut c = pki.connect(server.addr);
    assert_eq!(tls_ask(&mut c, &mut Vec::new(), OPT).unwrap().status, 200);
    c.sock.write_all(&[0x17, 0x03, 0x03]).unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    let t0 = Instant::now();
    let _ = c.sock.read_to_end(&mut Vec::new());
    assert!(t0.elapsed() < Duration::from_secs(2));
    by.check();

    // After a handshake: a record with a flipped byte (bad MAC) is fatal for that socket.
    let mut c = pki.connect(server.addr);
    c.conn.writer().write_all(OPT.as_bytes()).unwrap();
    let mut rec = Vec::new();
    c.conn.write_tls(&mut rec).unwrap();
    let last = rec.len() - 1;
    rec[last] ^= 0x55;
    c.sock.write_all(&rec).unwrap();
    let mut back = Vec::new();
    let t0 = Instant::now();
    let _ = c.sock.read_to_end(&mut back);
    assert!(t0.elapsed() < Duration::from_secs(2));
    // What came back (session tickets, then the alert) decrypts to no HTTP answer and a
    // bad_record_mac alert.
    let mut rd = &back[..];
    let mut alert = None;
    while !rd.is_empty() && alert.is_none() {
        if c.conn.read_tls(&mut rd).unwrap_or(0) == 0 {
            break;
        }
        alert = c.conn.process_new_packets().err();
    }
    let mut plain = Vec::new();
    let _ = c.conn.reader().read_to_end(&mut plain);
    assert!(plain.is_empty(), "{}", String::from_utf8_lossy(&plain));
    assert_eq!(
        alert,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac
        ))
    );
    by.check();
    // Neither was a handshake failure: both handshakes had completed.
    assert_eq!(failures(&server), 1);
}

#[test]
fn client_that_stops_mid_handshake_is_reaped_by_the_header_timeout() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| c.limits.header_timeout = Duration::from_secs(1));
    let mut by = Bystanders::new(&pki, &server);
    // A whole ClientHello; read the server's flight; never answer it.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&client_hello(&pki)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let mut flight = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => flight.extend_from_slice(&chunk[..n]),
        }
    }
    let took = t0.elapsed();
    assert_eq!(
        flight.first(),
        Some(&0x16),
        "the server answered with its hello"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "reaped after {took:?}"
    );
    assert!(wait_until(Duration::from_secs(2), || failures(&server) == 1));
    by.check();
}

#[test]
fn pending_tls_handshakes_count_against_the_limit() {
    let pki = Pki::new();
    let server = Server::with(|c| {
        c.tls = Some(pki.files());
        c.shards = 1;
        c.limits.max_pending_handshakes = 4;
    });
    let stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(&[0x16, 0x03]).unwrap();
            s
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || server
        .open_connections()
        == 4));
    let (got, _) = send_and_wait_close(server.addr, &client_hello(&pki));
    assert!(got.is_empty(), "refused without an answer");
    let refused = server.stat(|s| s.refused_pending_handshakes.load(Ordering::Relaxed));
    assert_eq!(refused, 1);
    drop(stalled);
    // Once they are gone, handshakes are accepted again.
    assert!(wait_until(Duration::from_secs(5), || server
        .open_connections()
        == 0));
    let mut c = pki.connect(server.addr);
    assert_eq!(tls_ask(&mut c, &mut Vec::new(), OPT).unwrap().status, 200);
}

#[test]
fn many_concurrent_handshakes_beside_stalled_ones() {
    let pki = Arc::new(Pki::new());
    let server = tls_server(&pki, |_| {});
    let mut by = Bystanders::new(&pki, &server);
    let stalled: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(&[0x16, 0x03, 0x01]).unwrap();
            s
        })
        .collect();
    let addr = server.addr;
    let threads: Vec<_> = (0..24)
        .map(|_| {
            let pki = pki.clone();
            std::thread::spawn(move || {
                let config = pki.default_client();
                let mut ok = 0;
                for _ in 0..10 {
                    let mut c = connect_with(addr, config.clone());
                    let r = tls_ask(&mut c, &mut Vec::new(), OPT);
                    ok += usize::from(r.is_some_and(|r| r.status == 200));
                }
                ok
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 240);
    by.check();
    let done = server.stat(|s| s.tls_handshakes.load(Ordering::Relaxed));
    assert!(done >= 242, "{done} handshakes");
    drop(stalled);
    assert!(wait_until(Duration::from_secs(5), || failures(&server) == 32));
}

#[test]
fn client_initiated_tls12_renegotiation_is_refused() {
    use std::process::{Command, Stdio};
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let mut by = Bystanders::new(&pki, &server);
    // OpenSSL's s_client renegotiates when a line of its input is "R".
    let mut child = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-connect", &server.addr.to_string()])
        .arg("-CAfile")
        .arg(pki.dir.join("ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command (Debian package openssl)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"R\n").unwrap();
    // s_client exits once the server refuses; close its input after a bound in any case.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        drop(stdin);
    });
    let out = child.wait_with_output().unwrap();
    t.join().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("Protocol  : TLSv1.2"), "{all}");
    assert!(all.contains("RENEGOTIATING"), "{all}");
    assert!(all.contains("no renegotiation"), "refused: {all}");
    by.check();
}
