//! The RFC 6455 opening handshake: validate an upgrade request, compute the accept key, and
//! the exact response bytes for success and for each failure.
//!
//! The checks live in [`validate_parts`], a pure function over the header values, so they can
//! be tested (and reasoned about) without an HTTP parser; [`validate`] only looks the headers
//! up. Compatibility choices, from Channelstream's ws4py: versions 13 and 8 are both accepted,
//! no subprotocol or Origin check, and the 101 response carries exactly the headers ws4py sends
//! (minus its `Date`), in its order.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::http::{Method, RequestHead};

/// The GUID appended to the client key before hashing (RFC 6455 §1.3).
pub const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a websocket upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not a `GET` HTTP/1.1 request with `Upgrade: websocket` and `Connection: upgrade` (426).
    #[error("not a websocket upgrade")]
    NotUpgrade,
    /// `Sec-WebSocket-Key` missing or not a base64 16-byte nonce (400).
    #[error("missing or invalid Sec-WebSocket-Key")]
    BadKey,
    /// `Sec-WebSocket-Version` missing or other than 13 (or 8) (426).
    #[error("unsupported Sec-WebSocket-Version")]
    BadVersion,
}

impl HandshakeError {
    /// 400, or 426 (with `Sec-WebSocket-Version: 13`) for a bad version / missing upgrade.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::NotUpgrade | HandshakeError::BadVersion => 426,
            HandshakeError::BadKey => 400,
        }
    }
}

/// Validate a websocket upgrade request; on success return the `Sec-WebSocket-Accept` value.
pub fn validate(head: &RequestHead, buf: &[u8]) -> Result<String, HandshakeError> {
    validate_parts(
        head.method == Method::Get,
        head.minor_version == 1,
        head.header(buf, "upgrade"),
        head.header(buf, "connection"),
        head.header(buf, "sec-websocket-version"),
        head.header(buf, "sec-websocket-key"),
    )
}

/// The checks of [`validate`], over the raw header values (`None` = header absent).
///
/// Order matters for the status code: anything that makes this not a websocket upgrade at all
/// is `NotUpgrade` (426), then the version (426), then the key (400).
pub fn validate_parts(
    method_is_get: bool,
    http11: bool,
    upgrade: Option<&[u8]>,
    connection: Option<&[u8]>,
    version: Option<&[u8]>,
    key: Option<&[u8]>,
) -> Result<String, HandshakeError> {
    if !method_is_get
        || !http11
        || !has_token(upgrade, b"websocket")
        || !has_token(connection, b"upgrade")
    {
        return Err(HandshakeError::NotUpgrade);
    }
    match version.map(<[u8]>::trim_ascii) {
        Some(b"13") | Some(b"8") => {}
        _ => return Err(HandshakeError::BadVersion),
    }
    let key = key.map(<[u8]>::trim_ascii).ok_or(HandshakeError::BadKey)?;
    // A 16-byte nonce is exactly 24 base64 characters; refuse longer input before decoding.
    if key.len() != 24 {
        return Err(HandshakeError::BadKey);
    }
    match BASE64.decode(key) {
        Ok(nonce) if nonce.len() == 16 => Ok(accept_key(key)),
        _ => Err(HandshakeError::BadKey),
    }
}

/// `base64(SHA-1(key + GUID))`, computed over the key exactly as the client sent it.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WS_GUID);
    BASE64.encode(sha.finalize())
}

/// Whether the request asks for a websocket upgrade at all (`Upgrade: websocket`).
pub fn is_upgrade(head: &RequestHead, buf: &[u8]) -> bool {
    has_token(head.header(buf, "upgrade"), b"websocket")
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive, optional
/// whitespace around each element): `Connection: keep-alive, Upgrade` is an upgrade.
pub fn has_token(value: Option<&[u8]>, token: &[u8]) -> bool {
    value.is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

/// The 101 response, header order as the real Channelstream (ws4py) sends it.
pub fn response_101(accept: &str) -> Vec<u8> {
    response_101_with(accept, None)
}

/// The 101 response with a `Sec-WebSocket-Extensions` answer (permessage-deflate), placed
/// after `Sec-WebSocket-Accept`; without one, byte for byte [`response_101`].
pub fn response_101_with(accept: &str, extensions: Option<&str>) -> Vec<u8> {
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Accept: ";
    const EXT: &[u8] = b"\r\nSec-WebSocket-Extensions: ";
    const TAIL: &[u8] = b"\r\nContent-Length: 0\r\n\r\n";
    let ext_len = extensions.map_or(0, |e| EXT.len() + e.len());
    let mut out = Vec::with_capacity(HEAD.len() + accept.len() + ext_len + TAIL.len());
    out.extend_from_slice(HEAD);
    out.extend_from_slice(accept.as_bytes());
    if let Some(e) = extensions {
        out.extend_from_slice(EXT);
        out.extend_from_slice(e.as_bytes());
    }
    out.extend_from_slice(TAIL);
    out
}

/// Every `Sec-WebSocket-Extensions` value of a request, in order (the header may repeat).
pub fn extension_values<'a>(
    head: &'a RequestHead,
    buf: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers(buf)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"sec-websocket-extensions"))
        .map(|(_, v)| v)
}

