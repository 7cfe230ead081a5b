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
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The schema's version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Rows deleted per pruning statement at most.
const PRUNE_CHUNK: i64 = 10_000;

/// Rows deleted by age in a pass past which the pass leaves the per-channel limits for the
/// next one.
const PRUNE_BUDGET: usize = 10_000;

/// The span of seqs a pass deletes per-channel surplus from, so at most this many rows a
/// pass: a batch waits for one pass at most.
const PRUNE_WINDOW: i64 = 20_000;

/// Channels over their limit looked at in one pass.
const PRUNE_CHANNELS: usize = 1_000;

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

/// Events per channel, per app, as far as this process knows (read on first insert), and
/// whether the channel is already queued for pruning.
type Counts = HashMap<String, HashMap<String, Count>>;

#[derive(Clone, Copy, Debug, Default)]
struct Count {
    n: u64,
    queued: bool,
}

/// Rows per multi-row `INSERT`, largest first (an op's events are written in chunks of these).
const INSERT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The open database.
pub(super) struct Db {
    conn: Connection,
    /// Events kept per channel (0: no limit).
    keep: u64,
    counts: Counts,
    /// Channels over `keep` plus slack, pruned at the next `prune`.
    over: HashSet<(String, String)>,
    /// Channels (per app) that may have per-user subscriptions: only their events get inbox
    /// rows, so a publish to a channel nobody follows costs no `associations` lookup. Always
    /// a superset of the truth: a key is added before its `Subscribe` runs, and removed only
    /// by `prune`, outside any transaction, once the table shows no subscriber is left.
    subscribed: HashMap<String, HashSet<String>>,
    /// `(app, event)` unsubscribed since the last `prune`, checked there.
    unsubscribed: Vec<(String, String)>,
    /// [`PRUNE_WINDOW`] (smaller in tests).
    window: i64,
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
        // The checkpointer holds writers off while it restarts the log: wait for it.
        conn.busy_handler(Some(super::checkpoint::busy))
            .map_err(check)?;
        conn.set_prepared_statement_cache_capacity(64);
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
        // Checkpoints are the checkpointer thread's (`checkpoint.rs`); this connection's own
        // autocheckpoint, at 65536 pages (256 MiB), is only the safety net should it fail.
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; \
             PRAGMA wal_autocheckpoint=65536; PRAGMA journal_size_limit=67108864"
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
        // Per-connection scratch table of pruning cuts (temp_store is memory).
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS prune_cut (app TEXT, channel TEXT, cut INTEGER)",
        )
        .map_err(check)?;
        let mut subscribed: HashMap<String, HashSet<String>> = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT DISTINCT app, event FROM subscriptions")
                .map_err(check)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(check)?;
            for row in rows {
                let (app, event) = row.map_err(check)?;
                subscribed.entry(app).or_default().insert(event);
            }
        }
        Ok(Db {
            conn,
            keep: s.max_events_per_channel,
            counts: HashMap::new(),
            over: HashSet::new(),
            subscribed,
            unsubscribed: Vec::new(),
            window: PRUNE_WINDOW,
        })
    }

    /// Run `ops` in one transaction and commit; one answer per op, in order. If an op fails,
    /// the batch is run again with each op in its own savepoint, so the failing op leaves
    /// nothing half-written and the others still commit. If the commit fails, every op of the
    /// batch is answered `Failed`.
    pub(super) fn run_batch(&mut self, ops: &[&Op]) -> Vec<Answer> {
        match self.batch(ops, false) {
            Ok(answers) => answers,
            Err(_) => {
                // The failed attempt was rolled back; the counts it made are not to be trusted.
                self.counts.clear();
                self.over.clear();
                self.batch(ops, true)
                    .unwrap_or_else(|e| ops.iter().map(|_| Answer::Failed(e.to_string())).collect())
            }
        }
    }

    /// One attempt at a batch. `isolate`: each op in a savepoint, a failing one answered
    /// `Failed`; otherwise the first failing op fails the attempt (`Err`, rolled back).
    /// A failed commit is `Ok` with every answer `Failed` (running it again would not help).
    fn batch(&mut self, ops: &[&Op], isolate: bool) -> rusqlite::Result<Vec<Answer>> {
        let Db {
            conn,
            keep,
            counts,
            over,
            subscribed,
            unsubscribed,
            ..
        } = self;
        let mut w = Writes {
            keep: *keep,
            counts,
            over,
            subscribed,
            unsubscribed,
        };
        // IMMEDIATE: the write lock is taken (or waited for) at BEGIN, never by upgrading a
        // read transaction, which fails at once if the checkpointer holds it.
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut answers = Vec::with_capacity(ops.len());
        for op in ops {
            if isolate {
                let a = tx
                    .savepoint()
                    .and_then(|sp| {
                        let a = w.run(&sp, op)?;
                        sp.commit()?;
                        Ok(a)
                    })
                    .unwrap_or_else(|e| {
                        // What it counted was rolled back with it.
                        w.counts.clear();
                        w.over.clear();
                        Answer::Failed(e.to_string())
                    });
                answers.push(a);
            } else {
                answers.push(w.run(&tx, op)?);
            }
        }
        if let Err(e) = tx.commit() {
            tracing::error!(error = %e, "store: commit failed");
            for a in &mut answers {
                *a = Answer::Failed(format!("commit failed: {e}"));
            }
        }
        Ok(answers)
    }

    /// Delete events beyond the retention limits: those older than `max_age` (the oldest
    /// [`PRUNE_CHUNK`] by `seq` are tested), then the oldest of each channel that went over
    /// `keep` by a tenth (so pruning is batched, not one row per insert). One transaction
    /// per pass: a table page that holds rows of many channels is written to the WAL once,
    /// not once per channel. A pass deletes a bounded number of rows ([`PRUNE_CHUNK`] by age,
    /// then at most a window of [`PRUNE_WINDOW`] seqs of surplus), so a batch waits for one
    /// pass at most; `true` if channels are still over (prune again soon).
    /// Also forgets channels whose last subscriber left.
    pub(super) fn prune(&mut self, max_age: Option<Duration>) -> bool {
        if let Err(e) = self.forget_unsubscribed() {
            tracing::warn!(error = %e, "store: subscription check failed");
        }
        match self.try_prune(max_age) {
            Ok(()) => !self.over.is_empty(),
            Err(e) => {
                // Rolled back: the counts it updated are not to be trusted (they are read
                // again on the next insert, which queues the channel again).
                self.counts.clear();
                self.over.clear();
                tracing::warn!(error = %e, "store: pruning failed");
                false
            }
        }
    }

    /// Prune in windows of `window` seqs instead of [`PRUNE_WINDOW`].
    #[cfg(test)]
    pub(super) fn set_prune_window(&mut self, window: i64) {
        self.window = window;
    }

    /// Copy what the checkpointer's last pass left in the log and rewind it (the next commit
    /// writes it from the start); see `checkpoint.rs`.
    pub(super) fn restart_log(&mut self) {
        if let Err(e) = super::checkpoint::checkpoint(&self.conn, "RESTART") {
            tracing::warn!(error = %e, "store: log restart failed");
        }
    }

    fn forget_unsubscribed(&mut self) -> rusqlite::Result<()> {
        for (app, event) in std::mem::take(&mut self.unsubscribed) {
            let any: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE app = ?1 AND event = ?2)",
                )?
                .query_row(params![app, event], |r| r.get(0))?;
            if !any {
                if let Some(events) = self.subscribed.get_mut(&app) {
                    events.remove(&event);
                }
            }
        }
        Ok(())
    }

    fn try_prune(&mut self, max_age: Option<Duration>) -> rusqlite::Result<()> {
        if max_age.is_none() && self.over.is_empty() {
            return Ok(());
        }
        let Db {
            conn,
            keep,
            counts,
            over,
            window,
            ..
        } = self;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0usize;
        if let Some(age) = max_age {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let cut = now - age.as_secs_f64();
            // Events are appended in time order, so the oldest by `seq` are the ones to test.
            let n = tx.execute(
                "DELETE FROM events WHERE seq IN \
                 (SELECT seq FROM events ORDER BY seq LIMIT ?2) AND timestamp < ?1",
                params![cut, PRUNE_CHUNK],
            )?;
            if n > 0 {
                // Which channels lost events is not known: count again on next insert.
                counts.clear();
                deleted += n;
            }
        }
        if deleted < PRUNE_BUDGET && !over.is_empty() {
            deleted += prune_over(&tx, *keep, *window, counts, over)?;
        }
        if deleted > 0 {
            // Inbox rows of events that are gone (the join skips any that remain).
            tx.execute(
                "DELETE FROM associations WHERE seq < \
                 COALESCE((SELECT MIN(seq) FROM events), 9223372036854775807)",
                [],
            )?;
        }
        tx.commit()
    }
}

