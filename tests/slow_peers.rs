//! Slow and malicious peers (Herald issue 7): slowloris, idle and half-closed connections,
//! readers that never read. For each: the server keeps serving others promptly, its memory
//! stays bounded, and the offender is closed by the policy the README states ("Limits and what
//! happens at each").
//!
//! How "memory stays bounded" is measured without peeking inside the server: the offending
//! client gets small kernel buffers (and so do the server's accepted sockets, via
//! `Server::per_shard_buffers`), then writes until a write blocks. A server that applies
//! back-pressure stops reading, so the client can only write what fits in the buffers in
//! between (a few hundred KiB here); a server that queues without bound lets it write
//! everything. CPU is read from /proc for the shard threads, to catch busy loops.
//!
//! Tests in this file take a process-wide lock: they open thousands of sockets, measure CPU
//! and RSS of the whole process, and must not overlap one another.

mod common;
use common::*;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kernel buffer size for sockets of peers that never read (the kernel doubles it).
const SMALL_BUF: usize = 32 * 1024;

/// Bytes a non-reading peer may push into a server that applies back-pressure: its own send
/// buffer, the server's receive buffer, the server's read buffer and output cap, the server's
/// send buffer and its own receive buffer — each well under 256 KiB in these tests.
const BOUNDED: usize = 2 * 1024 * 1024;

/// What a never-reading peer gets to write at most; far above `BOUNDED`.
const FLOOD: usize = 24 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// (a) Slowloris

/// A healthy client's request latencies while something else goes on.
struct Prober {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Duration>>,
}

impl Prober {
    /// Keep-alive `OPTIONS` requests on every shard, back to back with a 20 ms pause, plus an
    /// echo round trip on a websocket, each timed.
    fn start(srv: &Server) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let targets: Vec<At> = (0..srv.shard_addrs.len()).map(|i| srv.shard(i)).collect();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut conns: Vec<(TcpStream, Vec<u8>)> =
                targets.iter().map(|t| (t.connect(), Vec::new())).collect();
            let mut echo = ws_connect(&targets[0], "/echo");
            set_timeout(&echo, Duration::from_secs(5));
            let mut lat = Vec::new();
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for (s, buf) in conns.iter_mut() {
                    let t = Instant::now();
                    s.write_all(b"OPTIONS /probe HTTP/1.1\r\nHost: x\r\n\r\n")
                        .expect("healthy write");
                    let r = read_response(s, buf, false).expect("healthy response");
                    assert_eq!(r.status, 200);
                    lat.push(t.elapsed());
                }
                n += 1;
                let t = Instant::now();
                let text = format!("probe {n}");
                echo.send(tungstenite::Message::text(text.clone()))
                    .expect("echo send");
                assert_eq!(ws_next_text(&mut echo).as_deref(), Some(text.as_str()));
                lat.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            lat
        });
        Prober { stop, handle }
    }

    fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("prober thread")
    }
}

enum Loris {
    Dribbling {
        sent: usize,
        write_err: Option<String>,
    },
    /// Got bytes back; waiting for EOF.
    Answered(Vec<u8>),
    Closed(Vec<u8>),
}

