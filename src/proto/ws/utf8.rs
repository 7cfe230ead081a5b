//! Incremental UTF-8 validation of text messages, across fragments and partial frames.
//!
//! Why a separate module: Autobahn 6.4.x requires failing fast, i.e. rejecting invalid text as
//! soon as the offending byte arrives, even in the middle of a frame whose tail is still on the
//! wire. std's validator is used on each chunk; only the code point cut at a chunk boundary is
//! carried.
//!
//! Invariants: at most 3 bytes are carried; a prefix that can never become valid fails at once;
//! a code point still open at the end of the message fails at `Utf8Carry::finish`.

use super::WsError;

/// Incremental UTF-8 validation across fragments and partial frames: carries the incomplete
/// trailing code point (at most 3 bytes) from one chunk to the next.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Utf8Carry {
    pending: [u8; 4],
    len: usize,
}

impl Utf8Carry {
    pub(super) fn feed(&mut self, mut input: &[u8]) -> Result<(), WsError> {
        // First complete the carried code point, one byte at a time: std reports an invalid
        // prefix (`error_len() == Some`) as soon as the offending byte is seen.
        while self.len > 0 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(());
            };
            *self.pending.get_mut(self.len).ok_or(WsError::InvalidUtf8)? = b;
            self.len += 1;
            input = rest;
            match std::str::from_utf8(self.pending.get(..self.len).unwrap_or_default()) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_some() => return Err(WsError::InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(WsError::InvalidUtf8),
            Err(e) => {
                // Valid so far, cut inside a code point: keep the tail (1-3 bytes).
                let tail = input.get(e.valid_up_to()..).unwrap_or_default();
                self.pending
                    .get_mut(..tail.len())
                    .ok_or(WsError::InvalidUtf8)?
                    .copy_from_slice(tail);
                self.len = tail.len();
                Ok(())
            }
        }
    }

    /// End of message: a code point still open is invalid.
    pub(super) fn finish(&mut self) -> Result<(), WsError> {
        let open = self.len != 0;
        self.len = 0;
        if open {
            Err(WsError::InvalidUtf8)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{CloseCode, OpCode};
    use super::*;

    #[test]
    fn utf8_split_across_fragments() {
        // Valid text split at every byte, including inside multi-byte code points.
        let s = "κόσμε 𝄞 ü€";
        let bytes = s.as_bytes();
        for cut in 0..=bytes.len() {
            let mut wire = masked(OpCode::Text, &bytes[..cut], false);
            wire.extend(masked(OpCode::Ping, b"", true));
            wire.extend(masked(OpCode::Continue, &bytes[cut..], true));
            let (events, err, _) = run(64, &wire);
            assert_eq!(err, None, "cut {cut}");
            assert_eq!(events.last(), Some(&text(s)), "cut {cut}");
        }
        // Three fragments splitting one 4-byte code point 1+2+1.
        let clef = "𝄞".as_bytes();
        let mut wire = masked(OpCode::Text, &clef[..1], false);
        wire.extend(masked(OpCode::Continue, &clef[1..3], false));
        wire.extend(masked(OpCode::Continue, &clef[3..], true));
        assert_eq!(run(64, &wire), (vec![text("𝄞")], None, 0));
    }

    #[test]
    fn utf8_errors_fail_fast() {
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            // Invalid in the first fragment: fails before the second arrives.
            ("bad first", vec![b"ok\xff".to_vec()]),
            // Surrogate (ED A0 80) split across fragments: fails at its second byte.
            (
                "surrogate split",
                vec![b"\xce\xba\xed".to_vec(), b"\xa0\x80edited".to_vec()],
            ),
            // Code point above U+10FFFF split: F4 90 is already invalid.
            (
                "above max",
                vec![b"\xf4".to_vec(), b"\x90\x80\x80".to_vec()],
            ),
            ("overlong", vec![b"\xc0".to_vec(), b"\xaf".to_vec()]),
            ("lone continuation", vec![b"a".to_vec(), b"\x80".to_vec()]),
        ];
        for (name, fragments) in cases {
            let mut wire = Vec::new();
            for (i, f) in fragments.iter().enumerate() {
                let op = if i == 0 {
                    OpCode::Text
                } else {
                    OpCode::Continue
                };
                wire.extend(masked(op, f, false));
            }
            // No final fragment is ever sent: the error must come from what is there.
            let (_, err, _) = run(64, &wire);
            assert_eq!(err, Some(WsError::InvalidUtf8), "{name}");
        }
        // Fails inside a single frame whose tail has not arrived (Autobahn 6.4.3/6.4.4).
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend(b"\xf4\x90\x80\x80");
        payload.extend(b"-edited-".repeat(50));
        let wire = masked(OpCode::Text, &payload, true);
        let (_, err, _) = run(1024, &wire[..8 + 12]);
        assert_eq!(err, Some(WsError::InvalidUtf8));
        // An incomplete code point at the end of the message.
        let mut wire = masked(OpCode::Text, b"a\xe2\x82", false);
        assert_eq!(run(64, &wire).1, None);
        wire.extend(masked(OpCode::Continue, b"", true));
        assert_eq!(run(64, &wire).1, Some(WsError::InvalidUtf8));
        assert_eq!(
            run(64, &masked(OpCode::Text, b"\xe2\x82", true)).1,
            Some(WsError::InvalidUtf8)
        );
        assert_eq!(WsError::InvalidUtf8.close_code(), CloseCode::Invalid);
        // Binary messages are never checked.
        assert_eq!(run(64, &masked(OpCode::Binary, b"\xff", true)).1, None);
    }

    #[test]
    fn carry_at_every_split() {
        let s = "a€𝄞ü".as_bytes();
        for cut in 0..=s.len() {
            let mut carry = Utf8Carry::default();
            assert_eq!(carry.feed(&s[..cut]), Ok(()), "cut {cut}");
            assert_eq!(carry.feed(&s[cut..]), Ok(()), "cut {cut}");
            assert_eq!(carry.finish(), Ok(()), "cut {cut}");
        }
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(carry.finish(), Err(WsError::InvalidUtf8));
        // `finish` resets: the next message starts clean.
        assert_eq!(carry.feed(b"ok"), Ok(()));
        assert_eq!(carry.finish(), Ok(()));
        assert_eq!(carry.feed(b"\xe2\x28"), Err(WsError::InvalidUtf8));
    }
}
