//! Catch-up: what a websocket or `/listen` that attaches gets from the stored frames (PMs
//! filtered, `catchup: true`, only what is newer than the connection's last activity).

use super::*;

#[test]
fn catchup_on_ws_open_filters_pms_and_marks_catchup() {
    let mut w = World::new();
    let (frank, _) = w.connect(0, connect_cmd("frank", &["cu_chan"]));
    w.connect(0, connect_cmd("other", &["cu_chan"]));
    let m = msg_cmd("system", Some("cu_chan"), "for all");
    let mut pm_else = msg_cmd("system", Some("cu_chan"), "pm for someone else");
    pm_else.delivery.pm_users = strings(&["someone_else"]);
    let mut gpm = msg_cmd("system", None, "global pm for frank");
    gpm.delivery.pm_users = strings(&["frank"]);
    let mut excl = msg_cmd("system", Some("cu_chan"), "not frank");
    excl.delivery.exclude_users = strings(&["frank"]);
    w.send(1000, vec![m, pm_else, gpm, excl]);
    assert!(w.fx.frames.is_empty(), "nothing attached yet: dropped");
    w.ws(2000, frank, sock(1));
    let got = w.fx.take_for(sock(1));
    let texts: Vec<&Value> = got.iter().map(|f| &f[0]["message"]["text"]).collect();
    assert_eq!(texts, vec!["for all", "global pm for frank"]);
    for f in &got {
        assert_eq!(f[0]["catchup"], true);
        assert_eq!(keys(&f[0]).last(), Some(&"type"));
    }
    // The stored copies are untouched (history keeps catchup false).
    assert_eq!(w.fx.deliver_calls, 2, "one frame per caught-up message");
}

#[test]
fn catchup_only_newer_than_last_activity() {
    let mut w = World::new();
    w.send(0, vec![]);
    w.configure(0, "c", None);
    w.send(500, vec![msg_cmd("s", Some("c"), "before connect")]);
    let (id, _) = w.connect(1000, connect_cmd("u", &["c"]));
    w.send(1500, vec![msg_cmd("s", Some("c"), "after connect")]);
    w.ws(2000, id, sock(1));
    let got = w.fx.take_for(sock(1));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0]["message"]["text"], "after connect");
}

#[test]
fn catchup_on_listen_with_jsonp_callback() {
    let mut w = World::new();
    let (bob, _) = w.connect(0, connect_cmd("bob", &["room"]));
    w.connect(0, connect_cmd("alice", &["room"]));
    w.send(
        3000,
        vec![msg_cmd("alice", Some("room"), "while bob is away")],
    );
    w.listen(4000, req(1), bob, Some("myCb"));
    w.tick(4200);
    assert!(w.fx.replies.is_empty());
    w.tick(4250);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!((r.status, r.kind), (200, ContentKind::Html));
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(
        body.starts_with("myCb([\n    {") && body.ends_with("\n])"),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body[5..body.len() - 1]).unwrap();
    assert_eq!(v[0]["message"]["text"], "while bob is away");
    assert_eq!(v[0]["catchup"], true);
    // The end of the poll marked the connection active: the next poll has no catch-up.
    w.listen(4300, req(2), bob, None);
    w.run(4300, 5200);
    assert!(w.fx.replies.is_empty());
    w.tick(5250);
    let r = w.fx.reply_for(req(2)).unwrap();
    assert_eq!(
        &r.body[..],
        b"[]",
        "heartbeat at 5 s wakes the poll with nothing"
    );
}
