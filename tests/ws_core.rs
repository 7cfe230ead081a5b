//! RFC 6455 behaviour on real sockets, through the echo route (`/echo` in tests).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Raw handshake; returns the stream positioned after the 101 response.
fn raw_ws(srv: &Server, path: &str) -> TcpStream {
    let mut s = srv.connect();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).expect("101");
    assert_eq!(r.status, 101);
    assert_eq!(
        r.header("Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert!(buf.is_empty());
    s
}

fn frame(fin: bool, op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | op];
    let m = if masked { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    let key = [1u8, 2, 3, 4];
    if masked {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Read one server frame: (fin, opcode, payload).
fn read_frame(s: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0; len];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x80 != 0, h[0] & 0x0f, p))
}

fn close_code(p: &[u8]) -> Option<u16> {
    (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]))
}

#[test]
fn echo_with_tungstenite_on_two_shards() {
    let srv = Server::start(2);
    for _ in 0..4 {
        let mut ws = ws_connect(&srv, "/echo");
        ws.send(tungstenite::Message::text("hello")).unwrap();
        assert_eq!(ws_next_text(&mut ws).as_deref(), Some("hello"));
        ws.send(tungstenite::Message::binary(vec![0u8, 1, 2, 255]))
            .unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Binary(b) => assert_eq!(&b[..], &[0u8, 1, 2, 255]),
            m => panic!("unexpected {m:?}"),
        }
    }
}

#[test]
fn fragmented_message_with_ping_in_between() {
    let srv = Server::start(1);
    let mut s = raw_ws(&srv, "/echo");
    let mut bytes = frame(false, 1, b"Hel", true);
    bytes.extend(frame(true, 9, b"pp", true));
    bytes.extend(frame(false, 0, "lo \u{e9}".as_bytes(), true));
    bytes.extend(frame(true, 0, b"!", true));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), Some((true, 0xA, b"pp".to_vec())));
    assert_eq!(
        read_frame(&mut s),
        Some((true, 1, "Hello \u{e9}!".as_bytes().to_vec()))
    );
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    let srv = Server::start(1);
    let mut s = raw_ws(&srv, "/echo");
    let snow = "\u{2603}".as_bytes();
    let mut bytes = frame(false, 1, &snow[..1], true);
    bytes.extend(frame(true, 0, &snow[1..], true));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), Some((true, 1, snow.to_vec())));
}

#[test]
fn close_handshake_echoes_the_code() {
    let srv = Server::start(1);
    let mut s = raw_ws(&srv, "/echo");
    s.write_all(&frame(true, 8, &1000u16.to_be_bytes(), true))
        .unwrap();
    let (_, op, p) = read_frame(&mut s).unwrap();
    assert_eq!((op, close_code(&p)), (8, Some(1000)));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0, "then TCP closes");
}

fn expect_close(srv: &Server, bytes: &[u8], code: u16) {
    let mut s = raw_ws(srv, "/echo");
    s.write_all(bytes).unwrap();
    let (_, op, p) = read_frame(&mut s).expect("close frame");
    assert_eq!((op, close_code(&p)), (8, Some(code)), "for {bytes:02x?}");
}

#[test]
fn protocol_violations_get_the_right_close_codes() {
    let srv = Server::with(|c| c.limits.max_ws_message_bytes = 1000);
    expect_close(&srv, &frame(true, 1, b"unmasked", false), 1002);
    expect_close(&srv, &frame(true, 3, b"", true), 1002); // reserved opcode
    expect_close(&srv, &[0xC1, 0x80, 1, 2, 3, 4], 1002); // RSV1 without extension
    expect_close(&srv, &frame(true, 1, &[0xff, 0xfe], true), 1007);
    expect_close(&srv, &frame(true, 0, b"x", true), 1002); // continuation without start
    expect_close(&srv, &frame(false, 9, b"x", true), 1002); // fragmented ping
    expect_close(&srv, &frame(true, 9, &[b'x'; 126], true), 1002); // oversized control
    expect_close(&srv, &frame(true, 2, &[0u8; 1001], true), 1009);
    let mut two = frame(false, 1, b"a", true);
    two.extend(frame(true, 1, b"b", true));
    expect_close(&srv, &two, 1002); // new message inside a fragmented one
    expect_close(&srv, &frame(true, 8, &[3, 0xE8 - 1], true), 1002); // close code 999
}

#[test]
fn client_vanishing_mid_frame_does_not_disturb_others() {
    let srv = Server::start(1);
    let mut healthy = ws_connect(&srv, "/echo");
    for _ in 0..20 {
        let mut s = raw_ws(&srv, "/echo");
        let f = frame(true, 1, &[b'a'; 300], true);
        s.write_all(&f[..50]).unwrap();
        drop(s);
    }
    healthy
        .send(tungstenite::Message::text("still here"))
        .unwrap();
    assert_eq!(ws_next_text(&mut healthy).as_deref(), Some("still here"));
}

#[test]
fn bad_upgrades_get_400_or_426() {
    let srv = Server::start(1);
    let no_key = raw(
        &srv,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    assert_eq!(no_key.status, 400);
    let bad_version = raw(
        &srv,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n",
    )
    .unwrap();
    assert_eq!(bad_version.status, 426);
    assert_eq!(bad_version.header("Sec-WebSocket-Version"), Some("13"));
    let plain = raw(&srv, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(plain.status, 426);
}

#[test]
fn large_messages_round_trip() {
    let srv = Server::start(1);
    let mut ws = ws_connect(&srv, "/echo");
    set_timeout(&ws, Duration::from_secs(10));
    let big = "x".repeat(200_000);
    ws.send(tungstenite::Message::text(big.clone())).unwrap();
    assert_eq!(ws_next_text(&mut ws).map(|t| t.len()), Some(big.len()));
}
