//! The [`Assembler`]: turns the bytes a client sent into complete [`Event`]s.
//!
//! Why a separate module: this is the connection-level state machine of the read path
//! (fragmentation, control frames between fragments, the size limit, the close handshake), on
//! top of the pure pieces in [`super::frame`], [`super::mask`], [`super::utf8`] and
//! [`super::close`].
//!
//! Invariants:
//! * Client frames must be masked (RFC 6455 §5.1); payload is unmasked in place in the caller's
//!   buffer, and single-frame messages are handed out as zero-copy `split_to(..).freeze()`.
//! * Errors are sticky: once `next_event` returned `Err`, it keeps returning that error.
//! * Failing fast (Autobahn 6.4.x): text is validated as it arrives, and a message that would
//!   exceed `max_message` is rejected at its header, before any of its payload is buffered.
//! * After a Close event nothing more is consumed (RFC 6455 §5.5.1).
//! * permessage-deflate (RFC 7692 §6), only when negotiated (`with_deflate`): RSV1 on the first
//!   frame of a data message marks it compressed; RSV1 on a continuation or control frame, or
//!   without the extension, is a protocol error (1002). A compressed message is handed out
//!   whole and still deflated ([`Event::Deflated`]): the size limit here applies to its
//!   compressed bytes, inflation (under the same limit) and its UTF-8 check come after.

use super::close::parse_close;
use super::frame::{decode_header, FrameHeader, OpCode};
use super::mask::apply_mask_at;
use super::utf8::Utf8Carry;
use super::{Event, WsError};
use bytes::{Buf, BytesMut};

/// The kind of data message being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgKind {
    Text,
    Binary,
}

/// A frame whose header has been decoded and checked but whose payload may still be arriving.
/// Its header stays at the front of the buffer until the whole frame is consumed.
#[derive(Clone, Copy, Debug)]
struct Pending {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
    /// Payload bytes already unmasked in place (and UTF-8-checked for text).
    unmasked: usize,
    /// Text payload: validate as it arrives.
    utf8: bool,
    /// RSV1 was set on this frame.
    rsv1: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    /// A close frame was returned; nothing more is read.
    Closed,
    /// An error was returned; it is returned again on every call.
    Failed(WsError),
}

/// Reassembles messages from frames: validates masking, opcodes, fragmentation, control
/// frame rules, UTF-8 (incrementally, failing fast) and the message size limit.
///
/// The read buffer belongs to the assembler between calls: payload bytes of a frame still
/// arriving are unmasked in place at the front of it, so the caller may only append to it.
#[derive(Debug)]
pub struct Assembler {
    max_message: usize,
    state: State,
    /// The frame currently at the front of the buffer, once its header is complete.
    pending: Option<Pending>,
    /// The fragmented data message in progress (or the single-frame one being received).
    message: Option<MsgKind>,
    /// The message in progress is compressed (RSV1 on its first frame).
    compressed: bool,
    /// permessage-deflate was negotiated: RSV1 is allowed on a message's first frame.
    deflate: bool,
    /// Payload of the earlier fragments of the message in progress.
    fragments: BytesMut,
    utf8: Utf8Carry,
}

impl Assembler {
    /// `max_message`: the largest message payload accepted (after reassembly), else 1009.
    pub fn new(max_message: usize) -> Self {
        Self::with_deflate(max_message, false)
    }

    /// An assembler for a connection that negotiated permessage-deflate (`deflate`): RSV1 then
    /// marks a compressed message ([`Event::Deflated`]).
    pub fn with_deflate(max_message: usize, deflate: bool) -> Self {
        Assembler {
            max_message,
            state: State::Open,
            pending: None,
            message: None,
            compressed: false,
            deflate,
            fragments: BytesMut::new(),
            utf8: Utf8Carry::default(),
        }
    }

