//! The one error type of the HTTP layer and its status code.
//!
//! Invariant: every error means "answer with [`HttpError::status`] and close"; none of them is
//! recoverable on the same connection because the framing of what follows is unknown.

/// Why a request could not be parsed; every variant means "answer and close".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Bad request syntax (400); the text says what was wrong.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The head exceeds `max_head_bytes` or `max_headers` (431).
    #[error("request header block too large")]
    HeaderTooLarge,
    /// The body exceeds `max_body_bytes` (413).
    #[error("request body too large")]
    BodyTooLarge,
    /// A transfer coding other than a lone `chunked` (e.g. `gzip, chunked`).
    #[error("unsupported transfer encoding")]
    UnsupportedTransferEncoding,
    /// A well-formed `HTTP/x.y` version that is not 1.0 or 1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
}

impl HttpError {
    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeaderTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::VersionNotSupported => 505,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses() {
        assert_eq!(HttpError::Malformed("x").status(), 400);
        assert_eq!(HttpError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
    }
}
