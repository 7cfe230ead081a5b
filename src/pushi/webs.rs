//! Pushi's web hooks (`/webs`): every event of a channel a URL subscribed to is POSTed to it
//! as the event's JSON (`content-type: application/json`, no signature, as Pushi does).
//! As in Pushi, a URL subscribed to `personal-{user_id}` also gets the events of every channel
//! that user is subscribed to (`/subscriptions`): the thread keeps that alias index too
//! (app, event) → users, loaded at start and kept current after each committed change; each
//! URL gets an event once even when several of its subscriptions match.
//!
//! One sender thread with a **bounded** queue (`QUEUE`): shards `try_send` and never wait; a
//! full queue drops the event and counts it (`dropped`). The thread keeps the (app, channel)
//! → URLs map itself, loaded from the store at start and kept current by the shards after the
//! store committed an add or remove; shards skip the queue entirely while no URL is
//! subscribed (`active`, plus adds still queued: `pending`). A slow receiver delays the others (one thread, 5 s timeout per
//! POST): web hooks are best effort, as in Pushi. Pusher's signed webhook workers
//! (`pusher::webhooks`) are per configured URL and sign with Pusher's scheme, so they do not
//! fit subscriptions added at run time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Jobs the queue holds.
pub const QUEUE: usize = 4096;
/// One POST's time limit.
pub const TIMEOUT: Duration = Duration::from_secs(5);

enum Job {
    Post(String, String, String),
    Add(String, String, String),
    Remove(String, String, Option<String>),
    /// A per-user subscription `(app, user_id, event)` added (true) or removed.
    Alias(String, String, String, bool),
}

/// The shards' handle (cheap to clone).
#[derive(Clone)]
pub struct Webs {
    tx: SyncSender<Job>,
    active: Arc<AtomicUsize>,
    /// Adds queued but not yet applied by the thread: while any is pending, events are queued
    /// too (else an event published right after its `POST /webs` was answered could be
    /// skipped before the thread saw the add).
    pending: Arc<AtomicUsize>,
    /// Events dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    /// POSTs that failed (status, I/O, timeout).
    pub failed: Arc<AtomicU64>,
}

impl std::fmt::Debug for Webs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webs")
    }
}

/// (app, event) → URLs, and (app, event) → user ids subscribed to it (the alias index).
type Map = HashMap<(String, String), Vec<String>>;

impl Webs {
    /// Start the sender with the stored `(app, url, event)` web rows and `(app, user_id,
    /// event)` subscription rows.
    pub fn start(
        rows: Vec<(String, String, String)>,
        subs: Vec<(String, String, String)>,
    ) -> std::io::Result<Webs> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let mut map = Map::new();
        for (app, url, event) in rows {
            add(&mut map, app, url, event);
        }
        let mut alias = Map::new();
        for (app, user, event) in subs {
            add(&mut alias, app, user, event);
        }
        let active = Arc::new(AtomicUsize::new(map.len()));
        let pending = Arc::new(AtomicUsize::new(0));
        let w = Webs {
            tx,
            active: active.clone(),
            pending: pending.clone(),
            dropped: Arc::default(),
            failed: Arc::default(),
        };
        let failed = w.failed.clone();
        std::thread::Builder::new()
            .name("herald-pushi-webs".into())
            .spawn(move || run(rx, (map, alias), (&active, &pending), &failed))?;
        Ok(w)
    }

    /// An event of `channel`: POST it to the channel's URLs (if any).
    pub fn notify(&self, app: &str, channel: &str, body: &str) {
        if self.active.load(Ordering::Acquire) == 0 && self.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let job = Job::Post(app.into(), channel.into(), body.into());
        if self.tx.try_send(job).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A stored subscription was added.
    pub fn add(&self, app: &str, url: &str, event: &str) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if !self.control(Job::Add(app.into(), url.into(), event.into())) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Stored subscriptions were removed (`event: None`: all of the URL's).
    pub fn remove(&self, app: &str, url: &str, event: Option<&str>) {
        let _ = self.control(Job::Remove(app.into(), url.into(), event.map(Into::into)));
    }

    /// A per-user subscription was added (`added`) or removed.
    pub fn alias(&self, app: &str, user: &str, event: &str, added: bool) {
        let _ = self.control(Job::Alias(app.into(), user.into(), event.into(), added));
    }

    /// Queue a map change; false if the queue was full.
    fn control(&self, job: Job) -> bool {
        if self.tx.try_send(job).is_err() {
            // The store holds the truth; the map catches up at the next start.
            tracing::warn!("pushi webs: queue full, subscription change applies after restart");
            return false;
        }
        true
    }
}

fn add(map: &mut Map, app: String, url: String, event: String) {
    let urls = map.entry((app, event)).or_default();
    if !urls.contains(&url) {
        urls.push(url);
    }
}

/// The URLs an event of `channel` goes to: the channel's own, then those of each
/// `personal-{user}` whose user is subscribed to it, each URL once.
fn targets<'a>(map: &'a Map, alias: &Map, app: &str, channel: &str) -> Vec<&'a str> {
    let key = |event: String| (app.to_owned(), event);
    let mut urls: Vec<&str> = Vec::new();
    let mut take = |event: String| {
        for u in map.get(&key(event)).into_iter().flatten() {
            if !urls.contains(&u.as_str()) {
                urls.push(u);
            }
        }
    };
    take(channel.to_owned());
    for user in alias.get(&key(channel.to_owned())).into_iter().flatten() {
        take(format!("personal-{user}"));
    }
    urls
}

