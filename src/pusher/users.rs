//! Signed-in users (`pusher:signin`): the `user_data` a client signs in with, which shard owns
//! a user, and the owner's registry of each user's signed-in sockets and of who watches them.
//!
//! Why an owner shard per user, like channels: a user's connections may sit on any shard
//! (SO_REUSEPORT spreads them), yet `terminate_connections` must find all of them and a
//! watchlist must hear when the user's *first* connection signs in and the *last* one goes.
//! Each (app, user id) therefore lives on `hash(app, user id) % shards` ([`owner`]); the
//! socket's shard sends [`UserMsg::Online`] after a sign-in and [`UserMsg::Offline`] at close,
//! through the inbox, and the owner alone counts. Inboxes are FIFO per sender, so a socket's
//! `Offline` always follows its `Online`. The socket's own shard keeps what it needs at close
//! (the user id and the watchlist) in the dialect's map of signed-in sockets, so
//! `PusherSocket` does not grow for the sockets that never sign in.
//!
//! State is bounded by the sockets: one `SockRef` per signed-in socket in its user's entry,
//! and at most [`MAX_WATCHLIST`] watcher entries per signed-in socket; an entry with neither
//! is dropped.

use super::apps::AppIdx;
use super::presence::MAX_USER_ID;
use super::protocol;
use super::watchlist::{self, Change};
use crate::dialect::Outbox;
use crate::ids::{ShardId, SockRef};
use crate::proto::ws::CloseCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Most user ids in one watchlist (Pusher's limit; more: `pusher:error` 4302, first kept).
pub const MAX_WATCHLIST: usize = 100;

/// The `pusher:error` message a terminated connection gets before its close 4009.
pub const TERMINATED: &str = "You got disconnected by the app.";

/// Whether `id` can be a user id: 1 to 128 bytes (Pusher's user id limit), no control
/// characters (it is also the tail of a channel name, `#server-to-user-<id>`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID && !id.chars().any(char::is_control)
}

/// The shard that owns `user` of `app` (SipHash with fixed keys, as `channels::owner`; the
/// `u` byte keeps the user and channel key spaces apart).
pub fn owner(app: AppIdx, user: &str, shards: usize) -> ShardId {
    let mut h = DefaultHasher::new();
    app.hash(&mut h);
    b'u'.hash(&mut h);
    user.hash(&mut h);
    let n = u64::try_from(shards.max(1)).unwrap_or(1);
    ShardId(u16::try_from(h.finish() % n).unwrap_or(0))
}

/// What a signed-in socket's shard remembers about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user id (`user_data.id`).
    pub user: Box<str>,
    /// The user ids it watches (distinct, at most [`MAX_WATCHLIST`]).
    pub watchlist: Box<[Box<str>]>,
}

/// A parsed `user_data`: the user, and whether its watchlist was cut to [`MAX_WATCHLIST`].
pub type UserData = (SignedIn, bool);

/// Parse the `user_data` string of a `pusher:signin`: a JSON object with a string `id`
/// ([`valid_id`]) and an optional `watchlist`, an array of such ids (repeats dropped, first
/// [`MAX_WATCHLIST`] kept). Other fields (`user_info`, …) are the app's business.
pub fn parse_user_data(s: &str) -> Result<UserData, &'static str> {
    const SHAPE: &str = "user_data must be a JSON object with a non-empty string id";
    let v: Value = serde_json::from_str(s).map_err(|_| SHAPE)?;
    let obj = v.as_object().ok_or(SHAPE)?;
    let user = obj.get("id").and_then(Value::as_str).ok_or(SHAPE)?;
    if !valid_id(user) {
        return Err("user_data.id must be 1 to 128 characters, without control characters");
    }
    let mut ids: Vec<Box<str>> = Vec::new();
    let mut cut = false;
    match obj.get("watchlist") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let mut seen = HashSet::new();
            for item in list {
                let id = item
                    .as_str()
                    .filter(|id| valid_id(id))
                    .ok_or("user_data.watchlist must be an array of user ids")?;
                if !seen.insert(id) {
                    continue;
                }
                if ids.len() == MAX_WATCHLIST {
                    cut = true;
                    continue;
                }
                ids.push(id.into());
            }
        }
        Some(_) => return Err("user_data.watchlist must be an array of user ids"),
    }
    let signed = SignedIn {
        user: user.into(),
        watchlist: ids.into_boxed_slice(),
    };
    Ok((signed, cut))
}

