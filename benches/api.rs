//! API hot paths: validating a typical one-item `POST /message` body (bytes -> Value ->
//! `MessageCmd`) and rendering a typical socket message with the Python-compatible encoder.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use herald::channelstream::api::schema;
use herald::py::json as pyjson;
use serde_json::{json, Value};

const MESSAGE_BODY: &[u8] = br#"[{"type": "message", "user": "alice", "channel": "room",
  "pm_users": [], "exclude_users": ["bob"], "no_history": false,
  "message": {"text": "hello room, za\u017c\u00f3\u0142\u0107", "n": 3, "ratio": 0.25}}]"#;

fn socket_message() -> Value {
    json!({
        "channel": "room",
        "uuid": "61ed6af7-32d2-4e3c-8a0f-55927c590f35",
        "timestamp": "2026-11-22T13:59:12.640167",
        "user": "system",
        "message": {"text": "raw frame sample \u{17c}", "n": 3, "ratio": 0.25, "tags": ["a", "b"]},
        "edited": null,
        "catchup": false,
        "type": "message"
    })
}

fn bench_schema(c: &mut Criterion) {
    let mut g = c.benchmark_group("schema");
    g.throughput(Throughput::Bytes(MESSAGE_BODY.len() as u64));
    g.bench_function("parse+validate 1-item /message", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(MESSAGE_BODY)).unwrap_or(Value::Null);
            schema::messages(&v).map(|m| m.len()).unwrap_or(0)
        })
    });
    let parsed: Value = serde_json::from_slice(MESSAGE_BODY).unwrap_or(Value::Null);
    g.bench_function("validate only 1-item /message", |b| {
        b.iter(|| {
            schema::messages(black_box(&parsed))
                .map(|m| m.len())
                .unwrap_or(0)
        })
    });
    let ms = schema::messages(&parsed).unwrap_or_default();
    g.bench_function("echo+render 1-item /message", |b| {
        b.iter(|| {
            let echo = Value::Array(ms.iter().map(schema::message_echo).collect());
            pyjson::to_string_pretty(black_box(&echo)).len()
        })
    });
    g.finish();
}

fn bench_pyjson(c: &mut Criterion) {
    let msg = socket_message();
    let len = pyjson::to_string_pretty(&msg).len();
    let mut g = c.benchmark_group("pyjson");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("to_string_pretty message", |b| {
        b.iter(|| pyjson::to_string_pretty(black_box(&msg)).len())
    });
    let mut out = Vec::with_capacity(1024);
    g.bench_function("write_pretty level 1 into reused Vec", |b| {
        b.iter(|| {
            out.clear();
            pyjson::write_pretty(black_box(&msg), 1, &mut out);
            out.len()
        })
    });
    g.bench_function("serde_json::to_vec_pretty (reference)", |b| {
        b.iter(|| {
            serde_json::to_vec_pretty(black_box(&msg))
                .map(|v| v.len())
                .unwrap_or(0)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_schema, bench_pyjson);
criterion_main!(benches);
