//! HTTP/1.1 behaviour on real sockets: keep-alive, pipelining, bodies, limits and timeouts.

mod common;
use common::*;
use std::io::Write;
use std::time::Duration;

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    for shards in [1, 2] {
        let srv = Server::start(shards);
        let mut s = srv.connect();
        let mut buf = Vec::new();
        for _ in 0..5 {
            s.write_all(b"OPTIONS /anything HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let r = read_response(&mut s, &mut buf, false).expect("response");
            assert_eq!(r.status, 200);
            assert_eq!(r.header("Access-Control-Max-Age"), Some("86400"));
            assert_eq!(r.header("Connection"), None);
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(
        b"OPTIONS /a HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nPOST /connect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}OPTIONS /b HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            read_response(&mut s, &mut buf, false)
                .expect("response")
                .status
        })
        .collect();
    assert_eq!(statuses, vec![200, 404, 403, 200]);
}

#[test]
fn chunked_body_is_consumed_and_next_request_follows() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(b"POST /connect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nOPTIONS /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 403);
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 200);
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(
        b"POST /connect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut s, &mut buf, false).expect("interim");
    assert_eq!(interim.status, 100);
    s.write_all(b"{}").unwrap();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 403);
}

#[test]
fn head_gets_headers_and_no_body() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nOPTIONS /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, true).unwrap();
    assert_eq!(r.status, 404);
    assert!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    // The next response starts right after the head: no body bytes in between.
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 200);
}

#[test]
fn connection_close_is_honoured() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(b"OPTIONS /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).unwrap();
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(read_response(&mut s, &mut buf, false).is_none(), "closed");
}

#[test]
fn http10_closes_by_default() {
    let srv = Server::start(1);
    let mut s = srv.connect();
    s.write_all(b"OPTIONS /a HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).unwrap().status, 200);
    assert!(read_response(&mut s, &mut buf, false).is_none(), "closed");
}

#[test]
fn limits_have_exact_statuses() {
    let srv = Server::with(|c| {
        c.limits.max_head_bytes = 1024;
        c.limits.max_body_bytes = 100;
    });
    // Header block too large.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2000));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw(&srv, &big).unwrap().status, 431);
    // Too many headers.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..80 {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(raw(&srv, &many).unwrap().status, 431);
    // Body too large (declared).
    let r = raw(
        &srv,
        b"POST /connect HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("Connection"), Some("close"));
    // Body too large (chunked).
    let mut ch = b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    ch.extend_from_slice(b"80\r\n");
    ch.extend(std::iter::repeat_n(b'a', 128));
    ch.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(raw(&srv, &ch).unwrap().status, 413);
    // Malformed.
    assert_eq!(
        raw(&srv, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n").unwrap().status,
        400
    );
    assert_eq!(
        raw(&srv, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap()
            .status,
        400
    );
    // Conflicting framing (request smuggling).
    let r = raw(
        &srv,
        b"POST /connect HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    // The server still serves.
    assert_eq!(
        raw(&srv, b"OPTIONS / HTTP/1.1\r\n\r\n").unwrap().status,
        200
    );
}

#[test]
fn slow_header_gets_408() {
    let srv = Server::with(|c| c.limits.header_timeout = Duration::from_millis(300));
    let mut s = srv.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).expect("408 arrives");
    assert_eq!(r.status, 408);
    assert!(read_response(&mut s, &mut buf, false).is_none(), "closed");
}
