//! Herald binary entry point.
fn main() {}