#[test]
fn slowloris_thousands_of_dribbling_connections_get_408_and_others_stay_fast() {
    let _g = serial();
    const N: usize = 2000;
    // The production listener path (SO_REUSEPORT, backlog 4096), two shards.
    let srv = Server::with(|c| {
        c.shards = 2;
        c.limits.header_timeout = Duration::from_secs(1);
    });
    let base0 = srv.open_connections();
    let prober = Prober::start(&srv);
    // The prober's 3 connections are up once its first request went through.
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        >= base0 + 3));
    let base_open = srv.open_connections();
    let rss_before = rss_bytes();

    // Three quarters dribble a request head that never ends, a quarter send a complete head
    // and then dribble a body that never ends: both are cut by the header timeout.
    let head: Vec<u8> = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'a', 4096))
        .collect();
    let body_head = b"POST /connect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    let started = Instant::now();
    let mut conns: Vec<(TcpStream, bool, Loris)> = (0..N)
        .map(|i| {
            let mut s = srv.connect();
            let body = i % 4 == 3;
            if body {
                s.write_all(body_head).expect("head");
            }
            s.set_nonblocking(true).expect("nonblocking");
            (
                s,
                body,
                Loris::Dribbling {
                    sent: 0,
                    write_err: None,
                },
            )
        })
        .collect();
    let connected_in = started.elapsed();

    let mut peak_open = 0;
    let mut peak_rss = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tmp = [0u8; 4096];
    loop {
        let mut closed = 0;
        for (s, body, state) in conns.iter_mut() {
            // Read first: a connection that has its answer is not written to any more.
            loop {
                match s.read(&mut tmp) {
                    Ok(0) => {
                        *state =
                            Loris::Closed(match std::mem::replace(state, Loris::Closed(vec![])) {
                                Loris::Answered(b) | Loris::Closed(b) => b,
                                Loris::Dribbling { sent, write_err } => format!(
                                "EOF without a response at {:?}, after {sent} bytes; {write_err:?}",
                                started.elapsed()
                            )
                                .into_bytes(),
                            });
                        break;
                    }
                    Ok(n) => match state {
                        Loris::Dribbling { .. } => *state = Loris::Answered(tmp[..n].to_vec()),
                        Loris::Answered(b) => b.extend_from_slice(&tmp[..n]),
                        Loris::Closed(_) => {}
                    },
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        *state =
                            Loris::Closed(match std::mem::replace(state, Loris::Closed(vec![])) {
                                Loris::Answered(b) | Loris::Closed(b) => b,
                                Loris::Dribbling { .. } => {
                                    format!("{e} without a response at {:?}", started.elapsed())
                                        .into_bytes()
                                }
                            });
                        break;
                    }
                }
            }
            if let Loris::Dribbling { sent, write_err } = state {
                let byte = if *body {
                    b'x'
                } else {
                    head[*sent % head.len()]
                };
                match s.write(&[byte]) {
                    Ok(_) => *sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // Recorded for the failure message; the read above notices the end.
                    Err(e) => *write_err = Some(format!("write: {e} at {:?}", started.elapsed())),
                }
            }
            if matches!(state, Loris::Closed(_)) {
                closed += 1;
            }
        }
        peak_open = peak_open.max(srv.open_connections());
        peak_rss = peak_rss.max(rss_bytes());
        if closed == N || Instant::now() > deadline {
            break;
        }
        // Pace of the dribble: one byte per connection every 50 ms.
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_closed_in = started.elapsed();
    let lat = prober.finish();

    // Every slow connection got exactly a 408 and was closed.
    let mut wrong = Vec::new();
    for (i, (_, body, state)) in conns.iter().enumerate() {
        match state {
            Loris::Closed(b) if b.starts_with(b"HTTP/1.1 408 Request Timeout\r\n") => {}
            Loris::Closed(b) => wrong.push(format!(
                "#{i} (body={body}): {:?}",
                String::from_utf8_lossy(b)
            )),
            Loris::Answered(b) => wrong.push(format!(
                "#{i} (body={body}) not closed after {:?}",
                String::from_utf8_lossy(b)
            )),
            Loris::Dribbling { sent, .. } => {
                wrong.push(format!("#{i} (body={body}) no answer after {sent} bytes"))
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {N} slow connections misbehaved, e.g.:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(conns);
    // The server's side is gone too (it closes after its lingering close sees our EOF), and
    // so are the prober's connections.
    assert!(
        wait_until(Duration::from_secs(5), || srv.open_connections() == base0),
        "open connections {} (baseline {base0})",
        srv.open_connections()
    );
    assert!(srv.stat(|s| s.timeouts.load(Ordering::Relaxed)) >= N as u64);

    let max = lat.iter().max().copied().unwrap_or_default();
    let mut sorted = lat.clone();
    sorted.sort();
    let p50 = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "slowloris: {N} connections in {connected_in:?}, all answered and closed after \
         {all_closed_in:?}; peak open {peak_open}; RSS +{} KiB at peak ({} B per slow \
         connection); healthy: {} requests, p50 {p50:?}, max {max:?}",
        peak_rss.saturating_sub(rss_before) / 1024,
        peak_rss.saturating_sub(rss_before) / N as u64,
        lat.len()
    );
    assert!(
        peak_open >= base_open + N as u64 / 2,
        "the slow peers were connected"
    );
    assert!(
        lat.len() >= 20,
        "the healthy client kept going: {}",
        lat.len()
    );
    assert!(
        max < Duration::from_millis(500),
        "healthy request took {max:?} during the slowloris"
    );
    // Bounded memory: a slow connection costs about what it has sent (reads go through the
    // shard's scratch buffer), not a read buffer each: ~1 KiB here including this test's own
    // bookkeeping, against ~17 KiB with a 16 KiB buffer per connection.
    assert!(
        peak_rss.saturating_sub(rss_before) < 4 * 1024 * N as u64,
        "RSS grew by {} MiB",
        peak_rss.saturating_sub(rss_before) >> 20
    );
}

// ---------------------------------------------------------------------------------------------
// (b) Idle and half-open/half-closed connections

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let _g = serial();
    let srv = Server::per_shard(2, |c| {
        c.limits.keep_alive_timeout = Duration::from_secs(1);
        c.limits.header_timeout = Duration::from_secs(1);
    });
    let mut echo = ws_connect(&srv.shard(0), "/echo");
    set_timeout(&echo, Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        == 1));
    // 300 connections that never send a byte, 100 that made one request and went quiet.
    let mut silent: Vec<TcpStream> = (0..300).map(|i| srv.shard(i % 2).connect()).collect();
    let mut quiet: Vec<(TcpStream, Vec<u8>)> =
        (0..100).map(|i| served(&srv.shard(i % 2))).collect();
    let t0 = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || srv
        .open_connections()
        == 1));
    let closed_in = t0.elapsed();
    // Each was closed cleanly and without a word (nothing was asked, so nothing is answered).
    for s in silent.iter_mut().chain(quiet.iter_mut().map(|(s, _)| s)) {
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0, "{rest:?}");
    }
    eprintln!("400 idle connections closed {closed_in:?} after the last one went idle");
    assert!(
        closed_in >= Duration::from_millis(500),
        "not before the timeout"
    );
    // Websockets are not HTTP keep-alive connections: the idle echo socket is still served.
    echo.send(tungstenite::Message::text("still here")).unwrap();
    assert_eq!(ws_next_text(&mut echo).as_deref(), Some("still here"));
}

