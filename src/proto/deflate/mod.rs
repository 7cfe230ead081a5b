//! permessage-deflate (RFC 7692): the `Sec-WebSocket-Extensions` negotiation ([`offer`]) and
//! the codec ([`codec`]).
//!
//! Why Herald negotiates it the way it does: a push server sends one message to many sockets,
//! so the expensive direction is server to client, and the one thing that must not grow with
//! the audience is the work per message. Herald therefore always answers
//! `server_no_context_takeover`: every message is compressed from an empty window, so the
//! compressed frame depends only on the message and the window size, and one frame (one `Bytes`)
//! serves every subscriber that negotiated that window ("shared compressor", as uWebSockets
//! calls it). It also always answers `client_no_context_takeover`: each client message inflates
//! on its own, so no connection keeps an inflater (~40 KiB) between messages. A connection's
//! deflate state is the two-byte [`Agreement`]; the compressors and the inflater belong to the
//! shard ([`Codec`]).
//!
//! Off by default (`--ws-deflate`): see README "Compression".

pub mod codec;
pub mod offer;

pub use codec::{deflate_frame, inflate_message, Codec, InflateError, LEVEL, TRAILER};
pub use offer::{negotiate, parse_extensions, Agreement, DeflateOffer, ExtError, Extension, Param};

/// Default for `--ws-deflate-min-bytes`: shorter messages go out uncompressed. Deflate's
/// block headers and Huffman tables make very short messages barely smaller (or larger), while
/// the client still pays an inflate per message.
pub const DEFAULT_MIN_BYTES: usize = 256;

/// The deflate settings of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Negotiate permessage-deflate with clients that offer it.
    pub enabled: bool,
    /// Server messages shorter than this are sent uncompressed.
    pub min_bytes: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: false,
            min_bytes: DEFAULT_MIN_BYTES,
        }
    }
}
