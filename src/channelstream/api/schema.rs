//! Request validation with Channelstream 0.7.1's (marshmallow 2.18) semantics and 422 shapes.
//!
//! Why a hand-written port instead of serde derives: clients of Channelstream see marshmallow's
//! behaviour directly (which values are coerced, which defaults appear, and the exact text and
//! nesting of every error), and serde's model (first error wins, no coercion, no per-field
//! null rules) cannot express it. Each schema below is a straight transcription of the Python
//! `channelstream/validation/schemas.py` class with the marshmallow 2 machinery inlined:
//!
//! * A field that is absent takes its `missing` default (already a loaded value here), is
//!   reported as `"Missing data for required field."` when required, or stays absent.
//! * `null` is accepted only by fields whose default is `None`; the others answer
//!   `"Field may not be null."`.
//! * Type coercion follows the Python field classes (Boolean set membership, Integer as
//!   `int(v)`, UUID as `uuid.UUID(v)`, DateTime as marshmallow's ISO regex then dateutil).
//!   Validators (lengths, ranges, "Unknown connection", ...) run only after the type check
//!   passed, and *all* validators of a field run, so their messages accumulate.
//! * Errors of all fields are collected in schema field order; lists report `{"<index>": ...}`,
//!   dict-valued fields `{"<key>": {"value": ...}}`, nested schemas a nested object and
//!   `many=True` bodies `{"<index>": {...}}`.
//!
//! The few inputs on which the real server raises an uncaught exception (HTTP 500) are
//! reported as `SchemaError::Crash` so the router can answer 500 as well.

use super::types::*;
use chrono::{FixedOffset, NaiveDate, TimeZone};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Message texts (marshmallow 2.18 defaults and Channelstream's custom ones)

const MISSING: &str = "Missing data for required field.";
const NULL: &str = "Field may not be null.";
const NOT_STRING: &str = "Not a valid string.";
const NOT_BOOL: &str = "Not a valid boolean.";
const NOT_INT: &str = "Not a valid integer.";
const NOT_UUID: &str = "Not a valid UUID.";
const NOT_LIST: &str = "Not a valid list.";
const NOT_MAPPING: &str = "Not a valid mapping type.";
const NOT_DATETIME: &str = "Not a valid datetime.";
const INVALID_INPUT: &str = "Invalid input type.";
const INVALID_TYPE: &str = "Invalid type.";
const SHORTER_THAN_1: &str = "Shorter than minimum length 1.";
const AT_LEAST_0: &str = "Must be at least 0.";
const UNKNOWN_CONNECTION: &str = "Unknown connection";
const UNKNOWN_USER: &str = "Unknown user";
const BAD_STATE_VALUE: &str = "Value is not type of string, integer, boolean or float.";

/// Why one field (or nested schema) failed.
#[derive(Debug)]
enum Fault {
    /// marshmallow messages: a list of strings, or an object for nested errors.
    Msg(Value),
    /// Python raises something marshmallow does not catch (the server answers 500).
    Crash,
}

type FieldResult<T> = Result<T, Fault>;

impl From<Fault> for SchemaError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Msg(v) => SchemaError::Invalid(v),
            Fault::Crash => SchemaError::Crash,
        }
    }
}

fn msgs(texts: &[&str]) -> Value {
    Value::Array(texts.iter().map(|t| Value::String((*t).into())).collect())
}

fn fail<T>(text: &str) -> FieldResult<T> {
    Err(Fault::Msg(msgs(&[text])))
}

/// `{"_schema": [text]}`: the shape for a body (or nested value) of the wrong type.
fn schema_error(text: &str) -> Value {
    let mut m = Map::new();
    m.insert("_schema".into(), msgs(&[text]));
    Value::Object(m)
}

/// The error store of one schema load: field name -> messages, in the order fields failed
/// (which is schema field order, since fields are loaded in that order).
#[derive(Default)]
struct Errors {
    map: Map<String, Value>,
    crashed: bool,
}

impl Errors {
    /// Record the outcome of one field; `Some` only when it loaded.
    fn take<T>(&mut self, field: &str, r: FieldResult<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Fault::Msg(m)) => {
                self.map.insert(field.into(), m);
                None
            }
            Err(Fault::Crash) => {
                self.crashed = true;
                None
            }
        }
    }

    fn finish(self) -> FieldResult<()> {
        if self.crashed {
            Err(Fault::Crash)
        } else if self.map.is_empty() {
            Ok(())
        } else {
            Err(Fault::Msg(Value::Object(self.map)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Presence rules: what happens when the key is absent or `null`

/// `required=True`: absent is an error, `null` too.
fn required<'a, T>(
    raw: Option<&'a Value>,
    load: impl FnOnce(&'a Value) -> FieldResult<T>,
) -> FieldResult<T> {
    match raw {
        None => fail(MISSING),
        Some(Value::Null) => fail(NULL),
        Some(v) => load(v),
    }
}

/// `missing=<value>`: absent takes the default, `null` is an error.
fn with_default<'a, T>(
    raw: Option<&'a Value>,
    default: impl FnOnce() -> T,
    load: impl FnOnce(&'a Value) -> FieldResult<T>,
) -> FieldResult<T> {
    match raw {
        None => Ok(default()),
        Some(Value::Null) => fail(NULL),
        Some(v) => load(v),
    }
}

/// `missing=None`: absent and `null` both load as `None` (marshmallow sets `allow_none`).
fn nullable<'a, T>(
    raw: Option<&'a Value>,
    load: impl FnOnce(&'a Value) -> FieldResult<T>,
) -> FieldResult<Option<T>> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(v) => load(v).map(Some),
    }
}

/// Neither required nor defaulted: absent stays absent, `null` is an error.
fn optional<'a, T>(
    raw: Option<&'a Value>,
    load: impl FnOnce(&'a Value) -> FieldResult<T>,
) -> FieldResult<Option<T>> {
    match raw {
        None => Ok(None),
        Some(Value::Null) => fail(NULL),
        Some(v) => load(v).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------
// Field types

/// `fields.String`: only JSON strings.
fn string(v: &Value) -> FieldResult<&str> {
    match v {
        Value::String(s) => Ok(s),
        _ => fail(NOT_STRING),
    }
}

/// `validate.Length(min=1, max=max)`; Python counts code points.
fn length_error(s: &str, max: usize) -> Option<String> {
    let n = s.chars().count();
    (n < 1 || n > max).then(|| format!("Length must be between 1 and {max}."))
}

/// `fields.String(validate=Length(1, max))`.
fn bounded_string(v: &Value, max: usize) -> FieldResult<String> {
    let s = string(v)?;
    match length_error(s, max) {
        Some(e) => fail(&e),
        None => Ok(s.to_owned()),
    }
}

/// `fields.List(container)`: every item is loaded; item errors are keyed by index and the
/// list's own validators only run when all items loaded.
fn list<T>(v: &Value, item: impl Fn(&Value) -> FieldResult<T>) -> FieldResult<Vec<T>> {
    let Value::Array(items) = v else {
        return fail(NOT_LIST);
    };
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Map::new();
    for (i, x) in items.iter().enumerate() {
        // The container field applies its own null rule (none of ours allow null).
        let r = if x.is_null() { fail(NULL) } else { item(x) };
        match r {
            Ok(t) => out.push(t),
            Err(Fault::Msg(m)) => {
                errors.insert(i.to_string(), m);
            }
            Err(Fault::Crash) => return Err(Fault::Crash),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Fault::Msg(Value::Object(errors)))
    }
}

fn string_list(v: &Value, max: usize) -> FieldResult<Vec<String>> {
    list(v, |x| bounded_string(x, max))
}

/// A JSON number as Python's `json.loads` sees it.
enum PyNum {
    /// An `int`: sign and magnitude (saturating; only small values matter to us).
    Int { negative: bool, magnitude: u128 },
    /// A `float` (`1e999` is `inf`, as in Python).
    Float(f64),
}

fn py_number(n: &Number) -> PyNum {
    let text = n.as_str();
    if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
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

/// `fields.Boolean`: Python `value in truthy` / `value in falsy`, where the sets hold
/// `'t','T','true','True','TRUE','1',1,True` and `'f','F','false','False','FALSE','0',0,0.0,
/// False`. Set membership uses hash equality, so `1.0` is truthy and `-0.0` falsy.
fn boolean(v: &Value) -> FieldResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "t" | "T" | "true" | "True" | "TRUE" | "1" => Ok(true),
            "f" | "F" | "false" | "False" | "FALSE" | "0" => Ok(false),
            _ => fail(NOT_BOOL),
        },
        Value::Number(n) => match py_number(n) {
            PyNum::Int { magnitude: 0, .. } => Ok(false),
            PyNum::Int {
                negative: false,
                magnitude: 1,
            } => Ok(true),
            // `==` here, not a pattern: -0.0 must count as 0.0, as Python's hash does.
            PyNum::Float(f) => {
                if f == 1.0 {
                    Ok(true)
                } else if f == 0.0 {
                    Ok(false)
                } else {
                    fail(NOT_BOOL)
                }
            }
            PyNum::Int { .. } => fail(NOT_BOOL),
        },
        _ => fail(NOT_BOOL),
    }
}

/// What `int()` strips: C `isspace` for ASCII (so not 0x1c..0x1f, which `str.isspace()`
/// would accept) and Unicode whitespace above ASCII (CPython maps it to a space first).
fn py_isspace(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
    } else {
        c.is_whitespace()
    }
}

/// Python `int(s, radix)` for radix 10 or 16: surrounding whitespace, one sign, a `0x` prefix
/// (radix 16), single underscores between digits. Returns sign and saturating magnitude.
/// (Python also accepts non-ASCII decimal digits such as `"٣"`; we do not.)
fn py_int_str(s: &str, radix: u32) -> Option<(bool, u128)> {
    let t = s.trim_matches(py_isspace);
    let (negative, t) = if let Some(rest) = t.strip_prefix('-') {
        (true, rest)
    } else {
        (false, t.strip_prefix('+').unwrap_or(t))
    };
    let mut rest = t;
    let mut after_prefix = false;
    if radix == 16 {
        if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            rest = r;
            after_prefix = true;
        }
    }
    let mut value = 0u128;
    let mut any_digit = false;
    let mut prev_underscore = false;
    for (i, c) in rest.chars().enumerate() {
        if c == '_' {
            // Allowed between digits, or right after a base prefix (`0x_ff`).
            let ok = !prev_underscore && (any_digit || (after_prefix && i == 0));
            if !ok {
                return None;
            }
            prev_underscore = true;
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value
            .saturating_mul(u128::from(radix))
            .saturating_add(u128::from(d));
        any_digit = true;
        prev_underscore = false;
    }
    if !any_digit || prev_underscore {
        return None;
    }
    Some((negative && value != 0, value))
}

/// `fields.Integer`: Python `int(v)`. `"5"` -> 5, `5.7` -> 5, `true` -> 1. `int(inf)` raises
/// `OverflowError`, which marshmallow 2.18 does not catch (500).
fn integer(v: &Value) -> FieldResult<(bool, u128)> {
    match v {
        Value::Bool(b) => Ok((false, u128::from(*b))),
        Value::Number(n) => match py_number(n) {
            PyNum::Int {
                negative,
                magnitude,
            } => Ok((negative, magnitude)),
            PyNum::Float(f) if f.is_nan() => fail(NOT_INT),
            PyNum::Float(f) if f.is_infinite() => Err(Fault::Crash),
            PyNum::Float(f) => {
                let t = f.trunc();
                // `as` saturates, which is all we need for huge magnitudes.
                Ok((t < 0.0, t.abs() as u128))
            }
        },
        Value::String(s) => py_int_str(s, 10).map_or_else(|| fail(NOT_INT), Ok),
        _ => fail(NOT_INT),
    }
}

/// Python `uuid.UUID(s)`: strips every `urn:` and `uuid:`, braces at both ends and every
/// hyphen, then needs 32 characters that `int(_, 16)` accepts.
pub fn parse_py_uuid(s: &str) -> Option<Uuid> {
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
    match py_int_str(&h, 16)? {
        (false, v) => Some(Uuid::from_u128(v)),
        (true, _) => None,
    }
}

/// `fields.UUID`: strings only (other types raise `AttributeError`, caught as invalid).
fn uuid_field(v: &Value) -> FieldResult<Uuid> {
    match v {
        Value::String(s) => parse_py_uuid(s).map_or_else(|| fail(NOT_UUID), Ok),
        _ => fail(NOT_UUID),
    }
}

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
pub fn parse_py_datetime(s: &str) -> Option<Timestamp> {
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

/// `fields.DateTime`: strings only (falsy or non-string values are invalid).
fn datetime(v: &Value) -> FieldResult<Timestamp> {
    match v {
        Value::String(s) => parse_py_datetime(s).map_or_else(|| fail(NOT_DATETIME), Ok),
        _ => fail(NOT_DATETIME),
    }
}

/// `fields.Dict()` without value schema: any object, kept as given.
fn mapping(v: &Value) -> FieldResult<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        _ => fail(NOT_MAPPING),
    }
}

