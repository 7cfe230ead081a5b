//! The building blocks under the operations: stored messages (`Msg`) and their socket form,
//! one-shot frame rendering, long-poll bodies, the heartbeat frame, Python equality of state
//! values and the uptime string. Checked alone so a failure elsewhere is not blamed on them.

use super::*;

#[test]
fn msg_set_keeps_position_and_appends_new_keys() {
    let mut m = Msg::default();
    m.push("a", FieldValue::Null)
        .push("b", FieldValue::Bool(true));
    m.set("a", FieldValue::Static("x"));
    m.set("c", FieldValue::Null);
    m.remove("b");
    assert_eq!(keys(&m.to_http_value()), vec!["a", "c"]);
    assert_eq!(m.get("a"), Some(&FieldValue::Static("x")));
}

#[test]
fn socket_form_strips_delivery_keys_and_sets_catchup() {
    let ts = Timestamp::Aware(
        chrono::DateTime::parse_from_rfc3339("2020-01-02T03:04:05+00:00").unwrap(),
    );
    let mut m = Msg::default();
    m.push("pm_users", FieldValue::List(vec!["a".into()]))
        .push("exclude_users", FieldValue::List(vec![]))
        .push("no_history", FieldValue::Bool(false))
        .push("timestamp", FieldValue::Time(ts))
        .push("type", FieldValue::Static("message:edit"));
    let http = m.to_http_value();
    assert_eq!(http["timestamp"], "2020-01-02T03:04:05+00:00");
    let sock = m.to_socket_value(false);
    assert_eq!(keys(&sock), vec!["timestamp", "type"]);
    assert_eq!(sock["timestamp"], "2020-01-02T03:04:05Z");
    // Catch-up appends `catchup` when absent, and sets it in place when present.
    assert_eq!(
        keys(&m.to_socket_value(true)),
        vec!["timestamp", "type", "catchup"]
    );
    m.set("catchup", FieldValue::Bool(false));
    m.set("type", FieldValue::Static("message"));
    let cu = m.to_socket_value(true);
    assert_eq!(keys(&cu), vec!["timestamp", "type", "catchup"]);
    assert_eq!(cu["catchup"], true);
}

#[test]
fn render_frames_once_and_item_is_a_slice_of_the_frame() {
    let mut m = Msg::default();
    m.push("type", FieldValue::Static("message")).push(
        "message",
        FieldValue::Json(json!({"text": "x".repeat(300)})),
    );
    let mut buf = Vec::new();
    let r = render(&m, false, &mut buf);
    let v = frame_json(&r.frame);
    assert_eq!(
        v,
        json!([{"type": "message", "message": {"text": "x".repeat(300)}}])
    );
    // 16-bit length header here; the item is exactly the text between "[\n    " and "\n]".
    assert_eq!(r.frame[1], 126);
    let p = payload(&r.frame);
    assert!(p.starts_with(b"[\n    {"));
    assert_eq!(&p[6..p.len() - 2], &r.item[..]);
    let item: Value = serde_json::from_slice(&r.item).unwrap();
    assert_eq!(item["type"], "message");
}

#[test]
fn poll_bodies_concatenate_items_like_json_dumps() {
    assert_eq!(&poll_body(&[], None)[..], b"[]");
    assert_eq!(&poll_body(&[], Some("cb"))[..], b"cb([])");
    let items = [
        Bytes::from_static(b"{\"a\": 1}"),
        Bytes::from_static(b"{\"b\": 2}"),
    ];
    assert_eq!(
        &poll_body(&items, None)[..],
        b"[\n    {\"a\": 1},\n    {\"b\": 2}\n]"
    );
    assert_eq!(
        &poll_body(&items[..1], Some("myCb"))[..],
        b"myCb([\n    {\"a\": 1}\n])"
    );
}

#[test]
fn heartbeat_frame_is_text_brackets() {
    assert_eq!(HEARTBEAT_FRAME, &[0x81, 0x02, 0x5b, 0x5d]);
}

#[test]
fn python_equality_of_state_values() {
    let cases = [
        (json!(1), json!(1.0), true),
        (json!(1), json!(true), true),
        (json!(0), json!(false), true),
        (json!(0.0), json!(false), true),
        (json!(2), json!(2.5), false),
        (json!("1"), json!(1), false),
        (json!(null), json!(null), true),
        (json!(null), json!(0), false),
        (json!("a"), json!("a"), true),
        (json!(9007199254740993u64), json!(9007199254740992.0), false),
    ];
    for (a, b, eq) in cases {
        assert_eq!(py_eq(&a, &b), eq, "{a} == {b}");
    }
}

#[test]
fn uptime_like_python_timedelta() {
    assert_eq!(uptime_string(7), "0:00:07");
    assert_eq!(uptime_string(3600 + 62), "1:01:02");
    assert_eq!(
        uptime_string(86_400 + 2 * 3600 + 3 * 60 + 4),
        "1 day, 2:03:04"
    );
    assert_eq!(uptime_string(3 * 86_400), "3 days, 0:00:00");
}
