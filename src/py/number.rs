//! Python's number semantics for what `json.loads` makes of a JSON number: `int` or
//! `float` classification, `int.__repr__` and `float.__repr__`.
//!
//! Why: Channelstream is a Python server, so a number in a request is a Python `int` (exact,
//! unbounded) when its text has no `.`, `e` or `E`, and a Python `float` otherwise; marshmallow
//! coerces it with Python's rules and every response prints it with Python's `repr`. Herald
//! must answer byte for byte the same (the JSON encoder in [`super::json`] and the Jinja
//! rendering of `make-config` both print numbers through this file).

use serde_json::Number;
use std::fmt::Write as _;

/// A JSON number as Python's `json.loads` sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PyNum {
    /// An `int`: sign and magnitude (saturating; only small values matter to us).
    Int {
        /// The value is below zero (never set for `-0`).
        negative: bool,
        /// Absolute value, saturating at `u128::MAX`.
        magnitude: u128,
    },
    /// A `float` (`1e999` is `inf`, as in Python).
    Float(f64),
}

/// Whether `json.loads` makes a `float` of this number text (it has `.`, `e` or `E`).
pub fn is_float_text(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// Classify a JSON number as Python's `json.loads` would.
pub fn classify(n: &Number) -> PyNum {
    let text = n.as_str();
    if is_float_text(text) {
        return PyNum::Float(text.parse().unwrap_or(f64::NAN));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = digits.bytes().fold(0u128, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u128::from(b.wrapping_sub(b'0')))
    });
    PyNum::Int {
        negative: negative && magnitude != 0,
        magnitude,
    }
}

/// `repr(json.loads(text))` of a JSON number: exact `int` digits or `float.__repr__` (`inf`
/// for overflow).
pub fn number_repr(n: &Number) -> String {
    let text = n.as_str();
    let mut out = Vec::with_capacity(text.len() + 2);
    if is_float_text(text) {
        match text.parse::<f64>() {
            Ok(f) => write_float_repr(f, &mut out),
            Err(_) => out.extend_from_slice(text.as_bytes()),
        }
    } else {
        write_int_repr(text, &mut out);
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// `repr(float)` as a `String`.
pub fn float_repr(f: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_float_repr(f, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// A JSON integer as Python's `int.__repr__`: exact digits, no `-0`, no leading zeros.
pub fn write_int_repr(text: &str, out: &mut Vec<u8>) {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        out.push(b'0');
        return;
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(significant.as_bytes());
}

/// A fixed-size `fmt::Write` sink so float formatting needs no heap allocation.
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Append Python's `float.__repr__` of `f`: shortest round-trip digits, scientific notation
/// when the decimal exponent is below -4 or at least 16, `.0` on integral values, and `inf`,
/// `-inf`, `nan` for the non-finite ones.
pub fn write_float_repr(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits (like Python's repr, which uses
    // David Gay's shortest mode), as `d[.ddd]e[-]x`. We only re-lay them out.
    let mut sb = StackBuf {
        buf: [0; 48],
        len: 0,
    };
    if write!(sb, "{:e}", f.abs()).is_err() {
        return;
    }
    let formatted = sb.buf.get(..sb.len).unwrap_or_default();
    let Some(epos) = formatted.iter().position(|&b| b == b'e') else {
        return;
    };
    let mantissa = formatted.get(..epos).unwrap_or_default();
    let exp_text = formatted.get(epos + 1..).unwrap_or_default();
    let exp: i32 = std::str::from_utf8(exp_text)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Digits without the decimal point: at most 17 of them for a double.
    let mut digits = [0u8; 24];
    let mut nd = 0usize;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        if let Some(slot) = digits.get_mut(nd) {
            *slot = b;
            nd += 1;
        }
    }
    let digits = digits.get(..nd).unwrap_or_default();
    if f < 0.0 {
        out.push(b'-');
    }
    // Python (`format_float_short`): with `decpt` = exponent + 1 (the position of the decimal
    // point in the digit string), use scientific notation when decpt <= -4 or decpt > 16.
    let decpt = exp + 1;
    if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let mut eb = StackBuf {
            buf: [0; 48],
            len: 0,
        };
        if write!(eb, "{e}").is_ok() {
            out.extend_from_slice(eb.buf.get(..eb.len).unwrap_or_default());
        }
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..decpt.unsigned_abs() {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let point = usize::try_from(decpt).unwrap_or(0);
        if point >= digits.len() {
            out.extend_from_slice(digits);
            for _ in digits.len()..point {
                out.push(b'0');
            }
            out.extend_from_slice(b".0");
        } else {
            let (int_part, frac) = digits.split_at(point);
            out.extend_from_slice(int_part);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values checked against CPython 3.11.7 `repr(float)`.
    #[test]
    fn float_repr_table() {
        for (f, want) in [
            (0.5, "0.5"),
            (8001.0, "8001.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.001234, "0.001234"),
            (-2.5e-7, "-2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740993.0, "9007199254740992.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1234567890123456.7, "1234567890123456.8"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    /// `repr(json.loads(text))`, checked against CPython 3.11.7.
    #[test]
    fn number_repr_table() {
        for (text, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("7", "7"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("1.10", "1.1"),
            ("1e5", "100000.0"),
            ("1E5", "100000.0"),
            ("1e999", "inf"),
            ("-1e999", "-inf"),
            ("1e-999", "0.0"),
            ("-1e-999", "-0.0"),
        ] {
            let n: Number = serde_json::from_str(text).unwrap();
            assert_eq!(number_repr(&n), want, "{text}");
        }
    }

    #[test]
    fn classify_table() {
        let n = |t: &str| classify(&serde_json::from_str(t).unwrap());
        assert_eq!(
            n("-0"),
            PyNum::Int {
                negative: false,
                magnitude: 0
            }
        );
        assert_eq!(
            n("-12"),
            PyNum::Int {
                negative: true,
                magnitude: 12
            }
        );
        assert_eq!(n("1.0"), PyNum::Float(1.0));
        assert_eq!(n("1e999"), PyNum::Float(f64::INFINITY));
    }
}
