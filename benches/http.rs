//! Criterion benches for the HTTP layer: head parsing of the two requests the server sees most
//! (websocket upgrade, signed server-API POST), chunked decoding, whole-request framing
//! (`parse_request`: head + body) and response encoding.
use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use herald::proto::http::{
    decode_chunked, parse_head, parse_request, write_response, Head, ParseLimits, RequestStatus,
};

/// A browser's websocket upgrade (Firefox-like, trimmed to the usual ~300 bytes).
const WS_GET: &[u8] = b"GET /ws?conn_id=0b5b0bd4-5a1c-4b9c-8f0e-6a3f4c2f9e11 HTTP/1.1\r\n\
Host: push.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Sec-WebSocket-Version: 13\r\n\
Origin: https://app.example.com\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Connection: keep-alive, Upgrade\r\n\
Upgrade: websocket\r\n\r\n";

/// A backend's `POST /message` as python-requests sends it, with an itsdangerous signature.
const POST_HEAD: &[u8] = b"POST /message HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
User-Agent: python-requests/2.31.0\r\n\
Accept-Encoding: gzip, deflate\r\n\
Accept: */*\r\n\
Connection: keep-alive\r\n\
X-Channelstream-Secret: Y2hhbm5lbHN0cmVhbQ.ZnKx3w.3Yv0h1d2X9m6c8kq0eQ2bQx3J8s\r\n\
Content-Type: application/json\r\n\
Content-Length: 187\r\n\r\n";

fn bench_parse_head(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut group = c.benchmark_group("parse_head");
    for (name, buf) in [("ws_upgrade", WS_GET), ("signed_post", POST_HEAD)] {
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(format!("{name}_{}B", buf.len()), |b| {
            b.iter(|| parse_head(black_box(buf), &limits))
        });
        // Baseline: httparse alone, to show what our framing checks and spans add.
        group.bench_function(format!("{name}_httparse_only"), |b| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut req = httparse::Request::new(&mut headers);
                black_box(req.parse(black_box(buf)).is_ok())
            })
        });
    }
    group.finish();
}

fn bench_decode_chunked(c: &mut Criterion) {
    // 4 KiB of JSON-ish payload in four 1 KiB chunks, with a trailing request behind it.
    let mut buf = Vec::new();
    for i in 0..4u8 {
        buf.extend_from_slice(b"400\r\n");
        buf.extend(std::iter::repeat_n(b'a' + i, 1024));
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let mut group = c.benchmark_group("decode_chunked");
    group.throughput(Throughput::Bytes(4096));
    group.bench_function("4KiB_in_1KiB_chunks", |b| {
        b.iter(|| decode_chunked(black_box(&buf), 1 << 20))
    });
    group.finish();
}

fn bench_parse_request(c: &mut Criterion) {
    let limits = ParseLimits::default();
    // The signed POST with its 187-byte JSON body (zero-copy), and the same body chunked.
    let body: Vec<u8> = std::iter::repeat_n(b'j', 187).collect();
    let mut with_length = POST_HEAD.to_vec();
    with_length.extend_from_slice(&body);
    let mut chunked = POST_HEAD
        .strip_suffix(b"Content-Length: 187\r\n\r\n")
        .unwrap_or(POST_HEAD)
        .to_vec();
    chunked.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\nbb\r\n");
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut group = c.benchmark_group("parse_request");
    for (name, buf) in [
        ("ws_upgrade", WS_GET.to_vec()),
        ("signed_post_length", with_length),
        ("signed_post_chunked", chunked),
    ] {
        assert!(matches!(
            parse_request(&buf, &limits, false),
            Ok(RequestStatus::Complete(_))
        ));
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(format!("{name}_{}B", buf.len()), |b| {
            b.iter(|| parse_request(black_box(&buf), &limits, false))
        });
    }
    // The call a slow client costs: head complete, body not yet (re-parsed on every read).
    group.bench_function("signed_post_awaiting_body", |b| {
        b.iter(|| parse_request(black_box(POST_HEAD), &limits, true))
    });
    group.finish();
}

fn bench_write_response(c: &mut Criterion) {
    let body = b"{\n    \"conn_id\": \"0b5b0bd4-5a1c-4b9c-8f0e-6a3f4c2f9e11\",\n    \"state\": {},\n    \"username\": \"alice\",\n    \"channels\": [\n        \"room\"\n    ]\n}";
    let headers: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/json"),
        ("Date", b"Sun, 22 Nov 2026 14:06:16 GMT"),
        ("Access-Control-Allow-Origin", b"*"),
    ];
    let mut out = BytesMut::with_capacity(4096);
    c.bench_function("write_response/small_json", |b| {
        b.iter(|| {
            out.clear();
            write_response(
                &mut out,
                &Head::new(200, black_box(headers)),
                black_box(body),
                true,
                false,
            );
            black_box(out.len())
        })
    });
}

criterion_group!(
    benches,
    bench_parse_head,
    bench_decode_chunked,
    bench_parse_request,
    bench_write_response
);
criterion_main!(benches);
