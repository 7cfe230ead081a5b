//! JSON output byte-compatible with Python's `json.dumps(value, indent=4)` (ensure_ascii,
//! Python float repr, insertion-ordered keys), as Channelstream renders every body and frame.
//! STUB: owned by the pyjson/schema work; the signatures below are the contract.

use serde_json::Value;

/// `json.dumps(v, indent=4)`.
pub fn to_string_pretty(v: &Value) -> String {
    let mut out = Vec::new();
    write_pretty(v, 0, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Append `v` pretty-printed as if it were nested `level` deep (each line after the first is
/// indented by `4 * level` extra spaces). Used to render one message once and splice it into
/// both a websocket frame (`[\n    ITEM\n]`) and a long-poll body.
pub fn write_pretty(v: &Value, level: usize, out: &mut Vec<u8>) {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    let pad = " ".repeat(4 * level);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
            out.extend_from_slice(pad.as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
    }
}
