//! marshmallow 2's `fields.DateTime` parsing: its ISO-8601 regex, then dateutil.
//!
//! Why: Channelstream validates the `timestamp` of messages with marshmallow 2.18, which
//! matches `_iso8601_re` (Python `re`, with `$` also matching before a final newline) and then
//! parses with `dateutil.parser.parse`. Which strings are accepted, how fractions truncate and
//! which offsets are valid must match, since the result is echoed back to the client.

use crate::channelstream::api::types::Timestamp;
use chrono::{FixedOffset, NaiveDate, TimeZone};

/// A tiny cursor for the ISO-8601 grammar of marshmallow 2's `_iso8601_re`.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// Greedy `\d{min,max}`; since no digit ever follows a group in the grammar, greedy
    /// matching is what the backtracking regex ends up with. Returns value and digit count.
    fn digits(&mut self, min: usize, max: usize) -> Option<(u32, usize)> {
        let mut n = 0;
        let mut value = 0u32;
        while n < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    value = value.saturating_mul(10).saturating_add(u32::from(c - b'0'));
                    self.i += 1;
                    n += 1;
                }
                _ => break,
            }
        }
        (n >= min).then_some((value, n))
    }

    /// Python's `$`: the end, or just before a final newline.
    fn at_end(&self) -> bool {
        self.i == self.b.len() || (self.i + 1 == self.b.len() && self.peek() == Some(b'\n'))
    }
}

/// marshmallow 2 `DateTime` (format `iso`): the string must match
/// `\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,6}\d{0,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$`
/// and is then parsed by dateutil: fractions truncate to microseconds, `Z`/`±00:00` become
/// UTC, an offset gives an aware time, no offset a naive one; out-of-range fields (month 13,
/// Feb 30, hour 24, year 0, offsets of 24 h or more) are invalid. Digits are ASCII only
/// (Python's `\d` would also take other scripts' digits).
pub fn parse(s: &str) -> Option<Timestamp> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let (year, _) = c.digits(4, 4)?;
    c.eat(b'-').then_some(())?;
    let (month, _) = c.digits(1, 2)?;
    c.eat(b'-').then_some(())?;
    let (day, _) = c.digits(1, 2)?;
    (c.eat(b'T') || c.eat(b' ')).then_some(())?;
    let (hour, _) = c.digits(1, 2)?;
    c.eat(b':').then_some(())?;
    let (minute, _) = c.digits(1, 2)?;
    let mut second = 0;
    let mut micros = 0;
    if c.eat(b':') {
        second = c.digits(1, 2)?.0;
        if c.eat(b'.') {
            // `\d{1,6}\d{0,6}`: up to 12 digits; dateutil keeps the first 6.
            let start = c.i;
            let (_, n) = c.digits(1, 12)?;
            let frac = s.get(start..start + n.min(6)).unwrap_or("0");
            let scale = 10u32.pow(u32::try_from(6 - n.min(6)).unwrap_or(0));
            micros = frac.parse::<u32>().ok()?.saturating_mul(scale);
        }
    }
    let offset = if c.eat(b'Z') {
        Some(0i32)
    } else if let Some(sign @ (b'+' | b'-')) = c.peek() {
        c.i += 1;
        let (hh, _) = c.digits(2, 2)?;
        // `(:?\d{2})?`: optional; on a partial match the regex drops the group (and then
        // fails at `$`), which restoring the cursor reproduces.
        let save = c.i;
        c.eat(b':');
        let mm = match c.digits(2, 2) {
            Some((mm, _)) => mm,
            None => {
                c.i = save;
                0
            }
        };
        let secs = i32::try_from(hh * 3600 + mm * 60).ok()?;
        Some(if sign == b'-' { -secs } else { secs })
    } else {
        None
    };
    if !c.at_end() || year < 1 {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_micro_opt(hour, minute, second, micros)?;
    match offset {
        None => Some(Timestamp::Naive(naive)),
        Some(secs) => {
            // `east_opt` refuses |offset| >= 24 h, as Python's datetime does.
            let tz = FixedOffset::east_opt(secs)?;
            tz.from_local_datetime(&naive)
                .single()
                .map(Timestamp::Aware)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_table() {
        let t = |s: &str| parse(s).map(|t| t.to_http_string());
        let table: &[(&str, Option<&str>)] = &[
            ("2020-01-02T03:04:05Z", Some("2020-01-02T03:04:05+00:00")),
            (
                "2020-01-02T03:04:05+00:00",
                Some("2020-01-02T03:04:05+00:00"),
            ),
            (
                "2020-01-02T03:04:05-00:00",
                Some("2020-01-02T03:04:05+00:00"),
            ),
            (
                "2020-01-02T03:04:05+02:00",
                Some("2020-01-02T03:04:05+02:00"),
            ),
            ("2010-01-01T01:01", Some("2010-01-01T01:01:00")),
            ("2020-1-2 3:4:5.5", Some("2020-01-02T03:04:05.500000")),
            (
                "2020-01-02T03:04:05.1234567+0530",
                Some("2020-01-02T03:04:05.123456+05:30"),
            ),
            ("2020-01-02T03:04-05", Some("2020-01-02T03:04:00-05:00")),
            (
                "2020-01-02T03:04:05+05:99",
                Some("2020-01-02T03:04:05+06:39"),
            ),
            (
                "2020-01-02T03:04:05.000000Z",
                Some("2020-01-02T03:04:05+00:00"),
            ),
            ("2020-01-01T00:00\n", Some("2020-01-01T00:00:00")),
            ("2020-01-02T03:04:05+24:00", None),
            ("2020-02-30T00:00", None),
            ("0000-01-01T00:00", None),
            ("2020-01-01T24:00", None),
            ("2020-01-01T00:00:60", None),
            ("2020-01-02", None),
            ("yesterday", None),
            ("", None),
            ("2020-01-02t03:04", None),
            ("2020-01-02T03:04:05z", None),
            ("2020-01-02T03:04:05.", None),
            ("2020-01-02T03:04:05.1234567890123", None),
            ("2020-01-02T03:04:05+05:3", None),
            (" 2020-01-02T03:04", None),
            ("2020-01-01T00:00\n\n", None),
        ];
        for (s, want) in table {
            assert_eq!(t(s).as_deref(), *want, "{s:?}");
        }
        assert_eq!(
            parse("2020-01-02T03:04:05Z").map(|t| t.to_socket_string()),
            Some("2020-01-02T03:04:05Z".to_string())
        );
    }
}
