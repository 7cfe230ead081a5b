//! Pure wire codecs: HTTP/1.1 request heads and bodies, RFC 6455 frames and the upgrade
//! handshake. Everything here works on byte slices, returns `Ok(None)` on incomplete input and
//! never touches a socket, so each parser has table tests, a fuzz target and a criterion bench.
pub mod deflate;
pub mod handshake;
pub mod http;
pub mod ws;
