//! A small benchmark of the Pushi publish path (results in BENCHMARKS.md):
//!
//! 1. persisted publish throughput: `C` keep-alive connections pipeline `POST /events` with
//!    a list of `B` channels each (one request = `B` persisted events, one store request);
//!    events/s = events acknowledged / wall time, and per 5 s window (the later windows are
//!    the steady state once retention deletes as much as is inserted);
//! 2. publish → delivery latency: one websocket subscriber, one publisher at a fixed rate,
//!    each event carrying its send time; p50/p99/max with `persist: true` and `false`.
//!
//! It starts the given `herald` binary in Pushi mode on a free port with a fresh data
//! directory under the system temp dir (removed at the end):
//!
//! `cargo run --release --example pushi_bench -- target/release/herald [C] [B] [SECONDS]
//! [LATENCY_ROUNDS]` (the server inherits the environment: `HERALD_MAX_EVENTS_PER_CHANNEL=0`
//! measures without retention).

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APP_ID: &str = "bench-app";
const KEY: &str = "936f7e1c2b5a4d3e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c24e3";
const SECRET: &str = "bench-secret";

fn start(bin: &str, dir: &std::path::Path) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args([
            "--pushi",
            "--shards",
            "2",
            "--port",
            &port.to_string(),
            "--log-level",
            "WARNING",
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("HERALD_DEFAULT_APP_ID", APP_ID)
        .env("HERALD_DEFAULT_APP_KEY", KEY)
        .env("HERALD_DEFAULT_APP_SECRET", SECRET)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while TcpStream::connect(addr).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

/// Read one Content-Length framed response; its status.
fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                buf.drain(..end + 4 + len);
                return status;
            }
        }
        let mut tmp = [0u8; 65536];
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn post(sid: &str, body: &str) -> String {
    format!(
        "POST /events?sid={sid} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn login(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /login?app_id={APP_ID}&app_key={KEY}&app_secret={SECRET} HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    loop {
        let mut tmp = [0u8; 4096];
        let n = s.read(&mut tmp).unwrap();
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if let Ok(v) = serde_json::from_slice::<Value>(&buf[i + 4..]) {
                return v["token"].as_str().unwrap().to_owned();
            }
        }
    }
}

/// Events/s over the whole run, requests answered 503, and events/s per 5 s window (the
/// later windows show the steady state once retention pruning runs).
fn throughput(
    addr: SocketAddr,
    sid: &str,
    conns: usize,
    batch: usize,
    secs: u64,
) -> (f64, u64, Vec<f64>) {
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let channels: Vec<String> = (0..batch).map(|i| format!("t{i}")).collect();
    let body =
        json!({"data": {"x": "payload of a persisted event"}, "channel": channels}).to_string();
    let one = post(sid, &body);
    let depth = 16;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let one = one.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::new();
                let (mut ok, mut busy) = (0u64, 0u64);
                let window = one.repeat(depth);
                while Instant::now() < deadline {
                    s.write_all(window.as_bytes()).unwrap();
                    for _ in 0..depth {
                        match response(&mut s, &mut buf) {
                            200 => {
                                ok += 1;
                                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            _ => busy += 1,
                        }
                    }
                }
                (ok, busy)
            })
        })
        .collect();
    let mut windows = Vec::new();
    let mut last = 0;
    let mut at = t0;
    while at + Duration::from_secs(5) <= deadline {
        at += Duration::from_secs(5);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let now = acked.load(std::sync::atomic::Ordering::Relaxed);
        windows.push((now - last) as f64 * batch as f64 / 5.0);
        last = now;
    }
    let (mut ok, mut busy) = (0, 0);
    for t in threads {
        let (o, b) = t.join().unwrap();
        ok += o;
        busy += b;
    }
    let el = t0.elapsed().as_secs_f64();
    (ok as f64 * batch as f64 / el, busy, windows)
}

fn latency(addr: SocketAddr, sid: &str, persist: bool, n: usize, rate: u64) -> (f64, f64, f64) {
    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/{KEY}"), stream).unwrap();
    let _ = ws.read().unwrap(); // connection_established
    ws.send(tungstenite::Message::text(
        r#"{"event":"pusher:subscribe","data":{"channel":"lat"}}"#,
    ))
    .unwrap();
    let _ = ws.read().unwrap(); // subscription_succeeded
    let epoch = Instant::now();
    let sid = sid.to_owned();
    let publisher = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        let gap = Duration::from_nanos(1_000_000_000 / rate);
        let mut next = Instant::now();
        for _ in 0..n {
            let t = epoch.elapsed().as_nanos() as u64;
            let body =
                json!({"data": "x", "channel": "lat", "persist": persist, "t": t}).to_string();
            s.write_all(post(&sid, &body).as_bytes()).unwrap();
            assert_eq!(response(&mut s, &mut buf), 200);
            next += gap;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    });
    let mut lat = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for _ in 0..n {
        let m = ws.read().unwrap();
        let now = epoch.elapsed().as_nanos() as u64;
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        lat.record(now - v["t"].as_u64().unwrap()).unwrap();
    }
    publisher.join().unwrap();
    let us = |q: f64| lat.value_at_quantile(q) as f64 / 1000.0;
    (us(0.5), us(0.99), lat.max() as f64 / 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("target/release/herald");
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let batch: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(5);
    let rounds: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(3);
    let fresh = |tag: &str| {
        let dir =
            std::env::temp_dir().join(format!("herald-pushi-bench-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (child, addr) = start(bin, &dir);
        let sid = login(addr);
        (child, addr, sid, dir)
    };
    let stop = |mut child: Child, dir: std::path::PathBuf| {
        let size = std::fs::metadata(dir.join("herald.sqlite3"))
            .map(|m| m.len())
            .unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        size
    };
    // Latency first, each run on a fresh server and data directory, persist off and on
    // interleaved, so neither meets the other's leftovers (pruning, checkpoints).
    for round in 0..rounds {
        for persist in [false, true] {
            let (child, addr, sid, dir) = fresh(&format!("lat{round}{persist}"));
            let (p50, p99, max) = latency(addr, &sid, persist, 5000, 1000);
            println!("round {round}: publish->delivery persist={persist}: p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us (5000 events at 1000/s)");
            stop(child, dir);
        }
    }
    let (child, addr, sid, dir) = fresh("tput");
    let (eps, busy, windows) = throughput(addr, &sid, conns, batch, secs);
    println!("persisted publish: {eps:.0} events/s ({conns} connections x 16 pipelined, {batch} channels per POST, {secs} s; {busy} answered 503)");
    let windows: Vec<String> = windows
        .iter()
        .map(|w| format!("{:.1}k", w / 1000.0))
        .collect();
    println!("  per 5 s window: {}", windows.join(" "));
    let size = stop(child, dir);
    println!(
        "database after the throughput run: {:.1} MiB",
        size as f64 / 1048576.0
    );
}
