//! The Channelstream REST surface: typed commands (`types`), request validation with
//! marshmallow-shaped 422 errors (`schema`), Python-compatible JSON output (`pyjson`) and the
//! route table (`router`). All pure; the shard feeds them bytes and applies their results.
pub mod pyjson;
pub mod router;
pub mod schema;
pub mod types;