/// `BackportedDict(values=UserStateField(allow_none=True))`: values must be null, bool,
/// number or string; failures are reported as `{"<key>": {"value": [...]}}`.
fn state_map(v: &Value) -> FieldResult<StateMap> {
    let Value::Object(m) = v else {
        return fail(NOT_MAPPING);
    };
    let mut errors = Map::new();
    for (k, x) in m {
        if matches!(x, Value::Array(_) | Value::Object(_)) {
            errors.insert(k.clone(), value_error(msgs(&[BAD_STATE_VALUE])));
        }
    }
    if errors.is_empty() {
        Ok(m.clone())
    } else {
        Err(Fault::Msg(Value::Object(errors)))
    }
}

fn value_error(m: Value) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), m);
    Value::Object(o)
}

/// `ChannelConfigSchema` loaded on its own (also the nested form): all six keys get their
/// defaults when absent; a non-object answers `{"_schema": ["Invalid input type."]}`.
fn channel_config_schema(v: &Value) -> FieldResult<ChannelConfig> {
    let Value::Object(o) = v else {
        return Err(Fault::Msg(schema_error(INVALID_INPUT)));
    };
    let d = ChannelConfig::default();
    let mut e = Errors::default();
    let notify_presence = e.take(
        "notify_presence",
        with_default(o.get("notify_presence"), || d.notify_presence, boolean),
    );
    let store_history = e.take(
        "store_history",
        with_default(o.get("store_history"), || d.store_history, boolean),
    );
    let history_size = e.take(
        "history_size",
        with_default(
            o.get("history_size"),
            || d.history_size,
            |v| match integer(v)? {
                (true, _) => fail(AT_LEAST_0),
                // Python ints are unbounded; any size beyond u64 means "keep everything".
                (false, m) => Ok(u64::try_from(m).unwrap_or(u64::MAX)),
            },
        ),
    );
    let broadcast = e.take(
        "broadcast_presence_with_user_lists",
        with_default(
            o.get("broadcast_presence_with_user_lists"),
            || d.broadcast_presence_with_user_lists,
            boolean,
        ),
    );
    let notify_state = e.take(
        "notify_state",
        with_default(o.get("notify_state"), || d.notify_state, boolean),
    );
    let store_frames = e.take(
        "store_frames",
        with_default(o.get("store_frames"), || d.store_frames, boolean),
    );
    e.finish()?;
    let (
        Some(notify_presence),
        Some(store_history),
        Some(history_size),
        Some(broadcast_presence_with_user_lists),
        Some(notify_state),
        Some(store_frames),
    ) = (
        notify_presence,
        store_history,
        history_size,
        broadcast,
        notify_state,
        store_frames,
    )
    else {
        return Err(Fault::Crash);
    };
    Ok(ChannelConfig {
        notify_presence,
        store_history,
        history_size,
        broadcast_presence_with_user_lists,
        notify_state,
        store_frames,
    })
}

/// `BackportedDict(values=Nested(ChannelConfigSchema()))`.
fn channel_configs(v: &Value) -> FieldResult<Vec<(String, ChannelConfig)>> {
    let Value::Object(m) = v else {
        return fail(NOT_MAPPING);
    };
    let mut out = Vec::with_capacity(m.len());
    let mut errors = Map::new();
    for (k, x) in m {
        // `Nested` is not nullable here, so `null` fails before the schema sees it.
        let r = if x.is_null() {
            fail(NULL)
        } else {
            channel_config_schema(x)
        };
        match r {
            Ok(cfg) => out.push((k.clone(), cfg)),
            Err(Fault::Msg(msg)) => {
                errors.insert(k.clone(), value_error(msg));
            }
            Err(Fault::Crash) => return Err(Fault::Crash),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Fault::Msg(Value::Object(errors)))
    }
}

