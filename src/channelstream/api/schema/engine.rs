//! The marshmallow 2.18 machinery the schemas are built from: error texts, presence rules
//! (required, defaults, `allow_none`), the field types with their Python coercions, and error
//! collection in marshmallow's shapes (`{"field": ["msg"]}`, `"<index>"` for lists and
//! `many=True` bodies, `{"_schema": [...]}` for whole-body errors).

use crate::channelstream::api::types::*;
use crate::py::int::{self, PyInt};
use crate::py::number::{self, PyNum};
use crate::py::{datetime, uuid};
use ::uuid::Uuid;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Message texts (marshmallow 2.18 defaults and Channelstream's custom ones)

pub(super) const MISSING: &str = "Missing data for required field.";
pub(super) const NULL: &str = "Field may not be null.";
pub(super) const NOT_STRING: &str = "Not a valid string.";
pub(super) const NOT_BOOL: &str = "Not a valid boolean.";
pub(super) const NOT_INT: &str = "Not a valid integer.";
pub(super) const NOT_UUID: &str = "Not a valid UUID.";
pub(super) const NOT_LIST: &str = "Not a valid list.";
pub(super) const NOT_MAPPING: &str = "Not a valid mapping type.";
pub(super) const NOT_DATETIME: &str = "Not a valid datetime.";
pub(super) const INVALID_INPUT: &str = "Invalid input type.";
pub(super) const INVALID_TYPE: &str = "Invalid type.";
pub(super) const SHORTER_THAN_1: &str = "Shorter than minimum length 1.";
pub(super) const AT_LEAST_0: &str = "Must be at least 0.";
pub(super) const UNKNOWN_CONNECTION: &str = "Unknown connection";
pub(super) const UNKNOWN_USER: &str = "Unknown user";
pub(super) const BAD_STATE_VALUE: &str = "Value is not type of string, integer, boolean or float.";

/// Why one field (or nested schema) failed.
#[derive(Debug)]
pub(super) enum Fault {
    /// marshmallow messages: a list of strings, or an object for nested errors.
    Msg(Value),
    /// Python raises something marshmallow does not catch (the server answers 500).
    Crash,
}

pub(super) type FieldResult<T> = Result<T, Fault>;

impl From<Fault> for SchemaError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Msg(v) => SchemaError::Invalid(v),
            Fault::Crash => SchemaError::Crash,
        }
    }
}

pub(super) fn msgs(texts: &[&str]) -> Value {
    Value::Array(texts.iter().map(|t| Value::String((*t).into())).collect())
}

pub(super) fn fail<T>(text: &str) -> FieldResult<T> {
    Err(Fault::Msg(msgs(&[text])))
}

/// `{"_schema": [text]}`: the shape for a body (or nested value) of the wrong type.
pub(super) fn schema_error(text: &str) -> Value {
    let mut m = Map::new();
    m.insert("_schema".into(), msgs(&[text]));
    Value::Object(m)
}

/// The error store of one schema load: field name -> messages, in the order fields failed
/// (which is schema field order, since fields are loaded in that order).
#[derive(Default)]
pub(super) struct Errors {
    map: Map<String, Value>,
    crashed: bool,
}

