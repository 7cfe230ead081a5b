//! The bytes Channelstream nodes send each other on their per-node topics
//! (`herald:<db>:csn:<incarnation>`), kept apart from the routing (`cluster.rs`) so that the
//! encoding is a pure, table-tested function pair.
//!
//! Five messages: a model command for the owner node (`Q`, on the shared `herald:<db>:cs`
//! topic: the owner it is for, the origin incarnation, request id, the command as JSON), and
//! from the owner back to a node, on that node's own topic: a reply (`R`: request id, status,
//! content kind, body), a refusal (`B`: request id, answered 503 + `Retry-After`), a delivery
//! (`D`: the target sockets and the one encoded websocket frame) and a close (`C`: socket,
//! code). Sockets travel as the origin node's own `SockRef`s, which only that node reads.

use super::model::{Command, ContentKind, Reply, SockRef};
use super::pages::PageFormat;
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use serde_json::{json, Value};
use uuid::Uuid;

/// What arrived on a node's own topic.
#[derive(Debug)]
pub(super) enum NodeMsg {
    /// A command for the model owner `to`; `id` 0 = no reply wanted.
    Command {
        to: String,
        origin: String,
        id: u64,
        cmd: Command,
    },
    /// The owner's answer to request `id`.
    Reply { id: u64, reply: Reply },
    /// The owner could not take request `id` (not the owner any more, tables full).
    Busy { id: u64 },
    /// One frame for these sockets of this node.
    Deliver { to: Vec<SockRef>, frame: Bytes },
    /// Close this socket of this node.
    Close { sock: SockRef, code: CloseCode },
    /// Client activity on these sockets of `origin` in the last second, for the owner `to`.
    Activity {
        to: String,
        origin: String,
        socks: Vec<(SockRef, Uuid)>,
    },
}

const SOCK_LEN: usize = 10;

fn put_sock(v: &mut Vec<u8>, s: SockRef) {
    v.extend_from_slice(&s.shard.0.to_be_bytes());
    v.extend_from_slice(&s.slot.0.to_be_bytes());
    v.extend_from_slice(&s.gen.0.to_be_bytes());
}

fn get_sock(b: &[u8]) -> Option<SockRef> {
    let shard = u16::from_be_bytes(b.get(0..2)?.try_into().ok()?);
    let slot = u32::from_be_bytes(b.get(2..6)?.try_into().ok()?);
    let gen = u32::from_be_bytes(b.get(6..10)?.try_into().ok()?);
    Some(SockRef::new(shard, slot, gen))
}

fn get_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(0..8)?.try_into().ok()?))
}

fn put_name(v: &mut Vec<u8>, name: &str) {
    let b = name.as_bytes();
    let b = b.get(..b.len().min(255)).unwrap_or_default();
    v.push(b.len() as u8);
    v.extend_from_slice(b);
}

fn get_name(b: &[u8]) -> Option<(String, &[u8])> {
    let (&n, rest) = b.split_first()?;
    let name = std::str::from_utf8(rest.get(..usize::from(n))?).ok()?;
    Some((name.to_owned(), rest.get(usize::from(n)..)?))
}

/// `Q`: a command for the owner `to`. `None` for commands that never cross nodes.
pub(super) fn command(to: &str, origin: &str, id: u64, cmd: &Command) -> Option<Bytes> {
    let sock = |s: &SockRef| json!([s.shard.0, s.slot.0, s.gen.0]);
    let j = match cmd {
        Command::Connect(b) => json!({"k": "connect", "b": b}),
        Command::Subscribe {
            body,
            query_conn_id,
        } => json!({"k": "subscribe", "b": body, "q": query_conn_id}),
        Command::Unsubscribe {
            body,
            query_conn_id,
        } => json!({"k": "unsubscribe", "b": body, "q": query_conn_id}),
        Command::UserState(b) => json!({"k": "user_state", "b": b}),
        Command::ChannelConfig(b) => json!({"k": "channel_config", "b": b}),
        Command::Info(b) => json!({"k": "info", "b": b}),
        Command::Disconnect(id) => json!({"k": "disconnect", "c": id.to_string()}),
        Command::AdminJson => json!({"k": "admin_json"}),
        Command::AdminConnections => json!({"k": "admin_connections"}),
        Command::Listen {
            conn_id,
            callback,
            page,
        } => {
            let p = match page {
                PageFormat::Html => "h",
                PageFormat::Json => "j",
                PageFormat::Plain => "p",
            };
            json!({"k": "listen", "c": conn_id.to_string(), "cb": callback, "p": p})
        }
        Command::ListenAborted { conn_id } => {
            json!({"k": "listen_aborted", "c": conn_id.to_string()})
        }
        Command::WsOpen { conn_id, sock: s } => {
            json!({"k": "ws_open", "c": conn_id.to_string(), "s": sock(s)})
        }
        Command::WsClosed { conn_id, sock: s } => {
            json!({"k": "ws_closed", "c": conn_id.to_string(), "s": sock(s)})
        }
        Command::WsActivity { conn_id, sock: s } => {
            json!({"k": "ws_activity", "c": conn_id.to_string(), "s": sock(s)})
        }
        Command::Messages(_) | Command::Edits(_) | Command::Deletes(_) => return None,
    };
    let mut v = Vec::with_capacity(64);
    v.push(b'Q');
    put_name(&mut v, to);
    put_name(&mut v, origin);
    v.extend_from_slice(&id.to_be_bytes());
    serde_json::to_writer(&mut v, &j).ok()?;
    Some(Bytes::from(v))
}

