//! The permessage-deflate codec (RFC 7692 §7.2) over `flate2` with the zlib-rs backend: inflate
//! one client message under a hard output cap, deflate one server message into a complete
//! frame with RSV1 set.
//!
//! Why zlib-rs: RFC 7692's `server_max_window_bits` needs a deflater with a chosen window size,
//! which flate2 offers only on a zlib backend (`new_with_window_bits`); miniz_oxide always uses
//! 15 bits. zlib-rs is zlib's algorithm in Rust: no C toolchain, no `unsafe` FFI build, and
//! about zlib-ng's speed.
//!
//! Invariants: neither side keeps context between messages (Herald negotiates no context
//! takeover in both directions), so one [`Codec`] per shard serves every connection: it is reset
//! before each message. Inflating never produces more than `max + 1` bytes (a zip bomb costs at
//! most the cap, then fails with [`InflateError::TooBig`]).

use crate::proto::ws::frame::{header_len, put_header_rsv1, OpCode};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sender strips from the end of each compressed message (an empty stored
/// block from a sync flush) and the receiver appends again (RFC 7692 §7.2.1–2).
pub const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Herald compresses at zlib's default level 6: a broadcast is compressed once for every
/// subscriber, so the better ratio is bought once per message, not per delivery.
pub const LEVEL: u32 = 6;

/// Why a compressed message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past the message size limit (close 1009).
    TooBig,
    /// Not valid deflate data (close 1007).
    Invalid,
}

/// Inflate one message's compressed payload (the trailer is appended here) into a new buffer
/// of at most `max` bytes.
pub fn inflate_message(
    d: &mut Decompress,
    input: &[u8],
    max: usize,
) -> Result<Vec<u8>, InflateError> {
    d.reset(false);
    let mut out: Vec<u8> = Vec::new();
    for chunk in [input, &TRAILER[..]] {
        let mut consumed = 0usize;
        loop {
            if out.len() == out.capacity() {
                // Room for `max + 1` bytes at most: one byte more than allowed proves a bomb.
                let room = (max + 1).saturating_sub(out.len());
                if room == 0 {
                    return Err(InflateError::TooBig);
                }
                let want = out.len().max(input.len().saturating_mul(2)).max(4096);
                out.reserve_exact(want.min(room));
            }
            let (in0, out0) = (d.total_in(), out.len());
            let rest = chunk.get(consumed..).unwrap_or_default();
            let status = d
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Invalid)?;
            consumed += usize::try_from(d.total_in() - in0).unwrap_or(usize::MAX);
            if out.len() > max {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                // A final block (BFINAL): the message ends here; the trailer is not needed.
                return Ok(out);
            }
            let progressed = d.total_in() != in0 || out.len() != out0;
            let room_left = out.len() < out.capacity();
            if consumed >= chunk.len() && room_left {
                break;
            }
            if !progressed && room_left {
                break;
            }
        }
    }
    Ok(out)
}

