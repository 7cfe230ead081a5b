//! Channelstream history across restarts (`--persist-history`) through the `herald` binary:
//! messages, an edit and a delete on two channels (history_size 3 and unlimited) come back
//! exactly (order, uuids, bodies, edits, deletes) after `kill -9` and a restart, once the
//! backend recreates the channels; without the switch nothing is written. One shard, so a
//! `/message` is in the model before the next request (the model runs inline there).

mod common;

use common::{api, At};
use serde_json::{json, Value};
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

fn start(dir: &Path, port: u16, persist: bool) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.args(["--shards", "1", "--port", &port.to_string()])
        .args(["--log-level", "WARNING"])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CHANNELSTREAM_INI")
        .env_remove("HERALD_PERSIST_HISTORY")
        .env_remove("HERALD_MODE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if persist {
        c.arg("--persist-history");
    }
    let child = c.spawn().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "herald did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn configs() -> Value {
    json!({
        "room": {"store_history": true, "history_size": 3},
        "all": {"store_history": true, "history_size": 0},
    })
}

/// Post one message; its uuid from the echo.
fn post(at: &At, channel: &str, n: u32, extra: Value) -> String {
    let mut m = json!({"channel": channel, "user": "sys", "message": {"n": n}});
    if let (Some(o), Some(e)) = (m.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    let r = api(at, "POST", "/message", &json!([m]));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()[0]["uuid"].as_str().unwrap().to_owned()
}

fn histories(at: &At) -> Value {
    let info = api(
        at,
        "POST",
        "/info",
        &json!({"info": {"channels": ["room", "all"]}}),
    );
    assert_eq!(info.status, 200);
    let v = info.json();
    json!({
        "room": v["channels"]["room"]["history"],
        "all": v["channels"]["all"]["history"],
    })
}

fn uuids(h: &Value) -> Vec<String> {
    h.as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["uuid"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The store's `(uuid, msg)` rows of a channel, oldest first (empty while the table is not
/// there yet).
fn stored(dir: &Path, channel: &str) -> Vec<(String, String)> {
    let path = dir.join("herald.sqlite3");
    let Ok(c) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut st) = c.prepare("SELECT uuid, msg FROM cs_history WHERE channel = ?1 ORDER BY seq")
    else {
        return Vec::new();
    };
    st.query_map([channel], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn history_survives_kill_9_exactly() {
    let dir = common::pushi::data_dir("cshist");
    let port = free_port();
    let at = At(([127, 0, 0, 1], port).into());
    let mut child = start(&dir, port, true);
    let r = api(&at, "POST", "/channel_config", &configs());
    assert_eq!(r.status, 200, "{}", r.text());

    let room: Vec<String> = (0..6).map(|n| post(&at, "room", n, json!({}))).collect();
    let all: Vec<String> = (0..4).map(|n| post(&at, "all", n, json!({}))).collect();
    post(&at, "all", 99, json!({"no_history": true}));
    // Delete one of room's kept three and one of all's; edit one in each (the edit last).
    let del = json!([{"channel": "room", "uuid": room[4]}, {"channel": "all", "uuid": all[1]}]);
    assert_eq!(api(&at, "DELETE", "/message", &del).status, 200);
    let edit = json!([
        {"channel": "all", "uuid": all[0], "message": {"n": "edited all"}},
        {"channel": "room", "uuid": room[5], "message": {"n": "edited room"}},
    ]);
    assert_eq!(api(&at, "PATCH", "/message", &edit).status, 200);

    let before = histories(&at);
    assert_eq!(
        uuids(&before["room"]),
        vec![room[3].clone(), room[5].clone()]
    );
    assert_eq!(
        uuids(&before["all"]),
        vec![all[0].clone(), all[2].clone(), all[3].clone()]
    );
    assert_eq!(before["room"][1]["message"], json!({"n": "edited room"}));

    // The store writes after the model, on its own thread: wait until it holds the same
    // messages (the edit of room, sent last, committed with or after everything before it).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = stored(&dir, "room");
        let a = stored(&dir, "all");
        let ids = |v: &[(String, String)]| v.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>();
        if ids(&r) == uuids(&before["room"])
            && ids(&a) == uuids(&before["all"])
            && r.last().is_some_and(|(_, m)| m.contains("edited room"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store never caught up: {r:?} {a:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let port = free_port();
    let at = At(([127, 0, 0, 1], port).into());
    let mut child = start(&dir, port, true);
    // Channels are the backend's to create: none exists yet.
    let v = api(
        &at,
        "POST",
        "/info",
        &json!({"info": {"channels": ["room"]}}),
    )
    .json();
    assert_eq!(v["channels"], json!({}), "{v}");
    // A /connect that recreates both channels with their configs shows the history.
    let c = api(
        &at,
        "POST",
        "/connect",
        &json!({"username": "u", "channels": ["room", "all"], "channel_configs": configs()}),
    );
    assert_eq!(c.status, 200, "{}", c.text());
    let cv = c.json();
    assert_eq!(
        cv["channels_info"]["channels"]["room"]["history"],
        before["room"]
    );
    let after = histories(&at);
    assert_eq!(after, before);

    // Retention still holds after the restart: two more in room keep the newest three.
    let n1 = post(&at, "room", 10, json!({}));
    let n2 = post(&at, "room", 11, json!({}));
    let h = histories(&at);
    assert_eq!(
        uuids(&h["room"]),
        vec![room[5].clone(), n1.clone(), n2.clone()]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&dir, "room")
        .iter()
        .map(|(u, _)| u.clone())
        .collect::<Vec<_>>()
        != uuids(&h["room"])
    {
        assert!(Instant::now() < deadline, "store not pruned to 3");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_the_switch_nothing_is_written() {
    let dir = common::pushi::data_dir("cshist-off");
    let port = free_port();
    let at = At(([127, 0, 0, 1], port).into());
    let mut child = start(&dir, port, false);
    assert_eq!(api(&at, "POST", "/channel_config", &configs()).status, 200);
    post(&at, "room", 1, json!({}));
    // The model has it (the POST is answered before the model runs; /info comes after it).
    let h = histories(&at);
    assert_eq!(h["room"].as_array().map(Vec::len), Some(1));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.exists(),
        "a data directory appeared without --persist-history"
    );
}
