//! A connection's life between its socket closing (or `/disconnect`) and the GC pass that
//! collects it, with the reactor ticking only at `next_deadline` (an idle model skips GC
//! passes, but the 1 s grid goes on), and the order of users in presence lists and `/info`.

use super::*;

/// The members of `chan` in `/info`.
fn info_users(w: &mut World, chan: &str) -> Value {
    w.info()["channels"][chan]["users"].clone()
}

#[test]
fn close_then_disconnect_on_an_idle_model_is_true_until_the_next_grid_pass() {
    let mut w = World::new();
    w.configure(0, "c", Some(presence_config()));
    let (bob, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.ws(10, bob, sock(2));
    let (alice, _) = w.connect(20, connect_cmd("alice", &["c"]));
    w.ws(30, alice, sock(1));
    // Nothing can be collected before 15 s, so no GC pass runs: the grid (1 s, 2 s, ...)
    // is not advanced by ticks.
    w.follow(3_200);
    w.fx.frames.clear();
    // The JS client's disconnect(): socket close and /disconnect in the same tick.
    w.m.ws_closed(alice, sock(1), w.now(3_210));
    let r = w.m.disconnect(alice, w.now(3_215));
    assert_eq!(&r.body[..], b"true");
    assert_eq!(
        w.m.next_deadline(),
        Some(w.now(4_000).mono),
        "the next grid point"
    );
    // Between the close and the pass: the user, its channel membership, its connection.
    assert_eq!(info_users(&mut w, "c"), json!(["alice", "bob"]));
    assert_eq!(w.info()["users"].as_array().map(Vec::len), Some(2));
    let admin = body_json(&w.m.admin_json(w.now(3_300)));
    assert_eq!(admin["total_connections"], 2);
    w.tick(3_999);
    assert!(w.m.has_connection(&alice));
    assert!(
        w.fx.take_for(sock(2)).is_empty(),
        "no parted before the pass"
    );
    w.follow(4_000);
    assert!(!w.m.has_connection(&alice));
    let got = w.fx.take_for(sock(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0]["message"]["action"], "parted");
    assert_eq!(got[0][0]["users"], json!([{"user": "bob", "state": {}}]));
    assert_eq!(info_users(&mut w, "c"), json!(["bob"]));
    assert_eq!(&w.m.disconnect(alice, w.now(4_010)).body[..], b"false");
    // The client closed its socket: the GC has nothing to close.
    assert!(w.fx.closes.is_empty());
}

#[test]
fn disconnect_alone_after_an_idle_spell_waits_for_the_grid() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.ws(1, id, sock(1));
    w.follow(12_345);
    assert_eq!(&w.m.disconnect(id, w.now(12_400)).body[..], b"true");
    w.follow(12_999);
    assert!(w.m.has_connection(&id));
    w.follow(13_000);
    assert!(!w.m.has_connection(&id));
    assert_eq!(w.fx.closes, vec![(sock(1), CloseCode::Normal)]);
}

#[test]
fn a_due_pass_is_not_skipped_by_a_command_arriving_first() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.m.disconnect(id, w.now(100));
    // The reactor is late: a command at 1.2 s comes before the tick due at 1 s.
    assert_eq!(w.m.disconnect(id, w.now(1_200)).body[..], b"true"[..]);
    w.tick(1_200);
    assert!(!w.m.has_connection(&id), "the pass due at 1 s still ran");
}

#[test]
fn closing_a_replaced_socket_marks_the_connection_as_in_0_7_1() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.ws(10, id, sock(1));
    w.ws(20, id, sock(2));
    w.m.ws_closed(id, sock(1), w.now(40));
    assert!(w.m.has_connection(&id));
    w.follow(1_000);
    assert!(!w.m.has_connection(&id));
    // The live replacement is closed by the GC.
    assert_eq!(w.fx.closes, vec![(sock(2), CloseCode::Normal)]);
}

#[test]
fn a_send_to_the_live_replacement_before_the_pass_revives_the_connection() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("u", &["c"]));
    w.ws(10, id, sock(1));
    w.ws(20, id, sock(2));
    w.m.ws_closed(id, sock(1), w.now(40));
    w.send(500, vec![msg_cmd("x", Some("c"), "hi")]);
    assert_eq!(w.fx.take_for(sock(2)).len(), 1);
    w.follow(3_000);
    assert!(
        w.m.has_connection(&id),
        "the successful send marked it active"
    );
    assert!(w.fx.closes.is_empty());
}

