//! Watchlists across nodes: `online` when a user's first signed-in connection anywhere in the
//! cluster appears, `offline` when the last one anywhere goes, and a new watcher told which of
//! its users are online on any node.
//!
//! Why counted in Redis: a user's owner shard on each node knows only that node's sockets of
//! the user ([`users::Registry`]), so its first / last *local* socket ([`Heard`]) is not the
//! event a watcher means. As for occupancy (`cluster_occupancy`), a node counts itself in a
//! hash `uon:<app>` (user → nodes with a signed-in socket of it) on its first local socket and
//! out at its last — once each per period, by a script that answers the new count — with the
//! user in its set `unode:<node>` for the dead-node sweep. 0 → 1 is `online`, 1 → 0 `offline`:
//! that node tells the watchers it holds and publishes the change on `herald:<db>:pusr`, which
//! shard 0 of every node subscribes to at start and hands to the user's owner shard there
//! (`UserMsg::Changed`). A new watcher's users are looked up with one `HMGET`.
//!
//! Dead nodes: shard 0's sweep runs `UREAP` just before presence's `REAP` (which then forgets
//! the node): the users whose count a dead node held to the last go `offline`, published like
//! any other change. Refused (the link down, the queue full): the node tells its own watchers
//! from its own state, as a single node, and does not count itself out later.

use super::cluster_presence::Wait;
use super::*;
use crate::cluster::Value;
use crate::ids::ShardId;
use crate::pusher::users::{Heard, UserMsg};
use crate::pusher::watchlist::{self, Change};
use std::sync::atomic::Ordering;

const USER_UP: &str = r"
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
";

const USER_DOWN: &str = r"
redis.call('SREM', KEYS[2], ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
";

/// The dead nodes' users that so went offline, as `<app id>\n<user>` (nodes stay in
/// `nodes`: `REAP`, run next, removes them).
pub(super) const UREAP: &str = r"
local off = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. n) == 0 then
    local s = ARGV[1] .. 'unode:' .. n
    for _, e in ipairs(redis.call('SMEMBERS', s)) do
      local nl = string.find(e, '\n', 1, true)
      if nl then
        local h = ARGV[1] .. 'uon:' .. string.sub(e, 1, nl - 1)
        local u = string.sub(e, nl + 1)
        if redis.call('HINCRBY', h, u, -1) <= 0 then
          redis.call('HDEL', h, u)
          table.insert(off, e)
        end
      end
    end
    redis.call('DEL', s)
  end
end
return off
";

impl Pusher {
    /// Run a [`UserMsg`] on this (owner) shard: as a single node, or through Redis.
    pub(super) fn user_msg(&mut self, out: &mut dyn Outbox<PusherMsg>, msg: UserMsg) {
        let Some(heard) = self.users.apply(out, msg) else {
            return;
        };
        if self.cluster.is_none() {
            return self.users.tell_locally(out, heard);
        }
        if let Err(heard) = self.cluster_heard(out.shard(), heard) {
            self.users.tell_locally(out, heard);
        }
    }

    /// Hand a local transition to Redis; `Err` gives it back to be told locally.
    fn cluster_heard(&mut self, shard: ShardId, heard: Heard) -> Result<(), Heard> {
        let Some(c) = self.cluster.as_mut() else {
            return Err(heard);
        };
        let app_id = |app: AppIdx| self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        let prefix = c.bp.prefix();
        let (app, user, up) = match heard {
            Heard::Watching(app, sock, ids) => {
                let keys = vec![Bytes::from(format!("{prefix}uon:{}", app_id(app)))];
                let args = ids.iter().map(|i| Bytes::copy_from_slice(i.as_bytes()));
                const HMGET: &str = "return redis.call('HMGET', KEYS[1], unpack(ARGV))";
                return match c.bp.eval(HMGET, keys, args.collect(), shard) {
                    Ok(id) => {
                        c.evals.insert(id, Wait::Watch { app, sock, ids });
                        Ok(())
                    }
                    Err(_) => Err(Heard::Watching(app, sock, ids)),
                };
            }
            Heard::Online(app, user) => (app, user, true),
            Heard::Offline(app, user) => (app, user, false),
        };
        let back = |app, user| {
            if up {
                Heard::Online(app, user)
            } else {
                Heard::Offline(app, user)
            }
        };
        let key = (app, user);
        if !up && !c.users_counted.remove(&key) {
            return Err(back(key.0, key.1)); // never counted in Redis: as a single node
        }
        let keys = vec![
            Bytes::from(format!("{prefix}uon:{}", app_id(app))),
            Bytes::from(format!("{prefix}unode:{}", c.bp.incarnation())),
        ];
        let args = vec![
            Bytes::copy_from_slice(key.1.as_bytes()),
            Bytes::from(format!("{}\n{}", app_id(app), key.1)),
        ];
        let script = if up { USER_UP } else { USER_DOWN };
        let Ok(id) = c.bp.eval(script, keys, args, shard) else {
            return Err(back(key.0, key.1));
        };
        if up {
            c.users_counted.insert(key.clone());
        }
        let (app, user) = key;
        c.evals.insert(id, Wait::User { app, user, up });
        Ok(())
    }