impl Errors {
    /// Record the outcome of one field; `Some` only when it loaded.
    pub(super) fn take<T>(&mut self, field: &str, r: FieldResult<T>) -> Option<T> {
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

    pub(super) fn finish(self) -> FieldResult<()> {
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
pub(super) fn required<'a, T>(
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
pub(super) fn with_default<'a, T>(
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
pub(super) fn nullable<'a, T>(
    raw: Option<&'a Value>,
    load: impl FnOnce(&'a Value) -> FieldResult<T>,
) -> FieldResult<Option<T>> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(v) => load(v).map(Some),
    }
}

/// Neither required nor defaulted: absent stays absent, `null` is an error.
pub(super) fn optional<'a, T>(
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
pub(super) fn string(v: &Value) -> FieldResult<&str> {
    match v {
        Value::String(s) => Ok(s),
        _ => fail(NOT_STRING),
    }
}

/// `validate.Length(min=1, max=max)`; Python counts code points.
pub(super) fn length_error(s: &str, max: usize) -> Option<String> {
    let n = s.chars().count();
    (n < 1 || n > max).then(|| format!("Length must be between 1 and {max}."))
}

/// `fields.String(validate=Length(1, max))`.
pub(super) fn bounded_string(v: &Value, max: usize) -> FieldResult<String> {
    let s = string(v)?;
    match length_error(s, max) {
        Some(e) => fail(&e),
        None => Ok(s.to_owned()),
    }
}

/// `fields.List(container)`: every item is loaded; item errors are keyed by index and the
/// list's own validators only run when all items loaded.
pub(super) fn list<T>(v: &Value, item: impl Fn(&Value) -> FieldResult<T>) -> FieldResult<Vec<T>> {
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

pub(super) fn string_list(v: &Value, max: usize) -> FieldResult<Vec<String>> {
    list(v, |x| bounded_string(x, max))
}

/// `fields.Boolean`: Python `value in truthy` / `value in falsy`, where the sets hold
/// `'t','T','true','True','TRUE','1',1,True` and `'f','F','false','False','FALSE','0',0,0.0,
/// False`. Set membership uses hash equality, so `1.0` is truthy and `-0.0` falsy.
pub(super) fn boolean(v: &Value) -> FieldResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "t" | "T" | "true" | "True" | "TRUE" | "1" => Ok(true),
            "f" | "F" | "false" | "False" | "FALSE" | "0" => Ok(false),
            _ => fail(NOT_BOOL),
        },
        Value::Number(n) => match number::classify(n) {
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

/// `fields.Integer`: Python `int(v)`. `"5"` -> 5, `5.7` -> 5, `true` -> 1. `int(inf)` raises
/// `OverflowError`, which marshmallow 2.18 does not catch (0.7.1 answers 500); Herald answers
/// "Not a valid integer." as marshmallow does for `NaN` (a deliberate difference, README).
pub(super) fn integer(v: &Value) -> FieldResult<(bool, u128)> {
    match v {
        Value::Bool(b) => Ok((false, u128::from(*b))),
        Value::Number(n) => match number::classify(n) {
            PyNum::Int {
                negative,
                magnitude,
            } => Ok((negative, magnitude)),
            PyNum::Float(f) if !f.is_finite() => fail(NOT_INT),
            PyNum::Float(f) => {
                let t = f.trunc();
                // `as` saturates, which is all we need for huge magnitudes.
                Ok((t < 0.0, t.abs() as u128))
            }
        },
        Value::String(s) => match int::parse(s, 10) {
            Some(PyInt {
                negative,
                magnitude,
            }) => Ok((negative, magnitude)),
            None => fail(NOT_INT),
        },
        _ => fail(NOT_INT),
    }
}
/// `fields.UUID`: strings only (other types raise `AttributeError`, caught as invalid).
pub(super) fn uuid_field(v: &Value) -> FieldResult<Uuid> {
    match v {
        Value::String(s) => uuid::parse(s).map_or_else(|| fail(NOT_UUID), Ok),
        _ => fail(NOT_UUID),
    }
}
/// `fields.DateTime`: strings only (falsy or non-string values are invalid).
pub(super) fn datetime(v: &Value) -> FieldResult<Timestamp> {
    match v {
        Value::String(s) => datetime::parse(s).map_or_else(|| fail(NOT_DATETIME), Ok),
        _ => fail(NOT_DATETIME),
    }
}

/// `fields.Dict()` without value schema: any object, kept as given.
pub(super) fn mapping(v: &Value) -> FieldResult<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        _ => fail(NOT_MAPPING),
    }
}

/// `BackportedDict(values=UserStateField(allow_none=True))`: values must be null, bool,
/// number or string; failures are reported as `{"<key>": {"value": [...]}}`.
pub(super) fn state_map(v: &Value) -> FieldResult<StateMap> {
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

pub(super) fn value_error(m: Value) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), m);
    Value::Object(o)
}

/// A single-object body: anything else is `{"_schema": ["Invalid input type."]}`.
pub(super) fn body_object(body: &Value) -> Result<&Map<String, Value>, SchemaError> {
    body.as_object()
        .ok_or_else(|| SchemaError::Invalid(schema_error(INVALID_INPUT)))
}

/// A `many=True` body. A non-array (object, string, null, ...) is
/// `{"_schema": ["Invalid input type."]}`. Item errors go under `"<index>"`; a non-object item
/// is marshmallow 2's odd case: it leaves an empty `"<index>": {}` and appends to a
/// *top-level* `"_schema"` list.
pub(super) fn load_many<T>(
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