/// What the socket's shard and the HTTP API tell a user's owner shard.
#[derive(Debug)]
pub enum UserMsg {
    /// `sock` signed in as `user`.
    Online {
        /// The app.
        app: AppIdx,
        /// The user id.
        user: Box<str>,
        /// The socket.
        sock: SockRef,
    },
    /// A signed-in socket of `user` closed.
    Offline {
        /// The app.
        app: AppIdx,
        /// The user id.
        user: Box<str>,
        /// The socket.
        sock: SockRef,
    },
    /// `sock` watches these users (those this shard owns); answer with the online ones.
    Watch {
        /// The app.
        app: AppIdx,
        /// The watcher.
        sock: SockRef,
        /// Watched user ids owned by the receiving shard.
        ids: Vec<Box<str>>,
    },
    /// `sock` closed: stop telling it about these users.
    Unwatch {
        /// The app.
        app: AppIdx,
        /// The watcher.
        sock: SockRef,
        /// Watched user ids owned by the receiving shard.
        ids: Vec<Box<str>>,
    },
    /// `POST /users/{user}/terminate_connections`: close every signed-in socket of `user`.
    Terminate {
        /// The app.
        app: AppIdx,
        /// The user id.
        user: Box<str>,
    },
    /// Cluster mode: `user` came online or went offline over the whole cluster; tell the
    /// watchers this shard holds.
    Changed {
        /// The app.
        app: AppIdx,
        /// The user id.
        user: Box<str>,
        /// Online or offline.
        change: Change,
    },
}

/// What a [`UserMsg`] changed that watchers, or a new watcher, must hear of. A single node
/// tells them at once ([`Registry::handle`]); in cluster mode these are the node-local
/// transitions that Redis turns into cluster-wide ones first.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// The user's first signed-in socket here.
    Online(AppIdx, Box<str>),
    /// The user's last signed-in socket here closed.
    Offline(AppIdx, Box<str>),
    /// `sock` now watches these users: it must hear which of them are online.
    Watching(AppIdx, SockRef, Vec<Box<str>>),
}

#[derive(Debug, Default)]
struct Entry {
    /// The user's signed-in sockets, on any shard.
    socks: Vec<SockRef>,
    /// The sockets whose watchlist names the user.
    watchers: HashSet<SockRef>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.socks.is_empty() && self.watchers.is_empty()
    }
}

/// The users this shard owns: signed-in sockets and watchers per (app, user id).
#[derive(Debug, Default)]
pub struct Registry {
    apps: HashMap<AppIdx, HashMap<Box<str>, Entry>>,
}

impl Registry {
    /// Apply one message as a single node: deliver watchlist events and terminations
    /// through `out`.
    pub fn handle<M>(&mut self, out: &mut dyn Outbox<M>, msg: UserMsg) {
        if let Some(heard) = self.apply(out, msg) {
            self.tell_locally(out, heard);
        }
    }

    /// Tell what a message changed from this shard's state alone (a single node, or a
    /// cluster node that cannot reach Redis).
    pub fn tell_locally<M>(&mut self, out: &mut dyn Outbox<M>, heard: Heard) {
        match heard {
            Heard::Online(app, user) => self.tell(out, app, &user, Change::Online),
            Heard::Offline(app, user) => self.tell(out, app, &user, Change::Offline),
            Heard::Watching(app, sock, ids) => {
                let online: Vec<Box<str>> = ids
                    .into_iter()
                    .filter(|id| !self.sockets(app, id).is_empty())
                    .collect();
                if !online.is_empty() {
                    let f = watchlist::events(Change::Online, &online);
                    out.deliver(&f, &[sock]);
                }
            }
        }
    }