fn kind_byte(k: ContentKind) -> u8 {
    match k {
        ContentKind::Json => b'j',
        ContentKind::Html => b'h',
        ContentKind::Text => b't',
        ContentKind::Plain => b'p',
    }
}

/// `R`: the owner's reply to request `id`.
pub(super) fn reply(id: u64, r: &Reply) -> Bytes {
    let mut v = Vec::with_capacity(12 + r.body.len());
    v.push(b'R');
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&r.status.to_be_bytes());
    v.push(kind_byte(r.kind));
    v.extend_from_slice(&r.body);
    Bytes::from(v)
}

/// `B`: request `id` refused by the owner.
pub(super) fn busy(id: u64) -> Bytes {
    let mut v = vec![b'B'];
    v.extend_from_slice(&id.to_be_bytes());
    Bytes::from(v)
}

/// `D`: `frame` for the sockets `to` of the receiving node.
pub(super) fn deliver(to: &[SockRef], frame: &Bytes) -> Bytes {
    let mut v = Vec::with_capacity(5 + to.len() * SOCK_LEN + frame.len());
    v.push(b'D');
    v.extend_from_slice(&(to.len() as u32).to_be_bytes());
    for s in to {
        put_sock(&mut v, *s);
    }
    v.extend_from_slice(frame);
    Bytes::from(v)
}

/// `C`: close `sock` of the receiving node with `code`.
pub(super) fn close(sock: SockRef, code: CloseCode) -> Bytes {
    let mut v = vec![b'C'];
    put_sock(&mut v, sock);
    v.extend_from_slice(&u16::from(code).to_be_bytes());
    Bytes::from(v)
}

/// `A`: client activity on sockets of `origin` (with their connections), for the owner `to`:
/// one message per node per second however many of its sockets spoke.
pub(super) fn activity(to: &str, origin: &str, socks: &[(SockRef, Uuid)]) -> Bytes {
    let mut v = Vec::with_capacity(8 + to.len() + origin.len() + socks.len() * 26);
    v.push(b'A');
    put_name(&mut v, to);
    put_name(&mut v, origin);
    for (s, id) in socks {
        put_sock(&mut v, *s);
        v.extend_from_slice(id.as_bytes());
    }
    Bytes::from(v)
}

/// Parse what arrived on this node's topic; `None` if malformed.
pub(super) fn parse(p: &Bytes) -> Option<NodeMsg> {
    let (&k, rest) = p.split_first()?;
    match k {
        b'Q' => {
            let (to, rest) = get_name(rest)?;
            let (origin, rest) = get_name(rest)?;
            let id = get_u64(rest)?;
            let j: Value = serde_json::from_slice(rest.get(8..)?).ok()?;
            Some(NodeMsg::Command {
                to,
                origin,
                id,
                cmd: decode_command(j)?,
            })
        }
        b'R' => {
            let id = get_u64(rest)?;
            let status = u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?);
            let kind = match rest.get(10)? {
                b'j' => ContentKind::Json,
                b'h' => ContentKind::Html,
                b't' => ContentKind::Text,
                b'p' => ContentKind::Plain,
                _ => return None,
            };
            let body = p.slice(12..);
            Some(NodeMsg::Reply {
                id,
                reply: Reply { status, kind, body },
            })
        }
        b'B' => Some(NodeMsg::Busy { id: get_u64(rest)? }),
        b'A' => {
            let (to, rest) = get_name(rest)?;
            let (origin, rest) = get_name(rest)?;
            if rest.len() % (SOCK_LEN + 16) != 0 {
                return None;
            }
            let socks = rest
                .chunks(SOCK_LEN + 16)
                .map(|c| Some((get_sock(c)?, Uuid::from_slice(c.get(SOCK_LEN..)?).ok()?)))
                .collect::<Option<_>>()?;
            Some(NodeMsg::Activity { to, origin, socks })
        }
        b'D' => {
            let n = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
            let end = 4usize.checked_add(n.checked_mul(SOCK_LEN)?)?;
            let socks = rest.get(4..end)?;
            let to = socks
                .chunks(SOCK_LEN)
                .map(get_sock)
                .collect::<Option<_>>()?;
            Some(NodeMsg::Deliver {
                to,
                frame: p.slice(1 + end..),
            })
        }
        b'C' => {
            let sock = get_sock(rest)?;
            let code = u16::from_be_bytes(rest.get(SOCK_LEN..SOCK_LEN + 2)?.try_into().ok()?);
            Some(NodeMsg::Close {
                sock,
                code: CloseCode::from(code),
            })
        }
        _ => None,
    }
}

