//! Shared helpers for the integration tests: an in-process Herald on 127.0.0.1:0, raw HTTP
//! over `TcpStream`, signed requests, websocket clients (tungstenite) with timeouts.
//! Submodules hold what only some suites use: `hostile` (the hostile-client tables' runner),
//! `pusher` (a Pusher protocol client: events, channel auth, signed HTTP API publishes), `tls`
//! (a test CA and server certificate made with rcgen, rustls clients).
#![allow(dead_code)]

pub mod cluster;
pub mod hostile;
pub mod hostile_pusher;
pub mod pusher;
pub mod pushi;
pub mod tls;

use herald::config::Config;
use herald::server::Shared;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running server; shut down (and joined) on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub shard_addrs: Vec<SocketAddr>,
    /// The extra listeners' addresses (`Config::listeners` order).
    pub extra_addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    handles: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn start(shards: usize) -> Server {
        Server::with(|c| c.shards = shards)
    }

    pub fn with(f: impl FnOnce(&mut Config)) -> Server {
        let cfg = test_config(1, f);
        Server::from(herald::server::spawn(Arc::new(cfg)).expect("server starts"))
    }

    /// `n` shards, each on its own port, so a test can choose the shard a client lands on.
    pub fn per_shard(n: usize, f: impl FnOnce(&mut Config)) -> Server {
        Server::on_listeners(n, f, || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            mio::net::TcpListener::from_std(l)
        })
    }

    /// Like [`Server::per_shard`], but accepted sockets inherit these kernel buffer sizes
    /// (SO_RCVBUF / SO_SNDBUF set on the listener; fixed sizes also switch off autotuning), so
    /// tests about peers that never read have small, known amounts of kernel buffering.
    pub fn per_shard_buffers(
        n: usize,
        rcvbuf: usize,
        sndbuf: usize,
        f: impl FnOnce(&mut Config),
    ) -> Server {
        Server::on_listeners(n, f, || {
            let s = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .expect("socket");
            s.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
            s.set_send_buffer_size(sndbuf).expect("SO_SNDBUF");
            let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
            s.bind(&addr.into()).expect("bind");
            s.listen(4096).expect("listen");
            s.set_nonblocking(true).expect("nonblocking");
            mio::net::TcpListener::from_std(s.into())
        })
    }

    /// `n` shards, one listener each from `listener`.
    fn on_listeners(
        n: usize,
        f: impl FnOnce(&mut Config),
        listener: impl FnMut() -> mio::net::TcpListener,
    ) -> Server {
        let cfg = test_config(n, f);
        let listeners = std::iter::repeat_with(listener).take(n).collect();
        Server::from(herald::server::spawn_on(Arc::new(cfg), listeners).expect("server starts"))
    }

    /// Open connections over all shards (the `open` counters).
    pub fn open_connections(&self) -> u64 {
        self.shared
            .stats
            .iter()
            .map(|s| s.open.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Sum of one counter over all shards.
    pub fn stat(&self, f: impl Fn(&herald::shard::ShardStats) -> u64) -> u64 {
        self.shared.stats.iter().map(|s| f(s)).sum()
    }

    /// A view of this server that connects to shard `i`'s own port.
    pub fn shard(&self, i: usize) -> At {
        At(self.shard_addrs[i])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Stop gracefully and wait for the shard threads; returns whether all exited cleanly.
    pub fn stop(mut self) -> bool {
        self.shutdown()
    }

    fn shutdown(&mut self) -> bool {
        self.shared.request_shutdown();
        let mut ok = true;
        for h in self.handles.drain(..) {
            ok &= matches!(h.join(), Ok(Ok(())));
        }
        ok
    }
}

/// Something clients can connect to: a server, or one shard's port.
pub trait Target {
    fn addr(&self) -> SocketAddr;
    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.set_nodelay(true).ok();
        s
    }
}

impl Target for Server {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One shard's address.
#[derive(Clone, Copy, Debug)]
pub struct At(pub SocketAddr);

impl Target for At {
    fn addr(&self) -> SocketAddr {
        self.0
    }
}

/// The test defaults: loopback, an ephemeral port, the echo route on `/echo`.
fn test_config(shards: usize, f: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config {
        host: "127.0.0.1".into(),
        port: 0,
        shards,
        echo_path: Some("/echo".into()),
        ..Config::default()
    };
    f(&mut cfg);
    cfg
}

impl From<herald::server::Running> for Server {
    fn from(r: herald::server::Running) -> Server {
        Server {
            addr: r.addr,
            shard_addrs: r.shard_addrs,
            extra_addrs: r.extra_addrs,
            shared: r.shared,
            handles: r.handles,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token for the default secret, signed now.
pub fn token() -> String {
    herald::auth::Signer::new("secret").sign("channelstream", unix_now())
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read exactly one response from a stream (Content-Length framed; `head_only` for HEAD).
pub fn read_response(s: &mut impl Read, buf: &mut Vec<u8>, head_only: bool) -> Option<Resp> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next()?;
            let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let len: usize = if head_only || status == 101 || status == 100 {
                0
            } else {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0)
            };
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some(Resp {
                    status,
                    headers,
                    body,
                });
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        let mut tmp = [0u8; 65536];
        match s.read(&mut tmp) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(_) => return None,
        }
    }
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// One request on a fresh connection.
pub fn raw(server: &impl Target, request: &[u8]) -> Option<Resp> {
    let mut s = server.connect();
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, request.starts_with(b"HEAD "))
}

/// A request with optional body and headers, on a fresh connection.
pub fn request(
    server: &impl Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", server.addr());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(server, &bytes).unwrap_or_else(|| panic!("no response to {method} {path}"))
}

/// A signed JSON request to the server API.
pub fn api(server: &impl Target, method: &str, path: &str, body: &serde_json::Value) -> Resp {
    let t = token();
    let body = serde_json::to_vec(body).unwrap_or_default();
    request(
        server,
        method,
        path,
        &[
            ("X-Channelstream-Secret", &t),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
}

pub type Ws = tungstenite::WebSocket<TcpStream>;

/// Open a websocket (tungstenite client) with a read timeout.
pub fn ws_connect(server: &impl Target, path: &str) -> Ws {
    let s = server.connect();
    let url = format!("ws://{}{}", server.addr(), path);
    let (ws, resp) = tungstenite::client(url, s).expect("websocket handshake");
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// Next text message within the stream's read timeout, skipping pings/pongs.
pub fn ws_next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return Some(t.to_string()),
            Ok(tungstenite::Message::Ping(_)) | Ok(tungstenite::Message::Pong(_)) => continue,
            Ok(_) => return None,
            Err(_) => return None,
        }
    }
}

pub fn set_timeout(ws: &Ws, d: Duration) {
    ws.get_ref().set_read_timeout(Some(d)).ok();
}

// ---------------------------------------------------------------------------------------------
// Helpers added for the hostile-client, slow-peer and shutdown suites.

/// A process-wide lock for tests that must not overlap one another (the slow-peer files:
/// thousands of sockets, CPU and RSS of the whole process). A test that panicked while
/// holding it does not poison it for the rest.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The simplest request every path answers 200.
pub const OPTIONS: &[u8] = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A keep-alive connection answered once, so the server surely holds it.
pub fn served(target: &impl Target) -> (TcpStream, Vec<u8>) {
    let mut s = target.connect();
    let mut buf = Vec::new();
    assert_eq!(ask(&mut s, &mut buf), 200);
    (s, buf)
}

/// One more `OPTIONS` request on a held connection; its status.
pub fn ask(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    s.write_all(OPTIONS).unwrap();
    read_response(s, buf, false).expect("answer").status
}

/// A TCP connection to `target` from a chosen local address. All of 127.0.0.0/8 is loopback on
/// Linux, so binding 127.0.0.2 makes the server see a different peer IP without any setup.
pub fn connect_from(target: &impl Target, src: std::net::IpAddr) -> TcpStream {
    connect_configured(target, |sock| {
        sock.bind(&SocketAddr::new(src, 0).into())
            .expect("bind source address")
    })
}

/// A TCP connection to `target` on a socket that `setup` adjusts before connecting; 10 s read
/// timeout, no Nagle.
fn connect_configured(target: &impl Target, setup: impl FnOnce(&socket2::Socket)) -> TcpStream {
    let addr = target.addr();
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    setup(&sock);
    sock.connect(&addr.into()).expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_nodelay(true).ok();
    s
}

/// A client websocket frame (any length; `masked` with a fixed key).
pub fn ws_frame(fin: bool, op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | op];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= usize::from(u16::MAX) => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x37u8, 0xfa, 0x21, 0x3d];
    if masked {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// What reading one server frame produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsRead {
    /// (fin, opcode, payload).
    Frame(bool, u8, Vec<u8>),
    /// The TCP connection ended (EOF or reset) before a complete frame.
    Eof,
    /// Nothing within the read timeout.
    Timeout,
}

/// Read one server frame from a raw socket (asserts server frames are unmasked).
pub fn ws_read_frame(s: &mut impl Read) -> WsRead {
    fn fill(s: &mut impl Read, buf: &mut [u8]) -> Result<(), WsRead> {
        let mut got = 0;
        while got < buf.len() {
            match s.read(&mut buf[got..]) {
                Ok(0) => return Err(WsRead::Eof),
                Ok(n) => got += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(WsRead::Timeout)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(WsRead::Eof),
            }
        }
        Ok(())
    }
    let mut go = || -> Result<WsRead, WsRead> {
        let mut h = [0u8; 2];
        fill(s, &mut h)?;
        assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                fill(s, &mut l)?;
                usize::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                fill(s, &mut l)?;
                usize::try_from(u64::from_be_bytes(l)).expect("sane length")
            }
            n => usize::from(n),
        };
        let mut p = vec![0; len];
        fill(s, &mut p)?;
        Ok(WsRead::Frame(h[0] & 0x80 != 0, h[0] & 0x0f, p))
    };
    go().unwrap_or_else(|e| e)
}