    /// `USER_UP` / `USER_DOWN` answered with the new count: on 0 → 1 or 1 → 0, tell the
    /// watchers here and on the other nodes. Failed (link lost): as a single node.
    pub(super) fn user_reply(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        (app, user, up): (AppIdx, &str, bool),
        v: &Value,
    ) {
        let change = if up { Change::Online } else { Change::Offline };
        match v {
            Value::Int(1) if up => {}
            Value::Int(n) if !up && *n <= 0 => {}
            Value::Error(_) => {
                if up {
                    if let Some(c) = self.cluster.as_mut() {
                        c.users_counted.remove(&(app, user.into()));
                    }
                }
                return self.users.tell(out, app, user, change);
            }
            // Online or offline elsewhere still: nothing changed for the watchers.
            _ => return self.users.drop_if_empty(app, user),
        }
        self.users.tell(out, app, user, change);
        self.publish_user_change(app, user, change);
    }

    fn publish_user_change(&self, app: AppIdx, user: &str, change: Change) {
        let Some(c) = self.cluster.as_ref() else {
            return;
        };
        let app_id = self.apps.get(app).map(|a| a.id.as_str()).unwrap_or("");
        let kind = if change == Change::Online { 'o' } else { 'f' };
        let payload = Bytes::from(format!("{kind}{app_id}\n{user}"));
        // Refused: the other nodes' watchers miss this change (counted by the backplane).
        let _ = c.bp.publish(c.usr.clone(), payload);
    }

    /// The `HMGET` of a new watcher's users answered: tell it who is online anywhere.
    pub(super) fn watch_reply(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        (app, sock, ids): (AppIdx, SockRef, Vec<Box<str>>),
        v: &Value,
    ) {
        let Value::Array(counts) = v else {
            return self
                .users
                .tell_locally(out, Heard::Watching(app, sock, ids));
        };
        let online: Vec<&str> = ids
            .iter()
            .zip(counts)
            .filter(|(_, n)| matches!(n, Value::Bulk(b) if b.as_ref() != b"0"))
            .map(|(id, _)| &**id)
            .collect();
        if !online.is_empty() {
            out.deliver(&watchlist::events(Change::Online, &online), &[sock]);
        }
    }

    /// A change another node published on `pusr` (shard 0): to the user's owner shard here.
    pub(super) fn cluster_usr(&mut self, out: &mut dyn Outbox<PusherMsg>, payload: &[u8]) {
        let parsed = std::str::from_utf8(payload).ok().and_then(|p| {
            let change = match p.get(..1)? {
                "o" => Change::Online,
                "f" => Change::Offline,
                _ => return None,
            };
            let (app_id, user) = p.get(1..)?.split_once('\n')?;
            Some((change, app_id, user))
        });
        let Some((change, app_id, user)) = parsed else {
            if let Some(c) = self.cluster.as_ref() {
                c.bp.counters.malformed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        self.user_changed(out, app_id, user, change);
    }

    /// `user` of the app `app_id` changed over the cluster: its owner here tells watchers.
    fn user_changed(
        &mut self,
        out: &mut dyn Outbox<PusherMsg>,
        app_id: &str,
        user: &str,
        change: Change,
    ) {
        let Some((app, _)) = self.apps.by_id(app_id) else {
            return;
        };
        let msg = UserMsg::Changed {
            app,
            user: user.into(),
            change,
        };
        if self.route_user(out, app, user, msg).is_err() {
            tracing::warn!("pusher: user owner inbox full, a watchlist event was lost");
        }
    }

    /// `UREAP` answered (shard 0): the dead nodes' users that went offline.
    pub(super) fn users_reaped(&mut self, out: &mut dyn Outbox<PusherMsg>, v: &Value) {
        let Value::Array(gone) = v else {
            return;
        };
        for e in gone {
            let Value::Bulk(e) = e else {
                continue;
            };
            let Some((app_id, user)) = std::str::from_utf8(e).ok().and_then(|e| e.split_once('\n'))
            else {
                continue;
            };
            if let Some((app, _)) = self.apps.by_id(app_id) {
                self.publish_user_change(app, user, Change::Offline);
            }
            self.user_changed(out, app_id, user, Change::Offline);
        }
    }
}
