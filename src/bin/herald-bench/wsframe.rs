//! The load client's own RFC 6455 code: decode server frames, encode masked client frames, and
//! find the `"t"` / `"s"` numbers in a delivered payload without parsing JSON.
//!
//! Why not reuse `herald::proto::ws`: the tool measures the server, so it must not share the
//! server's parser (a bug there would be invisible here), and the client side is a different
//! shape anyway — frames from a server are never masked, frames to it always are.
//!
//! Everything here is pure over `&[u8]` and allocation-free: `decode_head` returns `Ok(None)` on
//! incomplete input and consumes nothing; the scan is a byte search that stops at the first hit.

/// Largest payload the client accepts from a server. Channelstream frames are a few KiB; 16 MiB
/// only guards the per-subscriber leftover buffer against a runaway length field.
pub const MAX_PAYLOAD: u64 = 16 << 20;

/// Frame opcodes the client acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Op {
    fn from_bits(b: u8) -> Option<Op> {
        Some(match b {
            0x0 => Op::Continuation,
            0x1 => Op::Text,
            0x2 => Op::Binary,
            0x8 => Op::Close,
            0x9 => Op::Ping,
            0xA => Op::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Op::Continuation => 0x0,
            Op::Text => 0x1,
            Op::Binary => 0x2,
            Op::Close => 0x8,
            Op::Ping => 0x9,
            Op::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Op::Close | Op::Ping | Op::Pong)
    }
}

/// A decoded frame header: where the payload starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub fin: bool,
    /// RSV1: a compressed message (only accepted when the client offered permessage-deflate).
    pub rsv1: bool,
    pub op: Op,
    /// Present only if the server (wrongly) masked; the client unmasks control payloads only.
    pub mask: Option<[u8; 4]>,
    pub header_len: usize,
    pub payload_len: usize,
}

