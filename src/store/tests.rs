//! The store against a real SQLite file in a fresh temporary directory.

use super::*;
use std::sync::mpsc::Receiver;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "herald-store-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn settings(d: &Path) -> Settings {
    Settings {
        dir: d.to_path_buf(),
        queue: 1024,
        max_events_per_channel: 0,
        max_event_age: None,
        sync_full: false,
    }
}

fn open(s: &Settings) -> (Store<u32>, Receiver<(ShardId, Done<u32>)>) {
    let store = Store::open(s).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    store.set_sink(Box::new(move |to, d| {
        tx.lock().unwrap().send((to, d)).unwrap();
        None
    }));
    (store, rx)
}

fn ask(store: &Store<u32>, rx: &Receiver<(ShardId, Done<u32>)>, op: Op) -> Answer {
    store.try_send(ShardId(3), 7, op).unwrap();
    let (to, d) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((to, d.token), (ShardId(3), 7));
    d.answer
}

fn ev(mid: &str, channel: &str, ts: f64) -> NewEvent {
    NewEvent {
        mid: mid.into(),
        app: "a1".into(),
        channel: channel.into(),
        owner: None,
        timestamp: ts,
        payload: format!("{{\"mid\": \"{mid}\"}}"),
    }
}

fn mids(a: Answer) -> Vec<String> {
    match a {
        Answer::Events(es) => es.into_iter().map(|e| e.mid).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_survive_reopen_and_come_back_newest_first() {
    let d = dir("reopen");
    let s = settings(&d);
    {
        let (store, rx) = open(&s);
        let batch = vec![
            ev("m1", "c", 1.0),
            ev("m2", "c", 2.0),
            ev("m3", "other", 3.0),
        ];
        assert!(matches!(
            ask(&store, &rx, Op::Insert(batch)),
            Answer::Done(3)
        ));
    }
    let (store, rx) = open(&s);
    let latest = |skip, count| Op::Latest {
        app: "a1".into(),
        channel: "c".into(),
        skip,
        count,
    };
    assert_eq!(mids(ask(&store, &rx, latest(0, 10))), ["m2", "m1"]);
    assert_eq!(mids(ask(&store, &rx, latest(1, 10))), ["m1"]);
    let recent = Op::Recent {
        app: "a1".into(),
        count: 2,
    };
    assert_eq!(mids(ask(&store, &rx, recent)), ["m3", "m2"]);
    let other_app = Op::Recent {
        app: "a2".into(),
        count: 10,
    };
    assert!(mids(ask(&store, &rx, other_app)).is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn personal_channels_list_subscriptions_and_their_inbox() {
    let d = dir("personal");
    let (store, rx) = open(&settings(&d));
    let sub = |event: &str| Op::Subscribe {
        app: "a1".into(),
        user_id: "u1".into(),
        event: event.into(),
    };
    assert!(matches!(ask(&store, &rx, sub("news")), Answer::Done(1)));
    assert!(matches!(ask(&store, &rx, sub("news")), Answer::Done(0)));
    assert!(matches!(ask(&store, &rx, sub("sport")), Answer::Done(1)));
    let batch = vec![
        ev("n1", "news", 1.0),
        ev("x1", "weather", 2.0),
        ev("s1", "sport", 3.0),
    ];
    ask(&store, &rx, Op::Insert(batch));
    let personal = Op::Personal {
        app: "a1".into(),
        user_id: "u1".into(),
        count: 10,
    };
    match ask(&store, &rx, personal) {
        Answer::Personal { alias, events } => {
            assert_eq!(alias, ["news", "sport"]);
            let m: Vec<_> = events.iter().map(|e| e.mid.as_str()).collect();
            assert_eq!(m, ["s1", "n1"]);
        }
        other => panic!("{other:?}"),
    }
    let unsub = Op::Unsubscribe {
        app: "a1".into(),
        user_id: "u1".into(),
        event: "news".into(),
    };
    assert!(matches!(ask(&store, &rx, unsub), Answer::Done(1)));
    let list = Op::Subscriptions {
        app: "a1".into(),
        user_id: None,
        event: None,
    };
    match ask(&store, &rx, list) {
        Answer::Rows(r) => assert_eq!(r, [("a1".into(), "u1".into(), "sport".into())]),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn multi_row_inserts_index_the_right_events_across_restarts() {
    let d = dir("chunks");
    let s = settings(&d);
    let sub = Op::Subscribe {
        app: "a1".into(),
        user_id: "u1".into(),
        event: "news".into(),
    };
    let personal = || Op::Personal {
        app: "a1".into(),
        user_id: "u1".into(),
        count: 1000,
    };
    let inbox = |a: Answer| match a {
        Answer::Personal { events, .. } => events.into_iter().map(|e| e.mid).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    // 150 events, every third on the followed channel: chunks of 64, 64, 16, 4, 1, 1 rows.
    let batch: Vec<NewEvent> = (0..150)
        .map(|i| {
            let ch = if i % 3 == 0 { "news" } else { "weather" };
            ev(&format!("m{i}"), ch, f64::from(i))
        })
        .collect();
    let news: Vec<String> = (0..150)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("m{i}"))
        .collect();
    {
        let (store, rx) = open(&s);
        assert!(matches!(ask(&store, &rx, sub), Answer::Done(1)));
        assert!(matches!(
            ask(&store, &rx, Op::Insert(batch)),
            Answer::Done(150)
        ));
        assert_eq!(inbox(ask(&store, &rx, personal())), news);
    }
    // After a restart the store still knows the channel is followed.
    let (store, rx) = open(&s);
    ask(&store, &rx, Op::Insert(vec![ev("late", "news", 200.0)]));
    let got = inbox(ask(&store, &rx, personal()));
    assert_eq!((got.len(), got[0].as_str()), (news.len() + 1, "late"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn webs_are_added_once_and_removed_per_event_or_all() {
    let d = dir("webs");
    let (store, rx) = open(&settings(&d));
    let add = |e: &str| Op::AddWeb {
        app: "a1".into(),
        url: "http://h/x".into(),
        event: e.into(),
    };
    assert!(matches!(ask(&store, &rx, add("c1")), Answer::Done(1)));
    assert!(matches!(ask(&store, &rx, add("c1")), Answer::Done(0)));
    assert!(matches!(ask(&store, &rx, add("c2")), Answer::Done(1)));
    let rm = |e: Option<&str>| Op::RemoveWeb {
        app: "a1".into(),
        url: "http://h/x".into(),
        event: e.map(Into::into),
    };
    assert!(matches!(ask(&store, &rx, rm(Some("c1"))), Answer::Done(1)));
    assert!(matches!(ask(&store, &rx, rm(None)), Answer::Done(1)));
    match ask(&store, &rx, Op::Webs { app: None }) {
        Answer::Rows(r) => assert!(r.is_empty()),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn retention_keeps_the_newest_per_channel_and_drops_old_events() {
    let d = dir("retention");
    let mut s = settings(&d);
    s.max_events_per_channel = 5;
    let mut db = db::Db::open(&s).unwrap();
    let now = SystemTimeNow::secs();
    let batch: Vec<NewEvent> = (0..20)
        .map(|i| ev(&format!("m{i}"), "c", now - 100.0 + f64::from(i)))
        .chain([ev("old", "d", now - 10_000.0), ev("new", "d", now)])
        .collect();
    let op = Op::Insert(batch);
    db.run_batch(&[&op]);
    db.prune(Some(Duration::from_secs(3600)));
    let latest = |c: &str| Op::Latest {
        app: "a1".into(),
        channel: c.into(),
        skip: 0,
        count: 100,
    };
    let got = db.run_batch(&[&latest("c"), &latest("d")]);
    let mut it = got.into_iter();
    assert_eq!(
        mids(it.next().unwrap()),
        ["m19", "m18", "m17", "m16", "m15"]
    );
    assert_eq!(mids(it.next().unwrap()), ["new"]);
    let _ = std::fs::remove_dir_all(&d);
}

struct SystemTimeNow;
impl SystemTimeNow {
    fn secs() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }
}

#[test]
fn a_full_queue_is_busy_at_once() {
    let d = dir("busy");
    let mut s = settings(&d);
    s.queue = 2;
    let store: Store<u32> = Store::open(&s).unwrap();
    // No sink yet: the thread holds its first batch waiting to answer, so the queue fills.
    let mut busy = 0;
    for i in 0..50 {
        let t = Instant::now();
        if store
            .try_send(ShardId(0), i, Op::Webs { app: None })
            .is_err()
        {
            busy += 1;
        }
        assert!(t.elapsed() < Duration::from_millis(50), "try_send blocked");
    }
    assert!(busy >= 40, "only {busy} of 50 refused");
    store.set_sink(Box::new(|_, _| None));
    drop(store);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_reservation_holds_room_until_sent_or_dropped() {
    let d = dir("reserve");
    let mut s = settings(&d);
    s.queue = 1;
    let (store, rx) = open(&s);
    let held = store.reserve().unwrap();
    assert!(
        store.reserve().is_err(),
        "a second reservation past the bound"
    );
    assert_eq!(
        store.try_send(ShardId(0), 1, Op::Webs { app: None }),
        Err(StoreBusy)
    );
    drop(held);
    let r = store.reserve().expect("room given back by the drop");
    r.send(ShardId(3), 7, Op::Webs { app: None }).unwrap();
    let (to, done) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((to, done.token), (ShardId(3), 7));
    assert!(matches!(done.answer, Answer::Rows(ref r) if r.is_empty()));
    // Taken by the thread: the room is free again.
    assert!(matches!(
        ask(&store, &rx, Op::Webs { app: None }),
        Answer::Rows(_)
    ));
    drop(store);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_corrupt_file_or_unwritable_directory_is_a_clear_error() {
    let d = dir("corrupt");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(db_path(&d), vec![0x42u8; 8192]).unwrap();
    let e = Store::<u32>::open(&settings(&d)).unwrap_err();
    assert_eq!(e.path, db_path(&d));
    assert!(e.reason.contains("not a database"), "{e}");
    assert!(e.to_string().contains(&d.display().to_string()));
    let _ = std::fs::remove_dir_all(&d);

    // A directory under a regular file cannot be created.
    let f = dir("file");
    std::fs::write(&f, b"x").unwrap();
    let e = Store::<u32>::open(&settings(&f.join("sub"))).unwrap_err();
    assert!(e.reason.contains("cannot create"), "{e}");
    let _ = std::fs::remove_file(&f);
}

#[test]
fn channelstream_history_appends_prunes_edits_and_deletes_first_matches() {
    let d = dir("cshist");
    let s = settings(&d);
    let (store, rx) = open(&s);
    let w = store.writer();
    let append = |channel: &str, uuid: &str, msg: &str, keep: u64| Op::CsAppend {
        channel: channel.into(),
        uuid: uuid.into(),
        msg: msg.into(),
        keep,
    };
    w.try_write(append("s", "x", "mx", 0)).unwrap();
    for (u, m) in [("a", "m1"), ("b", "m2"), ("a", "m3"), ("c", "m4")] {
        w.try_write(append("r", u, m, 3)).unwrap();
    }
    // m1 is pruned (newest 3 kept); the edit and the delete hit the first match left.
    w.try_write(Op::CsEdit {
        channel: "r".into(),
        uuid: "a".into(),
        msg: "e".into(),
    })
    .unwrap();
    w.try_write(Op::CsDelete {
        channel: "r".into(),
        uuid: "b".into(),
    })
    .unwrap();
    // An answered request after the writes: they are committed once it is answered.
    mids(ask(
        &store,
        &rx,
        Op::Recent {
            app: "a1".into(),
            count: 1,
        },
    ));
    let rows = read_cs_history(&s).unwrap();
    let want = [("s", "mx"), ("r", "e"), ("r", "m4")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(c, m)| ((*c).into(), (*m).into()))
        .collect();
    assert_eq!(rows, want);
    drop((w, store));
    let _ = std::fs::remove_dir_all(&d);
}

/// Under a continuous write load (no pause between batches) the checkpointer's passes and
/// the writer's `RESTART` keep rewinding the log: the WAL file stays a small fraction of
/// what was written, and every event is still there.
#[test]
fn the_log_is_rewound_under_a_continuous_write_load() {
    let d = dir("ckpt");
    let s = settings(&d);
    let mut db = db::Db::open(&s).unwrap();
    let ckpt = checkpoint::Checkpointer::start(&db_path(&d), Duration::from_millis(2), 32).unwrap();
    let payload = "x".repeat(1000);
    let (mut written, mut restarts, mut n) = (0usize, 0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (written < 32 << 20 || restarts < 3) && Instant::now() < deadline {
        let batch: Vec<NewEvent> = (0..20)
            .map(|i| {
                let mut e = ev(&format!("m{n}-{i}"), "c", 1.0);
                e.payload.clone_from(&payload);
                e
            })
            .collect();
        let op = Op::Insert(batch);
        assert!(matches!(db.run_batch(&[&op])[0], Answer::Done(20)));
        written += 20 * 1000;
        n += 1;
        if ckpt.restart_due() {
            db.restart_log();
            restarts += 1;
        }
    }
    assert!(restarts >= 3, "{restarts} restarts in 30 s");
    let wal = std::fs::metadata(d.join(format!("{DB_FILE}-wal")))
        .unwrap()
        .len();
    assert!(
        // Never rewound, it would hold every page written (more than `written`).
        (wal as usize) < written / 2,
        "WAL {wal} bytes after {written} written"
    );
    let count = Op::Latest {
        app: "a1".into(),
        channel: "c".into(),
        skip: 0,
        count: u32::MAX,
    };
    assert_eq!(
        mids(db.run_batch(&[&count]).remove(0)).len(),
        n as usize * 20
    );
    drop(ckpt);
    let _ = std::fs::remove_dir_all(&d);
}

/// Channels published together (their events interleaved by seq) are pruned window by
/// window, over several passes, down to exactly their newest `keep`; a channel under its
/// limit whose events are the oldest of all keeps every one.
#[test]
fn interleaved_channels_are_pruned_window_by_window_to_their_newest() {
    let d = dir("window");
    let mut s = settings(&d);
    s.max_events_per_channel = 5;
    let mut db = db::Db::open(&s).unwrap();
    db.set_prune_window(10);
    let mut batch: Vec<NewEvent> = (0..3)
        .map(|i| ev(&format!("slow{i}"), "slow", 1.0))
        .collect();
    for i in 0..40 {
        for c in ["a", "b", "c"] {
            batch.push(ev(&format!("{c}{i}"), c, 2.0));
        }
    }
    let op = Op::Insert(batch);
    db.run_batch(&[&op]);
    let mut passes = 1;
    while db.prune(None) {
        passes += 1;
        assert!(passes < 100, "pruning does not end");
    }
    // 35 surplus rows per channel, interleaved: 105 rows over windows of 10 seqs.
    assert!(passes >= 10, "{passes} passes");
    let latest = |c: &str| Op::Latest {
        app: "a1".into(),
        channel: c.into(),
        skip: 0,
        count: 100,
    };
    for c in ["a", "b", "c"] {
        let want: Vec<String> = (35..40).rev().map(|i| format!("{c}{i}")).collect();
        assert_eq!(mids(db.run_batch(&[&latest(c)]).remove(0)), want, "{c}");
    }
    assert_eq!(
        mids(db.run_batch(&[&latest("slow")]).remove(0)),
        ["slow2", "slow1", "slow0"]
    );
    // Counts were kept right: five more events to `a` leave it at five again.
    let more = Op::Insert((40..45).map(|i| ev(&format!("a{i}"), "a", 3.0)).collect());
    db.run_batch(&[&more]);
    while db.prune(None) {}
    let want: Vec<String> = (40..45).rev().map(|i| format!("a{i}")).collect();
    assert_eq!(mids(db.run_batch(&[&latest("a")]).remove(0)), want);
    let _ = std::fs::remove_dir_all(&d);
}
