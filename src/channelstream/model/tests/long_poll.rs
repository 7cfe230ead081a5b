//! Long polling (`GET /listen`): the 5 s first wait and the 0.25 s gap, batching, the
//! item cap, superseded and aborted polls, and the 401 and 500 answers.

use super::*;

#[test]
fn long_poll_waits_five_seconds_then_a_quarter() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("erin", &["c"]));
    // Quirk 17: no queue at the 5 s check, so heartbeats stop for good.
    w.run(0, 6000);
    w.listen(6000, req(1), id, None);
    assert_eq!(w.m.next_deadline(), Some(w.now(11_000).mono));
    w.run(6000, 11_000);
    assert!(w.fx.replies.is_empty(), "still waiting for the first item");
    w.tick(11_200);
    assert!(w.fx.replies.is_empty(), "then one 0.25 s gap");
    w.tick(11_250);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!(&r.body[..], b"[]");
}

#[test]
fn long_poll_batches_until_a_quarter_second_gap() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    w.send(1000, vec![msg_cmd("a", Some("c"), "1")]);
    w.send(1200, vec![msg_cmd("a", Some("c"), "2")]);
    w.send(1400, vec![msg_cmd("a", Some("c"), "3")]);
    w.tick(1600);
    assert!(w.fx.replies.is_empty());
    w.tick(1650);
    let v = body_json(&w.fx.reply_for(req(1)).unwrap());
    assert_eq!(v.as_array().unwrap().len(), 3);
    // Between polls, messages are dropped (and come back through catch-up).
    w.send(1700, vec![msg_cmd("a", Some("c"), "4")]);
    w.listen(1800, req(2), id, None);
    w.tick(2050);
    let v = body_json(&w.fx.reply_for(req(2)).unwrap());
    assert_eq!(v[0]["message"]["text"], "4");
    assert_eq!(v[0]["catchup"], true);
}

#[test]
fn listen_unknown_connection_is_pyramid_401() {
    let mut w = World::new();
    w.listen(0, req(1), Uuid::new_v4(), None);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert_eq!((r.status, r.kind), (401, ContentKind::Html));
    let body = std::str::from_utf8(&r.body).unwrap();
    assert!(body.starts_with("<html>\n <head>\n  <title>401 Unauthorized</title>"));
    assert!(body.contains("you requested.  Either you supplied"));
    assert!(body.ends_with("<br/><br/>\n\n\n\n </body>\n</html>"));
}

#[test]
fn superseded_poll_is_answered_and_aborted_poll_is_silent() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    w.listen(200, req(2), id, None);
    let r = w.fx.reply_for(req(1)).expect("superseded poll answered");
    assert_eq!((r.status, &r.body[..]), (200, &b"[]"[..]));
    // The client of poll 2 leaves; the poll runs out without a reply, still marking activity.
    w.m.listen_aborted(Some(req(2)), id);
    w.run(200, 6000);
    assert!(w.fx.replies.is_empty());
    // A stale abort for an old request does not touch the current poll.
    w.listen(6000, req(3), id, None);
    w.m.listen_aborted(Some(req(2)), id);
    w.run(6000, 10_250);
    assert!(w.fx.reply_for(req(3)).is_some());
}

#[test]
fn poll_of_a_collected_connection_gets_500() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(100, req(1), id, None);
    let r = w.m.disconnect(id, w.now(200));
    assert_eq!(&r.body[..], b"true");
    w.run(200, 1100);
    // Collected, but 0.7.1's greenlet only crashes when its 5 s wait runs out.
    assert!(w.fx.reply_for(req(1)).is_none());
    assert!(!w.m.has_connection(&id));
    w.run(1100, 5200);
    let r = w.fx.reply_for(req(1)).expect("answered");
    assert_eq!((r.status, r.kind), (500, ContentKind::Text));
    assert_eq!(&r.body[..], b"Internal Server Error");
    assert!(!w.m.has_connection(&id));
    assert_eq!(&w.m.disconnect(id, w.now(1200)).body[..], b"false");
}

#[test]
fn a_poll_under_a_constant_stream_answers_at_the_cap() {
    let mut w = World::new();
    let (id, _) = w.connect(0, connect_cmd("bob", &["c"]));
    w.listen(10, req(1), id, Some(""));
    let batch: Vec<MessageCmd> = (0..crate::channelstream::model::clock::POLL_MAX_ITEMS)
        .map(|i| msg_cmd("a", Some("c"), &i.to_string()))
        .collect();
    w.send(20, batch);
    assert_eq!(w.m.next_deadline(), Some(w.now(20).mono), "due at once");
    w.tick(20);
    let r = w.fx.reply_for(req(1)).unwrap();
    assert!(r.body.starts_with(b"[\n"), "empty callback = plain JSON");
    assert_eq!(
        body_json(&r).as_array().map(Vec::len),
        Some(crate::channelstream::model::clock::POLL_MAX_ITEMS)
    );
}
