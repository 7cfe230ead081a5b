//! Graceful shutdown of the real binary (Herald issue 7; README: "SIGTERM or SIGINT stops
//! accepting, finishes in-flight HTTP responses, closes websockets with 1001 — Pusher sockets
//! with 4200, reconnect at once — and exits 0 within a few seconds; a second signal exits at
//! once").
//!
//! These tests spawn `target/.../herald` as a child process on a free port, open websockets
//! and HTTP connections to it, signal it with `kill(2)` and watch from the outside: what each
//! client receives, whether new connections are refused, the exit status and how long it took.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `herald` child process; killed on drop if still running.
struct Herald {
    child: Child,
    addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Target for Herald {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Herald {
    /// Start the binary on a free port (bind :0, read the port, release it) and wait until it
    /// accepts connections.
    fn spawn(shards: u16) -> Herald {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--shards", &shards.to_string(), "--echo-path", "/echo"])
            .env_remove("CHANNELSTREAM_INI")
            .env("HERALD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        // Drain stderr in a thread (a full pipe would block the server's logging) and keep it
        // for failure messages.
        let mut err = child.stderr.take().expect("stderr pipe");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        let mut h = Herald {
            child,
            addr,
            stderr: Some(stderr),
        };
        assert!(up, "herald did not start listening: {}", h.logs());
        h
    }

    /// Start, then also wait until the process catches SIGTERM and SIGINT (its signal
    /// handlers are installed only after the listeners are up; see
    /// `signal_right_after_startup_is_graceful`).
    fn spawn_ready(shards: u16) -> Herald {
        let mut h = Herald::spawn(shards);
        let pid = h.pid();
        let ready = wait_until(Duration::from_secs(10), || {
            catches(pid, libc::SIGTERM) && catches(pid, libc::SIGINT)
        });
        assert!(ready, "signal handlers never installed: {}", h.logs());
        h
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid")
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// Wait for the exit status for at most `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's log (complete once it has exited).
    fn logs(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(h) = self.stderr.take() {
                return h.join().unwrap_or_default();
            }
        }
        "(still running)".into()
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` has a handler for `sig` (the SigCgt mask in /proc/PID/status).
fn catches(pid: libc::pid_t, sig: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// Whether a connection attempt is refused (nothing listens any more).
fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// The close code a tungstenite client receives next (skipping data and heartbeats).
fn next_close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn drains_on(sig: libc::c_int) {
    let mut h = Herald::spawn_ready(2);
    // An echo websocket, proven alive.
    let mut echo = ws_connect(&h, "/echo");
    set_timeout(&echo, Duration::from_secs(10));
    echo.send(tungstenite::Message::text("before")).unwrap();
    assert_eq!(ws_next_text(&mut echo).as_deref(), Some("before"));
    // A Channelstream subscriber.
    let mut sub = cs_subscriber(&h, "alice", &["room"]);
    set_timeout(&sub, Duration::from_secs(10));
    // A Pusher socket (connection_established read).
    let (mut pusher_ws, _) = common::pusher::connect(&h);
    set_timeout(&pusher_ws, Duration::from_secs(10));
    // An idle keep-alive HTTP connection that has been served once.
    let mut keep = h.connect();
    keep.write_all(b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        read_response(&mut keep, &mut buf, false).unwrap().status,
        200
    );

    let t0 = Instant::now();
    h.signal(sig);

    // Websockets: close 1001 (going away).
    assert_eq!(next_close_code(&mut echo), Some(1001), "echo socket");
    assert_eq!(
        next_close_code(&mut sub),
        Some(1001),
        "Channelstream socket"
    );
    // Pusher: 4200, which pusher-js maps to "retry" (reconnect at once, no backoff).
    assert_eq!(next_close_code(&mut pusher_ws), Some(4200), "Pusher socket");
    // Complete the closing handshakes and hang up, so the server's lingering close ends at
    // once instead of after its 2 s.
    let _ = echo.flush();
    let _ = sub.flush();
    let _ = pusher_ws.flush();
    drop((echo, sub, pusher_ws));
    // No new connections once draining has begun.
    assert!(
        wait_until(Duration::from_secs(1), || refused(h.addr)),
        "still accepting after the signal"
    );
    // The idle keep-alive connection is closed without a response.
    keep.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut rest = Vec::new();
    assert_eq!(keep.read_to_end(&mut rest).unwrap_or(0), 0, "{rest:?}");
    // Exit 0, within a bounded time.
    let status = h.wait_exit(Duration::from_secs(8));
    let took = t0.elapsed();
    let logs = h.logs();
    let status = status.unwrap_or_else(|| panic!("no exit 8 s after signal {sig}: {logs}"));
    assert!(status.success(), "exit status {status:?}: {logs}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(refused(h.addr));
    eprintln!("signal {sig}: drained and exited 0 in {took:?}");
}

#[test]
fn sigterm_drains_closes_websockets_and_exits_0() {
    drains_on(libc::SIGTERM);
}

#[test]
fn sigint_drains_closes_websockets_and_exits_0() {
    drains_on(libc::SIGINT);
}

#[test]
fn second_signal_exits_at_once() {
    let mut h = Herald::spawn_ready(2);
    // Keep the drain busy: a websocket that never answers the server's close (the server
    // lingers up to 2 s for it) and a parked long poll.
    let ws = ws_handshake(&h, "/echo");
    let id = cs_connect(&h, "poller", &["room"]);
    let mut poll = h.connect();
    poll.write_all(format!("GET /listen?conn_id={id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    h.signal(libc::SIGTERM);
    // The first signal was seen once the listeners are gone.
    assert!(wait_until(Duration::from_secs(2), || refused(h.addr)));
    if let Ok(Some(st)) = h.child.try_wait() {
        panic!("exited {st:?} before the second signal: {}", h.logs());
    }
    let t1 = Instant::now();
    h.signal(libc::SIGINT);
    let status = h.wait_exit(Duration::from_secs(3));
    let took = t1.elapsed();
    let logs = h.logs();
    assert!(status.is_some(), "no exit after the second signal: {logs}");
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after the second signal"
    );
    eprintln!("second signal: exited {took:?} later with {status:?}");
    drop(ws);
}

/// An HTTP request in flight when the signal comes gets its complete response before the
/// connection ends: here a long poll (`GET /listen`, parked until the model answers, spec
/// §5.10), with the model on the same shard (1 shard) and on another one (2 shards).
#[test]
fn in_flight_long_poll_is_answered_at_shutdown() {
    for shards in [1, 2] {
        let mut h = Herald::spawn_ready(shards);
        // Several polls, so that with 2 shards some land on the non-model shard.
        let mut polls: Vec<TcpStream> = (0..6)
            .map(|i| {
                let id = cs_connect(&h, &format!("poller{i}"), &["room"]);
                let mut s = h.connect();
                s.write_all(
                    format!("GET /listen?conn_id={id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                )
                .unwrap();
                s
            })
            .collect();
        // Let the requests reach the model before the signal (a reply cannot be awaited: a
        // long poll answers only when it completes).
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        h.signal(libc::SIGTERM);
        let answers: Vec<Option<u16>> = polls
            .iter_mut()
            .map(|s| {
                s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut buf = Vec::new();
                read_response(s, &mut buf, false).map(|r| r.status)
            })
            .collect();
        let status = h.wait_exit(Duration::from_secs(8));
        let logs = h.logs();
        assert!(status.is_some_and(|s| s.success()), "{status:?}: {logs}");
        eprintln!(
            "{shards} shard(s): long polls {answers:?}, exit after {:?}",
            t0.elapsed()
        );
        assert_eq!(answers, vec![Some(200); 6], "{shards} shard(s)");
    }
}

/// A SIGTERM that arrives as soon as the port accepts connections is still a graceful stop.
#[test]
fn signal_right_after_startup_is_graceful() {
    let mut h = Herald::spawn(1);
    h.signal(libc::SIGTERM);
    let status = h.wait_exit(Duration::from_secs(8));
    let logs = h.logs();
    let status = status.unwrap_or_else(|| panic!("no exit: {logs}"));
    assert!(status.success(), "exit status {status:?}: {logs}");
}
