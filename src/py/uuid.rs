//! Python's `uuid.UUID(str)` constructor.
//!
//! Why: marshmallow's `fields.UUID` (Channelstream's `conn_id`) accepts whatever
//! `uuid.UUID(s)` accepts: braces, `urn:uuid:` prefixes, hyphens anywhere, surrounding
//! whitespace and a `0x` inside the 32 characters (they go through `int(_, 16)`). A client
//! that gets a connection accepted by the Python server must get it accepted by Herald.

use super::int::{self, PyInt};
use uuid::Uuid;

/// Python `uuid.UUID(s)`: strips every `urn:` and `uuid:`, braces at both ends and every
/// hyphen, then needs 32 characters that `int(_, 16)` accepts.
pub fn parse(s: &str) -> Option<Uuid> {
    // Fast path: the canonical 8-4-4-4-12 form, where Python and `uuid` agree exactly.
    let b = s.as_bytes();
    if b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    {
        return Uuid::try_parse(s).ok();
    }
    let h = s.replace("urn:", "").replace("uuid:", "");
    let h: String = h
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .collect();
    if h.chars().count() != 32 {
        return None;
    }
    match int::parse(&h, 16)? {
        PyInt {
            negative: false,
            magnitude,
        } => Some(Uuid::from_u128(magnitude)),
        PyInt { negative: true, .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_table() {
        let t = |s: &str| parse(s).map(|u| u.hyphenated().to_string());
        let canon = Some("12345678-1234-5678-1234-567812345678".to_string());
        for s in [
            "12345678-1234-5678-1234-567812345678",
            "12345678-1234-5678-1234-567812345678"
                .to_uppercase()
                .as_str(),
            "12345678123456781234567812345678",
            "{12345678-1234-5678-1234-567812345678}",
            "{{12345678123456781234567812345678}",
            "urn:uuid:12345678-1234-5678-1234-567812345678",
            "uuid:12345678-1234-5678-1234-567812345678",
            "1-2-3-4-5-6-7-8-1234-5678-1234-567812345678",
        ] {
            assert_eq!(t(s), canon, "{s}");
        }
        assert_eq!(
            t("0x345678123456781234567812345678").as_deref(),
            Some("00345678-1234-5678-1234-567812345678")
        );
        for s in [
            "",
            "not-a-uuid",
            "1234567812345678123456781234567",
            "123456781234567812345678123456789",
            "12345678-1234-5678-1234-56781234567g",
            "_2345678123456781234567812345678",
            "1234567812345678123456781234567_",
            "(12345678123456781234567812345678)",
        ] {
            assert_eq!(t(s), None, "{s:?}");
        }
    }
}
