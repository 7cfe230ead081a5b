//! Query strings and percent-decoding, for the router and the API (`conn_id=`, form bodies).
//!
//! Why a separate module: these follow Python's `urllib.parse` (what Channelstream/WebOb does),
//! not the URL standard, and are tested against that behaviour on their own.
//!
//! Invariants: decoding never fails (invalid escapes stay literal, invalid UTF-8 becomes U+FFFD)
//! and borrows the input whenever there is nothing to decode.

use std::borrow::Cow;

/// First value of `name` in a query string / form body, percent- and `+`-decoded.
///
/// Follows Python's `parse_qsl(keep_blank_values=True)`, which Channelstream (WebOb) uses:
/// pairs split on `&`, a key without `=` has the empty value, keys are decoded before they are
/// compared, invalid `%` escapes stay as they are, invalid UTF-8 becomes U+FFFD.
pub fn query_param<'a>(query: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            // Split at the first `=` only: values may contain `=` (base64 signatures do).
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or(&[]),
                    pair.get(eq + 1..).unwrap_or(&[]),
                ),
                None => (pair, &[][..]),
            };
            (form_decode(key).as_ref() == name.as_bytes()).then(|| utf8_lossy(form_decode(value)))
        })
}

/// Percent-decode `input` (no `+` handling, as for a path). Borrowed when nothing to decode.
pub fn percent_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

/// application/x-www-form-urlencoded decoding: `+` is a space, then percent-decoding.
fn form_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, true)
}

fn decode(input: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let special = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    let Some(first) = input.iter().position(special) else {
        return Cow::Borrowed(input);
    };
    // Decoding only shrinks, so one allocation of the input's size is enough.
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(input.get(..first).unwrap_or(&[]));
    let mut i = first;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&h| hex_value(h));
                let lo = input.get(i + 2).and_then(|&l| hex_value(l));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                // Like Python's `unquote`: a `%` without two hex digits is kept literally.
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// UTF-8 with U+FFFD for invalid sequences, keeping a borrow whenever possible.
fn utf8_lossy(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_table() {
        // (query, name, expected)
        let table: [(&[u8], &str, Option<&str>); 18] = [
            (b"conn_id=abc", "conn_id", Some("abc")),
            (b"a=1&conn_id=abc&b=2", "conn_id", Some("abc")),
            (b"conn_id=1&conn_id=2", "conn_id", Some("1")),
            (b"conn_idx=1", "conn_id", None),
            (b"xconn_id=1", "conn_id", None),
            (b"", "a", None),
            (b"a", "a", Some("")),
            (b"a=", "a", Some("")),
            (b"&&a=1&", "a", Some("1")),
            (b"a=x=y", "a", Some("x=y")),
            (b"a=hello+world", "a", Some("hello world")),
            (b"a=%41%62%2b", "a", Some("Ab+")),
            (b"a=%zz%4", "a", Some("%zz%4")),
            (b"a=100%", "a", Some("100%")),
            (b"a=%E2%98%83", "a", Some("\u{2603}")),
            (b"a=%FF", "a", Some("\u{FFFD}")),
            (b"conn%5Fid=1", "conn_id", Some("1")),
            (b"my+key=v", "my key", Some("v")),
        ];
        for (query, name, expected) in table {
            let got = query_param(query, name);
            assert_eq!(
                got.as_deref(),
                expected,
                "{:?} {name}",
                String::from_utf8_lossy(query)
            );
        }
    }

    #[test]
    fn query_param_borrows_when_possible() {
        assert!(matches!(
            query_param(b"a=plain", "a"),
            Some(Cow::Borrowed("plain"))
        ));
        assert!(matches!(query_param(b"a=x+y", "a"), Some(Cow::Owned(_))));
        // Invalid UTF-8 without escapes is still borrowed-then-replaced, never a panic.
        assert_eq!(query_param(b"a=\xff", "a").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn percent_decode_keeps_plus() {
        assert_eq!(
            percent_decode(b"/a%20b+c"),
            Cow::<[u8]>::Owned(b"/a b+c".to_vec())
        );
        assert!(matches!(
            percent_decode(b"/plain"),
            Cow::Borrowed(b"/plain")
        ));
    }
}