impl Head {
    /// Header plus payload: how many bytes this frame occupies in the buffer.
    pub fn frame_len(&self) -> usize {
        self.header_len.saturating_add(self.payload_len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set without an extension")]
    Reserved,
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    #[error("control frame longer than 125 bytes or fragmented")]
    BadControl,
    #[error("payload longer than {MAX_PAYLOAD} bytes")]
    TooBig,
}

/// Decode one frame header from the start of `buf`. `Ok(None)` means more bytes are needed.
/// `deflate`: RSV1 is allowed on a data frame (the client offered permessage-deflate).
pub fn decode_head(buf: &[u8], deflate: bool) -> Result<Option<Head>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && (!deflate || b0 & 0x08 != 0)) {
        return Err(FrameError::Reserved);
    }
    let op = Op::from_bits(b0 & 0x0F).ok_or(FrameError::Opcode(b0 & 0x0F))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if op.is_control() && (len7 > 125 || !fin) {
        return Err(FrameError::BadControl);
    }
    let (len, mut pos) = match len7 {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4usize),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10usize),
            None => return Ok(None),
        },
        n => (u64::from(n), 2usize),
    };
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooBig);
    }
    let mask = if masked {
        match buf
            .get(pos..pos + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(m) => {
                pos += 4;
                Some(m)
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    // `len <= MAX_PAYLOAD` fits usize on every target this runs on.
    let payload_len = usize::try_from(len).map_err(|_| FrameError::TooBig)?;
    Ok(Some(Head {
        fin,
        rsv1,
        op,
        mask,
        header_len: pos,
        payload_len,
    }))
}

/// Append one masked client frame (RFC 6455 §5.3: every client frame is masked).
pub fn encode_masked(op: Op, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | op.bits());
    let len = payload.len();
    if len < 126 {
        // Fits the 7-bit length: `len < 126` so the cast is exact.
        out.push(0x80 | len as u8);
    } else if let Ok(l16) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&l16.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// Apply (or remove) a mask in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (b, m) in payload.iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}

/// Find `"<key>"` followed by optional whitespace, `:`, optional whitespace and an unsigned
/// decimal number; return the number. Used for `"t": 123` and `"s": 7` in delivered frames,
/// which may be pretty-printed (Channelstream, indent 4) or compact (other servers).
///
/// `quoted_key` includes the quotes, e.g. `b"\"t\""`. The first match wins: the bench's own
/// `message` object puts `t` and `s` before `pad`, and no Channelstream envelope key is `"t"`
/// or `"s"`, so the first match is ours.
pub fn find_u64_field(hay: &[u8], quoted_key: &[u8]) -> Option<u64> {
    let first = *quoted_key.first()?;
    let mut from = 0usize;
    while let Some(rel) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + rel;
        let after = at + quoted_key.len();
        if hay.get(at..after) == Some(quoted_key) {
            if let Some(n) = number_after_colon(hay.get(after..)?) {
                return Some(n);
            }
        }
        from = at + 1;
    }
    None
}

/// `  :  123` → 123. None if the shape does not match (so the scan continues).
fn number_after_colon(rest: &[u8]) -> Option<u64> {
    let mut it = rest.iter().copied().skip_while(|b| is_ws(*b));
    if it.next()? != b':' {
        return None;
    }
    let mut it = it.skip_while(|b| is_ws(*b)).peekable();
    let mut n: u64 = 0;
    let mut digits = 0usize;
    while let Some(&b) = it.peek() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
        it.next();
    }
    (digits > 0).then_some(n)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Is this payload a Channelstream heartbeat (`[]`, possibly with whitespace)?
pub fn is_heartbeat(payload: &[u8]) -> bool {
    let mut it = payload.iter().copied().filter(|b| !is_ws(*b));
    it.next() == Some(b'[') && it.next() == Some(b']') && it.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let big = {
            let mut v = vec![0x81, 127];
            v.extend_from_slice(&70_000u64.to_be_bytes());
            v
        };
        type Want = Result<Option<(Op, bool, usize, usize)>, FrameError>;
        let cases: &[(&[u8], Want)] = &[
            (b"", Ok(None)),
            (b"\x81", Ok(None)),
            (b"\x81\x02[]", Ok(Some((Op::Text, true, 2, 2)))),
            (b"\x01\x05hello", Ok(Some((Op::Text, false, 2, 5)))),
            (b"\x80\x00", Ok(Some((Op::Continuation, true, 2, 0)))),
            (b"\x81\x7e\x01", Ok(None)),
            (b"\x81\x7e\x01\x00", Ok(Some((Op::Text, true, 4, 256)))),
            (b"\x81\x7f\x00\x00", Ok(None)),
            (&big, Ok(Some((Op::Text, true, 10, 70_000)))),
            (b"\x89\x00", Ok(Some((Op::Ping, true, 2, 0)))),
            (b"\x88\x02\x03\xe8", Ok(Some((Op::Close, true, 2, 2)))),
            (b"\x81\x82\x01\x02", Ok(None)),
            (
                b"\x81\x82\x01\x02\x03\x04xx",
                Ok(Some((Op::Text, true, 6, 2))),
            ),
            (b"\xc1\x00", Err(FrameError::Reserved)),
            (b"\x83\x00", Err(FrameError::Opcode(3))),
            (b"\x89\x7e\x00\x80", Err(FrameError::BadControl)),
            (b"\x09\x00", Err(FrameError::BadControl)),
            (
                b"\x81\x7f\x7f\xff\xff\xff\xff\xff\xff\xff",
                Err(FrameError::TooBig),
            ),
        ];
        for (input, want) in cases {
            let got = decode_head(input, false)
                .map(|o| o.map(|h| (h.op, h.fin, h.header_len, h.payload_len)));
            assert_eq!(&got, want, "input {input:02x?}");
        }
        // With permessage-deflate offered: RSV1 on a data frame only.
        let h = decode_head(b"\xc1\x00", true).unwrap().unwrap();
        assert!(h.rsv1 && h.op == Op::Text);
        assert_eq!(decode_head(b"\xc9\x00", true), Err(FrameError::Reserved));
        assert_eq!(decode_head(b"\xe1\x00", true), Err(FrameError::Reserved));
    }

    #[test]
    fn masked_roundtrip_all_length_forms() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            encode_masked(Op::Text, &payload, [9, 8, 7, 6], &mut out);
            let h = decode_head(&out, false).unwrap().unwrap();
            assert_eq!(
                (h.op, h.fin, h.payload_len, h.mask),
                (Op::Text, true, len, Some([9, 8, 7, 6]))
            );
            assert_eq!(h.frame_len(), out.len());
            let mut body = out[h.header_len..].to_vec();
            unmask(&mut body, [9, 8, 7, 6]);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn field_scan_table() {
        let pretty = b"[\n    {\n        \"channel\": \"c\",\n        \"timestamp\": \"2026\",\n        \"message\": {\n            \"t\": 123456789,\n            \"s\": 42,\n            \"pad\": \"xx\"\n        },\n        \"type\": \"message\"\n    }\n]";
        let cases: &[(&[u8], &[u8], Option<u64>)] = &[
            (pretty, b"\"t\"", Some(123_456_789)),
            (pretty, b"\"s\"", Some(42)),
            (b"[{\"message\":{\"t\":5,\"s\":6}}]", b"\"t\"", Some(5)),
            (b"{\"t\"  :  7   ,\"s\":1}", b"\"t\"", Some(7)),
            (b"{\"t\": \"x\", \"t\": 9}", b"\"t\"", Some(9)),
            (b"{\"type\": 1}", b"\"t\"", None),
            (b"{\"t\":}", b"\"t\"", None),
            (b"{\"t\"", b"\"t\"", None),
            (b"", b"\"t\"", None),
            (b"{\"t\": 99999999999999999999999}", b"\"t\"", None),
        ];
        for (hay, key, want) in cases {
            assert_eq!(
                find_u64_field(hay, key),
                *want,
                "{}",
                String::from_utf8_lossy(hay)
            );
        }
    }

    #[test]
    fn heartbeat_detection() {
        assert!(is_heartbeat(b"[]"));
        assert!(is_heartbeat(b"[ ]\n"));
        assert!(!is_heartbeat(b"[{}]"));
        assert!(!is_heartbeat(b""));
        assert!(!is_heartbeat(b"[]]"));
    }
}
