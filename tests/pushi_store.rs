//! The durable store end to end through the `herald` binary: acknowledged events survive
//! `kill -9` (each present exactly once after a restart, and a subscribed user's
//! `personal-` channel returns its newest ones, none twice), and a corrupt database or an
//! unusable data directory or a full disk (a filled 64 KiB tmpfs, where the test may mount)
//! stops Herald at start with the path and the reason.

mod common;

use common::pushi::{APP_ID, KEY, SECRET};
use common::{read_response, At, Target};
use serde_json::json;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn herald(dir: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.args([
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
    .env_remove("CHANNELSTREAM_INI")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

/// A running `herald`, killed (SIGKILL) and reaped on drop, so a failing assertion never
/// leaves a server behind holding its port and data directory.
struct Running(Child);

impl Running {
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn start(dir: &Path, port: u16) -> Running {
    // Its stderr goes to the test's (captured by the runner; a pipe nobody reads could fill).
    let child = Running(herald(dir, port).stderr(Stdio::inherit()).spawn().unwrap());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "herald did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn login(at: &At) -> String {
    let path = format!("/login?app_id={APP_ID}&app_key={KEY}&app_secret={SECRET}");
    let r = common::request(at, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

#[test]
fn acknowledged_events_survive_kill_9_exactly_once() {
    let dir = common::pushi::data_dir("kill9");
    let port = free_port();
    let at = At(([127, 0, 0, 1], port).into());
    let mut child = start(&dir, port);
    let sid = login(&at);
    // User u1 follows channel c0: every c0 event also lands in u1's inbox.
    let r = common::pushi::rest(
        &at,
        "POST",
        "/subscriptions",
        &sid,
        &json!({"user_id": "u1", "event": "c0"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Pipelined streams of persisted events on four connections, each event tagged with its
    // number; the main thread kills the server mid-stream. Acknowledged = a 200 read before
    // the kill. (A connection's pipelined requests are answered in order, one store commit
    // each, so several connections keep several events in flight at the kill.)
    let (per, total) = (200usize, 800usize);
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (sid, tx) = (sid.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut s = at.connect();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = Vec::new();
                for chunk in 0..per / 50 {
                    let ns: Vec<usize> = (chunk * 50..(chunk + 1) * 50).map(|i| t * per + i).collect();
                    let mut out = Vec::new();
                    for n in &ns {
                        let body = format!(r#"{{"data": "d", "channel": "c{}", "n": {n}}}"#, n % 3);
                        write!(
                            out,
                            "POST /events?sid={sid} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .unwrap();
                    }
                    if s.write_all(&out).is_err() {
                        return;
                    }
                    for n in ns {
                        match read_response(&mut s, &mut buf, false) {
                            Some(r) if r.status == 200 => {
                                if tx.send(n).is_err() {
                                    return;
                                }
                            }
                            _ => return,
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut acked = HashSet::new();
    while acked.len() < 300 {
        acked.insert(
            rx.recv_timeout(Duration::from_secs(20))
                .expect("acknowledgements"),
        );
    }
    child.kill9();
    acked.extend(rx.try_iter());
    for t in senders {
        let _ = t.join();
    }
    for late in rx.try_iter() {
        acked.insert(late);
    }

    let mut child = start(&dir, port);
    let sid = login(&at);
    let r = common::request(
        &at,
        "GET",
        &format!("/events?count=1000&sid={sid}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    // Pushi's list answer: {"events": [...]}, newest first.
    let events: Vec<Value> = r.json()["events"].as_array().unwrap().clone();
    let ns: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    let unique: HashSet<u64> = ns.iter().copied().collect();
    assert_eq!(unique.len(), ns.len(), "an event stored twice");
    for n in &acked {
        assert!(unique.contains(&(*n as u64)), "acknowledged event {n} lost");
    }
    assert!(ns.len() <= total);

    // u1's personal channel: the 10 newest c0 events of the store, newest first, each once;
    // among them every acknowledged c0 event that is newer than the oldest one returned.
    let c0: Vec<u64> = ns.iter().copied().filter(|n| n % 3 == 0).collect();
    let (mut ws, socket_id) = common::pushi::connect(&at);
    let ok = common::pushi::subscribe(&mut ws, &socket_id, "personal-u1", None);
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    let info = common::pushi::inner(&ok, "data");
    assert_eq!(info["alias"], json!(["c0"]));
    let personal: Vec<u64> = info["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = c0.iter().copied().take(10).collect();
    assert_eq!(
        personal, want,
        "personal-u1 is not the newest stored c0 events"
    );
    assert_eq!(personal.len(), c0.len().min(10));
    let once: HashSet<u64> = personal.iter().copied().collect();
    assert_eq!(once.len(), personal.len(), "an event twice in personal-u1");
    let acked_c0 = acked.iter().filter(|n| *n % 3 == 0).count();
    assert!(
        personal.len() >= acked_c0.min(10),
        "acknowledged c0 events missing"
    );
    drop(ws);
    eprintln!(
        "acknowledged {} of {total}, stored {}",
        acked.len(),
        ns.len()
    );
    child.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_database_or_unusable_directory_stops_herald_at_start() {
    let dir = common::pushi::data_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("herald.sqlite3");
    std::fs::write(&db, vec![0x5au8; 16384]).unwrap();
    let out = herald(&dir, free_port()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    let file = common::pushi::data_dir("file");
    std::fs::write(&file, b"x").unwrap();
    let out = herald(&file.join("sub"), free_port()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot create"), "{err}");
    let _ = std::fs::remove_file(&file);
}

/// A 64 KiB tmpfs, filled, unmounted on drop (`None` when this user cannot mount).
struct FullDisk(std::path::PathBuf);

impl FullDisk {
    fn mount(name: &str) -> Option<FullDisk> {
        let dir = common::pushi::data_dir(name);
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        let disk = FullDisk(dir);
        let mut f = std::fs::File::create(disk.0.join("fill")).unwrap();
        let block = [0u8; 4096];
        while std::io::Write::write_all(&mut f, &block).is_ok() {}
        Some(disk)
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_full_disk_stops_herald_at_start_with_a_clear_error() {
    let Some(disk) = FullDisk::mount("full") else {
        eprintln!("SKIP: cannot mount a tmpfs here (needs root)");
        return;
    };
    let out = herald(&disk.0.join("data"), free_port()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("herald.sqlite3"), "{err}");
    assert!(err.contains("disk is full"), "{err}");
}

#[test]
fn pushi_start_variables_open_the_server_and_app_ports() {
    let dir = common::pushi::data_dir("ports");
    let (sport, aport) = (free_port(), free_port());
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--shards", "1", "--log-level", "WARNING"])
            .env("HERALD_MODE", "pushi")
            .env("HERALD_DATA_DIR", &dir)
            .env("SERVER_HOST", "127.0.0.1")
            .env("SERVER_PORT", sport.to_string())
            .env("APP_PORT", aport.to_string())
            .env("HERALD_DEFAULT_APP_ID", APP_ID)
            .env("HERALD_DEFAULT_APP_KEY", KEY)
            .env("HERALD_DEFAULT_APP_SECRET", SECRET)
            .env_remove("CHANNELSTREAM_INI")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let wait = |port: u16| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "port {port} not served");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait(sport);
    wait(aport);
    let app = At(([127, 0, 0, 1], aport).into());
    let sid = login(&app);
    let server = At(([127, 0, 0, 1], sport).into());
    let (mut ws, id) = common::pushi::connect(&server);
    common::pushi::subscribe(&mut ws, &id, "global", None);
    let r = common::request(
        &app,
        "POST",
        &format!("/events?sid={sid}"),
        &[],
        br#"{"data": "over the app port"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(common::pushi::next(&mut ws)["data"], "over the app port");
    child.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}
