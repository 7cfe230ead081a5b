//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, whole or from any payload offset.
//!
//! Why a separate module: it is the one hot loop of the read path (every client byte goes
//! through it), so it is kept small, benched (`benches/ws.rs`) and tested against the naive loop.
//!
//! Invariants: no `unsafe`; `apply_mask_at(buf, key, off)` equals unmasking from offset 0 when
//! applied piecewise, so a payload can be unmasked as it arrives.

/// XOR `buf` with the mask, as if `buf` started at payload offset 0.
///
/// Eight bytes per step as one `u64` XOR (the compiler vectorises the loop further); the mask
/// repeats every 4 bytes, so the 8-byte pattern is the mask twice and every chunk starts at
/// phase 0. No `unsafe`: `chunks_exact_mut` gives unaligned-safe 8-byte windows.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [m0, m1, m2, m3] = mask;
    let wide = u64::from_ne_bytes([m0, m1, m2, m3, m0, m1, m2, m3]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(word) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
        }
    }
    // Up to 7 bytes: the mask cycles.
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}

/// XOR `buf` with the mask, as if `buf` started at payload offset `offset`: lets a payload be
/// unmasked piecewise as it arrives.
pub fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // Rotating the big-endian word left by one byte turns [m0 m1 m2 m3] into [m1 m2 m3 m0].
    let shift = 8 * (offset & 3) as u32;
    let rotated = u32::from_be_bytes(mask).rotate_left(shift).to_be_bytes();
    apply_mask(buf, rotated);
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn mask_matches_naive_at_every_length_and_offset() {
        let data: Vec<u8> = (0..70u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..data.len() {
            let mut fast = data[..len].to_vec();
            apply_mask(&mut fast, MASK);
            let naive: Vec<u8> = data[..len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[i % 4])
                .collect();
            assert_eq!(fast, naive, "len {len}");
            // Piecewise unmasking with an offset equals one pass.
            for split in 0..=len {
                let mut pieces = data[..len].to_vec();
                let (a, b) = pieces.split_at_mut(split);
                apply_mask_at(a, MASK, 0);
                apply_mask_at(b, MASK, split);
                assert_eq!(pieces, naive, "len {len} split {split}");
            }
            apply_mask(&mut fast, MASK);
            assert_eq!(fast, &data[..len]);
        }
    }
}
