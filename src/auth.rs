//! Server-API authentication: itsdangerous 1.1.0 `TimestampSigner` tokens and the IP allow-list.
//!
//! Channelstream's backends (Python `itsdangerous`, the JS `ChannelStreamSigner`) sign a value
//! with the shared `secret` and send the token in `x-channelstream-secret` (or `?secret=`). We
//! must accept exactly what Channelstream 0.7.1 accepts, so this module copies the verifier of
//! itsdangerous 1.1.0 step by step (spec §3.2), including its quirks:
//!
//! * the HMAC is computed over the exact received bytes before the last dot, so the JS signer's
//!   stray `=` in the timestamp part is part of the signed data;
//! * signatures and timestamps are decoded leniently (both base64 alphabets, any trailing `=`),
//!   because the JS signer only replaces the *first* `+`, `/` and `=`;
//! * `max_age` is inclusive (60 s old passes, 61 s does not) and future timestamps pass.
//!
//! Everything here is pure (no clock, no I/O): the caller passes `now`. The derived key never
//! leaves the `Signer`, whose `Debug` is redacted.

/// The signature age `validate_requests` enforces (seconds; inclusive, as itsdangerous).
pub const SIGNATURE_MAX_AGE: u64 = 60;

use std::net::IpAddr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

type HmacSha1 = Hmac<Sha1>;

/// itsdangerous `Signer` defaults: `salt`, and the class-name suffix of `django-concat`.
const SALT: &[u8] = b"itsdangerous.Signer";
const KEY_SUFFIX: &[u8] = b"signer";
const SEP: u8 = b'.';

/// Length of an HMAC-SHA1 tag; anything else can never match.
const TAG_LEN: usize = 20;
/// itsdangerous packs timestamps with `struct.pack(">Q")`, so more than 8 bytes is malformed.
const MAX_TS_BYTES: usize = 8;
/// Decode buffers are on the stack; longer parts cannot be valid (a 20-byte tag is 27 chars), so
/// they are refused before decoding instead of allocating for an attacker.
const MAX_SIG_CHARS: usize = 64;
const MAX_TS_CHARS: usize = 16;

/// Standard alphabet after `-_` → `+/` translation; trailing bits are ignored as Python's
/// non-strict `a2b_base64` does, and padding has been stripped before decoding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token was refused (the server answers 401 `{"request": "Bad Signature"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    /// Not `value.timestamp.signature` with base64 parts.
    #[error("malformed token")]
    Malformed,
    /// The HMAC does not match the one the secret gives.
    #[error("signature does not match")]
    Mismatch,
    /// The token's timestamp is older than the allowed `max_age`.
    #[error("signature expired")]
    Expired,
}

