//! The connection state machine without sockets: every lifecycle transition, half-close,
//! back-pressure and parked pipelined requests, over an in-memory `Socket`.

use super::*;
use crate::dialect::{HeaderValue, Response, WsRole};
use crate::proto::deflate::Codec;
use crate::proto::http::ParseLimits;
use bytes::Bytes;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::IoSlice;

/// A socket whose reads come from `input` (then WouldBlock, or EOF once `eof`) and whose
/// writes take at most `window` bytes before WouldBlock.
#[derive(Default)]
struct MemSocket {
    input: VecDeque<u8>,
    eof: bool,
    written: Vec<u8>,
    window: usize,
    write_shut: Cell<bool>,
}

impl Read for MemSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (d, s) in buf.iter_mut().zip(self.input.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

impl Write for MemSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.window == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.window);
            self.written.extend_from_slice(&b[..take]);
            self.window -= take;
            n += take;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for MemSocket {
    fn shutdown_write(&mut self) {
        self.write_shut.set(true);
    }
}

type TestConn = Conn<MemSocket, u8>;

const DATE: &[u8] = b"Sun, 06 Dec 2026 21:00:00 GMT";
const LIMITS: ParseLimits = ParseLimits {
    max_head: 8192,
    max_headers: 64,
    max_body: 1 << 20,
};
const BIG: usize = 1 << 20;

fn conn(input: &[u8]) -> (TestConn, Instant) {
    let now = Instant::now();
    let sock = MemSocket {
        input: input.iter().copied().collect(),
        window: usize::MAX,
        ..MemSocket::default()
    };
    let c = Conn::new(sock, "127.0.0.1:1".parse().unwrap(), Gen(1), now);
    (c, now)
}

fn read(c: &mut TestConn) -> ReadOutcome {
    let mut scratch = vec![0; 4096];
    c.read_available(BIG, &mut scratch).unwrap()
}