/// `InfoResolutionSchema` (nested): a non-object answers `{"_schema": ["Invalid input type."]}`.
fn info_schema(v: &Value) -> FieldResult<InfoResolution> {
    let Value::Object(o) = v else {
        return Err(Fault::Msg(schema_error(INVALID_INPUT)));
    };
    let mut e = Errors::default();
    let include_history = e.take(
        "include_history",
        with_default(o.get("include_history"), || true, boolean),
    );
    let include_users = e.take(
        "include_users",
        with_default(o.get("include_users"), || true, boolean),
    );
    let channels = e.take(
        "channels",
        optional(o.get("channels"), |v| string_list(v, 256)),
    );
    // No `missing` in the schema: absent stays absent, which the views read as `[]`.
    let exclude_channels = e.take(
        "exclude_channels",
        optional(o.get("exclude_channels"), |v| string_list(v, 256)),
    );
    let include_connections = e.take(
        "include_connections",
        with_default(o.get("include_connections"), || false, boolean),
    );
    let return_public_state = e.take(
        "return_public_state",
        with_default(o.get("return_public_state"), || false, boolean),
    );
    e.finish()?;
    let (
        Some(include_history),
        Some(include_users),
        Some(channels),
        Some(exclude_channels),
        Some(include_connections),
        Some(return_public_state),
    ) = (
        include_history,
        include_users,
        channels,
        exclude_channels,
        include_connections,
        return_public_state,
    )
    else {
        return Err(Fault::Crash);
    };
    Ok(InfoResolution {
        include_history,
        include_users,
        channels,
        exclude_channels: exclude_channels.unwrap_or_default(),
        include_connections,
        return_public_state,
    })
}

/// A single-object body: anything else is `{"_schema": ["Invalid input type."]}`.
fn body_object(body: &Value) -> Result<&Map<String, Value>, SchemaError> {
    body.as_object()
        .ok_or_else(|| SchemaError::Invalid(schema_error(INVALID_INPUT)))
}

/// A `many=True` body. A non-array (object, string, null, ...) is
/// `{"_schema": ["Invalid input type."]}`. Item errors go under `"<index>"`; a non-object item
/// is marshmallow 2's odd case: it leaves an empty `"<index>": {}` and appends to a
/// *top-level* `"_schema"` list.
fn load_many<T>(
    body: &Value,
    item: impl Fn(&Map<String, Value>) -> FieldResult<T>,
) -> Result<Vec<T>, SchemaError> {
    let Value::Array(items) = body else {
        return Err(SchemaError::Invalid(schema_error(INVALID_INPUT)));
    };
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Map::new();
    let mut crashed = false;
    for (i, x) in items.iter().enumerate() {
        let Value::Object(o) = x else {
            errors
                .entry(i.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Array(list) = errors
                .entry("_schema")
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(Value::String(INVALID_INPUT.into()));
            }
            continue;
        };
        match item(o) {
            Ok(t) => out.push(t),
            Err(Fault::Msg(m)) => {
                errors.insert(i.to_string(), m);
            }
            Err(Fault::Crash) => crashed = true,
        }
    }
    if crashed {
        Err(SchemaError::Crash)
    } else if errors.is_empty() {
        Ok(out)
    } else {
        Err(SchemaError::Invalid(Value::Object(errors)))
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// `POST /connect` body.
pub fn connect(body: &Value) -> Result<ConnectCmd, SchemaError> {
    let o = body_object(body)?;
    let mut e = Errors::default();
    let username = e.take(
        "username",
        required(o.get("username"), |v| bounded_string(v, 512)),
    );
    let conn_id = e.take(
        "conn_id",
        with_default(o.get("conn_id"), Uuid::new_v4, uuid_field),
    );
    let channels = e.take(
        "channels",
        with_default(o.get("channels"), Vec::new, |v| string_list(v, 256)),
    );
    let state_public_keys = e.take(
        "state_public_keys",
        with_default(o.get("state_public_keys"), Vec::new, |v| {
            string_list(v, 256)
        }),
    );
    let fresh_user_state = e.take(
        "fresh_user_state",
        with_default(o.get("fresh_user_state"), Map::new, state_map),
    );
    let user_state = e.take(
        "user_state",
        with_default(o.get("user_state"), Map::new, state_map),
    );
    let configs = e.take(
        "channel_configs",
        with_default(o.get("channel_configs"), Vec::new, channel_configs),
    );
    let info = e.take(
        "info",
        with_default(o.get("info"), InfoResolution::default, info_schema),
    );
    e.finish()?;
    let (
        Some(username),
        Some(conn_id),
        Some(channels),
        Some(state_public_keys),
        Some(fresh_user_state),
        Some(user_state),
        Some(channel_configs),
        Some(info),
    ) = (
        username,
        conn_id,
        channels,
        state_public_keys,
        fresh_user_state,
        user_state,
        configs,
        info,
    )
    else {
        return Err(SchemaError::Crash);
    };
    Ok(ConnectCmd {
        username,
        conn_id,
        channels,
        state_public_keys,
        fresh_user_state,
        user_state,
        channel_configs,
        info,
    })
}

/// `POST /subscribe` body; `query_conn_id` is `?conn_id=` (used when the body has none);
/// `known_conn` answers whether a connection exists ("Unknown connection").
///
/// A non-object body crashes the real server (its `pre_load` calls `dict.setdefault`).
pub fn subscribe(
    body: &Value,
    query_conn_id: Option<&str>,
    known_conn: &dyn Fn(&Uuid) -> bool,
) -> Result<SubscribeCmd, SchemaError> {
    let Value::Object(o) = body else {
        return Err(SchemaError::Crash);
    };
    // `in_data.setdefault("conn_id", request.GET.get("conn_id"))`: a key present in the body
    // wins even when it is null; otherwise the query value, or None.
    let query = query_conn_id.map_or(Value::Null, |q| Value::String(q.to_owned()));
    let raw_conn = o.get("conn_id").unwrap_or(&query);
    let mut e = Errors::default();
    let conn_id = e.take(
        "conn_id",
        required(Some(raw_conn), |v| {
            let id = uuid_field(v)?;
            if known_conn(&id) {
                Ok(id)
            } else {
                fail(UNKNOWN_CONNECTION)
            }
        }),
    );
    let channels = e.take(
        "channels",
        required(o.get("channels"), |v| {
            let l = string_list(v, 256)?;
            if l.is_empty() {
                fail(SHORTER_THAN_1)
            } else {
                Ok(l)
            }
        }),
    );
    let info = e.take(
        "info",
        with_default(o.get("info"), InfoResolution::default, info_schema),
    );
    let configs = e.take(
        "channel_configs",
        with_default(o.get("channel_configs"), Vec::new, channel_configs),
    );
    e.finish()?;
    let (Some(conn_id), Some(channels), Some(info), Some(channel_configs)) =
        (conn_id, channels, info, configs)
    else {
        return Err(SchemaError::Crash);
    };
    Ok(SubscribeCmd {
        conn_id,
        channels,
        info,
        channel_configs,
    })
}

/// `POST /unsubscribe` body (same schema as subscribe).
pub fn unsubscribe(
    body: &Value,
    query_conn_id: Option<&str>,
    known_conn: &dyn Fn(&Uuid) -> bool,
) -> Result<SubscribeCmd, SchemaError> {
    subscribe(body, query_conn_id, known_conn)
}

/// `POST /user_state`; `known_user` answers whether a user exists ("Unknown user").
pub fn user_state(
    body: &Value,
    known_user: &dyn Fn(&str) -> bool,
) -> Result<UserStateCmd, SchemaError> {
    let o = body_object(body)?;
    let mut e = Errors::default();
    let user = e.take(
        "user",
        required(o.get("user"), |v| {
            let s = string(v)?;
            // Both validators run and their messages accumulate (e.g. "" gets two).
            let mut msgs = Vec::new();
            if let Some(len) = length_error(s, 512) {
                msgs.push(Value::String(len));
            }
            if !known_user(s) {
                msgs.push(Value::String(UNKNOWN_USER.into()));
            }
            if msgs.is_empty() {
                Ok(s.to_owned())
            } else {
                Err(Fault::Msg(Value::Array(msgs)))
            }
        }),
    );
    let state = e.take(
        "user_state",
        with_default(o.get("user_state"), Map::new, state_map),
    );
    let keys = e.take(
        "state_public_keys",
        nullable(o.get("state_public_keys"), |v| string_list(v, 256)),
    );
    e.finish()?;
    let (Some(user), Some(user_state), Some(state_public_keys)) = (user, state, keys) else {
        return Err(SchemaError::Crash);
    };
    Ok(UserStateCmd {
        user,
        user_state,
        state_public_keys,
    })
}

/// The `PayloadDeliveryInfo` fields shared by the three message schemas.
struct Delivery {
    pm_users: Vec<String>,
    exclude_users: Vec<String>,
    channel: Option<String>,
    no_history: bool,
}

fn delivery(o: &Map<String, Value>, e: &mut Errors) -> Option<Delivery> {
    let pm_users = e.take(
        "pm_users",
        with_default(o.get("pm_users"), Vec::new, |v| string_list(v, 512)),
    );
    let exclude_users = e.take(
        "exclude_users",
        with_default(o.get("exclude_users"), Vec::new, |v| string_list(v, 512)),
    );
    let channel = e.take(
        "channel",
        nullable(o.get("channel"), |v| bounded_string(v, 256)),
    );
    let no_history = e.take(
        "no_history",
        with_default(o.get("no_history"), || false, boolean),
    );
    Some(Delivery {
        pm_users: pm_users?,
        exclude_users: exclude_users?,
        channel: channel?,
        no_history: no_history?,
    })
}

fn message_item(o: &Map<String, Value>) -> FieldResult<MessageCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take(
        "uuid",
        with_default(o.get("uuid"), Uuid::new_v4, uuid_field),
    );
    let timestamp = e.take(
        "timestamp",
        with_default(o.get("timestamp"), Timestamp::now, datetime),
    );
    let user = e.take("user", required(o.get("user"), |v| bounded_string(v, 512)));
    let message = e.take("message", optional(o.get("message"), mapping));
    e.finish()?;
    let (Some(d), Some(uuid), Some(timestamp), Some(user), Some(message)) =
        (d, uuid, timestamp, user, message)
    else {
        return Err(Fault::Crash);
    };
    Ok(MessageCmd {
        pm_users: d.pm_users,
        exclude_users: d.exclude_users,
        channel: d.channel,
        no_history: d.no_history,
        uuid,
        timestamp,
        user,
        message,
    })
}

/// `POST /message` (a JSON array). Items with neither channel nor pm_users are dropped here,
/// after the whole batch validated (one invalid item rejects all).
pub fn messages(body: &Value) -> Result<Vec<MessageCmd>, SchemaError> {
    let mut all = load_many(body, message_item)?;
    all.retain(|m| m.channel.is_some() || !m.pm_users.is_empty());
    Ok(all)
}

fn edit_item(o: &Map<String, Value>) -> FieldResult<EditCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take("uuid", required(o.get("uuid"), uuid_field));
    let timestamp = e.take("timestamp", optional(o.get("timestamp"), datetime));
    let user = e.take("user", optional(o.get("user"), |v| bounded_string(v, 512)));
    let message = e.take("message", optional(o.get("message"), mapping));
    let edited = e.take(
        "edited",
        with_default(o.get("edited"), Timestamp::now, datetime),
    );
    e.finish()?;
    let (Some(d), Some(uuid), Some(timestamp), Some(user), Some(message), Some(edited)) =
        (d, uuid, timestamp, user, message, edited)
    else {
        return Err(Fault::Crash);
    };
    Ok(EditCmd {
        pm_users: d.pm_users,
        exclude_users: d.exclude_users,
        channel: d.channel,
        no_history: d.no_history,
        uuid,
        timestamp,
        user,
        message,
        edited,
    })
}

