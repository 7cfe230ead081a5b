//! End-to-end tests of the `herald-bench` binary against a tiny in-test server.
//!
//! The server speaks just enough Channelstream: `POST /connect` answers a `conn_id` and
//! remembers the requested channel, `GET /ws?conn_id=` upgrades, and every `POST /message` body
//! (already a one-item JSON array) is forwarded as one text frame to every socket of its
//! channel — optionally after a fixed delay, dropping every Nth message or sending every Mth
//! twice. One delivery thread writes all frames, in deadline order, so frames never interleave.
//!
//! The tool is run as a process (`--json -`) and its JSON report is checked: delivery and loss
//! counting must be exact, and a known server delay must show up in the latency percentiles.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Clone, Copy, Default)]
struct Behaviour {
    delay: Duration,
    /// Drop message n (1-based, in arrival order) when n % drop_every == 0.
    drop_every: u64,
    /// Send message n twice when n % dup_every == dup_every / 2.
    dup_every: u64,
    /// Answer every `POST /message` with `Connection: close` and close (as sockudo's HTTP API).
    close_after_message: bool,
}

struct Shared {
    behaviour: Behaviour,
    /// conn_id -> channel, from /connect.
    conns: Mutex<HashMap<String, String>>,
    /// channel -> websocket write halves (owned by the delivery thread once registered).
    next_conn: AtomicU64,
    messages: AtomicU64,
    deliver: Mutex<mpsc::Sender<Job>>,
}

enum Job {
    Join {
        channel: String,
        stream: TcpStream,
    },
    Frame {
        due: Instant,
        channel: String,
        frame: Vec<u8>,
    },
}

/// Start a server on 127.0.0.1:0; returns its URL. Threads live until the test process ends.
fn start_server(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<Job>();
    let shared = Arc::new(Shared {
        behaviour,
        conns: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
        messages: AtomicU64::new(0),
        deliver: Mutex::new(tx),
    });
    thread::spawn(move || delivery_loop(rx));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            thread::spawn(move || serve(stream, &shared));
        }
    });
    url
}

fn delivery_loop(rx: mpsc::Receiver<Job>) {
    let mut channels: HashMap<String, Vec<TcpStream>> = HashMap::new();
    for job in rx {
        match job {
            Job::Join { channel, stream } => channels.entry(channel).or_default().push(stream),
            Job::Frame {
                due,
                channel,
                frame,
            } => {
                // The simulated server delay (not test synchronisation): jobs arrive in
                // deadline order because the delay is constant.
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if let Some(socks) = channels.get_mut(&channel) {
                    socks.retain_mut(|s| s.write_all(&frame).is_ok());
                }
            }
        }
    }
}

fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 65535 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// The value of the first `"key": "value"` in `s`.
fn json_str_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let at = s.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = s[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest
        .strip_prefix('[')
        .map(str::trim_start)
        .unwrap_or(rest)
        .strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// One HTTP connection: keep-alive requests until EOF, or an upgrade.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let request_line = head.lines().next().unwrap_or_default().to_string();
        if request_line.starts_with("POST /connect ") {
            let body = String::from_utf8_lossy(&body);
            let channel = json_str_after(&body, "channels").unwrap().to_string();
            let n = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            let id = format!("00000000-0000-4000-8000-{n:012x}");
            shared.conns.lock().unwrap().insert(id.clone(), channel);
            let reply = format!("{{\n    \"conn_id\": \"{id}\",\n    \"state\": {{}}\n}}");
            respond(&mut stream, &reply);
        } else if let Some(rest) = request_line.strip_prefix("GET /ws?conn_id=") {
            let id = rest.split(' ').next().unwrap().to_string();
            let channel = shared.conns.lock().unwrap().get(&id).cloned().unwrap();
            let _ = stream.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            );
            let writer = stream.try_clone().unwrap();
            shared
                .deliver
                .lock()
                .unwrap()
                .send(Job::Join {
                    channel,
                    stream: writer,
                })
                .unwrap();
            // Client frames are ignored; read until the client closes.
            while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
            return;
        } else if request_line.starts_with("POST /message ") {
            let b = shared.behaviour;
            if b.close_after_message {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n[]",
                );
            } else {
                respond(&mut stream, "[]");
            }
            let n = shared.messages.fetch_add(1, Ordering::Relaxed) + 1;
            if b.drop_every > 0 && n % b.drop_every == 0 {
                continue;
            }
            let channel = json_str_after(&String::from_utf8_lossy(&body), "channel")
                .unwrap()
                .to_string();
            let frame = text_frame(&body);
            let copies = if b.dup_every > 0 && n % b.dup_every == b.dup_every / 2 {
                2
            } else {
                1
            };
            let tx = shared.deliver.lock().unwrap();
            for _ in 0..copies {
                let due = Instant::now() + b.delay;
                tx.send(Job::Frame {
                    due,
                    channel: channel.clone(),
                    frame: frame.clone(),
                })
                .unwrap();
            }
            if b.close_after_message {
                return;
            }
        } else {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

/// One write per response: several small writes would meet Nagle and delayed ACK (40 ms).
fn respond(stream: &mut TcpStream, body: &str) {
    let msg = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(msg.as_bytes());
}

/// Run the tool with `args` plus the options every test needs; return the parsed report.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args(["--no-sign", "--quiet", "--pause", "0", "--json", "-"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "herald-bench failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn counts_every_delivery_across_channels() {
    let url = start_server(Behaviour::default());
    let rep = bench(&[
        "--target",
        &url,
        "--scenario",
        "custom",
        "--subs",
        "20",
        "--channels",
        "2",
        "--rate",
        "100",
        "--duration",
        "1",
        "--drain",
        "3",
    ]);
    let r = &rep["runs"][0];
    assert_eq!(u(&r["subs_connected"]), 20);
    assert_eq!(u(&r["messages_intended"]), 100);
    assert_eq!(u(&r["messages_accepted"]), 100);
    // 100 messages round-robin over 2 channels of 10 subscribers: 10 deliveries each.
    assert_eq!(u(&r["expected_deliveries"]), 1000);
    assert_eq!(u(&r["delivered"]), 1000);
    assert_eq!(
        (
            u(&r["lost"]),
            u(&r["duplicates"]),
            u(&r["unexpected_deliveries"])
        ),
        (0, 0, 0)
    );
    assert_eq!(f(&r["loss_pct"]), 0.0);
    assert_eq!(u(&r["latency_ms"]["count"]), 1000);
    assert_eq!(u(&r["publish_errors"]), 0);
    assert!(!r["publish_saturated"].as_bool().unwrap());
    assert!(f(&r["deliveries_per_s"]) > 0.0);
}

#[test]
fn reports_ten_percent_loss_and_duplicates() {
    let url = start_server(Behaviour {
        drop_every: 10,
        dup_every: 10,
        ..Default::default()
    });
    let rep = bench(&[
        "--target",
        &url,
        "--scenario",
        "custom",
        "--subs",
        "10",
        "--rate",
        "100",
        "--duration",
        "1",
        "--drain",
        "0.5",
        "--size",
        "4096",
    ]);
    let r = &rep["runs"][0];
    // 4 KiB messages: 16-bit frame lengths, frames split across reads.
    assert_eq!(u(&r["protocol_errors"]), 0);
    assert_eq!(u(&r["messages_accepted"]), 100);
    assert_eq!(u(&r["expected_deliveries"]), 1000);
    // Messages 10, 20, … 100 are dropped: 10 of 100 to 10 subscribers each.
    assert_eq!(u(&r["delivered"]), 900);
    assert_eq!(u(&r["lost"]), 100);
    assert!(
        (f(&r["loss_pct"]) - 10.0).abs() < 1e-9,
        "loss {}",
        r["loss_pct"]
    );
    // Messages 5, 15, … 95 are sent twice.
    assert_eq!(u(&r["duplicates"]), 100);
    assert_eq!(u(&r["deliveries_total"]), 1000);
}