/// One pass over the channels queued in `over` (up to [`PRUNE_CHANNELS`] of them): each one's
/// surplus (its oldest events beyond `keep`) is deleted where it lies in one window of
/// `window` seqs ([`PRUNE_WINDOW`]), the window starting at the oldest surplus event of them all. Rows
/// are placed by `seq` and the events of one publish to many channels sit side by side, so
/// the rows of every channel in the window are deleted together, by one statement in `seq`
/// order: each table page is visited once and mostly emptied, where channel after channel
/// would thin every page of a far longer range many times over. Channels whose surplus is
/// not all gone stay queued. Rows deleted.
fn prune_over(
    tx: &Connection,
    keep: u64,
    window: i64,
    counts: &mut Counts,
    over: &mut HashSet<(String, String)>,
) -> rusqlite::Result<usize> {
    let queued: Vec<(String, String)> = over.iter().take(PRUNE_CHANNELS).cloned().collect();
    // (app, channel, count, the seq before which its surplus lies, its first seq)
    let mut plans = Vec::with_capacity(queued.len());
    for (app, channel) in queued {
        over.remove(&(app.clone(), channel.clone()));
        let known = counts.get(&app).and_then(|m| m.get(&channel)).map(|c| c.n);
        let c = match known {
            Some(c) => c,
            None => {
                let n: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM events WHERE app = ?1 AND channel = ?2")?
                    .query_row(params![app, channel], |r| r.get(0))?;
                u64::try_from(n).unwrap_or(0)
            }
        };
        let extra = c.saturating_sub(keep);
        if extra == 0 {
            continue;
        }
        let seq_at = |offset: u64| -> rusqlite::Result<Option<i64>> {
            tx.prepare_cached(
                "SELECT seq FROM events WHERE app = ?1 AND channel = ?2 \
                 ORDER BY seq LIMIT 1 OFFSET ?3",
            )?
            .query_row(
                params![app, channel, i64::try_from(offset).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
        };
        let (Some(first), Some(cut)) = (seq_at(0)?, seq_at(extra)?) else {
            // Fewer events than counted: count again on the next insert.
            if let Some(m) = counts.get_mut(&app) {
                m.remove(&channel);
            }
            continue;
        };
        plans.push((app, channel, c, cut, first));
    }
    let Some(lo) = plans.iter().map(|p| p.4).min() else {
        return Ok(0);
    };
    let hi = lo.saturating_add(window);
    let mut planned = 0u64;
    for (app, channel, c, cut, first) in plans {
        let cut = cut.min(hi);
        let n = if first < cut {
            let n: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM events WHERE app = ?1 AND channel = ?2 AND seq < ?3",
                )?
                .query_row(params![app, channel, cut], |r| r.get(0))?;
            u64::try_from(n).unwrap_or(0)
        } else {
            0
        };
        if n > 0 {
            tx.prepare_cached(
                "INSERT INTO temp.prune_cut (app, channel, cut) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![app, channel, cut])?;
            planned += n;
        }
        let left = c.saturating_sub(n);
        let again = left > keep;
        if again {
            over.insert((app.clone(), channel.clone()));
        }
        let slot = counts.entry(app).or_default().entry(channel).or_default();
        *slot = Count {
            n: left,
            queued: again,
        };
    }
    if planned == 0 {
        return Ok(0);
    }
    let n = tx
        .prepare_cached(
            "DELETE FROM events WHERE seq IN (SELECT e.seq FROM temp.prune_cut p \
             JOIN events e ON e.app = p.app AND e.channel = p.channel AND e.seq < p.cut)",
        )?
        .execute([])?;
    tx.prepare_cached("DELETE FROM temp.prune_cut")?
        .execute([])?;
    Ok(n)
}

/// The in-memory state a batch updates as it writes.
struct Writes<'a> {
    keep: u64,
    counts: &'a mut Counts,
    over: &'a mut HashSet<(String, String)>,
    subscribed: &'a mut HashMap<String, HashSet<String>>,
    unsubscribed: &'a mut Vec<(String, String)>,
}

impl Writes<'_> {
    fn run(&mut self, tx: &Connection, op: &Op) -> rusqlite::Result<Answer> {
        match op {
            Op::Insert(events) => self.insert(tx, events).map(Answer::Done),
            Op::Subscribe { app, event, .. } => {
                let events = self.subscribed.entry(app.clone()).or_default();
                if !events.contains(event) {
                    events.insert(event.clone());
                }
                run_op(tx, op)
            }
            Op::Unsubscribe { app, event, .. } => {
                self.unsubscribed.push((app.clone(), event.clone()));
                run_op(tx, op)
            }
            other => run_op(tx, other),
        }
    }

    /// Write `events` with multi-row `INSERT`s (chunks of [`INSERT_CHUNKS`]), one inbox
    /// row per subscriber of each event whose channel has any, and count them for retention.
    fn insert(&mut self, tx: &Connection, events: &[NewEvent]) -> rusqlite::Result<usize> {
        // Read each new channel's stored count before this op adds to it.
        for e in events {
            self.load_count(tx, e)?;
        }
        let mut assoc = tx.prepare_cached(
            "INSERT INTO associations (app, user_id, seq) \
             SELECT app, user_id, ?1 FROM subscriptions WHERE app = ?2 AND event = ?3",
        )?;
        let mut rest = events;
        while !rest.is_empty() {
            let k = INSERT_CHUNKS
                .into_iter()
                .find(|&k| k <= rest.len())
                .unwrap_or(1);
            let (chunk, tail) = rest.split_at(k);
            let mut ins = tx.prepare_cached(&insert_sql(k))?;
            for (i, e) in chunk.iter().enumerate() {
                let at = i * 6;
                ins.raw_bind_parameter(at + 1, &e.mid)?;
                ins.raw_bind_parameter(at + 2, &e.app)?;
                ins.raw_bind_parameter(at + 3, &e.channel)?;
                ins.raw_bind_parameter(at + 4, &e.owner)?;
                ins.raw_bind_parameter(at + 5, e.timestamp)?;
                ins.raw_bind_parameter(at + 6, &e.payload)?;
            }
            ins.raw_execute()?;
            // AUTOINCREMENT and one writer: the rows of one statement get consecutive seqs,
            // ending at the last inserted rowid.
            let first = tx.last_insert_rowid() - (k as i64 - 1);
            for (i, e) in chunk.iter().enumerate() {
                if self
                    .subscribed
                    .get(&e.app)
                    .is_some_and(|s| s.contains(&e.channel))
                {
                    assoc.execute(params![first + i as i64, e.app, e.channel])?;
                }
                self.counted(e);
            }
            rest = tail;
        }
        Ok(events.len())
    }

    fn load_count(&mut self, tx: &Connection, e: &NewEvent) -> rusqlite::Result<()> {
        if self
            .counts
            .get(&e.app)
            .is_some_and(|m| m.contains_key(&e.channel))
        {
            return Ok(());
        }
        let n: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM events WHERE app = ?1 AND channel = ?2")?
            .query_row(params![e.app, e.channel], |r| r.get(0))?;
        let n = u64::try_from(n).unwrap_or(0);
        self.counts
            .entry(e.app.clone())
            .or_default()
            .insert(e.channel.clone(), Count { n, queued: false });
        Ok(())
    }

    /// One more stored event of `e`'s channel; queue the channel for pruning once it passes
    /// `keep` by a tenth.
    fn counted(&mut self, e: &NewEvent) {
        let Some(c) = self
            .counts
            .get_mut(&e.app)
            .and_then(|m| m.get_mut(&e.channel))
        else {
            return;
        };
        c.n += 1;
        if self.keep > 0 && !c.queued && c.n > self.keep + self.keep / 10 {
            c.queued = true;
            self.over.insert((e.app.clone(), e.channel.clone()));
        }
    }
}

/// `INSERT INTO events ... VALUES (?,?,?,?,?,?), ...` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO events (mid, app, channel, owner, timestamp, payload) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?)");
    }
    sql
}

fn run_op(tx: &Connection, op: &Op) -> rusqlite::Result<Answer> {
    match op {
        // Written by `Writes::insert`, which keeps the counts and the inbox index.
        Op::Insert(_) => Err(rusqlite::Error::InvalidQuery),
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
