//! JSON output byte-compatible with Python 3's `json.dumps(value, indent=4)` (ensure_ascii,
//! Python float repr, insertion-ordered keys), as Channelstream renders every body and frame.
//!
//! Why our own encoder: serde_json's pretty printer differs from Python in three visible ways
//! (2-space indent, raw UTF-8 instead of `\uXXXX`, and float text such as `1e16` vs Python's
//! `1e+16`), and Channelstream clients and tests compare bodies as text often enough that we
//! want byte equality, not just JSON equality.
//!
//! Invariants:
//! * Object keys come out in insertion order (the crate enables serde_json `preserve_order`).
//! * Numbers are printed from their source text (`arbitrary_precision`), re-formatted the way
//!   Python would after `json.loads`: integers keep every digit (`-0` becomes `0`), anything
//!   with `.`/`e`/`E` becomes a Python float and prints as `float.__repr__` (shortest
//!   round-trip digits, scientific below 1e-4 and from 1e16 on), with `Infinity`/`-Infinity`
//!   for values that overflow a double, as Python's `json` module does.
//! * Output is pure ASCII; every byte is written straight into the caller's `Vec<u8>` with no
//!   allocation per value (floats are laid out from a stack buffer).

use super::number;
use serde_json::{Number, Value};

/// `json.dumps(v, indent=4)`.
pub fn to_string_pretty(v: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    write_pretty(v, 0, &mut out);
    ascii_to_string(out)
}

/// Append `v` pretty-printed as if it were nested `level` deep (each line after the first is
/// indented by `4 * level` extra spaces). Used to render one message once and splice it into
/// both a websocket frame (`[\n    ITEM\n]`) and a long-poll body.
pub fn write_pretty(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                out.extend_from_slice(b"[]");
                return;
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(level + 1, out);
                write_pretty(item, level + 1, out);
            }
            newline(level, out);
            out.push(b']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.extend_from_slice(b"{}");
                return;
            }
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(level + 1, out);
                write_str(k, out);
                out.extend_from_slice(b": ");
                write_pretty(item, level + 1, out);
            }
            newline(level, out);
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// `json.dumps(v)` with Python's default separators (`", "` and `": "`), all on one line.
pub fn to_string_compact(v: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    write_compact(v, &mut out);
    ascii_to_string(out)
}

