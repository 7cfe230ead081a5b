//! Python's `str` semantics that Channelstream's behaviour depends on: `str.isspace()`,
//! `str.strip()`, the universal-newline line split and `repr(str)`.
//!
//! Why: Channelstream's settings go through Python's `configparser` (which strips keys and
//! values with `str.strip()` and reads lines with universal newlines) and `set_config_types`
//! (`s.strip()` of every list item); `make-config` renders Python `repr`s. Herald must cut the
//! same text at the same characters, and Rust's `str::trim` does not (it keeps U+001C..U+001F).

/// `str.isspace()` (and so what `str.strip()`, `str.split()` remove): the characters CPython
/// 3.11 classes as whitespace, i.e. Unicode White_Space plus the ASCII separators
/// U+001C..U+001F.
pub fn isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()` without arguments.
pub fn strip(s: &str) -> &str {
    s.trim_matches(isspace)
}

/// `str.rstrip()` without arguments.
pub fn rstrip(s: &str) -> &str {
    s.trim_end_matches(isspace)
}

/// Lines as Python's universal-newline reader yields them: split on `\r\n`, `\r` or `\n`.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let skip = if rest.get(i..i + 2) == Some("\r\n") {
                    2
                } else {
                    1
                };
                (rest.get(..i)?, rest.get(i + skip..)?)
            }
            None => (rest, ""),
        };
        rest = next;
        Some(line)
    })
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`; escapes for backslash, the
/// quote, and control characters.
///
/// Known gap: CPython also escapes the other non-printable characters (`str.isprintable()`
/// false, e.g. U+00A0, U+00AD, U+2028 as `\xa0`, `\xad`, `\u2028`); this keeps them as is.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code point with `chr(c).isspace()` in CPython 3.11.7
    /// (`[hex(c) for c in range(0x110000) if chr(c).isspace()]`).
    const CPYTHON_SPACE: &[u32] = &[
        0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
        0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029,
        0x202f, 0x205f, 0x3000,
    ];

    #[test]
    fn isspace_is_cpython_set() {
        let ours: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| isspace(c))
            .map(u32::from)
            .collect();
        assert_eq!(ours, CPYTHON_SPACE);
    }

    /// Checked against CPython 3.11.7 `str.strip()`.
    #[test]
    fn strip_table() {
        let cases: &[(&str, &str)] = &[
            (" a ", "a"),
            ("\x1ca\x1f", "a"),
            ("\u{3000}a\u{85}", "a"),
            ("\u{a0}", ""),
            ("a b", "a b"),
            ("\u{200b}a", "\u{200b}a"),
        ];
        for (input, want) in cases {
            assert_eq!(strip(input), *want, "{input:?}");
        }
        assert_eq!(rstrip(" a \u{2029}"), " a");
    }

    #[test]
    fn lines_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a", &["a"]),
            ("a\n", &["a"]),
            ("a\r\nb", &["a", "b"]),
            ("a\rb\n\nc", &["a", "b", "", "c"]),
            ("a\r\r\nb", &["a", "", "b"]),
            ("\n", &[""]),
            ("a\n\nb", &["a", "", "b"]),
            ("a\r\nb\rc\n\rd", &["a", "b", "c", "", "d"]),
            ("\r\n\r\n", &["", ""]),
        ];
        for (text, want) in cases {
            assert_eq!(lines(text).collect::<Vec<_>>(), *want, "{text:?}");
        }
    }

    /// Checked against CPython 3.11.7 `repr()`.
    #[test]
    fn repr_str_table() {
        for (s, want) in [
            ("", "''"),
            ("a", "'a'"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' \"", "'both \\' \"'"),
            ("a\\b\n", "'a\\\\b\\n'"),
            ("tab\tnl\nret\r", "'tab\\tnl\\nret\\r'"),
            ("\u{1}", "'\\x01'"),
            ("\0\x1f\x7f\u{9f}", "'\\x00\\x1f\\x7f\\x9f'"),
            ("\x0b\x0c", "'\\x0b\\x0c'"),
            ("é✓", "'é✓'"),
        ] {
            assert_eq!(repr_str(s), want, "{s:?}");
        }
    }
}