fn request(c: &mut TestConn) -> OwnedRequest {
    match c.next_request(&LIMITS, BIG, DATE) {
        HttpStep::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn ok() -> Response {
    Response::new(200, "text/plain", "ok")
}

fn parked() -> Parked {
    Parked {
        keep_alive: true,
        head_only: false,
        success_headers: &[],
    }
}

#[test]
fn keep_alive_request_answers_and_stays_open() {
    let (mut c, now) = conn(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(read(&mut c), ReadOutcome::Drained);
    assert!(c.handshake_pending);
    let r = request(&mut c);
    assert!(
        !c.handshake_pending,
        "a complete head ends the handshake window"
    );
    c.respond(&ok(), r.keep_alive(), r.head_only(), DATE);
    assert!(c.needs_flush());
    assert_eq!(c.flush(now), Next::Continue);
    assert_eq!(c.lifecycle, Lifecycle::Open);
    assert!(String::from_utf8_lossy(&c.stream.written).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn connection_close_goes_closing_then_lingering_then_reaped_on_eof() {
    let (mut c, now) = conn(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    read(&mut c);
    let r = request(&mut c);
    c.respond(&ok(), r.keep_alive(), false, DATE);
    assert_eq!(c.lifecycle, Lifecycle::Closing { deadline: None });
    assert_eq!(c.flush(now), Next::Continue);
    assert_eq!(
        c.lifecycle,
        Lifecycle::Lingering {
            until: now + LINGER
        }
    );
    assert!(
        c.stream.write_shut.get(),
        "write side shut down after the last bytes"
    );
    // Lingering discards input and is reaped on the peer's EOF.
    c.stream.input.extend(b"junk");
    c.stream.eof = true;
    assert_eq!(read(&mut c), ReadOutcome::Eof);
    assert!(c.rbuf.is_empty(), "input discarded while lingering");
    assert_eq!(
        c.after_read(ReadOutcome::Eof, BIG),
        Next::Reap(CloseReason::PeerClosed)
    );
}

#[test]
fn lingering_and_closing_deadlines() {
    let t = Timeouts {
        header: Duration::from_secs(5),
        idle: Duration::from_secs(60),
    };
    let (mut c, now) = conn(b"");
    c.close_after_flush();
    c.out.push(Bytes::from_static(b"unread"));
    c.stream.window = 0;
    assert_eq!(c.flush(now), Next::Continue, "blocked: wait for WRITABLE");
    // First sweep arms the deadline, a sweep past it drops the peer that never reads.
    assert_eq!(c.on_timeout(now, &t, DATE), Next::Continue);
    assert_eq!(
        c.lifecycle,
        Lifecycle::Closing {
            deadline: Some(now + LINGER)
        }
    );
    assert_eq!(
        c.on_timeout(now + LINGER, &t, DATE),
        Next::Reap(CloseReason::Timeout)
    );

    let (mut l, now) = conn(b"");
    l.close_after_flush();
    assert_eq!(l.flush(now), Next::Continue);
    assert!(l.is_lingering());
    assert_eq!(l.on_timeout(now, &t, DATE), Next::Continue);
    assert_eq!(
        l.on_timeout(now + LINGER, &t, DATE),
        Next::Reap(CloseReason::Timeout)
    );
}

#[test]
fn header_timeout_answers_408_and_idle_timeout_reaps() {
    let t = Timeouts {
        header: Duration::from_secs(5),
        idle: Duration::from_secs(60),
    };
    let (mut c, now) = conn(b"GET / HTTP/1.1\r\n");
    read(&mut c);
    assert!(matches!(
        c.next_request(&LIMITS, BIG, DATE),
        HttpStep::Wait { flush: false }
    ));
    assert_eq!(
        c.on_timeout(now + Duration::from_secs(4), &t, DATE),
        Next::Continue
    );
    assert_eq!(
        c.on_timeout(now + Duration::from_secs(5), &t, DATE),
        Next::Flush
    );
    assert!(c.is_closing());
    assert_eq!(c.flush(now), Next::Continue);
    assert!(String::from_utf8_lossy(&c.stream.written).contains("408 Request Timeout"));

    let (mut idle, now) = conn(b"");
    assert_eq!(
        idle.on_timeout(now + Duration::from_secs(59), &t, DATE),
        Next::Continue
    );
    assert_eq!(
        idle.on_timeout(now + Duration::from_secs(60), &t, DATE),
        Next::Reap(CloseReason::Timeout)
    );
}

#[test]
fn parked_request_holds_pipelined_ones_and_the_reply_requeues() {
    let (mut c, now) = conn(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    read(&mut c);
    let first = request(&mut c);
    assert_eq!(first.head.path.get(&first.head_bytes), b"/1");
    c.park(parked());
    assert!(c.input_blocked(BIG));
    assert!(matches!(
        c.next_request(&LIMITS, BIG, DATE),
        HttpStep::Wait { .. }
    ));
    // Budget used up while parked: not requeued (that would spin).
    assert_eq!(c.after_read(ReadOutcome::Budget, BIG), Next::Continue);
    // The answer requeues the connection for the request behind it.
    assert_eq!(c.on_reply(ok(), DATE, now), Next::Requeue);
    let second = request(&mut c);
    assert_eq!(second.head.path.get(&second.head_bytes), b"/2");
    // The requeued read finds the socket empty.
    let outcome = read(&mut c);
    assert_eq!(outcome, ReadOutcome::Drained);
    assert_eq!(c.after_read(outcome, BIG), Next::Continue);
    c.park(parked());
    assert_eq!(c.on_reply(ok(), DATE, now), Next::Flush);
    // A second answer for the same request is ignored.
    assert_eq!(c.on_reply(ok(), DATE, now), Next::Continue);
}

#[test]
fn success_headers_only_on_200() {
    const EXTRA: &[crate::dialect::Header] = &[("X-Extra", HeaderValue::Static(b"1"))];
    for (status, want) in [(200, true), (422, false)] {
        let (mut c, now) = conn(b"");
        c.park(Parked {
            success_headers: EXTRA,
            ..parked()
        });
        c.on_reply(Response::new(status, "text/plain", ""), DATE, now);
        c.flush(now);
        let text = String::from_utf8_lossy(&c.stream.written).into_owned();
        assert_eq!(text.contains("X-Extra: 1"), want, "{text}");
    }
}

#[test]
fn half_close_with_parked_request_answers_then_closes() {
    let (mut c, now) = conn(b"GET / HTTP/1.1\r\n\r\n");
    c.stream.eof = true;
    assert_eq!(read(&mut c), ReadOutcome::Eof);
    request(&mut c);
    c.park(parked());
    assert_eq!(c.after_read(ReadOutcome::Eof, BIG), Next::Continue);
    assert!(c.peer_eof);
    assert_eq!(c.lifecycle, Lifecycle::Open, "still owes the answer");
    c.on_reply(ok(), DATE, now);
    assert!(c.is_closing(), "no keep-alive after a half-close");
    assert_eq!(c.flush(now), Next::Reap(CloseReason::PeerClosed));
    assert!(String::from_utf8_lossy(&c.stream.written).contains("Connection: close"));
}

#[test]
fn eof_with_nothing_owed_reaps_at_once() {
    let (mut c, _) = conn(b"");
    c.stream.eof = true;
    assert_eq!(read(&mut c), ReadOutcome::Eof);
    assert_eq!(
        c.after_read(ReadOutcome::Eof, BIG),
        Next::Reap(CloseReason::PeerClosed)
    );
}

#[test]
fn output_back_pressure_stops_parsing_until_drained() {
    let (mut c, now) = conn(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    read(&mut c);
    request(&mut c);
    c.out.push(Bytes::from(vec![b'x'; 100]));
    assert!(matches!(
        c.next_request(&LIMITS, 50, DATE),
        HttpStep::Wait { .. }
    ));
    assert!(c.input_blocked(50));
    c.stream.window = 0;
    assert_eq!(c.flush(now), Next::Continue);
    c.stream.window = usize::MAX;
    // Drained with input left behind: run it again.
    assert_eq!(c.flush(now), Next::Requeue);
    request(&mut c);
}

#[test]
fn malformed_request_answers_and_closes() {
    let (mut c, now) = conn(b"NOT A REQUEST\r\n\r\n");
    read(&mut c);
    assert!(matches!(
        c.next_request(&LIMITS, BIG, DATE),
        HttpStep::Malformed
    ));
    assert!(c.is_closing());
    c.flush(now);
    assert!(String::from_utf8_lossy(&c.stream.written).starts_with("HTTP/1.1 400"));
}

#[test]
fn expect_continue_is_sent_once() {
    let (mut c, _) = conn(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    read(&mut c);
    assert!(matches!(
        c.next_request(&LIMITS, BIG, DATE),
        HttpStep::Wait { flush: true }
    ));
    assert!(matches!(
        c.next_request(&LIMITS, BIG, DATE),
        HttpStep::Wait { flush: false }
    ));
    c.rbuf.extend_from_slice(b"abc");
    assert_eq!(&request(&mut c).body[..], b"abc");
}

fn masked(op: crate::proto::ws::OpCode, payload: &[u8]) -> Vec<u8> {
    crate::proto::ws::encode_masked(op, payload, [1, 2, 3, 4], true)
}

#[test]
fn websocket_upgrade_keeps_pipelined_bytes_and_lends_dialect_state() {
    use crate::proto::ws::OpCode;
    let (mut c, _) = conn(b"");
    c.upgrade("accept", Some(WsRole::Dialect(7)), None);
    assert!(c.is_ws());
    c.rbuf.extend_from_slice(&masked(OpCode::Ping, b"p"));
    c.rbuf.extend_from_slice(&masked(OpCode::Text, b"hello"));
    match c.next_ws_step(1024, BIG, &mut Codec::new(0)) {
        WsStep::Message { text, payload } => {
            assert!(text);
            assert_eq!(&payload[..], b"hello");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.take_dialect_state(), Some(7));
    assert_eq!(c.take_dialect_state(), None, "lent out once");
    c.put_dialect_state(8);
    assert_eq!(c.take_dialect_state(), Some(8));
}

#[test]
fn websocket_close_and_protocol_error() {
    use crate::proto::ws::OpCode;
    let (mut c, _) = conn(b"");
    c.upgrade("accept", Some(WsRole::Echo), None);
    c.rbuf.extend_from_slice(&masked(OpCode::Text, b"echo me"));
    assert!(matches!(
        c.next_ws_step(1024, BIG, &mut Codec::new(0)),
        WsStep::Wait { flush: true }
    ));
    c.rbuf
        .extend_from_slice(&masked(OpCode::Close, &1000u16.to_be_bytes()));
    assert!(matches!(
        c.next_ws_step(1024, BIG, &mut Codec::new(0)),
        WsStep::Closed
    ));
    assert!(c.is_closing());

    let (mut bad, _) = conn(b"");
    bad.upgrade("accept", Some(WsRole::Echo), None);
    // An unmasked client frame is a protocol error: 1002.
    bad.rbuf.extend_from_slice(&[0x81, 0x01, b'x']);
    assert!(matches!(
        bad.next_ws_step(1024, BIG, &mut Codec::new(0)),
        WsStep::ProtocolError {
            code: crate::proto::ws::CloseCode::Protocol,
            inflate_too_big: false,
        }
    ));
    assert!(bad.is_closing());
}

#[test]
fn slow_consumer_is_closed_1008_after_trying_to_write() {
    let (mut c, now) = conn(b"");
    c.upgrade("accept", Some(WsRole::Dialect(0)), None);
    c.flush(now);
    let frame = Bytes::from(vec![0u8; 60]);
    // A reader that keeps up survives a burst over the cap: the socket is written first.
    assert_eq!(c.deliver(&frame, 100), Delivery::Queued);
    assert_eq!(c.deliver(&frame, 100), Delivery::Queued);
    // A reader that is really behind is closed.
    c.stream.window = 0;
    assert_eq!(c.deliver(&frame, 100), Delivery::SlowConsumer);
    assert!(c.is_closing());
    assert_eq!(c.deliver(&frame, 100), Delivery::Skipped);
}

/// A raw deflate stream as a client sends it (sync flush, the 4-byte trailer removed).
fn client_deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame with RSV1 set (a compressed message's first frame).
fn masked_rsv1(op: crate::proto::ws::OpCode, payload: &[u8], fin: bool) -> Vec<u8> {
    let mut f = crate::proto::ws::encode_masked(op, payload, [1, 2, 3, 4], fin);
    f[0] |= 0x40;
    f
}

fn agreement() -> Option<crate::proto::deflate::Agreement> {
    crate::proto::deflate::negotiate([&b"permessage-deflate; client_max_window_bits"[..]])
}

#[test]
fn deflate_upgrade_inflates_messages_and_compresses_echoes() {
    use crate::proto::ws::{decode_header, OpCode};
    let (mut c, now) = conn(b"");
    c.upgrade("accept", Some(WsRole::Echo), agreement());
    assert!(c.deflate().is_some());
    assert_eq!(c.flush(now), Next::Continue);
    let head = String::from_utf8(c.stream.written.clone()).unwrap();
    assert!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
        "{head}"
    );
    c.stream.written.clear();
    let text = "κόσμε ".repeat(100);
    let z = client_deflate(text.as_bytes());
    // In two fragments: RSV1 on the first only.
    let (a, b) = z.split_at(z.len() / 2);
    c.rbuf
        .extend_from_slice(&masked_rsv1(OpCode::Text, a, false));
    c.rbuf.extend_from_slice(&crate::proto::ws::encode_masked(
        OpCode::Continue,
        b,
        [9; 4],
        true,
    ));
    let mut codec = Codec::new(16);
    assert!(matches!(
        c.next_ws_step(1 << 16, BIG, &mut codec),
        WsStep::Wait { flush: true }
    ));
    c.flush(now);
    // The echo went out compressed; inflating it gives the text back.
    let out = c.stream.written.clone();
    let (h, n) = decode_header(&out).unwrap().unwrap();
    assert!(h.rsv1 && h.opcode == OpCode::Text);
    assert!(out.len() < text.len() / 2);
    let back = codec.inflate(&out[n..], 1 << 16).unwrap();
    assert_eq!(back, text.as_bytes());
    // A short echo stays uncompressed (threshold 16).
    c.stream.written.clear();
    c.rbuf
        .extend_from_slice(&masked_rsv1(OpCode::Binary, &client_deflate(b"hi"), true));
    c.next_ws_step(1 << 16, BIG, &mut codec);
    c.flush(now);
    assert_eq!(c.stream.written, b"\x82\x02hi");
}

#[test]
fn deflate_hostile_messages() {
    use crate::proto::ws::{CloseCode, OpCode};
    let step = |wire: Vec<u8>, deflate: bool| {
        let (mut c, _) = conn(b"");
        let a = if deflate { agreement() } else { None };
        c.upgrade("accept", Some(WsRole::Dialect(0)), a);
        c.rbuf.extend_from_slice(&wire);
        match c.next_ws_step(100_000, BIG, &mut Codec::new(0)) {
            WsStep::ProtocolError {
                code,
                inflate_too_big,
            } => {
                assert!(c.is_closing());
                Some((code, inflate_too_big))
            }
            WsStep::Message { payload, .. } => {
                assert_eq!(&payload[..], b"ok");
                None
            }
            other => panic!("{other:?}"),
        }
    };
    let bomb = client_deflate(&vec![0u8; 5_000_000]);
    assert!(bomb.len() < 10_000);
    type Case = (&'static str, Vec<u8>, bool, Option<(CloseCode, bool)>);
    let cases: Vec<Case> = vec![
        (
            "zip bomb",
            masked_rsv1(OpCode::Binary, &bomb, true),
            true,
            Some((CloseCode::Size, true)),
        ),
        (
            "no extension",
            masked_rsv1(OpCode::Text, &client_deflate(b"ok"), true),
            false,
            Some((CloseCode::Protocol, false)),
        ),
        (
            "rsv1 ping",
            masked_rsv1(OpCode::Ping, b"", true),
            true,
            Some((CloseCode::Protocol, false)),
        ),
        (
            "rsv1 close",
            masked_rsv1(OpCode::Close, b"", true),
            true,
            Some((CloseCode::Protocol, false)),
        ),
        (
            "garbage",
            masked_rsv1(OpCode::Binary, &[0xff; 8], true),
            true,
            Some((CloseCode::Invalid, false)),
        ),
        (
            "bad utf-8",
            masked_rsv1(OpCode::Text, &client_deflate(b"\xff\xfe"), true),
            true,
            Some((CloseCode::Invalid, false)),
        ),
        (
            "ok",
            masked_rsv1(OpCode::Text, &client_deflate(b"ok"), true),
            true,
            None,
        ),
        ("plain ok", masked(OpCode::Text, b"ok"), true, None),
    ];
    for (name, wire, deflate, want) in cases {
        assert_eq!(step(wire, deflate), want, "{name}");
    }
    // RSV1 on a continuation frame.
    let mut wire = masked_rsv1(OpCode::Text, &client_deflate(b"o"), false);
    wire.extend(masked_rsv1(OpCode::Continue, b"", true));
    assert_eq!(step(wire, true), Some((CloseCode::Protocol, false)));
}

/// A read that stopped at its budget may leave input in the socket with `rbuf` empty (all of
/// it consumed); edge-triggered readiness will not announce it again, so the drained flush
/// that lifts the back-pressure must requeue the connection (a stalled echo peer otherwise
/// never got the rest of its echoes).
#[test]
fn input_left_in_the_socket_behind_back_pressure_requeues_on_drain() {
    let (mut c, now) = conn(b"");
    c.out.push(Bytes::from(vec![b'x'; 100]));
    assert_eq!(c.after_read(ReadOutcome::Budget, 50), Next::Continue);
    assert!(c.rbuf.is_empty());
    assert_eq!(
        c.flush(now),
        Next::Requeue,
        "the socket may still hold input"
    );
    // Read to WouldBlock: nothing is left behind.
    assert_eq!(c.after_read(ReadOutcome::Drained, 50), Next::Continue);
    c.out.push(Bytes::from_static(b"y"));
    assert_eq!(c.flush(now), Next::Continue);
}
