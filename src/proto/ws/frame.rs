//! Frame headers (RFC 6455 §5.2): opcodes, the pure header decoder and the header writer.
//!
//! Why a separate module: the header is the only part of a frame that is parsed rather than
//! copied, and every rule that can be judged from it (RSV bits, opcode, control-frame size and
//! fragmentation, the 64-bit length's MSB) is judged here, as early as the bytes allow.
//!
//! Invariants: [`decode_header`] is pure, returns `Ok(None)` on incomplete input and never reads
//! past [`MAX_HEADER_LEN`] bytes; the writer always uses the minimal length encoding.

use super::WsError;
use bytes::BufMut;

/// Largest possible frame header: 2 bytes + 8 bytes of 64-bit length + 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame (close, ping, pong), RFC 6455 §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2), reserved values excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// `0x0`: continuation of a fragmented message.
    Continue,
    /// `0x1`: text data (UTF-8).
    Text,
    /// `0x2`: binary data.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble of the first header byte; `None` for reserved ones.
    pub fn from_u8(nibble: u8) -> Option<OpCode> {
        match nibble {
            0 => Some(OpCode::Continue),
            1 => Some(OpCode::Text),
            2 => Some(OpCode::Binary),
            8 => Some(OpCode::Close),
            9 => Some(OpCode::Ping),
            10 => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value of this opcode.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continue => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between fragments.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: this frame ends the message.
    pub fin: bool,
    /// RSV1 bit: the message is compressed (permessage-deflate, RFC 7692 §6). Whether it is
    /// allowed depends on the connection's extensions, so the assembler judges it.
    pub rsv1: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// Masking key, present when the MASK bit is set (required from clients, RFC 6455 §5.3).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, as the header states it.
    pub payload_len: u64,
}

/// `N` bytes at `at`, or `None` if the buffer is too short.
pub(super) fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Decode one frame header. `Ok(None)` = incomplete.
///
/// Everything that can be judged from the first two bytes (RSV bits, opcode, control frame
/// rules) is judged before the extended length arrives, so a bad frame fails without waiting.
/// Non-minimal length encodings are accepted (RFC 6455 requires minimal ones of senders only).
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, WsError> {
    let Some([b0, b1]) = array_at::<2>(buf, 0) else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(WsError::Protocol("reserved bits set without an extension"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0f).ok_or(WsError::Protocol("reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    let len7 = b1 & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::Protocol("fragmented control frame"));
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::Protocol("control frame payload over 125 bytes"));
        }
    }
    let (payload_len, mut pos) = match len7 {
        126 => match array_at::<2>(buf, 2) {
            Some(b) => (u64::from(u16::from_be_bytes(b)), 4),
            None => return Ok(None),
        },
        127 => {
            // The most significant bit of a 64-bit length must be 0 (§5.2); check it as soon
            // as its byte is here.
            if buf.get(2).is_some_and(|&hi| hi & 0x80 != 0) {
                return Err(WsError::Protocol("64-bit payload length with the MSB set"));
            }
            match array_at::<8>(buf, 2) {
                Some(b) => (u64::from_be_bytes(b), 10),
                None => return Ok(None),
            }
        }
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let Some(m) = array_at::<4>(buf, pos) else {
            return Ok(None);
        };
        pos += 4;
        Some(m)
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        rsv1: b0 & 0x40 != 0,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, pos)))
}

/// Length of a frame header for this payload length (with or without a mask key).
pub fn header_len(payload_len: usize, masked: bool) -> usize {
    let base = match payload_len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    if masked {
        base + 4
    } else {
        base
    }
}

/// Write the header of a compressed server message: FIN and RSV1 set, unmasked.
pub(crate) fn put_header_rsv1(out: &mut impl BufMut, op: OpCode, len: usize) {
    put_header_byte(out, 0x80 | 0x40 | op.as_u8(), len, None);
}

/// Write a header with the minimal length encoding.
pub(super) fn put_header(
    out: &mut impl BufMut,
    op: OpCode,
    fin: bool,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let fin_bit = if fin { 0x80 } else { 0 };
    put_header_byte(out, fin_bit | op.as_u8(), len, mask);
}

