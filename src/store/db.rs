//! The SQLite side of the store: schema, the start-up checks, one batch of requests in one
//! transaction, and retention pruning. Runs only on the store thread.
//!
//! Tables (every row carries its app id, so two apps never see each other's data):
//! `apps` (reserved for apps created over REST), `events` (`seq` autoincrement, `mid` uuid,
//! channel, owner socket id, timestamp, the delivered message as JSON), `subscriptions`
//! (app, user_id, event: unique), `associations` (app, user_id, event seq: a user's inbox)
//! and `webs` (app, url, event: unique); `cs_history` (seq, channel, uuid, msg: Channelstream
//! channel histories, in order, only with `--persist-history`).

use super::{Answer, NewEvent, Op, OpenError, Settings};
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The schema's version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Rows deleted per pruning statement (the thread returns to its queue between statements).
const PRUNE_CHUNK: i64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apps (
    ident TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key TEXT NOT NULL, secret TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, mid TEXT NOT NULL, app TEXT NOT NULL,
    channel TEXT NOT NULL, owner TEXT, timestamp REAL NOT NULL, payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_channel ON events (app, channel, seq);
CREATE TABLE IF NOT EXISTS subscriptions (
    app TEXT NOT NULL, user_id TEXT NOT NULL, event TEXT NOT NULL,
    UNIQUE (app, user_id, event));
CREATE INDEX IF NOT EXISTS subscriptions_event ON subscriptions (app, event);
CREATE TABLE IF NOT EXISTS associations (
    app TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS associations_user ON associations (app, user_id, seq);
CREATE INDEX IF NOT EXISTS associations_seq ON associations (seq);
CREATE TABLE IF NOT EXISTS webs (
    app TEXT NOT NULL, url TEXT NOT NULL, event TEXT NOT NULL, UNIQUE (app, url, event));
CREATE TABLE IF NOT EXISTS cs_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, uuid TEXT NOT NULL,
    msg TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cs_history_channel ON cs_history (channel, seq);
CREATE INDEX IF NOT EXISTS cs_history_uuid ON cs_history (channel, uuid, seq);
";

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Insertion order.
    pub seq: i64,
    /// Its uuid4.
    pub mid: String,
    /// The channel.
    pub channel: String,
    /// The sender's socket id, if a socket sent it.
    pub owner: Option<String>,
    /// Unix time, seconds.
    pub timestamp: f64,
    /// The delivered message, JSON.
    pub payload: String,
}

/// The open database.
pub(super) struct Db {
    conn: Connection,
    /// Events kept per channel (0: no limit).
    keep: u64,
    /// Events per (app, channel) as far as this process knows (counted on first insert).
    counts: HashMap<(String, String), u64>,
    /// Channels over `keep` plus slack, pruned at the next `prune`.
    over: HashSet<(String, String)>,
}

fn fail(path: &std::path::Path, reason: impl std::fmt::Display) -> OpenError {
    OpenError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Db {
    /// Create the directory, open the file, set WAL and the sync level, check it is a
    /// database we can write, create the tables.
    pub(super) fn open(s: &Settings) -> Result<Db, OpenError> {
        std::fs::create_dir_all(&s.dir).map_err(|e| fail(&s.dir, format!("cannot create: {e}")))?;
        let path = super::db_path(&s.dir);
        let conn = Connection::open(&path).map_err(|e| fail(&path, e))?;
        let check = |e: rusqlite::Error| fail(&path, e);
        conn.busy_timeout(Duration::from_secs(5)).map_err(check)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(check)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(
                &path,
                format!("cannot use WAL (journal_mode is {mode})"),
            ));
        }
        let sync = if s.sync_full { "FULL" } else { "NORMAL" };
        // A 64 MiB page cache keeps the channel index in memory under a steady publish load.
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY"
        ))
        .map_err(check)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(check)?;
        if version > SCHEMA_VERSION {
            return Err(fail(
                &path,
                format!("schema version {version} is newer than this Herald's ({SCHEMA_VERSION})"),
            ));
        }
        let ok: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(check)?;
        if ok != "ok" {
            return Err(fail(&path, format!("database is corrupt: {ok}")));
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| fail(&path, format!("cannot write: {e}")))?;
        Ok(Db {
            conn,
            keep: s.max_events_per_channel,
            counts: HashMap::new(),
            over: HashSet::new(),
        })
    }

    /// Run `ops` in one transaction and commit; one answer per op, in order. If the commit
    /// fails, every write in the batch is answered `Failed`.
    pub(super) fn run_batch(&mut self, ops: &[&Op]) -> Vec<Answer> {
        let (keep, counts, over) = (self.keep, &mut self.counts, &mut self.over);
        let mut tx = match self.conn.transaction() {
            Ok(t) => t,
            Err(e) => return ops.iter().map(|_| Answer::Failed(e.to_string())).collect(),
        };
        // Each op in its own savepoint: a failing op leaves nothing half-written, and the
        // others of the batch still commit.
        let mut answers: Vec<Answer> = ops
            .iter()
            .map(|op| {
                let sp = tx.savepoint()?;
                let a = match op {
                    Op::Insert(events) => {
                        let n = insert(&sp, events)?;
                        for e in events.iter() {
                            count(&sp, counts, e)?;
                            let k = (e.app.clone(), e.channel.clone());
                            if keep > 0 && counts.get(&k).is_some_and(|c| *c > keep + keep / 10) {
                                over.insert(k);
                            }
                        }
                        Answer::Done(n)
                    }
                    other => run_op(&sp, other)?,
                };
                sp.commit()?;
                Ok(a)
            })
            .map(|r: rusqlite::Result<Answer>| r.unwrap_or_else(|e| Answer::Failed(e.to_string())))
            .collect();
        if let Err(e) = tx.commit() {
            tracing::error!(error = %e, "store: commit failed");
            for a in &mut answers {
                *a = Answer::Failed(format!("commit failed: {e}"));
            }
        }
        answers
    }

    /// Delete events beyond the retention limits: those older than `max_age` (the oldest
    /// [`PRUNE_CHUNK`] by `seq` are tested), then the oldest of each channel that went over
    /// `keep` by a tenth (so pruning is batched, not one row per insert), a chunk each.
    pub(super) fn prune(&mut self, max_age: Option<Duration>) {
        if let Err(e) = self.try_prune(max_age) {
            tracing::warn!(error = %e, "store: pruning failed");
        }
    }

    fn try_prune(&mut self, max_age: Option<Duration>) -> rusqlite::Result<()> {
        let mut deleted = 0usize;
        if let Some(age) = max_age {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let cut = now - age.as_secs_f64();
            // Events are appended in time order, so the oldest by `seq` are the ones to test.
            let n = self.conn.execute(
                "DELETE FROM events WHERE seq IN \
                 (SELECT seq FROM events ORDER BY seq LIMIT ?2) AND timestamp < ?1",
                params![cut, PRUNE_CHUNK],
            )?;
            if n > 0 {
                // Which channels lost events is not known: count again on next insert.
                self.counts.clear();
                deleted += n;
            }
        }
        let over: Vec<(String, String)> = self.over.drain().collect();
        for (app, channel) in over {
            let c = match self.counts.get(&(app.clone(), channel.clone())) {
                Some(c) => *c,
                None => {
                    let n: i64 = self.conn.query_row(
                        "SELECT COUNT(*) FROM events WHERE app = ?1 AND channel = ?2",
                        params![app, channel],
                        |r| r.get(0),
                    )?;
                    u64::try_from(n).unwrap_or(0)
                }
            };
            let extra = c.saturating_sub(self.keep).min(PRUNE_CHUNK as u64);
            if extra == 0 {
                continue;
            }
            let n = self.conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events \
                 WHERE app = ?1 AND channel = ?2 ORDER BY seq LIMIT ?3)",
                params![app, channel, extra as i64],
            )?;
            deleted += n;
            let left = c.saturating_sub(n as u64);
            if left > self.keep {
                self.over.insert((app.clone(), channel.clone()));
            }
            self.counts.insert((app, channel), left);
        }
        if deleted > 0 {
            // Inbox rows of events that are gone (the join skips any that remain).
            self.conn.execute(
                "DELETE FROM associations WHERE seq < \
                 COALESCE((SELECT MIN(seq) FROM events), 9223372036854775807)",
                [],
            )?;
        }
        Ok(())
    }
}

