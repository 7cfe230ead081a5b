//! Cost of checking `x-channelstream-secret` on every server-API request.
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use herald::auth::{ip_allowed, Signer};

const NOW: u64 = 1_700_000_000;

fn bench_auth(c: &mut Criterion) {
    let signer = Signer::new("secret");
    let valid = signer.sign("channelstream", NOW);
    let js = "channelstream.ZVPxAA=.UnambZyUHmgFmelQMUgVo1LT02M";
    let wrong_secret = Signer::new("other").sign("channelstream", NOW);
    let expired = signer.sign("channelstream", NOW - 61);

    c.bench_function("verify/valid", |b| {
        b.iter(|| signer.verify(black_box(valid.as_bytes()), NOW, Some(60)))
    });
    c.bench_function("verify/valid_js", |b| {
        b.iter(|| signer.verify(black_box(js.as_bytes()), NOW, Some(60)))
    });
    c.bench_function("verify/bad_signature", |b| {
        b.iter(|| signer.verify(black_box(wrong_secret.as_bytes()), NOW, Some(60)))
    });
    c.bench_function("verify/expired", |b| {
        b.iter(|| signer.verify(black_box(expired.as_bytes()), NOW, Some(60)))
    });
    c.bench_function("verify/malformed", |b| {
        b.iter(|| signer.verify(black_box(b"garbage"), NOW, Some(60)))
    });
    c.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box("channelstream"), NOW))
    });
    c.bench_function("signer_new", |b| {
        b.iter(|| Signer::new(black_box("secret")))
    });

    let allow = vec!["10.0.0.1".to_string(), "127.0.0.1".to_string()];
    let v4: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap_or(v4);
    c.bench_function("ip_allowed/v4", |b| {
        b.iter(|| ip_allowed(black_box(&allow), black_box(&v4)))
    });
    c.bench_function("ip_allowed/v4_mapped", |b| {
        b.iter(|| ip_allowed(black_box(&allow), black_box(&mapped)))
    });
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
