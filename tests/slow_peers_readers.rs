//! Slow and malicious peers (Herald issue 7), part 2: readers that never read, and bursts
//! larger than the output cap to a reader that keeps up. For each: the server keeps serving
//! others promptly, its memory stays bounded, and the offender is closed by the policy the
//! README states ("Limits and what happens at each").
//!
//! How "memory stays bounded" is measured without peeking inside the server: the offending
//! client gets small kernel buffers (and so do the server's accepted sockets, via
//! `Server::per_shard_buffers`), then writes until a write blocks. A server that applies
//! back-pressure stops reading, so the client can only write what fits in the buffers in
//! between (a few hundred KiB here); a server that queues without bound lets it write
//! everything. CPU is read from /proc for the shard threads, to catch busy loops.
//!
//! Tests of the slow-peer files take a process-wide lock (`common::serial`): they open
//! thousands of sockets, measure CPU and RSS of the whole process, and must not overlap.

mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kernel buffer size for sockets of peers that never read (the kernel doubles it).
const SMALL_BUF: usize = 32 * 1024;

/// Bytes a non-reading peer may push into a server that applies back-pressure: its own send
/// buffer, the server's receive buffer, the server's read buffer and output cap, the server's
/// send buffer and its own receive buffer — each well under 256 KiB in these tests.
const BOUNDED: usize = 2 * 1024 * 1024;

/// What a never-reading peer gets to write at most; far above `BOUNDED`.
const FLOOD: usize = 24 * 1024 * 1024;

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