/// Append `json.dumps(v)` (default separators) to `out`.
pub fn write_compact(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_compact(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_str(k, out);
                out.extend_from_slice(b": ");
                write_compact(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// Every byte we emit is ASCII, so this never takes the lossy path; it exists so that no
/// `unwrap` is needed to turn the buffer into a `String`.
fn ascii_to_string(out: Vec<u8>) -> String {
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

const SPACES: &[u8; 64] = b"                                                                ";

fn newline(level: usize, out: &mut Vec<u8>) {
    out.push(b'\n');
    let mut n = level.saturating_mul(4);
    while n > 0 {
        let take = n.min(SPACES.len());
        out.extend_from_slice(SPACES.get(..take).unwrap_or_default());
        n -= take;
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_str(s, out),
        // Containers are handled by the callers; keep this total anyway.
        Value::Array(_) | Value::Object(_) => write_compact(v, out),
    }
}

// ---------------------------------------------------------------------------------------------
// Strings

/// Byte classes for the string escaper: 0 = copy as is.
const SAFE: u8 = 0;
/// A short escape (`\"`, `\\`, `\n`, ...) or `\u00XX`.
const CTRL: u8 = 1;
/// First byte of a multi-byte UTF-8 sequence: escape the whole char as `\uXXXX`.
const LEAD: u8 = 2;
/// Continuation byte: already covered by the preceding LEAD.
const CONT: u8 = 3;

/// Python's `ESCAPE_ASCII` is `([\\"]|[^\ -~])`: everything outside space..tilde, plus the
/// quote and backslash, is escaped (so DEL 0x7f becomes `\u007f`).
#[allow(clippy::indexing_slicing)] // evaluated at compile time: out of range would not build
const CLASS: [u8; 256] = {
    let mut t = [SAFE; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 || i == 0x7f || i == b'"' as usize || i == b'\\' as usize {
            CTRL
        } else if i < 0x80 {
            SAFE
        } else if i < 0xC0 {
            CONT
        } else {
            LEAD
        };
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a JSON string literal with Python's `ensure_ascii=True` escaping.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let class = CLASS.get(usize::from(b)).copied().unwrap_or(CTRL);
        if class == SAFE {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        start = i + 1;
        match class {
            CONT => {}
            LEAD => {
                // `i` is a char boundary: LEAD bytes only start UTF-8 sequences.
                if let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) {
                    write_u_escape(c, out);
                }
            }
            _ => match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                other => write_u16_escape(u16::from(other), out),
            },
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

fn write_u_escape(c: char, out: &mut Vec<u8>) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        write_u16_escape(*unit, out);
    }
}

fn write_u16_escape(u: u16, out: &mut Vec<u8>) {
    let nib = |shift: u16| {
        HEX.get(usize::from((u >> shift) & 0xf))
            .copied()
            .unwrap_or(b'0')
    };
    out.extend_from_slice(&[b'\\', b'u', nib(12), nib(8), nib(4), nib(0)]);
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// Append a number the way Python prints what `json.loads` made of its text.
pub fn write_number(n: &Number, out: &mut Vec<u8>) {
    let text = n.as_str();
    if number::is_float_text(text) {
        match text.parse::<f64>() {
            Ok(f) => write_float(f, out),
            // Not reachable for parsed JSON; keep the text rather than invent a value.
            Err(_) => out.extend_from_slice(text.as_bytes()),
        }
    } else {
        number::write_int_repr(text, out);
    }
}

/// Append Python's `float.__repr__` of `f` as `json` writes it: the non-finite ones are
/// spelled `Infinity`, `-Infinity` and `NaN`.
pub fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        number::write_float_repr(f, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pretty(src: &str) -> String {
        match serde_json::from_str::<Value>(src) {
            Ok(v) => to_string_pretty(&v),
            Err(e) => format!("<parse error {e}>"),
        }
    }

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_float(f, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn scalars_and_containers() {
        let cases: &[(&str, &str)] = &[
            ("null", "null"),
            ("true", "true"),
            ("false", "false"),
            ("[]", "[]"),
            ("{}", "{}"),
            ("[[]]", "[\n    []\n]"),
            ("{\"a\": {}}", "{\n    \"a\": {}\n}"),
            ("[1, 2]", "[\n    1,\n    2\n]"),
            (
                "{\"b\": 1, \"a\": [true, null]}",
                "{\n    \"b\": 1,\n    \"a\": [\n        true,\n        null\n    ]\n}",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(pretty(src), *want, "input {src}");
        }
    }

    #[test]
    fn numbers_like_python() {
        let cases: &[(&str, &str)] = &[
            ("0", "0"),
            ("-0", "0"),
            ("7", "7"),
            ("-12", "-12"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("-0.0", "-0.0"),
            ("0.0", "0.0"),
            ("1.0", "1.0"),
            ("1.5", "1.5"),
            ("1.10", "1.1"),
            ("100000.0", "100000.0"),
            ("1e5", "100000.0"),
            ("1E5", "100000.0"),
            ("1e15", "1000000000000000.0"),
            ("1e16", "1e+16"),
            ("1.5e16", "1.5e+16"),
            ("123456789012345678", "123456789012345678"),
            ("123456789012345678.0", "1.2345678901234568e+17"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5e-5", "1.5e-05"),
            ("-2.5e-7", "-2.5e-07"),
            ("0.1", "0.1"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("1e300", "1e+300"),
            ("1e-300", "1e-300"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("1e999", "Infinity"),
            ("-1e999", "-Infinity"),
            ("1e-999", "0.0"),
            ("-1e-999", "-0.0"),
            ("3.14159", "3.14159"),
            ("12345.678", "12345.678"),
        ];
        for (src, want) in cases {
            assert_eq!(pretty(src), *want, "input {src}");
        }
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "Infinity");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float(9007199254740993.0), "9007199254740992.0");
    }

    #[test]
    fn strings_like_python() {
        let cases: &[(&str, &str)] = &[
            (r#""plain""#, r#""plain""#),
            (r#""q\"b\\s/""#, r#""q\"b\\s/""#),
            (r#""\n\r\t\b\f""#, r#""\n\r\t\b\f""#),
            (r#""\u0000\u001f\u007f""#, r#""\u0000\u001f\u007f""#),
            (r#""\u0001x""#, r#""\u0001x""#),
            (
                "\"za\u{17c}\u{f3}\u{142}\u{107} \u{2603}\"",
                r#""za\u017c\u00f3\u0142\u0107 \u2603""#,
            ),
            ("\"\u{1F600}\"", r#""\ud83d\ude00""#),
            ("\"\u{FFFF}\u{10FFFF}\"", r#""\uffff\udbff\udfff""#),
            ("\"\u{80}~ \"", r#""\u0080~ ""#),
        ];
        for (src, want) in cases {
            assert_eq!(pretty(src), *want, "input {src}");
        }
        // Keys are escaped the same way.
        assert_eq!(
            to_string_pretty(&json!({"\u{e9}\n": 1})),
            "{\n    \"\\u00e9\\n\": 1\n}"
        );
    }

    #[test]
    fn write_pretty_splices_at_a_level() {
        let msg = json!({"channel": "room", "message": {"text": "hi"}, "tags": []});
        let mut out = b"[\n    ".to_vec();
        write_pretty(&msg, 1, &mut out);
        out.extend_from_slice(b"\n]");
        let whole = to_string_pretty(&json!([msg]));
        assert_eq!(String::from_utf8(out).unwrap_or_default(), whole);
        assert_eq!(
            whole,
            "[\n    {\n        \"channel\": \"room\",\n        \"message\": {\n            \
             \"text\": \"hi\"\n        },\n        \"tags\": []\n    }\n]"
        );
        // Deep nesting goes past the 64-space chunk.
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!([deep]);
        }
        let s = to_string_pretty(&deep);
        assert!(s.contains(&format!("\n{}1\n", " ".repeat(80))));
    }

    #[test]
    fn compact_like_python_default_dumps() {
        let v = json!({"a": [1, 2.5, "\u{e9}"], "b": {}, "c": [], "d": null});
        assert_eq!(
            to_string_compact(&v),
            r#"{"a": [1, 2.5, "\u00e9"], "b": {}, "c": [], "d": null}"#
        );
        assert_eq!(to_string_compact(&json!(true)), "true");
    }

    /// Tiny deterministic generator for the float cross-check.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    fn run_python(script: &str, input: &str) -> Option<String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()
    }

    /// Byte-compare with the real `json.dumps(..., indent=4)` when python3 is installed.
    #[test]
    fn cross_check_with_python() {
        let script = "import json,sys\n\
                      for line in sys.stdin.read().split('\\n\\x1e\\n'):\n    \
                      print(json.dumps(json.loads(line), indent=4), end='\\n\\x1e\\n')";
        let mut inputs: Vec<String> = [
            "null",
            "[]",
            "{}",
            r#"{"a": [], "b": {}, "c": [[], {}], "d": [{"e": [1, {"f": null}]}]}"#,
            r#"[0, -0, 1, -1, 10, 123456789012345678901234567890, -98765432109876543210]"#,
            r#"[0.0, -0.0, 1.0, 1.5, 0.1, 0.2, 0.30000000000000004, 100000.0, 1e5, 1e15, 1e16,
               1e17, 1.5e16, 9999999999999998.0, 12345678901234567890.0, 0.0001, 0.00001,
               0.000123, 1.5e-5, 1e-7, 1e300, 1e-300, 5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, 1e999, -1e999, 1e-999, -1e-999, 3.0e0, 2E3, 2e-3]"#,
            r#"["", "ascii", "quote\" backslash\\ slash/", "\n\r\t\b\f", "\u0000\u0001\u001f",
               "\u007f\u0080\u00ff", "za\u017c\u00f3\u0142\u0107 \u2603", "\ud83d\ude00",
               "\uffff", "\udbff\udfff", "mixed \u00e9 and \ud83c\udf89 end"]"#,
            "{\"\u{e9}\u{1F600}\": \"\u{2028}\u{2029}\", \"k\\n\": [true, false, null]}",
            r#"{"channel": "room", "uuid": "61ed6af7-32d2-4e3c-8a0f-55927c590f35",
               "timestamp": "2026-11-22T13:59:12.640167", "user": "system",
               "message": {"text": "raw frame sample", "n": [1, 2.5, -3e-9]},
               "edited": null, "catchup": false, "type": "message"}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Random doubles from random bit patterns: the shortest-digits check.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut floats = Vec::new();
        for _ in 0..4000 {
            let f = f64::from_bits(xorshift(&mut seed));
            if f.is_finite() {
                floats.push(format!("{f:e}"));
            }
        }
        // And ordinary magnitudes, where the fixed/scientific switch happens.
        for i in 0..2000 {
            let mantissa = (xorshift(&mut seed) % 1_000_000) as f64 / 1000.0;
            let exp = i % 44 - 22;
            floats.push(format!("{:e}", mantissa * 10f64.powi(exp)));
        }
        inputs.push(format!("[{}]", floats.join(", ")));

        let joined = inputs.join("\n\x1e\n");
        let Some(py) = run_python(script, &joined) else {
            eprintln!("python3 not available: skipping the pyjson cross-check");
            return;
        };
        let py_parts: Vec<&str> = py.split("\n\x1e\n").collect();
        for (i, src) in inputs.iter().enumerate() {
            let ours = pretty(src);
            let theirs = py_parts.get(i).copied().unwrap_or("<missing>");
            if ours != theirs {
                // Point at the first differing line for a readable failure.
                let diff = ours
                    .lines()
                    .zip(theirs.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("ours {a:?} python {b:?}"))
                    .unwrap_or_else(|| "length differs".into());
                panic!("input #{i} differs from python: {diff}");
            }
        }
    }
}
