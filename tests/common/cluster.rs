//! Cluster-test helpers: a real `redis-server` on a free loopback port (`--save ""
//! --appendonly no`, killed on drop) and `herald` nodes pointed at it (`--cluster
//! redis://127.0.0.1:PORT --node-id ID`, two shards each, killed on drop), with `/metrics`
//! reads and a wait for the backplane link. Shared by every `tests/cluster*.rs` suite.

use super::{request, token, wait_until, Target};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

pub fn have_redis() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: redis-server not in PATH (apt-get install -y redis-server)");
    }
    ok
}

/// A `redis-server` child on a loopback port; killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::on(free_port())
    }

    pub fn on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let r = Redis { child, port };
        assert!(
            wait_until(Duration::from_secs(10), || r.cli(&["PING"]) == "PONG"),
            "redis-server did not start"
        );
        r
    }

    /// One `redis-cli` command; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// How many connections subscribe `topic` (one per node).
    pub fn numsub(&self, topic: &str) -> u64 {
        let out = self.cli(&["PUBSUB", "NUMSUB", topic]);
        out.lines()
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(u64::MAX)
    }

    /// PUBLISH raw bytes (`redis-cli -x` takes the last argument from stdin).
    pub fn publish_raw(&self, topic: &str, bytes: &[u8]) {
        use std::io::Write;
        let mut c = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-x", "PUBLISH", topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write");
        assert!(c.wait().expect("redis-cli").success());
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `herald` node process; killed on drop.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Target for Node {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Node {
    pub fn start(redis_port: u16, id: &str) -> Node {
        Node::start_with(redis_port, id, &[])
    }

    pub fn start_with(redis_port: u16, id: &str, env: &[(&str, &str)]) -> Node {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .envs(env.iter().copied())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--shards",
                "2",
            ])
            .args(["--cluster", &format!("redis://127.0.0.1:{redis_port}")])
            .args(["--node-id", id])
            .env_remove("CHANNELSTREAM_INI")
            .env_remove("HERALD_CLUSTER")
            .env("HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "true")
            .env("HERALD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let n = Node {
            child,
            addr,
            stderr: Some(stderr),
        };
        let listening = wait_until(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        assert!(listening, "node {id} did not start");
        n.wait_link(true);
        n
    }

    /// A line of `/metrics` by name.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let t = token();
        let r = request(
            self,
            "GET",
            "/metrics",
            &[("X-Channelstream-Secret", &t)],
            b"",
        );
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Wait until the node's backplane link is up (or down).
    pub fn wait_link(&self, up: bool) {
        let want = u64::from(up);
        let ok = wait_until(Duration::from_secs(15), || {
            self.metric("herald_cluster_up") == Some(want)
        });
        assert!(ok, "link never became {}", if up { "up" } else { "down" });
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn cluster(n: usize) -> Option<(Redis, Vec<Node>)> {
    if !have_redis() {
        return None;
    }
    let r = Redis::start();
    let nodes = (0..n)
        .map(|i| Node::start(r.port, &format!("n{i}")))
        .collect();
    Some((r, nodes))
}

/// The index in `cluster(n)`'s nodes (`--node-id nI`) of the node owning the Channelstream
/// model (the holder of the `cs:owner` lease), once one holds it.
pub fn cs_owner(r: &Redis) -> usize {
    let mut owner = None;
    let held = wait_until(Duration::from_secs(10), || {
        let v = r.cli(&["GET", "herald:0:cs:owner"]);
        owner = v
            .strip_prefix('n')
            .and_then(|v| v.split('.').next())
            .and_then(|i| i.parse().ok());
        owner.is_some()
    });
    assert!(held, "no node took the Channelstream lease");
    owner.unwrap_or_default()
}
