//! The WAL checkpointer: copies committed WAL frames back into the database file on its own
//! thread and connection, so the store thread's commits never wait for a checkpoint's page
//! copies and fsync. (SQLite's default runs the checkpoint inside whichever commit crosses
//! `wal_autocheckpoint`: under a steady publish load that was a sixth of the store thread's
//! time, plus the fsync's wait.)
//!
//! A passive checkpoint (it never blocks the writer) runs every [`PERIOD`]. Passive passes
//! alone cannot rewind the log under a continuous write load: the writer keeps appending
//! frames a pass did not cover, and SQLite rewinds the log only when a write transaction
//! starts with every frame copied. So once a pass ends with the log past
//! [`RESTART_FRAMES`], it marks a restart due ([`Checkpointer::restart_due`]), and the store
//! thread, between two batches, runs a `RESTART` checkpoint itself: it copies only the
//! residue (what was committed during that pass), and its next commit writes the log from
//! the start again. (A `RESTART` from this thread would have to win the write lock in the
//! microseconds between two batches; under load it would wait forever.) The log thus holds
//! about `RESTART_FRAMES` pages plus what is written during one pass, and the writer's
//! `journal_size_limit` trims the file back after a burst.
//!
//! Should this thread fail, the writer's own `wal_autocheckpoint` (set far higher, see
//! `db::Db::open`) still bounds the log.

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a passive checkpoint runs.
pub(super) const PERIOD: Duration = Duration::from_millis(200);

/// Log frames (pages) past which the log is rewound: 64 MiB at 4 KiB pages.
pub(super) const RESTART_FRAMES: i64 = 16_384;

/// Busy handler for both connections: retry every 200 µs for up to 5 s. (SQLite's default
/// timeout sleeps 1, 2, 5, 10, ... ms between tries, so a writer held off for 5 ms by a
/// `RESTART` would sleep for 8.)
pub(super) fn busy(tries: i32) -> bool {
    if tries >= 25_000 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(200));
    true
}

/// The running checkpointer; dropping it stops the thread (after one last passive pass).
pub(super) struct Checkpointer {
    due: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Open a second connection to the database at `path` and start the thread: a passive
    /// pass every `period`; a restart is due once a pass ends with the log past
    /// `restart_frames`.
    pub(super) fn start(
        path: &Path,
        period: Duration,
        restart_frames: i64,
    ) -> Result<Checkpointer, String> {
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.busy_handler(Some(busy)).map_err(|e| e.to_string())?;
        let (stop, rx) = mpsc::channel::<()>();
        let due = Arc::new(AtomicBool::new(false));
        let mark = due.clone();
        let thread = std::thread::Builder::new()
            .name("herald-ckpt".into())
            .spawn(move || run(&conn, &rx, period, restart_frames, &mark))
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Checkpointer {
            due,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// Whether the store thread should rewind the log now (`Db::restart_log`); cleared by
    /// the call.
    pub(super) fn restart_due(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `PRAGMA wal_checkpoint(mode)` on `conn`: frames in the log (-1 if it could not run, the
/// lock being held by the other connection's checkpoint), or the error.
pub(super) fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        let busy: i64 = r.get(0)?;
        if busy != 0 {
            return Ok(-1);
        }
        r.get::<_, i64>(1)
    })
}

fn run(
    conn: &Connection,
    stop: &mpsc::Receiver<()>,
    period: Duration,
    restart_frames: i64,
    due: &AtomicBool,
) {
    let mut failing = false;
    loop {
        let last = matches!(
            stop.recv_timeout(period),
            Ok(()) | Err(RecvTimeoutError::Disconnected)
        );
        if due.load(Ordering::Acquire) && !last {
            // The store thread has yet to rewind the log: a pass now would only hold the
            // lock its `RESTART` needs.
            continue;
        }
        match checkpoint(conn, "PASSIVE") {
            Ok(log) => {
                failing = false;
                if log >= restart_frames {
                    due.store(true, Ordering::Release);
                }
            }
            // An I/O error: said once, tried again next period; the writer's
            // autocheckpoint is the safety net.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "store: checkpoint failed");
            }
            Err(_) => {}
        }
        if last {
            return;
        }
    }
}