/// Count one more event of its channel (the channel's stored count is read on first use).
fn count(
    c: &Connection,
    counts: &mut HashMap<(String, String), u64>,
    e: &NewEvent,
) -> rusqlite::Result<()> {
    let key = (e.app.clone(), e.channel.clone());
    if let Some(n) = counts.get_mut(&key) {
        *n += 1;
        return Ok(());
    }
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM events WHERE app = ?1 AND channel = ?2")?
        .query_row(params![e.app, e.channel], |r| r.get(0))?;
    counts.insert(key, u64::try_from(n).unwrap_or(0));
    Ok(())
}

fn run_op(tx: &Connection, op: &Op) -> rusqlite::Result<Answer> {
    match op {
        Op::Insert(events) => insert(tx, events).map(Answer::Done),
        Op::Latest {
            app,
            channel,
            skip,
            count,
        } => {
            let mut st = tx.prepare_cached(
                "SELECT seq, mid, channel, owner, timestamp, payload FROM events \
                 WHERE app = ?1 AND channel = ?2 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
            )?;
            let rows = st.query_map(params![app, channel, count, skip], event_row)?;
            Ok(Answer::Events(rows.collect::<rusqlite::Result<_>>()?))
        }
        Op::Personal {
            app,
            user_id,
            count,
        } => {
            let mut st = tx.prepare_cached(
                "SELECT event FROM subscriptions WHERE app = ?1 AND user_id = ?2 ORDER BY rowid",
            )?;
            let alias = st
                .query_map(params![app, user_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut st = tx.prepare_cached(
                "SELECT e.seq, e.mid, e.channel, e.owner, e.timestamp, e.payload \
                 FROM associations a JOIN events e ON e.seq = a.seq \
                 WHERE a.app = ?1 AND a.user_id = ?2 ORDER BY a.seq DESC LIMIT ?3",
            )?;
            let events = st
                .query_map(params![app, user_id, count], event_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Answer::Personal { alias, events })
        }
        Op::Recent { app, count } => {
            let mut st = tx.prepare_cached(
                "SELECT seq, mid, channel, owner, timestamp, payload FROM events \
                 WHERE app = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![app, count], event_row)?;
            Ok(Answer::Events(rows.collect::<rusqlite::Result<_>>()?))
        }
        Op::Subscriptions {
            app,
            user_id,
            event,
        } => {
            let mut st = tx.prepare_cached(
                "SELECT app, user_id, event FROM subscriptions WHERE app = ?1 \
                 AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR event = ?3) ORDER BY rowid",
            )?;
            let rows = st.query_map(params![app, user_id, event], triple)?;
            Ok(Answer::Rows(rows.collect::<rusqlite::Result<_>>()?))
        }
        Op::Subscribe {
            app,
            user_id,
            event,
        } => tx
            .prepare_cached(
                "INSERT OR IGNORE INTO subscriptions (app, user_id, event) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![app, user_id, event])
            .map(Answer::Done),
        Op::Unsubscribe {
            app,
            user_id,
            event,
        } => tx
            .prepare_cached(
                "DELETE FROM subscriptions WHERE app = ?1 AND user_id = ?2 AND event = ?3",
            )?
            .execute(params![app, user_id, event])
            .map(Answer::Done),
        Op::Webs { app } => {
            let mut st = tx.prepare_cached(
                "SELECT app, url, event FROM webs WHERE (?1 IS NULL OR app = ?1) ORDER BY rowid",
            )?;
            let rows = st.query_map(params![app], triple)?;
            Ok(Answer::Rows(rows.collect::<rusqlite::Result<_>>()?))
        }
        Op::AddWeb { app, url, event } => tx
            .prepare_cached("INSERT OR IGNORE INTO webs (app, url, event) VALUES (?1, ?2, ?3)")?
            .execute(params![app, url, event])
            .map(Answer::Done),
        Op::RemoveWeb { app, url, event } => tx
            .prepare_cached(
                "DELETE FROM webs WHERE app = ?1 AND url = ?2 AND (?3 IS NULL OR event = ?3)",
            )?
            .execute(params![app, url, event])
            .map(Answer::Done),
        Op::CsAppend {
            channel,
            uuid,
            msg,
            keep,
        } => {
            let mut n = tx
                .prepare_cached("INSERT INTO cs_history (channel, uuid, msg) VALUES (?1, ?2, ?3)")?
                .execute(params![channel, uuid, msg])?;
            if *keep > 0 {
                // Everything older than the newest `keep` (`history[-history_size:]`).
                n += tx
                    .prepare_cached(
                        "DELETE FROM cs_history WHERE channel = ?1 AND seq <= \
                         (SELECT seq FROM cs_history WHERE channel = ?1 \
                          ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                    )?
                    .execute(params![channel, i64::try_from(*keep).unwrap_or(i64::MAX)])?;
            }
            Ok(Answer::Done(n))
        }
        Op::CsEdit { channel, uuid, msg } => tx
            .prepare_cached(
                "UPDATE cs_history SET msg = ?3 WHERE seq = \
                 (SELECT MIN(seq) FROM cs_history WHERE channel = ?1 AND uuid = ?2)",
            )?
            .execute(params![channel, uuid, msg])
            .map(Answer::Done),
        Op::CsDelete { channel, uuid } => tx
            .prepare_cached(
                "DELETE FROM cs_history WHERE seq = \
                 (SELECT MIN(seq) FROM cs_history WHERE channel = ?1 AND uuid = ?2)",
            )?
            .execute(params![channel, uuid])
            .map(Answer::Done),
    }
}

/// Every stored Channelstream history message `(channel, msg)`, oldest first, read once at
/// start (before the shards run) on a connection of its own.
pub fn read_cs_history(s: &Settings) -> Result<Vec<(String, String)>, OpenError> {
    let path = super::db_path(&s.dir);
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(&path, e))?;
    let mut st = conn
        .prepare("SELECT channel, msg FROM cs_history ORDER BY seq")
        .map_err(|e| fail(&path, e))?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| fail(&path, e))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| fail(&path, e))
}

fn insert(tx: &Connection, events: &[NewEvent]) -> rusqlite::Result<usize> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO events (mid, app, channel, owner, timestamp, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut assoc = tx.prepare_cached(
        "INSERT INTO associations (app, user_id, seq) \
         SELECT app, user_id, ?1 FROM subscriptions WHERE app = ?2 AND event = ?3",
    )?;
    let mut n = 0;
    for e in events {
        ins.execute(params![
            e.mid,
            e.app,
            e.channel,
            e.owner,
            e.timestamp,
            e.payload
        ])?;
        assoc.execute(params![tx.last_insert_rowid(), e.app, e.channel])?;
        n += 1;
    }
    Ok(n)
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        mid: r.get(1)?,
        channel: r.get(2)?,
        owner: r.get(3)?,
        timestamp: r.get(4)?,
        payload: r.get(5)?,
    })
}

fn triple(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// Every stored web-hook subscription `(app, url, event)`, read on a connection of its own
/// (WAL lets it run beside the store thread), for the web-hook sender's start.
pub fn read_webs(s: &Settings) -> Result<Vec<(String, String, String)>, OpenError> {
    read_triples(s, "SELECT app, url, event FROM webs ORDER BY rowid")
}

/// Every stored per-user subscription `(app, user_id, event)`, for the web-hook sender's
/// alias index (an event of `event` is also one of `personal-{user_id}`).
pub fn read_subscriptions(s: &Settings) -> Result<Vec<(String, String, String)>, OpenError> {
    read_triples(
        s,
        "SELECT app, user_id, event FROM subscriptions ORDER BY rowid",
    )
}

fn read_triples(s: &Settings, sql: &str) -> Result<Vec<(String, String, String)>, OpenError> {
    let path = super::db_path(&s.dir);
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(&path, e))?;
    let mut st = conn.prepare(sql).map_err(|e| fail(&path, e))?;
    let rows = st.query_map([], triple).map_err(|e| fail(&path, e))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| fail(&path, e))
}
