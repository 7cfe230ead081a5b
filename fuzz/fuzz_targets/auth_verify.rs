//! `Signer::verify` on arbitrary bytes must never panic, and whatever `sign` produces for an
//! arbitrary value and timestamp must verify.
#![no_main]
use std::sync::OnceLock;

use herald::auth::{ip_allowed, Signer};
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| Signer::new("secret"))
}

fuzz_target!(|data: &[u8]| {
    let s = signer();
    // The first 8 bytes (if any) pick the clock, so expiry arithmetic sees extreme values too.
    let now = data
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(1_700_000_000, u64::from_le_bytes);
    let _ = s.verify(data, now, Some(60));
    let _ = s.verify(data, now, None);
    let _ = s.verify(data, 0, Some(0));
    let _ = s.verify(data, u64::MAX, Some(u64::MAX));

    // Round trip: any UTF-8 value, at any timestamp, verifies at the time it was signed.
    let value = String::from_utf8_lossy(data);
    let token = s.sign(&value, now);
    assert_eq!(s.verify(token.as_bytes(), now, Some(60)), Ok(()));
    assert_eq!(s.verify(token.as_bytes(), now, None), Ok(()));
    // Changing the first signature character must break it. (Not the last one: its two low
    // bits are padding, ignored by Python's decoder and by ours.)
    let mut bad = token.into_bytes();
    let first_sig = bad.iter().rposition(|&c| c == b'.').map(|i| i + 1);
    if let Some(c) = first_sig.and_then(|i| bad.get_mut(i)) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    assert!(s.verify(&bad, now, None).is_err());

    let allow = vec![value.into_owned()];
    let _ = ip_allowed(&allow, &std::net::Ipv4Addr::LOCALHOST.into());
});