/// The header after its first byte (FIN, RSV and opcode bits as given).
fn put_header_byte(out: &mut impl BufMut, b0: u8, len: usize, mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    match len {
        0..=125 => out.put_u8(mask_bit | len as u8),
        126..=0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(m) = mask {
        out.put_slice(&m);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CloseCode;
    use super::*;

    fn hdr(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv1: false,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn decode_header_complete() {
        let m = Some(MASK);
        let mut len16 = vec![0x82, 0xfe, 0x01, 0x00];
        len16.extend_from_slice(&MASK);
        let mut len64 = vec![0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        let mut len64_masked = vec![0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0];
        len64_masked.extend_from_slice(&MASK);
        let mut small_masked = vec![0x81, 0x85];
        small_masked.extend_from_slice(&MASK);
        let cases: Vec<(Vec<u8>, FrameHeader, usize)> = vec![
            (vec![0x81, 0x05], hdr(true, OpCode::Text, None, 5), 2),
            (small_masked, hdr(true, OpCode::Text, m, 5), 6),
            (vec![0x02, 0x00], hdr(false, OpCode::Binary, None, 0), 2),
            (vec![0x00, 0x7d], hdr(false, OpCode::Continue, None, 125), 2),
            (vec![0x88, 0x00], hdr(true, OpCode::Close, None, 0), 2),
            (vec![0x89, 0x7d], hdr(true, OpCode::Ping, None, 125), 2),
            (vec![0x8a, 0x01], hdr(true, OpCode::Pong, None, 1), 2),
            (len16, hdr(true, OpCode::Binary, m, 256), 8),
            (len64.clone(), hdr(true, OpCode::Text, None, 65536), 10),
            (len64_masked, hdr(true, OpCode::Text, m, 1 << 32), 14),
            // Non-minimal encodings are accepted.
            (
                vec![0x81, 0x7e, 0x00, 0x05],
                hdr(true, OpCode::Text, None, 5),
                4,
            ),
        ];
        for (bytes, want, n) in &cases {
            assert_eq!(decode_header(bytes), Ok(Some((*want, *n))), "{bytes:02x?}");
            // Trailing payload bytes do not change the result.
            let mut longer = bytes.clone();
            longer.extend_from_slice(b"payload");
            assert_eq!(decode_header(&longer), Ok(Some((*want, *n))));
            // Every strict prefix is incomplete.
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode_header(&bytes[..cut]),
                    Ok(None),
                    "{bytes:02x?} cut {cut}"
                );
            }
        }
        len64[2] = 0x7f;
        assert_eq!(
            decode_header(&len64),
            Ok(Some((
                hdr(true, OpCode::Text, None, 0x7f00_0000_0001_0000),
                10
            )))
        );
    }

    #[test]
    fn decode_header_errors() {
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xe1, 0x00], "reserved bits set without an extension"),
            (vec![0xa1, 0x00], "reserved bits set without an extension"),
            (vec![0x91, 0x00], "reserved bits set without an extension"),
            (vec![0x09, 0x00], "fragmented control frame"),
            (vec![0x08, 0x00], "fragmented control frame"),
            (vec![0x0a, 0x80], "fragmented control frame"),
            (vec![0x89, 0x7e], "control frame payload over 125 bytes"),
            (vec![0x88, 0xff], "control frame payload over 125 bytes"),
            (
                vec![0x81, 0x7f, 0x80],
                "64-bit payload length with the MSB set",
            ),
            (
                vec![0x82, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0],
                "64-bit payload length with the MSB set",
            ),
        ];
        for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            cases.push((vec![0x80 | op, 0x80], "reserved opcode"));
            cases.push((vec![op, 0x00], "reserved opcode"));
        }
        // RSV1 is the assembler's to judge (permessage-deflate): decoded, not refused.
        let Ok(Some((h, 2))) = decode_header(&[0xc1, 0x05]) else {
            panic!("RSV1 frame refused by the header decoder");
        };
        assert!(h.rsv1 && h.fin && h.opcode == OpCode::Text);
        for (bytes, msg) in cases {
            let got = decode_header(&bytes);
            assert_eq!(got, Err(WsError::Protocol(msg)), "{bytes:02x?}");
            assert_eq!(got.map_err(|e| e.close_code()), Err(CloseCode::Protocol));
        }
    }
}
