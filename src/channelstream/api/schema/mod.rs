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
//!
//! Layout: `engine` holds the marshmallow machinery, `endpoints` and `messages` the
//! schemas; Python value parsing (`int()`, `uuid.UUID`, dateutil) lives in [`crate::py`].

mod endpoints;
mod engine;
mod messages;
#[cfg(test)]
mod tests;

pub use crate::py::datetime::parse as parse_py_datetime;
pub use crate::py::uuid::parse as parse_py_uuid;
pub use endpoints::{
    channel_config, connect, disconnect, info, subscribe, unsubscribe, user_state,
};
pub use messages::{delete_echo, deletes, edit_echo, edits, message_echo, messages};
