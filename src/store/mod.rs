//! The durable embedded store: SQLite (through `rusqlite`, SQLite bundled) on one thread of
//! its own, for the dialects that keep data across restarts (Pushi's events, offline
//! subscriptions, per-user inboxes and web-hook subscriptions).
//!
//! Why a thread and not the shards: SQLite calls block (disk I/O, fsync), and a shard must
//! never block. Shards hand the store an [`Op`] with [`Store::try_send`] on a **bounded**
//! queue (a `std::sync::mpsc` channel whose length an atomic counter caps at
//! `Settings::queue`); a full queue is answered at once with [`StoreBusy`] (the REST layer
//! turns it into a 503 with a JSON error) — nothing waits. [`Store::reserve`] takes the room
//! first and sends later, so a publish can learn that the store will take its events, then
//! hand its frames to the owners, and only then wake the store thread: on a 2-core machine
//! the delivery gets the idle core before the store does.
//!
//! Group commit: the thread blocks for one request, then drains whatever else is queued (up
//! to [`MAX_BATCH`]), runs all of it inside **one** transaction, commits, and only then sends
//! every answer. So a burst of N publishes costs one commit, and an answer (the REST
//! acknowledgement of a persisted event) is only ever sent for a committed write.
//!
//! Answers go back to the asking shard through a [`Sink`] the server installs after the
//! shards are spawned (it wraps a [`Done`] into the dialect's inbox message and calls
//! `Inbox::send`, which wakes the shard); a full inbox is retried from this thread, which may
//! wait, for up to a second.
//!
//! Durability: WAL journal. With `synchronous=NORMAL` (the default) a commit is written to
//! the WAL file before the answer is sent, but not fsynced: it survives a crash or `kill -9`
//! of the process (the data is in the OS page cache), not a power loss or kernel crash. With
//! `sync = full` every commit is fsynced before its answer (survives power loss; slower, but
//! group commit amortises the fsync over the batch). Checkpoints (copying the WAL back into
//! the database, and its fsync) run on a second thread and connection (`checkpoint.rs`), so
//! no commit waits for one.
//!
//! Channelstream history (`--persist-history`, off by default): [`Op::CsAppend`],
//! [`Op::CsEdit`] and [`Op::CsDelete`] keep the `cs_history` table in step with the model's
//! channel histories; they are sent with [`Writer::try_write`] (no answer) and read back once
//! at start by [`read_cs_history`].
//!
//! Retention: at most `max_events_per_channel` events per (app, channel) (plus a tenth of
//! slack, so pruning is batched) and none older than `max_event_age`; pruned by this thread
//! between batches once a second, or after every batch while channels are still over: one
//! transaction per pass, a bounded number of rows per pass (`db::Db::prune`). Per-channel
//! counts are kept in memory, so no pass scans the table.

mod checkpoint;
mod db;
#[cfg(test)]
mod tests;

pub use db::{read_cs_history, read_subscriptions, read_webs, StoredEvent, SCHEMA_VERSION};

use crate::ids::ShardId;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most requests written in one transaction.
pub const MAX_BATCH: usize = 8192;
/// The database file's name inside the data directory.
pub const DB_FILE: &str = "herald.sqlite3";

/// How the store is opened (from `config::StoreConfig`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The data directory (created on first use).
    pub dir: PathBuf,
    /// Requests the queue holds before `try_send` answers busy.
    pub queue: usize,
    /// Events kept per (app, channel); 0: no limit.
    pub max_events_per_channel: u64,
    /// Oldest event kept; `None`: no limit.
    pub max_event_age: Option<Duration>,
    /// `synchronous=FULL` (fsync each commit) instead of NORMAL.
    pub sync_full: bool,
}

/// An event to persist.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Its uuid4.
    pub mid: String,
    /// The app id.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// The socket id of a socket-originated event.
    pub owner: Option<String>,
    /// Unix time, seconds.
    pub timestamp: f64,
    /// The delivered message, JSON.
    pub payload: String,
}

