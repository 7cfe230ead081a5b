//! The Channelstream REST surface: typed commands (`types`), request validation with
//! marshmallow-shaped 422 errors (`schema`) and the route table (`router`); bodies are
//! rendered by `crate::py::json`. All pure: `front` feeds them bytes, and nothing here knows
//! the model.
pub mod router;
pub mod schema;
pub mod types;