#[test]
fn idle_connection_with_default_idle_timeout_is_not_closed_early() {
    let _g = serial();
    let srv = Server::with(|c| c.limits.header_timeout = Duration::from_millis(300));
    // A connection that sends nothing is idle, not a slow header: the idle timeout (75 s)
    // applies, not the 300 ms header timeout.
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_millis(1200))).ok();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
        other => panic!("idle connection answered or closed early: {other:?}"),
    }
    s.write_all(b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 200);
}

/// A client that sends its request and then shuts down its sending side (`shutdown(SHUT_WR)`,
/// as `nc -q0` or a `printf | nc` pipeline does) is still owed the answer.
fn half_closed(t: &impl Target, request: &[u8]) -> Option<Resp> {
    let mut s = t.connect();
    s.write_all(request).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, false)
}

#[test]
fn half_closed_client_gets_the_answer_to_a_front_request() {
    let _g = serial();
    let srv = Server::per_shard(2, |_| {});
    for shard in 0..2 {
        let r = half_closed(&srv.shard(shard), b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.map(|r| r.status), Some(200), "shard {shard}");
    }
}

#[test]
fn half_closed_client_gets_the_answer_to_a_model_request() {
    let _g = serial();
    let srv = Server::per_shard(2, |_| {});
    let body = br#"{"info": {"channels": []}}"#;
    let req = format!(
        "POST /info HTTP/1.1\r\nHost: x\r\nX-Channelstream-Secret: {}\r\nContent-Length: {}\r\n\r\n",
        token(),
        body.len()
    );
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // Shard 0 owns the model and answers inline; shard 1 parks the request until the model's
    // reply comes back through its inbox — the EOF must not tear the connection down first.
    for shard in 0..2 {
        let r = half_closed(&srv.shard(shard), &bytes);
        assert_eq!(r.map(|r| r.status), Some(200), "shard {shard}");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Readers that never read

/// A publish of `n` with a payload of `size` bytes to `channel`.
fn publish_big(t: &impl Target, channel: &str, n: usize, size: usize) {
    cs_publish(t, channel, &json!({"n": n, "pad": "p".repeat(size)}));
}

/// The `n` of a delivered item.
fn item_n(item: &serde_json::Value) -> Option<u64> {
    item["message"]["n"].as_u64()
}

/// Output cap per connection in the stalled-reader tests.
const CAP: usize = 256 * 1024;

/// Sets up a busy channel with a healthy subscriber (reading in a thread) and a stalled one
/// that never reads; publishes `count` messages of `size` bytes. Returns the server, the
/// stalled socket, the healthy subscriber and what it received, in order.
///
/// The publisher never runs more than 8 messages ahead of the healthy reader (a window, not
/// a sleep), so the healthy subscriber's queue stays far below the cap however slowly this
/// debug-built test parses its JSON: only the stalled one can be a slow consumer.
fn busy_channel_with_a_stalled_reader(
    count: usize,
    size: usize,
) -> (Server, TcpStream, Ws, Vec<u64>) {
    assert!(8 * (size + 512) < CAP / 2);
    let srv = Server::per_shard_buffers(2, SMALL_BUF, SMALL_BUF, |c| {
        c.limits.max_queued_bytes = CAP;
    });
    // Stalled subscriber on shard 1 with a tiny receive buffer; it never reads.
    let id = cs_connect(&srv.shard(1), "stalled", &["busy"]);
    let stalled = {
        let mut s = connect_small(&srv.shard(1), 4096, 4096);
        s.write_all(&upgrade_request(&format!("/ws?conn_id={id}")))
            .unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false).expect("101");
        assert_eq!(r.status, 101);
        s
    };
    // Healthy subscriber on shard 0, reading everything in a thread.
    let mut healthy = cs_subscriber(&srv.shard(0), "healthy", &["busy"]);
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < count {
            match cs_next_item(&mut healthy) {
                Some(item) => got.push(item_n(&item).unwrap_or(u64::MAX)),
                None => break,
            }
            seen.store(got.len(), Ordering::Release);
        }
        seen.store(usize::MAX, Ordering::Release);
        (healthy, got)
    });
    for n in 0..count {
        assert!(wait_until(Duration::from_secs(10), || {
            progress.load(Ordering::Acquire).saturating_add(8) >= n
        }));
        publish_big(&srv.shard(n % 2), "busy", n, size);
    }
    let (healthy, got) = reader.join().expect("healthy reader");
    // Publishing connections are gone once the server saw their EOF; only the two
    // subscribers remain.
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        == 2));
    (srv, stalled, healthy, got)
}