fn run(
    rx: Receiver<Job>,
    (mut map, mut alias): (Map, Map),
    (active, pending): (&AtomicUsize, &AtomicUsize),
    failed: &AtomicU64,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Add(app, url, event) => {
                add(&mut map, app, url, event);
                active.store(map.len(), Ordering::Release);
                pending.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            Job::Remove(app, url, event) => {
                map.retain(|(a, e), urls| {
                    if *a == app && event.as_ref().is_none_or(|ev| ev == e) {
                        urls.retain(|u| *u != url);
                    }
                    !urls.is_empty()
                });
            }
            Job::Alias(app, user, event, added) => {
                if added {
                    add(&mut alias, app, user, event);
                } else if let Some(users) = alias.get_mut(&(app.clone(), event.clone())) {
                    users.retain(|u| *u != user);
                    if users.is_empty() {
                        alias.remove(&(app, event));
                    }
                }
                continue;
            }
            Job::Post(app, channel, body) => {
                for url in targets(&map, &alias, &app, &channel) {
                    let r = agent
                        .post(url)
                        .header("Content-Type", "application/json")
                        .send(body.as_bytes());
                    let ok = matches!(&r, Ok(resp) if resp.status().is_success());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%url, "pushi web hook failed");
                    }
                }
            }
        }
        active.store(map.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rows: &[(&str, &str, &str)]) -> Map {
        let mut m = Map::new();
        for (app, v, event) in rows {
            add(&mut m, (*app).into(), (*v).into(), (*event).into());
        }
        m
    }

    #[test]
    fn personal_urls_get_the_events_of_their_users_subscriptions_once() {
        let webs = map(&[
            ("a", "http://h/news", "news"),
            ("a", "http://h/joe", "personal-joe"),
            ("a", "http://h/news", "personal-ann"),
            ("a", "http://h/bob", "personal-bob"),
            ("b", "http://h/other", "news"),
        ]);
        let alias = map(&[
            ("a", "joe", "news"),
            ("a", "ann", "news"),
            ("a", "bob", "sport"),
            ("b", "joe", "news"),
        ]);
        let cases: [(&str, &str, &[&str]); 5] = [
            ("a", "news", &["http://h/news", "http://h/joe"]),
            ("a", "sport", &["http://h/bob"]),
            ("a", "personal-joe", &["http://h/joe"]),
            ("a", "weather", &[]),
            ("b", "news", &["http://h/other"]),
        ];
        for (app, channel, want) in cases {
            assert_eq!(
                targets(&webs, &alias, app, channel),
                want,
                "{app} {channel}"
            );
        }
    }
}
