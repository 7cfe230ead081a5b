//! Close frames: the typed [`CloseCode`] and the parser of a client's close payload.
//!
//! Why a separate module: close codes cross every layer (the assembler's protocol errors, the
//! model's decisions, shutdown, back-pressure), and a bare `u16` let any of them send a code a
//! peer must reject. The enum names the codes Herald uses; `is_allowed_on_wire` is the one
//! definition of what a peer may send.
//!
//! Invariants: `CloseCode` ⇄ `u16` is a bijection (through `From`); a close payload is either
//! empty or a code allowed on the wire followed by a UTF-8 reason, anything else is an error.

use super::frame::{array_at, MAX_CONTROL_PAYLOAD};
use super::{Event, WsError};
use bytes::Bytes;
use std::fmt;

/// Longest close reason that still fits a control frame after the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A websocket close status code (RFC 6455 §7.4), in the style of tungstenite's `CloseCode`.
///
/// Every `u16` maps to exactly one variant and back ([`From<u16>`] then [`u16::from`] is the
/// identity): the named variants for the codes RFC 6455 (and the IANA registry) assign,
/// [`CloseCode::Library`] for the 3000-4999 range left to libraries and applications, and
/// [`CloseCode::Bad`] for everything else. Build values with the named variants or with
/// `CloseCode::from(n)`; `Library(n)` / `Bad(n)` with `n` outside their range (or naming an
/// assigned code) still encode `n`, but compare unequal to the canonical variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    Normal,
    /// 1001: going away (server shutdown, browser navigating away).
    Away,
    /// 1002: protocol error.
    Protocol,
    /// 1003: a data type the endpoint cannot accept.
    Unsupported,
    /// 1005: "no status code was present". Reported locally, never sent in a close frame.
    Status,
    /// 1006: "closed without a close frame". Reported locally, never sent.
    Abnormal,
    /// 1007: message data inconsistent with its type (invalid UTF-8 in text).
    Invalid,
    /// 1008: policy violation (e.g. a slow consumer).
    Policy,
    /// 1009: message too big.
    Size,
    /// 1010: the client expected an extension the server did not negotiate.
    Extension,
    /// 1011: the server hit an unexpected condition.
    Error,
    /// 1012: service restart (IANA registry).
    Restart,
    /// 1013: try again later, e.g. the server is overloaded (IANA registry).
    Again,
    /// 1015: TLS handshake failure. Reported locally, never sent.
    Tls,
    /// 3000-4999: registered library codes (3000-3999) and private application codes (4000-4999).
    Library(u16),
    /// Any other number: unassigned, reserved (1004, 1014, 1016-2999) or out of range.
    Bad(u16),
}