#[test]
fn stalled_subscriber_is_cut_while_the_healthy_one_gets_everything() {
    let _g = serial();
    let (count, size) = (300, 8 * 1024);
    let (srv, mut stalled, _healthy, got) = busy_channel_with_a_stalled_reader(count, size);
    assert_eq!(
        got,
        (0..count as u64).collect::<Vec<_>>(),
        "healthy subscriber: every message, in order"
    );
    let closed = srv.stat(|s| s.closed_slow_consumer.load(Ordering::Relaxed));
    assert_eq!(closed, 1, "exactly the stalled subscriber was cut");
    // When the stalled peer finally reads, its stream ends: far less than was published
    // reaches it, then EOF.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut all = Vec::new();
    stalled.read_to_end(&mut all).expect("EOF, not a timeout");
    assert!(all.len() < count * size / 2, "{} bytes", all.len());
    eprintln!(
        "stalled subscriber: {} bytes of {count} x {size} B messages reached it before EOF",
        all.len()
    );
}

#[test]
fn stalled_subscriber_sees_whole_frames_then_close_1008() {
    let _g = serial();
    let (count, size) = (300, 8 * 1024);
    let (_srv, mut stalled, _healthy, got) = busy_channel_with_a_stalled_reader(count, size);
    assert_eq!(got.len(), count);
    // When the stalled peer finally reads: a prefix of the messages in order, each frame
    // whole, then close 1008 "slow consumer", then the end of the TCP stream. (Clearing the
    // output queue must keep the rest of a frame that was partly written, or drop the
    // connection without a close frame; appending the close frame mid-frame corrupts the
    // stream: the client reads the close bytes as payload, then hits EOF.)
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let close = loop {
        match ws_read_frame(&mut stalled) {
            WsRead::Frame(true, 1, p) => {
                let v: serde_json::Value = serde_json::from_slice(&p).expect("JSON frame");
                if let Some(item) = v.as_array().and_then(|a| a.first()) {
                    seen.push(item_n(item).unwrap_or(u64::MAX));
                }
            }
            WsRead::Frame(true, 8, p) => break p,
            other => panic!(
                "stalled reader got {other:?} after {} whole messages",
                seen.len()
            ),
        }
    };
    assert_eq!(close_code(&close), Some(1008));
    assert_eq!(&close[2..], b"slow consumer");
    assert_eq!(seen, (0..seen.len() as u64).collect::<Vec<_>>());
    assert_eq!(ws_read_frame(&mut stalled), WsRead::Eof);
}

