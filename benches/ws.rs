//! Criterion benches for the RFC 6455 codec: the per-frame costs on the read path (header
//! decode, unmask, reassembly) and on the broadcast path (encoding one frame to share).
use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald::proto::ws::{self, Assembler, Event, OpCode};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn bench_decode_header(c: &mut Criterion) {
    let small = ws::encode_masked(OpCode::Text, &[b'a'; 64], MASK, true);
    let medium = ws::encode_masked(OpCode::Text, &[b'a'; 4096], MASK, true);
    let mut g = c.benchmark_group("decode_header");
    g.bench_function("7-bit masked", |b| {
        b.iter(|| ws::decode_header(black_box(&small)))
    });
    g.bench_function("16-bit masked", |b| {
        b.iter(|| ws::decode_header(black_box(&medium)))
    });
    g.finish();
}

fn bench_apply_mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("apply_mask");
    for size in [64usize, 4096] {
        let mut data = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| ws::apply_mask(black_box(&mut data), black_box(MASK)))
        });
    }
    g.finish();
}

fn bench_encode_text(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_text");
    for size in [64usize, 4096] {
        let payload = vec![b'x'; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| ws::encode_text(black_box(&payload)))
        });
    }
    g.finish();
}

fn bench_assembler(c: &mut Criterion) {
    // 100 masked 64-byte text frames in one read buffer, as after one large read.
    let frame = ws::encode_masked(OpCode::Text, &[b'm'; 64], MASK, true);
    let stream: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 100)
        .collect();
    let mut g = c.benchmark_group("assembler");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100 x 64 B text frames", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&stream[..]);
            let mut asm = Assembler::new(1 << 20);
            let mut n = 0;
            while let Ok(Some(Event::Text(t))) = asm.next_event(&mut buf) {
                n += t.len();
            }
            assert_eq!(n, 6400);
            n
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_decode_header,
    bench_apply_mask,
    bench_encode_text,
    bench_assembler
);
criterion_main!(benches);
