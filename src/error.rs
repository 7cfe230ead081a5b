//! Why a connection is torn down: one enum, logged at trace level when a connection is reaped.
//!
//! Errors with a wire answer (an HTTP status, a websocket close code) are answered by the
//! connection before it closes (`proto::http::HttpError`, `proto::ws::CloseCode`); by the
//! time a connection is reaped only the transport-level reason is left.

/// The reason a connection is torn down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the TCP connection (EOF), or had half-closed and got its answer.
    PeerClosed,
    /// An I/O error on the socket.
    Io,
    /// A deadline passed: idle keep-alive, a closing peer that never reads, a lingering peer
    /// that never sends its EOF.
    Timeout,
    /// Server shutdown.
    Shutdown,
}