/// itsdangerous `django-concat` key derivation: `SHA1(salt + b"signer" + secret)`.
pub fn derive_key(secret: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(SALT);
    h.update(KEY_SUFFIX);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Signs and verifies with the derived key of one secret.
#[derive(Clone)]
pub struct Signer {
    /// HMAC already keyed with the derived key: cloning it per token skips re-hashing the key
    /// pads on every request.
    mac: HmacSha1,
}

impl Signer {
    /// A signer for this secret (the key is derived once, here).
    pub fn new(secret: &str) -> Self {
        // HMAC zero-pads keys shorter than the SHA-1 block, so the 20-byte key padded to a
        // full block is the same key, and the infallible constructor applies.
        let mut block = hmac::digest::Key::<HmacSha1>::default();
        for (dst, src) in block.iter_mut().zip(derive_key(secret)) {
            *dst = src;
        }
        Signer {
            mac: <HmacSha1 as hmac::digest::KeyInit>::new(&block),
        }
    }

    /// `TimestampSigner(secret).sign(value)` at unix time `ts`.
    pub fn sign(&self, value: &str, ts: u64) -> String {
        let be = ts.to_be_bytes();
        // int_to_bytes: big-endian with leading zero bytes stripped (ts = 0 gives "").
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        let ts_bytes = be.get(first..).unwrap_or_default();
        let mut token = String::with_capacity(value.len() + 40);
        token.push_str(value);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(ts_bytes, &mut token);
        let tag = self.tag(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
        token
    }

    /// Verify a token received in `x-channelstream-secret` (or `?secret=`).
    ///
    /// `token` must be the exact received bytes (header value as sent, query value after
    /// percent-decoding). `max_age` is `Some(60)` when `validate_requests` is on.
    ///
    /// One known difference: under WSGI, Channelstream sees a header as latin-1 text and HMACs
    /// its UTF-8 re-encoding, so a header token whose *value* has non-ASCII bytes never verifies
    /// there; here it does if its HMAC is right. Every real signer sends ASCII values.
    pub fn verify(&self, token: &[u8], now: u64, max_age: Option<u64>) -> Result<(), BadSignature> {
        let (signed, sig) = rsplit_dot(token).ok_or(BadSignature::Malformed)?;

        // Signer.unsign: decode failure and mismatch are both "bad signature".
        let mut sig_buf = [0u8; MAX_SIG_CHARS];
        let decoded = lenient_b64_decode(sig, &mut sig_buf).ok_or(BadSignature::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(signed);
        // Constant time, and a tag of the wrong length is a mismatch, not a shorter compare.
        mac.verify_slice(decoded)
            .map_err(|_| BadSignature::Mismatch)?;

        // TimestampSigner.unsign: only now is the inner structure looked at.
        let (_value, ts_part) = rsplit_dot(signed).ok_or(BadSignature::Malformed)?;
        let ts = decode_timestamp(ts_part).ok_or(BadSignature::Malformed)?;
        if let Some(max_age) = max_age {
            // itsdangerous 1.1.0 has no check for future timestamps: a negative age passes.
            if let Some(age) = now.checked_sub(ts) {
                if age > max_age {
                    return Err(BadSignature::Expired);
                }
            }
        }
        Ok(())
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// `bytes.rsplit(b".", 1)`: split at the last dot, `None` if there is none.
fn rsplit_dot(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = b.iter().rposition(|&c| c == SEP)?;
    Some((b.get(..at)?, b.get(at + 1..)?))
}

/// Python `urlsafe_b64decode(s + padding)` restricted to inputs real clients produce: both
/// alphabets, any number of trailing `=`; anything else (inner `=`, whitespace, `!`) fails.
/// Decodes into `out` (which also bounds the accepted input length) and returns the bytes.
fn lenient_b64_decode<'a, const N: usize>(s: &[u8], out: &'a mut [u8; N]) -> Option<&'a [u8]> {
    let end = s.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let body = s.get(..end)?;
    let mut tr = [0u8; N];
    let tr = tr.get_mut(..body.len())?;
    for (dst, &c) in tr.iter_mut().zip(body) {
        *dst = match c {
            b'-' => b'+',
            b'_' => b'/',
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => c,
            _ => return None,
        };
    }
    let n = LENIENT.decode_slice(&*tr, &mut out[..]).ok()?;
    out.get(..n)
}

/// `bytes_to_int(base64_decode(ts))`: big-endian, at most 8 bytes, empty → 0.
fn decode_timestamp(part: &[u8]) -> Option<u64> {
    let mut buf = [0u8; MAX_TS_CHARS];
    let bytes = lenient_b64_decode(part, &mut buf)?;
    if bytes.len() > MAX_TS_BYTES {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// `allow_posting_from`: `0.0.0.0` in the list allows every address; otherwise exact match
/// on the textual peer address.
///
/// Channelstream compares `REMOTE_ADDR` as a string, so `127.000.000.001` in the list matches
/// nothing, as there. An IPv4-mapped IPv6 peer (`::ffff:127.0.0.1`, seen on dual-stack
/// listeners) is also tried as its IPv4 form, which is what a Python IPv4 socket would report.
pub fn ip_allowed(allow: &[String], peer: &IpAddr) -> bool {
    if allow.iter().any(|a| a == "0.0.0.0") {
        return true;
    }
    let mut buf = IpText::new();
    let mut listed = |ip: &IpAddr| {
        let text = buf.format(ip);
        allow.iter().any(|a| a == text)
    };
    // A mapped peer is most likely listed in its IPv4 form, which is also the cheap one to
    // format, so it is tried first.
    let mapped = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    mapped.is_some_and(|v4| listed(&v4)) || listed(peer)
}

/// Stack buffer for an address's text (the longest IPv6 form is 45 bytes), so the allow-list
/// check on every API request does not allocate.
struct IpText {
    buf: [u8; 64],
}

impl IpText {
    fn new() -> Self {
        IpText { buf: [0; 64] }
    }

    fn format(&mut self, ip: &IpAddr) -> &str {
        use std::io::Write;
        if let IpAddr::V4(v4) = ip {
            // The common case, done by hand: `Display` through `io::Write` costs ~10x more.
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    n = self.put(n, b'.');
                }
                if octet >= 100 {
                    n = self.put(n, b'0' + octet / 100);
                }
                if octet >= 10 {
                    n = self.put(n, b'0' + octet / 10 % 10);
                }
                n = self.put(n, b'0' + octet % 10);
            }
            return self.text(n);
        }
        let mut cur = std::io::Cursor::new(&mut self.buf[..]);
        // Cannot overflow 64 bytes; on failure the empty string matches no list entry.
        let n = match write!(cur, "{ip}") {
            Ok(()) => usize::try_from(cur.position()).unwrap_or(0),
            Err(_) => 0,
        };
        self.text(n)
    }

    /// Write one byte at `n` (at most 15 for IPv4, far below the buffer size).
    fn put(&mut self, n: usize, b: u8) -> usize {
        if let Some(slot) = self.buf.get_mut(n) {
            *slot = b;
        }
        n + 1
    }

    fn text(&self, n: usize) -> &str {
        self.buf
            .get(..n)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §3.2 test vector: ts = 1700000000, secret "secret".
    const TS: u64 = 1_700_000_000;
    const PY_TOKEN: &str = "channelstream.ZVPxAA.UB9ITnnv9UITu0ka92WJCn1VFsQ";
    const JS_TOKEN: &str = "channelstream.ZVPxAA=.UnambZyUHmgFmelQMUgVo1LT02M";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn signer() -> Signer {
        Signer::new("secret")
    }

    #[test]
    fn derive_key_vector() {
        assert_eq!(
            hex(&derive_key("secret")),
            "3a1c28f7aad5a02fe672d24f1003fb52a7312ed7"
        );
    }

    #[test]
    fn python_sign_vector() {
        assert_eq!(signer().sign("channelstream", TS), PY_TOKEN);
        assert_eq!(signer().verify(PY_TOKEN.as_bytes(), TS, Some(60)), Ok(()));
    }

    /// The last of 27 signature characters carries 2 padding bits; Python's decoder ignores
    /// them (`...VFsQ` and `...VFsR` decode alike), so both verify there and here.
    #[test]
    fn signature_trailing_bits_ignored() {
        let alt = PY_TOKEN.replace("VFsQ", "VFsR");
        assert_eq!(signer().verify(alt.as_bytes(), TS, Some(60)), Ok(()));
        let wrong = PY_TOKEN.replace("VFsQ", "VFsU");
        assert_eq!(
            signer().verify(wrong.as_bytes(), TS, Some(60)),
            Err(BadSignature::Mismatch)
        );
    }

    #[test]
    fn js_token_vector() {
        assert_eq!(signer().verify(JS_TOKEN.as_bytes(), TS, Some(60)), Ok(()));
        // The '=' is part of the signed data: removing it breaks the HMAC.
        let stripped = JS_TOKEN.replacen("ZVPxAA=", "ZVPxAA", 1);
        assert_eq!(
            signer().verify(stripped.as_bytes(), TS, Some(60)),
            Err(BadSignature::Mismatch)
        );
    }

    #[test]
    fn round_trip_fresh() {
        let s = Signer::new("s3cr3t with spaces ✓");
        for value in ["", "channelstream", "/connect", "a.b.c", "ünïcode"] {
            for ts in [0, 1, 255, 256, TS, u64::from(u32::MAX) + 1, u64::MAX] {
                let t = s.sign(value, ts);
                assert!(t.starts_with(value), "{t}");
                assert_eq!(s.verify(t.as_bytes(), ts, Some(60)), Ok(()), "{t}");
                assert_eq!(s.verify(t.as_bytes(), ts, None), Ok(()), "{t}");
            }
        }
    }

    #[test]
    fn sign_zero_timestamp_has_empty_part() {
        let t = signer().sign("v", 0);
        assert!(t.starts_with("v.."), "{t}");
    }

    /// Token as the JS signer would produce it: `btoa` output with only the FIRST `=`, `+`, `/`
    /// replaced, HMAC over that exact text.
    fn js_style(value: &str, ts: u64) -> String {
        use base64::engine::general_purpose::STANDARD;
        let be = ts.to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(8);
        let js_replace = |s: String| {
            s.replacen('=', "", 1)
                .replacen('+', "-", 1)
                .replacen('/', "_", 1)
        };
        let ts_b64 = js_replace(STANDARD.encode(&be[first..]));
        let signed = format!("{value}.{ts_b64}");
        let mut mac = HmacSha1::new_from_slice(&derive_key("secret")).unwrap();
        mac.update(signed.as_bytes());
        let sig = js_replace(STANDARD.encode(mac.finalize().into_bytes()));
        format!("{signed}.{sig}")
    }

    /// Every row of the §3.2 boundary table (secret `secret`, validate_requests = true).
    #[test]
    fn boundary_table() {
        let s = signer();
        let now = TS;
        let ok = |t: &str| s.verify(t.as_bytes(), now, Some(60));
        let fresh = s.sign("channelstream", now);
        let sig = fresh.rsplit('.').next().unwrap().to_string();
        let signed = &fresh[..fresh.len() - sig.len() - 1];

        // fresh token
        assert_eq!(ok(&fresh), Ok(()));
        // exactly 60 s old: accepted (age > 60 is the test)
        assert_eq!(ok(&s.sign("channelstream", now - 60)), Ok(()));
        // 61 s and 90 s old
        assert_eq!(
            ok(&s.sign("channelstream", now - 61)),
            Err(BadSignature::Expired)
        );
        assert_eq!(
            ok(&s.sign("channelstream", now - 90)),
            Err(BadSignature::Expired)
        );
        // +100000 s in the future
        assert_eq!(ok(&s.sign("channelstream", now + 100_000)), Ok(()));
        // value with dots, empty value
        assert_eq!(ok(&s.sign("anything.with.dots", now)), Ok(()));
        let empty = s.sign("", now);
        assert!(empty.starts_with('.'));
        assert_eq!(ok(&empty), Ok(()));
        // JS-style token, timestamp keeps one '='
        assert_eq!(ok(JS_TOKEN), Ok(()));
        // JS-style tokens whose signature keeps '/' or '+': search a few timestamps for one.
        let mut slash = 0;
        let mut plus = 0;
        for ts in now - 50..=now {
            let t = js_style("channelstream", ts);
            let sig = t.rsplit('.').next().unwrap();
            slash += usize::from(sig.contains('/'));
            plus += usize::from(sig.contains('+'));
            assert_eq!(ok(&t), Ok(()), "{t}");
        }
        assert!(slash > 0 && plus > 0, "no JS token with '/' or '+' found");
        // signature with '=' or '==' appended
        assert_eq!(ok(&format!("{fresh}=")), Ok(()));
        assert_eq!(ok(&format!("{fresh}==")), Ok(()));
        assert_eq!(ok(&format!("{fresh}===")), Ok(()));
        // signature in the standard '+/' alphabet
        let std_sig = sig.replace('-', "+").replace('_', "/");
        assert_eq!(ok(&format!("{signed}.{std_sig}")), Ok(()));
        // '!' inserted, truncated by one char
        let bang = format!("{signed}.{}!{}", &sig[..5], &sig[5..]);
        assert_eq!(ok(&bang), Err(BadSignature::Malformed));
        let short = format!("{signed}.{}", &sig[..sig.len() - 1]);
        assert!(ok(&short).is_err());
        // garbage (no dot)
        assert_eq!(ok("garbage"), Err(BadSignature::Malformed));
        // channelstream.<sig> (no timestamp): HMAC over "channelstream" is valid, no ts part.
        let no_ts = {
            let mut mac = HmacSha1::new_from_slice(&derive_key("secret")).unwrap();
            mac.update(b"channelstream");
            format!(
                "channelstream.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        assert_eq!(ok(&no_ts), Err(BadSignature::Malformed));
        // 9-byte timestamp, correctly signed
        let nine = {
            let signed = format!("channelstream.{}", URL_SAFE_NO_PAD.encode([1u8; 9]));
            let mut mac = HmacSha1::new_from_slice(&derive_key("secret")).unwrap();
            mac.update(signed.as_bytes());
            format!(
                "{signed}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        assert_eq!(ok(&nine), Err(BadSignature::Malformed));
        // empty timestamp part: ts = 0 → expired with max_age, accepted without
        let ts0 = s.sign("channelstream", 0);
        assert!(ts0.contains(".."));
        assert_eq!(ok(&ts0), Err(BadSignature::Expired));
        assert_eq!(s.verify(ts0.as_bytes(), now, None), Ok(()));
        // wrong secret
        let other = Signer::new("not-the-secret").sign("channelstream", now);
        assert_eq!(ok(&other), Err(BadSignature::Mismatch));
        // validate_requests = false: 100000 s old accepted, HMAC still checked
        let old = s.sign("channelstream", now - 100_000);
        assert_eq!(s.verify(old.as_bytes(), now, None), Ok(()));
        assert_eq!(
            s.verify(other.as_bytes(), now, None),
            Err(BadSignature::Mismatch)
        );
    }

    #[test]
    fn verify_table_malformed_inputs() {
        let s = signer();
        let cases: &[&[u8]] = &[
            b"",
            b".",
            b"..",
            b"a.b.",
            b"a.b.=",
            b"a.b.====",
            b"a.b.A",
            b"a.b.A===",
            b"a.b.AA=A",
            b"a.b. AAAA",
            b"a.b.AA\nAA",
            b"\xff\xfe.\x00.\x80",
            &[b'.'; 200],
        ];
        for c in cases {
            assert!(s.verify(c, TS, Some(60)).is_err(), "{c:?}");
            assert!(s.verify(c, TS, None).is_err(), "{c:?}");
        }
        // An over-long signature part is refused without decoding.
        let long = format!("a.b.{}", "A".repeat(10_000));
        assert_eq!(
            s.verify(long.as_bytes(), TS, None),
            Err(BadSignature::Malformed)
        );
    }

    #[test]
    fn lenient_decode_table() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("ZVPxAA", Some(&[0x65, 0x53, 0xf1, 0x00])),
            ("ZVPxAA=", Some(&[0x65, 0x53, 0xf1, 0x00])),
            ("ZVPxAA==", Some(&[0x65, 0x53, 0xf1, 0x00])),
            ("ZVPxAA=====", Some(&[0x65, 0x53, 0xf1, 0x00])),
            ("-_-_", Some(&[0xfb, 0xff, 0xbf])),
            ("+/+/", Some(&[0xfb, 0xff, 0xbf])),
            ("-/+_", Some(&[0xfb, 0xff, 0xbf])),
            ("QR", Some(b"A")), // non-zero trailing bits are ignored, as in Python
            ("A", None),
            ("AAAAA", None),
            ("AA=A", None),
            ("A!AA", None),
            ("AA A", None),
        ];
        for (input, want) in cases {
            let mut buf = [0u8; 16];
            assert_eq!(
                lenient_b64_decode(input.as_bytes(), &mut buf),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn timestamp_decode_table() {
        assert_eq!(decode_timestamp(b""), Some(0));
        assert_eq!(decode_timestamp(b"ZVPxAA"), Some(TS));
        assert_eq!(decode_timestamp(b"AAAAAGVT8QA"), Some(TS)); // 8 bytes, leading zeros
        assert_eq!(decode_timestamp(b"__________8"), Some(u64::MAX));
        assert_eq!(decode_timestamp(b"AAAAAAAAAAAA"), None); // 9 bytes
        assert_eq!(decode_timestamp(b"A"), None);
    }

    #[test]
    fn debug_is_redacted() {
        let s = Signer::new("hunter2");
        let d = format!("{s:?}");
        assert_eq!(d, "Signer(<redacted>)");
        assert!(!d.contains("hunter2"));
    }

    #[test]
    fn ipv4_text_matches_display() {
        let mut buf = IpText::new();
        for a in [0u8, 1, 9, 10, 99, 100, 199, 200, 255] {
            for b in [0u8, 7, 42, 255] {
                let ip = IpAddr::from([a, b, 255 - b, a]);
                assert_eq!(buf.format(&ip), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::ffff:1.2.3.4".parse().unwrap();
        assert_eq!(buf.format(&v6), v6.to_string());
    }

    #[test]
    fn ip_allowed_table() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&[&str], &str, bool)] = &[
            (&["127.0.0.1"], "127.0.0.1", true),
            (&["127.0.0.1"], "127.0.0.2", false),
            (&["127.0.0.5", "0.0.0.0"], "10.1.2.3", true),
            (&["0.0.0.0"], "::1", true),
            (&[], "127.0.0.1", false),
            (&["127.0.0.1"], "::ffff:127.0.0.1", true),
            (&["::ffff:127.0.0.1"], "::ffff:127.0.0.1", true),
            (&["127.0.0.1"], "::1", false),
            (&["::1"], "::1", true),
            (&["127.000.000.001"], "127.0.0.1", false), // textual, as in Python
            (&[" 127.0.0.1"], "127.0.0.1", false),
            (&["2001:db8::1"], "2001:db8::1", true),
            (&["2001:db8::1"], "2001:db8::2", false),
            (
                &["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                true,
            ),
        ];
        for (allow, peer, want) in cases {
            assert_eq!(
                ip_allowed(&list(allow), &ip(peer)),
                *want,
                "{allow:?} {peer}"
            );
        }
    }
}
