//! Cost of the Pusher activity timeout (a message's store, a sweep over every open socket)
//! and of a sign-in's checks (`user_data` with a full watchlist, the user signature).
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use herald::ids::{ShardId, SockRef};
use herald::pusher::activity::Activity;
use herald::pusher::apps::App;
use herald::pusher::{sign, users};

const SOCKETS: u32 = 100_000;

fn bench_activity(c: &mut Criterion) {
    let t0 = Instant::now();
    // A timeout longer than the run: every sweep walks all records and finds none due.
    let timeout = Duration::from_secs(4_000_000);
    let mut a = Activity::new(timeout, Duration::from_secs(40), t0);
    for slot in 0..SOCKETS {
        a.open(SockRef::new(0, slot, 1), t0);
    }
    c.bench_function("activity/seen", |b| {
        b.iter(|| a.seen(black_box(SockRef::new(0, 4242, 1)), t0))
    });
    let mut t = t0;
    c.bench_function("activity/sweep_100k_none_due", |b| {
        b.iter(|| {
            t += Duration::from_secs(10); // one sweep interval: each call sweeps
            let due = a.sweep(ShardId(0), t);
            assert!(due.ping.is_empty());
            black_box(due)
        })
    });
}

fn bench_signin(c: &mut Criterion) {
    let app = App::new("app-id", "app-key", "app-secret");
    let ids: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let ud =
        serde_json::json!({"id": "me", "user_info": {"name": "Me"}, "watchlist": ids}).to_string();
    let auth = format!(
        "app-key:{}",
        sign::hmac_hex(b"app-secret", format!("1.2::user::{ud}").as_bytes())
    );
    c.bench_function("signin/user_auth_ok", |b| {
        b.iter(|| sign::user_auth_ok(&app, "1.2", black_box(&ud), black_box(&auth)))
    });
    c.bench_function("signin/parse_user_data_watchlist_100", |b| {
        b.iter(|| users::parse_user_data(black_box(&ud)))
    });
}

criterion_group!(benches, bench_activity, bench_signin);
criterion_main!(benches);