/// `PATCH /message`. Not filtered: items without a target are echoed and do nothing.
pub fn edits(body: &Value) -> Result<Vec<EditCmd>, SchemaError> {
    load_many(body, edit_item)
}

fn delete_item(o: &Map<String, Value>) -> FieldResult<DeleteCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take("uuid", required(o.get("uuid"), uuid_field));
    e.finish()?;
    let (Some(d), Some(uuid)) = (d, uuid) else {
        return Err(Fault::Crash);
    };
    Ok(DeleteCmd {
        pm_users: d.pm_users,
        exclude_users: d.exclude_users,
        channel: d.channel,
        no_history: d.no_history,
        uuid,
    })
}

/// `DELETE /message`.
pub fn deletes(body: &Value) -> Result<Vec<DeleteCmd>, SchemaError> {
    load_many(body, delete_item)
}

/// `POST /channel_config`.
///
/// The view loads each value separately with `ChannelConfigSchema` and stops at the first
/// failure, so a 422 carries that one channel's errors, *not* nested under its name (§5.8).
/// A non-object body crashes (`.keys()` on a list). A `null` value leaves an existing
/// channel unchanged (the `None` arm of [`ChannelConfigCmd`]); any other non-object value is
/// `{"_schema": ["Invalid input type."]}`.
pub fn channel_config(body: &Value) -> Result<ChannelConfigCmd, SchemaError> {
    let Value::Object(o) = body else {
        return Err(SchemaError::Crash);
    };
    let mut out = Vec::with_capacity(o.len());
    for (name, v) in o {
        // A null value leaves an existing channel unchanged (observed on 0.7.1 by the
        // differential suite: `reconfigure_from_dict` is skipped for None).
        if v.is_null() {
            out.push((name.clone(), None));
            continue;
        }
        let cfg = channel_config_schema(v)?;
        out.push((name.clone(), Some(cfg)));
    }
    Ok(out)
}

/// `/info`: `None` = empty body (everything). A non-empty body must be an object with the
/// required `info` key; an array answers `{"_schema": ["Invalid type."]}` (observed; we give
/// every non-object body that answer).
pub fn info(body: Option<&Value>) -> Result<InfoResolution, SchemaError> {
    let Some(body) = body else {
        return Ok(InfoResolution::default());
    };
    let Value::Object(o) = body else {
        return Err(SchemaError::Invalid(schema_error(INVALID_TYPE)));
    };
    let mut e = Errors::default();
    let info = e.take("info", required(o.get("info"), info_schema));
    e.finish()?;
    info.ok_or(SchemaError::Crash)
}

/// `/disconnect`: the `conn_id` from the JSON body (POST) or the query string (others).
/// The view always builds `{"conn_id": <value or None>}`, so absent reads as null.
pub fn disconnect(conn_id: Option<&Value>) -> Result<Uuid, SchemaError> {
    let mut e = Errors::default();
    let id = e.take(
        "conn_id",
        required(Some(conn_id.unwrap_or(&Value::Null)), uuid_field),
    );
    e.finish()?;
    id.ok_or(SchemaError::Crash)
}

// ---------------------------------------------------------------------------------------------
// HTTP echoes

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

fn uuid_value(u: &Uuid) -> Value {
    Value::String(u.hyphenated().to_string())
}

fn delivery_echo(
    o: &mut Map<String, Value>,
    pm_users: &[String],
    exclude_users: &[String],
    channel: &Option<String>,
    no_history: bool,
    uuid: &Uuid,
) {
    o.insert("pm_users".into(), string_array(pm_users));
    o.insert("exclude_users".into(), string_array(exclude_users));
    o.insert(
        "channel".into(),
        channel.clone().map_or(Value::Null, Value::String),
    );
    o.insert("no_history".into(), Value::Bool(no_history));
    o.insert("uuid".into(), uuid_value(uuid));
}

/// The HTTP echo of an accepted `/message` item (key order of the real server).
pub fn message_echo(m: &MessageCmd) -> Value {
    let mut o = Map::with_capacity(9);
    delivery_echo(
        &mut o,
        &m.pm_users,
        &m.exclude_users,
        &m.channel,
        m.no_history,
        &m.uuid,
    );
    o.insert(
        "timestamp".into(),
        Value::String(m.timestamp.to_http_string()),
    );
    o.insert("user".into(), Value::String(m.user.clone()));
    if let Some(msg) = &m.message {
        o.insert("message".into(), Value::Object(msg.clone()));
    }
    o.insert("edited".into(), Value::Null);
    Value::Object(o)
}

/// The HTTP echo of a `PATCH /message` item.
pub fn edit_echo(m: &EditCmd) -> Value {
    let mut o = Map::with_capacity(9);
    delivery_echo(
        &mut o,
        &m.pm_users,
        &m.exclude_users,
        &m.channel,
        m.no_history,
        &m.uuid,
    );
    if let Some(t) = &m.timestamp {
        o.insert("timestamp".into(), Value::String(t.to_http_string()));
    }
    if let Some(u) = &m.user {
        o.insert("user".into(), Value::String(u.clone()));
    }
    if let Some(msg) = &m.message {
        o.insert("message".into(), Value::Object(msg.clone()));
    }
    o.insert("edited".into(), Value::String(m.edited.to_http_string()));
    Value::Object(o)
}