/// What the store is asked to do.
#[derive(Debug)]
pub enum Op {
    /// Persist events (and one association per subscriber of each event's channel).
    Insert(Vec<NewEvent>),
    /// The newest `count` events of a channel after skipping `skip`, newest first.
    Latest {
        /// The app id.
        app: String,
        /// The channel.
        channel: String,
        /// Newest events skipped.
        skip: u32,
        /// Events returned at most.
        count: u32,
    },
    /// A `personal-{user_id}` channel: the user's subscribed channels and newest inbox events.
    Personal {
        /// The app id.
        app: String,
        /// The user.
        user_id: String,
        /// Events returned at most.
        count: u32,
    },
    /// The app's newest events (`GET /events`).
    Recent {
        /// The app id.
        app: String,
        /// Events returned at most.
        count: u32,
    },
    /// Subscriptions, optionally filtered (`GET /subscriptions`).
    Subscriptions {
        /// The app id.
        app: String,
        /// Only this user's.
        user_id: Option<String>,
        /// Only to this channel.
        event: Option<String>,
    },
    /// Add a subscription (idempotent).
    Subscribe {
        /// The app id.
        app: String,
        /// The user.
        user_id: String,
        /// The channel.
        event: String,
    },
    /// Remove a subscription.
    Unsubscribe {
        /// The app id.
        app: String,
        /// The user.
        user_id: String,
        /// The channel.
        event: String,
    },
    /// Web-hook subscriptions of an app (`None`: of every app, for the sender at start).
    Webs {
        /// The app id.
        app: Option<String>,
    },
    /// Add a web-hook subscription (idempotent).
    AddWeb {
        /// The app id.
        app: String,
        /// The URL.
        url: String,
        /// The channel.
        event: String,
    },
    /// Remove a URL's web-hook subscriptions (one channel's, or all).
    RemoveWeb {
        /// The app id.
        app: String,
        /// The URL.
        url: String,
        /// Only this channel.
        event: Option<String>,
    },
    /// Append a message to a Channelstream channel's history, then keep only its newest
    /// `keep` (0: all).
    CsAppend {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
        /// The message as stored (the model's tagged JSON).
        msg: String,
        /// `history_size`.
        keep: u64,
    },
    /// Replace the first history message of a channel with this uuid.
    CsEdit {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
        /// The edited message.
        msg: String,
    },
    /// Remove the first history message of a channel with this uuid.
    CsDelete {
        /// The channel.
        channel: String,
        /// The message uuid.
        uuid: String,
    },
}

/// A fire-and-forget handle on a store, whatever its answer type: writes whose answer nobody
/// waits for (Channelstream history). Never blocks.
#[derive(Clone)]
pub struct Writer(Arc<dyn Fn(Op) -> Result<(), StoreBusy> + Send + Sync>);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Queue `op` with no answer; `Err` when the queue is full (nothing queued).
    pub fn try_write(&self, op: Op) -> Result<(), StoreBusy> {
        (self.0)(op)
    }
}

/// The store's answer.
#[derive(Debug)]
pub enum Answer {
    /// Written (and committed); rows changed.
    Done(usize),
    /// Events, newest first.
    Events(Vec<StoredEvent>),
    /// A personal channel's aliases and events.
    Personal {
        /// The channels the user is subscribed to.
        alias: Vec<String>,
        /// The user's newest inbox events.
        events: Vec<StoredEvent>,
    },
    /// `(user_id, event)` or `(url, event)` rows, with their app id.
    Rows(Vec<(String, String, String)>),
    /// The request failed (SQLite error text).
    Failed(String),
}

/// An answer for the shard that asked, with the token it gave.
#[derive(Debug)]
pub struct Done<T> {
    /// What the asker needs to continue.
    pub token: T,
    /// The answer.
    pub answer: Answer,
}

/// Hands an answer to a shard (wraps it into the inbox message); `Some` gives it back when
/// the inbox is full.
pub type Sink<T> = Box<dyn Fn(ShardId, Done<T>) -> Option<Done<T>> + Send + Sync>;

