//! `Model::handle`: commands through their validators to the typed operations, schema
//! errors mapped to 422/500, and replies sent to the right request.

use super::*;

#[test]
fn handle_maps_schema_errors_and_replies() {
    let mut w = World::new();
    let now = w.now(0);
    w.m.handle(Some(req(1)), Command::Connect(json!({})), now, &mut w.fx);
    let r = w.fx.reply_for(req(1)).unwrap();
    match crate::channelstream::api::schema::connect(&json!({})) {
        Err(SchemaError::Crash) => {
            assert_eq!((r.status, r.kind), (500, ContentKind::Text));
            assert_eq!(&r.body[..], b"Internal Server Error");
        }
        Err(SchemaError::Invalid(v)) => {
            assert_eq!((r.status, r.kind), (422, ContentKind::Json));
            assert_eq!(body_json(&r), v);
        }
        Ok(_) => assert_eq!(r.status, 200),
    }
    w.m.handle(
        Some(req(2)),
        Command::Disconnect(Uuid::new_v4()),
        now,
        &mut w.fx,
    );
    assert_eq!(&w.fx.reply_for(req(2)).unwrap().body[..], b"false");
    w.m.handle(Some(req(3)), Command::AdminJson, now, &mut w.fx);
    assert_eq!(w.fx.reply_for(req(3)).unwrap().status, 200);
    w.m.handle(
        None,
        Command::Messages(vec![msg_cmd("a", Some("x"), "y")]),
        now,
        &mut w.fx,
    );
    assert!(w.fx.replies.is_empty());
    assert_eq!(w.m.stats().total_unique_messages, 1);
    let s = sock(5);
    w.m.handle(
        None,
        Command::WsOpen {
            conn_id: Uuid::new_v4(),
            sock: s,
        },
        now,
        &mut w.fx,
    );
    assert_eq!(w.fx.closes, vec![(s, CloseCode::Normal)]);
}

/// Strict mode's close code for an unknown `conn_id` (`Model::set_unknown_conn_close`).
#[test]
fn unknown_conn_close_code_is_configurable() {
    let mut w = World::new();
    w.m.set_unknown_conn_close(crate::channelstream::strict::UNKNOWN_CONN_CLOSE);
    let now = w.now(0);
    let s = sock(6);
    let cmd = Command::WsOpen {
        conn_id: Uuid::new_v4(),
        sock: s,
    };
    w.m.handle(None, cmd, now, &mut w.fx);
    assert_eq!(w.fx.closes, vec![(s, CloseCode::Library(4404))]);
}
