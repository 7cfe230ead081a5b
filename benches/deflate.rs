//! Criterion benches for permessage-deflate: the `Sec-WebSocket-Extensions` parser and the
//! negotiation (once per handshake), and the codec (compressing one broadcast, which Herald
//! does once per message and window size, and inflating one client message).
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald::proto::deflate::{negotiate, parse_extensions, Codec};
use herald::proto::ws::OpCode;

const BROWSER: &[u8] = b"permessage-deflate; client_max_window_bits";
const AUTOBAHN_13_7: &[u8] = b"permessage-deflate; client_no_context_takeover; \
    client_max_window_bits; server_no_context_takeover; server_max_window_bits=9, \
    permessage-deflate; client_no_context_takeover; client_max_window_bits; \
    server_no_context_takeover, permessage-deflate; client_no_context_takeover; \
    client_max_window_bits";

fn bench_offers(c: &mut Criterion) {
    let mut g = c.benchmark_group("extensions");
    for (name, v) in [("browser", BROWSER), ("autobahn 13.7", AUTOBAHN_13_7)] {
        g.bench_function(format!("parse {name}"), |b| {
            b.iter(|| parse_extensions(black_box(v)))
        });
        g.bench_function(format!("negotiate {name}"), |b| {
            b.iter(|| negotiate([black_box(v)]))
        });
    }
    g.finish();
}

/// A Pusher-like JSON event of about `size` bytes.
fn event(size: usize) -> Vec<u8> {
    let mut s = String::from("{\"event\":\"price-update\",\"channel\":\"market-eu\",\"data\":\"[");
    let mut i = 0u32;
    while s.len() < size {
        s.push_str(&format!(
            "{{\\\"sym\\\":\\\"S{}\\\",\\\"px\\\":{}.{}}},",
            i % 97,
            100 + i % 13,
            i % 100
        ));
        i += 1;
    }
    s.push_str("]\"}");
    s.into_bytes()
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("deflate");
    for size in [512usize, 4096, 65536] {
        let msg = event(size);
        let mut codec = Codec::new(0);
        let frame = codec.deflate(15, OpCode::Text, &msg).expect("compresses");
        let (_, at) = herald::proto::ws::decode_header(&frame)
            .expect("decodes")
            .expect("complete");
        let body = frame[at..].to_vec();
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_with_input(BenchmarkId::new("compress", size), &size, |b, _| {
            b.iter(|| codec.deflate(15, OpCode::Text, black_box(&msg)))
        });
        g.bench_with_input(BenchmarkId::new("inflate", size), &size, |b, _| {
            b.iter(|| codec.inflate(black_box(&body), 1 << 20))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_offers, bench_codec);
criterion_main!(benches);
