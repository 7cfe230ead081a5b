//! Ports of the Python behaviour Channelstream's observable output depends on.
//!
//! Why a module of its own: Herald is a drop-in replacement for a Python server, and clients
//! (and the differential suite) compare bytes. Wherever Channelstream's answer comes from a
//! Python builtin or library rather than from its own code (`int()`, `str.strip()`,
//! `float.__repr__`, `json.dumps`, `uuid.UUID`, dateutil, `==` between numbers, truthiness),
//! Herald needs a faithful port, and each such port lives here exactly once so the config
//! reader, the request schemas and the model cannot drift apart. Each function names the
//! Python it reproduces; tables in the tests were checked against CPython 3.11.
//!
//! * [`int`] - `int(str, base)`.
//! * [`text`] - `str.isspace()`, `str.strip()`, universal newlines, `repr(str)`.
//! * [`number`] - `int`/`float` classification of JSON numbers, `float.__repr__`.
//! * [`value`] - truthiness, `str()`, `repr()` and `==` of `json.loads` results.
//! * [`json`] - `json.dumps` (pretty and compact), byte for byte.
//! * [`uuid`] - `uuid.UUID(str)`.
//! * [`datetime`] - marshmallow 2's ISO-8601 regex plus dateutil.

pub mod datetime;
pub mod int;
pub mod json;
pub mod number;
pub mod text;
pub mod uuid;
pub mod value;