/// The close code of a close frame's payload.
pub fn close_code(p: &[u8]) -> Option<u16> {
    (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]))
}

/// Upgrade request bytes for `path` with a valid RFC 6455 key.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Raw websocket handshake on `path`; returns the stream positioned right after the 101.
pub fn ws_handshake(target: &impl Target, path: &str) -> TcpStream {
    let mut s = target.connect();
    s.write_all(&upgrade_request(path)).expect("send upgrade");
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).expect("101 response");
    assert_eq!(r.status, 101, "upgrade of {path}");
    assert!(buf.is_empty(), "no bytes after the 101 yet");
    s
}

/// Wait (polling every 20 ms) until `f` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Signed `POST /connect` for `username` on `channels`; returns the conn_id.
pub fn cs_connect(target: &impl Target, username: &str, channels: &[&str]) -> String {
    let r = api(
        target,
        "POST",
        "/connect",
        &serde_json::json!({"username": username, "channels": channels}),
    );
    assert_eq!(r.status, 200, "/connect: {}", r.text());
    r.json()["conn_id"]
        .as_str()
        .expect("conn_id in /connect answer")
        .to_string()
}

/// A Channelstream subscriber: `/connect` then `/ws?conn_id=`, with a read timeout.
pub fn cs_subscriber(target: &impl Target, username: &str, channels: &[&str]) -> Ws {
    let id = cs_connect(target, username, channels);
    let ws = ws_connect(target, &format!("/ws?conn_id={id}"));
    set_timeout(&ws, Duration::from_secs(5));
    ws
}