    /// One watchlist event about `user` to the watchers this shard holds (then the entry
    /// goes if it has neither sockets nor watchers).
    pub fn tell<M>(&mut self, out: &mut dyn Outbox<M>, app: AppIdx, user: &str, change: Change) {
        if let Some(e) = self.get(app, user) {
            tell(out, &e.watchers, change, user);
        }
        self.drop_if_empty(app, user);
    }

    /// Apply one message to the state; terminations are delivered through `out`, what
    /// watchers must hear of is returned.
    pub fn apply<M>(&mut self, out: &mut dyn Outbox<M>, msg: UserMsg) -> Option<Heard> {
        match msg {
            UserMsg::Online { app, user, sock } => {
                let e = self.entry(app, &user);
                if e.socks.contains(&sock) {
                    return None;
                }
                e.socks.push(sock);
                return (e.socks.len() == 1).then_some(Heard::Online(app, user));
            }
            UserMsg::Offline { app, user, sock } => {
                let e = self.get(app, &user)?;
                let before = e.socks.len();
                e.socks.retain(|s| *s != sock);
                let last = before == 1 && e.socks.is_empty();
                // Kept while watchers hear of it (dropped once it has neither).
                if last {
                    return Some(Heard::Offline(app, user));
                }
                self.drop_if_empty(app, &user);
            }
            UserMsg::Watch { app, sock, ids } => {
                for id in &ids {
                    self.entry(app, id).watchers.insert(sock);
                }
                return Some(Heard::Watching(app, sock, ids));
            }
            UserMsg::Changed { app, user, change } => self.tell(out, app, &user, change),
            UserMsg::Unwatch { app, sock, ids } => {
                for id in ids {
                    if let Some(e) = self.get(app, &id) {
                        e.watchers.remove(&sock);
                        self.drop_if_empty(app, &id);
                    }
                }
            }
            UserMsg::Terminate { app, user } => {
                let e = self.get(app, &user)?;
                let f = protocol::error(protocol::CODE_UNAUTHORIZED, TERMINATED);
                out.deliver(&f, &e.socks);
                for s in &e.socks {
                    out.close(*s, CloseCode::from(protocol::CODE_UNAUTHORIZED));
                }
                // The sockets' own shards send `Offline` when they are reaped.
            }
        }
        None
    }

    /// The signed-in sockets of `user` (tests, metrics).
    pub fn sockets(&self, app: AppIdx, user: &str) -> &[SockRef] {
        self.apps
            .get(&app)
            .and_then(|u| u.get(user))
            .map_or(&[], |e| e.socks.as_slice())
    }

    /// How many (app, user) entries this shard keeps.
    pub fn len(&self) -> usize {
        self.apps.values().map(HashMap::len).sum()
    }

    /// Whether this shard keeps no entry.
    pub fn is_empty(&self) -> bool {
        self.apps.values().all(HashMap::is_empty)
    }

    fn entry(&mut self, app: AppIdx, user: &str) -> &mut Entry {
        // One key allocation per sign-in or watched id: rare next to publishes.
        self.apps
            .entry(app)
            .or_default()
            .entry(user.into())
            .or_default()
    }

    fn get(&mut self, app: AppIdx, user: &str) -> Option<&mut Entry> {
        self.apps.get_mut(&app)?.get_mut(user)
    }

    /// Drop the entry of `user` if it has neither sockets nor watchers.
    pub fn drop_if_empty(&mut self, app: AppIdx, user: &str) {
        if let Some(users) = self.apps.get_mut(&app) {
            if users.get(user).is_some_and(Entry::is_empty) {
                users.remove(user);
            }
            if users.is_empty() {
                self.apps.remove(&app);
            }
        }
    }
}

/// One watchlist event about `user` to every watcher.
fn tell<M>(out: &mut dyn Outbox<M>, watchers: &HashSet<SockRef>, change: Change, user: &str) {
    if watchers.is_empty() {
        return;
    }
    let to: Vec<SockRef> = watchers.iter().copied().collect();
    out.deliver(&watchlist::events(change, &[user]), &to);
}

#[cfg(test)]
#[path = "tests/users.rs"]
mod tests;