/// The complete HTTP response for a failed handshake, as static bytes (the connection is
/// closed after it).
pub fn error_response_bytes(err: &HandshakeError) -> &'static [u8] {
    match err {
        HandshakeError::NotUpgrade => {
            b"HTTP/1.1 426 Upgrade Required\r\n\
            Upgrade: websocket\r\n\
            Sec-WebSocket-Version: 13\r\n\
            Connection: close\r\n\
            Content-Type: text/plain\r\n\
            Content-Length: 27\r\n\
            \r\n\
            websocket upgrade required\n"
        }
        HandshakeError::BadVersion => {
            b"HTTP/1.1 426 Upgrade Required\r\n\
            Sec-WebSocket-Version: 13\r\n\
            Connection: close\r\n\
            Content-Type: text/plain\r\n\
            Content-Length: 34\r\n\
            \r\n\
            unsupported Sec-WebSocket-Version\n"
        }
        HandshakeError::BadKey => {
            b"HTTP/1.1 400 Bad Request\r\n\
            Connection: close\r\n\
            Content-Type: text/plain\r\n\
            Content-Length: 37\r\n\
            \r\n\
            missing or invalid Sec-WebSocket-Key\n"
        }
    }
}

/// The complete HTTP response for a failed handshake.
pub fn error_response(err: &HandshakeError) -> Vec<u8> {
    error_response_bytes(err).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// A well-formed request's parts, overridable one at a time.
    struct Req<'a> {
        get: bool,
        http11: bool,
        upgrade: Option<&'a [u8]>,
        connection: Option<&'a [u8]>,
        version: Option<&'a [u8]>,
        key: Option<&'a [u8]>,
    }

    const OK: Req<'static> = Req {
        get: true,
        http11: true,
        upgrade: Some(b"websocket"),
        connection: Some(b"Upgrade"),
        version: Some(b"13"),
        key: Some(KEY),
    };

    fn check(r: Req<'_>) -> Result<String, HandshakeError> {
        validate_parts(r.get, r.http11, r.upgrade, r.connection, r.version, r.key)
    }

    #[test]
    fn rfc_sample_key() {
        assert_eq!(accept_key(KEY), ACCEPT);
        assert_eq!(check(OK), Ok(ACCEPT.to_string()));
    }

    #[test]
    fn accepted_variants() {
        let cases: Vec<Req<'_>> = vec![
            Req {
                upgrade: Some(b"WebSocket"),
                ..OK
            },
            Req {
                upgrade: Some(b"h2c, websocket"),
                ..OK
            },
            Req {
                connection: Some(b"keep-alive, Upgrade"),
                ..OK
            },
            Req {
                connection: Some(b"upgrade"),
                ..OK
            },
            Req {
                connection: Some(b"  UPGRADE\t"),
                ..OK
            },
            Req {
                version: Some(b"8"),
                ..OK
            },
            Req {
                version: Some(b" 13 "),
                ..OK
            },
            Req {
                key: Some(b" dGhlIHNhbXBsZSBub25jZQ== "),
                ..OK
            },
        ];
        for (i, r) in cases.into_iter().enumerate() {
            assert_eq!(check(r), Ok(ACCEPT.to_string()), "case {i}");
        }
    }

    #[test]
    fn rejected_requests() {
        use HandshakeError::*;
        let cases: Vec<(Req<'_>, HandshakeError)> = vec![
            (Req { get: false, ..OK }, NotUpgrade),
            (
                Req {
                    http11: false,
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    upgrade: None,
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    upgrade: Some(b"h2c"),
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    upgrade: Some(b"websocketx"),
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    connection: None,
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    connection: Some(b"keep-alive"),
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    connection: Some(b"upgraded"),
                    ..OK
                },
                NotUpgrade,
            ),
            // The upgrade check comes first even with everything else wrong.
            (
                Req {
                    connection: None,
                    version: None,
                    key: None,
                    ..OK
                },
                NotUpgrade,
            ),
            (
                Req {
                    version: None,
                    ..OK
                },
                BadVersion,
            ),
            (
                Req {
                    version: Some(b"7"),
                    ..OK
                },
                BadVersion,
            ),
            (
                Req {
                    version: Some(b"13, 8"),
                    ..OK
                },
                BadVersion,
            ),
            (
                Req {
                    version: Some(b""),
                    ..OK
                },
                BadVersion,
            ),
            (
                Req {
                    version: None,
                    key: None,
                    ..OK
                },
                BadVersion,
            ),
            (Req { key: None, ..OK }, BadKey),
            (
                Req {
                    key: Some(b""),
                    ..OK
                },
                BadKey,
            ),
            (
                Req {
                    key: Some(b"not base64 at all!!!!!!!"),
                    ..OK
                },
                BadKey,
            ),
            // 15 and 17 bytes.
            (
                Req {
                    key: Some(b"AAAAAAAAAAAAAAAAAAAA"),
                    ..OK
                },
                BadKey,
            ),
            (
                Req {
                    key: Some(b"AAAAAAAAAAAAAAAAAAAAAAA="),
                    ..OK
                },
                BadKey,
            ),
            (
                Req {
                    key: Some(b"AAAAAAAAAAAAAAAAAAAAAAAA"),
                    ..OK
                },
                BadKey,
            ),
        ];
        for (i, (r, want)) in cases.into_iter().enumerate() {
            assert_eq!(check(r), Err(want), "case {i}");
        }
        assert_eq!(NotUpgrade.status(), 426);
        assert_eq!(BadVersion.status(), 426);
        assert_eq!(BadKey.status(), 400);
    }

    #[test]
    fn accept_matches_tungstenite() {
        for nonce in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
            let key = BASE64.encode(nonce);
            let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
            assert_eq!(accept_key(key.as_bytes()), want);
            let got = check(Req {
                key: Some(key.as_bytes()),
                ..OK
            });
            assert_eq!(got, Ok(want));
        }
    }

    #[test]
    fn response_101_is_exact() {
        let want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            String::from_utf8(response_101(ACCEPT)).ok().as_deref(),
            Some(want)
        );
        // httparse agrees it is a complete response.
        let bytes = response_101(ACCEPT);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut headers);
        assert_eq!(
            resp.parse(&bytes),
            Ok(httparse::Status::Complete(bytes.len()))
        );
        assert_eq!(resp.code, Some(101));
        // With an extension answer: the same head plus one header before Content-Length.
        let ext = response_101_with(
            ACCEPT,
            Some("permessage-deflate; server_no_context_takeover"),
        );
        let want_ext = want.replace(
            "\r\nContent-Length",
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\nContent-Length",
        );
        assert_eq!(
            String::from_utf8(ext).ok().as_deref(),
            Some(want_ext.as_str())
        );
        assert_eq!(response_101_with(ACCEPT, None), response_101(ACCEPT));
    }

    #[test]
    fn error_responses_are_well_formed() {
        use HandshakeError::*;
        for (err, extra) in [
            (NotUpgrade, &["upgrade", "sec-websocket-version"][..]),
            (BadVersion, &["sec-websocket-version"][..]),
            (BadKey, &[][..]),
        ] {
            let bytes = error_response(&err);
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(head_len)) = resp.parse(&bytes) else {
                panic!("{err:?}: unparsable response");
            };
            assert_eq!(resp.code, Some(err.status()), "{err:?}");
            let get = |name: &str| {
                resp.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value.to_vec())
            };
            assert_eq!(get("connection").as_deref(), Some(&b"close"[..]), "{err:?}");
            assert_eq!(
                get("content-type").as_deref(),
                Some(&b"text/plain"[..]),
                "{err:?}"
            );
            let body_len = bytes.len() - head_len;
            assert!(body_len > 0);
            let declared = get("content-length").unwrap_or_default();
            assert_eq!(declared, body_len.to_string().into_bytes(), "{err:?}");
            for name in extra {
                assert!(get(name).is_some(), "{err:?} lacks {name}");
            }
            if extra.contains(&"sec-websocket-version") {
                assert_eq!(get("sec-websocket-version").as_deref(), Some(&b"13"[..]));
            }
        }
    }
}