/// Next raw Channelstream frame text that is not a heartbeat (`[]`).
pub fn cs_next_frame(ws: &mut Ws) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let t = ws_next_text(ws)?;
        if t.trim() != "[]" {
            return Some(t);
        }
    }
    None
}

/// Next Channelstream item (frames are JSON arrays of one item), skipping heartbeats.
pub fn cs_next_item(ws: &mut Ws) -> Option<serde_json::Value> {
    let t = cs_next_frame(ws)?;
    let v: serde_json::Value = serde_json::from_str(&t).ok()?;
    v.as_array()?.first().cloned()
}

/// Signed `POST /message` of one message to `channel`; asserts 200.
pub fn cs_publish(target: &impl Target, channel: &str, message: &serde_json::Value) {
    let r = api(
        target,
        "POST",
        "/message",
        &serde_json::json!([{"channel": channel, "user": "publisher", "message": message}]),
    );
    assert_eq!(r.status, 200, "publish: {}", r.text());
}

/// A client socket with small kernel buffers (set before connecting), for peers that never
/// read: how much they can write before blocking then says how much the server buffered.
pub fn connect_small(target: &impl Target, rcvbuf: usize, sndbuf: usize) -> TcpStream {
    connect_configured(target, |sock| {
        sock.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
        sock.set_send_buffer_size(sndbuf).expect("SO_SNDBUF");
    })
}

/// CPU time (user + system) used so far by this process's threads whose name starts with
/// `prefix` (e.g. "herald-shard"), from /proc/self/task/*/stat.
pub fn threads_cpu(prefix: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut total = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in dir.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        total += ut + st;
    }
    Duration::from_millis(total * 1000 / ticks)
}

/// Resident set size of this process (servers in tests run in-process).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

/// Write `chunk` over and over until a write blocks for `stall`, fails (peer closed) or `cap`
/// bytes are written; returns the bytes written. Against a peer that applies back-pressure the
/// result is bounded by the buffers in between.
pub fn write_until_blocked(s: &mut TcpStream, chunk: &[u8], cap: usize, stall: Duration) -> usize {
    s.set_write_timeout(Some(stall)).ok();
    let (mut total, mut off) = (0, 0);
    while total < cap && !chunk.is_empty() {
        // Resume inside the chunk after a partial write, so the stream stays well-formed.
        match s.write(&chunk[off..]) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                off = (off + n) % chunk.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    total
}

/// Signed `POST /connect` with a full body; asserts 200 and returns the answer.
pub fn cs_connect_with(target: &impl Target, body: &serde_json::Value) -> serde_json::Value {
    let r = api(target, "POST", "/connect", body);
    assert_eq!(r.status, 200, "/connect: {}", r.text());
    r.json()
}

/// Signed `POST /info` about `channels` (users and connections included); the answer's
/// `channels` object.
pub fn cs_info(target: &impl Target, channels: &[&str]) -> serde_json::Value {
    let body = serde_json::json!({"info": {"channels": channels, "include_users": true,
                                            "include_connections": true}});
    let r = api(target, "POST", "/info", &body);
    assert_eq!(r.status, 200, "/info: {}", r.text());
    r.json()["channels"].clone()
}

/// Open `/ws?conn_id=` for a connection made anywhere, with a 5 s read timeout.
pub fn cs_ws(target: &impl Target, conn_id: &str) -> Ws {
    let ws = ws_connect(target, &format!("/ws?conn_id={conn_id}"));
    set_timeout(&ws, Duration::from_secs(5));
    ws
}
