//! Slow and malicious peers (Herald issue 7), part 1: slowloris and idle, half-open and
//! half-closed connections. For each: the server keeps serving others promptly, and the
//! offender is closed by the policy the README states ("Limits and what happens at each"):
//! 408 for a request head that never completes, the idle timeout for a silent connection,
//! and an answer still owed to a client that shut down its sending side.
//!
//! Tests of the slow-peer files take a process-wide lock (`common::serial`): they open
//! thousands of sockets, measure CPU and RSS of the whole process, and must not overlap.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
