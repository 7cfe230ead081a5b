//! One port of CPython's `int(str, base)`.
//!
//! Why: Channelstream reads `port` with `int()` (`utils.set_config_types`, `make_config`),
//! marshmallow's `fields.Integer` calls `int(value)` on request strings and `uuid.UUID(s)` ends
//! in `int(hex, 16)`. What those accept and reject decides whether Herald starts, which 422 a
//! client gets and which UUIDs are valid, so every caller goes through this single port.
//!
//! CPython (`PyLong_FromUnicodeObject`) first maps every non-ASCII whitespace character to a
//! space, then `PyLong_FromString` skips C `isspace` (space, `\t\n\v\f\r`) at both ends. So the
//! characters stripped are [`super::text::isspace`] *minus* the ASCII separators U+001C..U+001F
//! (which `str.isspace()` and `str.strip()` accept, but `int()` does not). Then: one optional
//! sign; for base 0 a `0x`/`0o`/`0b` prefix picks the base (otherwise base 10, where a leading
//! `0` allows only zeros); for base 16/8/2 the matching prefix may be given; one `_` may follow
//! the prefix, and single underscores may separate digits.
//!
//! Known gap: CPython also maps non-ASCII decimal digits (`"٣"`) to ASCII first; this port
//! accepts ASCII digits only.

use super::text;

/// The value of a successful `int()`: sign and magnitude. The magnitude saturates at
/// `u128::MAX`, far beyond anything the callers accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PyInt {
    /// Never set for zero (`int("-0")` is `0`).
    pub negative: bool,
    /// Absolute value, saturating at `u128::MAX`.
    pub magnitude: u128,
}

impl PyInt {
    /// The value as an `i128`, `None` when it does not fit.
    pub fn to_i128(self) -> Option<i128> {
        if self.negative {
            0i128.checked_sub_unsigned(self.magnitude)
        } else {
            i128::try_from(self.magnitude).ok()
        }
    }
}

/// What `int()` strips at both ends: C `isspace` for ASCII, `str.isspace()` above ASCII.
pub fn int_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
    } else {
        text::isspace(c)
    }
}

/// CPython `int(s, base)`; `None` where Python raises `ValueError` (including a base outside
/// 0 and 2..=36).
pub fn parse(s: &str, base: u32) -> Option<PyInt> {
    if base == 1 || base > 36 {
        return None;
    }
    let t = s.trim_matches(int_space);
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let b = t.as_bytes();
    let prefix_base = match (b.first(), b.get(1)) {
        (Some(b'0'), Some(b'x' | b'X')) => Some(16),
        (Some(b'0'), Some(b'o' | b'O')) => Some(8),
        (Some(b'0'), Some(b'b' | b'B')) => Some(2),
        _ => None,
    };
    let mut zeros_only = false;
    let base = match (base, prefix_base) {
        (0, Some(p)) => p,
        (0, None) => {
            // "Old" C-style octal (`010`) is an error; plain zeros are fine.
            zeros_only = b.first() == Some(&b'0');
            10
        }
        (b, _) => b,
    };
    let mut rest = t;
    if prefix_base == Some(base) {
        rest = rest.get(2..)?;
        // One underscore is allowed right after the prefix.
        rest = rest.strip_prefix('_').unwrap_or(rest);
    }
    let mut value = 0u128;
    let mut any_digit = false;
    let mut prev_underscore = false;
    for c in rest.chars() {
        if c == '_' {
            if prev_underscore || !any_digit {
                return None;
            }
            prev_underscore = true;
            continue;
        }
        let d = c.to_digit(base)?;
        value = value
            .saturating_mul(u128::from(base))
            .saturating_add(u128::from(d));
        any_digit = true;
        prev_underscore = false;
    }
    if !any_digit || prev_underscore || (zeros_only && value != 0) {
        return None;
    }
    Some(PyInt {
        negative: negative && value != 0,
        magnitude: value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values checked against CPython 3.11.7 (`int(s, base)`, `None` = ValueError).
    #[test]
    fn int_table_matches_cpython() {
        let cases: &[(&str, u32, Option<i128>)] = &[
            ("8000", 10, Some(8000)),
            (" 8001\n", 10, Some(8001)),
            ("+80", 10, Some(80)),
            ("-1", 10, Some(-1)),
            ("08000", 10, Some(8000)),
            ("8_000", 10, Some(8000)),
            ("8__000", 10, None),
            ("_8000", 10, None),
            ("8000_", 10, None),
            ("", 10, None),
            ("+", 10, None),
            ("-", 10, None),
            ("80.0", 10, None),
            ("0x50", 10, None),
            ("eighty", 10, None),
            (" 0x1_0 ", 0, Some(16)),
            ("0x_10", 0, Some(16)),
            ("0x_10", 16, Some(16)),
            ("0x__10", 16, None),
            ("0x10_", 16, None),
            ("0X1F", 16, Some(31)),
            ("0x", 16, None),
            ("0x", 0, None),
            ("0_0", 0, Some(0)),
            ("00", 0, Some(0)),
            ("010", 0, None),
            ("0b101", 0, Some(5)),
            ("0b101", 16, Some(45313)),
            ("0B1", 0, Some(1)),
            ("0o17", 0, Some(15)),
            ("0O17", 8, Some(15)),
            ("0o17", 16, None),
            ("0o_7", 8, Some(7)),
            ("1__0", 0, None),
            ("+-1", 10, None),
            ("- 1", 10, None),
            (" -0 ", 10, Some(0)),
            ("-0x10", 0, Some(-16)),
            ("+0x10", 16, Some(16)),
            ("_1", 10, None),
            ("ff", 16, Some(255)),
            ("FF", 16, Some(255)),
            ("fg", 16, None),
            ("z", 36, Some(35)),
            ("Z", 36, Some(35)),
            ("10", 2, Some(2)),
            ("12", 2, None),
            ("7", 8, Some(7)),
            ("8", 8, None),
            // Whitespace: U+001C..U+001F are `str.isspace()` but not stripped by `int()`.
            ("5\x1c", 10, None),
            ("\x1c5", 10, None),
            ("\x1f5", 10, None),
            ("5\u{85}", 10, Some(5)),
            ("\u{a0}5\u{3000}", 10, Some(5)),
            ("\u{2028}5\u{2029}", 10, Some(5)),
            ("\t\x0b\x0c\r\n5 ", 10, Some(5)),
            ("5\0", 10, None),
            ("1 0", 10, None),
            (
                "170141183460469231731687303715884105727",
                10,
                Some(i128::MAX),
            ),
            (
                "-170141183460469231731687303715884105728",
                10,
                Some(i128::MIN),
            ),
            ("5", 1, None),
            ("5", 37, None),
        ];
        for (input, base, want) in cases {
            let got = parse(input, *base).map(|v| v.to_i128().unwrap_or_default());
            assert_eq!(got, *want, "int({input:?}, {base})");
        }
    }

    #[test]
    fn magnitude_beyond_i128() {
        // Checked against CPython 3.11.7: both are 340282366920938463463374607431768211455.
        for (s, base) in [
            ("340282366920938463463374607431768211455", 10),
            ("ffffffffffffffffffffffffffffffff", 16),
        ] {
            let v = parse(s, base).unwrap();
            assert_eq!(v.magnitude, u128::MAX);
            assert_eq!(v.to_i128(), None);
        }
        assert_eq!(parse("-0", 10).map(|v| v.negative), Some(false));
    }
}