/// Compress one message into a complete server frame (FIN and RSV1 set), `None` when
/// compressing does not make it smaller (the caller sends it plain). `scratch` is reused.
pub fn deflate_frame(
    c: &mut Compress,
    op: OpCode,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> Option<Bytes> {
    c.reset();
    scratch.clear();
    scratch.reserve(payload.len() / 2 + 64);
    let mut consumed = 0usize;
    loop {
        if scratch.len() == scratch.capacity() {
            scratch.reserve(scratch.len().max(256));
        }
        let in0 = c.total_in();
        let rest = payload.get(consumed..).unwrap_or_default();
        c.compress_vec(rest, scratch, FlushCompress::Sync).ok()?;
        consumed += usize::try_from(c.total_in() - in0).unwrap_or(usize::MAX);
        // Done when all input is in and the flush fitted (spare room left after it).
        if consumed >= payload.len() && scratch.len() < scratch.capacity() {
            break;
        }
        if scratch.len() >= payload.len() + 64 {
            return None; // incompressible: no use finishing
        }
    }
    let body = scratch.strip_suffix(&TRAILER)?;
    if body.len() >= payload.len() {
        return None;
    }
    let mut out = Vec::with_capacity(header_len(body.len(), false) + body.len());
    put_header_rsv1(&mut out, op, body.len());
    out.extend_from_slice(body);
    Some(Bytes::from(out))
}

/// One shard's deflate state, shared by all its connections (no context takeover): an inflater
/// (15-bit window, ~7 KiB + 32 KiB) and a compressor per server window size in use (9 to 15 bits;
/// made on first use, ~2^(w+2) + 128 KiB each), and a scratch buffer.
pub struct Codec {
    inflater: Option<Box<Decompress>>,
    deflaters: [Option<Box<Compress>>; 7],
    scratch: Vec<u8>,
    /// Messages shorter than this go out uncompressed.
    pub min_bytes: usize,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("min_bytes", &self.min_bytes)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec that compresses messages of at least `min_bytes`.
    pub fn new(min_bytes: usize) -> Codec {
        Codec {
            inflater: None,
            deflaters: Default::default(),
            scratch: Vec::new(),
            min_bytes,
        }
    }

    /// Inflate one client message ([`inflate_message`]) with the shard's inflater.
    pub fn inflate(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
        let d = self
            .inflater
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, 15)));
        inflate_message(d, input, max)
    }

    /// Compress one server message for a client whose window is `window` bits (9 to 15), if it
    /// is at least `min_bytes` long and compressing makes it smaller.
    pub fn deflate(&mut self, window: u8, op: OpCode, payload: &[u8]) -> Option<Bytes> {
        if payload.len() < self.min_bytes || !(9..=15).contains(&window) {
            return None;
        }
        let slot = self.deflaters.get_mut(usize::from(window - 9))?;
        let c = slot.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(LEVEL),
                false,
                window,
            ))
        });
        let frame = deflate_frame(c, op, payload, &mut self.scratch);
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new(); // do not keep a huge buffer after one large message
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws::decode_header;

    /// A raw deflate stream as a client would send it (sync flush, trailer removed).
    pub(crate) fn client_deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&TRAILER));
        out.truncate(out.len() - 4);
        out
    }

    fn client_inflate(window: u8, body: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new_with_window_bits(false, window);
        let mut input = body.to_vec();
        input.extend_from_slice(&TRAILER);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn round_trip_every_window() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"event\":\"e{}\",\"n\":{i}}}", i % 7).into_bytes())
            .collect();
        let mut codec = Codec::new(16);
        for window in 9..=15u8 {
            let frame = codec.deflate(window, OpCode::Text, &text).unwrap();
            let (h, n) = decode_header(&frame).unwrap().unwrap();
            assert!(h.rsv1 && h.fin && h.opcode == OpCode::Text);
            assert_eq!(h.payload_len as usize, frame.len() - n);
            assert!(frame.len() < text.len() / 4, "window {window}");
            assert_eq!(client_inflate(window, &frame[n..]), text, "window {window}");
            // The server's own inflater reads it too.
            assert_eq!(codec.inflate(&frame[n..], text.len()).unwrap(), text);
        }
    }

    #[test]
    fn small_or_incompressible_messages_stay_plain() {
        let mut codec = Codec::new(64);
        assert_eq!(codec.deflate(15, OpCode::Text, &[b'a'; 63]), None);
        assert!(codec.deflate(15, OpCode::Text, &[b'a'; 64]).is_some());
        let noise: Vec<u8> = {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        assert_eq!(codec.deflate(15, OpCode::Binary, &noise), None);
        assert_eq!(codec.deflate(8, OpCode::Text, &[b'a'; 1000]), None);
    }

    #[test]
    fn inflate_limits_and_garbage() {
        let mut codec = Codec::new(0);
        let data = vec![b'x'; 100_000];
        let z = client_deflate(&data);
        assert!(z.len() < 1000);
        assert_eq!(codec.inflate(&z, 100_000).unwrap(), data);
        assert_eq!(codec.inflate(&z, 99_999), Err(InflateError::TooBig));
        assert_eq!(codec.inflate(&z, 0), Err(InflateError::TooBig));
        // A zip bomb: 10 MB of zeros in about 10 KB, against a 1 MiB cap.
        let bomb = client_deflate(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert_eq!(codec.inflate(&bomb, 1 << 20), Err(InflateError::TooBig));
        // Garbage: a reserved block type (BTYPE 11).
        assert_eq!(
            codec.inflate(&[0xff, 0xff, 0xff], 1000),
            Err(InflateError::Invalid)
        );
        // The empty message (an empty payload is just the trailer's stored block).
        assert_eq!(codec.inflate(&[], 10).unwrap(), Vec::<u8>::new());
        assert_eq!(codec.inflate(&client_deflate(b""), 10).unwrap(), b"");
        // The codec recovers after an error.
        assert_eq!(codec.inflate(&z, 100_000).unwrap(), data);
        // A final block (BFINAL) instead of a sync flush is accepted.
        let mut c = Compress::new(Compression::default(), false);
        let mut fin = Vec::with_capacity(256);
        c.compress_vec(b"hello", &mut fin, FlushCompress::Finish)
            .unwrap();
        assert_eq!(codec.inflate(&fin, 10).unwrap(), b"hello");
        // Split into many sync-flushed pieces (one message compressed in parts).
        let mut c = Compress::new(Compression::default(), false);
        let mut parts = Vec::with_capacity(4096);
        for chunk in data.chunks(7_000) {
            parts.reserve(4096);
            c.compress_vec(chunk, &mut parts, FlushCompress::Sync)
                .unwrap();
        }
        parts.truncate(parts.len() - 4);
        assert_eq!(codec.inflate(&parts, 100_000).unwrap(), data);
    }
}
