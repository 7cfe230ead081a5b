//! permessage-deflate over real sockets: the negotiation in the 101, compressed echoes,
//! hostile compressed input (zip bomb 1009 and counted, RSV1 on control frames or without the
//! extension 1002, garbage 1007) next to a healthy connection, and a Pusher broadcast compressed
//! once per window size across two shards and shared by every deflate subscriber.
//!
//! The client side is written here (raw frames over `TcpStream`, flate2 for the client's
//! deflate), since tungstenite has no permessage-deflate.

mod common;
use common::pusher::{publish, APP_PATH};
use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use herald::proto::ws::{decode_header, encode_masked, OpCode};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const PMD: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A raw websocket client.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
    /// The 101's `Sec-WebSocket-Extensions`, if any.
    ext: Option<String>,
}

/// One server frame, payload inflated when RSV1 was set.
#[derive(Debug)]
struct Frame {
    op: OpCode,
    rsv1: bool,
    payload: Vec<u8>,
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(window: u8, body: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, window);
    let mut input = body.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(body.len() * 4 + 1024);
    while (d.total_in() as usize) < input.len() {
        if out.len() == out.capacity() {
            out.reserve(out.len());
        }
        let rest = &input[d.total_in() as usize..];
        d.decompress_vec(rest, &mut out, FlushDecompress::Sync)
            .unwrap();
    }
    out
}

/// Compare payloads without printing megabytes on failure.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a == b
}

impl Raw {
    fn open(target: &impl Target, path: &str, offer: Option<&str>) -> Raw {
        let mut s = target.connect();
        let ext = offer.map_or(String::new(), |o| {
            format!("Sec-WebSocket-Extensions: {o}\r\n")
        });
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{ext}\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let resp = read_response(&mut s, &mut buf, false).expect("a 101");
        assert_eq!(resp.status, 101);
        let ext = resp.header("sec-websocket-extensions").map(str::to_owned);
        Raw { s, buf, ext }
    }

    fn send_raw(&mut self, frame: &[u8]) {
        self.s.write_all(frame).unwrap();
    }

    /// A data message, compressed (RSV1) or not.
    fn send(&mut self, op: OpCode, payload: &[u8], compress: bool) {
        let frame = if compress {
            rsv1(op, &deflate(payload))
        } else {
            encode_masked(op, payload, [1, 2, 3, 4], true)
        };
        self.send_raw(&frame);
    }

    fn recv(&mut self, window: u8) -> Option<Frame> {
        loop {
            if let Ok(Some((h, n))) = decode_header(&self.buf) {
                let len = h.payload_len as usize;
                if self.buf.len() >= n + len {
                    let body: Vec<u8> = self.buf.drain(..n + len).skip(n).collect();
                    let payload = if h.rsv1 { inflate(window, &body) } else { body };
                    return Some(Frame {
                        op: h.opcode,
                        rsv1: h.rsv1,
                        payload,
                    });
                }
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(k) => self.buf.extend_from_slice(&tmp[..k]),
            }
        }
    }

