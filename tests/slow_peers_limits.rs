//! Slow and malicious peers (Herald issue 7), part 3: connection limits. Connections over
//! the per-shard or total limit, and pending handshakes over their cap, are closed at once
//! without a byte and counted, while served connections keep working.
//!
//! Tests of the slow-peer files take a process-wide lock (`common::serial`): they open
//! thousands of sockets, measure CPU and RSS of the whole process, and must not overlap.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
