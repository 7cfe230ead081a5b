//! Event bodies, batches, `info` lists and routes.

use super::*;

fn app() -> App {
    App::new("1", "k", "s")
}

fn publishes(body: &[u8]) -> Result<Vec<Publish>, u16> {
    match events(0, &app(), body) {
        Ok(ApiAction::Publish(p, _)) | Ok(ApiAction::Query(p, _)) => Ok(p),
        Ok(ApiAction::Respond(r)) => Err(r.status),
        Ok(ApiAction::Terminate(..)) => Err(0),
        Err((s, _)) => Err(s),
    }
}

#[test]
fn event_bodies() {
    let p =
        publishes(br#"{"name":"e","data":"x","channels":["a","b"],"socket_id":"1.2"}"#).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(&*p[1].channel, "b");
    assert_eq!(p[0].except, Some(SockRef::new(1, 2, 0)));
    let p = publishes(br#"{"name":"e","data":{"a":1},"channel":"a"}"#).unwrap();
    assert_eq!(
        &p[0].frame[2..],
        br#"{"event":"e","channel":"a","data":"{\"a\":1}"}"#
    );
    assert_eq!(publishes(b"nope").unwrap_err(), 400);
    assert_eq!(
        publishes(br#"{"data":"x","channel":"a"}"#).unwrap_err(),
        400
    );
    assert_eq!(publishes(br#"{"name":"e","data":"x"}"#).unwrap_err(), 400);
    let p = publishes(br#"{"name":"e","data":"x","channels":["a","b","a"]}"#).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(
        publishes(br#"{"name":"e","data":"x","channels":["a",1]}"#).unwrap_err(),
        400
    );
    assert_eq!(
        publishes(br#"{"name":"e","data":"x","channel":"a b"}"#).unwrap_err(),
        400
    );
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let body = json!({"name":"e","data":"x","channels":many}).to_string();
    assert_eq!(publishes(body.as_bytes()).unwrap_err(), 400);
    let big = json!({"name":"e","data":"x".repeat(10 * 1024 + 1),"channel":"a"}).to_string();
    assert_eq!(publishes(big.as_bytes()).unwrap_err(), 413);
}

#[test]
fn per_app_limits() {
    let mut small = app();
    small.max_event_size = 4;
    small.max_channels_per_event = 2;
    let r = events(0, &small, br#"{"name":"e","data":"12345","channel":"a"}"#);
    assert_eq!(r.unwrap_err().0, 413);
    let r = events(
        0,
        &small,
        br#"{"name":"e","data":"1","channels":["a","b","c"]}"#,
    );
    assert_eq!(r.unwrap_err().0, 400);
}

#[test]
fn info_makes_a_query() {
    let body = br#"{"name":"e","data":"x","channels":["a","presence-b"],"info":"subscription_count,user_count"}"#;
    let Ok(ApiAction::Query(p, ask)) = events(0, &app(), body) else {
        panic!("a query")
    };
    assert_eq!(p.len(), 2);
    assert_eq!(
        ask.filter,
        Filter::Names(vec!["a".into(), "presence-b".into()])
    );
    let body = br#"{"name":"e","data":"x","channel":"a","info":"bogus"}"#;
    assert_eq!(events(0, &app(), body).unwrap_err().0, 400);
}

#[test]
fn batches() {
    let b = |items: Value| batch(0, &app(), json!({ "batch": items }).to_string().as_bytes());
    let one = json!({"name":"e","data":"x","channel":"a"});
    let Ok(ApiAction::Publish(p, r)) = b(json!([one, one])) else {
        panic!("publishes")
    };
    assert_eq!((p.len(), &r.body[..]), (2, &b"{}"[..]));
    let info = json!({"name":"e","data":"x","channel":"b","info":"subscription_count"});
    let Ok(ApiAction::Query(p, ask)) = b(json!([one, info])) else {
        panic!("a query")
    };
    assert_eq!(p.len(), 2);
    let a = Attrs {
        subscription_count: true,
        user_count: false,
        cache: false,
    };
    assert_eq!(ask.shape, Shape::Batch(vec![None, Some(("b".into(), a))]));
    let eleven: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    assert_eq!(b(Value::from(eleven)).unwrap_err().0, 400);
    assert_eq!(b(json!([])).unwrap_err().0, 400);
    let big = json!({"name":"e","data":"x".repeat(10 * 1024 + 1),"channel":"a"});
    assert_eq!(b(json!([one, big])).unwrap_err().0, 413);
}

#[test]
fn channel_queries() {
    assert!(list(0, None, None).is_ok());
    assert!(list(0, Some("user_count".into()), Some("presence-".into())).is_ok());
    assert_eq!(list(0, Some("user_count".into()), None).unwrap_err().0, 400);
    assert_eq!(
        list(0, Some("subscription_count".into()), None)
            .unwrap_err()
            .0,
        400
    );
    assert!(one(0, Some("subscription_count".into()), "a".into()).is_ok());
    assert_eq!(
        one(0, Some("user_count".into()), "a".into()).unwrap_err().0,
        400
    );
    assert!(one(0, Some("user_count".into()), "presence-a".into()).is_ok());
    assert_eq!(one(0, None, "a b".into()).unwrap_err().0, 400);
    assert_eq!(users(0, "private-a".into()).unwrap_err().0, 400);
    assert!(users(0, "presence-a".into()).is_ok());
}

#[test]
fn routes() {
    assert_eq!(route("events"), Some((Method::Post, Route::Events)));
    assert_eq!(route("batch_events"), Some((Method::Post, Route::Batch)));
    assert_eq!(route("channels"), Some((Method::Get, Route::Channels)));
    assert_eq!(
        route("channels/a%40b"),
        Some((Method::Get, Route::Channel("a@b".into())))
    );
    assert_eq!(
        route("channels/presence-a/users"),
        Some((Method::Get, Route::Users("presence-a".into())))
    );
    assert_eq!(
        route("users/7/terminate_connections"),
        Some((Method::Post, Route::Terminate("7".into())))
    );
    assert_eq!(route("channels/a/b"), None);
    assert_eq!(route(""), None);
}

#[test]
fn the_python_sdks_terminate_path_is_claimed() {
    assert!(is_sdk_terminate(b"/users/7/terminate_connections"));
    assert!(!is_sdk_terminate(b"/users/7"));
    assert!(!is_sdk_terminate(b"/user_state"));
    assert!(!is_sdk_terminate(b"/apps/1/users/7/terminate_connections"));
}