#[test]
fn measures_a_known_delay_side_by_side() {
    let fast = start_server(Behaviour::default());
    let slow = start_server(Behaviour {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let dir = std::env::temp_dir().join(format!("herald-bench-test-{}", std::process::id()));
    let rep = bench(&[
        "--target",
        &format!("fast={fast}"),
        "--target",
        &format!("slow={slow}"),
        "--rounds",
        "1",
        "--scenario",
        "custom",
        "--subs",
        "10",
        "--rate",
        "50",
        "--duration",
        "1",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["target"].as_str(), runs[1]["target"].as_str()),
        (Some("fast"), Some("slow"))
    );
    let lat = |r: &Value, p: &str| f(&r["latency_ms"][p]);
    // The delay is a floor; on a loaded 2-core machine allow generous slack above it.
    let slow_run = &runs[1];
    assert_eq!(u(&slow_run["delivered"]), 500);
    assert!(
        lat(slow_run, "p50") >= 19.9 && lat(slow_run, "p50") < 45.0,
        "p50 {}",
        lat(slow_run, "p50")
    );
    assert!(lat(slow_run, "max") >= 19.9, "max {}", lat(slow_run, "max"));
    assert!(
        lat(&runs[0], "p50") < 10.0,
        "fast p50 {}",
        lat(&runs[0], "p50")
    );
    let ratio = rep["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["metric"] == "latency_p50_ms")
        .expect("a p50 ratio");
    assert_eq!(
        (ratio["target"].as_str(), ratio["baseline"].as_str()),
        (Some("slow"), Some("fast"))
    );
    assert!(f(&ratio["ratio"]) > 2.0, "ratio {}", ratio["ratio"]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| custom | slow | 1 |") && md.contains("latency_p50_ms"));
    let svg = std::fs::read_to_string(dir.join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("slow"));
    // Re-rendering from the saved JSON gives the same table without running anything.
    let out = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .arg("--from-json")
        .arg(dir.join("report.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), md.trim());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_run_reports_connect_rate_and_rss_per_connection() {
    let url = start_server(Behaviour::default());
    let pid = std::process::id().to_string();
    let rep = bench(&[
        "--target",
        &url,
        "--scenario",
        "idle-10k",
        "--subs",
        "60",
        "--duration",
        "0.3",
        "--server-pid",
        &pid,
    ]);
    let r = &rep["runs"][0];
    assert_eq!(r["scenario"]["mode"], "idle");
    assert_eq!(u(&r["subs_connected"]), 60);
    assert_eq!(u(&r["messages_sent"]), 0);
    assert!(f(&r["connect_rate_per_s"]) > 0.0);
    assert!(u(&r["rss_before_kib"]) > 0 && u(&r["rss_after_kib"]) > 0);
    assert!(r["rss_per_conn_bytes"].is_number());
    assert!(!r["cpu"]["per_core_busy_pct"].as_array().unwrap().is_empty());
}

#[test]
fn replaces_connections_the_server_closes_after_answering() {
    let url = start_server(Behaviour {
        close_after_message: true,
        ..Default::default()
    });
    let rep = bench(&[
        "--target",
        &url,
        "--scenario",
        "custom",
        "--subs",
        "10",
        "--rate",
        "50",
        "--duration",
        "1",
        "--publishers",
        "2",
        "--drain",
        "3",
    ]);
    let r = &rep["runs"][0];
    assert_eq!(u(&r["messages_accepted"]), 50, "{r}");
    assert_eq!((u(&r["delivered"]), u(&r["lost"])), (500, 0));
    assert_eq!((u(&r["publish_errors"]), u(&r["reconnects"])), (0, 0));
    assert_eq!(u(&r["keepalive_closes"]), 50);
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "{r}");
}

#[test]
fn publish_rest_runs_closed_loop() {
    let url = start_server(Behaviour::default());
    let rep = bench(&[
        "--target",
        &url,
        "--scenario",
        "publish-rest",
        "--duration",
        "0.5",
        "--publishers",
        "4",
    ]);
    let r = &rep["runs"][0];
    assert_eq!(r["scenario"]["mode"], "closed-loop");
    assert!(u(&r["messages_accepted"]) > 10);
    assert_eq!(u(&r["publish_errors"]), 0);
    assert!(f(&r["achieved_publish_rate"]) > 0.0);
    assert!(u(&r["post_latency_ms"]["count"]) >= u(&r["messages_accepted"]));
    assert!(
        r["latency_ms"].is_null(),
        "nothing subscribed, nothing delivered"
    );
}

#[test]
fn refuses_targets_outside_loopback() {
    for target in [
        "http://10.1.2.3:80",
        "http://192.168.0.1:8000",
        "http://example.com:80",
        "B=http://8.8.8.8:53",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
            .args(["--no-sign", "--quiet", "--target", target])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{target}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("only 127.0.0.0/8"), "{target}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args(["--no-sign", "--quiet", "--duration", "500"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