#[test]
fn stalled_subscriber_that_never_reads_is_released() {
    let _g = serial();
    let (srv, stalled, _healthy, got) = busy_channel_with_a_stalled_reader(200, 8 * 1024);
    assert_eq!(got.len(), 200);
    assert_eq!(
        srv.stat(|s| s.closed_slow_consumer.load(Ordering::Relaxed)),
        1
    );
    // The server decided to close it; it must not hold the socket (and its send buffer)
    // for as long as the peer chooses not to read. Only the healthy subscriber stays.
    let released = wait_until(Duration::from_secs(15), || srv.open_connections() == 1);
    assert!(
        released,
        "open connections still {} 15 s after the slow-consumer close",
        srv.open_connections()
    );
    drop(stalled);
}

/// An echo server, a healthy echo client and a peer that floods 1 KiB messages without ever
/// reading the echoes; returns them once the flooder's writes block.
fn stalled_echo_peer() -> (Server, Ws, TcpStream, usize) {
    let srv = Server::per_shard_buffers(1, SMALL_BUF, SMALL_BUF, |c| {
        c.limits.max_queued_bytes = 64 * 1024;
        c.limits.max_ws_message_bytes = 64 * 1024;
    });
    let healthy = ws_connect(&srv, "/echo");
    set_timeout(&healthy, Duration::from_secs(5));
    let mut s = connect_small(&srv, SMALL_BUF, SMALL_BUF);
    s.write_all(&upgrade_request("/echo")).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 101);
    let frame = ws_frame(true, 1, &[b'e'; 1024], true);
    let written = write_until_blocked(&mut s, &frame, FLOOD, Duration::from_secs(1));
    (srv, healthy, s, written)
}

