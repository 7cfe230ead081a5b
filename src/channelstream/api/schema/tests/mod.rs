//! Schema tests: tables of inputs with the outcome observed on Channelstream 0.7.1.

use super::endpoints::*;
use super::engine::*;
use super::messages::*;
use crate::channelstream::api::types::*;
use crate::py::json::{to_string_compact, to_string_pretty};
use chrono::{NaiveDateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

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

mod endpoints;
mod fields;
mod messages;