/// The queue was full: nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreBusy;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("data store {path}: {reason}")]
pub struct OpenError {
    /// The directory or file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

struct Request<T> {
    /// Where the answer goes; `None`: nobody waits for one.
    reply: Option<(ShardId, T)>,
    op: Op,
}

struct Inner<T> {
    /// `None` only while dropping.
    sender: Option<Sender<Request<T>>>,
    /// Requests reserved or queued and not yet taken by the thread: the queue's bound.
    queued: Arc<AtomicUsize>,
    /// `Settings::queue`.
    capacity: usize,
    sink: Arc<OnceLock<Sink<T>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The handle shards hold (cheap to clone); the thread stops when the last one is dropped.
pub struct Store<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + 'static> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl<T: Send + 'static> Store<T> {
    /// Open (creating if needed) the database in `settings.dir` and start the store thread.
    /// A corrupt database, or a directory that cannot be created or written, is an error
    /// naming the path.
    pub fn open(settings: &Settings) -> Result<Store<T>, OpenError> {
        let db = db::Db::open(settings)?;
        let ckpt = checkpoint::Checkpointer::start(
            &db_path(&settings.dir),
            checkpoint::PERIOD,
            checkpoint::RESTART_FRAMES,
        )
        .map_err(|reason| OpenError {
            path: settings.dir.clone(),
            reason,
        })?;
        let (sender, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let sink: Arc<OnceLock<Sink<T>>> = Arc::new(OnceLock::new());
        let thread_sink = sink.clone();
        let retention = settings.max_event_age;
        let taken = queued.clone();
        let thread = std::thread::Builder::new()
            .name("herald-store".into())
            .spawn(move || {
                run(db, &ckpt, rx, &taken, &thread_sink, retention);
                // The last passive pass runs after the writer's last commit.
                drop(ckpt);
            })
            .map_err(|e| OpenError {
                path: settings.dir.clone(),
                reason: format!("cannot start the store thread: {e}"),
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                sender: Some(sender),
                queued,
                capacity: settings.queue.max(1),
                sink,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Install where answers go (once; later calls are ignored).
    pub fn set_sink(&self, sink: Sink<T>) {
        let _ = self.inner.sink.set(sink);
    }

    /// Queue `op`; its answer goes to shard `to` with `token`. Never blocks.
    pub fn try_send(&self, to: ShardId, token: T, op: Op) -> Result<(), StoreBusy> {
        self.reserve()?.send(to, token, op)
    }

    /// Take room for one request in the queue (given back if the [`Reserved`] is dropped
    /// unsent); `Err` when the queue is full.
    pub fn reserve(&self) -> Result<Reserved<T>, StoreBusy> {
        let q = &self.inner.queued;
        if q.fetch_add(1, Ordering::AcqRel) >= self.inner.capacity {
            q.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreBusy);
        }
        Ok(Reserved {
            store: Some(self.clone()),
        })
    }

    fn queue(&self, r: Request<T>) -> Result<(), StoreBusy> {
        self.reserve()?.push(r)
    }

    /// A fire-and-forget handle on this store (keeps the thread alive while it exists).
    pub fn writer(&self) -> Writer {
        let st = self.clone();
        Writer(Arc::new(move |op| st.queue(Request { reply: None, op })))
    }
}

/// Room for one request in a store's queue, from [`Store::reserve`].
pub struct Reserved<T: Send + 'static> {
    /// `None` once sent.
    store: Option<Store<T>>,
}

impl<T: Send + 'static> Reserved<T> {
    /// Queue `op` in the reserved room; its answer goes to shard `to` with `token`. `Err`
    /// only if the store thread is gone.
    pub fn send(self, to: ShardId, token: T, op: Op) -> Result<(), StoreBusy> {
        self.push(Request {
            reply: Some((to, token)),
            op,
        })
    }

    fn push(mut self, r: Request<T>) -> Result<(), StoreBusy> {
        let Some(store) = self.store.take() else {
            return Err(StoreBusy);
        };
        let inner = &store.inner;
        match inner.sender.as_ref().map(|s| s.send(r)) {
            Some(Ok(())) => Ok(()),
            _ => {
                inner.queued.fetch_sub(1, Ordering::AcqRel);
                Err(StoreBusy)
            }
        }
    }
}

impl<T: Send + 'static> Drop for Reserved<T> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.inner.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Reserved<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reserved")
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Disconnect the queue, then wait for the thread to write what is queued and exit.
        self.sender.take();
        if let Ok(mut t) = self.thread.lock() {
            if let Some(t) = t.take() {
                let _ = t.join();
            }
        }
    }
}

/// The data directory's database path.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

fn run<T>(
    mut db: db::Db,
    ckpt: &checkpoint::Checkpointer,
    rx: Receiver<Request<T>>,
    queued: &AtomicUsize,
    sink: &OnceLock<Sink<T>>,
    retention: Option<Duration>,
) {
    lower_priority();
    let mut batch: Vec<Request<T>> = Vec::with_capacity(256);
    let mut last_prune = Instant::now();
    // Channels still over their limit after a pass: the next pass runs after the next batch,
    // so pruning keeps up with any publish rate, one bounded pass per batch.
    let mut behind = false;
    loop {
        let wait = if behind {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        let first = match rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                behind = db.prune(retention);
                last_prune = Instant::now();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Taken off the queue: room for as many new requests while this batch runs.
        queued.fetch_sub(batch.len(), Ordering::AcqRel);
        let ops: Vec<&Op> = batch.iter().map(|r| &r.op).collect();
        let answers = db.run_batch(&ops);
        for (req, answer) in batch.drain(..).zip(answers) {
            if let Some((to, token)) = req.reply {
                answer_to(sink, to, Done { token, answer });
            }
        }
        if behind || last_prune.elapsed() >= Duration::from_secs(1) {
            behind = db.prune(retention);
            last_prune = Instant::now();
        }
        if ckpt.restart_due() {
            db.restart_log();
        }
    }
}

/// Nice this thread (not the process) by 5: on a loaded machine the shards, whose work is
/// delivery, win the CPU over the store, whose work only delays acknowledgements.
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS and a thread id
    // changes that thread's nice value only (Linux), and its failure is harmless.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), 5);
    }
}

/// Give `done` to its shard, retrying a full inbox for up to a second (this thread may wait;
/// the shards never do).
fn answer_to<T>(sink: &OnceLock<Sink<T>>, to: ShardId, mut done: Done<T>) {
    let start = Instant::now();
    loop {
        let Some(s) = sink.get() else {
            if start.elapsed() > Duration::from_secs(5) {
                tracing::warn!("store: no answer sink installed, answer dropped");
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        match s(to, done) {
            None => return,
            Some(back) => {
                if start.elapsed() > Duration::from_secs(1) {
                    tracing::warn!(
                        shard = to.0,
                        "store: shard inbox full for 1 s, answer dropped"
                    );
                    return;
                }
                done = back;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}
