//! Channelstream's `utils.set_config_types`: how a setting's string (from the ini file or a
//! `CHANNELSTREAM_*` variable) becomes a typed value.

use crate::py::int::{self, PyInt};
use crate::py::text;

/// `pyramid.settings.asbool`: anything outside the truthy set is false, never an error.
pub fn asbool(v: &str) -> bool {
    matches!(
        text::strip(v).to_lowercase().as_str(),
        "t" | "true" | "y" | "yes" | "on" | "1"
    )
}

/// `[s.strip() for s in v.split(",") if s.strip()]`: newlines from ini continuation lines are
/// whitespace, so multi-line values work.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(text::strip)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `getattr(logging, (v or "INFO").upper())`, restricted to the level names; returns the
/// canonical name (the aliases WARN and FATAL map to WARNING and CRITICAL).
pub fn parse_log_level(v: &str) -> Option<&'static str> {
    let v = text::strip(v);
    if v.is_empty() {
        return Some("INFO");
    }
    Some(match v.to_ascii_uppercase().as_str() {
        "DEBUG" => "DEBUG",
        "INFO" => "INFO",
        "WARNING" | "WARN" => "WARNING",
        "ERROR" => "ERROR",
        "CRITICAL" | "FATAL" => "CRITICAL",
        "NOTSET" => "NOTSET",
        _ => return None,
    })
}

/// `http_scheme`: exactly `http` or `https`, anything else silently becomes "" (Channelstream).
pub(super) fn filter_http_scheme(v: &str) -> String {
    match v {
        "http" | "https" => v.to_owned(),
        _ => String::new(),
    }
}

pub(super) fn new_cookie_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Python `int(v)` (see [`crate::py::int`]) as an `i128`; `None` when Python raises or the
/// value does not fit.
pub(super) fn py_int(v: &str) -> Option<i128> {
    int::parse(v, 10).and_then(PyInt::to_i128)
}
