//! `herald-bench`'s Pusher presets against a real in-process Herald (two shards, so channels
//! are owned by both): the presence churn run must count every member event it is owed, and
//! the app flags (`--pusher-app-id`, `--pusher-key`, `--pusher-secret`) must be what the tool
//! connects and signs with, so that it can measure another Pusher server (sockudo) too.

mod common;
use common::Server;
use serde_json::Value;
use std::process::Command;

/// A Herald whose only app is sockudo's benchmark app, not the default one.
fn server() -> Server {
    Server::with(|c| {
        c.shards = 2;
        c.default_app_id = "12345".into();
        c.default_app_key = "bench-key".into();
        c.default_app_secret = "bench-secret".into();
    })
}

fn bench(server: &Server, secret: &str, args: &[&str]) -> Value {
    let target = format!("http://{}", server.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args([
            "--quiet", "--pause", "0", "--json", "-", "--target", &target,
        ])
        .args(["--pusher-app-id", "12345", "--pusher-key", "bench-key"])
        .args(["--pusher-secret", secret, "--connect-timeout", "10"])
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

#[test]
fn presence_churn_counts_every_member_event() {
    let s = server();
    // 40 members in 4 channels of 10, 4 churners (one per channel) toggling 40 times a second
    // for 1 s, 20 publishes.
    let rep = bench(
        &s,
        "bench-secret",
        &[
            "--scenario",
            "pusher-presence-churn",
            "--subs",
            "40",
            "--channels",
            "4",
            "--churners",
            "4",
            "--churn-rate",
            "40",
            "--rate",
            "20",
            "--duration",
            "1",
            "--drain",
            "3",
        ],
    );
    let r = &rep["runs"][0];
    assert_eq!(u(&r["subs_connected"]), 40, "{r}");
    assert_eq!(
        (u(&r["expected_deliveries"]), u(&r["delivered"])),
        (200, 200)
    );
    let p = &r["presence"];
    assert_eq!(u(&p["churners"]), 4);
    let ops = u(&p["churn_ops"]);
    assert!((38..=41).contains(&ops), "churn ops {ops}");
    // Every operation owes one event to each of the 10 counted members of its channel.
    assert_eq!(u(&p["member_expected"]), ops * 10);
    assert_eq!(u(&p["member_events"]), ops * 10, "{p}");
    // Half the operations are joins: their member_added carry the join's time.
    let joins = u(&p["member_latency_ms"]["count"]);
    assert!(
        joins >= (ops / 2) * 10 - 10 && joins <= ops.div_ceil(2) * 10,
        "{joins} of {ops}"
    );
    assert!(p["member_latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    // No subscriber or churner failed, none was closed.
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "{r}");
}

#[test]
fn the_app_flags_are_what_it_signs_with() {
    let s = server();
    let args = [
        "--scenario",
        "pusher-fanout-1k-r25",
        "--subs",
        "10",
        "--rate",
        "20",
        "--duration",
        "0.5",
        "--drain",
        "2",
    ];
    let ok = &bench(&s, "bench-secret", &args)["runs"][0];
    assert_eq!(u(&ok["messages_accepted"]), 10, "{ok}");
    assert_eq!(u(&ok["delivered"]), 100);
    // The same run signed with another secret: every publish is refused (401).
    let bad = &bench(&s, "wrong-secret", &args)["runs"][0];
    assert_eq!(u(&bad["messages_accepted"]), 0, "{bad}");
    assert_eq!(u(&bad["publish_errors"]), 10);
}