/// The HTTP echo of a `DELETE /message` item.
pub fn delete_echo(m: &DeleteCmd) -> Value {
    let mut o = Map::with_capacity(5);
    delivery_echo(
        &mut o,
        &m.pm_users,
        &m.exclude_users,
        &m.channel,
        m.no_history,
        &m.uuid,
    );
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channelstream::api::pyjson::{to_string_compact, to_string_pretty};
    use chrono::{NaiveDateTime, Utc};

    const ALICE_CONN: &str = "11111111-2222-3333-4444-555555555555";

    fn j(src: &str) -> Value {
        serde_json::from_str(src).unwrap_or_else(|e| Value::String(format!("BAD JSON {e}")))
    }

    /// Render an outcome the way the tables below spell it: the 422 body as Python's
    /// one-line `json.dumps`, `CRASH`, or `OK`.
    fn outcome<T>(r: Result<T, SchemaError>) -> String {
        match r {
            Ok(_) => "OK".into(),
            Err(SchemaError::Invalid(v)) => to_string_compact(&v),
            Err(SchemaError::Crash) => "CRASH".into(),
        }
    }

    fn known_conn(id: &Uuid) -> bool {
        id.hyphenated().to_string() == ALICE_CONN
    }

    fn known_user(u: &str) -> bool {
        u == "bob" || u == "alice"
    }

    fn check(table: &[(&str, &str)], f: impl Fn(&Value) -> String) {
        for (input, want) in table {
            assert_eq!(f(&j(input)), *want, "input {input}");
        }
    }

    // -- §5.1 /connect ---------------------------------------------------------------------

    #[test]
    fn connect_observed_errors() {
        check(
            &[
                (
                    "{}",
                    r#"{"username": ["Missing data for required field."]}"#,
                ),
                (
                    r#"{"username": ""}"#,
                    r#"{"username": ["Length must be between 1 and 512."]}"#,
                ),
                (
                    r#"{"username":"x","conn_id":"not-a-uuid","channels":"notalist"}"#,
                    r#"{"conn_id": ["Not a valid UUID."], "channels": ["Not a valid list."]}"#,
                ),
                (
                    r#"{"username":"x","user_state":{"a":{"nested":1}},"fresh_user_state":[1]}"#,
                    r#"{"fresh_user_state": ["Not a valid mapping type."], "user_state": {"a": {"value": ["Value is not type of string, integer, boolean or float."]}}}"#,
                ),
                (
                    r#"{"username":"x","channel_configs":{"c":{"history_size":-1,"notify_presence":"maybe"}}}"#,
                    r#"{"channel_configs": {"c": {"value": {"notify_presence": ["Not a valid boolean."], "history_size": ["Must be at least 0."]}}}}"#,
                ),
                (
                    r#"{"username":"x","info":{"channels":[""],"include_history":"x"},"state_public_keys":[1]}"#,
                    r#"{"state_public_keys": {"0": ["Not a valid string."]}, "info": {"include_history": ["Not a valid boolean."], "channels": {"0": ["Length must be between 1 and 256."]}}}"#,
                ),
                ("[1, 2]", r#"{"_schema": ["Invalid input type."]}"#),
                ("null", r#"{"_schema": ["Invalid input type."]}"#),
                ("\"x\"", r#"{"_schema": ["Invalid input type."]}"#),
                // Beyond the observed ones: nulls, nested non-objects, over-long names.
                (
                    r#"{"username":null,"conn_id":null,"channels":[null, "ok", 5]}"#,
                    r#"{"username": ["Field may not be null."], "conn_id": ["Field may not be null."], "channels": {"0": ["Field may not be null."], "2": ["Not a valid string."]}}"#,
                ),
                (
                    r#"{"username":"x","info":"all","channel_configs":{"a":null,"b":5,"c":{}}}"#,
                    r#"{"channel_configs": {"a": {"value": ["Field may not be null."]}, "b": {"value": {"_schema": ["Invalid input type."]}}}, "info": {"_schema": ["Invalid input type."]}}"#,
                ),
                (
                    r#"{"username":"x","info":{"channels":null,"exclude_channels":[1]}}"#,
                    r#"{"info": {"channels": ["Field may not be null."], "exclude_channels": {"0": ["Not a valid string."]}}}"#,
                ),
                (
                    r#"{"username":"x","channel_configs":{"c":{"history_size":1e999}}}"#,
                    "CRASH",
                ),
            ],
            |v| outcome(connect(v)),
        );
        let long = format!(r#"{{"username": "{}"}}"#, "\u{e9}".repeat(512));
        assert_eq!(outcome(connect(&j(&long))), "OK", "512 code points fit");
        let too_long = format!(r#"{{"username": "{}"}}"#, "a".repeat(513));
        assert_eq!(
            outcome(connect(&j(&too_long))),
            r#"{"username": ["Length must be between 1 and 512."]}"#
        );
    }

    #[test]
    fn connect_defaults_and_values() {
        let Ok(c) = connect(&j(r#"{"username": "alice", "type": "dropped"}"#)) else {
            panic!("minimal connect must load");
        };
        assert_eq!(c.username, "alice");
        assert_eq!(c.conn_id.get_version_num(), 4, "fresh uuid4");
        assert!(c.channels.is_empty() && c.state_public_keys.is_empty());
        assert!(c.fresh_user_state.is_empty() && c.user_state.is_empty());
        assert!(c.channel_configs.is_empty());
        assert_eq!(c.info, InfoResolution::default());

        let body = j(r#"{
            "username": "gina", "conn_id": "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}",
            "channels": ["room", "b_chan"], "state_public_keys": ["a", "c"],
            "fresh_user_state": {"a": 1.5, "b": true, "c": null, "s": "x", "big": 1e999},
            "user_state": {"z": 1},
            "channel_configs": {"room": {"history_size": "5", "notify_presence": 1,
                                         "salvageable": true}},
            "info": {"include_history": "f", "channels": [], "return_public_state": 1.0}
        }"#);
        let Ok(c) = connect(&body) else {
            panic!("full connect must load");
        };
        assert_eq!(
            c.conn_id.hyphenated().to_string(),
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        );
        assert_eq!(c.channels, ["room", "b_chan"], "request order kept");
        assert_eq!(
            to_string_compact(&Value::Object(c.fresh_user_state)),
            r#"{"a": 1.5, "b": true, "c": null, "s": "x", "big": Infinity}"#
        );
        assert_eq!(
            c.channel_configs,
            vec![(
                "room".to_string(),
                ChannelConfig {
                    notify_presence: true,
                    history_size: 5,
                    ..ChannelConfig::default()
                }
            )]
        );
        assert!(!c.info.include_history && c.info.include_users);
        assert_eq!(c.info.channels, Some(vec![]));
        assert!(c.info.return_public_state && !c.info.include_connections);
    }

    // -- §5.2/5.3 /subscribe, /unsubscribe ---------------------------------------------------

    #[test]
    fn subscribe_observed_errors() {
        check(
            &[
                (
                    "{}",
                    r#"{"conn_id": ["Field may not be null."], "channels": ["Missing data for required field."]}"#,
                ),
                (
                    r#"{"conn_id": "00000000-0000-0000-0000-000000000001", "channels": []}"#,
                    r#"{"conn_id": ["Unknown connection"], "channels": ["Shorter than minimum length 1."]}"#,
                ),
                (
                    r#"{"conn_id": "nope", "channels": [""], "info": 1}"#,
                    r#"{"conn_id": ["Not a valid UUID."], "channels": {"0": ["Length must be between 1 and 256."]}, "info": {"_schema": ["Invalid input type."]}}"#,
                ),
                ("[1]", "CRASH"),
                ("null", "CRASH"),
                ("\"x\"", "CRASH"),
            ],
            |v| outcome(subscribe(v, None, &known_conn)),
        );
        check(&[("[1]", "CRASH")], |v| {
            outcome(unsubscribe(v, None, &known_conn))
        });
    }

    #[test]
    fn subscribe_conn_id_from_query() {
        let body = j(r#"{"channels": ["room"], "channel_configs": {"room": {}}}"#);
        let Ok(s) = subscribe(&body, Some(ALICE_CONN), &known_conn) else {
            panic!("query conn_id must be used");
        };
        assert_eq!(s.conn_id.hyphenated().to_string(), ALICE_CONN);
        assert_eq!(s.channels, ["room"]);
        assert_eq!(
            s.channel_configs,
            vec![("room".to_string(), ChannelConfig::default())]
        );
        // A body key wins over the query, even when null (`dict.setdefault`).
        let null_body = j(r#"{"conn_id": null, "channels": ["room"]}"#);
        assert_eq!(
            outcome(subscribe(&null_body, Some(ALICE_CONN), &known_conn)),
            r#"{"conn_id": ["Field may not be null."]}"#
        );
        assert_eq!(
            outcome(unsubscribe(&body, Some("bad"), &known_conn)),
            r#"{"conn_id": ["Not a valid UUID."]}"#
        );
        // Upper case / no hyphens still name the same connection.
        let upper = j(r#"{"conn_id": "111111112222333344445555555555555", "channels": ["a"]}"#);
        assert_eq!(
            outcome(subscribe(&upper, None, &known_conn)),
            r#"{"conn_id": ["Not a valid UUID."]}"#,
            "33 hex digits"
        );
        let upper = j(r#"{"conn_id": "11111111222233334444555555555555", "channels": ["a"]}"#);
        assert_eq!(outcome(subscribe(&upper, None, &known_conn)), "OK");
    }

    // -- §5.4 /user_state ----------------------------------------------------------------------

    #[test]
    fn user_state_observed_errors() {
        check(
            &[
                ("{}", r#"{"user": ["Missing data for required field."]}"#),
                (r#"{"user":"nobody"}"#, r#"{"user": ["Unknown user"]}"#),
                (
                    r#"{"user":"bob","user_state":{"x":[1]}}"#,
                    r#"{"user_state": {"x": {"value": ["Value is not type of string, integer, boolean or float."]}}}"#,
                ),
                ("[1]", r#"{"_schema": ["Invalid input type."]}"#),
                (
                    r#"{"user":""}"#,
                    r#"{"user": ["Length must be between 1 and 512.", "Unknown user"]}"#,
                ),
                (
                    r#"{"user":5,"user_state":null,"state_public_keys":"a"}"#,
                    r#"{"user": ["Not a valid string."], "user_state": ["Field may not be null."], "state_public_keys": ["Not a valid list."]}"#,
                ),
            ],
            |v| outcome(user_state(v, &known_user)),
        );
    }

    #[test]
    fn user_state_values() {
        let ok = |src: &str| match user_state(&j(src), &known_user) {
            Ok(c) => c,
            Err(e) => panic!("{src}: {e:?}"),
        };
        let c = ok(r#"{"user": "bob", "user_state": {"status": "busy", "hidden": 5, "n": null}}"#);
        assert_eq!(c.user, "bob");
        assert_eq!(
            to_string_compact(&Value::Object(c.user_state)),
            r#"{"status": "busy", "hidden": 5, "n": null}"#
        );
        assert_eq!(c.state_public_keys, None);
        assert_eq!(
            ok(r#"{"user": "bob", "state_public_keys": null}"#).state_public_keys,
            None
        );
        assert_eq!(
            ok(r#"{"user": "bob", "state_public_keys": []}"#).state_public_keys,
            Some(vec![])
        );
        assert_eq!(
            ok(r#"{"user": "bob", "state_public_keys": ["status"]}"#).state_public_keys,
            Some(vec!["status".to_string()])
        );
    }

    // -- §5.5 POST /message --------------------------------------------------------------------

    #[test]
    fn messages_observed_errors() {
        check(
            &[
                ("{}", r#"{"_schema": ["Invalid input type."]}"#),
                ("null", r#"{"_schema": ["Invalid input type."]}"#),
                ("\"abc\"", r#"{"_schema": ["Invalid input type."]}"#),
                (
                    r#"[{"channel":"room"}]"#,
                    r#"{"0": {"user": ["Missing data for required field."]}}"#,
                ),
                (
                    r#"[{"user":"x","channel":"room","message":"not-a-dict","uuid":"zzz","timestamp":"yesterday"}]"#,
                    r#"{"0": {"uuid": ["Not a valid UUID."], "timestamp": ["Not a valid datetime."], "message": ["Not a valid mapping type."]}}"#,
                ),
                (
                    r#"[{"user":"x","channel":"room","pm_users":null,"message":null}]"#,
                    r#"{"0": {"pm_users": ["Field may not be null."], "message": ["Field may not be null."]}}"#,
                ),
                (
                    r#"[{"user":"x","channel":""}]"#,
                    r#"{"0": {"channel": ["Length must be between 1 and 256."]}}"#,
                ),
                (
                    r#"[{"user":123,"channel":"room"}]"#,
                    r#"{"0": {"user": ["Not a valid string."]}}"#,
                ),
                // One invalid item rejects the batch; indices are the item positions.
                (
                    r#"[{"user":"a","channel":"room"},{"user":"b","no_history":"maybe","pm_users":[""]}]"#,
                    r#"{"1": {"pm_users": {"0": ["Length must be between 1 and 512."]}, "no_history": ["Not a valid boolean."]}}"#,
                ),
                // marshmallow 2 quirk: non-object items leave `{}` and a top-level `_schema`.
                ("[1]", r#"{"0": {}, "_schema": ["Invalid input type."]}"#),
                (
                    r#"[{"channel":"c"}, 1, {}, null]"#,
                    r#"{"0": {"user": ["Missing data for required field."]}, "1": {}, "_schema": ["Invalid input type.", "Invalid input type."], "2": {"user": ["Missing data for required field."]}, "3": {}}"#,
                ),
                ("[]", "OK"),
                (
                    r#"[{"user":"x","timestamp":"2020-13-01T00:00","uuid":5,"edited":"x"}]"#,
                    r#"{"0": {"uuid": ["Not a valid UUID."], "timestamp": ["Not a valid datetime."]}}"#,
                ),
            ],
            |v| outcome(messages(v)),
        );
    }

    /// §13.3: nine items, item 6 (no target) dropped, echo shapes and timestamps.
    #[test]
    fn messages_batch_of_nine() {
        let body = j(r#"[
            {"type": "message", "user": "alice", "channel": "room", "message": {"text": "hello room"}},
            {"user": "system", "channel": "room", "pm_users": ["alice"], "message": {"text": "pm inside room for alice"}},
            {"user": "system", "channel": "room", "exclude_users": ["alice"], "message": {"text": "not for alice"}},
            {"user": "system", "channel": "room", "no_history": true, "message": {"text": "not stored"}},
            {"user": "system", "pm_users": ["alice", "ghost"], "message": {"text": "global pm"}},
            {"user": "system", "pm_users": [], "extra_field": 1, "message": {"text": "nowhere"}},
            {"user": "system", "channel": "no_such_channel", "message": {"text": "unknown channel"}},
            {"user": "system", "channel": "room", "uuid": "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
             "timestamp": "2020-01-02T03:04:05Z", "message": {"text": "client uuid+timestamp"}},
            {"user": "system", "channel": "room"}
        ]"#);
        let before = Utc::now().naive_utc();
        let Ok(ms) = messages(&body) else {
            panic!("batch must load");
        };
        assert_eq!(ms.len(), 8);
        assert!(ms.iter().all(|m| m
            .message
            .as_ref()
            .map(|p| p.get("text") != Some(&Value::String("nowhere".into())))
            .unwrap_or(true)));
        let pm = &ms[4];
        assert_eq!(pm.channel, None);
        assert_eq!(pm.pm_users, ["alice", "ghost"]);
        assert!(ms[3].no_history);
        let client = &ms[6];
        assert_eq!(
            client.uuid.hyphenated().to_string(),
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        );
        assert_eq!(
            client.timestamp.to_http_string(),
            "2020-01-02T03:04:05+00:00"
        );
        assert_eq!(client.timestamp.to_socket_string(), "2020-01-02T03:04:05Z");
        assert_eq!(ms[7].message, None);
        // Server-made defaults: fresh uuid4s and naive UTC "now".
        match &ms[0].timestamp {
            Timestamp::Naive(t) => {
                assert!(*t >= before - chrono::Duration::seconds(1));
                assert!(*t <= Utc::now().naive_utc());
            }
            other => panic!("default timestamp must be naive, got {other:?}"),
        }
        assert_ne!(ms[0].uuid, ms[1].uuid);
        assert_eq!(ms[0].uuid.get_version_num(), 4);

        let echo = to_string_compact(&message_echo(client));
        assert_eq!(
            echo,
            r#"{"pm_users": [], "exclude_users": [], "channel": "room", "no_history": false, "uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "timestamp": "2020-01-02T03:04:05+00:00", "user": "system", "message": {"text": "client uuid+timestamp"}, "edited": null}"#
        );
        let no_msg = to_string_compact(&message_echo(&ms[7]));
        assert!(
            no_msg.contains(r#""user": "system", "edited": null}"#),
            "{no_msg}"
        );
    }

    #[test]
    fn message_echo_matches_the_spec_body() {
        let naive =
            NaiveDateTime::parse_from_str("2026-11-22T13:59:11.630535", "%Y-%m-%dT%H:%M:%S%.f");
        let Ok(naive) = naive else {
            panic!("test timestamp");
        };
        let body = j(r#"[{"user": "alice", "channel": "room",
                          "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb",
                          "message": {"text": "hello room"}}]"#);
        let Ok(mut ms) = messages(&body) else {
            panic!("must load");
        };
        ms[0].timestamp = Timestamp::Naive(naive);
        let echo = Value::Array(ms.iter().map(message_echo).collect());
        assert_eq!(
            to_string_pretty(&echo),
            r#"[
    {
        "pm_users": [],
        "exclude_users": [],
        "channel": "room",
        "no_history": false,
        "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb",
        "timestamp": "2026-11-22T13:59:11.630535",
        "user": "alice",
        "message": {
            "text": "hello room"
        },
        "edited": null
    }
]"#
        );
    }

    // -- §5.6 PATCH /message, §5.7 DELETE /message ---------------------------------------------

    #[test]
    fn edits_observed() {
        check(
            &[
                (
                    r#"[{"channel":"room"}]"#,
                    r#"{"0": {"uuid": ["Missing data for required field."]}}"#,
                ),
                ("{}", r#"{"_schema": ["Invalid input type."]}"#),
                (
                    r#"[{"uuid":"00000000-0000-0000-0000-0000000000aa","timestamp":null,"user":"","message":[],"edited":"no"}]"#,
                    r#"{"0": {"timestamp": ["Field may not be null."], "user": ["Length must be between 1 and 512."], "message": ["Not a valid mapping type."], "edited": ["Not a valid datetime."]}}"#,
                ),
                // Not filtered: no target is fine for PATCH.
                (r#"[{"uuid":"00000000-0000-0000-0000-0000000000aa"}]"#, "OK"),
            ],
            |v| outcome(edits(v)),
        );
        let body = j(
            r#"[{"channel": "he", "uuid": "00000000-0000-0000-0000-0000000000AA",
                          "message": {"t": "new", "extra": 1}, "timestamp": "2021-05-05T05:05:05Z"},
                         {"uuid": "7b6e3118-0000-4000-8000-000000000000", "user": "alice2",
                          "message": {"text": "hello room (edited)"},
                          "edited": "2011-01-01T00:00:01"}]"#,
        );
        let Ok(es) = edits(&body) else {
            panic!("edits must load");
        };
        assert_eq!(
            to_string_compact(&edit_echo(&es[0]))
                .split(r#", "edited": "#)
                .next(),
            Some(
                r#"{"pm_users": [], "exclude_users": [], "channel": "he", "no_history": false, "uuid": "00000000-0000-0000-0000-0000000000aa", "timestamp": "2021-05-05T05:05:05+00:00", "message": {"t": "new", "extra": 1}"#
            )
        );
        assert!(
            matches!(es[0].edited, Timestamp::Naive(_)),
            "default edited is now"
        );
        assert_eq!(
            to_string_compact(&edit_echo(&es[1])),
            r#"{"pm_users": [], "exclude_users": [], "channel": null, "no_history": false, "uuid": "7b6e3118-0000-4000-8000-000000000000", "user": "alice2", "message": {"text": "hello room (edited)"}, "edited": "2011-01-01T00:00:01"}"#
        );
    }

    #[test]
    fn deletes_observed() {
        check(
            &[
                ("[]", "OK"),
                (
                    "[{}]",
                    r#"{"0": {"uuid": ["Missing data for required field."]}}"#,
                ),
                (
                    r#"{"uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb"}"#,
                    r#"{"_schema": ["Invalid input type."]}"#,
                ),
                (
                    r#"[{"uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb", "exclude_users": "x", "timestamp": "ignored"}]"#,
                    r#"{"0": {"exclude_users": ["Not a valid list."]}}"#,
                ),
            ],
            |v| outcome(deletes(v)),
        );
        let body = j(
            r#"[{"channel": "room", "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb", "user": "x"}]"#,
        );
        let Ok(ds) = deletes(&body) else {
            panic!("delete must load");
        };
        assert_eq!(
            to_string_compact(&Value::Array(ds.iter().map(delete_echo).collect())),
            r#"[{"pm_users": [], "exclude_users": [], "channel": "room", "no_history": false, "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb"}]"#
        );
    }

    // -- §5.8 /channel_config --------------------------------------------------------------------

    #[test]
    fn channel_config_observed() {
        check(
            &[
                (
                    r#"{"room": {"history_size": "big"}}"#,
                    r#"{"history_size": ["Not a valid integer."]}"#,
                ),
                (
                    r#"{"c9":{"history_size":null}}"#,
                    r#"{"history_size": ["Field may not be null."]}"#,
                ),
                ("{}", "OK"),
                ("[]", "CRASH"),
                ("[{\"a\": {}}]", "CRASH"),
                ("null", "CRASH"),
                // Only the first failing channel is reported.
                (
                    r#"{"ok": {}, "a": {"store_frames": 2}, "b": {"notify_state": "x"}}"#,
                    r#"{"store_frames": ["Not a valid boolean."]}"#,
                ),
                // Observed on the real server: null leaves the channel as it is.
                (r#"{"a": null}"#, "OK"),
                (r#"{"a": [1]}"#, r#"{"_schema": ["Invalid input type."]}"#),
                (r#"{"a": {"history_size": 1e999}}"#, "CRASH"),
                (
                    r#"{"a": {"history_size": "bad"}, "b": {"history_size": 1e999}}"#,
                    r#"{"history_size": ["Not a valid integer."]}"#,
                ),
            ],
            |v| outcome(channel_config(v)),
        );
        let Ok(cfg) = channel_config(&j(
            r#"{"room": {"history_size": 5, "salvageable": true}, "brand_new": {"notify_presence": "t"}}"#,
        )) else {
            panic!("must load");
        };
        assert_eq!(
            cfg,
            vec![
                (
                    "room".to_string(),
                    Some(ChannelConfig {
                        history_size: 5,
                        ..ChannelConfig::default()
                    })
                ),
                (
                    "brand_new".to_string(),
                    Some(ChannelConfig {
                        notify_presence: true,
                        ..ChannelConfig::default()
                    })
                ),
            ]
        );
    }

    #[test]
    fn history_size_is_python_int() {
        let size = |src: &str| -> String {
            let body = j(&format!(r#"{{"c": {{"history_size": {src}}}}}"#));
            match channel_config(&body) {
                Ok(v) => match v.first() {
                    Some((_, Some(c))) => c.history_size.to_string(),
                    _ => "?".into(),
                },
                Err(e) => outcome::<()>(Err(e)),
            }
        };
        let table: &[(&str, &str)] = &[
            ("0", "0"),
            ("-0", "0"),
            ("5", "5"),
            ("\"5\"", "5"),
            ("\" 7 \"", "7"),
            ("\"+3\"", "3"),
            ("\"1_000\"", "1000"),
            ("5.7", "5"),
            ("-0.5", "0"),
            ("true", "1"),
            ("false", "0"),
            ("1e30", "18446744073709551615"),
            ("123456789012345678901234567890", "18446744073709551615"),
            ("-1", r#"{"history_size": ["Must be at least 0."]}"#),
            ("\"-1\"", r#"{"history_size": ["Must be at least 0."]}"#),
            ("-1.5", r#"{"history_size": ["Must be at least 0."]}"#),
            ("\"5.0\"", r#"{"history_size": ["Not a valid integer."]}"#),
            ("\"\"", r#"{"history_size": ["Not a valid integer."]}"#),
            ("\"0x10\"", r#"{"history_size": ["Not a valid integer."]}"#),
            ("\"1__0\"", r#"{"history_size": ["Not a valid integer."]}"#),
            ("[1]", r#"{"history_size": ["Not a valid integer."]}"#),
            ("{}", r#"{"history_size": ["Not a valid integer."]}"#),
            ("1e999", "CRASH"),
        ];
        for (src, want) in table {
            assert_eq!(size(src), *want, "history_size {src}");
        }
    }

    // -- §5.9 /info ------------------------------------------------------------------------------

    #[test]
    fn info_observed() {
        assert_eq!(info(None), Ok(InfoResolution::default()));
        check(
            &[
                ("{}", r#"{"info": ["Missing data for required field."]}"#),
                (
                    r#"{"info": {"channels": "room"}}"#,
                    r#"{"info": {"channels": ["Not a valid list."]}}"#,
                ),
                ("[]", r#"{"_schema": ["Invalid type."]}"#),
                ("[{\"info\": {}}]", r#"{"_schema": ["Invalid type."]}"#),
                (
                    r#"{"info": null}"#,
                    r#"{"info": ["Field may not be null."]}"#,
                ),
                (
                    r#"{"info": []}"#,
                    r#"{"info": {"_schema": ["Invalid input type."]}}"#,
                ),
            ],
            |v| outcome(info(Some(v))),
        );
        let body = j(
            r#"{"info": {"channels": ["room", "b"], "exclude_channels": ["b"],
                                   "include_users": 0, "include_connections": "True"}}"#,
        );
        assert_eq!(
            info(Some(&body)),
            Ok(InfoResolution {
                include_history: true,
                include_users: false,
                channels: Some(vec!["room".into(), "b".into()]),
                exclude_channels: vec!["b".into()],
                include_connections: true,
                return_public_state: false,
            })
        );
        assert_eq!(
            info(Some(&j(r#"{"info": {}}"#))),
            Ok(InfoResolution::default())
        );
    }

    // -- §5.12 /disconnect -----------------------------------------------------------------------

    #[test]
    fn disconnect_observed() {
        let null = r#"{"conn_id": ["Field may not be null."]}"#;
        assert_eq!(outcome(disconnect(None)), null);
        assert_eq!(outcome(disconnect(Some(&Value::Null))), null);
        assert_eq!(
            outcome(disconnect(Some(&j("\"not-a-uuid\"")))),
            r#"{"conn_id": ["Not a valid UUID."]}"#
        );
        assert_eq!(
            outcome(disconnect(Some(&j("5")))),
            r#"{"conn_id": ["Not a valid UUID."]}"#
        );
        assert_eq!(
            disconnect(Some(&j(&format!("\"urn:uuid:{ALICE_CONN}\""))))
                .map(|u| u.hyphenated().to_string()),
            Ok(ALICE_CONN.to_string())
        );
    }

    // -- coercion tables -------------------------------------------------------------------------

    #[test]
    fn boolean_table() {
        let t = |src: &str| match boolean(&j(src)) {
            Ok(b) => b.to_string(),
            Err(_) => "invalid".into(),
        };
        for src in [
            "true", "\"t\"", "\"T\"", "\"true\"", "\"True\"", "\"TRUE\"", "\"1\"", "1", "1.0",
            "1e0", "10e-1",
        ] {
            assert_eq!(t(src), "true", "{src}");
        }
        for src in [
            "false",
            "\"f\"",
            "\"F\"",
            "\"false\"",
            "\"False\"",
            "\"FALSE\"",
            "\"0\"",
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e5",
        ] {
            assert_eq!(t(src), "false", "{src}");
        }
        for src in [
            "\"yes\"",
            "\"maybe\"",
            "\"\"",
            "\"tRUE\"",
            "\"on\"",
            "2",
            "-1",
            "0.5",
            "[]",
            "{}",
            "[true]",
            "\" true\"",
        ] {
            assert_eq!(t(src), "invalid", "{src}");
        }
    }

    #[test]
    fn uuid_table() {
        let t = |s: &str| parse_py_uuid(s).map(|u| u.hyphenated().to_string());
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

    #[test]
    fn datetime_table() {
        let t = |s: &str| parse_py_datetime(s).map(|t| t.to_http_string());
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
            parse_py_datetime("2020-01-02T03:04:05Z").map(|t| t.to_socket_string()),
            Some("2020-01-02T03:04:05Z".to_string())
        );
    }

    /// Compare the coercions with real Python (`int`, `uuid.UUID`, marshmallow's regex plus
    /// dateutil, Boolean's sets) when python3 (and dateutil) are installed.
    #[test]
    fn coercions_cross_check_with_python() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let script = r#"
import json, sys, re, uuid
try:
    from dateutil import parser
except ImportError:
    sys.exit(3)
R = re.compile(r'^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,6}\d{0,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$')
truthy = set(('t', 'T', 'true', 'True', 'TRUE', '1', 1, True))
falsy = set(('f', 'F', 'false', 'False', 'FALSE', '0', 0, 0.0, False))
out = []
for kind, v in json.load(sys.stdin):
    try:
        if kind == 'uuid':
            r = str(uuid.UUID(v))
        elif kind == 'int':
            r = str(int(v))
        elif kind == 'dt':
            if not v or not R.match(v):
                raise ValueError(v)
            r = parser.parse(v).isoformat()
        else:
            try:
                r = 'true' if v in truthy else 'false' if v in falsy else 'invalid'
            except TypeError:
                r = 'invalid'
    except (ValueError, TypeError, AttributeError):
        r = 'invalid'
    except OverflowError:
        r = 'crash'
    out.append(r)
print(json.dumps(out))
"#;
        let cases = r#"[
            ["uuid", "12345678-1234-5678-1234-567812345678"], ["uuid", "{12345678123456781234567812345678}"],
            ["uuid", "URN:UUID:12345678123456781234567812345678"], ["uuid", "urn:uuid:12345678123456781234567812345678"],
            ["uuid", "uurn:uid:12345678123456781234567812345678"], ["uuid", "0x345678123456781234567812345678"],
            ["uuid", "0X_45678123456781234567812345678"], ["uuid", " 2345678123456781234567812345678"],
            ["uuid", "+2345678123456781234567812345678"], ["uuid", "-2345678123456781234567812345678"],
            ["uuid", "1234567_123456781234567812345678"], ["uuid", "1234567__23456781234567812345678"],
            ["uuid", "\u00a02345678123456781234567812345678"], ["uuid", "\u001c2345678123456781234567812345678"],
            ["uuid", "{}12345678123456781234567812345678{}"], ["uuid", "1234567812345678123456781234567"],
            ["uuid", "12345678-1234-5678-1234-5678123456789"], ["uuid", "g2345678123456781234567812345678"],
            ["uuid", 5], ["uuid", true], ["uuid", [1]], ["uuid", "ABCDEFABCDEFABCDEFABCDEFABCDEFAB"],
            ["int", "5"], ["int", " 5 "], ["int", "+5"], ["int", "-5"], ["int", "5_000"], ["int", "_5"],
            ["int", "5_"], ["int", "5__0"], ["int", "0x10"], ["int", "5.0"], ["int", ""], ["int", " "],
            ["int", "1e3"], ["int", "\t7\n"], ["int", "00012"], ["int", "-0"], ["int", "\u001c5"],
            ["int", "\u00a05\u2003"], ["int", "- 5"], ["int", "12345678901234567890"],
            ["int", true], ["int", false], ["int", 5.7], ["int", -5.7], ["int", -0.5], ["int", 1e30],
            ["int", 1e999], ["int", -1e999], ["int", [1]], ["int", {}], ["int", 0], ["int", -0], ["int", 42],
            ["bool", true], ["bool", false], ["bool", "t"], ["bool", "TRUE"], ["bool", "1"], ["bool", "0"],
            ["bool", "yes"], ["bool", "maybe"], ["bool", ""], ["bool", "on"], ["bool", 1], ["bool", 0],
            ["bool", -0], ["bool", 1.0], ["bool", 0.0], ["bool", -0.0], ["bool", 2], ["bool", -1],
            ["bool", 0.5], ["bool", 10e-1], ["bool", []], ["bool", {}], ["bool", "False"],
            ["dt", "2020-01-02T03:04:05Z"], ["dt", "2020-01-02T03:04:05+00:00"], ["dt", "2020-01-02T03:04:05-00:00"],
            ["dt", "2020-1-2T3:4"], ["dt", "2020-01-02 03:04:05.1234567+0530"], ["dt", "2020-01-02T03:04+05"],
            ["dt", "2020-01-02T03:04:05+05:99"], ["dt", "2020-01-02T03:04:05+24:00"], ["dt", "2020-01-02T03:04:05-23:59"],
            ["dt", "2020-01-02T03:04:05+23:60"], ["dt", "2020-02-30T00:00"], ["dt", "2019-02-29T00:00"],
            ["dt", "2020-02-29T00:00"], ["dt", "0000-01-01T00:00"], ["dt", "0001-01-01T00:00"],
            ["dt", "2020-01-01T24:00"], ["dt", "2020-01-01T00:60"], ["dt", "2020-01-01T00:00:60"],
            ["dt", "2020-01-01T00:00\n"], ["dt", "2020-01-01T00:00\n\n"], ["dt", "2020-13-01T00:00"],
            ["dt", "2020-00-10T00:00"], ["dt", "2020-10-00T00:00"], ["dt", "2020-12-11T10:09:08.999999999999"],
            ["dt", "2020-12-11T10:09:08.9999999999999"], ["dt", "2020-01-02"], ["dt", "2020-01-02T03"],
            ["dt", "2020-01-02T03:04:05."], ["dt", "2020-01-02t03:04"], ["dt", "2020-01-02  03:04"],
            ["dt", "2020-01-02T03:04:05+053"], ["dt", "2020-01-02T03:04:05 +05:00"], ["dt", "2020-01-02T03:04:05z"],
            ["dt", " 2020-01-02T03:04"], ["dt", "20200-01-02T03:04"], ["dt", "2020-01-02T03:04:05-0000"],
            ["dt", "9999-12-31T23:59:59.999999-23:59"], ["dt", "2020-01-02T03:04:05.1"], ["dt", ""],
            ["dt", "yesterday"], ["dt", "2020-01-02T3:4:5.000001+01"]
        ]"#;
        let Ok(mut child) = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("python3 not available: skipping the coercion cross-check");
            return;
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(cases.as_bytes());
        }
        let Ok(out) = child.wait_with_output() else {
            return;
        };
        if !out.status.success() {
            eprintln!("python3 without dateutil: skipping the coercion cross-check");
            return;
        }
        let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let Value::Array(cases) = j(cases) else {
            panic!("cases must parse");
        };
        assert_eq!(theirs.len(), cases.len());
        for (case, want) in cases.iter().zip(&theirs) {
            let (kind, v) = (&case[0], &case[1]);
            let ours = match kind.as_str().unwrap_or("") {
                "uuid" => match uuid_field(v) {
                    Ok(u) => u.hyphenated().to_string(),
                    Err(_) => "invalid".into(),
                },
                "int" => match integer(v) {
                    Ok((neg, m)) => format!("{}{m}", if neg { "-" } else { "" }),
                    Err(Fault::Crash) => "crash".into(),
                    Err(_) => "invalid".into(),
                },
                "dt" => match datetime(v) {
                    Ok(t) => t.to_http_string(),
                    Err(_) => "invalid".into(),
                },
                _ => match boolean(v) {
                    Ok(b) => b.to_string(),
                    Err(_) => "invalid".into(),
                },
            };
            assert_eq!(&ours, want, "case {case}");
        }
    }
}
