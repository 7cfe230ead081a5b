//! Fan-out cost of one `POST /message` inside the model: `handle(Command::Messages)` for a
//! channel with N attached websocket subscribers. The effects sink only counts targets, so
//! the figure is the model's own work (one render, one frame, one target list) and excludes
//! socket writes. Throughput is reported per delivery.

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald::channelstream::api::types::{
    ConnectCmd, Delivery, InfoResolution, MessageCmd, Timestamp,
};
use herald::channelstream::model::{Command, Effects, Model, Now, Reply, ReqRef, SockRef};
use serde_json::{json, Map, Value};
use std::time::Instant;
use uuid::Uuid;

/// Counts what would be written.
#[derive(Default)]
struct Count {
    deliveries: u64,
    frames: u64,
}

impl Effects for Count {
    fn reply(&mut self, _req: ReqRef, _reply: Reply) {}
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        self.frames += 1;
        self.deliveries += to.len() as u64;
        black_box(frame);
    }
    fn close(&mut self, _sock: SockRef, _code: herald::proto::ws::CloseCode) {}
}

fn setup(n: u32, now: Now) -> Model {
    let mut m = Model::new(now.wall);
    let mut fx = Count::default();
    // Keep the connect responses small: no user lists, no history.
    let info = InfoResolution {
        include_users: false,
        include_history: false,
        ..InfoResolution::default()
    };
    for i in 0..n {
        let conn_id = Uuid::new_v4();
        let cmd = ConnectCmd {
            username: format!("user{i}"),
            conn_id,
            channels: vec!["room".to_owned()],
            state_public_keys: Vec::new(),
            fresh_user_state: Map::new(),
            user_state: Map::new(),
            channel_configs: Vec::new(),
            info: info.clone(),
        };
        m.connect(cmd, now, &mut fx);
        let sock = SockRef::new(0, i, 1);
        m.ws_open(conn_id, sock, now, &mut fx);
    }
    m
}

fn message(now: Now) -> MessageCmd {
    let body = match json!({"text": "hello room, a typical 64-byte chat message body..."}) {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    MessageCmd {
        delivery: Delivery {
            channel: Some("room".to_owned()),
            ..Delivery::default()
        },
        uuid: Uuid::new_v4(),
        timestamp: Timestamp::from_utc(now.wall),
        user: "system".to_owned(),
        message: Some(body),
    }
}

fn fanout(c: &mut Criterion) {
    let now = Now {
        mono: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 11, 22, 14, 0, 0).unwrap(),
    };
    let mut group = c.benchmark_group("fanout_publish");
    for n in [10u32, 1_000, 10_000] {
        let mut model = setup(n, now);
        let msg = message(now);
        let mut fx = Count::default();
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                model.handle(None, Command::Messages(vec![msg.clone()]), now, &mut fx);
            })
        });
        // Every publish reached every subscriber in one `deliver` call (when it ran at all:
        // a filter may skip this size).
        assert_eq!(fx.deliveries, fx.frames * u64::from(n));
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