#[test]
fn presence_lists_follow_first_join_order_and_info_sorts() {
    let mut w = World::new();
    w.configure(0, "c", Some(presence_config()));
    let (zed, _) = w.connect(0, connect_cmd("zed", &["c"]));
    w.ws(1, zed, sock(9));
    let mut ids = Vec::new();
    for (i, n) in ["mike", "carl", "xena", "anna"].iter().enumerate() {
        let (id, _) = w.connect(10 + i as u64, connect_cmd(n, &["c"]));
        ids.push(id);
    }
    let names = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|u| u["user"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let got = w.fx.take_for(sock(9));
    assert_eq!(
        names(&got[3][0]),
        ["zed", "mike", "carl", "xena", "anna"],
        "joined lists: channel join order, the joiner last"
    );
    // carl leaves and comes back: to the end.
    let cmd = |id| SubscribeCmd {
        conn_id: id,
        channels: strings(&["c"]),
        info: InfoResolution::default(),
        channel_configs: vec![],
    };
    w.m.unsubscribe(cmd(ids[1]), w.now(100), &mut w.fx);
    w.m.subscribe(cmd(ids[1]), w.now(110), &mut w.fx);
    let got = w.fx.take_for(sock(9));
    assert_eq!(names(&got[0][0]), ["zed", "mike", "xena", "anna"]);
    assert_eq!(names(&got[1][0]), ["zed", "mike", "xena", "anna", "carl"]);
    assert_eq!(
        info_users(&mut w, "c"),
        json!(["anna", "carl", "mike", "xena", "zed"]),
        "Channel.get_info sorts"
    );
}

#[test]
fn two_marked_connections_of_one_user_in_a_row_take_two_passes() {
    let mut w = World::new();
    w.configure(0, "c", Some(presence_config()));
    w.configure(0, "d", None);
    let (bob, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.ws(1, bob, sock(9));
    let (a1, _) = w.connect(10, connect_cmd("alice", &["c", "d"]));
    let mut second = connect_cmd("alice", &["c"]);
    second.conn_id = Uuid::new_v4();
    let (a2, _) = w.connect(20, second);
    w.ws(30, a1, sock(1));
    w.fx.frames.clear();
    w.m.disconnect(a1, w.now(100));
    w.m.disconnect(a2, w.now(110));
    w.tick(1_000);
    // a1 went (first in the list), a2 was skipped: alice is still a member, no parted.
    assert!(!w.m.has_connection(&a1));
    assert!(w.m.has_connection(&a2));
    assert_eq!(w.fx.closes, vec![(sock(1), CloseCode::Normal)]);
    assert!(w.fx.take_for(sock(9)).is_empty());
    assert_eq!(w.info()["channels"]["c"]["total_connections"], 2);
    assert_eq!(w.info()["channels"]["d"]["total_connections"], 0);
    w.tick(2_000);
    assert!(!w.m.has_connection(&a2));
    let got = w.fx.take_for(sock(9));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0]["message"]["action"], "parted");
    assert_eq!(w.info()["channels"]["c"]["users"], json!(["bob"]));
}

#[test]
fn a_connection_skipped_in_one_channel_stays_there_as_a_ghost_for_one_pass() {
    let mut w = World::new();
    let mut first = connect_cmd("alice", &["c"]);
    first.conn_id = Uuid::new_v4();
    let (a1, _) = w.connect(0, first);
    let (a2, _) = w.connect(10, connect_cmd("alice", &["c", "d"]));
    w.m.disconnect(a1, w.now(100));
    w.m.disconnect(a2, w.now(110));
    w.tick(1_000);
    // In "c" a2 was skipped after a1; in "d" it was removed, so it is collected (gone from
    // the id map and the user) but still counted in "c" until the next pass.
    assert!(!w.m.has_connection(&a1) && !w.m.has_connection(&a2));
    assert_eq!(w.info()["channels"]["c"]["total_connections"], 1);
    assert_eq!(w.info()["channels"]["d"]["total_connections"], 0);
    let admin = body_json(&w.m.admin_json(w.now(1_000)));
    assert_eq!(admin["total_connections"], 0);
    w.tick(2_000);
    assert_eq!(w.info()["channels"]["c"]["total_connections"], 0);
}
