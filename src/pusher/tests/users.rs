//! `user_data` parsing and the owner's registry: first/last connection, watchers, terminate.

use super::*;
use crate::dialect::{InboxFull, Response};
use crate::ids::ReqRef;
use bytes::Bytes;
use serde_json::json;

/// An outbox that records deliveries (decoded payloads) and closes.
#[derive(Default)]
struct Rec {
    delivered: Vec<(Value, Vec<SockRef>)>,
    closed: Vec<(SockRef, u16)>,
}

impl Outbox<()> for Rec {
    fn shard(&self) -> ShardId {
        ShardId(0)
    }
    fn reply(&mut self, _: ReqRef, _: Response) {}
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        let v: Value = serde_json::from_slice(&frame[2..]).unwrap();
        self.delivered.push((v, to.to_vec()));
    }
    fn close(&mut self, sock: SockRef, code: CloseCode) {
        self.closed.push((sock, u16::from(code)));
    }
    fn send(&mut self, _: ShardId, _: ()) -> Result<(), InboxFull> {
        Ok(())
    }
    fn set_counter(&mut self, _: usize, _: u64) {}
    fn metrics_text(&self) -> String {
        String::new()
    }
}

impl Rec {
    /// The watchlist events delivered, as (events, targets).
    fn watch_events(&mut self) -> Vec<(Value, Vec<SockRef>)> {
        std::mem::take(&mut self.delivered)
            .into_iter()
            .map(|(v, to)| {
                assert_eq!(v["event"], "pusher_internal:watchlist_events");
                let d: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
                (d["events"].clone(), to)
            })
            .collect()
    }
}

fn ids(v: &[&str]) -> Vec<Box<str>> {
    v.iter().map(|s| (*s).into()).collect()
}

#[test]
fn user_data_shapes() {
    let (s, cut) = parse_user_data(r#"{"id":"1","user_info":{"n":1}}"#).unwrap();
    assert_eq!((&*s.user, s.watchlist.len(), cut), ("1", 0, false));
    let (s, _) = parse_user_data(r#"{"id":"a","watchlist":["b","c","b"]}"#).unwrap();
    assert_eq!(s.watchlist.to_vec(), ids(&["b", "c"]), "repeats dropped");
    let many: Vec<String> = (0..150).map(|i| format!("u{i}")).collect();
    let (s, cut) = parse_user_data(&json!({"id":"a","watchlist":many}).to_string()).unwrap();
    assert!(cut);
    assert_eq!(s.watchlist.len(), MAX_WATCHLIST);
    assert_eq!(&*s.watchlist[99], "u99");
    let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    assert!(
        !parse_user_data(&json!({"id":"a","watchlist":hundred}).to_string())
            .unwrap()
            .1
    );
    for bad in [
        "",
        "[]",
        "{}",
        r#"{"id":""}"#,
        r#"{"id":1}"#,
        r#"{"id":"a\u0000"}"#,
        r#"{"id":"a","watchlist":"b"}"#,
        r#"{"id":"a","watchlist":[1]}"#,
        r#"{"id":"a","watchlist":[""]}"#,
    ] {
        assert!(parse_user_data(bad).is_err(), "{bad}");
    }
    let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(129));
    assert!(parse_user_data(&long).is_err());
    assert!(valid_id("user 1 é") && !valid_id("") && !valid_id("a\nb"));
}

#[test]
fn owner_is_stable_and_spread() {
    let spread: HashSet<_> = (0..64).map(|i| owner(0, &i.to_string(), 4)).collect();
    assert_eq!(spread.len(), 4);
    assert_eq!(owner(3, "u", 5), owner(3, "u", 5));
    assert_eq!(owner(0, "u", 1), ShardId(0));
}

#[test]
fn first_and_last_connection_tell_the_watchers() {
    let mut r = Registry::default();
    let mut out = Rec::default();
    let (a1, a2, w) = (
        SockRef::new(0, 1, 1),
        SockRef::new(1, 1, 1),
        SockRef::new(1, 2, 1),
    );
    // w watches "a" (offline) and "z": no initial event.
    let watch = |ids| UserMsg::Watch {
        app: 0,
        sock: w,
        ids,
    };
    r.handle(&mut out, watch(ids(&["a", "z"])));
    assert!(out.delivered.is_empty());
    let online = |sock| UserMsg::Online {
        app: 0,
        user: "a".into(),
        sock,
    };
    r.handle(&mut out, online(a1));
    r.handle(&mut out, online(a2));
    r.handle(&mut out, online(a2));
    assert_eq!(
        out.watch_events(),
        vec![(json!([{"name":"online","user_ids":["a"]}]), vec![w])],
        "once, on the first connection"
    );
    assert_eq!(r.sockets(0, "a"), &[a1, a2]);
    // Another watcher signing in now hears "a" is online at once.
    let v = SockRef::new(0, 9, 1);
    let msg = UserMsg::Watch {
        app: 0,
        sock: v,
        ids: ids(&["z", "a"]),
    };
    r.handle(&mut out, msg);
    assert_eq!(
        out.watch_events(),
        vec![(json!([{"name":"online","user_ids":["a"]}]), vec![v])]
    );
    let offline = |sock| UserMsg::Offline {
        app: 0,
        user: "a".into(),
        sock,
    };
    r.handle(&mut out, offline(a1));
    assert!(out.delivered.is_empty(), "a2 is still online");
    r.handle(&mut out, offline(a2));
    let mut ev = out.watch_events();
    assert_eq!(ev.len(), 1);
    ev[0].1.sort();
    assert_eq!(ev[0].0, json!([{"name":"offline","user_ids":["a"]}]));
    assert_eq!(ev[0].1, {
        let mut t = vec![w, v];
        t.sort();
        t
    });
    // Unwatching leaves nothing behind; another app is apart.
    for sock in [w, v] {
        let ids = ids(&["a", "z"]);
        r.handle(&mut out, UserMsg::Unwatch { app: 0, sock, ids });
    }
    assert!(r.is_empty(), "{r:?}");
    let other = UserMsg::Online {
        app: 1,
        user: "a".into(),
        sock: a1,
    };
    r.handle(&mut out, other);
    assert_eq!((r.len(), r.sockets(0, "a").len()), (1, 0));
}

#[test]
fn terminate_closes_every_signed_in_socket() {
    let mut r = Registry::default();
    let mut out = Rec::default();
    let socks = [SockRef::new(0, 1, 1), SockRef::new(1, 4, 2)];
    for sock in socks {
        let user = "7".into();
        r.handle(&mut out, UserMsg::Online { app: 0, user, sock });
    }
    let other = SockRef::new(1, 5, 1);
    let user = "8".into();
    r.handle(
        &mut out,
        UserMsg::Online {
            app: 0,
            user,
            sock: other,
        },
    );
    r.handle(
        &mut out,
        UserMsg::Terminate {
            app: 0,
            user: "7".into(),
        },
    );
    assert_eq!(out.delivered.len(), 1);
    let (v, to) = &out.delivered[0];
    assert_eq!(
        v,
        &json!({"event":"pusher:error","data":{"code":4009,"message":TERMINATED}})
    );
    assert_eq!(to, &socks.to_vec());
    assert_eq!(out.closed, vec![(socks[0], 4009), (socks[1], 4009)]);
    // Unknown users and apps: nothing.
    r.handle(
        &mut out,
        UserMsg::Terminate {
            app: 0,
            user: "nobody".into(),
        },
    );
    r.handle(
        &mut out,
        UserMsg::Terminate {
            app: 5,
            user: "7".into(),
        },
    );
    assert_eq!(out.closed.len(), 2);
}