    /// The largest reassembled message allowed, in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// True while a data message has started (its first frame header was seen) and its final
    /// frame has not been fully received.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// True once a close frame has been returned.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes held for the fragmented message in progress (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.fragments.len()
    }

    /// Consume bytes from the front of `buf` and return the next complete event, if any.
    ///
    /// `Ok(None)` means more bytes are needed (or the connection is closed). Complete frames
    /// are consumed; an incomplete frame stays in `buf`, its payload unmasked so far.
    pub fn next_event(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        match &self.state {
            State::Open => {}
            State::Closed => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let result = self.step(buf);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        // Loop because a non-final fragment completes a frame but not an event.
        loop {
            let mut frame = match self.pending {
                Some(p) => p,
                None => match decode_header(buf)? {
                    Some((header, header_len)) => self.begin_frame(header, header_len)?,
                    None => return Ok(None),
                },
            };
            let available = buf
                .len()
                .saturating_sub(frame.header_len)
                .min(frame.payload_len);
            if available > frame.unmasked {
                let start = frame.header_len + frame.unmasked;
                let end = frame.header_len + available;
                if let Some(fresh) = buf.get_mut(start..end) {
                    apply_mask_at(fresh, frame.mask, frame.unmasked);
                    if frame.utf8 {
                        self.utf8.feed(fresh)?;
                    }
                }
                frame.unmasked = available;
            }
            if available < frame.payload_len {
                self.pending = Some(frame);
                return Ok(None);
            }
            self.pending = None;
            if let Some(event) = self.finish_frame(frame, buf)? {
                return Ok(Some(event));
            }
        }
    }

    /// Check a new frame header against the connection's state.
    fn begin_frame(&mut self, header: FrameHeader, header_len: usize) -> Result<Pending, WsError> {
        let mask = header
            .mask
            .ok_or(WsError::Protocol("unmasked client frame"))?;
        let payload_len = usize::try_from(header.payload_len).map_err(|_| WsError::TooBig)?;
        let mut utf8 = false;
        if header.rsv1 {
            if !self.deflate {
                return Err(WsError::Protocol("reserved bits set without an extension"));
            }
            match header.opcode {
                OpCode::Text | OpCode::Binary => {}
                OpCode::Continue => {
                    return Err(WsError::Protocol("RSV1 set on a continuation frame"))
                }
                _ => return Err(WsError::Protocol("RSV1 set on a control frame")),
            }
        }
        match header.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                if payload_len > self.max_message {
                    return Err(WsError::TooBig);
                }
                let kind = if header.opcode == OpCode::Text {
                    MsgKind::Text
                } else {
                    MsgKind::Binary
                };
                self.message = Some(kind);
                self.compressed = header.rsv1;
                self.utf8 = Utf8Carry::default();
                utf8 = kind == MsgKind::Text && !header.rsv1;
            }
            OpCode::Continue => {
                let kind = self
                    .message
                    .ok_or(WsError::Protocol("continuation frame without a message"))?;
                let total = self.fragments.len().checked_add(payload_len);
                if total.is_none_or(|t| t > self.max_message) {
                    return Err(WsError::TooBig);
                }
                utf8 = kind == MsgKind::Text && !self.compressed;
            }
        }
        Ok(Pending {
            opcode: header.opcode,
            fin: header.fin,
            mask,
            header_len,
            payload_len,
            unmasked: 0,
            utf8,
            rsv1: header.rsv1,
        })
    }

    /// The whole frame is in `buf` and unmasked: consume it and produce its event, if any.
    fn finish_frame(
        &mut self,
        frame: Pending,
        buf: &mut BytesMut,
    ) -> Result<Option<Event>, WsError> {
        let total = frame.header_len + frame.payload_len;
        if buf.len() < total {
            // Unreachable unless the caller shrank the buffer; never split past its end.
            return Err(WsError::Protocol("read buffer changed under the assembler"));
        }
        let standalone = frame.opcode != OpCode::Continue && frame.fin;
        if frame.opcode.is_control() || standalone {
            // Zero-copy: the event shares the read buffer's allocation.
            let mut bytes = buf.split_to(total);
            bytes.advance(frame.header_len);
            let payload = bytes.freeze();
            return match frame.opcode {
                OpCode::Ping => Ok(Some(Event::Ping(payload))),
                OpCode::Pong => Ok(Some(Event::Pong(payload))),
                OpCode::Close => {
                    let event = parse_close(payload)?;
                    self.state = State::Closed;
                    Ok(Some(event))
                }
                OpCode::Text | OpCode::Binary if frame.rsv1 => {
                    self.message = None;
                    Ok(Some(Event::Deflated {
                        text: frame.opcode == OpCode::Text,
                        payload,
                    }))
                }
                OpCode::Text => {
                    self.utf8.finish()?;
                    self.message = None;
                    Ok(Some(Event::Text(payload)))
                }
                OpCode::Binary | OpCode::Continue => {
                    self.message = None;
                    Ok(Some(Event::Binary(payload)))
                }
            };
        }
        // A fragment: copy its payload aside (the limit was checked at its header).
        let payload = buf
            .get(frame.header_len..total)
            .ok_or(WsError::Protocol("read buffer changed under the assembler"))?;
        self.fragments.extend_from_slice(payload);
        buf.advance(total);
        if !frame.fin {
            return Ok(None);
        }
        let kind = self.message.take();
        let data = std::mem::take(&mut self.fragments).freeze();
        if std::mem::take(&mut self.compressed) {
            return match kind {
                Some(k) => Ok(Some(Event::Deflated {
                    text: k == MsgKind::Text,
                    payload: data,
                })),
                None => Err(WsError::Protocol("continuation frame without a message")),
            };
        }
        match kind {
            Some(MsgKind::Text) => {
                self.utf8.finish()?;
                Ok(Some(Event::Text(data)))
            }
            Some(MsgKind::Binary) => Ok(Some(Event::Binary(data))),
            None => Err(WsError::Protocol("continuation frame without a message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{encode_text, CloseCode};
    use super::*;
    use bytes::Bytes;

    #[test]
    fn assembler_single_frames_and_zero_copy() {
        let mut wire = masked(OpCode::Text, b"Hello", true);
        let first_len = wire.len();
        wire.extend(masked(OpCode::Binary, &[1, 2, 3], true));
        wire.extend(masked(OpCode::Ping, b"p", true));
        wire.extend(masked(OpCode::Pong, b"", true));
        wire.extend(masked(OpCode::Text, b"", true));
        wire.extend(&masked(OpCode::Text, b"partial", true)[..8]);
        let mut buf = BytesMut::from(&wire[..]);
        let base = buf.as_ptr();
        let mut asm = Assembler::new(1024);
        let Ok(Some(Event::Text(hello))) = asm.next_event(&mut buf) else {
            panic!("expected text");
        };
        assert_eq!(&hello[..], b"Hello");
        // The payload is a view of the read buffer, not a copy.
        assert_eq!(hello.as_ptr(), base.wrapping_add(6));
        assert_eq!(buf.len(), wire.len() - first_len);
        let rest: Vec<_> = std::iter::from_fn(|| asm.next_event(&mut buf).ok().flatten()).collect();
        assert_eq!(
            rest,
            vec![
                Event::Binary(Bytes::from_static(&[1, 2, 3])),
                Event::Ping(Bytes::from_static(b"p")),
                Event::Pong(Bytes::new()),
                text(""),
            ]
        );
        // The incomplete frame stays in the buffer, header included.
        assert_eq!(buf.len(), 8);
        assert!(asm.in_message());
        // Its two arrived payload bytes are already unmasked in place.
        assert_eq!(&buf[6..], b"pa");
    }

    #[test]
    fn assembler_every_split_point_and_chunk_size() {
        let mut wire = masked(OpCode::Text, "κόσμε".as_bytes(), false);
        wire.extend(masked(OpCode::Ping, b"ping", true));
        wire.extend(masked(OpCode::Continue, " mundo".as_bytes(), true));
        wire.extend(masked(OpCode::Binary, &[0u8; 300], true));
        wire.extend(masked(OpCode::Close, b"\x03\xe8bye", true));
        let want = vec![
            Event::Ping(Bytes::from_static(b"ping")),
            text("κόσμε mundo"),
            Event::Binary(Bytes::from(vec![0u8; 300])),
            Event::Close {
                code: Some(CloseCode::Normal),
                reason: Bytes::from_static(b"bye"),
            },
        ];
        for chunk in [1, 2, 3, 5, 7, 13, 64, wire.len()] {
            assert_eq!(
                run_chunked(1024, &wire, chunk),
                (want.clone(), None),
                "chunk {chunk}"
            );
        }
        for split in 0..=wire.len() {
            let mut asm = Assembler::new(1024);
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(e) = asm.next_event(&mut buf).unwrap_or(None) {
                got.push(e);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Some(e) = asm.next_event(&mut buf).unwrap_or(None) {
                got.push(e);
            }
            assert_eq!(got, want, "split {split}");
            assert!(buf.is_empty());
            assert!(asm.is_closed());
        }
    }

    #[test]
    fn assembler_protocol_errors() {
        let unmasked = encode_text(b"hi").to_vec();
        let cont = masked(OpCode::Continue, b"x", true);
        let mut text_then_text = masked(OpCode::Text, b"a", false);
        text_then_text.extend(masked(OpCode::Text, b"b", true));
        let mut text_then_binary = masked(OpCode::Text, b"a", false);
        text_then_binary.extend(masked(OpCode::Binary, b"b", true));
        let mut after_final = masked(OpCode::Text, b"a", true);
        after_final.extend(masked(OpCode::Continue, b"b", true));
        let cases: Vec<(&str, Vec<u8>, usize, WsError)> = vec![
            (
                "unmasked",
                unmasked,
                0,
                WsError::Protocol("unmasked client frame"),
            ),
            (
                "continuation first",
                cont,
                0,
                WsError::Protocol("continuation frame without a message"),
            ),
            (
                "text inside text",
                text_then_text,
                0,
                WsError::Protocol("new message inside a fragmented one"),
            ),
            (
                "binary inside text",
                text_then_binary,
                0,
                WsError::Protocol("new message inside a fragmented one"),
            ),
            (
                "continuation after final",
                after_final,
                1,
                WsError::Protocol("continuation frame without a message"),
            ),
            (
                "rsv",
                vec![0xc1, 0x80, 1, 2, 3, 4],
                0,
                WsError::Protocol("reserved bits set without an extension"),
            ),
            (
                "fragmented ping",
                masked(OpCode::Ping, b"", false),
                0,
                WsError::Protocol("fragmented control frame"),
            ),
            (
                "close 1 byte",
                masked(OpCode::Close, b"\x03", true),
                0,
                WsError::Protocol("close payload of one byte"),
            ),
            (
                "close bad reason",
                masked(OpCode::Close, b"\x03\xe8\xce\xba\xed\xa0\x80", true),
                0,
                WsError::InvalidUtf8,
            ),
        ];
        for (name, wire, n_events, err) in cases {
            let (events, got, _) = run(1024, &wire);
            assert_eq!(events.len(), n_events, "{name}");
            assert_eq!(got.as_ref(), Some(&err), "{name}");
            // Errors are sticky.
            let mut asm = Assembler::new(1024);
            let mut buf = BytesMut::from(&wire[..]);
            while let Ok(Some(_)) = asm.next_event(&mut buf) {}
            assert_eq!(asm.next_event(&mut buf), Err(err.clone()), "{name}");
            assert_eq!(asm.next_event(&mut buf), Err(err), "{name}");
        }
    }

    #[test]
    fn nothing_is_read_after_close() {
        let mut wire = masked(OpCode::Close, b"", true);
        let rest = masked(OpCode::Text, b"late", true);
        wire.extend(&rest);
        wire.extend(b"\xff\xff garbage");
        let mut asm = Assembler::new(64);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            asm.next_event(&mut buf),
            Ok(Some(Event::Close { code: None, .. }))
        ));
        assert_eq!(asm.next_event(&mut buf), Ok(None));
        assert_eq!(buf.len(), rest.len() + 10);
        assert!(asm.is_closed());
    }

    #[test]
    fn control_frames_between_fragments() {
        let mut wire = masked(OpCode::Binary, b"ab", false);
        wire.extend(masked(OpCode::Ping, b"1", true));
        wire.extend(masked(OpCode::Continue, b"", false));
        wire.extend(masked(OpCode::Pong, b"2", true));
        wire.extend(masked(OpCode::Continue, b"cd", false));
        wire.extend(masked(OpCode::Ping, b"3", true));
        wire.extend(masked(OpCode::Continue, b"e", true));
        wire.extend(masked(OpCode::Text, b"next", true));
        let (events, err, rest) = run(64, &wire);
        assert_eq!(err, None);
        assert_eq!(rest, 0);
        assert_eq!(
            events,
            vec![
                Event::Ping(Bytes::from_static(b"1")),
                Event::Pong(Bytes::from_static(b"2")),
                Event::Ping(Bytes::from_static(b"3")),
                Event::Binary(Bytes::from_static(b"abcde")),
                text("next"),
            ]
        );
        // in_message tracks the fragmented message.
        let mut asm = Assembler::new(64);
        let mut buf = BytesMut::from(&masked(OpCode::Text, b"a", false)[..]);
        assert_eq!(asm.next_event(&mut buf), Ok(None));
        assert!(asm.in_message());
        assert_eq!(asm.buffered(), 1);
        buf.extend_from_slice(&masked(OpCode::Continue, b"b", true));
        assert_eq!(asm.next_event(&mut buf), Ok(Some(text("ab"))));
        assert!(!asm.in_message());
        assert_eq!(asm.buffered(), 0);
    }

    #[test]
    fn size_limit_is_checked_at_the_header() {
        // Only the header of a too-big frame: TooBig without any payload buffered.
        let wire = masked(OpCode::Binary, &[0u8; 200], true);
        let (_, err, _) = run(100, &wire[..8]);
        assert_eq!(err, Some(WsError::TooBig));
        assert_eq!(WsError::TooBig.close_code(), CloseCode::Size);
        // Exactly the limit is fine.
        assert_eq!(run(200, &wire).1, None);
        // Fragments that add up past the limit fail at the header of the one that overflows.
        let mut wire = masked(OpCode::Text, &[b'a'; 60], false);
        wire.extend(masked(OpCode::Continue, &[b'b'; 40], false));
        let overflow = masked(OpCode::Continue, &[b'c'; 1], true);
        wire.extend(&overflow[..6]);
        assert_eq!(run(100, &wire).1, Some(WsError::TooBig));
        // Control frames do not count towards the limit.
        let mut wire = masked(OpCode::Text, &[b'a'; 10], false);
        wire.extend(masked(OpCode::Ping, &[0; 100], true));
        wire.extend(masked(OpCode::Continue, &[b'a'; 10], true));
        assert_eq!(run(20, &wire).0.len(), 2);
        // A 64-bit length the machine cannot even address.
        let huge = [
            0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ];
        assert_eq!(run(100, &huge).1, Some(WsError::TooBig));
    }

    #[test]
    fn assembler_reads_tungstenite_client_frames() {
        use tungstenite::Message;
        let big = "é".repeat(40_000);
        let mut ws = tungstenite_client(Vec::new());
        for m in [
            Message::text("hello"),
            Message::text(big.clone()),
            Message::binary(vec![7u8; 126]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::new()),
        ] {
            assert!(ws.send(m).is_ok());
        }
        let frame = tungstenite::protocol::CloseFrame {
            code: 4001u16.into(),
            reason: "bye".into(),
        };
        assert!(ws.close(Some(frame)).is_ok());
        assert!(ws.flush().is_ok());
        let wire = ws.get_ref().output.clone();
        let want = vec![
            text("hello"),
            text(&big),
            Event::Binary(Bytes::from(vec![7u8; 126])),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::new()),
            Event::Close {
                code: Some(CloseCode::Library(4001)),
                reason: Bytes::from_static(b"bye"),
            },
        ];
        assert_eq!(run(1 << 20, &wire), (want.clone(), None, 0));
        assert_eq!(run_chunked(1 << 20, &wire, 1000), (want, None));
    }

    #[test]
    fn deflate_messages_are_handed_out_compressed() {
        let rsv1 = |op, payload: &[u8], fin| {
            let mut f = masked(op, payload, fin);
            f[0] |= 0x40;
            f
        };
        // Single frame, fragmented (with a ping between), then a plain message.
        let mut wire = rsv1(OpCode::Text, b"\xff\xfe", true);
        wire.extend(rsv1(OpCode::Binary, b"ab", false));
        wire.extend(masked(OpCode::Ping, b"p", true));
        wire.extend(masked(OpCode::Continue, b"cd", true));
        wire.extend(masked(OpCode::Text, b"plain", true));
        for chunk in [1, 3, wire.len()] {
            let mut asm = Assembler::with_deflate(1024, true);
            let mut buf = BytesMut::new();
            let mut events = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Ok(Some(e)) = asm.next_event(&mut buf) {
                    events.push(e);
                }
            }
            assert_eq!(
                events,
                vec![
                    // Not UTF-8-checked while compressed.
                    Event::Deflated {
                        text: true,
                        payload: Bytes::from_static(b"\xff\xfe")
                    },
                    Event::Ping(Bytes::from_static(b"p")),
                    Event::Deflated {
                        text: false,
                        payload: Bytes::from_static(b"abcd")
                    },
                    text("plain"),
                ],
                "chunk {chunk}"
            );
        }
        let cases: Vec<(Vec<u8>, bool, &str)> = vec![
            (
                rsv1(OpCode::Text, b"x", true),
                false,
                "reserved bits set without an extension",
            ),
            (
                rsv1(OpCode::Ping, b"", true),
                true,
                "RSV1 set on a control frame",
            ),
            (
                rsv1(OpCode::Close, b"", true),
                true,
                "RSV1 set on a control frame",
            ),
            (
                [
                    rsv1(OpCode::Text, b"x", false),
                    rsv1(OpCode::Continue, b"y", true),
                ]
                .concat(),
                true,
                "RSV1 set on a continuation frame",
            ),
        ];
        for (wire, deflate, msg) in cases {
            let mut asm = Assembler::with_deflate(1024, deflate);
            let mut buf = BytesMut::from(&wire[..]);
            let mut got = Ok(None);
            for _ in 0..3 {
                got = asm.next_event(&mut buf);
                if got.is_err() {
                    break;
                }
            }
            assert_eq!(got, Err(WsError::Protocol(msg)), "{msg}");
        }
        // The size limit counts compressed bytes at the header.
        let mut asm = Assembler::with_deflate(10, true);
        let mut buf = BytesMut::from(&rsv1(OpCode::Binary, &[0; 11], true)[..]);
        assert_eq!(asm.next_event(&mut buf), Err(WsError::TooBig));
    }
}
