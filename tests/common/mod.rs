//! Shared helpers for the integration tests: an in-process Herald on 127.0.0.1:0, raw HTTP
//! over `TcpStream`, signed requests, websocket clients (tungstenite) with timeouts.
#![allow(dead_code)]

use herald::config::Config;
use herald::shard::Shared;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running server; shut down (and joined) on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub shard_addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    handles: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn start(shards: usize) -> Server {
        Server::with(|c| c.shards = shards)
    }

    pub fn with(f: impl FnOnce(&mut Config)) -> Server {
        let mut cfg = Config {
            host: "127.0.0.1".into(),
            port: 0,
            shards: 1,
            echo_path: Some("/echo".into()),
            ..Config::default()
        };
        f(&mut cfg);
        let herald::shard::Running {
            shared,
            handles,
            addr,
            shard_addrs,
        } = herald::shard::spawn(Arc::new(cfg)).expect("server starts");
        Server {
            addr,
            shard_addrs,
            shared,
            handles,
        }
    }

    /// `n` shards, each on its own port, so a test can choose the shard a client lands on.
    pub fn per_shard(n: usize, f: impl FnOnce(&mut Config)) -> Server {
        let mut cfg = Config {
            host: "127.0.0.1".into(),
            port: 0,
            shards: n,
            echo_path: Some("/echo".into()),
            ..Config::default()
        };
        f(&mut cfg);
        let listeners = (0..n)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.set_nonblocking(true).expect("nonblocking");
                mio::net::TcpListener::from_std(l)
            })
            .collect();
        let herald::shard::Running {
            shared,
            handles,
            addr,
            shard_addrs,
        } = herald::shard::spawn_on(Arc::new(cfg), listeners).expect("server starts");
        Server {
            addr,
            shard_addrs,
            shared,
            handles,
        }
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
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Option<Resp> {
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