impl CloseCode {
    /// Whether a peer may send this code in a close frame, i.e. whether the assembler accepts
    /// it: 1000-1003, 1007-1011 and 3000-4999 (RFC 6455 §7.4.1-2). 1005, 1006 and 1015 must
    /// never appear on the wire; 1012-1014 and 1016-2999 are not assigned by RFC 6455 and are
    /// rejected, as Autobahn 7.9.x expects. (The server itself may still *send* 1013.)
    pub fn is_allowed_on_wire(self) -> bool {
        matches!(u16::from(self), 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::Status,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::Invalid,
            1008 => CloseCode::Policy,
            1009 => CloseCode::Size,
            1010 => CloseCode::Extension,
            1011 => CloseCode::Error,
            1012 => CloseCode::Restart,
            1013 => CloseCode::Again,
            1015 => CloseCode::Tls,
            3000..=4999 => CloseCode::Library(code),
            _ => CloseCode::Bad(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Restart => 1012,
            CloseCode::Again => 1013,
            CloseCode::Tls => 1015,
            CloseCode::Library(code) | CloseCode::Bad(code) => code,
        }
    }
}

/// The number, as it appears on the wire (`1000`), for logs.
impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// Close payload: empty, or a valid code followed by a UTF-8 reason.
pub(super) fn parse_close(payload: Bytes) -> Result<Event, WsError> {
    let Some(code) = array_at::<2>(&payload, 0).map(u16::from_be_bytes) else {
        if payload.is_empty() {
            return Ok(Event::Close {
                code: None,
                reason: Bytes::new(),
            });
        }
        return Err(WsError::Protocol("close payload of one byte"));
    };
    let code = CloseCode::from(code);
    if !code.is_allowed_on_wire() {
        return Err(WsError::Protocol("invalid close code"));
    }
    let reason = payload.slice(2..);
    if std::str::from_utf8(&reason).is_err() {
        return Err(WsError::InvalidUtf8);
    }
    Ok(Event::Close {
        code: Some(code),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::OpCode;
    use super::*;

    #[test]
    fn close_code_table() {
        // (number, variant, allowed on the wire)
        let table = [
            (1000u16, CloseCode::Normal, true),
            (1001, CloseCode::Away, true),
            (1002, CloseCode::Protocol, true),
            (1003, CloseCode::Unsupported, true),
            (1004, CloseCode::Bad(1004), false),
            (1005, CloseCode::Status, false),
            (1006, CloseCode::Abnormal, false),
            (1007, CloseCode::Invalid, true),
            (1008, CloseCode::Policy, true),
            (1009, CloseCode::Size, true),
            (1010, CloseCode::Extension, true),
            (1011, CloseCode::Error, true),
            (1012, CloseCode::Restart, false),
            (1013, CloseCode::Again, false),
            (1014, CloseCode::Bad(1014), false),
            (1015, CloseCode::Tls, false),
            (1016, CloseCode::Bad(1016), false),
            (2999, CloseCode::Bad(2999), false),
            (3000, CloseCode::Library(3000), true),
            (4000, CloseCode::Library(4000), true),
            (4999, CloseCode::Library(4999), true),
            (5000, CloseCode::Bad(5000), false),
            (0, CloseCode::Bad(0), false),
            (999, CloseCode::Bad(999), false),
            (65535, CloseCode::Bad(65535), false),
        ];
        for (n, code, allowed) in table {
            assert_eq!(CloseCode::from(n), code, "{n}");
            assert_eq!(u16::from(code), n, "{n}");
            assert_eq!(code.is_allowed_on_wire(), allowed, "{n}");
            assert_eq!(code.to_string(), n.to_string());
        }
    }

    #[test]
    fn close_code_round_trips_and_matches_the_old_rule() {
        for n in 0..=u16::MAX {
            let code = CloseCode::from(n);
            assert_eq!(u16::from(code), n);
            // The rule the assembler applied to bare numbers before the enum existed.
            let old = matches!(n, 1000..=1003 | 1007..=1011 | 3000..=4999);
            assert_eq!(code.is_allowed_on_wire(), old, "{n}");
        }
        // Non-canonical values still encode their number.
        assert_eq!(u16::from(CloseCode::Bad(1000)), 1000);
        assert!(CloseCode::Bad(1000).is_allowed_on_wire());
    }

    #[test]
    fn close_codes() {
        let valid = [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ];
        let invalid = [
            0u16, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
            65535,
        ];
        for code in valid {
            let wire = masked(OpCode::Close, &code.to_be_bytes(), true);
            let want = Event::Close {
                code: Some(CloseCode::from(code)),
                reason: Bytes::new(),
            };
            assert_eq!(run(16, &wire), (vec![want], None, 0), "{code}");
        }
        for code in invalid {
            let wire = masked(OpCode::Close, &code.to_be_bytes(), true);
            let (_, err, _) = run(16, &wire);
            assert_eq!(
                err.map(|e| e.close_code()),
                Some(CloseCode::Protocol),
                "{code}"
            );
        }
        let empty = masked(OpCode::Close, b"", true);
        let want = Event::Close {
            code: None,
            reason: Bytes::new(),
        };
        assert_eq!(run(16, &empty), (vec![want], None, 0));
        // A 123-byte reason (125-byte payload) is fine.
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend(std::iter::repeat_n(b'*', 123));
        let (events, err, _) = run(16, &masked(OpCode::Close, &payload, true));
        assert_eq!((events.len(), err), (1, None));
    }
}
