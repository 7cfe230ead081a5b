//! A delivery's frame, compressed at most once per window size however many subscribers and
//! shards it reaches (permessage-deflate's "shared compressor").
//!
//! Why here: dialects encode each message once (`Outbox::deliver` takes one plain `Bytes`
//! frame) and know nothing of compression; the reactor wraps a frame worth compressing
//! (`--ws-deflate` on, a data frame of at least `--ws-deflate-min-bytes`) into a shared
//! [`Deflatable`]. Subscribers without the extension get the plain frame; those with it get the
//! compressed frame for their window, made by the first shard that needs it and kept in the
//! shared cell for everyone else. Herald always negotiates no context takeover, so that frame is
//! the same for every such subscriber.
//!
//! Invariants: no lock. Each window's frame sits in a `once_cell::race::OnceBox`: two shards
//! that race to fill it both compress, one wins the compare-and-swap and the other's frame is
//! dropped (equal bytes; a rare duplicate of work, never a wait on another thread).

use crate::proto::deflate::Codec;
use crate::proto::ws::{decode_header, OpCode};
use bytes::Bytes;
use once_cell::race::OnceBox;
use std::sync::Arc;

/// What a delivery carries: a plain frame, or one that may be sent compressed.
#[derive(Clone, Debug)]
pub enum OutFrame {
    /// Sent as is to everyone (deflate off, a control frame, or a short message).
    Plain(Bytes),
    /// Compressible: the plain frame and its compressed forms.
    Deflatable(Arc<Deflatable>),
}

/// A plain data frame and, per server window size (9 to 15 bits), its compressed frame once made
/// (the plain frame again when compression did not make it smaller).
#[derive(Debug)]
pub struct Deflatable {
    plain: Bytes,
    opcode: OpCode,
    payload_at: usize,
    variants: [OnceBox<Bytes>; 7],
}

impl OutFrame {
    /// Wrap an encoded server frame: deflatable when it is a whole text or binary frame with a
    /// payload of at least `min_bytes`.
    pub fn new(frame: &Bytes, deflate: bool, min_bytes: usize) -> OutFrame {
        if !deflate {
            return OutFrame::Plain(frame.clone());
        }
        match decode_header(frame) {
            Ok(Some((h, at)))
                if h.fin
                    && !h.rsv1
                    && matches!(h.opcode, OpCode::Text | OpCode::Binary)
                    && frame.len().saturating_sub(at) >= min_bytes =>
            {
                OutFrame::Deflatable(Arc::new(Deflatable {
                    plain: frame.clone(),
                    opcode: h.opcode,
                    payload_at: at,
                    variants: Default::default(),
                }))
            }
            _ => OutFrame::Plain(frame.clone()),
        }
    }

    /// The plain frame.
    pub fn plain(&self) -> &Bytes {
        match self {
            OutFrame::Plain(b) => b,
            OutFrame::Deflatable(d) => &d.plain,
        }
    }

    /// The frame for a subscriber that compresses with `window` bits (`None`: plain), and
    /// whether it is a compressed one. Compresses with `codec` on first use of that window.
    pub fn for_window(
        &self,
        window: Option<u8>,
        codec: &mut Codec,
        made: &mut u64,
    ) -> (&Bytes, bool) {
        let (OutFrame::Deflatable(d), Some(w)) = (self, window) else {
            return (self.plain(), false);
        };
        let Some(cell) = w
            .checked_sub(9)
            .and_then(|i| d.variants.get(usize::from(i)))
        else {
            return (&d.plain, false);
        };
        let frame = cell.get_or_init(|| {
            *made += 1;
            let payload = d.plain.get(d.payload_at..).unwrap_or_default();
            Box::new(
                codec
                    .deflate(w, d.opcode, payload)
                    .unwrap_or_else(|| d.plain.clone()),
            )
        });
        let compressed = frame.as_ptr() != d.plain.as_ptr();
        (frame, compressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws::{encode_frame, encode_text};

    #[test]
    fn compressed_once_per_window_and_shared() {
        let msg = "{\"event\":\"tick\",\"data\":\"".to_string() + &"abc".repeat(200) + "\"}";
        let frame = encode_text(msg.as_bytes());
        let f = OutFrame::new(&frame, true, 256);
        assert!(matches!(f, OutFrame::Deflatable(_)));
        let mut codec = Codec::new(256);
        let mut made = 0;
        let (a, za) = f.for_window(Some(15), &mut codec, &mut made);
        let a = a.clone();
        let (b, zb) = f.for_window(Some(15), &mut codec, &mut made);
        assert!(za && zb);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one shared allocation");
        assert!(a.len() < frame.len() / 4);
        assert_eq!(a[0], 0xc1, "FIN, RSV1, text");
        assert_eq!(made, 1);
        let (c, _) = f.for_window(Some(10), &mut codec, &mut made);
        assert_ne!(c.as_ptr(), a.as_ptr());
        assert_eq!(made, 2);
        // No deflate, or an 8-bit window: the plain frame.
        let (p, zp) = f.for_window(None, &mut codec, &mut made);
        assert!(!zp);
        assert_eq!(p.as_ptr(), frame.as_ptr());
        // Clones (what another shard receives) share the cells.
        let g = f.clone();
        let (d, _) = g.for_window(Some(15), &mut codec, &mut made);
        assert_eq!(d.as_ptr(), a.as_ptr());
        assert_eq!(made, 2);
    }

    #[test]
    fn what_stays_plain() {
        let short = encode_text(&[b'a'; 255]);
        assert!(matches!(
            OutFrame::new(&short, true, 256),
            OutFrame::Plain(_)
        ));
        let long = encode_text(&[b'a'; 256]);
        assert!(matches!(
            OutFrame::new(&long, false, 256),
            OutFrame::Plain(_)
        ));
        assert!(matches!(
            OutFrame::new(&long, true, 256),
            OutFrame::Deflatable(_)
        ));
        let ping = encode_frame(OpCode::Ping, &[0; 100]);
        assert!(matches!(OutFrame::new(&ping, true, 0), OutFrame::Plain(_)));
        // Incompressible data: the plain frame, marked as not compressed.
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
        let f = OutFrame::new(&encode_frame(OpCode::Binary, &noise), true, 0);
        let mut codec = Codec::new(0);
        let mut made = 0;
        let (b, z) = f.for_window(Some(15), &mut codec, &mut made);
        assert!(!z);
        assert_eq!(b.as_ptr(), f.plain().as_ptr());
    }

    #[test]
    fn fits_an_inbox_slot() {
        assert!(std::mem::size_of::<OutFrame>() <= 32);
    }
}