fn echo_round_trips(healthy: &mut Ws, n: usize) {
    for i in 0..n {
        let text = format!("healthy {i}");
        healthy
            .send(tungstenite::Message::text(text.clone()))
            .unwrap();
        assert_eq!(ws_next_text(healthy).as_deref(), Some(text.as_str()));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn echo_peer_that_never_reads_is_throttled() {
    let _g = serial();
    let (_srv, mut healthy, mut s, written) = stalled_echo_peer();
    eprintln!("echo flood: the non-reading peer could write {written} bytes");
    // Echo back-pressure: the server stops reading a peer whose replies pile up.
    assert!(
        written < BOUNDED,
        "{written} bytes accepted without being read"
    );
    echo_round_trips(&mut healthy, 5);
    // Once it reads, it gets its echoes back, whole and in order.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..(written / 1032).min(200) {
        match ws_read_frame(&mut s) {
            WsRead::Frame(true, 1, p) => assert_eq!(p, vec![b'e'; 1024]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn echo_peer_that_never_reads_costs_no_cpu() {
    let _g = serial();
    let (_srv, mut healthy, _s, written) = stalled_echo_peer();
    assert!(written < BOUNDED, "{written}");
    // Stalled now. The shard must sleep in epoll, not spin, while it waits for the peer.
    let cpu0 = threads_cpu("herald-shard");
    let t0 = Instant::now();
    echo_round_trips(&mut healthy, 20);
    let (cpu, wall) = (threads_cpu("herald-shard") - cpu0, t0.elapsed());
    eprintln!("shard CPU while the echo peer is stalled: {cpu:?} over {wall:?}");
    assert!(
        cpu < wall / 4,
        "shard burned {cpu:?} of CPU in {wall:?} waiting for a stalled peer"
    );
}

#[test]
fn parked_request_with_a_pipelined_flood_costs_no_cpu() {
    let _g = serial();
    let srv = Server::per_shard_buffers(1, SMALL_BUF, SMALL_BUF, |c| {
        c.limits.max_head_bytes = 4096;
        c.limits.max_body_bytes = 4096;
    });
    // A long poll parks its request for up to 5 s (spec §5.10); the client keeps sending.
    let id = cs_connect(&srv, "poller", &["quiet"]);
    let mut s = connect_small(&srv, SMALL_BUF, SMALL_BUF);
    s.write_all(format!("GET /listen?conn_id={id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let filler = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
    let written = write_until_blocked(&mut s, filler, FLOOD, Duration::from_millis(500));
    assert!(written < BOUNDED, "{written}");
    let cpu0 = threads_cpu("herald-shard");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, wall) = (threads_cpu("herald-shard") - cpu0, t0.elapsed());
    eprintln!("shard CPU while a parked request has a full read buffer: {cpu:?} over {wall:?}");
    assert!(cpu < wall / 4, "shard burned {cpu:?} of CPU in {wall:?}");
}

#[test]
fn ping_flood_from_a_subscriber_that_never_reads_is_bounded() {
    let _g = serial();
    let srv = Server::per_shard_buffers(1, SMALL_BUF, SMALL_BUF, |c| {
        c.limits.max_queued_bytes = 64 * 1024;
    });
    let id = cs_connect(&srv, "pinger", &["room"]);
    let mut s = connect_small(&srv, SMALL_BUF, SMALL_BUF);
    s.write_all(&upgrade_request(&format!("/ws?conn_id={id}")))
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 101);
    let ping = ws_frame(true, 9, &[b'p'; 125], true);
    let rss0 = rss_bytes();
    let written = write_until_blocked(&mut s, &ping, FLOOD, Duration::from_secs(1));
    eprintln!(
        "ping flood: {written} bytes written without reading, RSS +{} KiB",
        rss_bytes().saturating_sub(rss0) / 1024
    );
    // Either back-pressure (the writes block) or the slow-consumer close (the writes fail):
    // both bound what the server holds for this peer.
    assert!(
        written < BOUNDED,
        "{written} bytes of pings accepted, pongs unread"
    );
}

#[test]
fn pipelining_client_that_never_reads_is_bounded() {
    let _g = serial();
    let srv = Server::per_shard_buffers(1, SMALL_BUF, SMALL_BUF, |c| {
        c.limits.max_queued_bytes = 64 * 1024;
        c.limits.max_head_bytes = 4096;
        c.limits.max_body_bytes = 4096;
    });
    let mut s = connect_small(&srv, SMALL_BUF, SMALL_BUF);
    // Each 31-byte request earns a ~450-byte response (CORS headers): a 15x amplifier.
    let req = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
    let rss0 = rss_bytes();
    let written = write_until_blocked(&mut s, req, 4 * 1024 * 1024, Duration::from_secs(1));
    eprintln!(
        "pipelining without reading: {written} bytes of requests accepted, RSS +{} KiB",
        rss_bytes().saturating_sub(rss0) / 1024
    );
    assert!(
        written < BOUNDED,
        "{written} bytes of requests accepted, answers unread"
    );
}

// ---------------------------------------------------------------------------------------------
// Connection limit

const OPTIONS: &[u8] = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A keep-alive connection answered once, so the server surely holds it.
fn served(target: &impl Target) -> (TcpStream, Vec<u8>) {
    let mut s = target.connect();
    let mut buf = Vec::new();
    assert_eq!(ask(&mut s, &mut buf), 200);
    (s, buf)
}

/// One more request on a held connection; its status.
fn ask(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    s.write_all(OPTIONS).unwrap();
    read_response(s, buf, false).expect("answer").status
}

/// The server accepts a connection and closes it without a byte (refused over a limit).
fn assert_refused(target: &impl Target) {
    let mut extra = target.connect();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(OPTIONS);
    let mut rest = Vec::new();
    let n = extra.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!((n, rest.len()), (0, 0), "served past the limit");
}

#[test]
fn connections_over_the_limit_are_closed_at_once_and_counted() {
    let _g = serial();
    let srv = Server::with(|c| c.limits.max_connections_per_shard = 20);
    let mut held: Vec<(TcpStream, Vec<u8>)> = (0..20).map(|_| served(&srv)).collect();
    // The 21st is accepted by the kernel, then closed by the server without a byte.
    assert_refused(&srv);
    assert_eq!(
        srv.stat(|s| s.refused_over_limit.load(Ordering::Relaxed)),
        1
    );
    // The held ones are unaffected.
    for (s, buf) in held.iter_mut() {
        assert_eq!(ask(s, buf), 200);
    }
    // One leaves; a newcomer gets in.
    held.pop();
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        == 19));
    assert_eq!(raw(&srv, OPTIONS).expect("served").status, 200);
}

#[test]
fn the_total_connection_limit_spans_shards() {
    let _g = serial();
    let srv = Server::per_shard(2, |c| c.limits.max_connections_total = 4);
    // Two on each shard.
    let mut held: Vec<(TcpStream, Vec<u8>)> = (0..4).map(|i| served(&srv.shard(i % 2))).collect();
    for shard in 0..2 {
        assert_refused(&srv.shard(shard));
    }
    assert_eq!(
        srv.stat(|s| s.refused_over_limit.load(Ordering::Relaxed)),
        2
    );
    held.pop();
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        == 3));
    assert_eq!(raw(&srv.shard(1), OPTIONS).expect("served").status, 200);
}

/// Connections that have not sent a whole request head yet (a slowloris, or websocket
/// clients mid-handshake) are capped per shard; served connections do not count.
#[test]
fn pending_handshakes_over_the_limit_are_refused_and_counted() {
    let _g = serial();
    let srv = Server::with(|c| c.limits.max_pending_handshakes = 3);
    // A served keep-alive connection is not pending.
    let (mut kept, mut kbuf) = served(&srv);
    // Three dribblers: each sends part of a head and stalls.
    let mut dribblers: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = srv.connect();
            s.write_all(&OPTIONS[..OPTIONS.len() - 2]).unwrap();
            s
        })
        .collect();
    // Once the server holds all three, a fourth is accepted and closed without a byte.
    assert!(wait_until(Duration::from_secs(5), || srv
        .open_connections()
        == 4));
    assert_refused(&srv);
    assert_eq!(
        srv.stat(|s| s.refused_pending_handshakes.load(Ordering::Relaxed)),
        1
    );
    // The served connection still works while the limit is reached.
    assert_eq!(ask(&mut kept, &mut kbuf), 200);
    // One dribbler finishes its head: it is answered, and a newcomer gets in again.
    let mut d = dribblers.pop().unwrap();
    d.write_all(b"\r\n").unwrap();
    let mut dbuf = Vec::new();
    assert_eq!(read_response(&mut d, &mut dbuf, false).unwrap().status, 200);
    assert_eq!(
        raw(&srv, OPTIONS)
            .expect("served after a slot freed")
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Bursts

/// One `POST /message` may carry thousands of items (up to the 1 MiB body limit); the model
/// delivers them all in one turn, before the shard flushes anything. A subscriber that reads
/// as fast as it can must still get every one: the slow-consumer cap is for peers that do
/// not read, not for a burst that is larger than the cap.
#[test]
fn one_large_batch_does_not_cut_a_reader_that_keeps_up() {
    let _g = serial();
    let srv = Server::per_shard(2, |_| {});
    let count = 4000;
    // A reader on the model shard (deliveries applied inline, in the model's turn) and one on
    // the other shard (deliveries arrive through its inbox).
    let readers: Vec<_> = (0..2)
        .map(|shard| {
            let mut sub = cs_subscriber(&srv.shard(shard), &format!("reader{shard}"), &["burst"]);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < count {
                    match cs_next_item(&mut sub) {
                        Some(item) => got.push(item_n(&item).unwrap_or(u64::MAX)),
                        None => break,
                    }
                }
                got
            })
        })
        .collect();
    let items: Vec<serde_json::Value> = (0..count)
        .map(|n| json!({"channel": "burst", "user": "u", "message": {"n": n, "pad": "x".repeat(100)}}))
        .collect();
    let r = api(&srv.shard(1), "POST", "/message", &json!(items));
    assert_eq!(r.status, 200);
    let got: Vec<Vec<u64>> = readers
        .into_iter()
        .map(|h| h.join().expect("reader"))
        .collect();
    let cut = srv.stat(|s| s.closed_slow_consumer.load(Ordering::Relaxed));
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(
        (lens.clone(), cut),
        (vec![count, count], 0),
        "readers on shards 0 and 1 got {lens:?} of {count}; {cut} cut as slow consumers"
    );
    for g in got {
        assert_eq!(g, (0..count as u64).collect::<Vec<_>>());
    }
}