    /// The close code the server sends (skipping other frames).
    fn close_code(&mut self) -> Option<u16> {
        loop {
            let f = self.recv(15)?;
            if f.op == OpCode::Close {
                return f.payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
    }

    /// Next text message as JSON.
    fn json(&mut self, window: u8) -> (Value, bool) {
        let f = self.recv(window).expect("a frame");
        assert_eq!(f.op, OpCode::Text);
        (serde_json::from_slice(&f.payload).unwrap(), f.rsv1)
    }
}

/// A masked client frame with RSV1 set.
fn rsv1(op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut f = encode_masked(op, payload, [5, 6, 7, 8], true);
    f[0] |= 0x40;
    f
}

fn deflate_server(shards: usize) -> Server {
    Server::per_shard(shards, |c| {
        c.deflate.enabled = true;
        c.deflate.min_bytes = 64;
        c.limits.max_ws_message_bytes = 1 << 20;
    })
}

#[test]
fn negotiation_in_the_101() {
    let on = deflate_server(1);
    let off = Server::start(1);
    let cases: Vec<(Option<&str>, Option<String>)> = vec![
        (None, None),
        (Some("x-webkit-deflate-frame"), None),
        (
            Some("permessage-deflate; client_max_window_bits"),
            Some(PMD.into()),
        ),
        (
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"),
            Some(format!("{PMD}; server_max_window_bits=10")),
        ),
        (
            Some("permessage-deflate; server_max_window_bits, permessage-deflate"),
            Some(PMD.into()),
        ),
        (Some("permessage-deflate; bogus"), None),
        (Some("permessage-deflate; client_max_window_bits=\"x"), None),
    ];
    for (offer, want) in cases {
        let got = Raw::open(&on, "/echo", offer).ext;
        assert_eq!(got, want, "offer {offer:?}");
        // Off (the default): never answered, whatever is offered.
        assert_eq!(Raw::open(&off, "/echo", offer).ext, None, "offer {offer:?}");
    }
}

#[test]
fn compressed_echo_round_trips() {
    let srv = deflate_server(1);
    let mut ws = Raw::open(
        &srv,
        "/echo",
        Some("permessage-deflate; client_max_window_bits"),
    );
    assert_eq!(ws.ext.as_deref(), Some(PMD));
    let text = "{\"event\":\"hello\",\"data\":\"".to_string() + &"wörld ".repeat(500) + "\"}";
    ws.send(OpCode::Text, text.as_bytes(), true);
    let f = ws.recv(15).unwrap();
    assert!(f.rsv1, "a long echo goes out compressed");
    assert!(
        same(&f.payload, text.as_bytes()),
        "{} bytes",
        f.payload.len()
    );
    // Uncompressed input is fine too; a short message comes back plain.
    ws.send(OpCode::Binary, b"tiny", false);
    let f = ws.recv(15).unwrap();
    assert!(!f.rsv1);
    assert_eq!((f.op, &f.payload[..]), (OpCode::Binary, &b"tiny"[..]));
    // Fragmented compressed message: RSV1 on the first frame only.
    let z = deflate(text.as_bytes());
    let (a, b) = z.split_at(z.len() / 3);
    let mut first = encode_masked(OpCode::Text, a, [1; 4], false);
    first[0] |= 0x40;
    ws.send_raw(&first);
    ws.send_raw(&encode_masked(OpCode::Ping, b"p", [2; 4], true));
    ws.send_raw(&encode_masked(OpCode::Continue, b, [3; 4], true));
    let pong = ws.recv(15).unwrap();
    assert_eq!((pong.op, pong.rsv1), (OpCode::Pong, false));
    let f = ws.recv(15).unwrap();
    assert!(
        same(&f.payload, text.as_bytes()),
        "{} bytes",
        f.payload.len()
    );
    // A client that asked for a 9-bit server window gets frames it can inflate with 9 bits.
    let mut w9 = Raw::open(
        &srv,
        "/echo",
        Some("permessage-deflate; server_max_window_bits=9"),
    );
    assert_eq!(w9.ext, Some(format!("{PMD}; server_max_window_bits=9")));
    w9.send(OpCode::Text, text.as_bytes(), true);
    let f = w9.recv(9).unwrap();
    assert!(f.rsv1);
    assert!(
        same(&f.payload, text.as_bytes()),
        "{} bytes",
        f.payload.len()
    );
}

#[test]
fn hostile_compressed_input_closes_only_its_connection() {
    let srv = deflate_server(1);
    let offer = Some("permessage-deflate");
    let mut healthy = Raw::open(&srv, "/echo", offer);
    let bomb = deflate(&vec![0u8; 50 << 20]);
    assert!(
        bomb.len() < 100_000,
        "a 50 MiB zip bomb in {} bytes",
        bomb.len()
    );
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("zip bomb", offer, rsv1(OpCode::Binary, &bomb), 1009),
        (
            "RSV1 without the extension",
            None,
            rsv1(OpCode::Text, &deflate(b"hi")),
            1002,
        ),
        ("RSV1 on a ping", offer, rsv1(OpCode::Ping, b""), 1002),
        (
            "RSV1 on a close",
            offer,
            rsv1(OpCode::Close, &[3, 232]),
            1002,
        ),
        (
            "garbage deflate data",
            offer,
            rsv1(OpCode::Binary, &[0xff; 16]),
            1007,
        ),
        (
            "invalid UTF-8 once inflated",
            offer,
            rsv1(OpCode::Text, &deflate(b"\xc3\x28 not utf-8")),
            1007,
        ),
    ];
    let bombs_before = srv.stat(|s| {
        s.ws_inflate_too_big
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    for (name, offer, frame, code) in cases {
        let mut ws = Raw::open(&srv, "/echo", offer);
        ws.send_raw(&frame);
        assert_eq!(ws.close_code(), Some(code), "{name}");
        // The healthy neighbour is undisturbed.
        healthy.send(OpCode::Text, name.as_bytes(), true);
        assert_eq!(healthy.recv(15).unwrap().payload, name.as_bytes(), "{name}");
    }
    let bombs = srv.stat(|s| {
        s.ws_inflate_too_big
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    assert_eq!(bombs - bombs_before, 1, "the zip bomb is counted");
    let tok = token();
    let metrics = request(
        &srv,
        "GET",
        "/metrics",
        &[("X-Channelstream-Secret", &tok)],
        b"",
    )
    .text();
    assert!(
        metrics.contains("\nherald_ws_inflate_too_big_total 1\n"),
        "{metrics}"
    );
}

/// Subscribe a raw Pusher client to `channel`, returning once the owner confirmed.
fn pusher_subscriber(target: &impl Target, offer: Option<&str>, channel: &str) -> Raw {
    let mut ws = Raw::open(target, APP_PATH, offer);
    let (hello, _) = ws.json(15);
    assert_eq!(hello["event"], "pusher:connection_established");
    let sub = json!({"event":"pusher:subscribe","data":{"channel":channel}}).to_string();
    ws.send(OpCode::Text, sub.as_bytes(), offer.is_some());
    let (ok, _) = ws.json(15);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    ws
}

#[test]
fn pusher_broadcast_is_compressed_once_per_window_and_shared() {
    use std::sync::atomic::Ordering::Relaxed;
    let srv = deflate_server(2);
    let channel = "deflate-room";
    let offers: [(Option<&str>, u8); 3] = [
        (Some("permessage-deflate; client_max_window_bits"), 15),
        (Some("permessage-deflate; server_max_window_bits=10"), 10),
        (None, 15),
    ];
    // Each kind of subscriber on each shard, twice.
    let mut subs = Vec::new();
    for shard in 0..2 {
        for (offer, window) in offers {
            for _ in 0..2 {
                let ws = pusher_subscriber(&srv.shard(shard), offer, channel);
                subs.push((ws, offer.is_some(), window));
            }
        }
    }
    let made_before = srv.stat(|s| s.ws_deflated.load(Relaxed));
    let text = "Ab ".repeat(2_000);
    let body = json!({"name":"big","channels":[channel],"data":text});
    assert_eq!(publish(&srv.shard(0), &body).status, 200);
    for (ws, deflated, window) in subs.iter_mut() {
        let (ev, rsv1) = ws.json(*window);
        assert_eq!(ev["event"], "big");
        assert_eq!(ev["data"], text.as_str());
        assert_eq!(
            rsv1, *deflated,
            "compressed exactly for deflate subscribers"
        );
    }
    // Two windows (15 and 10): two compressions, over both shards and eight deflate sockets.
    assert_eq!(srv.stat(|s| s.ws_deflated.load(Relaxed)) - made_before, 2);
    assert!(srv.stat(|s| s.ws_deflated_deliveries.load(Relaxed)) >= 8);
    // A short event stays plain for everyone.
    let body = json!({"name":"small","channels":[channel],"data":"x"});
    assert_eq!(publish(&srv.shard(1), &body).status, 200);
    for (ws, _, window) in subs.iter_mut() {
        let (ev, rsv1) = ws.json(*window);
        assert_eq!(ev["event"], "small");
        assert!(!rsv1);
    }
}
