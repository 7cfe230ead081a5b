//! Why a connection is closed: one enum, mapped to close codes, log lines and counters.

/// The reason a connection is torn down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the TCP connection.
    PeerClosed,
    /// An I/O error on the socket.
    Io,
    /// HTTP error response sent (status), then closed.
    HttpError(u16),
    /// Websocket protocol violation (close code sent).
    WsProtocol(u16),
    /// Completed websocket close handshake.
    WsClosed,
    /// Output queue passed its cap.
    SlowConsumer,
    /// Header / idle timeout.
    Timeout,
    /// The model asked to close it (GC, unknown conn_id).
    Model(u16),
    /// Server shutdown.
    Shutdown,
}
