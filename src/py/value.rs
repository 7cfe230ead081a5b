//! Python semantics of the values `json.loads` produces: truthiness, iteration, `str()`,
//! `repr()` and `==`.
//!
//! Why: Channelstream decides with Python's rules. `make_config -j` keeps a setting when its
//! value is truthy and Jinja renders it with `str()` (lists with `repr()` of their items);
//! `user_state` reports a key as changed when the new value is not `==` the old one, and in
//! Python `1 == 1.0 == True`. Herald must make the same decisions and print the same text.

use super::{number, text};
use serde_json::Value;

/// `str(bool)`.
pub fn bool_repr(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python truthiness of a `json.loads` result.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// What a Python (or Jinja) `for` loop sees, each item as `str(item)`: list items, string
/// characters, dict keys; `None` for values Python cannot iterate (numbers, booleans, None).
pub fn iter_str(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(a.iter().map(str_of).collect()),
        Value::String(s) => Some(s.chars().map(String::from).collect()),
        Value::Object(o) => Some(o.keys().cloned().collect()),
        _ => None,
    }
}

/// `str(value)` of a `json.loads` result, as `{{ value }}` renders it.
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// `repr(value)` of a `json.loads` result (used for items inside lists and dicts).
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => bool_repr(*b).into(),
        Value::Number(n) => number::number_repr(n),
        Value::String(s) => text::repr_str(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}: {}", text::repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python equality for state values: `1 == 1.0 == True`, `0 == False`, strings by value.
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(_) | Value::Number(_), Value::Bool(_) | Value::Number(_)) => {
            match (num(a), num(b)) {
                (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
                (Some(Num::Float(x)), Some(Num::Float(y))) => x == y,
                (Some(Num::Int(i)), Some(Num::Float(f)))
                | (Some(Num::Float(f)), Some(Num::Int(i))) => {
                    // Python compares int and float exactly: only integral floats can match.
                    f.is_finite() && f.fract() == 0.0 && (f as i128) == i && (i as f64) == f
                }
                // Out-of-range integers: compare their text, as Python would compare values.
                _ => a == b,
            }
        }
        _ => a == b,
    }
}

enum Num {
    Int(i128),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Num::Int(i128::from(i)))
            } else if let Some(u) = n.as_u64() {
                Some(Num::Int(i128::from(u)))
            } else if is_integer_text(&n.to_string()) {
                None
            } else {
                n.as_f64().map(Num::Float)
            }
        }
        _ => None,
    }
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Checked against CPython 3.11.7 (`bool(v)`, `str(v)` of `json.loads` results).
    #[test]
    fn truthy_and_str_table() {
        let cases = [
            (json!(null), false, "None"),
            (json!(false), false, "False"),
            (json!(true), true, "True"),
            (json!(0), false, "0"),
            (json!(0.0), false, "0.0"),
            (json!(8001), true, "8001"),
            (json!(""), false, ""),
            (json!("x"), true, "x"),
            (json!([]), false, "[]"),
            (json!(["a", 1, null]), true, "['a', 1, None]"),
            (json!({}), false, "{}"),
            (json!({"k": [true, 1.5]}), true, "{'k': [True, 1.5]}"),
        ];
        for (v, t, s) in cases {
            assert_eq!(truthy(&v), t, "bool({v})");
            assert_eq!(str_of(&v), s, "str({v})");
        }
        assert_eq!(iter_str(&json!("ab")), Some(vec!["a".into(), "b".into()]));
        assert_eq!(iter_str(&json!(5)), None);
    }
}