fn decode_command(mut j: Value) -> Option<Command> {
    let body = j.get_mut("b").map(Value::take).unwrap_or(Value::Null);
    let s = |k: &str| j.get(k).and_then(Value::as_str).map(str::to_owned);
    let conn = || s("c").and_then(|c| Uuid::parse_str(&c).ok());
    let sock = || {
        let a = j.get("s")?.as_array()?;
        let n = |i: usize| a.get(i).and_then(Value::as_u64);
        Some(SockRef::new(
            u16::try_from(n(0)?).ok()?,
            u32::try_from(n(1)?).ok()?,
            u32::try_from(n(2)?).ok()?,
        ))
    };
    Some(match j.get("k")?.as_str()? {
        "connect" => Command::Connect(body),
        "subscribe" => Command::Subscribe {
            body,
            query_conn_id: s("q"),
        },
        "unsubscribe" => Command::Unsubscribe {
            body,
            query_conn_id: s("q"),
        },
        "user_state" => Command::UserState(body),
        "channel_config" => Command::ChannelConfig(body),
        "info" => Command::Info((!body.is_null()).then_some(body)),
        "disconnect" => Command::Disconnect(conn()?),
        "admin_json" => Command::AdminJson,
        "admin_connections" => Command::AdminConnections,
        "listen" => Command::Listen {
            conn_id: conn()?,
            callback: s("cb"),
            page: match j.get("p")?.as_str()? {
                "h" => PageFormat::Html,
                "j" => PageFormat::Json,
                _ => PageFormat::Plain,
            },
        },
        "listen_aborted" => Command::ListenAborted { conn_id: conn()? },
        "ws_open" => Command::WsOpen {
            conn_id: conn()?,
            sock: sock()?,
        },
        "ws_closed" => Command::WsClosed {
            conn_id: conn()?,
            sock: sock()?,
        },
        "ws_activity" => Command::WsActivity {
            conn_id: conn()?,
            sock: sock()?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(cmd: Command) -> Command {
        match parse(&command("n0.x", "n1.abc", 7, &cmd).unwrap()).unwrap() {
            NodeMsg::Command {
                to,
                origin,
                id,
                cmd,
            } => {
                assert_eq!((to.as_str(), origin.as_str(), id), ("n0.x", "n1.abc", 7));
                cmd
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_round_trip() {
        let id = Uuid::new_v4();
        let sock = SockRef::new(3, 70_000, 9);
        let c = round(Command::Connect(
            json!({"username": "a", "channels": ["x"]}),
        ));
        assert!(matches!(c, Command::Connect(v) if v["username"] == "a"));
        let c = round(Command::Subscribe {
            body: json!({"channels": ["y"]}),
            query_conn_id: Some("q".into()),
        });
        assert!(matches!(c, Command::Subscribe { query_conn_id: Some(q), .. } if q == "q"));
        assert!(matches!(round(Command::Info(None)), Command::Info(None)));
        let c = round(Command::Listen {
            conn_id: id,
            callback: Some("cb".into()),
            page: PageFormat::Json,
        });
        assert!(
            matches!(c, Command::Listen { conn_id, callback: Some(cb), page: PageFormat::Json }
            if conn_id == id && cb == "cb")
        );
        let c = round(Command::WsOpen { conn_id: id, sock });
        assert!(matches!(c, Command::WsOpen { conn_id, sock: s } if conn_id == id && s == sock));
        assert!(command("n", "m", 0, &Command::Messages(vec![])).is_none());
    }

    #[test]
    fn effects_round_trip_and_garbage() {
        let r = Reply {
            status: 422,
            kind: ContentKind::Json,
            body: Bytes::from_static(b"{}"),
        };
        match parse(&reply(5, &r)).unwrap() {
            NodeMsg::Reply { id, reply } => assert_eq!((id, reply), (5, r)),
            other => panic!("{other:?}"),
        }
        let to = vec![SockRef::new(0, 1, 2), SockRef::new(1, 3, 4)];
        let frame = Bytes::from_static(b"\x81\x02hi");
        match parse(&deliver(&to, &frame)).unwrap() {
            NodeMsg::Deliver { to: t, frame: f } => assert_eq!((t, f), (to.clone(), frame)),
            other => panic!("{other:?}"),
        }
        match parse(&close(to[1], CloseCode::Restart)).unwrap() {
            NodeMsg::Close { sock, code } => assert_eq!((sock, code), (to[1], CloseCode::Restart)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&busy(9)), Some(NodeMsg::Busy { id: 9 })));
        let seen = vec![(to[0], Uuid::new_v4()), (to[1], Uuid::new_v4())];
        match parse(&activity("n0.a", "n1.b", &seen)).unwrap() {
            NodeMsg::Activity { to, origin, socks } => {
                assert_eq!(
                    (to.as_str(), origin.as_str(), socks),
                    ("n0.a", "n1.b", seen)
                )
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &b""[..],
            b"Z",
            b"D\xff\xff\xff\xff",
            b"Q\x01a\x05ab",
            b"R\x00",
            b"C\x00",
            b"A\x01a\x01b\x00",
        ] {
            assert!(parse(&Bytes::copy_from_slice(bad)).is_none(), "{bad:?}");
        }
    }
}
